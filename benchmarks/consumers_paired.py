"""One consumer of ``consumers.py``, in two source trees, paired: the CPU an event its drain
cost this process (the consumer, its handler and the group commit's writer thread), as
``consumers.py`` prints it.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/consumers_paired.py /tmp/base [--pairs 4] \\
        [--only followup-rules] [--events 20000]

Each run is a whole ``consumers.py --only <consumer>`` in a process of its own, with this
checkout's virtualenv and the tree's code (``PYTHONPATH``), on servers of its own; the trees
alternate, and so does which goes first (``pairing.alternate``). The ratio to raw fetch + ack
and the appends' ratio of each run are printed to stderr beside it: on a shared host they
follow the load more than the code, the CPU an event does not. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

THIS = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(?P<consumer>[\w-]+): (?!raw)\w+ .*CPU (?P<cpu>[\d.]+) us/event", re.M)


def run(tree: Path, only: str, events: int) -> float:
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "consumers.py"), "--only", only,
         "--events", str(events)],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True)
    for m in LINE.finditer(out.stdout):
        if m["consumer"] == only:
            line = out.stdout[m.start():out.stdout.index("\n", m.start())]
            print(f"  {tree}: {line}", file=sys.stderr, flush=True)
            return float(m["cpu"])
    raise SystemExit(f"no line of {only} in:\n{out.stdout}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the tree to compare with (e.g. main's)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--only", default="followup-rules")
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    sys.path.insert(0, str(THIS))
    from benchmarks.pairing import alternate

    alternate(args.other.resolve(), THIS, args.pairs,
              lambda tree: run(tree, args.only, args.events), "of CPU an event")


if __name__ == "__main__":
    main()
