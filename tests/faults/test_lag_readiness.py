"""A consumer held at a known event: its oldest unapplied event ages, /metrics says how old,
/ready turns degraded (still 200) naming the consumer and since when, and once the cause is
fixed the event is applied and the service is ready again."""

from __future__ import annotations

import asyncpg
import httpx

from shared.settings import Settings
from tests.faults.harness import CENTER, System
from tests.faults.test_poison import REFUSE_POISON
from tests.support import wait_until


def gauge(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample of ``name`` whose labels include ``labels``."""
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_held_event_makes_intake_degraded_until_it_is_applied(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    # The poisoned event is retried (not dead-lettered) for as long as the test needs.
    intake = system.add("intake", CONSUMER_LAG_DEGRADED_S="1", HEALTH_PROBE_INTERVAL_S="0.3",
                        CONSUMER_MAX_DELIVER="100000", CONSUMER_BACKOFF_S="[0.2,0.5]")
    await system.start()
    schema = settings.schema_for("intake")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(REFUSE_POISON.format(schema=schema))  # a bug in the read model
        async with httpx.AsyncClient(base_url=intake.url, timeout=10, trust_env=False,
                                     headers=auth_headers) as client:
            answer = await client.get("/ready")
            assert answer.json()["status"] == "ready", answer.text
            r = await client.post("/cases", headers={"Idempotency-Key": "held-case-1"}, json={
                "center_id": CENTER, "counter_id": "w3", "clerk_id": "clerk-3",
                "service_item": "SA-HARDSHIP-SUBSIDY"})
            assert r.is_success, r.text
            case_id = r.json()["id"]
            r = await client.post(f"/cases/{case_id}/hear", json={"words": "poison"},
                                  headers={"Idempotency-Key": "held-case-2"})
            assert r.is_success, r.text

            async def degraded_by_the_consumer() -> bool:
                body = (await client.get("/ready")).json()
                return any(x.startswith("consumer intake-cases") for x in body["reasons"])

            await wait_until(degraded_by_the_consumer, timeout=30,
                             what="/ready degraded by intake-cases")
            answer = await client.get("/ready")
            body = answer.json()
            assert answer.status_code == 200 and body["status"] == "degraded", body
            reason = next(x for x in body["reasons"] if x.startswith("consumer intake-cases"))
            assert "oldest unapplied event waiting for" in reason and "since" in reason, reason
            assert body["checks"]["consumer_oldest_unapplied_s"]["intake-cases"] > 1
            metrics = (await client.get("/metrics")).text
            age = gauge(metrics, "sixstep_consumer_oldest_unapplied_age_seconds",
                        consumer="intake-cases")
            assert age is not None and age > 1, metrics
            lag = gauge(metrics, "sixstep_consumer_lag", consumer="intake-cases")
            assert lag is not None and lag >= 1, "the held event counts in the lag too"
            assert gauge(metrics, "sixstep_relay_unpublished_events",
                         service="intake") == 0.0, "the relay is not behind: only the consumer"

            await conn.execute(f'DROP TRIGGER refuse_poison ON "{schema}".case_timeline')

            async def ready_again() -> bool:
                body = (await client.get("/ready")).json()
                return body["status"] == "ready"

            await wait_until(ready_again, timeout=30, what="/ready ready after the fix")
            metrics = (await client.get("/metrics")).text
            assert gauge(metrics, "sixstep_consumer_oldest_unapplied_age_seconds",
                         consumer="intake-cases") == 0.0
        heard = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".case_timeline WHERE payload->>\'words\' = '
            "'poison'")
        assert heard == 1, "the held event was applied once, after the fix"
    finally:
        await conn.close()
