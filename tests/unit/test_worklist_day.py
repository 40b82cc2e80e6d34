"""The worklist's overdue / due today and the scheduler's missed are one rule (``end_of_due_day``):
a follow-up is overdue exactly when the office has closed on the working day it is to be done,
over weekends, statutory holidays, make-up Saturdays and the provisional New Year of 2027."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import end_of_due_day, work_day
from shared.kernel.calendar import CalendarOutOfRange, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar(SHANGHAI)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def hours(first: datetime, last: datetime, step: int = 90) -> list[datetime]:
    found, moment = [], first
    while moment <= last:
        found.append(moment)
        moment += timedelta(minutes=step)
    return found


SPANS = [
    (at(2026, 3, 5), at(2026, 3, 10)),      # an ordinary weekend
    (at(2026, 9, 29), at(2026, 10, 12)),    # National Day, make-up Saturday 10 October
    (at(2026, 12, 30), at(2027, 1, 6)),     # New Year 2027 from the provisional calendar
]


@pytest.mark.parametrize(("first", "last"), SPANS)
def test_the_worklist_calls_overdue_exactly_what_the_scheduler_marks_missed(
        first: datetime, last: datetime) -> None:
    moments = hours(first, last)
    for now in moments:
        day = work_day(CALENDAR, now)
        assert day.today == now.date()
        for due_at in moments:
            deadline = end_of_due_day(CALENDAR, due_at)
            assert (due_at < day.overdue_before) == (deadline <= now), (due_at, now)
            due_today = day.overdue_before <= due_at < day.due_today_before
            assert due_today == (deadline > now and deadline.date() == now.date()), \
                (due_at, now)


def test_a_friday_evening_follow_up_is_mondays_not_overdue_on_the_weekend() -> None:
    friday_evening = at(2026, 3, 6, 18)
    for now in (at(2026, 3, 7, 10), at(2026, 3, 8, 23, 59)):
        day = work_day(CALENDAR, now)
        assert friday_evening >= day.overdue_before
        assert day.due_today_before == day.overdue_before, "nothing is due on a day off"
    monday = work_day(CALENDAR, at(2026, 3, 9, 10))
    assert monday.overdue_before <= friday_evening < monday.due_today_before
    assert friday_evening < work_day(CALENDAR, at(2026, 3, 9, 17)).overdue_before


def test_the_day_before_national_day_is_overdue_through_the_holiday_and_the_make_up_saturday(
        ) -> None:
    due = at(2026, 9, 30, 10)
    assert due < work_day(CALENDAR, at(2026, 10, 3, 10)).overdue_before
    holiday_evening = at(2026, 9, 30, 18)  # after closing: the next working day, 8 October
    assert holiday_evening >= work_day(CALENDAR, at(2026, 10, 7, 23)).overdue_before
    saturday = work_day(CALENDAR, at(2026, 10, 10, 10))  # 调休: a working Saturday
    assert saturday.due_today_before == CALENDAR.closing_on(saturday.today)
    assert saturday.overdue_before == CALENDAR.closing_on(at(2026, 10, 9).date())


def test_new_years_eve_at_half_past_eleven_and_half_past_midnight() -> None:
    eve = work_day(CALENDAR, datetime(2026, 12, 31, 15, 30, tzinfo=ZoneInfo("UTC")))
    assert eve.today.isoformat() == "2026-12-31"
    assert eve.overdue_before == CALENDAR.closing_on(eve.today)
    new_year = work_day(CALENDAR, datetime(2026, 12, 31, 16, 30, tzinfo=ZoneInfo("UTC")))
    assert new_year.today.isoformat() == "2027-01-01"
    assert new_year.overdue_before == eve.overdue_before == new_year.due_today_before


def test_a_day_past_the_calendar_is_out_of_range_not_a_guess() -> None:
    with pytest.raises(CalendarOutOfRange):
        work_day(CALENDAR, at(CALENDAR.last_year + 1, 1, 5, 10))
