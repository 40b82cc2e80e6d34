"""Dead letters with two partitioned intake replicas (partitions 0-1 and 2-3): poison events of
both shares are dead-lettered by each replica's own durable; ``sixstep dlq replay --consumer
intake-cases`` covers both durables, and two replays started at once on the two replicas apply
each letter exactly once between them, then nothing is left to replay."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import asyncpg
import httpx

from shared.bus.jetstream import partition_of
from shared.settings import Settings
from tests.faults.harness import CENTER, System
from tests.faults.test_poison import REFUSE_POISON, sixstep
from tests.support import dead_letters, wait_until

SHARES = {"a": "0-1", "b": "2-3"}
COUNTS = re.compile(r"replayed (\d+), already applied (\d+), failed (\d+)")


async def test_two_partitioned_replicas_replay_their_dead_letters_once(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    a = system.add("intake", "intake-a", CONSUMER_PARTITIONS=SHARES["a"])
    b = system.add("intake", "intake-b", CONSUMER_PARTITIONS=SHARES["b"], ROLES="workers")
    await system.start()
    schema = settings.schema_for("intake")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(REFUSE_POISON.format(schema=schema))  # a bug in the read model
        poisoned: dict[str, list[uuid.UUID]] = {"a": [], "b": []}
        async with httpx.AsyncClient(base_url=a.url, timeout=10, trust_env=False,
                                     headers=auth_headers) as client:
            n = 0
            while min(len(cases) for cases in poisoned.values()) < 2:
                n += 1
                r = await client.post("/cases", headers={"Idempotency-Key": f"split-{n}-open"},
                                      json={"center_id": CENTER, "counter_id": "w2",
                                            "clerk_id": "clerk-2",
                                            "service_item": "SA-HARDSHIP-SUBSIDY"})
                assert r.is_success, r.text
                case = uuid.UUID(r.json()["id"])
                share = "a" if partition_of(case, settings.partitions) < 2 else "b"
                if len(poisoned[share]) >= 2:
                    continue
                r = await client.post(f"/cases/{case}/hear", json={"words": "poison"},
                                      headers={"Idempotency-Key": f"split-{n}-hear"})
                assert r.is_success, r.text
                poisoned[share].append(case)

        async def four_letters() -> bool:
            return len(await dead_letters(settings)) == 4
        await wait_until(four_letters, timeout=60, what="four dead letters")
        code, out = await sixstep(settings, a.port, "dlq", "list", "--json")
        listed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert code == 0 and sorted(x["consumer"] for x in listed) == sorted(
            ["intake-cases-p0_1"] * 2 + ["intake-cases-p2_3"] * 2), out
        code, out = await sixstep(settings, a.port, "dlq", "list", "--json",
                                  "--consumer", "intake-cases")
        assert code == 0 and sum(line.startswith("{") for line in out.splitlines()) == 4, out
        code, out = await sixstep(settings, a.port, "dlq", "list", "--json",
                                  "--consumer", "intake-cases-p2_3")
        assert code == 0 and sum(line.startswith("{") for line in out.splitlines()) == 2, out

        await conn.execute(f'DROP TRIGGER refuse_poison ON "{schema}".case_timeline')  # fixed
        # Both replicas are asked at once: between them each letter is applied once.
        answers = await asyncio.gather(*(
            sixstep(settings, a.port, "dlq", "replay", "--consumer", "intake-cases",
                    "--url", replica.url) for replica in (a, b)))
        counts = []
        for code, out in answers:
            found = COUNTS.search(out)
            assert code == 0 and found, out
            counts.append(tuple(int(x) for x in found.groups()))
        assert sum(c[0] for c in counts) == 4, counts  # replayed, by one or the other
        assert all(c[2] == 0 for c in counts), counts
        assert await dead_letters(settings) == []
        code, out = await sixstep(settings, a.port, "dlq", "replay", "--consumer",
                                  "intake-cases", "--url", b.url)
        assert code == 0 and "replayed 0, already applied 0" in out, out

        heard = await conn.fetch(
            f'SELECT case_id, count(*) AS n FROM "{schema}".case_timeline '
            "WHERE payload->>'words' = 'poison' GROUP BY case_id")
        cases = {c for share in poisoned.values() for c in share}
        assert {r["case_id"]: r["n"] for r in heard} == dict.fromkeys(cases, 1), heard
        replays = await conn.fetch(f'SELECT consumer FROM "{schema}".consumer_replays')
        assert sorted(r["consumer"] for r in replays) == sorted(
            ["intake-cases-p0_1"] * 2 + ["intake-cases-p2_3"] * 2)
    finally:
        await conn.close()
