"""A follow-up its clerk pushes every day, never completed, cancelled or missed, counts in no
rate (the on-time rate judges completions): ``followups_open_past_due`` shows it, alike in
the feedback service's projection (its Python counts per day and their SQL), its figures
query (counts per day and scans over the rows) and the analysts' report over an export;
applied one event at a time (live) and all at once (rebuild) alike. Around the calendar
traps: Sunday 20 December 2026, New Year's Eve at 23:30 in Shanghai, 2027."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.feedback.figures.queries import SCANS
from shared.analytics.export import export
from shared.analytics.figures import compute
from shared.analytics.replay import Replay
from shared.readmodels.readmodel import make_tables
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
from tests.feedback.totals_check import assert_totals_are_the_scans

START, END = date(2026, 12, 1), date(2027, 1, 31)
NAME = "followups_open_past_due"


def push(a: Aggregate, when: datetime, to: datetime, *, on_time_by: str | None,
         cause: str = "staff", actor: str = "clerk-017") -> None:
    a.add("FollowUpRescheduled", when, actor=actor, due_at=to.isoformat(),
          assigned_clerk="clerk-017", assigned_team=None, reason="明天再打", cause=cause,
          on_time_by=on_time_by)


def due(a: Aggregate, moment: datetime) -> None:
    """The scheduler finds it due at ``moment``: missed at the closing of that day, or of
    the next working day (Friday 18:00's is Monday's)."""
    closing = at("2026-12-21", 17) if moment == FRIDAY else moment.replace(hour=17)
    a.add("FollowUpDue", moment, due_at=moment.isoformat(), overdue_at=closing.isoformat())


FRIDAY = at("2026-12-18", 18)


def followups(story: CaseStory) -> list[dict[str, Any]]:
    """Due Friday 18 December 2026 at 18:00 (its working day: Monday the 21st), found due then
    (``FollowUpDue``: missed at Monday's closing):
    - ``pushed``: its clerk pushes it every evening (kept 21 Dec), on New Year's Eve at 23:30
      to Monday 4 January 2027, then the 2027 schedule published re-plans it (keeps the day);
    - ``supervised``: pushed by its clerk, then (New Year's Eve, 23:30) a supervisor moves it
      to 6 January 2027 (a new day: judged on that);
    - ``old``: moved before on_time_by existed (none), never found due again (the scheduler
      down): judged on its due day, 23 December, as before;
    - ``done``, ``cancelled``, ``missed``: pushed too, but closed: counted elsewhere."""
    pushed, supervised, old, done, cancelled, missed = (
        follow_up(story, at("2026-12-17", 10), FRIDAY) for _ in range(6))
    for a in (pushed, supervised, old, done, cancelled, missed):
        due(a, FRIDAY)
    for day, to in (("2026-12-21", "2026-12-22"), ("2026-12-22", "2026-12-23"),
                    ("2026-12-23", "2026-12-24")):
        push(pushed, at(day, 17), at(to, 10), on_time_by="2026-12-21")
        due(pushed, at(to, 10))
    push(pushed, at("2026-12-31", 23, 30), at("2027-01-04", 10), on_time_by="2026-12-21")
    push(pushed, at("2027-01-02", 9), at("2027-01-05", 10), on_time_by=None,
         cause="calendar_published", actor="system:followup")
    due(pushed, at("2027-01-05", 10))

    push(supervised, at("2026-12-21", 17), at("2026-12-22", 10), on_time_by="2026-12-21")
    due(supervised, at("2026-12-22", 10))
    push(supervised, at("2026-12-31", 23, 30), at("2027-01-06", 10), on_time_by=None,
         actor="supervisor-01")
    due(supervised, at("2027-01-06", 10))

    push(old, at("2026-12-21", 17), at("2026-12-23", 10), on_time_by=None)

    push(done, at("2026-12-21", 17), at("2026-12-22", 10), on_time_by="2026-12-21")
    done.add("FollowUpCompleted", at("2026-12-22", 11), outcome="done", channel="phone",
             due_by="2026-12-21")
    push(cancelled, at("2026-12-21", 17), at("2026-12-22", 10), on_time_by="2026-12-21")
    cancelled.add("FollowUpCancelled", at("2026-12-22", 9), actor="clerk-017", reason="不用了")
    missed.add("FollowUpMissed", at("2026-12-21", 18), due_at=FRIDAY.isoformat(),
               escalate_at=at("2026-12-23", 9).isoformat())
    return [e for a in (pushed, supervised, old, done, cancelled, missed) for e in a.events]


D21, D23, J6 = date(2026, 12, 21), date(2026, 12, 23), date(2027, 1, 6)
#: as_of -> the open ones past their day, by the day they are counted on: the feedback
#: service's (every event known) and the report's (the events up to the end of as_of).
EXPECTED: dict[date, tuple[dict[date, int], dict[date, int]]] = {
    # Sunday: found due on Friday evening, its working day is Monday: not past it
    date(2026, 12, 20): ({}, {}),
    date(2026, 12, 21): ({}, {}),  # Monday: its own day, not past it
    # pushed (and, until the supervisor moved it, supervised); old is due the 23rd
    date(2026, 12, 22): ({D21: 1}, {D21: 2}),
    date(2026, 12, 31): ({D21: 1, D23: 1}, {D21: 1, D23: 1}),
    date(2027, 1, 4): ({D21: 1, D23: 1}, {D21: 1, D23: 1}),
    date(2027, 1, 7): ({D21: 1, D23: 1, J6: 1}, {D21: 1, D23: 1, J6: 1}),
}


@asynccontextmanager
async def projected(settings: Settings, tmp_path: Path, name: str,
                    events_of: Callable[[CaseStory], list[dict[str, Any]]],
                    ) -> AsyncIterator[tuple[asyncpg.Connection, Path]]:
    """A Huamu story and ``events_of`` it on the test's stream, exported (the analysts' report
    reads the export), and projected by the feedback service's figures projection all at
    once (a rebuild) and one at a time (live), each in a schema of its own: the same fact
    rows and day totals (rebuild == live). Yields a connection on the live schema (in a
    transaction rolled back after) and the export's folder."""
    [story] = [s for s in month_of_march_stories() if s.center == HUAMU][:1]
    await publish(settings, [story], events_of(story))
    root = tmp_path / "export"
    await export(settings, root)

    from services.feedback import figures as feedback

    async def project(schema: str, one_at_a_time: bool) -> None:
        await make_tables(conn, f"{settings.schema_prefix}{schema}", feedback.DDL, local=True)
        projection = feedback.FiguresProjection(SHANGHAI)
        async with Replay(settings) as replay:
            events = [e async for batch in replay for e in batch.events]
        for batch in ([[e] for e in events] if one_at_a_time else [events]):
            await projection.apply(conn, batch)

    async def kept() -> tuple[list[Any], list[Any]]:
        rows = await conn.fetch("SELECT * FROM fig_followups ORDER BY follow_up_id")
        days = await conn.fetch("SELECT * FROM fig_day_totals ORDER BY day, center_id")
        return [dict(r) for r in rows], [dict(r) for r in days]

    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        await project(f"{name}_rebuilt", one_at_a_time=False)
        rebuilt = await kept()
        await project(f"{name}_live", one_at_a_time=True)
        assert await kept() == rebuilt  # rebuild == live
        yield conn, root
    finally:
        await tx.rollback()
        await conn.close()


async def test_a_follow_up_pushed_every_day_counts_open_past_its_day_everywhere(
        settings: Settings, tmp_path: Path) -> None:
    from services.feedback import figures as feedback

    async with projected(settings, tmp_path, "open", followups) as (conn, root):

        for as_of, (by_day, reported) in EXPECTED.items():
            ours = compute(root, START, END, tz="Asia/Shanghai", center=HUAMU,
                           as_of=datetime.combine(as_of, datetime.max.time(), SHANGHAI))
            total = sum(reported.values())
            assert ours.total.counts[NAME] == total, as_of
            assert {r.key: r.counts[NAME] for r in ours.by_day if r.counts[NAME]} == reported
            assert [r.counts[NAME] for r in ours.by_item if r.counts[NAME]] == (
                [total] if total else []), as_of

            total = sum(by_day.values())
            for group_by in (("center_id",), ("service_item",), ("clerk_id",)):
                query = feedback.FigureQuery(period="all", date_from=START, date_to=END,
                                             as_of=as_of, group_by=group_by)
                rows = await feedback.compute(conn, query)
                assert [r[NAME] for r in rows if r[NAME]] == ([total] if total else []), (
                    as_of, group_by)
                assert rows == await feedback.compute(conn, query, SCANS)
            query = feedback.FigureQuery(period="day", date_from=START, date_to=END,
                                         as_of=as_of, group_by=())
            theirs = {r["period_start"]: r[NAME] for r in await feedback.compute(conn, query)
                      if r[NAME]}
            assert theirs == by_day, as_of
            await assert_totals_are_the_scans(conn, as_of)


def missed(a: Aggregate) -> None:
    """Due Friday 18 December at 18:00, found due then, missed at Monday's closing."""
    due(a, FRIDAY)
    a.add("FollowUpMissed", at("2026-12-21", 18), due_at=FRIDAY.isoformat(),
          escalate_at=at("2026-12-23", 9).isoformat())


def missed_and_moved(story: CaseStory) -> list[dict[str, Any]]:
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
REOPENED: dict[date, dict[date, int]] = {
    date(2026, 12, 20): {},  # Sunday: not even due yet
    date(2026, 12, 31): {D21: 1},
    date(2027, 1, 5): {D21: 1},
}


async def test_a_missed_follow_up_moved_then_pushed_every_day_counts_open_past_its_day(
        settings: Settings, tmp_path: Path) -> None:
    """A follow-up its clerk let go missed, moved by a colleague (or a supervisor) to a new day, is
    open again (scheduled, on the clerk's worklist): its clerk may push it to tomorrow every
    day, never done, never missed again. It was in no figure that a closed month keeps: the on-
    time rate counts a miss on the day of its *latest* due moment, which the pushes carry into
    the next month at every month's end, and ``followups_open_past_due`` left out every follow-
    up ever missed. Counted there now, on the working day the move kept, alike in the feedback
    service's projection (live and rebuilt), its figures query and the analysts' report; one
    missed again, completed or only tried (an unanswered call leaves it missed) is not. Across
    20 December 2026, New Year's Eve at 23:30 in Shanghai and into 2027."""
    from services.feedback import figures as feedback

    async with projected(settings, tmp_path, "reopened", missed_and_moved) as (conn, root):

        for as_of, by_day in REOPENED.items():
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


def missed_then_moved_on(story: CaseStory) -> list[dict[str, Any]]:
    """- ``slid``: due New Year's Eve at 10:00, missed at its closing; a colleague moves it at
      23:30 that night to Monday 4 January 2027 (the day kept: 31 December), its clerk on to
      the 6th (2027, a provisional year), done then;
    - ``far``: due Sunday 20 December (hand-set; its working day Monday the 21st), missed at
      Monday's closing; a supervisor moves it (the resident abroad) to 6 March 2028, a year
      the holiday package does not know: open again, not past its new day."""
    slid = follow_up(story, at("2026-12-28", 10), at("2026-12-31", 10))
    slid.add("FollowUpDue", at("2026-12-31", 10), due_at=at("2026-12-31", 10).isoformat(),
             overdue_at=at("2026-12-31", 17).isoformat())
    slid.add("FollowUpMissed", at("2026-12-31", 18), due_at=at("2026-12-31", 10).isoformat(),
             escalate_at=at("2027-01-05", 9).isoformat())
    push(slid, at("2026-12-31", 23, 30), at("2027-01-04", 10), on_time_by="2026-12-31",
         actor="clerk-018")
    push(slid, at("2027-01-04", 9), at("2027-01-06", 10), on_time_by="2026-12-31")
    slid.add("FollowUpCompleted", at("2027-01-06", 11), outcome="done", channel="phone",
             due_by="2026-12-31")

    sunday = at("2026-12-20", 10)
    far = follow_up(story, at("2026-12-17", 10), sunday)
    far.add("FollowUpDue", sunday, due_at=sunday.isoformat(),
            overdue_at=at("2026-12-21", 17).isoformat())
    far.add("FollowUpMissed", at("2026-12-21", 18), due_at=sunday.isoformat(),
            escalate_at=at("2026-12-23", 9).isoformat())
    push(far, at("2026-12-22", 9), at("2028-03-06", 10), on_time_by=None,
         actor="supervisor-01")
    return [e for a in (slid, far) for e in a.events]


async def test_a_missed_follow_up_moved_into_the_next_month_stays_missed_on_its_day(
        settings: Settings, tmp_path: Path) -> None:
    """The on-time rate counted a miss on the follow-up's *latest* due day: missed on New
    Year's Eve and moved into January, December lost its miss (a revision of the closed
    month, its on-time rate up) and January counted it. A miss counts on the due day it was
    missed on now, however the follow-up moves after, alike live and rebuilt, in the
    figures query and its day totals, and in the analysts' report over an export; the move
    still sets the day it is open by (2028: not past it)."""
    from services.feedback import figures as feedback

    d20, d31 = date(2026, 12, 20), date(2026, 12, 31)
    start, end, as_of = date(2026, 12, 1), date(2028, 3, 31), date(2027, 1, 7)
    async with projected(settings, tmp_path, "slid", missed_then_moved_on) as (conn, root):
        ours = compute(root, start, end, tz="Asia/Shanghai", center=HUAMU,
                       as_of=datetime.combine(as_of, datetime.max.time(), SHANGHAI))
        closed = {r.key: r.counts["followups_closed"] for r in ours.by_day
                  if r.counts["followups_closed"]}
        assert closed == {d20: 1, d31: 1}
        assert ours.total.counts["followups_on_time"] == 0
        assert ours.total.counts[NAME] == 0

        query = feedback.FigureQuery(period="day", date_from=start, date_to=end,
                                     as_of=as_of, group_by=())
        rows = await feedback.compute(conn, query)
        rates = {r["period_start"]: r["followups_on_time_rate"] for r in rows
                 if r["followups_on_time_rate"]["denominator"]}
        assert rates == {d: {"numerator": 0, "denominator": 1, "rate": 0.0}
                         for d in (d20, d31)}
        assert not any(r[NAME] for r in rows)
        assert rows == await feedback.compute(conn, query, SCANS)
        month = feedback.FigureQuery(period="month", date_from=start, date_to=end,
                                     as_of=as_of, group_by=())
        assert [r["followups_on_time_rate"]["denominator"]
                for r in await feedback.compute(conn, month)
                if r["followups_on_time_rate"]["denominator"]] == [2]  # December's
        await assert_totals_are_the_scans(conn, as_of)
