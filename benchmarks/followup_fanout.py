"""Policy-change fan-out over 100,000 past cases: time and peak memory, beside raw appends.

    .venv/bin/python benchmarks/followup_fanout.py [--cases 100000] [--residents 80000]

Starts its own NATS and PostgreSQL. Loads ``--cases`` past cases of ``--residents`` residents
(the rest came twice) straight into follow-up's ``resident_items`` read model, as its rules
consumer builds it from intake's events; every case touches one of the policy's two service
items. Then, in one worker process (relay and consumers running, as in production), it
publishes a policy change and times ``FanOut.once()``: one outreach follow-up per resident,
each a ``FollowUpScheduled`` event appended through the GroupCommitter. Beside it, in the same
run and on the same PostgreSQL, the same number of appends done raw:

* eventsourcing: plain aggregates created and saved by one Application, in batches of the
  group-commit size (``app.save(*batch)``), no checks, no idempotency;
* asyncpg: rows shaped like stored events inserted with ``copy_records_to_table`` in batches
  of the fan-out size, one transaction each.

Peak memory is the process's resident set sampled every 20 ms during each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_settings, like_main, machine, servers, target

ITEMS = ["SA-HARDSHIP-SUBSIDY", "SA-MINIMUM-LIVING-ALLOWANCE"]


class Peak:
    """The resident set size's maximum while a phase runs (sampled)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.02)

    async def measure(self, work: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
        self.peak = self.process.memory_info().rss
        before = self.peak
        self._task = asyncio.create_task(self._sample())
        start = time.perf_counter()
        try:
            result = await work()
        finally:
            elapsed = time.perf_counter() - start
            self._task.cancel()
        return elapsed, (self.peak - before) / 2**20, result


async def seed(pool: Any, cases: int, residents: int) -> None:
    people = [uuid.uuid4() for _ in range(residents)]
    now = datetime.now(UTC)
    rows = []
    for i in range(cases):
        resident = people[i % residents]
        rows.append((resident, ITEMS[i % 2], uuid.uuid4(), "SH-PD-HUAMU", now))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "resident_items", records=rows,
            columns=["resident_id", "service_item", "case_id", "center_id", "opened_at"])
        await conn.execute("ANALYZE resident_items")


def eventsourcing_baseline(database_url: str, n: int, batch: int) -> float:
    from eventsourcing.domain import Aggregate

    from shared.eventstore.application import ServiceApplication
    from shared.eventstore.postgres import ensure_schema, postgres_env
    from shared.settings import Settings

    class Noted(Aggregate):
        def __init__(self, resident_id: uuid.UUID, due_at: datetime) -> None:
            self.resident_id = resident_id
            self.due_at = due_at

    settings = Settings(database_url=database_url)
    ensure_schema(settings, "bench_raw_es")
    app = ServiceApplication(env=postgres_env(settings, "bench_raw_es", "bench"))
    due = datetime.now(UTC)
    start = time.perf_counter()
    for offset in range(0, n, batch):
        app.save(*[Noted(resident_id=uuid.uuid4(), due_at=due)
                   for _ in range(min(batch, n - offset))])
    elapsed = time.perf_counter() - start
    app.close()
    return elapsed


async def asyncpg_baseline(pool: Any, n: int, batch: int) -> float:
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_events (id bigserial PRIMARY KEY,"
            " originator_id uuid NOT NULL, originator_version int NOT NULL, topic text NOT NULL,"
            " state bytea NOT NULL, UNIQUE (originator_id, originator_version))")
        state = b'{"resident_id":"' + str(uuid.uuid4()).encode() + b'","due_at":"2026-03-04"}'
        start = time.perf_counter()
        for offset in range(0, n, batch):
            rows = [(uuid.uuid4(), 1, "FollowUpScheduled", state)
                    for _ in range(min(batch, n - offset))]
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_raw_events", records=rows,
                    columns=["originator_id", "originator_version", "topic", "state"])
        return time.perf_counter() - start


async def main(cases: int, residents: int) -> None:
    from services.followup.commands import PublishPolicyChange
    from services.followup.main import create_app
    from shared.bus.consumer import wait_for_position
    from shared.kernel.clock import ManualClock
    from shared.security.principals import Principal, Role

    with servers() as srv:
        settings = bench_settings(srv, followup_scheduler_interval_s=3600.0)
        like_main(settings)  # its logging; start_runtime starts its tracing
        clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        app = create_app(settings, clock)
        async with app.router.lifespan_context(app):
            pool = app.state.pool
            t0 = time.perf_counter()
            await seed(pool, cases, residents)
            seeded = time.perf_counter() - t0
            written = await app.state.followups.publish_policy(PublishPolicyChange(
                center_id="SH-PD-HUAMU", service_items=ITEMS, summary="困难补助标准上调",
                effective_on=datetime(2026, 4, 1).date()),
                Principal(sub="operator", role=Role.SUPERVISOR, center_id="SH-PD-HUAMU"),
                "bench-policy-1")
            assert await wait_for_position(pool, "followup-worklist", "followup",
                                           written.position, 30.0)
            peak = Peak()
            fan_s, fan_mb, _ = await peak.measure(app.state.fanout.once)
            reached = await pool.fetchval(
                "SELECT residents FROM policy_changes WHERE policy_id = $1",
                written.aggregate_id)
            last = await pool.fetchval(
                f'SELECT max(notification_id) FROM "{app.state.runtime.relay.schema}".'
                f'"{app.state.runtime.relay.table}"')
            t1 = time.perf_counter()
            caught_up = await wait_for_position(pool, "followup-worklist", "followup", last,
                                                600.0)
            projected_s = fan_s + (time.perf_counter() - t1)
            es_s = await asyncio.to_thread(eventsourcing_baseline, srv.database_url, reached,
                                           settings.group_commit_max_batch)
            pg_s = await asyncpg_baseline(pool, reached, settings.followup_fanout_batch)

    print(f"machine: {machine()}")
    print(f"past cases: {cases:,} of {residents:,} residents (loaded in {seeded:.1f} s)")
    print(f"fan-out: {reached:,} outreach follow-ups in {fan_s:.1f} s "
          f"= {reached / fan_s:,.0f} follow-ups/s; peak memory +{fan_mb:.0f} MiB over the "
          f"process before it (batch {settings.followup_fanout_batch}, group commit "
          f"{settings.group_commit_max_batch})")
    print(f"  all of them in the worklist read model after {projected_s:.1f} s"
          + ("" if caught_up else " (NOT caught up within 600 s)"))
    print(f"raw eventsourcing saves (batches of {settings.group_commit_max_batch}): "
          f"{reached:,} in {es_s:.1f} s = {reached / es_s:,.0f}/s")
    print(f"raw asyncpg COPY (batches of {settings.followup_fanout_batch}): "
          f"{reached:,} in {pg_s:.1f} s = {reached / pg_s:,.0f}/s")
    print(f"ratios: fan-out takes {fan_s / es_s:.1f}x the raw eventsourcing time and "
          f"{fan_s / pg_s:.1f}x the raw asyncpg time")
    print(target("policy fan-out vs raw batched eventsourcing saves", es_s / fan_s, 0.5))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--residents", type=int, default=80_000)
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.residents))
