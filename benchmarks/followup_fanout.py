"""Policy-change fan-out over 100,000 past cases: time and peak memory, beside raw appends.

    .venv/bin/python benchmarks/followup_fanout.py [--cases 100000] [--residents 80000]
        [--layout apart] [--layout together]

For each layout, starts its own NATS and PostgreSQL and loads ``--cases`` past cases of
``--residents`` residents (the rest came twice) straight into follow-up's ``resident_items``
read model, as its rules consumer builds it from intake's events; every case touches one of
the policy's two service items. Then it publishes a policy change and times
``FanOut.once()`` in this process: one outreach follow-up per resident, each a
``FollowUpScheduled`` event appended through the GroupCommitter, while follow-up's relay
publishes them and its worklist consumer applies them:

* ``apart`` (as compose and k8s run it; the TARGET line): this process has ``ROLES=fanout``,
  the relay and the consumers run in a follow-up process with ``ROLES=workers``;
* ``together``: this process has every role (a follow-up started without ``ROLES``), so the
  relay and the consumers share the fan-out's event loop and GIL.

The CPU time of each process during the fan-out is printed per 1,000 follow-ups (less
swayed by a loaded machine than the rates). Beside it, in the same run and on the same
PostgreSQL, the same number of appends done raw, with nothing else running:

* eventsourcing: plain aggregates created and saved by one Application, in batches of the
  group-commit size (``app.save(*batch)``), no checks, no idempotency;
* asyncpg: rows shaped like stored events inserted with ``copy_records_to_table`` in batches
  of the fan-out size, one transaction each.

Peak memory is the process's resident set sampled every 20 ms during each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from eventsourcing.domain import Aggregate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    bench_settings,
    free_ports,
    like_main,
    machine,
    servers,
    service,
    service_env,
    target,
)

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


class Noted(Aggregate):
    """The raw baseline's aggregate: no checks, no meta, no idempotency."""

    def __init__(self, resident_id: uuid.UUID, due_at: datetime) -> None:
        self.resident_id = resident_id
        self.due_at = due_at


def eventsourcing_baseline(database_url: str, n: int, batch: int) -> float:
    from shared.eventstore.application import ServiceApplication
    from shared.eventstore.postgres import ensure_schema, postgres_env
    from shared.settings import Settings

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


LAYOUTS = ("apart", "together")
"""``apart``: the fan-out in a process of its own (``ROLES=fanout``, this one), follow-up's
relay and consumers in a worker process beside it (``ROLES=workers``), as compose and k8s
run it; ``together``: one process with every role (a service started without ``ROLES``)."""


@dataclass
class Figures:
    layout: str
    seeded_s: float
    reached: int
    fan_s: float
    fan_mb: float
    fan_peak_mb: float
    fan_cpu_s: float
    workers_cpu_s: float | None
    projected_s: float
    caught_up: bool
    es_s: float
    es_cpu_s: float
    pg_s: float
    batch: int
    group_commit: int


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def measure(layout: str, cases: int, residents: int) -> Figures:
    from services.followup.commands import PublishPolicyChange
    from services.followup.main import create_app
    from shared.bus.consumer import wait_for_position
    from shared.http.app import settle_garbage_collector
    from shared.kernel.clock import ManualClock
    from shared.security.principals import Principal, Role

    with servers() as srv, contextlib.ExitStack() as stack:
        roles = {"api", "workers", "fanout"}
        workers: psutil.Process | None = None
        if layout == "apart":
            port = free_ports(1)[0]
            proc = stack.enter_context(service("services.followup.main", port, service_env(
                srv, FOLLOWUP_PORT=str(port), ROLES="workers",
                FOLLOWUP_SCHEDULER_INTERVAL_S="3600")))
            workers, roles = psutil.Process(proc.pid), {"fanout"}
        settings = bench_settings(srv, followup_scheduler_interval_s=3600.0, roles=roles)
        like_main(settings)  # its logging; start_runtime starts its tracing
        clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        app = create_app(settings, clock)
        me = psutil.Process()
        async with app.router.lifespan_context(app):
            settle_garbage_collector()  # as serve() does once a service has started
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
            cpu0, workers0 = cpu_s(me), cpu_s(workers) if workers else 0.0
            fan_s, fan_mb, _ = await peak.measure(app.state.fanout.once)
            fan_peak_mb = peak.peak / 2**20
            fan_cpu = cpu_s(me) - cpu0
            workers_cpu = cpu_s(workers) - workers0 if workers else None
            reached = await pool.fetchval(
                "SELECT residents FROM policy_changes WHERE policy_id = $1",
                written.aggregate_id)
            relay = app.state.runtime.relay
            last = await pool.fetchval(
                f'SELECT max(notification_id) FROM "{relay.schema}"."{relay.table}"')
            t1 = time.perf_counter()
            caught_up = await wait_for_position(pool, "followup-worklist", "followup", last,
                                                600.0)
            projected_s = fan_s + (time.perf_counter() - t1)
            cpu1 = cpu_s(me)
            es_s = await asyncio.to_thread(eventsourcing_baseline, srv.database_url, reached,
                                           settings.group_commit_max_batch)
            es_cpu = cpu_s(me) - cpu1
            pg_s = await asyncpg_baseline(pool, reached, settings.followup_fanout_batch)
    return Figures(layout, seeded, reached, fan_s, fan_mb, fan_peak_mb, fan_cpu, workers_cpu,
                   projected_s, caught_up, es_s, es_cpu, pg_s, settings.followup_fanout_batch,
                   settings.group_commit_max_batch)


def report(f: Figures) -> None:
    where = ("its own process (ROLES=fanout), relay and consumers in a worker process beside "
             "it (ROLES=workers), as deployed" if f.layout == "apart" else
             "one process with relay, consumers and fan-out (every role)")
    per_k = 1000 / f.reached
    print(f"layout {f.layout}: the fan-out in {where}")
    print(f"  fan-out: {f.reached:,} outreach follow-ups in {f.fan_s:.1f} s "
          f"= {f.reached / f.fan_s:,.0f} follow-ups/s; peak RSS {f.fan_peak_mb:.0f} MiB, "
          f"+{f.fan_mb:.0f} MiB over the process before it (batch {f.batch}, group commit "
          f"{f.group_commit})")
    workers = ("" if f.workers_cpu_s is None else
               f"; the worker process (relay, consumers) {f.workers_cpu_s * per_k:.2f} s")
    print(f"  CPU per 1,000 follow-ups: the fan-out's process {f.fan_cpu_s * per_k:.2f} s"
          f"{workers}; raw saves {f.es_cpu_s * per_k:.2f} s")
    print(f"  all of them in the worklist read model after {f.projected_s:.1f} s"
          + ("" if f.caught_up else " (NOT caught up within 600 s)"))
    print(f"  raw eventsourcing saves (batches of {f.group_commit}): "
          f"{f.reached:,} in {f.es_s:.1f} s = {f.reached / f.es_s:,.0f}/s")
    print(f"  raw asyncpg COPY (batches of {f.batch}): "
          f"{f.reached:,} in {f.pg_s:.1f} s = {f.reached / f.pg_s:,.0f}/s")
    print(f"  ratios: fan-out takes {f.fan_s / f.es_s:.1f}x the raw eventsourcing time and "
          f"{f.fan_s / f.pg_s:.1f}x the raw asyncpg time: {f.es_s / f.fan_s:.2f} x")


async def main(cases: int, residents: int, layouts: list[str]) -> None:
    figures = [await measure(layout, cases, residents) for layout in layouts]
    print(f"machine: {machine()}")
    print(f"past cases: {cases:,} of {residents:,} residents (loaded in "
          f"{', '.join(f'{f.seeded_s:.1f}' for f in figures)} s)")
    for f in figures:
        report(f)
    deployed = next((f for f in figures if f.layout == "apart"), None)
    if deployed is not None:
        print(target("policy fan-out vs raw batched eventsourcing saves",
                     deployed.es_s / deployed.fan_s, 0.5))
    else:
        print("no TARGET line: the target is measured as deployed (--layout apart)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--residents", type=int, default=80_000)
    parser.add_argument("--layout", action="append", choices=LAYOUTS, help=(
        "apart (as deployed: the TARGET line) and/or together; both by default, each on "
        "servers of its own"))
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.residents, args.layout or list(LAYOUTS)))
