"""The center's figures recomputed from a synthetic year, beside the raw stream read rate.

    .venv/bin/python benchmarks/feedback_figures.py
    SIXSTEP_BENCH_EVENTS=0 .venv/bin/python benchmarks/feedback_figures.py   # the full year

A synthetic 2025 for eight centers, visit by visit (``benchmarks/synthetic.py``: every visit's
case from opening to resolution, its survey and answer, bad reviews rectified and revisited,
its follow-ups). The full year is 127,467 visits per center (about 13 million events); by
default the visits per center are scaled down so that the log holds about
SIXSTEP_BENCH_EVENTS = 1,000,000 events, still spread over the whole year and the eight
centers.

Measured in one run, on servers the benchmark starts itself:
  * raw stream read: every message of the stream through a pull consumer, nothing decoded
    (the baseline: no figure can be rebuilt faster than the log is read)
  * the rebuild: the figures consumer (durable pull consumer, exactly-once tracking,
    FiguresProjection in batches of SIXSTEP_BENCH_BATCH) from the first event to the last,
    in this process, with its peak RSS; PostgreSQL's memory is not included
  * the figures queries: all figures per center and month over the year, and per counter
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from benchmarks.common import bench_settings, like_main, machine, servers
from benchmarks.synthetic import CENTERS, YEAR_VISITS, publish_year, visits_for
from services.feedback import figures
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import connect
from shared.contracts import REGISTRY, Envelope
from shared.eventstore.postgres import ensure_schema
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.settings import Settings

COUNTED = frozenset(figures.INTAKE_TYPES + figures.FEEDBACK_TYPES + figures.FOLLOWUP_TYPES)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


async def raw_read(settings: Settings, batch: int = 5000) -> tuple[int, int, float]:
    """Every message of the stream, fetched and acknowledged by nobody: (messages, bytes, s)."""
    nc = await connect(settings, "bench-reader")
    try:
        js = nc.jetstream()
        total = (await js.stream_info(settings.stream_name)).state.messages
        sub = await js.pull_subscribe(">", stream=settings.stream_name, config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, max_waiting=8,
            inactive_threshold=30.0))
        start = time.perf_counter()
        seen = size = 0
        while seen < total:
            msgs = await sub.fetch(batch, timeout=5.0)
            seen += len(msgs)
            size += sum(len(m.data) for m in msgs)
        elapsed = time.perf_counter() - start
        await sub.unsubscribe()
        return seen, size, elapsed
    finally:
        await nc.close()


class PeakRSS:
    """Samples this process's resident memory while a phase runs; with ``readers``, plus
    that of its Python children (a replay's reader process, ``python -m
    shared.analytics.reading``; not the servers it started).

    The children are looked up every ``LOOK_EVERY`` samples, not at each: psutil finds them
    by reading every process's ``/proc/<pid>/stat``, which on a busy shared machine took some
    14 % of a rebuild's CPU (py-spy) when done every 50 ms."""

    LOOK_EVERY = 20

    def __init__(self, *, readers: bool = False) -> None:
        self.process = psutil.Process()
        self.readers = readers
        self.peak = 0
        self._readers: list[psutil.Process] = []
        self._samples = 0

    def _rss(self) -> int:
        rss = self.process.memory_info().rss
        if self.readers:
            if self._samples % self.LOOK_EVERY == 0:
                self._readers = []
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        command = " ".join(child.cmdline())
                        if "multiprocessing" in command or "shared.analytics.reading" in command:
                            self._readers.append(child)
            self._samples += 1
            for reader in self._readers:
                with contextlib.suppress(psutil.Error):
                    rss += reader.memory_info().rss
        return rss

    async def __aenter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._rss())
            await asyncio.sleep(0.05)

    async def __aexit__(self, *_: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return self.peak / 2**20


async def rebuild_direct(settings: Settings, expected: int, batch: int) -> float:
    """The same projection fed straight from a pull consumer, no tracking: (seconds)."""
    schema = f"{settings.schema_prefix}direct"
    await asyncio.to_thread(ensure_schema, settings, schema)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, figures.DDL)
    projection = figures.FiguresProjection(settings.tz)
    nc = await connect(settings, "bench-direct")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            "", stream=settings.stream_name, config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                filter_subjects=figures.subjects(settings.subject_prefix),
                inactive_threshold=30.0))
        start = time.perf_counter()
        seen = 0
        upcoming = asyncio.create_task(sub.fetch(batch, timeout=5.0))
        while seen < expected:
            msgs = await upcoming
            seen += len(msgs)
            if seen < expected:  # fetch the next batch while this one is applied
                upcoming = asyncio.create_task(sub.fetch(batch, timeout=5.0))
            events = [REGISTRY.current(Envelope.model_validate_json(m.data)) for m in msgs]
            async with pool.acquire() as conn, conn.transaction():
                await projection.apply(conn, events)
        elapsed = time.perf_counter() - start
        await sub.unsubscribe()
        return elapsed
    finally:
        await nc.close()
        await pool.close()


async def rebuild(settings: Settings, expected: int) -> float:
    """The figures consumer from the first event to the last: seconds."""
    schema = settings.schema_for("feedback")
    await asyncio.to_thread(ensure_schema, settings, schema)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, *figures.DDL])
    nc = await connect(settings, "bench-figures")
    consumer = Consumer(settings=settings, nc=nc, pool=pool, name=figures.CONSUMER,
                        handler=figures.FiguresProjection(settings.tz),
                        filter_subjects=figures.subjects(settings.subject_prefix),
                        batch=settings.consumer_batch)
    start = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    try:
        while consumer.stats.applied + consumer.stats.dead_lettered < expected:
            if task.done():
                task.result()
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - start
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()
        await pool.close()
    if consumer.stats.dead_lettered:
        raise SystemExit(f"{consumer.stats.dead_lettered} events were dead-lettered")
    return elapsed


async def queries(settings: Settings) -> tuple[float, float, list[dict[str, Any]]]:
    pool = await create_pool(settings, settings.schema_for("feedback"))
    try:
        start = time.perf_counter()
        by_month = await figures.compute(pool, figures.FigureQuery(
            period="month", as_of=date(2026, 1, 1), group_by=("center_id",)))
        month_s = time.perf_counter() - start
        start = time.perf_counter()
        await figures.compute(pool, figures.FigureQuery(
            period="year", as_of=date(2026, 1, 1), group_by=("center_id", "counter_id")))
        counter_s = time.perf_counter() - start
        year = await figures.compute(pool, figures.FigureQuery(
            period="all", as_of=date(2026, 1, 1), group_by=()))
        assert len(by_month) >= len(CENTERS) * 12, len(by_month)  # + January 2026: late answers
        return month_s, counter_s, year
    finally:
        await pool.close()


def rate(value: Any) -> str:
    if isinstance(value, dict):
        r = value["rate"]
        return (f"{r * 100:.2f} % ({value['numerator']:,}/{value['denominator']:,})"
                if r is not None else "n/a")
    return f"{value:,}"


async def main() -> None:
    target = env_int("SIXSTEP_BENCH_EVENTS", 1_000_000)
    visits = YEAR_VISITS if target == 0 else visits_for(target)
    batch = env_int("SIXSTEP_BENCH_BATCH", 2000)
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", partitions=16, consumer_batch=batch)
        like_main(settings)  # logging as main.py's; the consumer's start_runtime traces
        start = time.perf_counter()
        log = await publish_year(settings, visits)
        generated_s = time.perf_counter() - start
        counted = sum(log.by_type[t] for t in COUNTED)
        print(f"synthetic 2025: {len(CENTERS)} centers x {visits:,} visits = "
              f"{log.by_type['CaseOpened']:,} visits, {log.events:,} events ({counted:,} read "
              f"by the figures), {log.bytes / 2**20:,.0f} MiB; generated and published in "
              f"{generated_s:.1f} s ({log.events / generated_s:,.0f} events/s)")

        messages, size, read_s = await raw_read(settings)
        raw_rate = messages / read_s
        print(f"raw stream read (baseline):  {messages:,} messages in {read_s:.1f} s = "
              f"{raw_rate:,.0f} events/s ({size / 2**20 / read_s:,.0f} MiB/s)")

        async with PeakRSS() as direct_rss:
            direct_s = await rebuild_direct(settings, counted, batch)
        print(f"figures projection fed straight from the stream (no tracking): "
              f"{counted:,} events in {direct_s:.1f} s = {counted / direct_s:,.0f} "
              f"events/s ({counted / direct_s / raw_rate:.2f} x raw read); batch {batch}; "
              f"peak RSS {direct_rss.mb:,.0f} MB")

        async with PeakRSS() as consumer_rss:
            rebuild_s = await rebuild(settings, counted)
        print(f"figures rebuilt by the figures consumer (durable, exactly-once tracking): "
              f"{counted:,} events in {rebuild_s:.1f} s = {counted / rebuild_s:,.0f} "
              f"events/s ({counted / rebuild_s / raw_rate:.2f} x raw read); batch {batch}; "
              f"peak RSS {consumer_rss.mb:,.0f} MB")
        print(f"process peak RSS over the whole run (generation included): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")

        month_s, counter_s, year = await queries(settings)
        print(f"figures query: per center and month over the year {month_s * 1000:,.0f} ms; "
              f"per center and counter for the year {counter_s * 1000:,.0f} ms")
        (row,) = year
        print("the whole log, all centers: " + "; ".join(
            f"{f.name} {rate(row[f.name])}" for f in figures.FIGURES))
    print(f"finished {datetime.now(UTC).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    asyncio.run(main())
