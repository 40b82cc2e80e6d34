"""The rectification deadline counts working days exactly as the follow-up calendar does."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import WorkingCalendar
from shared.workdays import add_working_days

CALENDAR = WorkingCalendar()


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2005, 1, 1), date(2025, 12, 1)), st.integers(0, 30))
def test_same_deadline_as_the_follow_up_calendar(start: date, n: int) -> None:
    assert add_working_days(start, n) == CALENDAR.add_working_days(start, n)


def test_fifteen_working_days_jump_the_national_day_week() -> None:
    # From Wednesday 30 September 2026: 1-7 October are holidays, Saturday 10 October is a
    # make-up working day: 8, 9, 10, 12-16, 19-23, 26, 27 October.
    assert add_working_days(date(2026, 9, 30), 15) == date(2026, 10, 27)
    assert add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 8)
    assert add_working_days(date(2026, 9, 30), 0) == date(2026, 9, 30)
    assert date(2026, 10, 27) - date(2026, 9, 30) == timedelta(days=27)
