"""Working days of the center: China's statutory holidays and make-up working days, every year.

A day is a *working day* when people work on it: Monday to Friday unless a day off, plus the
make-up working days (调休上班), which may fall on a Saturday or a Sunday. Each year of the
calendar has one of three sources:

* ``package``: the official schedule carried by the ``chinese_calendar`` package (2004-2026
  with chinese_calendar 1.11.0);
* ``file``: an official schedule added by hand from a holidays file (``shared.kernel.holidays``),
  for the years after the package's, the day the State Council publishes them; the package wins
  for its own years (but for the December days a file year's notice reaches back into), and the
  file's years must follow on from the package's without a gap;
* ``provisional``: for the ``provisional_years`` years after the last official one, the law
  alone (``shared.kernel.statutory``): weekends plus the statutory holidays, no make-up day assumed.

A date computed on a provisional year has ``Basis.PROVISIONAL`` (``basis_of``), every other
``Basis.OFFICIAL``; the events that record such a date say which, and when the official
schedule arrives the provisional dates still pending are worked out again (re-planning, see
docs/calendar.md). A day past the last provisional year raises ``CalendarOutOfRange`` naming the
covered range: the calendar never guesses beyond the law.

Counting rules (``s`` is the start day, ``d`` a deadline day; a datetime stands for its calendar
day in the center's time zone):

* ``working_days_between(a, b)``: the number of working days ``x`` with ``a <= x < b`` (half open,
  like ``range``); negative when ``b < a``.
* ``add_working_days(s, n)``: the (n+1)-th working day on or after ``s``. So ``n = 0`` gives ``s``
  itself if it is a working day, else the next working day; ``n = 1`` on a Friday gives the next
  Monday. Equivalently: the working day ``r`` with ``working_days_between(s, r) == n``. A start on
  a non-working day (a weekend home visit) counts as received on the next working day.
* ``deadline_day(received, n)``: the day a deadline of ``n`` working days falls on, for
  whatever the center received (a help task, a referral, a bad review's rectification, a
  case's due date): the n-th working day after the day of receipt, a receipt on a day off
  counting as made on the next working day (the 政务服务 rule). ``add_working_days`` under a
  name that says so: every working-day deadline is counted through it, so two of them raised
  on the same Sunday fall on the same day (until stop 51 a help task's fell a day earlier).
* ``subtract_working_days(d, n)``: the mirror image, the (n+1)-th working day on or before ``d``.
  For a working day ``d`` it undoes ``add_working_days``.
* ``next_working_morning(at)``: the first office opening at or after ``at``.
* ``start_of_day(d)``, ``next_day_start(at)``: the first moment of a center day, of the one after
  ``at``'s (its midnight in the center's zone, as a real moment).
* ``due_at(s, n)``: office opening on ``add_working_days(s, n)``, so the clerk has the whole day.
* ``plan(rule)``: a ``DueRule`` (how a due moment is derived) worked out, with its basis.

No I/O: the tables are built once per process and schedule and kept as a sorted list of day
numbers, so every operation is a bisection, whatever ``n``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, model_validator

from shared.contracts.vocabulary import Basis
from shared.kernel.errors import CommandError
from shared.kernel.holidays import HolidaySchedule, HolidaysFileError, YearSchedule, load_holidays
from shared.kernel.statutory import statutory_holidays

__all__ = [
    "CENTER_TZ",
    "Basis",
    "CalendarNotCovered",
    "CalendarOutOfRange",
    "DueRule",
    "HolidaySchedule",
    "HolidaysFileError",
    "OfficeHours",
    "Planned",
    "WorkingCalendar",
    "YearSchedule",
    "YearSource",
    "covered",
    "covered_years",
    "load_holidays",
]

CENTER_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_PROVISIONAL_YEARS = 5


class YearSource(StrEnum):
    PACKAGE = "package"
    FILE = "file"
    PROVISIONAL = "provisional"


class CalendarOutOfRange(ValueError):
    """A day falls outside every year the calendar answers (official or provisional)."""

    def __init__(self, year: int, first_year: int, last_year: int,
                 official_until: int | None = None) -> None:
        self.year = year
        self.first_year = first_year
        self.last_year = last_year
        self.official_until = official_until if official_until is not None else last_year
        provisional = (f"; {self.official_until + 1}-{last_year} provisionally, from the "
                       "statutory rules" if last_year > self.official_until else "")
        super().__init__(
            f"no working-day calendar for year {year}: the calendar covers {first_year}-"
            f"{last_year} (official schedules {first_year}-{self.official_until} from "
            f"chinese_calendar {chinese_calendar.__version__} and the holidays file, if any"
            f"{provisional}); add the next official year to the holidays file (settings "
            "holidays_file / center_holidays_files) or upgrade chinese-calendar, which moves "
            "the provisional range on, then `sixstep calendar reload`"
        )

    def details(self) -> dict[str, Any]:
        return {"year": self.year, "first_year": self.first_year, "last_year": self.last_year,
                "official_until": self.official_until}


class CalendarNotCovered(CommandError):
    """A write needs a day the working-day calendar does not cover: 422, never a guess."""

    status = 422
    code = "calendar_out_of_range"


def covered(action: Any) -> Any:
    """Run ``action()``; a day beyond the calendar becomes a 422 naming the covered range."""
    try:
        return action()
    except CalendarOutOfRange as exc:
        raise CalendarNotCovered(str(exc), **exc.details()) from exc


@dataclass(frozen=True)
class Planned:
    """A due moment worked out on the calendar, and the basis it rests on."""

    at: datetime
    basis: Basis


@dataclass(frozen=True)
class DueRule:
    """How a due moment is derived from the calendar, kept so it can be worked out again.

    Office opening on the ``working_days``-th working day on or after ``day``
    (``add_working_days``) or on or before it (``subtract_working_days``), and never before
    ``not_before``.
    """

    direction: Literal["on_or_after", "on_or_before"]
    day: date
    working_days: int = 0
    not_before: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "day": self.day,
                "working_days": self.working_days, "not_before": self.not_before}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DueRule:
        day = data["day"]
        not_before = data.get("not_before")
        return cls(direction=data["direction"],
                   day=date.fromisoformat(day) if isinstance(day, str) else day,
                   working_days=int(data.get("working_days", 0)),
                   not_before=(datetime.fromisoformat(not_before)
                               if isinstance(not_before, str) else not_before))


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
    official_until: int  # the last year with an official schedule
    file_years: frozenset[int]
    working: tuple[int, ...]  # proleptic ordinals of every working day, ascending
    working_set: frozenset[int]
    fingerprint: str  # of the official schedules: what re-planning is keyed on


def _package_years() -> tuple[int, int]:
    years = {day.year for day in chinese_calendar.constants.holidays}
    return min(years), max(years)


Extra = tuple[tuple[int, tuple[date, ...], tuple[date, ...]], ...]


@lru_cache(maxsize=16)
def _table(extra: Extra = (), provisional_years: int = DEFAULT_PROVISIONAL_YEARS) -> _Table:
    """All working days of the package's years, the file's years after them, and the
    provisional years after the last official one."""
    first_year, official_until = _package_years()
    added = {year: (frozenset(off), frozenset(on)) for year, off, on in extra
             if year > official_until}
    while official_until + 1 in added:
        official_until += 1
    # A notice's New Year reaching back into the December before its year (holidays file):
    # those days count as the notice says, whatever the package (released before it) said.
    reaching = {day: works for year, (off, on) in added.items() if year <= official_until
                for days, works in ((off, False), (on, True)) for day in days
                if day.year == year - 1}
    last_year = official_until + provisional_years
    day, end = date(first_year, 1, 1), date(last_year, 12, 31)
    working: list[int] = []
    statutory: dict[int, dict[date, str]] = {}
    while day <= end:
        if day in reaching:
            works = reaching[day]
        elif day.year in added:
            off, on = added[day.year]
            works = day in on or (day.weekday() < 5 and day not in off)
        elif day.year > official_until:
            law = statutory.get(day.year)
            if law is None:
                law = statutory[day.year] = statutory_holidays(day.year)
            works = day.weekday() < 5 and day not in law
        else:
            works = chinese_calendar.is_workday(day)
        if works:
            working.append(day.toordinal())
        day += timedelta(days=1)
    official = repr((chinese_calendar.__version__, first_year, official_until,
                     [entry for entry in extra if entry[0] in added]))
    return _Table(first_year, last_year, official_until,
                  frozenset(y for y in added if y <= official_until), tuple(working),
                  frozenset(working), hashlib.sha256(official.encode()).hexdigest()[:16])


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
        provisional_years: int = DEFAULT_PROVISIONAL_YEARS,
    ) -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.office_hours = office_hours if office_hours is not None else OfficeHours()
        if provisional_years < 0:
            raise ValueError("provisional_years must be >= 0")
        if holidays is not None:
            _check_follows_on(holidays)
        self.holidays = holidays
        self.provisional_years = provisional_years
        self._table = _table(holidays.key() if holidays is not None else (), provisional_years)

    def __repr__(self) -> str:
        hours = self.office_hours
        return (f"WorkingCalendar(tz={self.tz.key!r}, open={hours.open}, close={hours.close}, "
                f"official until {self.official_until}, covers to {self.last_year})")

    @property
    def first_year(self) -> int:
        return self._table.first_year

    @property
    def last_year(self) -> int:
        """The last year the calendar answers (the last provisional one, if any)."""
        return self._table.last_year

    @property
    def official_until(self) -> int:
        """The last year with an official schedule (package or holidays file)."""
        return self._table.official_until

    @property
    def fingerprint(self) -> str:
        """Changes exactly when the official schedules change (package or file years)."""
        return self._table.fingerprint

    def replanning_key(self, version: int) -> str:
        """The key of re-planning an aggregate at ``version`` on these official schedules: a
        second replica re-planning the same state on the same schedules is a replay. The
        version is part of it, as schedules come back: a correction withdrawn (the file
        before it loaded again) has the fingerprint of the schedules first re-planned on, and
        that key alone answered the withdrawal as done, leaving what the correction moved."""
        return f"calendar:{self.fingerprint}@{version}"

    def source_of(self, year: int) -> YearSource:
        table = self._table
        if not table.first_year <= year <= table.last_year:
            raise CalendarOutOfRange(year, table.first_year, table.last_year,
                                     table.official_until)
        if year > table.official_until:
            return YearSource.PROVISIONAL
        return YearSource.FILE if year in table.file_years else YearSource.PACKAGE

    def coverage(self) -> list[tuple[int, int, YearSource]]:
        """The covered years as runs of one source: [(first, last, source), ...]."""
        runs: list[tuple[int, int, YearSource]] = []
        for year in range(self.first_year, self.last_year + 1):
            source = self.source_of(year)
            if runs and runs[-1][2] is source and runs[-1][1] == year - 1:
                runs[-1] = (runs[-1][0], year, source)
            else:
                runs.append((year, year, source))
        return runs

    def basis_of(self, *moments: date | datetime) -> Basis:
        """Provisional when any of the days (the first and last a computation consulted)
        falls in a provisional year."""
        for moment in moments:
            day = self._local(moment).date() if isinstance(moment, datetime) else moment
            if day.year > self._table.official_until:
                return Basis.PROVISIONAL
        return Basis.OFFICIAL

    def official_working_days(self) -> list[int]:
        """The proleptic ordinals of every working day of the official years."""
        last = date(self.official_until, 12, 31).toordinal()
        working = self._table.working
        return list(working[:bisect_right(working, last)])

    def changed_official_days(self, before: WorkingCalendar | tuple[int, Iterable[int]]
                              ) -> tuple[date, date] | None:
        """The first and last day, official ``before``, that works on one calendar and not on
        the other (a correction of a published day, a notice's December reaching back into a
        year already official, a year taken out of the file: its days are the law's again);
        None when they agree on every such day. A year official only now is no change of an
        official day (what was planned on it is provisional, re-planned by its basis).
        ``before``: a calendar, or (its ``official_until``, its ``official_working_days``)."""
        if isinstance(before, WorkingCalendar):
            official_until, working = before.official_until, before._table.working_set
        else:
            official_until, working = before[0], frozenset(before[1])
        last = date(official_until, 12, 31).toordinal()
        changed = [day for day in self._table.working_set ^ working if day <= last]
        if not changed:
            return None
        return date.fromordinal(min(changed)), date.fromordinal(max(changed))

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date | datetime) -> bool:
        """Whether the counter works on that day (make-up Saturdays and Sundays included)."""
        return self._ordinal(day) in self._table.working_set

    def add_working_days(self, start: date | datetime, n: int) -> date:
        """The (n+1)-th working day on or after ``start``'s day; see the module docstring."""
        index = bisect_left(self._table.working, self._ordinal(start)) + _count(n)
        return self._working_day_at(index)

    def deadline_day(self, received: date | datetime, n: int) -> date:
        """The day a deadline of ``n`` working days falls on, for what was received on
        ``received``'s day: the n-th working day after it, a day off counting as the next
        working day (received on Sunday 20 December 2026, 3 days: Thursday 24, as from
        Monday 21). ``n = 0``: the day itself, or the next working day."""
        return self.add_working_days(received, n)

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

    def start_of_day(self, day: date) -> datetime:
        """The first moment of that day in the center's zone: its midnight (``fold=0``: the
        first of two, in a zone whose clock goes back over midnight; in one whose clock
        skips midnight, the moment it jumps, read as the day's first time, 01:00). Through
        UTC and back: a midnight the clock skips is a time that never was, and Python
        compares such a datetime unequal to every moment of another zone (PEP 495)."""
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC).astimezone(
            self.tz)

    def next_day_start(self, at: datetime) -> datetime:
        """The first moment after ``at`` on a later day in the center's zone (``local_day``),
        in ``at``'s own zone."""
        return self.start_of_day(self.local_day(at) + timedelta(days=1)).astimezone(at.tzinfo)

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

    def plan(self, rule: DueRule) -> Planned:
        """The rule worked out on this calendar: when, and on what basis."""
        if rule.direction == "on_or_after":
            day = self.add_working_days(rule.day, rule.working_days)
        else:
            day = self.subtract_working_days(rule.day, rule.working_days)
        at = self.opening_on(day)
        if rule.not_before is not None and rule.not_before > at:
            at = rule.not_before
            if at == self.opening_on(self.local_day(at)) and not self.is_working_day(at):
                # A floor kept as a morning (follow-up's first working morning to come) on a
                # day this calendar does not work: a provisional day the published schedule
                # made a holiday. Kept as it was, the follow-up was due on the holiday.
                at = self.next_working_morning(at)
        # The day it ends on is consulted too: a floor in a provisional year under a count
        # of official days was said "official" at the first re-planning (every start).
        return Planned(at, self.basis_of(rule.day, day, at))

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
            raise CalendarOutOfRange(day.year, table.first_year, table.last_year,
                                     table.official_until)
        return day.toordinal()

    def _working_day_at(self, index: int) -> date:
        table = self._table
        if index < 0:
            raise CalendarOutOfRange(table.first_year - 1, table.first_year, table.last_year,
                                     table.official_until)
        if index >= len(table.working):
            raise CalendarOutOfRange(table.last_year + 1, table.first_year, table.last_year,
                                     table.official_until)
        return date.fromordinal(table.working[index])


def _check_follows_on(holidays: HolidaySchedule) -> None:
    """The file's years after the package's must follow on without a gap (file and line)."""
    _, last = _package_years()
    for year in sorted(y for y in holidays.years if y > last):
        if year != last + 1:
            raise HolidaysFileError(
                f"the file gives {year} but {last + 1} is not covered: its years must follow "
                f"on from the package's last year ({_package_years()[1]}) without a gap",
                holidays.path or None, holidays.line_of(year))
        last = year


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number of working days must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"a number of working days must be >= 0, got {n}")
    return n
