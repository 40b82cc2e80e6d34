"""Follow-up's worklist projection (``WorklistProjection.apply``, the live handler) in two
source trees, paired: PostgreSQL's CPU an event its batches cost, with no consumer, stream
or decoding around them.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/worklist_paired.py /tmp/base [--pairs 6] [--events 50000]

Each run is a process of its own with this checkout's virtualenv and the tree's code, on a
PostgreSQL of its own (fsync on, as the benchmarks run it): the worklist's tables made by the
tree's DDL, then follow-up's events of the synthetic log ``consumers.py`` publishes (the first
``--events`` of it, in time order) applied in batches of 500, each in a transaction, as the
consumer applies them. The figure is its backend's CPU (``/proc/<pid>/schedstat``) over the
events applied; the process's own CPU is printed beside it. First both trees' rows are
compared (every column of ``followups`` and ``timers`` but ``projected_at``): a tree that
leaves other rows stops the run. The trees alternate, and so does which goes first. Not part
of ``make bench``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(events: int, digest: bool) -> None:
    import asyncio
    import hashlib
    import random
    import shutil
    import tempfile
    import time
    from zoneinfo import ZoneInfo

    import asyncpg

    from benchmarks.consumers import START
    from benchmarks.synthetic import PER_DAY, in_time_order, visit_times
    from services.followup.projections import READ_MODEL, WorklistProjection
    from shared.readmodels.readmodel import make_tables
    from tools.devservers import PostgresServer

    def on_cpu_ns(pid: int) -> int:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])

    async def run(url: str) -> None:
        _, log = in_time_order(visit_times(random.Random(20250303), PER_DAY, START.date()),
                               seed=20250303, events=events)
        mine = [e for e in log if e.service == "followup"]
        conn = await asyncpg.connect(url)
        pid = conn.get_server_pid()
        await make_tables(conn, "worklist", READ_MODEL.ddl)
        projection = WorklistProjection(ZoneInfo("Asia/Shanghai"))
        cpu, backend = time.process_time(), on_cpu_ns(pid)
        for i in range(0, len(mine), 500):
            batch = mine[i:i + 500]
            async with conn.transaction():
                await projection.apply(conn, batch, projection.prepare(batch))
        cpu, backend = time.process_time() - cpu, on_cpu_ns(pid) - backend
        if digest:
            h = hashlib.sha256()
            for table, key in (("followups", "follow_up_id"), ("timers", "aggregate_id")):
                cols = [r["attname"] for r in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass"
                    " AND attnum > 0 AND NOT attisdropped AND attname <> 'projected_at'"
                    " ORDER BY attname", table)]
                for row in await conn.fetch(
                        f"SELECT {', '.join(cols)} FROM {table} ORDER BY {key}"):
                    h.update(repr(tuple(row)).encode())
            print(h.hexdigest())
        else:
            print(f"{len(mine)} events: process {cpu * 1e6 / len(mine):.2f} us an event;"
                  f" PostgreSQL {backend / 1e3 / len(mine):.2f}")
        await conn.close()

    folder = Path(tempfile.mkdtemp(prefix="worklist-paired-"))
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()
        asyncio.run(run(pg.url))
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _run(tree: Path, *argv: str) -> str:
    return subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "worklist_paired.py"), "--child", *argv],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, nargs="?", help="the tree to compare with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.events, args.digest)
        return
    if args.other is None:
        parser.error("give the tree to compare with")
    sys.path.insert(0, str(ROOT))
    from benchmarks.pairing import alternate

    other = args.other.resolve()
    # The other tree runs this file as it is here: it may not have it.
    (other / "benchmarks" / "worklist_paired.py").write_bytes(Path(__file__).read_bytes())
    digests = {tree: _run(tree, "--events", str(args.events), "--digest")
               for tree in (other, ROOT)}
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the trees leave other rows: {digests}")
    print(f"same rows in both trees ({digests[ROOT][:12]})", flush=True)

    def figure(tree: Path) -> float:
        line = _run(tree, "--events", str(args.events))
        print(f"  {tree}: {line}", file=sys.stderr, flush=True)
        return float(line.split()[-1])

    alternate(other, ROOT, args.pairs, figure, "of PostgreSQL's CPU an event")


if __name__ == "__main__":
    main()
