"""The periods of a recurring obligation: a first due day moved by whole cadence months (the
same day of the month, or the month's last day). Pure arithmetic on the Gregorian calendar;
when a period is *missed* depends on working days, which follow-up's rules decide."""

from __future__ import annotations

import calendar as gregorian
from datetime import date

#: Months between two periods of each ``Cadence``.
CADENCE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


def add_months(first: date, months: int) -> date:
    """``first`` moved by whole months, on the same day of the month or the month's last day."""
    month0 = first.month - 1 + months
    year, month = first.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(first.day, gregorian.monthrange(year, month)[1]))


def next_period_on_or_after(first: date, cadence: str, day: date) -> date:
    """The first period of ``first``'s series due on ``day`` or later (``first`` itself when it
    is not past): what a resident is told to do next, whenever the obligation was declared."""
    months = CADENCE_MONTHS[cadence]
    # Whole years first, so a series begun long ago is not walked a month at a time.
    index = max(0, ((day.year - first.year) * 12 + day.month - first.month) // months - 1)
    while (due := add_months(first, index * months)) < day:
        index += 1
    return due
