"""Working days for deadlines: China's statutory holidays and make-up working days.

A thin adapter over ``chinese_calendar`` with the same counting rule as the follow-up service's
``WorkingCalendar.add_working_days``: ``add_working_days(s, n)`` is the (n+1)-th working day on
or after ``s`` (a start on a non-working day counts from the next working day). A year the
package does not know raises ``ValueError`` rather than guessing.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise ValueError(f"no statutory holiday schedule for {day.year}: upgrade "
                         "chinese-calendar once that year's schedule is published") from exc


def add_working_days(start: date, n: int) -> date:
    """The working day ``r`` with exactly ``n`` working days in ``[start, r)``."""
    if n < 0:
        raise ValueError(f"a number of working days must be >= 0, got {n}")
    day = start
    while not is_working_day(day):
        day += timedelta(days=1)
    for _ in range(n):
        day += timedelta(days=1)
        while not is_working_day(day):
            day += timedelta(days=1)
    return day
