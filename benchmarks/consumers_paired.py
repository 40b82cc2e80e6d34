"""One consumer of ``consumers.py``, in two source trees, paired: the CPU an event its drain
cost this process (the consumer, its handler and the group commit's writer thread), as
``consumers.py`` prints it.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/consumers_paired.py /tmp/base [--pairs 4] \\
        [--only followup-rules] [--events 20000] [--postgres] [--batch 4]

Each run is a whole ``consumers.py --only <consumer>`` in a process of its own, with this
checkout's virtualenv and the tree's code (``PYTHONPATH``), on servers of its own; the trees
alternate, and so does which goes first (``pairing.alternate``). The ratio to raw fetch + ack
and the appends' ratio of each run are printed to stderr beside it: on a shared host they
follow the load more than the code, the CPU an event does not. PostgreSQL's CPU an event
of the same runs is printed after the pairs (``--postgres`` pairs it instead: a handler
whose cost is its statements). Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

THIS = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(?P<consumer>[\w-]+): (?!raw)\w+ .*CPU (?P<cpu>[\d.]+) us/event"
                  r"; PostgreSQL (?P<pg>[\d.]+)", re.M)
#: PostgreSQL's CPU an event of each run, by tree (``--postgres`` pairs these instead).
POSTGRES: dict[Path, list[float]] = {}


def run(tree: Path, only: str, events: int, postgres: bool = False, batch: int = 0) -> float:
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "consumers.py"), "--only", only,
         "--events", str(events)],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin",
                       **({"CONSUMER_BATCH": str(batch)} if batch else {})},
        check=True, capture_output=True, text=True)
    for m in LINE.finditer(out.stdout):
        if m["consumer"] == only:
            line = out.stdout[m.start():out.stdout.index("\n", m.start())]
            print(f"  {tree}: {line}", file=sys.stderr, flush=True)
            POSTGRES.setdefault(tree, []).append(float(m["pg"]))
            return float(m["pg"] if postgres else m["cpu"])
    raise SystemExit(f"no line of {only} in:\n{out.stdout}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the tree to compare with (e.g. main's)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--only", default="followup-rules")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true",
                        help="pair PostgreSQL's CPU an event during the drain, not this "
                             "process's (where a consumer's handler spends its statements)")
    parser.add_argument("--batch", type=int, default=0, help=(
        "CONSUMER_BATCH for both trees' runs: small batches, as a middle rate gives them "
        "(what a batch's own statements cost shows); default the settings' 500"))
    args = parser.parse_args()
    sys.path.insert(0, str(THIS))
    from benchmarks.pairing import alternate

    other = args.other.resolve()
    alternate(other, THIS, args.pairs,
              lambda tree: run(tree, args.only, args.events, args.postgres, args.batch),
              "of PostgreSQL's CPU an event" if args.postgres else "of CPU an event")
    if not args.postgres:
        theirs, ours = POSTGRES.get(other, []), POSTGRES.get(THIS, [])
        lower = sum(t < o for o, t in zip(theirs, ours, strict=True))
        print(f"PostgreSQL's CPU an event, the same runs: other {theirs}, this {ours}; this "
              f"lower in {lower} of {len(ours)}")


if __name__ == "__main__":
    main()
