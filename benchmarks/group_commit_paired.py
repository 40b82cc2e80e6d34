"""Group commit's loop half and hand-offs, in two source trees, paired: the CPU a write costs
on the event loop and in passing it to and from the writer thread, with the writer's own work
(running the commands, the store) left out.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/group_commit_paired.py /tmp/base [--pairs 6] [--due http]

Each tree runs in a process of its own with this checkout's virtualenv, on uvloop as the
services run: a ``GroupCommitter`` whose ``_attempt`` answers each command at once (no
PostgreSQL, no aggregate) after a sleep of ``--store-ms`` a batch (the store's round trips,
no CPU: the GIL is free, as while psycopg waits), and ``--callers`` tasks that each submit
a write and await its answer, again and again, as wrk's connections do against ``POST
/cases``. ``--due http`` gives
each write its ``write_due`` as the front door does (its own due time); ``--due worker`` leaves
it out, as a consumer's writes. ``time.process_time`` (both threads) is read around each round,
the best of ``--rounds`` printed in us a write. The trees alternate, and so does which goes
first; the child prints the mean batch size to stderr. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def _child(writes: int, callers: int, rounds: int, due: str, store_ms: float) -> None:
    import asyncio
    import gc
    import uuid

    import uvloop

    from shared.eventstore.group_commit import GroupCommitter, Written, write_due

    class AnswersAtOnce(GroupCommitter):
        def _attempt(self, batch):  # type: ignore[no-untyped-def]
            time.sleep(store_ms / 1000)
            for item in batch:
                item.outcome = Written(item.ids[0], 1, 1)

    app = SimpleNamespace(recorder=SimpleNamespace(
        datastore=SimpleNamespace(schema="bench"), events_table_name="stored_events"))

    def command(unit):  # type: ignore[no-untyped-def]
        raise AssertionError("not run: _attempt answers")

    async def main() -> None:
        batches: list[int] = []
        committer = AnswersAtOnce(app, on_batch=batches.append)  # type: ignore[arg-type]
        committer.start()
        ids = [uuid.uuid4() for _ in range(callers)]

        async def caller(n: int, each: int) -> None:
            target = [ids[n]]
            for _ in range(each):
                if due == "http":
                    write_due.set(time.monotonic() + 5.0)
                await committer.submit(command, target)

        async def one_round() -> float:
            started = time.process_time()
            await asyncio.gather(*(caller(n, writes // callers) for n in range(callers)))
            return (time.process_time() - started) / (writes // callers * callers) * 1e6

        await one_round()
        gc.collect()
        gc.freeze()  # as a started service does
        best = min([await one_round() for _ in range(rounds)])
        await committer.close()
        print(f"batch {statistics.mean(batches):.1f}", file=sys.stderr)
        print(f"{best:.2f}")

    uvloop.run(main())


def _run(tree: Path, args: argparse.Namespace) -> float:
    from benchmarks.pairing import child

    return child(ROOT / "benchmarks" / "group_commit_paired.py", tree,
                 "--writes", str(args.writes), "--callers", str(args.callers),
                 "--rounds", str(args.rounds), "--due", args.due,
                 "--store-ms", str(args.store_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", nargs="?", type=Path, help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--writes", type=int, default=20_000, help="writes a round")
    parser.add_argument("--callers", type=int, default=32, help="callers at once (wrk's 32)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds a process")
    parser.add_argument("--due", choices=["http", "worker"], default="http")
    parser.add_argument("--store-ms", type=float, default=2.0,
                        help="the writer's wait a batch (ms)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.writes, args.callers, args.rounds, args.due, args.store_ms)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.pairing import alternate

    alternate(args.other, ROOT, args.pairs, lambda tree: _run(tree, args), "a write")


if __name__ == "__main__":
    main()
