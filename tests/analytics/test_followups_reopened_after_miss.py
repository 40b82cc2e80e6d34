"""A follow-up its clerk let go missed, moved by a colleague (or a supervisor) to a new day, is
open again (scheduled, in the clerk's worklist): its clerk may push it to tomorrow every day,
never done, never missed again. It was in no figure that a closed month keeps: the on-time
rate counts a miss on the day of its *latest* due moment, which the pushes carry into the
next month at every month's end, and ``followups_open_past_due`` left out every follow-up
ever missed. Counted there now, on the working day the move kept, alike in the feedback
service's projection (live and rebuilt), its figures query and the analysts' report; one
missed again, completed or only tried (an unanswered call leaves it missed) is not. Across
20 December 2026, New Year's Eve at 23:30 in Shanghai and into 2027."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.feedback.figures.queries import SCANS
from shared.analytics.export import export
from shared.analytics.figures import compute
from shared.analytics.replay import Replay
from shared.settings import Settings
from tests.analytics.support import (
    HUAMU,
    SHANGHAI,
    Aggregate,
    CaseStory,
    at,
    follow_up,
    month_of_march_stories,
    publish,
)
from tests.analytics.test_followups_open_past_due import FRIDAY, due, push
from tests.feedback.totals_check import assert_totals_are_the_scans

START, END = date(2026, 12, 1), date(2027, 1, 31)
NAME = "followups_open_past_due"
D21 = date(2026, 12, 21)


def missed(a: Aggregate) -> None:
    """Due Friday 18 December at 18:00, found due then, missed at Monday's closing."""
    due(a, FRIDAY)
    a.add("FollowUpMissed", at("2026-12-21", 18), due_at=FRIDAY.isoformat(),
          escalate_at=at("2026-12-23", 9).isoformat())


def followups(story: CaseStory) -> list[dict[str, Any]]:
    """- ``reopened``: missed, moved by a colleague (the day kept: 21 December), then pushed
      by its clerk every evening, on New Year's Eve at 23:30 to Monday 4 January 2027, and
      on the 4th to the 6th: open past its day since 22 December;
    - ``again``: missed, a supervisor moves it to the 23rd, missed again: counted missed;
    - ``done``: missed, moved, done late on the 23rd: completed;
    - ``tried``: missed, an unanswered call recorded on it (it stays missed)."""
    reopened, again, done, tried = (follow_up(story, at("2026-12-17", 10), FRIDAY)
                                    for _ in range(4))
    for a in (reopened, again, done, tried):
        missed(a)
    push(reopened, at("2026-12-22", 9), at("2026-12-23", 10), on_time_by="2026-12-21",
         actor="clerk-018")
    for day, to in (("2026-12-23", "2026-12-24"), ("2026-12-24", "2026-12-25")):
        push(reopened, at(day, 9), at(to, 10), on_time_by="2026-12-21")
    push(reopened, at("2026-12-31", 23, 30), at("2027-01-04", 10), on_time_by="2026-12-21")
    push(reopened, at("2027-01-04", 9), at("2027-01-06", 10), on_time_by="2026-12-21")

    push(again, at("2026-12-22", 9), at("2026-12-23", 10), on_time_by=None,
         actor="supervisor-01")
    due(again, at("2026-12-23", 10))
    again.add("FollowUpMissed", at("2026-12-23", 18), due_at=at("2026-12-23", 10).isoformat(),
              escalate_at=at("2026-12-25", 9).isoformat())

    push(done, at("2026-12-22", 9), at("2026-12-23", 10), on_time_by="2026-12-21",
         actor="clerk-018")
    done.add("FollowUpCompleted", at("2026-12-23", 11), outcome="done", channel="phone",
             due_by="2026-12-21")

    tried.add("FollowUpRescheduled", at("2026-12-22", 10), actor="clerk-018",
              due_at=FRIDAY.isoformat(), assigned_clerk="clerk-017", assigned_team=None,
              reason="unreachable: 1", cause="unreachable", stays="missed")
    return [e for a in (reopened, again, done, tried) for e in a.events]


#: as_of -> the open ones past their day, by the day counted on (service, report)
EXPECTED: dict[date, dict[date, int]] = {
    date(2026, 12, 20): {},  # Sunday: not even due yet
    date(2026, 12, 31): {D21: 1},
    date(2027, 1, 5): {D21: 1},
}


async def test_a_missed_follow_up_moved_then_pushed_every_day_counts_open_past_its_day(
        settings: Settings, tmp_path: Path) -> None:
    [story] = [s for s in month_of_march_stories() if s.center == HUAMU][:1]
    await publish(settings, [story], followups(story))
    root = tmp_path / "export"
    await export(settings, root)

    from services.feedback import figures as feedback

    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        async def project(schema: str, one_at_a_time: bool) -> None:
            await conn.execute(f'CREATE SCHEMA "{settings.schema_prefix}{schema}"')
            await conn.execute(f'SET LOCAL search_path TO "{settings.schema_prefix}{schema}"')
            for statement in feedback.DDL:
                await conn.execute(statement)
            projection = feedback.FiguresProjection(SHANGHAI)
            async with Replay(settings) as replay:
                events = [e async for batch in replay for e in batch.events]
            for batch in ([[e] for e in events] if one_at_a_time else [events]):
                await projection.apply(conn, batch)

        async def kept() -> tuple[list[Any], list[Any]]:
            rows = await conn.fetch("SELECT * FROM fig_followups ORDER BY follow_up_id")
            days = await conn.fetch("SELECT * FROM fig_day_totals ORDER BY day, center_id")
            return [dict(r) for r in rows], [dict(r) for r in days]

        await project("reopened_rebuilt", one_at_a_time=False)
        rebuilt = await kept()
        await project("reopened_live", one_at_a_time=True)
        assert await kept() == rebuilt  # rebuild == live

        for as_of, by_day in EXPECTED.items():
            total = sum(by_day.values())
            query = feedback.FigureQuery(period="day", date_from=START, date_to=END,
                                         as_of=as_of, group_by=())
            theirs = {r["period_start"]: r[NAME] for r in await feedback.compute(conn, query)
                      if r[NAME]}
            assert theirs == by_day, as_of
            query = feedback.FigureQuery(period="all", date_from=START, date_to=END,
                                         as_of=as_of, group_by=("center_id",))
            rows = await feedback.compute(conn, query)
            assert [r[NAME] for r in rows if r[NAME]] == ([total] if total else []), as_of
            assert rows == await feedback.compute(conn, query, SCANS)
            await assert_totals_are_the_scans(conn, as_of)

            ours = compute(root, START, END, tz="Asia/Shanghai", center=HUAMU,
                           as_of=datetime.combine(as_of, datetime.max.time(), SHANGHAI))
            assert ours.total.counts[NAME] == total, as_of
            assert {r.key: r.counts[NAME] for r in ours.by_day if r.counts[NAME]} == by_day
    finally:
        await tx.rollback()
        await conn.close()
