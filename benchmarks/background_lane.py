"""The CPU of a round of the survey scheduler's sends in group commit's background lane against
the live lane, paired (feedback58): the lane writes a round ``background_batch`` (32) at a time,
where the live lane took it up to ``max_batch`` (256) at once, as every write went before.

    .venv/bin/python benchmarks/background_lane.py [--pairs 6] [--sends 500]

On servers of its own, one application (a stand-in aggregate, one event a command: the
lightest command, so a transaction's own cost weighs the most) and one ``GroupCommitter`` as
the services build them. Each round submits ``--sends`` commands at once, one per aggregate
(a scheduler's round of ``SurveySent``), under ``group_commit.background`` or not, the two
alternating and which goes first changing every pair; it reports this process's CPU (the
loop and the writer thread) and PostgreSQL's meanwhile, us a command, with the load average.
The live lane is exactly main's path (one queue), so the pair is old against new. Not part
of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

from benchmarks.common import server_cpu_seconds, servers  # noqa: E402
from shared.eventstore.application import build_application  # noqa: E402
from shared.eventstore.group_commit import GroupCommitter, Unit, background  # noqa: E402
from shared.settings import Settings  # noqa: E402


class Tally(Aggregate):
    @event("Counted")
    def count(self) -> None:
        pass


class Tallies(Application):
    pass


async def measure(settings: Settings, pairs: int, sends: int, chunk: int | None) -> None:
    app = await asyncio.to_thread(build_application, Tallies, settings, "feedback")
    committer = GroupCommitter(app, **({} if chunk is None else {"background_batch": chunk}))
    committer.start()
    batches: list[int] = []
    committer._on_batch = batches.append
    try:
        async def created() -> list[UUID]:
            def create(unit: Unit) -> Aggregate:
                tally = Tally()
                unit.add(tally)
                return tally
            return [w.aggregate_id for w in await asyncio.gather(
                *(committer.submit(create, []) for _ in range(sends)))]

        async def one_round(lane: bool) -> tuple[float, float, float]:
            ids = await created()  # not measured

            def count(unit: Unit, tally_id: UUID) -> Aggregate:
                tally = unit.get(tally_id, "")
                tally.count()
                return tally
            batches.clear()
            pg, _ = server_cpu_seconds()
            cpu = time.process_time()
            token = background.set(lane)
            try:
                await asyncio.gather(*(committer.submit(lambda u, i=i: count(u, i), [i])
                                       for i in ids))
            finally:
                background.reset(token)
            cpu = time.process_time() - cpu
            pg = server_cpu_seconds()[0] - pg
            return cpu / sends * 1e6, pg / sends * 1e6, statistics.mean(batches)

        await one_round(False)  # warm
        await one_round(True)
        rows: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for pair in range(pairs):
            for lane in (False, True) if pair % 2 == 0 else (True, False):
                rows[lane].append(await one_round(lane))
            load = os.getloadavg()[0]
            live, back = rows[False][-1], rows[True][-1]
            print(f"pair {pair} (load {load:.2f}): live lane {live[0]:.0f} + PostgreSQL "
                  f"{live[1]:.0f} us (batches of {live[2]:.0f}), background lane {back[0]:.0f}"
                  f" + {back[1]:.0f} us (batches of {back[2]:.0f})", flush=True)
        total = {lane: [r[0] + r[1] for r in rs] for lane, rs in rows.items()}
        lower = sum(b < a for a, b in zip(total[False], total[True], strict=True))
        m_live, m_back = statistics.median(total[False]), statistics.median(total[True])
        print(f"medians, process + PostgreSQL: live {m_live:.0f}, background {m_back:.0f} us a "
              f"send ({m_back / m_live:.2f} x); background lower in {lower} of {pairs}")
    finally:
        await committer.close()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--sends", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=None,
                        help="the lane's background_batch (default: the committer's)")
    args = parser.parse_args()
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url)
        asyncio.run(measure(settings, args.pairs, args.sends, args.chunk))


if __name__ == "__main__":
    main()
