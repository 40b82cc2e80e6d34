"""The CPU of a ``survey.sent`` log line (feedback's workers write one a case, on the event
loop its follower, relay and views share), this tree and another paired.

    .venv/bin/python benchmarks/log_line_paired.py /tmp/base [--pairs 4] [--lines 2000]

Each run is a process of the tree's code (``pairing.child``) that writes ``--lines`` lines
the way ``LoggingSender.send`` does, through the shipped processors (``log_processors``:
contextvars, trace ids, level, timestamp, the scrubber, JSON) into a buffer: new ids, link
and expiry each line, the channel, purpose, center and counter drawn from a few, as at a
center's counters. It prints the process's CPU microseconds a line, the best of
``--rounds``; the trees alternate, which goes first too (``pairing.alternate``).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(lines: int, rounds: int) -> float:
    import structlog

    from shared.runtime.logs import log_processors

    out = io.StringIO()
    logger = structlog.wrap_logger(structlog.PrintLogger(out), processors=log_processors())
    counters = [f"c{center:03d}-w{window}" for center in range(8) for window in range(1, 7)]
    best = float("inf")
    for round_ in range(rounds):
        started = time.process_time()
        for i in range(lines):
            survey_id = uuid.uuid4()
            logger.info("survey.sent", channel=("sms", "tablet")[i % 2], purpose="resolution",
                        survey_id=str(survey_id), case_id=str(uuid.uuid4()),
                        center_id=counters[i % len(counters)][:4],
                        counter_id=counters[(i * 7 + round_) % len(counters)],
                        resident_id=str(uuid.uuid4()),
                        link=f"https://center.example/s/{survey_id}?t=abcdef…",
                        expires_at=(datetime.now(UTC) + timedelta(days=7)).isoformat())
        best = min(best, (time.process_time() - started) / lines * 1e6)
        out.seek(0)
        out.truncate()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("other", type=Path, nargs="?")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(f"{one_run(args.lines, args.rounds):.2f}")
        return
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.pairing import alternate, child

    if args.other is None:
        parser.error("the other tree is needed")
    alternate(args.other, ROOT, args.pairs,
              lambda tree: child(Path(__file__), tree, "--lines", str(args.lines),
                                 "--rounds", str(args.rounds)),
              "a survey.sent line")


if __name__ == "__main__":
    main()
