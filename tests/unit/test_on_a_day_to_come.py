"""A rule's follow-up planned on a day gone is due on the first working morning to come, or
lapsed when its day is long over (``FollowUps.on_a_day_to_come``): at the calendar's edges
the plans are what the rule always gave (its day's end, then the morning to come), and a
lapsed plan needs no morning of a year the calendar does not cover (a moved one is still
refused for it: its rule parked, never due on a morning guessed)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from services.followup.application import FollowUps, Plan
from services.followup.domain import Reason, end_of_due_day, first_morning_to_come
from shared.kernel.calendar import Basis, CalendarOutOfRange, DueRule, WorkingCalendar
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAPSE_DAYS = Settings.model_fields["followup_lapse_after_days"].default


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def rules_at(calendar: WorkingCalendar, now: datetime) -> SimpleNamespace:
    """What ``on_a_day_to_come`` reads of the follow-up service: its calendar, clock and
    lapse."""
    return SimpleNamespace(calendar=lambda _center: calendar,
                           clock=SimpleNamespace(now=lambda: now),
                           settings=SimpleNamespace(followup_lapse_after_days=LAPSE_DAYS))


def plan(due_at: datetime, *, basis: Basis = Basis.OFFICIAL) -> Plan:
    return Plan(follow_up_id=uuid.uuid4(), center_id="SH-PD-HUAMU", case_id=uuid.uuid4(),
                reason=Reason.POST_RESOLUTION_CHECK, resident_id=uuid.uuid4(), due_at=due_at,
                assigned_clerk="clerk-017", assigned_team=None, source="intake:CaseResolved",
                basis=basis, due_rule=DueRule("on_or_after", due_at.date(), 3))


def as_the_rule_reads(calendar: WorkingCalendar, p: Plan, now: datetime) -> Plan:
    """The rule, step by step as it reads: the morning to come first, then whether the
    day is long gone."""
    if end_of_due_day(calendar, p.due_at) > now:
        return p
    floor = first_morning_to_come(calendar, now)
    if end_of_due_day(calendar, p.due_at) < now - timedelta(days=LAPSE_DAYS):
        return replace(p, lapsed=True)
    assert p.due_rule is not None
    rule = replace(p.due_rule, not_before=max(floor, p.due_rule.not_before or floor))
    basis = (Basis.PROVISIONAL if Basis.PROVISIONAL in (p.basis, calendar.basis_of(floor))
             else Basis.OFFICIAL)
    return replace(p, due_at=floor, due_rule=rule, basis=basis)


NOWS = [
    at(2026, 12, 20, 10, 0),   # a Sunday: the morning to come is Monday's
    at(2026, 12, 21, 17, 59),  # a Monday, a minute before closing
    at(2026, 12, 31, 23, 30),  # New Year's Eve in Shanghai: the morning is 2027's
    at(2027, 2, 10, 9, 0),     # the provisional Spring Festival of 2027
    at(2028, 2, 29, 9, 0),     # a leap day
]
AGO = [timedelta(days=-3), timedelta(hours=2), timedelta(hours=20), timedelta(days=3),
       timedelta(days=LAPSE_DAYS), timedelta(days=LAPSE_DAYS + 2), timedelta(days=200)]


@pytest.mark.parametrize("now", NOWS, ids=str)
def test_a_plan_on_a_day_gone_is_due_on_the_morning_to_come_or_lapsed(now: datetime) -> None:
    calendar = WorkingCalendar(SHANGHAI)
    rules = rules_at(calendar, now)
    for ago in AGO:
        for basis in Basis:
            p = plan(now - ago, basis=basis)
            made = FollowUps.on_a_day_to_come(rules, p)  # type: ignore[arg-type]
            assert made == as_the_rule_reads(calendar, p, now), (ago, basis)


def test_a_check_lapsed_long_ago_needs_no_morning_past_the_calendar() -> None:
    # 23:30 on the last New Year's Eve the calendar covers: the next working morning is in a
    # year it does not. A check due in October has lapsed: it is recorded as planned and
    # lapsed, never parked for a morning it is not due on.
    calendar = WorkingCalendar(SHANGHAI, provisional_years=0)
    last = calendar.last_year
    now = at(last, 12, 31, 23, 30)
    with pytest.raises(CalendarOutOfRange):
        first_morning_to_come(calendar, now)
    made = FollowUps.on_a_day_to_come(rules_at(calendar, now),  # type: ignore[arg-type]
                                      plan(at(last, 10, 15, 9, 0)))
    assert made.lapsed and made.due_at == at(last, 10, 15, 9, 0)
    # A reminder due that morning is moved, and its morning is in no year the calendar
    # knows: refused (its rule parked), never due on a morning guessed, at the last
    # millisecond of the year or on the first day after it.
    for moment in (now, at(last, 12, 31, 23, 59, 59, 999000), at(last + 1, 1, 1, 0, 0)):
        with pytest.raises(CalendarOutOfRange):
            FollowUps.on_a_day_to_come(rules_at(calendar, moment),  # type: ignore[arg-type]
                                       plan(at(last, 12, 31, 9, 0)))
