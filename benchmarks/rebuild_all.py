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
  read + decode    the whole log through ``Replay``: pulled, every event decoded, nothing applied
                   (in one process, or with the reader process)
  rebuild <model>  ``sixstep rebuild <model>`` up to the diff (``Rebuild.prepare`` +
                   ``catch_up`` into a fresh staging schema): fetch, decode, upcast, COPY into
                   the read model's tables, tracking and ``rebuild_state`` in one transaction
                   per batch. Each is measured over the events it reads (its subject filters).
  all at once      every registered read model from ONE replay (``catch_up_together``): the log
                   read and decoded once, each model's share written on its own connection

A rebuild of more than ``PROCESS_AT_LEAST`` messages reads the log in a child process
(``Replay``'s ``reader="auto"``) while this one decodes and applies; ``--readers inline
process`` measures each phase both ways, one after the other (paired). Each rebuild reports
its peak resident memory (sampled every 50 ms, this process's and its reader's; the memory
before the phase is included) and its CPU time per event, this process's and its reader's
("here": this process's alone, the critical path when the other core is free; PostgreSQL's
and nats-server's are not included: on a shared machine it tells a slow phase from a starved
one). With ``--live-handler`` each model is first rebuilt through its live handler
(executemany, as the live consumer writes), for comparison. The targets (issue 23): every read
model rebuilt at least 0.5 x the raw pipelined pull (its events over its time), all of them at
once at 0.5 x too (the log's events over the time), and a rebuild's peak memory at most
300 MB. The ratios against nats-py's fetch + ack are printed as context.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from benchmarks.common import (
    bench_settings,
    like_main,
    machine,
    pipelined_pull,
    server_cpu_seconds,
    servers,
    target,
)
from benchmarks.feedback_figures import PeakRSS
from benchmarks.synthetic import CENTERS, publish_year, visits_for
from shared.analytics.rebuild import Rebuild, catch_up_together, collections_paused
from shared.analytics.replay import Reading, Replay
from shared.bus.jetstream import connect
from shared.readmodels.readmodel import REBUILD_BATCH, ReadModel, load_read_model, registered
from shared.settings import Settings

#: Every registered read model (pyproject.toml's sixstep.read_models).
MODELS = tuple(sorted(registered()))
TARGET_RATIO = 0.5
TARGET_RSS_MB = 300


@dataclass
class Measured:
    name: str
    events: int
    seconds: float
    peak_rss_mb: float = 0.0
    skipped: int = 0
    cpu_s: float = 0.0
    #: Of ``cpu_s``, this process's (the rest: its reader process's).
    own_cpu_s: float = 0.0
    #: The servers' CPU time during the phase: PostgreSQL's (every backend) and nats-server's.
    pg_cpu_s: float = 0.0
    nats_cpu_s: float = 0.0
    #: Of the phase's wall time, how much this process was on a CPU.
    busy: float = 0.0
    scanned: int = 0

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


async def read_decode(settings: Settings, batch: int, reader: Reading = "auto") -> Measured:
    """The whole log through ``Replay`` (pipelined pull, every event decoded and upcast), not
    applied anywhere: what a rebuild pays before its read models do anything."""
    events = 0
    start = time.perf_counter()
    async with Replay(settings, batch_size=batch, reader=reader) as replay:
        with collections_paused() as collect:
            async for got in replay:
                events += got.scanned
                collect(got.scanned)
    return Measured(f"replay: read + decode{where(replay.in_child)}", events,
                    time.perf_counter() - start)


def where(in_child: bool) -> str:
    return " [reader process]" if in_child else " [one process]"


async def rebuild(settings: Settings, model: ReadModel, name: str, batch: int,
                  copy: bool = True, reader: Reading = "auto") -> Measured:
    """``sixstep rebuild <model>`` up to the comparison, into a fresh staging schema."""
    replays: list[Replay] = []
    async with Rebuild(settings, model, batch_size=batch, copy=copy,
                       on_start=replays.append, reader=reader) as rb:
        await rb.prepare(fresh=True)
        start = time.perf_counter()
        await rb.catch_up()
        seconds = time.perf_counter() - start
        state = await rb.state()
        await rb.discard()
    return Measured(name + where(replays[0].in_child if replays else False),
                    state["applied"] + state["skipped"], seconds,
                    skipped=state["skipped"], scanned=replays[0].upto if replays else 0)


def cpu_seconds() -> tuple[float, float]:
    """This process's CPU time, and that of its children ended (a replay's reader process
    is waited for when the replay ends; the servers run on)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, ended.ru_utime + ended.ru_stime


async def measured(run: Coroutine[Any, Any, Measured]) -> Measured:
    """The phase's result with this process's peak memory and CPU time during it, and the
    servers' CPU time."""
    own, children = cpu_seconds()
    pg, nats = server_cpu_seconds()
    async with PeakRSS(readers=True) as rss:
        result = await run
    result.peak_rss_mb = rss.mb
    own_after, children_after = cpu_seconds()
    pg_after, nats_after = server_cpu_seconds()
    result.own_cpu_s = own_after - own
    result.cpu_s = result.own_cpu_s + children_after - children
    result.pg_cpu_s, result.nats_cpu_s = pg_after - pg, nats_after - nats
    result.busy = result.own_cpu_s / result.seconds if result.seconds else 0.0
    return result


async def all_together(settings: Settings, models: list[str], batch: int,
                       reader: Reading = "auto") -> Measured:
    """Every read model from one replay (``catch_up_together``): the log read and decoded
    once, each model's share written on its own connection at the same time. ``events`` is
    the sum of what the models applied; ``scanned`` the log's events read."""
    async with contextlib.AsyncExitStack() as stack:
        rebuilds = [await stack.enter_async_context(
            Rebuild(settings, load_read_model(m), batch_size=batch, reader=reader))
            for m in models]
        replays: list[Replay] = []
        for rb in rebuilds:
            await rb.prepare(fresh=True)
        start = time.perf_counter()
        scanned = await catch_up_together(rebuilds, batch_size=batch, on_start=replays.append)
        seconds = time.perf_counter() - start
        states = [await rb.state() for rb in rebuilds]
        for rb in rebuilds:
            await rb.discard()
    return Measured(f"all {len(models)} at once{where(replays[0].in_child)}",
                    sum(st["applied"] + st["skipped"] for st in states), seconds,
                    skipped=sum(st["skipped"] for st in states), scanned=scanned)


def line(m: Measured, fetch: Measured, pull: Measured) -> str:
    return (f"{m.name:<40}{m.events:>10,} ev {m.seconds:>6.1f} s {m.rate:>9,.0f} /s"
            f"  = {m.rate / fetch.rate:.2f} x fetch+ack, {m.rate / pull.rate:.2f} x raw pull;"
            f" peak RSS {m.peak_rss_mb:,.0f} MB; CPU {m.cpu_s / max(m.events, 1) * 1e6:.1f} us/ev"
            + (f" ({m.own_cpu_s / max(m.events, 1) * 1e6:.1f} here)"
               if m.cpu_s > m.own_cpu_s * 1.01 else "")
            + (f"; {m.skipped:,} refused" if m.skipped else "")
            + (f"\n{'':<40}busy {m.busy:.0%} of the time; servers' CPU us/ev: PostgreSQL"
               f" {m.pg_cpu_s / max(m.events, 1) * 1e6:.1f}, nats-server"
               f" {m.nats_cpu_s / max(m.events, 1) * 1e6:.1f}" if m.busy else "")
            + (f"\n{'':<40}(its events lie in the log's {m.scanned:,}: {m.scanned / m.seconds:,.0f}"
               f" /s of log = {m.scanned / m.seconds / pull.rate:.2f} x raw pull)"
               if m.scanned > m.events * 1.5 else ""))


async def main(args: argparse.Namespace) -> None:
    visits = visits_for(args.events)
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", partitions=16)
        like_main(settings)  # logging as the CLI sets it up (a rebuild opens no spans)
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

        for reader in args.readers if not args.together_only else ():
            decoded = await measured(read_decode(settings, args.batch, reader))
            print(line(decoded, fetch, pull), flush=True)

        results: list[Measured] = []
        for name in args.models if not args.together_only else ():
            model = load_read_model(name)
            if args.live_handler:
                old = await measured(rebuild(settings, model, f"rebuild {name} (live handler)",
                                             args.batch, copy=False))
                print(line(old, fetch, pull), flush=True)
            for reader in args.readers:  # paired: one after the other, same servers
                m = await measured(rebuild(settings, model, f"rebuild {name}", args.batch,
                                           reader=reader))
                if not m.events:  # intake.plans: the synthetic year draws up no plans
                    print(f"{m.name:<40} no events of its types in this log, not measured",
                          flush=True)
                    break
                results.append(m)
                print(line(m, fetch, pull), flush=True)
        for reader in args.readers:
            together = await measured(all_together(settings, args.models, args.batch, reader))
            print(line(together, fetch, pull))
            log_rate = together.scanned / together.seconds
            print(f"  = the log's {together.scanned:,} events, read and decoded once, into every"
                  f" read model at {log_rate:,.0f} /s = {log_rate / pull.rate:.2f} x raw pull,"
                  f" {log_rate / fetch.rate:.2f} x fetch+ack")
        if len(args.readers) > 1:  # the target is the default's (the last one given)
            results = results[len(args.readers) - 1::len(args.readers)]

        fattest = max([*results, together], key=lambda m: m.peak_rss_mb)
        if results:
            slowest = min(results, key=lambda m: m.rate)
            print(f"context: lowest rebuild vs raw fetch + ack ({slowest.name}): "
                  f"{slowest.rate / fetch.rate:.2f} x; all at once (events applied) "
                  f"{together.rate / fetch.rate:.2f} x fetch+ack,"
                  f" {together.rate / pull.rate:.2f} x raw pull")
            print(target(f"rebuild of each read model vs raw pull (lowest: {slowest.name})",
                         slowest.rate / pull.rate, TARGET_RATIO))
        print(target(f"all {len(args.models)} read models at once, the log read once, vs raw"
                     " pull (log events/s)", log_rate / pull.rate, TARGET_RATIO))
        print(target(f"peak RSS of a rebuild (highest: {fattest.name})", fattest.peak_rss_mb,
                     TARGET_RSS_MB, "MB", at_most=True))
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (the machine may be shared)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int,
                        default=int(os.environ.get("SIXSTEP_BENCH_EVENTS", 1_000_000)),
                        help="events in the synthetic log (about)")
    parser.add_argument("--batch", type=int,
                        default=int(os.environ.get("SIXSTEP_BENCH_BATCH", REBUILD_BATCH)),
                        help="fetch and rebuild batch size (sixstep rebuild's default:"
                             f" {REBUILD_BATCH})")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--readers", nargs="+", default=["auto"],
                        choices=["inline", "process", "auto"],
                        help="where each rebuild reads the log (Replay's reader): several give"
                             " paired runs, the targets taken from the last")
    parser.add_argument("--together-only", action="store_true",
                        help="only the raw reads and all the read models at once (paired runs"
                             " of catch_up_together)")
    parser.add_argument("--live-handler", action="store_true",
                        help="also rebuild each model through its live handler (no COPY)")
    asyncio.run(main(parser.parse_args()))
