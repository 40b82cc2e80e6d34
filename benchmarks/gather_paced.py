"""One consumer fed at a fixed pace, its gathering (``CONSUMER_GATHER_MS``) off and on,
alternated: what a batch's fixed cost comes to at a middle rate, and what the wait adds.

    .venv/bin/python benchmarks/gather_paced.py [--rate 150] [--events 1500] [--pairs 4]
        [--on 3]

One PostgreSQL and one NATS (started here). Each run is a process of its own: a ``Consumer``
(batch 500) on a schema and durable of its own, from the stream's end, upserting one row a
case (one statement a batch, as a small projection writes), no tracing. This process then
publishes ``--events`` events of the synthetic log at ``--rate`` a second (open loop, each
with the time it was sent). The child prints its CPU an event, the events a batch, and the
p50 / p99 from sent to applied and acked; this process adds PostgreSQL's CPU an event over
the run. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(database_url: str, nats_url: str, events: int, run: str, gather_ms: float) -> None:
    import gc

    import uvloop

    from benchmarks.batch_of_one_paired import Upserts, upsert_schema
    from shared.bus.consumer import Consumer
    from shared.bus.jetstream import connect
    from shared.runtime.logs import configure_logging
    from shared.settings import Settings

    configure_logging("WARNING", True)
    settings = Settings(database_url=database_url, nats_url=nats_url)
    latencies: list[float] = []

    class Timed(Consumer):
        async def process(self, msgs):  # type: ignore[no-untyped-def]
            await super().process(msgs)
            now = time.time()
            latencies.extend(now - float(m.headers["Bench-Sent"]) for m in msgs)

    async def main() -> None:
        pool = await upsert_schema(settings, f"gp_{run}")
        nc = await connect(settings, f"bench-{run}")
        info = await nc.jetstream().stream_info(settings.stream_name)
        consumer = Timed(settings=settings, nc=nc, pool=pool, name=f"gp-{run}",
                         handler=Upserts(), filter_subjects=[f"{settings.subject_prefix}.*.*.*"],
                         deliver_from_seq=info.state.last_seq + 1, gather_s=gather_ms / 1000)
        task = asyncio.ensure_future(consumer.run())
        while not consumer.leads:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # its durable made and its pulls open
        gc.collect()
        gc.freeze()  # as a started service does
        print("READY", flush=True)
        cpu = time.process_time()
        while consumer.stats.applied < events:
            await asyncio.sleep(0.02)
        cpu = time.process_time() - cpu
        batches = consumer.stats.batches
        task.cancel()
        await asyncio.wait((task,))
        await nc.close()
        await pool.close()
        ms = sorted(x * 1000 for x in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"RESULT {cpu / events * 1e6:.1f} {events / batches:.2f} "
              f"{statistics.median(ms):.1f} {p99:.1f}", flush=True)

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--off", type=float, default=0.0)
    parser.add_argument("--on", type=float, default=3.0)
    parser.add_argument("--child", nargs=5, metavar=("DB", "NATS", "EVENTS", "RUN", "GATHER"))
    args = parser.parse_args()
    if args.child:
        db, nats, events, run, gather = args.child
        _child(db, nats, int(events), run, float(gather))
        return

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import server_cpu_seconds, servers
    from benchmarks.synthetic import Record, in_visit_order, one_year, visits_for
    from shared.bus.jetstream import connect, ensure_streams, event_subject
    from shared.settings import Settings

    results: dict[float, list[tuple[float, ...]]] = {args.off: [], args.on: []}
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url)
        records = [Record.of(e) for e in in_visit_order(
            one_year(2025, visits_for(2 * args.events), seed=20250101), seed=20250101,
            events=args.events)]

        async def paced(run: int) -> None:
            nc = await connect(settings, "bench-paced")
            try:
                js = nc.jetstream()
                await ensure_streams(js, settings)
                start = time.perf_counter()
                for i, r in enumerate(records):
                    due = start + i / args.rate
                    wait = due - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await nc.publish(
                        event_subject(settings, r.service, r.type, r.partition_key), r.body,
                        headers={"Nats-Msg-Id": f"{run}:{r.service}:{r.position}",
                                 "Sixstep-Type": r.type, "Bench-Sent": repr(time.time())})
                await nc.flush()
            finally:
                await nc.close()

        async def ensure() -> None:
            nc = await connect(settings, "bench-setup")
            await ensure_streams(nc.jetstream(), settings)
            await nc.close()
        asyncio.run(ensure())
        run = 0
        for pair in range(args.pairs):
            order = [args.off, args.on] if pair % 2 == 0 else [args.on, args.off]
            for gather in order:
                run += 1
                child = subprocess.Popen(
                    [sys.executable, str(ROOT / "benchmarks" / "gather_paced.py"), "--child",
                     srv.database_url, srv.nats_url, str(len(records)), str(run), str(gather)],
                    cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                    stdout=subprocess.PIPE, text=True)
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "READY"
                before_pg = server_cpu_seconds()[0]
                asyncio.run(paced(run))
                out = child.stdout.read()
                child.wait()
                pg = (server_cpu_seconds()[0] - before_pg) / len(records) * 1e6
                line = [x for x in out.splitlines() if x.startswith("RESULT")][-1].split()
                cpu, per_batch, p50, p99 = (float(x) for x in line[1:])
                results[gather].append((cpu, pg, per_batch, p50, p99))
                with open("/proc/loadavg") as loadavg:
                    load = loadavg.read().split()[0]
                print(f"pair {pair} gather {gather:g} ms (load {load}): consumer {cpu:.0f} us"
                      f" an event, PostgreSQL {pg:.0f}, {per_batch:.2f} events a batch, sent ->"
                      f" applied p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    names = ("consumer us", "PostgreSQL us", "events a batch", "p50 ms", "p99 ms")
    for gather, rows in results.items():
        print(f"medians, gather {gather:g} ms at {args.rate:g} events/s: " + ", ".join(
            f"{name} {statistics.median(r[i] for r in rows):.2f}"
            for i, name in enumerate(names)))
    lower = sum(on[0] < off[0] for off, on in zip(results[args.off], results[args.on],
                                                   strict=True))
    print(f"consumer's CPU an event lower with gathering in {lower} of {args.pairs} pairs")


if __name__ == "__main__":
    main()
