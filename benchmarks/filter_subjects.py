"""What nats-server spends reading a sparse read model's event types: one consumer with
several filter subjects against one consumer per subject (what ``Replay`` now reads).

    .venv/bin/python benchmarks/filter_subjects.py --events 100000

On a nats-server and a PostgreSQL it starts itself, publishes the synthetic year of
``benchmarks/synthetic.py`` and pulls feedback.people's three event types (the pipelined pull
of ``shared.bus.pulling.Puller``, nothing decoded) through: one consumer of the three filter
subjects, three consumers of one each (one after the other), one consumer of the service's
covering subject, and the whole log; each with nats-server's CPU time (psutil) a message
delivered and a message of the log.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from nats.js.api import AckPolicy, ConsumerConfig

from benchmarks.common import bench_settings, machine, servers
from benchmarks.synthetic import publish_year, visits_for
from shared.bus.jetstream import connect
from shared.bus.pulling import Puller
from shared.settings import Settings

TYPES = ("CaseOpened", "GuidanceSessionHeld", "PlacementRecorded")


def nats_cpu_seconds() -> float:
    for child in psutil.Process().children():
        if child.name() == "nats-server":
            t = child.cpu_times()
            return t.user + t.system
    return 0.0


async def pull(settings: Settings, filters: list[str], batch: int = 1000) -> int:
    """Every message of one consumer of ``filters``: how many."""
    nc = await connect(settings, "bench-filters")
    try:
        js = nc.jetstream()
        subjects = (dict(filter_subject=filters[0]) if len(filters) == 1
                    else dict(filter_subjects=filters))
        info = await js.add_consumer(settings.stream_name, ConsumerConfig(
            ack_policy=AckPolicy.NONE, inactive_threshold=60.0, mem_storage=True, **subjects))
        puller = Puller(nc, settings.stream_name, info.name, batch)
        await puller.start()
        got = 0
        while got < info.num_pending:
            got += len(await puller.take(timeout=2.0))
        await puller.stop()
        return got
    finally:
        await nc.close()


async def main(args: argparse.Namespace) -> None:
    visits = visits_for(args.events)
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", partitions=16)
        log = await publish_year(settings, visits)
        print(f"log: {log.events:,} events")
        exact = [f"bench.intake.{t}.*" for t in TYPES]
        ways = (("one consumer, three filters", [exact]),
                ("three consumers, one filter each", [[s] for s in exact]),
                ("one consumer, bench.intake.>", [["bench.intake.>"]]),
                ("the whole log, one filter", [["bench.>"]]))
        for _ in range(args.rounds):
            for name, consumers in ways:
                cpu, start = nats_cpu_seconds(), time.perf_counter()
                got = 0
                for filters in consumers:
                    got += await pull(settings, filters)
                seconds = time.perf_counter() - start
                cpu = nats_cpu_seconds() - cpu
                print(f"{name:<34}{got:>9,} msgs {seconds:6.2f} s  nats-server {cpu:5.2f} s CPU"
                      f" = {cpu / got * 1e6:5.1f} us a message delivered,"
                      f" {cpu / log.events * 1e6:4.2f} us a message of the log", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
