"""An obligation's grace counted on a provisional year, then on the published schedule; and the
first watched period whatever the grace. Server-free: the rules alone.

The 2027 schedules here are illustrative test data, NOT the State Council's notice: the shape
of one (New Year's Day off; the Spring Festival 2027-02-06..02-12 off, Sundays around it
worked), so the grace of a period due early in February runs over days the law alone and the
notice count differently (the law: Feb 5-8 off; the notice: Feb 5 worked, Feb 6-14 off)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import (
    DueRule,
    FollowUp,
    Obligation,
    Reason,
    add_months,
    first_watched_period,
    obligation_missed_at,
)
from shared.kernel.calendar import Basis, CalendarOutOfRange, WorkingCalendar
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTICE_2027 = {"2027": {"source": "illustrative test data",
                        "holidays": ["2027-01-01", "2027-02-06..2027-02-12"],
                        "workdays": ["2027-01-31", "2027-02-21"]}}
# The same notice corrected after publication: Wednesday 6 January off as well.
CORRECTED_2027 = {"2027": {**NOTICE_2027["2027"],
                           "holidays": ["2027-01-01", "2027-01-06", "2027-02-06..2027-02-12"]}}
PROVISIONAL = WorkingCalendar()  # chinese-calendar 1.11.0 knows 2026: 2027 by the law alone
OFFICIAL = WorkingCalendar(holidays=parse_holidays(json.dumps(NOTICE_2027)))
CORRECTED = WorkingCalendar(holidays=parse_holidays(json.dumps(CORRECTED_2027)))
GRACE = 3


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


DECEMBER_20 = at(2026, 12, 20, 10)
NEW_YEARS_EVE_LATE = at(2026, 12, 31, 23, 30)  # 15:30 UTC, still the 31st in Shanghai


def meta(key: str | None = None) -> dict[str, Any]:
    return {"actor": "system:calendar", "occurred_at": DECEMBER_20, "causation_id": key,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def declared(first_due_on: date, calendar: WorkingCalendar = PROVISIONAL,
             when: datetime = DECEMBER_20) -> Obligation:
    period, due, missed_at, basis = first_watched_period(calendar, first_due_on, "monthly",
                                                         GRACE, when)
    return Obligation(id=uuid.uuid4(), obligation_id=uuid.uuid4(), resident_id=uuid.uuid4(),
                      cadence="monthly", next_due_on=due, missed_at=missed_at,
                      assigned_clerk="clerk-017", service_item="MI-MEDICAL-REIMBURSEMENT",
                      meta=meta("watch"), basis=basis.value, first_due_on=first_due_on,
                      period=period)


def test_a_february_period_declared_on_december_20_is_missed_when_the_notice_says_not_the_law(
        ) -> None:
    # Due Wednesday 3 February. The law alone: Feb 3, 4, then 5-8 off, 9, 10: missed at the
    # close of Wednesday 10 February. The notice: Feb 3, 4, 5, then 6-14 off, Monday 15.
    o = declared(date(2027, 2, 3))
    assert (o.next_due_on, o.missed_at, o.basis) == (
        date(2027, 2, 3), at(2027, 2, 10, 17), Basis.PROVISIONAL.value)
    assert o.replan(OFFICIAL, GRACE, DECEMBER_20, meta("calendar:a")) is True
    assert (o.next_due_on, o.missed_at, o.basis) == (
        date(2027, 2, 3), at(2027, 2, 15, 17), Basis.OFFICIAL.value)
    [event] = [e for e in o.collect_events() if type(e).__name__ == "ObligationReplanned"]
    assert event.previous_missed_at == at(2027, 2, 10, 17)
    assert event.cause == "calendar_published"
    # On the 10th at closing nothing is missed any more; on the 15th it is.
    assert o.miss(at(2027, 2, 10, 17, 30), OFFICIAL, GRACE, meta()) == []
    [(period, _, when)] = o.miss(at(2027, 2, 15, 17), OFFICIAL, GRACE, meta())
    assert (period, when) == (date(2027, 2, 3), at(2027, 2, 15, 17))


def test_the_same_schedule_again_moves_nothing_and_a_replay_of_its_key_records_nothing() -> None:
    o = declared(date(2027, 2, 3))
    assert o.replan(OFFICIAL, GRACE, DECEMBER_20, meta("calendar:a")) is True
    version = o.version
    assert o.replan(OFFICIAL, GRACE, DECEMBER_20, meta("calendar:b")) is False
    assert o.version == version


def test_a_january_period_declared_on_december_20_keeps_its_moment_the_notice_agrees() -> None:
    # Due Friday 1 January (off either way): Jan 4-7, missed at the close of Thursday 7th.
    o = declared(date(2027, 1, 1))
    assert (o.next_due_on, o.missed_at) == (date(2027, 1, 1), at(2027, 1, 7, 17))
    # The notice agrees: the moment stays, confirmed once on the published year (it said
    # 'provisional' for ever before), and the same schedule again records nothing.
    assert o.replan(OFFICIAL, GRACE, DECEMBER_20, meta("calendar:a")) is True
    assert (o.missed_at, o.basis) == (at(2027, 1, 7, 17), Basis.OFFICIAL.value)
    [event] = [e for e in o.collect_events() if type(e).__name__ == "ObligationReplanned"]
    assert event.previous_missed_at == event.missed_at == at(2027, 1, 7, 17)
    assert o.replan(OFFICIAL, GRACE, NEW_YEARS_EVE_LATE, meta("calendar:a2")) is False
    # The notice corrected (Jan 6 off too): one more working day of grace, Friday 8th.
    assert o.replan(CORRECTED, GRACE, DECEMBER_20, meta("calendar:b")) is True
    assert (o.missed_at, o.basis) == (at(2027, 1, 8, 17), Basis.OFFICIAL.value)


def test_re_planned_at_new_years_eve_late_a_grace_the_notice_lengthens_is_not_missed_yet(
        ) -> None:
    # Due Monday 28 December 2026 with a grace of 3: 28, 29, 30, 31: missed at the close of
    # the 31st (all official: 2026 is the package's). A notice whose New Year reaches back
    # (the 2019 pattern) makes Thursday 31 December a day off: the grace ends Monday 4
    # January. Re-planned at 23:30 on the 31st (15:30 UTC), the old moment already past and
    # not yet recorded by the scheduler: the period is not missed, it is the 4th's.
    o = declared(date(2026, 12, 28), when=at(2026, 12, 21, 10))
    assert (o.missed_at, o.basis) == (at(2026, 12, 31, 17), Basis.OFFICIAL.value)
    reaching = WorkingCalendar(holidays=parse_holidays(json.dumps(
        {"2027": {"source": "illustrative", "holidays": ["2026-12-31..2027-01-01"],
                  "workdays": []}})))
    assert o.replan(reaching, GRACE, NEW_YEARS_EVE_LATE, meta("calendar:c")) is True
    assert (o.missed_at, o.basis) == (at(2027, 1, 4, 17), Basis.OFFICIAL.value)
    assert o.miss(NEW_YEARS_EVE_LATE, reaching, GRACE, meta()) == []


def test_a_grace_the_new_days_end_already_is_missed_at_the_re_planning_not_before() -> None:
    # Due Thursday 24 December: 24, 25, 28, 29: missed at the close of Tuesday 29th. The
    # notice makes Sunday 27 December a working day: the grace ended on the 28th. Re-planned
    # at noon on the 29th: missed then (the next tick), never at a moment already past.
    o = declared(date(2026, 12, 24), when=at(2026, 12, 21, 10))
    assert o.missed_at == at(2026, 12, 29, 17)
    back = WorkingCalendar(holidays=parse_holidays(json.dumps(
        {"2027": {"source": "illustrative", "holidays": ["2027-01-01"],
                  "workdays": ["2026-12-27"]}})))
    assert o.replan(back, GRACE, at(2026, 12, 29, 12), meta("calendar:d")) is True
    assert o.missed_at == at(2026, 12, 29, 12)
    # Once the period is past its moment either way, re-planning leaves it to the scheduler.
    o = declared(date(2026, 12, 24), when=at(2026, 12, 21, 10))
    assert o.replan(back, GRACE, at(2026, 12, 29, 18), meta("calendar:e")) is False


def test_a_period_still_in_a_long_grace_when_declared_is_watched_whatever_the_grace() -> None:
    # A grace of 60 working days (the setting has no upper bound): declared Sunday 3 May
    # 2026, the period due 1 February is still in its grace (Spring Festival and Labour Day
    # inside it), so it is the first watched; 1 January's grace is over.
    when = at(2026, 5, 3, 10)
    index, due, missed_at, _ = first_watched_period(PROVISIONAL, date(2026, 1, 1), "monthly",
                                                    60, when)
    assert (index, due) == (1, date(2026, 2, 1))
    assert missed_at > when
    assert obligation_missed_at(PROVISIONAL, date(2026, 1, 1), 60)[0] <= when
    # Every declaration day of a year, graces from 0 to 120: the first watched period is the
    # first whose grace is not over.
    for grace in (0, 3, 45, 61, 90, 120):
        for day in range(1, 365, 7):
            when = datetime.combine(date.fromordinal(date(2026, 1, 1).toordinal() + day),
                                    datetime.min.time(), SHANGHAI).replace(hour=10)
            index, _, _, _ = first_watched_period(PROVISIONAL, date(2025, 3, 31), "monthly",
                                                  grace, when)
            truth = 0
            while obligation_missed_at(PROVISIONAL, add_months(date(2025, 3, 31), truth),
                                       grace)[0] <= when:
                truth += 1
            assert index == truth, (grace, when)



def test_a_correction_names_the_official_days_it_changed_and_a_new_year_names_none() -> None:
    # The notice corrected: Wednesday 6 January off as well.
    assert CORRECTED.changed_official_days(OFFICIAL) == (date(2027, 1, 6), date(2027, 1, 6))
    assert CORRECTED.changed_official_days(
        (OFFICIAL.official_until, OFFICIAL.official_working_days())) == (
        date(2027, 1, 6), date(2027, 1, 6))
    # A year published where it was provisional changes no day official on both: that is
    # re-planned by basis, not by days.
    assert OFFICIAL.changed_official_days(PROVISIONAL) is None
    # A notice reaching back into December 2026 (already official): those days are named.
    reaching = WorkingCalendar(holidays=parse_holidays(json.dumps(
        {"2027": {"source": "illustrative", "holidays": ["2026-12-31..2027-01-01"],
                  "workdays": ["2026-12-27"]}})))
    assert reaching.changed_official_days(PROVISIONAL) == (date(2026, 12, 27),
                                                           date(2026, 12, 31))


def test_missed_since_a_day_past_the_calendar_waits_for_the_calendar() -> None:
    # The clock past the calendar's last year (an ops team that has not added the schedule):
    # a declaration with a 'missed since' day then cannot count back the grace. It raised
    # ValueError (the series walked back to year 0), which no rule parks: the obligation was
    # dead-lettered instead of waiting for the year like any other date beyond the calendar.
    calendar = WorkingCalendar(provisional_years=1)
    beyond = calendar.last_year + 1
    with pytest.raises(CalendarOutOfRange):
        first_watched_period(calendar, date(beyond, 2, 1), "monthly", GRACE,
                             at(beyond, 1, 5, 10), back=True)


def reminder(rule: DueRule, calendar: WorkingCalendar, when: datetime) -> FollowUp:
    planned = calendar.plan(rule)
    return FollowUp(id=uuid.uuid4(), reason=Reason.DEADLINE_REMINDER.value,
                    resident_id=uuid.uuid4(), due_at=planned.at, assigned_clerk="clerk-017",
                    assigned_team=None, priority="normal", service_item=None, source="test",
                    source_id=None, meta=meta("plan") | {"occurred_at": when},
                    basis=planned.basis.value, due_rule=rule.as_dict())


def test_a_follow_up_moves_with_official_days_even_when_it_still_lands_in_a_provisional_year(
        ) -> None:
    """Counted on the official days and into a year still provisional, a follow-up never
    moved: a corrected 29 December 2027 (off) left it due on Monday 3 January 2028, a day
    early; and a 2027 taken out of the file left February's 'official' on the draft's days.
    It moves, and says on what basis, as an obligation's grace does."""
    december_27 = at(2027, 12, 27, 10)
    rule = DueRule("on_or_after", date(2027, 12, 27), 5, not_before=december_27)
    late_december = reminder(rule, OFFICIAL, december_27)
    assert late_december.due_at == at(2028, 1, 3, 9)
    corrected = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        **NOTICE_2027["2027"], "holidays": [*NOTICE_2027["2027"]["holidays"], "2027-12-29"]}})))
    assert late_december.replan(corrected, december_27, meta("calendar:b@1")) is True
    assert (late_december.due_at, late_december.basis) == (at(2028, 1, 4, 9),
                                                           Basis.PROVISIONAL.value)

    february = reminder(DueRule("on_or_after", date(2027, 2, 3), 3, not_before=DECEMBER_20),
                        OFFICIAL, DECEMBER_20)
    assert (february.due_at, february.basis) == (at(2027, 2, 15, 9), Basis.OFFICIAL.value)
    assert february.replan(PROVISIONAL, DECEMBER_20, meta("calendar:c@1")) is True
    assert (february.due_at, february.basis) == (at(2027, 2, 10, 9), Basis.PROVISIONAL.value)
    assert february.replan(PROVISIONAL, DECEMBER_20, meta("calendar:c@2")) is False, "once"


@pytest.mark.parametrize("clock", [DECEMBER_20, NEW_YEARS_EVE_LATE])
def test_a_follow_up_whose_day_the_notice_keeps_is_confirmed_official_once(
        clock: datetime) -> None:
    """Three working days before Friday 19 March 2027: Tuesday 16th, by the law and by the
    notice alike. Re-planning moved nothing, so it recorded nothing, and the clerk and the
    resident read 'provisional' on it for ever. Now it is confirmed once, the moment as it
    was; the same schedule again (another key: a second reload) records nothing."""
    march = reminder(DueRule("on_or_before", date(2027, 3, 19), 3, not_before=clock),
                     PROVISIONAL, clock)
    assert (march.due_at, march.basis) == (at(2027, 3, 16, 9), Basis.PROVISIONAL.value)
    assert march.replan(OFFICIAL, clock, meta("calendar:a@1")) is True
    assert (march.due_at, march.basis, march.status) == (at(2027, 3, 16, 9),
                                                         Basis.OFFICIAL.value, "scheduled")
    [event] = [e for e in march.collect_events() if type(e).__name__ == "FollowUpRescheduled"]
    assert event.previous_due_at == event.due_at == at(2027, 3, 16, 9)
    assert (event.cause, event.basis) == ("calendar_published", "official")
    assert event.assigned_clerk == "clerk-017" and event.due_rule == march.due_rule
    assert march.replan(OFFICIAL, clock, meta("calendar:a@2")) is False
    # A rectification's follow-up confirmed with its deadline: the same, once.
    assert march.follow_deadline(at(2027, 3, 16, 9), Basis.PROVISIONAL, clock,
                                 meta("revised:1")) is True
    assert march.basis == Basis.PROVISIONAL.value and march.due_at == at(2027, 3, 16, 9)
    assert march.follow_deadline(at(2027, 3, 16, 9), Basis.PROVISIONAL, clock,
                                 meta("revised:2")) is False
