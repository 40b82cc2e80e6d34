"""Working days for services that need only "n working days after" (feedback's deadlines).

A thin port over the one working-day calendar, ``shared/calendar.py``, with its default
office hours and the package's statutory holidays; a year it does not know raises
``CalendarOutOfRange`` rather than guessing.
"""

from __future__ import annotations

from datetime import date

from shared.calendar import WorkingCalendar

_CALENDAR = WorkingCalendar()


def is_working_day(day: date) -> bool:
    return _CALENDAR.is_working_day(day)


def add_working_days(start: date, n: int) -> date:
    """The working day ``r`` with exactly ``n`` working days in ``[start, r)``."""
    return _CALENDAR.add_working_days(start, n)
