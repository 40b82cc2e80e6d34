"""What feedback's intake follower's appends cost the writer: a batch's survey requests as one
command each (``Feedback.request_survey``, the follower before feed59) against one command
for the batch (``Feedback.request_surveys``), paired, in one process.

    .venv/bin/python benchmarks/survey_requests_paired.py [--pairs 6] [--batch 245] [--rounds 8]

On servers of its own, feedback's application as ``create_app`` builds it (``roles=api``:
store, group commit, tracing to a local sink as deployed), its clock at the resolutions' day.
A round is what one follower batch asks (``--batch`` resolutions, ~245 in ``consumers.py``'s
drain: a batch of 4 x CONSUMER_BATCH events, one resolution in ~7): queued at once, then
awaited (``answered``), as the follower does. Each pair runs ``--rounds`` rounds of each
form, alternating which goes first; this process's CPU (the loop and the writer thread) and
PostgreSQL's meanwhile, us a survey, with the load average. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    bench_settings,
    like_main,
    server_cpu_seconds,
    servers,
)
from benchmarks.consumers import lifespan
from benchmarks.synthetic import CENTERS, ITEMS
from services.feedback import main as feedback_main
from services.feedback.application import Feedback, ResolvedCase
from shared.eventstore.group_commit import answered
from shared.kernel.clock import ManualClock
from shared.settings import Settings

START = datetime(2025, 3, 3, 2, tzinfo=UTC)


def resolutions(n: int) -> list[ResolvedCase]:
    return [ResolvedCase(
        case_id=uuid.uuid4(), center_id=CENTERS[i % len(CENTERS)], counter_id="window-1",
        clerk_id="clerk-1", service_item=ITEMS[i % len(ITEMS)], intake_channel="counter",
        resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(), resolved_at=START,
        served_by=("clerk-1",)) for i in range(n)]


async def one_round(feedback: Feedback, batch: int, together: bool) -> None:
    cases = resolutions(batch)
    if together:
        await answered([feedback.request_surveys([(c, None, None) for c in cases])])
    else:
        await answered([feedback.request_survey(c) for c in cases])


async def measure(settings: Settings, pairs: int, batch: int, rounds: int) -> None:
    app = feedback_main.create_app(settings, clock=ManualClock(START))
    async with lifespan(app):
        feedback: Feedback = app.state.feedback

        async def timed(together: bool) -> tuple[float, float]:
            pg = server_cpu_seconds()[0]
            cpu = time.process_time()
            for _ in range(rounds):
                await one_round(feedback, batch, together)
            n = rounds * batch
            return ((time.process_time() - cpu) / n * 1e6,
                    (server_cpu_seconds()[0] - pg) / n * 1e6)

        await timed(False)  # warm both paths
        await timed(True)
        rows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for pair in range(pairs):
            for together in (False, True) if pair % 2 == 0 else (True, False):
                rows[together].append(await timed(together))
            each, one = rows[False][-1], rows[True][-1]
            print(f"pair {pair} (load {os.getloadavg()[0]:.2f}): one command each "
                  f"{each[0]:.1f} + PostgreSQL {each[1]:.1f} us a survey, one command a batch "
                  f"{one[0]:.1f} + {one[1]:.1f}", flush=True)
        for what, k in (("process", 0), ("PostgreSQL", 1)):
            a = [r[k] for r in rows[False]]
            b = [r[k] for r in rows[True]]
            lower = sum(y < x for x, y in zip(a, b, strict=True))
            print(f"medians, {what}: one command each {statistics.median(a):.1f}, one command "
                  f"a batch {statistics.median(b):.1f} us a survey "
                  f"({statistics.median(b) / statistics.median(a):.2f} x); "
                  f"one a batch lower in {lower} of {pairs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=245)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", roles={"api"})
        like_main(settings)  # logging as main.py's; start_runtime starts the tracing
        asyncio.run(measure(settings, args.pairs, args.batch, args.rounds))


if __name__ == "__main__":
    main()
