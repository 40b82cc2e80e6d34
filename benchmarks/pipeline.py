"""The event pipeline's stages, each beside the raw rate of what it is built on.

    .venv/bin/python benchmarks/pipeline.py [--events 20000]

On servers of its own, in one run:
  * naive write path: eventsourcing ``save()`` of one aggregate at a time (table lock and
    commit per write) vs sixstep's group commit of the same commands
  * outbox relay: stored events -> stream, vs raw pipelined JetStream publish
  * consumer: stream -> intake read model (batched transaction + tracking), vs raw pull
    fetch with ack
  * COPY into PostgreSQL, the ceiling of any bulk load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from benchmarks.common import machine, peak_rss_mb, publish_pipelined, servers
from services.intake import commands as c
from services.intake.application import Intake, IntakeApplication
from services.intake.domain import Case
from services.intake.projections import DDL, CaseProjection
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import connect, ensure_streams
from shared.catalogue import load_catalogue
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.settings import Settings


def naive_save_rate(settings: Settings, n: int) -> float:
    app = build_application(IntakeApplication, settings.model_copy(
        update={"schema_prefix": "naive_"}), "intake")
    start = time.perf_counter()
    for i in range(n):
        case = Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="w1",
                    clerk_id="clerk-1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                    resident_id=None, meta={"causation_id": f"naive-{i}", "center_id": "c"})
        app.save(case)
    rate = n / (time.perf_counter() - start)
    app.close()
    return rate


async def group_commit_rate(intake: Intake, n: int, concurrency: int = 512) -> float:
    body = c.OpenCase(center_id="SH-PD-HUAMU", counter_id="w1", clerk_id="clerk-1",
                      service_item="SA-HARDSHIP-SUBSIDY")
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            written = await intake.open_case(body, "clerk-1", f"gc-open-{i}")
            await intake.hear_request(written.aggregate_id, c.HearRequest(words="想申请补助"),
                                      "clerk-1", f"gc-hear-{i}")

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return 2 * n / (time.perf_counter() - start)


async def raw_publish_and_fetch(url: str, n: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="RAW", subjects=["raw.>"])
    data = b"x" * 700
    publish = await publish_pipelined(js, "raw.e", data, n, "r")
    sub = await js.pull_subscribe("raw.>", durable="raw", stream="RAW",
                                  config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                        max_ack_pending=20000))
    got = 0
    start = time.perf_counter()
    while got < n:
        msgs = await sub.fetch(500, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    fetch = n / (time.perf_counter() - start)
    await js.delete_stream("RAW")
    await nc.close()
    return publish, fetch


async def copy_rate(dsn: str, n: int) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE copy_rows (id uuid, case_id uuid, type text, payload jsonb)")
    rows = [(uuid.uuid4(), uuid.uuid4(), "RequestHeard", '{"words": "想申请补助"}')
            for _ in range(n)]
    start = time.perf_counter()
    await conn.copy_records_to_table("copy_rows", records=rows)
    rate = n / (time.perf_counter() - start)
    await conn.close()
    return rate


async def run(settings: Settings, n: int) -> dict[str, float]:
    f: dict[str, float] = {}
    f["naive_save_per_s"] = await asyncio.to_thread(naive_save_rate, settings, min(n // 10, 3000))
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    committer.start()
    intake = Intake(committer, load_catalogue())
    f["group_commit_per_s"] = await group_commit_rate(intake, n // 2)
    await committer.close()
    events = n
    pool = await create_pool(settings, settings.schema_for("intake"), max_size=4)
    await run_migrations(pool, settings.schema_for("intake"), [*TRACKING_DDL, *DDL])
    nc = await connect(settings, "bench")
    await ensure_streams(nc.jetstream(), settings)
    relay = Relay(settings, "intake", app, pool, nc)
    start = time.perf_counter()
    task = asyncio.create_task(relay.run())
    while relay.position < events:
        await asyncio.sleep(0.02)
    f["relay_per_s"] = events / (time.perf_counter() - start)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    consumer = Consumer(settings=settings, nc=nc, pool=pool, name="bench-cases",
                        handler=CaseProjection(),
                        filter_subjects=[f"{settings.subject_prefix}.intake.*.*"], batch=500)
    start = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    while consumer.stats.applied < events:
        await asyncio.sleep(0.02)
    f["consumer_per_s"] = events / (time.perf_counter() - start)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await nc.close()
    await pool.close()
    app.close()
    f["raw_publish_per_s"], f["raw_fetch_per_s"] = await raw_publish_and_fetch(settings.nats_url, n)
    f["copy_per_s"] = await copy_rate(settings.database_url, n)
    f["peak_rss_mb"] = peak_rss_mb()
    return f


def report(f: dict[str, float], n: int) -> None:
    print(f"machine: {machine()}; {n:,} events")
    rows = [
        ("naive save(), one aggregate per commit", f["naive_save_per_s"], None),
        ("group commit (512 concurrent callers)", f["group_commit_per_s"], "naive_save_per_s"),
        ("raw JetStream publish, pipelined", f["raw_publish_per_s"], None),
        ("outbox relay: store -> stream", f["relay_per_s"], "raw_publish_per_s"),
        ("raw pull fetch + ack", f["raw_fetch_per_s"], None),
        ("consumer: stream -> cases read model", f["consumer_per_s"], "raw_fetch_per_s"),
        ("asyncpg COPY", f["copy_per_s"], None),
    ]
    for label, rate, base in rows:
        ratio = f"  = {rate / f[base]:.2f} x {base.removesuffix('_per_s')}" if base else ""
        print(f"{label:<42} {rate:>9,.0f} /s{ratio}")
    print(f"peak RSS of this process: {f['peak_rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url)
        figures = asyncio.run(run(settings, args.events))
    report(figures, args.events)


if __name__ == "__main__":
    main()
