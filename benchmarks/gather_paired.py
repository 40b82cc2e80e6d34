"""The consumers' gathering (``CONSUMER_GATHER_MS``) off and on, alternated: whole cases paced
at fixed rates into the three services (``end_to_end.py``'s split layout, its ``drive_cases``),
the CPU a write of the services, PostgreSQL and nats-server, and the p50 / p99 of a resolution
into each read model. Each run starts the services anew with its setting; the servers are
shared. ``--rates 20 50 --pairs 4`` is what target 3's gather49 measured."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, servers
from benchmarks.end_to_end import (
    Cpu,
    FiguresProgress,
    drive_cases,
    latencies,
    register_residents,
    running,
)


def one_run(srv: object, gather_ms: str, rates: list[float], seconds: int, run: int,
            into: dict[tuple[str, float], list[dict[str, float]]]) -> None:
    os.environ["CONSUMER_GATHER_MS"] = gather_ms
    with running("split", srv, seconds) as base:  # type: ignore[arg-type]
        residents = ", ".join(f'"{r}"' for r in register_residents(base, f"gather-{run}"))
        for rate in rates:
            tag = f"gather-{run}-{rate:g}"
            with FiguresProgress(srv.database_url) as progress:  # type: ignore[attr-defined]
                with Cpu() as cpu:
                    driven = drive_cases(base, residents, rate, seconds, tag)
                found = asyncio.run(latencies(srv.database_url, tag,  # type: ignore[attr-defined]
                                              driven.resolved))
            found["figures"] = asyncio.run(progress.latencies(
                srv.database_url, tag))  # type: ignore[attr-defined]
            per = {part: cpu.spent[part] / max(driven.writes, 1) * 1e6 for part in Cpu.PARTS}
            row = {**per, "rate": driven.rate,
                   **{f"p99 {k}": v[1] for k, v in found.items() if not k.startswith("feedback'")},
                   **{f"p50 {k}": v[0] for k, v in found.items() if not k.startswith("feedback'")}}
            into[(gather_ms, rate)].append(row)
            with open("/proc/loadavg") as loadavg:
                load = loadavg.read().split()[0]
            print(f"gather {gather_ms} ms, {rate:g} writes/s asked ({driven.rate:.0f} reached,"
                  f" load {load}): " + ", ".join(
                      f"{k} {v:,.0f}" for k, v in row.items() if k != "rate"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--off", default="0")
    parser.add_argument("--on", default="3")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    into: dict[tuple[str, float], list[dict[str, float]]] = {
        (g, r): [] for g in (args.off, args.on) for r in args.rates}
    with servers() as srv:
        run = 0
        for pair in range(args.pairs):
            order = [args.off, args.on] if pair % 2 == 0 else [args.on, args.off]
            for gather_ms in order:
                run += 1
                one_run(srv, gather_ms, args.rates, args.seconds, run, into)
    for rate in args.rates:
        for gather_ms in (args.off, args.on):
            rows = into[(gather_ms, rate)]
            print(f"medians, gather {gather_ms} ms at {rate:g} writes/s: " + ", ".join(
                f"{k} {statistics.median(r[k] for r in rows):,.0f}" for k in rows[0]))
        lower = sum(on["services"] < off["services"] for off, on in zip(
            into[(args.off, rate)], into[(args.on, rate)], strict=True))
        print(f"  services' CPU a write lower with gathering in {lower} of {args.pairs} pairs")


if __name__ == "__main__":
    main()
