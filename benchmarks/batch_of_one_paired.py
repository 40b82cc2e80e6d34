"""A consumer's fixed cost a batch, in two source trees, paired: events delivered one per
batch, as every consumer takes them at a low rate.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/batch_of_one_paired.py /tmp/base [--pairs 4] [--events 2000]

One PostgreSQL and one NATS (started here) hold ``--events`` events of the synthetic log
(``synthetic.in_visit_order``). Each run is a process of its own with one tree's code (this
checkout's virtualenv): a ``Consumer`` of batch ``--batch`` (1: a batch of one) on a schema
and durable of its own drains them into one upserted row per case (one statement a batch,
as a small projection writes), no tracing. It prints the CPU an event of its process and the
PostgreSQL transactions committed a batch (``pg_stat_database.xact_commit``, its pool closed
first so the backends' counts are in); this process adds PostgreSQL's CPU an event over the
run. The trees alternate, and so does which goes first (``pairing.alternate``); medians at
the end. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

UPSERT = (
    "INSERT INTO bench_cases (case_id, events, last_type) SELECT k, 1, t FROM"
    " unnest($1::uuid[], $2::text[]) AS e(k, t) ON CONFLICT (case_id) DO UPDATE SET"
    " events = bench_cases.events + 1, last_type = EXCLUDED.last_type")


class Upserts:
    """The handler of these micro-runs: one upserted row a case, one statement a batch."""

    async def apply(self, conn: Any, envelopes: list) -> None:  # type: ignore[type-arg]
        last = {e.partition_key: e.type for e in envelopes}
        await conn.execute(UPSERT, list(last), list(last.values()))


async def upsert_schema(settings: Any, schema: str) -> Any:
    """``schema`` made with the tracking table and ``bench_cases``; a small pool on it."""
    import asyncpg

    from shared.bus.consumer import TRACKING_DDL
    from shared.readmodels.pool import create_pool

    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    pool = await create_pool(settings, schema, min_size=1, max_size=2)
    async with pool.acquire() as c:
        for statement in [*TRACKING_DDL, "CREATE TABLE bench_cases (case_id uuid PRIMARY"
                          " KEY, events int NOT NULL, last_type text NOT NULL)"]:
            await c.execute(statement)
    return pool


def _child(database_url: str, nats_url: str, events: int, run: str, batch: int) -> None:
    import gc

    import uvloop

    from shared.bus.consumer import Consumer
    from shared.bus.jetstream import connect
    from shared.runtime.logs import configure_logging
    from shared.settings import Settings

    configure_logging("WARNING", True)
    settings = Settings(database_url=database_url, nats_url=nats_url)

    async def main() -> None:
        pool = await upsert_schema(settings, f"b1_{run}")
        nc = await connect(settings, f"bench-{run}")
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name=f"b1-{run}",
                            handler=Upserts(),
                            filter_subjects=[f"{settings.subject_prefix}.*.*.*"], batch=batch)
        task = asyncio.ensure_future(consumer.run())
        while consumer.stats.batches < 1:  # started: its lead, durable and first pull
            await asyncio.sleep(0.01)
        gc.collect()
        gc.freeze()  # as a started service does
        started, cpu, batches = time.perf_counter(), time.process_time(), consumer.stats.batches
        applied = consumer.stats.applied
        while consumer.stats.applied < events:
            await asyncio.sleep(0.02)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - started
        done_batches = consumer.stats.batches - batches
        n = consumer.stats.applied - applied
        task.cancel()
        await asyncio.wait((task,))
        await nc.close()
        await pool.close()  # its backends' transactions counted
        print(f"child {n} events in {done_batches} batches, {wall:.2f} s", file=sys.stderr)
        print(f"RESULT {cpu / n * 1e6:.2f} {done_batches}")

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other_tree", nargs="?", type=Path)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--child", nargs=5, metavar=("DB", "NATS", "EVENTS", "RUN", "BATCH"))
    args = parser.parse_args()
    if args.child:
        db, nats, events, run, batch = args.child
        _child(db, nats, int(events), run, int(batch))
        return

    import asyncpg

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import server_cpu_seconds, servers
    from benchmarks.pairing import alternate
    from benchmarks.synthetic import Publisher, in_visit_order, one_year, visits_for
    from shared.settings import Settings

    assert args.other_tree is not None, "the other tree to compare with"
    extra: dict[Path, list[tuple[float, float]]] = {}
    runs = iter(range(1_000))

    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url)
        log = Publisher(settings)
        asyncio.run(log.publish(in_visit_order(
            one_year(2025, visits_for(2 * args.events), seed=20250101), seed=20250101,
            events=args.events)))
        events = log.events

        async def commits() -> int:
            conn = await asyncpg.connect(srv.database_url)
            try:
                await conn.execute("SELECT pg_stat_force_next_flush()")
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                return int(await conn.fetchval(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname ="
                    " current_database()"))
            finally:
                await conn.close()

        def run(tree: Path) -> float:
            before_pg = server_cpu_seconds()[0]
            before = asyncio.run(commits())
            out = subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / "batch_of_one_paired.py"),
                 "--child", srv.database_url, srv.nats_url, str(events),
                 str(next(runs)), str(args.batch)],
                cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                check=True, capture_output=True, text=True)
            time.sleep(0.6)  # the backends' last counts reach the statistics
            after = asyncio.run(commits())
            pg = server_cpu_seconds()[0] - before_pg
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1].split()
            cpu, batches = float(line[1]), int(line[2])
            # whole run's transactions (start, lead, DDL included) over its batches
            extra.setdefault(tree, []).append((pg / events * 1e6, (after - before) / batches))
            return cpu

        alternate(args.other_tree, ROOT, args.pairs, run, "of the consumer's CPU an event")
        for name, tree in (("other", args.other_tree), ("this", ROOT)):
            pg = statistics.median(p for p, _ in extra[tree])
            xacts = statistics.median(x for _, x in extra[tree])
            print(f"{name}: PostgreSQL {pg:.1f} us an event (the whole run), "
                  f"{xacts:.2f} transactions committed a batch (median of {len(extra[tree])})")


if __name__ == "__main__":
    main()
