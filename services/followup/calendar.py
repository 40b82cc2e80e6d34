"""Working days of the center: China's statutory holidays and make-up working days.

The State Council publishes each year's holiday schedule (放假安排) late in the year before; the
``chinese_calendar`` package carries those schedules. A day is a *working day* when the package
says people work on it: Monday to Friday unless a statutory holiday, plus the adjusted make-up
days (调休上班), which may fall on a Saturday or a Sunday.

Only the years the installed package knows are covered (``covered_years()``; 2004-2026 with
chinese_calendar 1.11.0). Any day outside them raises ``CalendarOutOfRange``: the calendar never
guesses. Upgrade the package when a new year's schedule is published.

Counting rules (``s`` is the start day, ``d`` a deadline day; a datetime stands for its calendar
day in the center's time zone; "working day k" is the k-th working day in the covered years):

* ``working_days_between(a, b)``: the number of working days ``x`` with ``a <= x < b`` (half open,
  like ``range``); negative when ``b < a``.
* ``add_working_days(s, n)``: the (n+1)-th working day on or after ``s``. So ``n = 0`` gives ``s``
  itself if it is a working day, else the next working day; ``n = 1`` on a Friday gives the next
  Monday. Equivalently: the working day ``r`` with ``working_days_between(s, r) == n``. A start on
  a non-working day (a weekend home visit) counts as received on the next working day.
* ``subtract_working_days(d, n)``: the mirror image, the (n+1)-th working day on or before ``d``.
  For a working day ``d`` it undoes ``add_working_days``.
* ``next_working_morning(at)``: the first office opening at or after ``at``.
* ``due_at(s, n)``: office opening on ``add_working_days(s, n)``, so the clerk has the whole day.

No I/O: the package's tables are read once per process and kept as a sorted list of day numbers,
so every operation is a bisection, whatever ``n``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "CENTER_TZ",
    "CalendarOutOfRange",
    "OfficeHours",
    "WorkingCalendar",
    "covered_years",
]

CENTER_TZ = ZoneInfo("Asia/Shanghai")


class CalendarOutOfRange(ValueError):
    """A day falls in a year whose statutory holiday schedule is not known."""

    def __init__(self, year: int, first_year: int, last_year: int) -> None:
        self.year = year
        self.first_year = first_year
        self.last_year = last_year
        super().__init__(
            f"no statutory holiday schedule for year {year}: the working-day calendar covers "
            f"{first_year}-{last_year} (chinese_calendar {chinese_calendar.__version__}); "
            "upgrade the chinese-calendar package once that year's schedule is published"
        )


class OfficeHours(BaseModel):
    """When the counter is open on a working day, as wall-clock times in the center's zone.

    An optional lunch break closes the counter between ``lunch_start`` and ``lunch_end``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    open: time = time(9, 0)
    close: time = time(17, 0)
    lunch_start: time | None = None
    lunch_end: time | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OfficeHours:
        stamps = [self.open, self.close, self.lunch_start, self.lunch_end]
        if any(t is not None and t.tzinfo is not None for t in stamps):
            raise ValueError("office hours are wall-clock times: give them without a tzinfo")
        if not self.open < self.close:
            raise ValueError(f"office opens at {self.open} but closes at {self.close}")
        if (self.lunch_start is None) != (self.lunch_end is None):
            raise ValueError("give both lunch_start and lunch_end, or neither")
        if (
            self.lunch_start is not None
            and self.lunch_end is not None
            and not (self.open < self.lunch_start < self.lunch_end < self.close)
        ):
            raise ValueError(
                f"lunch break {self.lunch_start}-{self.lunch_end} must lie inside office hours "
                f"{self.open}-{self.close}"
            )
        return self

    def is_open_at(self, moment: time) -> bool:
        """Whether the counter is open at this wall-clock time (close and lunch are exclusive)."""
        if not self.open <= moment < self.close:
            return False
        if self.lunch_start is not None and self.lunch_end is not None:
            return not self.lunch_start <= moment < self.lunch_end
        return True


@dataclass(frozen=True, slots=True)
class _Table:
    first_year: int
    last_year: int
    working: tuple[int, ...]  # proleptic ordinals of every working day, ascending
    working_set: frozenset[int]


@cache
def _table() -> _Table:
    """All working days of the years the installed chinese_calendar covers."""
    years = {day.year for day in chinese_calendar.constants.holidays}
    first_year, last_year = min(years), max(years)
    day, end = date(first_year, 1, 1), date(last_year, 12, 31)
    working: list[int] = []
    while day <= end:
        if chinese_calendar.is_workday(day):
            working.append(day.toordinal())
        day += timedelta(days=1)
    return _Table(first_year, last_year, tuple(working), frozenset(working))


def covered_years() -> tuple[int, int]:
    """First and last year (inclusive) whose holiday schedule the calendar knows."""
    table = _table()
    return table.first_year, table.last_year


class WorkingCalendar:
    """Working days and office hours of one center, in its time zone."""

    def __init__(
        self, tz: ZoneInfo | str = CENTER_TZ, office_hours: OfficeHours | None = None
    ) -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.office_hours = office_hours if office_hours is not None else OfficeHours()
        self._table = _table()

    def __repr__(self) -> str:
        hours = self.office_hours
        return f"WorkingCalendar(tz={self.tz.key!r}, open={hours.open}, close={hours.close})"

    @property
    def first_year(self) -> int:
        return self._table.first_year

    @property
    def last_year(self) -> int:
        return self._table.last_year

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date | datetime) -> bool:
        """Whether the counter works on that day (make-up Saturdays and Sundays included)."""
        return self._ordinal(day) in self._table.working_set

    def add_working_days(self, start: date | datetime, n: int) -> date:
        """The (n+1)-th working day on or after ``start``'s day; see the module docstring."""
        index = bisect_left(self._table.working, self._ordinal(start)) + _count(n)
        return self._working_day_at(index)

    def subtract_working_days(self, day: date | datetime, n: int) -> date:
        """The (n+1)-th working day on or before ``day``; the inverse of ``add_working_days``."""
        index = bisect_right(self._table.working, self._ordinal(day)) - 1 - _count(n)
        return self._working_day_at(index)

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days ``x`` with ``a <= x < b``; negative when ``b`` is before ``a``."""
        working = self._table.working
        return bisect_left(working, self._ordinal(b)) - bisect_left(working, self._ordinal(a))

    # -- moments ----------------------------------------------------------------------------

    def opening_on(self, day: date) -> datetime:
        """Office opening on that day, as an aware datetime in the center's zone."""
        return datetime.combine(day, self.office_hours.open, tzinfo=self.tz)

    def next_working_morning(self, at: datetime) -> datetime:
        """The first office opening at or after ``at``.

        Before (or exactly at) opening on a working day that is the same morning; otherwise the
        opening of the next working day strictly after ``at``'s day in the center's zone.
        """
        local = self._local(at)
        day = local.date()
        ordinal = self._ordinal(day)
        if ordinal in self._table.working_set and local.time() <= self.office_hours.open:
            return self.opening_on(day)
        return self.opening_on(self._working_day_at(bisect_right(self._table.working, ordinal)))

    def due_at(self, start: date | datetime, n_working_days: int) -> datetime:
        """Office opening on ``add_working_days(start, n_working_days)``."""
        return self.opening_on(self.add_working_days(start, n_working_days))

    def is_open(self, at: datetime) -> bool:
        """Whether the counter is open at that moment (working day and office hours)."""
        local = self._local(at)
        return self.is_working_day(local.date()) and self.office_hours.is_open_at(local.time())

    # -- helpers ----------------------------------------------------------------------------

    def _local(self, at: datetime) -> datetime:
        if not isinstance(at, datetime):
            raise TypeError(f"expected an aware datetime, got {type(at).__name__}: {at!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise TypeError(
                f"naive datetime {at.isoformat()}: give a timezone-aware datetime "
                f"(e.g. with tzinfo=ZoneInfo({self.tz.key!r}))"
            )
        return at.astimezone(self.tz)

    def _ordinal(self, day: date | datetime) -> int:
        if isinstance(day, datetime):
            day = self._local(day).date()
        elif not isinstance(day, date):
            raise TypeError(f"expected a date or an aware datetime, got {type(day).__name__}")
        table = self._table
        if not table.first_year <= day.year <= table.last_year:
            raise CalendarOutOfRange(day.year, table.first_year, table.last_year)
        return day.toordinal()

    def _working_day_at(self, index: int) -> date:
        table = self._table
        if index < 0:
            raise CalendarOutOfRange(table.first_year - 1, table.first_year, table.last_year)
        if index >= len(table.working):
            raise CalendarOutOfRange(table.last_year + 1, table.first_year, table.last_year)
        return date.fromordinal(table.working[index])


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number of working days must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"a number of working days must be >= 0, got {n}")
    return n
