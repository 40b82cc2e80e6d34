"""A live read model's handler (intake's cases, follow-up's worklist, feedback's views) in two
source trees, paired: the CPU an event its ``apply`` spends in line, between and around its
statements, while PostgreSQL waits on it, with no consumer, stream or decoding around.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/apply_paired.py /tmp/base --model feedback [--pairs 6] \\
        [--events 50000]

Each run is a process of its own with this checkout's virtualenv and the tree's code, on a
PostgreSQL of its own (fsync on, as the benchmarks run it): the model's tables made by the
tree's DDL, then the model's service's events of the synthetic log ``consumers.py`` publishes
(the first ``--events`` of it, in time order) applied in batches of 500, each in a
transaction, as the consumer applies them. A handler with ``prepare`` (``Preparing``) has it
made before the batch and outside the figure, as the consumer makes it while the batch before
waits on PostgreSQL. The figure is the process's CPU in ``apply`` over the events applied;
``prepare``'s CPU and the backend's (``/proc/<pid>/schedstat``) are printed beside it. First
both trees' rows are compared (every column of the model's tables but the volatile ones): a
tree that leaves other rows stops the run. The trees alternate, and so does which goes
first. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The read model of each ``--model``, and the service whose events it folds.
MODELS = {"intake": "intake", "followup": "followup", "feedback": "feedback"}
#: Tables a model writes beside those its ``READ_MODEL.keys`` name (compared too).
ALSO = {"followup": ("timers", "obligations")}


def _child(model: str, events: int, digest: bool) -> None:
    import asyncio
    import gc
    import hashlib
    import random
    import shutil
    import tempfile
    import time
    from zoneinfo import ZoneInfo

    import asyncpg

    from benchmarks.consumers import START
    from benchmarks.synthetic import PER_DAY, in_time_order, visit_times
    from shared.readmodels.readmodel import make_tables
    from tools.devservers import PostgresServer

    if model == "intake":
        from services.intake.projections import READ_MODEL, CaseProjection
        handler: object = CaseProjection()
    elif model == "followup":
        from services.followup.projections import READ_MODEL, WorklistProjection
        handler = WorklistProjection(ZoneInfo("Asia/Shanghai"))
    else:
        from services.feedback.projections import READ_MODEL, FeedbackViews
        handler = FeedbackViews()
    prepare = getattr(handler, "prepare", None)

    def on_cpu_ns(pid: int) -> int:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])

    async def run(url: str) -> None:
        _, log = in_time_order(visit_times(random.Random(20250303), PER_DAY, START.date()),
                               seed=20250303, events=events)
        mine = [e for e in log if e.service == MODELS[model]]
        # The collector settled as ``serve()`` settles it (the log made here frozen): else
        # its full collections of the log's objects land in whichever step allocates when
        # they come, prepare or apply, a third of a tree's figure in some runs.
        del log
        gc.collect()
        gc.freeze()
        conn = await asyncpg.connect(url)
        pid = conn.get_server_pid()
        await make_tables(conn, model, READ_MODEL.ddl)
        inline = ahead = 0.0
        backend = on_cpu_ns(pid)
        for i in range(0, len(mine), 500):
            batch = mine[i:i + 500]
            started = time.process_time()
            prepared = prepare(batch) if prepare is not None else None
            ahead += time.process_time() - started
            async with conn.transaction():
                started = time.process_time()
                if prepare is not None:
                    await handler.apply(conn, batch, prepared)  # type: ignore[attr-defined]
                else:
                    await handler.apply(conn, batch)  # type: ignore[attr-defined]
                inline += time.process_time() - started
        backend = on_cpu_ns(pid) - backend
        if digest:
            h = hashlib.sha256()
            for table in sorted({*READ_MODEL.keys, *ALSO.get(model, ())}):
                cols = [r["attname"] for r in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attname", table)
                    if r["attname"] not in READ_MODEL.volatile]
                for row in sorted(repr(tuple(r)) for r in await conn.fetch(
                        f"SELECT {', '.join(cols)} FROM {table}")):
                    h.update(row.encode())
            print(h.hexdigest())
        else:
            print(f"{len(mine)} events: prepare {ahead * 1e6 / len(mine):.2f} us an event,"
                  f" PostgreSQL {backend / 1e3 / len(mine):.2f}; in apply"
                  f" {inline * 1e6 / len(mine):.2f}")
        await conn.close()

    folder = Path(tempfile.mkdtemp(prefix="apply-paired-"))
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()
        asyncio.run(run(pg.url))
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _run(tree: Path, *argv: str) -> str:
    return subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "apply_paired.py"), "--child", *argv],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, nargs="?", help="the tree to compare with")
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--postgres", action="store_true",
                        help="pair PostgreSQL's CPU an event instead (a handler whose cost "
                             "is its statements)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.model, args.events, args.digest)
        return
    if args.other is None:
        parser.error("give the tree to compare with")
    sys.path.insert(0, str(ROOT))
    from benchmarks.pairing import alternate

    other = args.other.resolve()
    # The other tree runs this file as it is here: it may not have it.
    (other / "benchmarks" / "apply_paired.py").write_bytes(Path(__file__).read_bytes())
    argv = ("--model", args.model, "--events", str(args.events))
    digests = {tree: _run(tree, *argv, "--digest") for tree in (other, ROOT)}
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the trees leave other rows: {digests}")
    print(f"same rows in both trees ({digests[ROOT][:12]})", flush=True)

    def figure(tree: Path) -> float:
        line = _run(tree, *argv)
        print(f"  {tree}: {line}", file=sys.stderr, flush=True)
        return float(line.split()[-4 if args.postgres else -1].rstrip(";"))

    alternate(other, ROOT, args.pairs, figure, "of PostgreSQL's CPU an event" if args.postgres
              else "of the process's CPU in apply an event")


if __name__ == "__main__":
    main()
