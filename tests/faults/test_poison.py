"""A poison event: one consumer can never apply it. It is retried a bounded number of times,
dead-lettered with the reason, the events after it keep flowing, and once the cause is fixed
``sixstep dlq replay`` applies it exactly once through the consumer's own handler, without
recording it a second time in the log."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx

from shared.settings import Settings
from tests import support
from tests.faults.harness import CENTER, Load, System, audit, service_env
from tests.support import dead_letters, wait_until
from tools.devservers import free_port

SIXSTEP = Path(sys.executable).parent / "sixstep"

REFUSE_POISON = """
CREATE FUNCTION "{schema}".refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.payload->>'words' = 'poison' THEN
    RAISE EXCEPTION 'projection bug: cannot store this timeline entry';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON "{schema}".case_timeline
  FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_poison();
"""


async def sixstep(settings: Settings, intake_port: int, *args: str) -> tuple[int, str]:
    env = service_env(settings, INTAKE_PORT=str(intake_port), FOLLOWUP_PORT=str(free_port()),
                      FEEDBACK_PORT=str(free_port()), COLUMNS="200")
    token_for = getattr(support, "token_for", None)  # when the services check bearer tokens
    if token_for is not None:
        env["SIXSTEP_TOKEN"] = token_for(settings, role="ops", center=None)
    done = await asyncio.to_thread(subprocess.run, [str(SIXSTEP), *args], env=env,
                                   capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


async def test_a_poison_event_is_dead_lettered_and_replayed_once_after_the_fix(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    intake = system.add("intake")
    await system.start()
    schema = settings.schema_for("intake")
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(REFUSE_POISON.format(schema=schema))  # a bug in the read model
    load = Load(intake.url, headers=auth_headers)
    load.start()
    try:
        await load.until_writes(30)
        async with httpx.AsyncClient(base_url=intake.url, timeout=10, trust_env=False,
                                     headers=auth_headers) as client:
            cases = []
            for name in ("last", "followed"):
                r = await client.post("/cases", headers={"Idempotency-Key": f"poison-{name}-1"},
                                      json={"center_id": CENTER, "counter_id": "w9",
                                            "clerk_id": "clerk-9",
                                            "service_item": "SA-HARDSHIP-SUBSIDY"})
                case_id = r.json()["id"]
                r = await client.post(f"/cases/{case_id}/hear", json={"words": "poison"},
                                      headers={"Idempotency-Key": f"poison-{name}-2"})
                assert r.is_success, r.text
                cases.append(case_id)
            # The second poisoned case goes on: its next event must not wait for ever.
            r = await client.post(f"/cases/{cases[1]}/concerns", json={"emotion": "upset"},
                                  headers={"Idempotency-Key": "poison-followed-3"})
            assert r.is_success, r.text

        async def two_letters() -> bool:
            return len(await dead_letters(settings)) == 2
        await wait_until(two_letters, timeout=30, what="two dead letters")
        letters = await dead_letters(settings)
        for letter in letters:
            headers = letter.headers or {}
            assert headers["Sixstep-Consumer"] == "intake-cases"
            assert "projection bug" in headers["Sixstep-Reason"]
            assert int(headers["Sixstep-Delivered"]) == settings.consumer_max_deliver
        await load.until_writes(load.writes + 40)  # and the load keeps flowing meanwhile

        code, out = await sixstep(settings, intake.port, "dlq", "list", "--json")
        listed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert code == 0 and [x["type"] for x in listed] == ["RequestHeard"] * 2, out
        assert all("poison" not in json.dumps(x) for x in listed), "no payload in the listing"

        code, out = await sixstep(settings, intake.port, "dlq", "replay",
                                  "--consumer", "intake-cases")
        assert code == 1 and "failed 2" in out, out  # not fixed yet: the letters stay
        assert len(await dead_letters(settings)) == 2

        await conn.execute(f'DROP TRIGGER refuse_poison ON "{schema}".case_timeline')  # the fix
        code, out = await sixstep(settings, intake.port, "dlq", "replay",
                                  "--consumer", "intake-cases")
        assert code == 0 and "replayed 2" in out, out
        assert "after later events of their case" in out, out  # the second case went on
        assert await dead_letters(settings) == []
        code, out = await sixstep(settings, intake.port, "dlq", "replay",
                                  "--consumer", "intake-cases")
        assert code == 0 and "replayed 0" in out, out
    finally:
        await load.stop()
        await conn.close()
    report = await audit(settings, load, services=["intake"],
                         late_cases=[uuid.UUID(cases[1])])
    conn = await asyncpg.connect(settings.database_url)
    try:
        heard = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".case_timeline WHERE payload->>\'words\' = '
            "'poison'")
        replays = await conn.fetchval(f'SELECT count(*) FROM "{schema}".consumer_replays')
    finally:
        await conn.close()
    assert heard == 2 and replays == 2, "each poisoned event applied once, by the replay"
    print(f"poison: 2 dead letters replayed once after the fix; {report}")
