"""Rebuild of every read model from a synthetic year, beside the raw read rates of the same run.

    .venv/bin/python benchmarks/rebuild_all.py                  # 1,000,000 events
    .venv/bin/python benchmarks/rebuild_all.py --events 200000  # or SIXSTEP_BENCH_EVENTS
    .venv/bin/python benchmarks/rebuild_all.py --live-handler   # also the live handlers' path

On a nats-server and a PostgreSQL it starts itself, the benchmark publishes the synthetic year
of ``benchmarks/synthetic.py`` (eight centers, visit by visit: every visit's case from opening
to resolution, its survey and answer or expiry, bad reviews rectified and revisited, its
follow-ups), then measures, one after the other in this process:

  raw fetch + ack  nats-py ``fetch()`` of a pull consumer with explicit acks, each message
                   acknowledged, nothing decoded (what any exactly-once reader pays at least)
  raw pull         the pipelined pull requests the rebuild reads with
                   (``shared.bus.pulling.Puller``), nothing decoded: the transport's own ceiling
  rebuild <model>  ``sixstep rebuild <model>`` up to the diff (``Rebuild.prepare`` +
                   ``catch_up`` into a fresh staging schema): fetch, decode, upcast, COPY into
                   the read model's tables, tracking and ``rebuild_state`` in one transaction
                   per batch. Each is measured over the events it reads (its subject filters).
  all four         the four rebuilds at once in this process: their events over the wall time

Each rebuild reports its peak resident memory (sampled every 50 ms; the process's memory
before the phase is included) and this process's CPU time per event (PostgreSQL's and
nats-server's are not included: on a shared machine it tells a slow phase from a starved
one). With ``--live-handler`` each model is first rebuilt through its live handler
(executemany, as the live consumer writes), for comparison. The targets: replay into
every read model at least 0.8 x the raw fetch + ack rate, and a rebuild's peak memory at most
300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from benchmarks.common import machine, pipelined_pull, servers, target
from benchmarks.feedback_figures import PeakRSS
from benchmarks.synthetic import CENTERS, EVENTS_PER_VISIT, publish_year
from shared.analytics.rebuild import Rebuild, collections_paused
from shared.analytics.replay import Replay
from shared.bus.jetstream import connect
from shared.readmodels.readmodel import ReadModel, load_read_model, registered
from shared.settings import Settings

#: Every registered read model (pyproject.toml's sixstep.read_models).
MODELS = tuple(sorted(registered()))
TARGET_RATIO = 0.8
TARGET_RSS_MB = 300


@dataclass
class Measured:
    name: str
    events: int
    seconds: float
    peak_rss_mb: float = 0.0
    skipped: int = 0
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def raw_fetch_ack(settings: Settings, total: int, batch: int) -> Measured:
    """nats-py ``fetch()`` with an explicit ack of every message; nothing decoded."""
    nc = await connect(settings, "bench-fetch-ack")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            f"{settings.subject_prefix}.>", stream=settings.stream_name,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                  max_ack_pending=4 * batch, inactive_threshold=60.0,
                                  mem_storage=True))
        got = 0
        start = time.perf_counter()
        while got < total:
            try:
                msgs = await sub.fetch(batch, timeout=2.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            for msg in msgs:
                await msg.ack()
            got += len(msgs)
        await nc.flush()
        seconds = time.perf_counter() - start
        await sub.unsubscribe()
        return Measured("raw pull fetch + ack (nats-py)", got, seconds)
    finally:
        await nc.close()


async def raw_pull(settings: Settings, total: int, batch: int) -> Measured:
    """The rebuild's own transport (pipelined pull requests, no acks), nothing decoded."""
    got, seconds = await pipelined_pull(settings, total, batch)
    return Measured("raw pipelined pull (Puller)", got, seconds)


async def read_decode(settings: Settings, batch: int) -> Measured:
    """The whole log through ``Replay`` (pipelined pull, every event decoded and upcast), not
    applied anywhere: what a rebuild pays before its read models do anything."""
    events = 0
    start = time.perf_counter()
    async with Replay(settings, batch_size=batch) as replay:
        with collections_paused() as collect:
            async for got in replay:
                events += got.scanned
                collect(got.scanned)
    return Measured("replay: read + decode, nothing applied", events, time.perf_counter() - start)


async def rebuild(settings: Settings, model: ReadModel, name: str, batch: int,
                  copy: bool = True) -> Measured:
    """``sixstep rebuild <model>`` up to the comparison, into a fresh staging schema."""
    async with Rebuild(settings, model, batch_size=batch, copy=copy) as rb:
        await rb.prepare(fresh=True)
        start = time.perf_counter()
        await rb.catch_up()
        seconds = time.perf_counter() - start
        state = await rb.state()
        await rb.discard()
    return Measured(name, state["applied"] + state["skipped"], seconds,
                    skipped=state["skipped"])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measured(run: Coroutine[Any, Any, Measured]) -> Measured:
    """The phase's result with this process's peak memory and CPU time during it."""
    before = cpu_seconds()
    async with PeakRSS() as rss:
        result = await run
    result.peak_rss_mb = rss.mb
    result.cpu_s = cpu_seconds() - before
    return result


async def all_together(settings: Settings, models: list[str], batch: int) -> Measured:
    start = time.perf_counter()
    done = await asyncio.gather(*(rebuild(settings, load_read_model(m), m, batch)
                                  for m in models))
    seconds = time.perf_counter() - start
    return Measured(f"all {len(models)} at once", sum(d.events for d in done), seconds,
                    skipped=sum(d.skipped for d in done))


def line(m: Measured, fetch: Measured, pull: Measured) -> str:
    return (f"{m.name:<40}{m.events:>10,} ev {m.seconds:>6.1f} s {m.rate:>9,.0f} /s"
            f"  = {m.rate / fetch.rate:.2f} x fetch+ack, {m.rate / pull.rate:.2f} x raw pull;"
            f" peak RSS {m.peak_rss_mb:,.0f} MB; CPU {m.cpu_s / m.events * 1e6:.1f} us/ev"
            + (f"; {m.skipped:,} refused" if m.skipped else ""))


async def main(args: argparse.Namespace) -> None:
    visits = max(1, round(args.events / EVENTS_PER_VISIT / len(CENTERS)))
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url,
                            stream_name="BENCH", subject_prefix="bench", schema_prefix="bench_",
                            partitions=16, log_level="WARNING", log_json=False)
        start = time.perf_counter()
        log = await publish_year(settings, visits)
        published_s = time.perf_counter() - start
        print(f"synthetic year: {len(CENTERS)} centers x {visits:,} visits, {log.events:,} "
              f"events (intake {log.by_service['intake']:,}, feedback "
              f"{log.by_service['feedback']:,}, followup {log.by_service['followup']:,}), "
              f"{log.bytes / 2**20:,.0f} MiB; published in {published_s:.1f} s; "
              f"batch {args.batch}")

        fetch = await raw_fetch_ack(settings, log.events, args.batch)
        pull = await raw_pull(settings, log.events, args.batch)
        print(f"{fetch.name:<40}{fetch.events:>10,} ev {fetch.seconds:>6.1f} s "
              f"{fetch.rate:>9,.0f} /s")
        print(f"{pull.name:<40}{pull.events:>10,} ev {pull.seconds:>6.1f} s "
              f"{pull.rate:>9,.0f} /s  = {pull.rate / fetch.rate:.2f} x fetch+ack")

        decoded = await measured(read_decode(settings, args.batch))
        print(line(decoded, fetch, pull), flush=True)

        results: list[Measured] = []
        for name in args.models:
            model = load_read_model(name)
            if args.live_handler:
                old = await measured(rebuild(settings, model, f"rebuild {name} (live handler)",
                                             args.batch, copy=False))
                print(line(old, fetch, pull), flush=True)
            m = await measured(rebuild(settings, model, f"rebuild {name}", args.batch))
            results.append(m)
            print(line(m, fetch, pull), flush=True)
        together = await measured(all_together(settings, args.models, args.batch))
        results.append(together)
        print(line(together, fetch, pull))
        print(f"  = the log's {log.events:,} events into every read model at "
              f"{log.events / together.seconds:,.0f} /s")

        each = results[:-1]
        slowest = min(each, key=lambda m: m.rate)
        fattest = max(results, key=lambda m: m.peak_rss_mb)
        print(target(f"replay into each read model vs raw fetch + ack (lowest: {slowest.name})",
                     slowest.rate / fetch.rate, TARGET_RATIO))
        print(target("replay into all four read models at once vs raw fetch + ack",
                     together.rate / fetch.rate, TARGET_RATIO))
        print(target(f"peak RSS of a replay (highest: {fattest.name})", fattest.peak_rss_mb,
                     TARGET_RSS_MB, "MB", at_most=True))
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (the machine may be shared)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int,
                        default=int(os.environ.get("SIXSTEP_BENCH_EVENTS", 1_000_000)),
                        help="events in the synthetic log (about)")
    parser.add_argument("--batch", type=int,
                        default=int(os.environ.get("SIXSTEP_BENCH_BATCH", 1000)),
                        help="fetch and rebuild batch size (sixstep rebuild's default: 1000)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--live-handler", action="store_true",
                        help="also rebuild each model through its live handler (no COPY)")
    asyncio.run(main(parser.parse_args()))
