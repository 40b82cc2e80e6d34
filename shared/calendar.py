"""Working days of the center: China's statutory holidays and make-up working days.

The State Council publishes each year's holiday schedule (放假安排) late in the year before; the
``chinese_calendar`` package carries those schedules. A day is a *working day* when the package
says people work on it: Monday to Friday unless a statutory holiday, plus the adjusted make-up
days (调休上班), which may fall on a Saturday or a Sunday.

The years the installed package knows are covered (``covered_years()``; 2004-2026 with
chinese_calendar 1.11.0). A year the package does not know yet (the State Council publishes the
next year's schedule in November or December, before a package release) can be added explicitly
with a *holidays file* (``HolidaySchedule``, loaded by ``load_holidays``): JSON mapping a year to
its statutory days off and its make-up working days::

    {"2027": {"source": "国办发明电〔2026〕X号",
              "holidays": ["2027-01-01", "2027-02-05", ...],
              "workdays": ["2027-02-14", ...]}}

In a year of the file, a day is a working day when it is a make-up working day, or a Monday to
Friday that is not a holiday. The file is consulted only for years the package lacks (the
package wins for the years it has, so upgrading it makes the file's old years moot), and its
years must follow on from the package's without a gap. Any day outside the package's years and
the file's raises ``CalendarOutOfRange``: the calendar never guesses.

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
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError, model_validator

__all__ = [
    "CENTER_TZ",
    "CalendarOutOfRange",
    "HolidaySchedule",
    "HolidaysFileError",
    "OfficeHours",
    "WorkingCalendar",
    "YearSchedule",
    "covered_years",
    "load_holidays",
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
            f"{first_year}-{last_year} (chinese_calendar {chinese_calendar.__version__} and "
            "the holidays file, if any); upgrade the chinese-calendar package once that year's "
            "schedule is published, or add the year to the holidays file (settings "
            "holidays_file / center_holidays_files)"
        )


class HolidaysFileError(ValueError):
    """A holidays file that cannot be used as it is (named in the message)."""


class YearSchedule(BaseModel):
    """One year's statutory schedule: days off on weekdays, make-up working days on weekends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()
    source: str = ""

    def check(self, year: int) -> None:
        for day in (*self.holidays, *self.workdays):
            if day.year != year:
                raise HolidaysFileError(f"{day} is listed under year {year}")
        for day in self.workdays:
            if day.weekday() < 5:
                raise HolidaysFileError(
                    f"make-up working day {day} is a weekday; list only the Saturdays and "
                    "Sundays that are worked")
        both = set(self.holidays) & set(self.workdays)
        if both:
            raise HolidaysFileError(f"{min(both)} is listed as a holiday and a working day")


class HolidaySchedule(RootModel[dict[int, YearSchedule]]):
    """Years the chinese-calendar package does not cover yet, given explicitly."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _consistent(self) -> HolidaySchedule:
        for year, schedule in self.root.items():
            if not 1900 < year < 2200:
                raise ValueError(f"{year} is not a plausible year")
            schedule.check(year)
        return self

    def key(self) -> tuple[tuple[int, tuple[date, ...], tuple[date, ...]], ...]:
        """A hashable fingerprint, so every calendar with the same schedule shares one table."""
        return tuple(sorted((y, tuple(sorted(s.holidays)), tuple(sorted(s.workdays)))
                            for y, s in self.root.items()))


def load_holidays(path: str | Path) -> HolidaySchedule:
    """Read a holidays file; an invalid one fails loudly with the file named."""
    path = Path(path)
    try:
        return HolidaySchedule.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, HolidaysFileError) as exc:
        raise HolidaysFileError(f"holidays file {path}: {exc}") from exc


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


def _package_years() -> tuple[int, int]:
    years = {day.year for day in chinese_calendar.constants.holidays}
    return min(years), max(years)


@lru_cache(maxsize=16)
def _table(extra: tuple[tuple[int, tuple[date, ...], tuple[date, ...]], ...] = ()) -> _Table:
    """All working days of the package's years, and of the extra years the package lacks."""
    first_year, last_year = _package_years()
    added = {year: (frozenset(off), frozenset(on)) for year, off, on in extra
             if not first_year <= year <= last_year}
    for year in sorted(added):
        if year == last_year + 1:
            last_year = year
    for year in sorted(added, reverse=True):
        if year == first_year - 1:
            first_year = year
    gaps = sorted(y for y in added if not first_year <= y <= last_year)
    if gaps:
        raise HolidaysFileError(
            f"the holidays file gives {gaps[0]} but the years before it are not covered: its "
            f"years must follow on from {first_year}-{last_year} without a gap")
    day, end = date(first_year, 1, 1), date(last_year, 12, 31)
    working: list[int] = []
    while day <= end:
        if day.year in added:
            off, on = added[day.year]
            works = day in on or (day.weekday() < 5 and day not in off)
        else:
            works = chinese_calendar.is_workday(day)
        if works:
            working.append(day.toordinal())
        day += timedelta(days=1)
    return _Table(first_year, last_year, tuple(working), frozenset(working))


def covered_years() -> tuple[int, int]:
    """First and last year (inclusive) whose holiday schedule the installed package knows."""
    return _package_years()


class WorkingCalendar:
    """Working days and office hours of one center, in its time zone."""

    def __init__(
        self,
        tz: ZoneInfo | str = CENTER_TZ,
        office_hours: OfficeHours | None = None,
        holidays: HolidaySchedule | None = None,
    ) -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.office_hours = office_hours if office_hours is not None else OfficeHours()
        self._table = _table(holidays.key() if holidays is not None else ())

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

    def closing_on(self, day: date) -> datetime:
        """Office closing on that day, as an aware datetime in the center's zone."""
        return datetime.combine(day, self.office_hours.close, tzinfo=self.tz)

    def local_day(self, at: datetime) -> date:
        """The calendar day of a moment in the center's zone."""
        return self._local(at).date()

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
