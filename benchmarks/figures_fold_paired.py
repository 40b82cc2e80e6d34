"""The figures read model's fold (``FiguresProjection._fold`` and the batch's counts), in two
source trees, paired: the Python a rebuild of ``feedback.figures`` spends on each event before
its rows go to PostgreSQL, without PostgreSQL.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/figures_fold_paired.py /tmp/base [--pairs 8]

Each tree runs in a process of its own with this checkout's virtualenv and folds the same
synthetic year (``benchmarks.synthetic``, the log ``rebuild_all.py`` publishes; the events the
figures take, in batches of 1,000), the rows of earlier batches kept in memory as the staging
tables keep them (a connection that answers the fold's reads from them). Python's cyclic
collector is paused, as a rebuild pauses it (``collections_paused``). ``time.process_time``
is read around each batch's fold, the best of ``--rounds`` printed in us an event. First both
trees' outputs are compared (a digest of every batch's rows, notes, marks and counts): a
tree that folds differently stops the run. The trees alternate, and so does which goes
first. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class _Staging:
    """The fold's reads (``SELECT ... WHERE key = ANY($1)``) answered from the rows earlier
    batches left; every other statement does nothing."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {}

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        if " = ANY(" not in sql:
            return []
        rows = self.tables.setdefault(sql.split(" FROM ")[1].split()[0], {})
        return [dict(rows[k]) for k in args[0] if k in rows]

    async def execute(self, *args: Any) -> str:
        return "OK"

    def keep(self, folded: list[tuple[Any, list[dict[str, Any]], set[Any]]]) -> None:
        for table, changed, _ in folded:
            rows = self.tables.setdefault(table.name, {})
            for row in changed:
                rows[row[table.key]] = dict(row)


def _child(events: int, rounds: int, digest: bool) -> None:
    import asyncio
    import gc
    import hashlib
    from zoneinfo import ZoneInfo

    from benchmarks.synthetic import in_visit_order, one_year, visits_for
    from services.feedback.figures import projection, totals
    from shared.contracts.registry import REGISTRY

    seed = 2025 * 10_000 + 101
    log = [REGISTRY.current(e) for e in in_visit_order(
        one_year(2025, visits_for(events), seed=seed), seed=seed)]
    taken = [e for e in log if projection.FiguresProjection._route(e)]
    batches = [taken[s:s + 1000] for s in range(0, len(taken), 1000)]

    async def one_round() -> float:
        gc.collect()
        fold = projection.FiguresProjection(ZoneInfo("Asia/Shanghai"))
        staging, spent, h = _Staging(), 0.0, hashlib.sha256()
        with_gc = gc.isenabled()
        gc.disable()
        try:
            for batch in batches:
                fold.counted = totals.Counted()
                started = time.process_time()
                folded = await fold._fold(staging, batch, lock=False)
                fold._counted(folded)
                spent += time.process_time() - started
                staging.keep(folded)
                if digest:
                    h.update(repr(([(t.name, rows, sorted(stored)) for t, rows, stored in folded],
                                   fold.late, fold.touched, fold.marks,
                                   fold.counted.changed())).encode())
        finally:
            if with_gc:
                gc.enable()
        if digest:
            print(f"{len(taken)} events, {len(batches)} batches: {h.hexdigest()}")
        return spent / len(taken) * 1e6

    if digest:
        asyncio.run(one_round())
        return
    print(f"{min(asyncio.run(one_round()) for _ in range(rounds)):.2f}")


def _digest(tree: Path, events: int) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "figures_fold_paired.py"), "--child",
         "--digest", "--events", str(events)],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", nargs="?", type=Path, help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--events", type=int, default=100_000, help="events in the log (about)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds a process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.events, args.rounds, args.digest)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.pairing import alternate, child

    other, this = _digest(args.other, args.events), _digest(ROOT, args.events)
    print(f"other: {other}\nthis:  {this}", flush=True)
    if other != this:
        raise SystemExit("the two trees fold the log differently: not compared")
    alternate(args.other, ROOT, args.pairs,
              lambda tree: child(ROOT / "benchmarks" / "figures_fold_paired.py", tree,
                                 "--events", str(args.events), "--rounds", str(args.rounds)),
              "an event")


if __name__ == "__main__":
    main()
