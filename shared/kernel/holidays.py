"""Holidays files: a year's official schedule, added the day the State Council publishes it.

The chinese-calendar package carries each year's schedule only from a release that follows the
State Council's notice (放假安排, published a few weeks before the year starts). Until then a
center adds the year by hand, in a JSON file named by ``HOLIDAYS_FILE`` (or per center in
``CENTER_HOLIDAYS_FILES``)::

    {"2026": {"source": "国务院办公厅关于2026年部分节假日安排的通知",
              "holidays": ["2026-01-01..2026-01-03", "2026-02-15..2026-02-23", ...],
              "workdays": ["2026-01-04", "2026-02-14", "2026-02-28", ...]}}

* a key per year (four digits), each with ``holidays`` (every day off of the notice: a day
  ``YYYY-MM-DD`` or an inclusive range ``YYYY-MM-DD..YYYY-MM-DD``, weekends inside a range
  allowed) and ``workdays`` (the make-up working days, 调休上班: Saturdays and Sundays only);
  ``source`` names the notice;
* a day appears once: no date twice, no overlapping ranges, no day both off and worked;
* a year's days are its own, and the December before it: a notice's New Year may reach back
  (the 2019 notice: 2018-12-30..2019-01-01 off, Saturday 2018-12-29 worked). Those December
  days count as the notice says, even in a year the package gives (its release came before
  the notice);
* the file's years follow on from the package's last year without a gap (checked when the
  calendar is built, ``shared.kernel.calendar``).

``deploy/holidays/2026.json`` is the worked example: 2026's published schedule, which the tests
check against the package's own 2026. Anything wrong stops the start-up, and a reload changes
nothing, with the file and the line named (``HolidaysFileError``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

__all__ = ["HolidaySchedule", "HolidaysFileError", "YearSchedule", "load_holidays",
           "parse_holidays"]

YEAR = re.compile(r"^\d{4}$")
DAY = r"\d{4}-\d{2}-\d{2}"
ENTRY = re.compile(rf"^({DAY})(?:\.\.({DAY}))?$")


class HolidaysFileError(ValueError):
    """A holidays file that cannot be used as it is: the file and the line are named."""

    def __init__(self, message: str, path: str | Path | None = None,
                 line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = (f"holidays file {self.path}" + (f", line {line}" if line else "") + ": "
                 if self.path else "")
        super().__init__(where + message)


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: its days off and its make-up working days."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str = ""

    def works(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


@dataclass(frozen=True)
class HolidaySchedule:
    """The years a holidays file gives, and where each came from (file, line)."""

    years: dict[int, YearSchedule]
    path: str = ""
    lines: dict[int, int] | None = None  # year -> line of its key

    def key(self) -> tuple[tuple[int, tuple[date, ...], tuple[date, ...]], ...]:
        """A hashable fingerprint, so every calendar with the same schedule shares one table."""
        return tuple(sorted((y, tuple(sorted(s.holidays)), tuple(sorted(s.workdays)))
                            for y, s in self.years.items()))

    def digest(self) -> str:
        return hashlib.sha256(repr(self.key()).encode()).hexdigest()[:12]

    def line_of(self, year: int) -> int | None:
        return (self.lines or {}).get(year)


class _Lines:
    """Where things are in the file's text, to name the line of a mistake."""

    def __init__(self, text: str) -> None:
        self.text = text

    def of(self, literal: str, after: int = 0, occurrence: int = 1) -> tuple[int, int]:
        """(line, offset) of the ``occurrence``-th ``"literal"`` at or after ``after``."""
        at = after - 1
        for _ in range(occurrence):
            at = self.text.find(f'"{literal}"', at + 1)
            if at < 0:
                return 0, after
        return self.text.count("\n", 0, at) + 1, at


def parse_holidays(text: str, path: str | Path = "<text>") -> HolidaySchedule:
    """A holidays file's text as a schedule; ``HolidaysFileError`` (file, line) otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HolidaysFileError(f"not JSON: {exc.msg}", path, exc.lineno) from exc
    lines = _Lines(text)
    if not isinstance(data, dict):
        raise HolidaysFileError("give an object with one key per year, e.g. {\"2027\": {...}}",
                                path, 1)
    years: dict[int, YearSchedule] = {}
    key_lines: dict[int, int] = {}
    for key, body in data.items():
        line, start = lines.of(key)
        if not isinstance(key, str) or not YEAR.match(key):
            raise HolidaysFileError(f"{key!r} is not a year: give four digits, e.g. \"2027\"",
                                    path, line)
        year = int(key)
        if not 2000 <= year <= 2199:
            raise HolidaysFileError(f"{year} is not a plausible year", path, line)
        if not isinstance(body, dict):
            raise HolidaysFileError(f"{year}: give {{\"holidays\": [...], \"workdays\": [...]}}",
                                    path, line)
        years[year] = _year(year, body, lines, start, path)
        key_lines[year] = line
    for year, schedule in years.items():  # a December day under its own year and the next
        before = years.get(year - 1)
        twice = sorted(d for d in schedule.holidays | schedule.workdays if d.year == year - 1
                       and before is not None and d in before.holidays | before.workdays)
        if twice:
            raise HolidaysFileError(f"{twice[0]} is listed under {year - 1} and under {year}: "
                                    "give it once", path, key_lines[year])
    return HolidaySchedule(years, str(path), key_lines)


def _year(year: int, body: dict[str, Any], lines: _Lines, start: int,
          path: str | Path) -> YearSchedule:
    unknown = sorted(set(body) - {"source", "holidays", "workdays"})
    if unknown:
        raise HolidaysFileError(f"{year}: unknown field {unknown[0]!r} (known: source, "
                                "holidays, workdays)", path, lines.of(unknown[0], start)[0])
    source = body.get("source", "")
    if not isinstance(source, str):
        raise HolidaysFileError(f"{year}: source is a text", path, lines.of("source", start)[0])
    seen: dict[date, str] = {}
    occurrences: dict[str, int] = {}

    def days(field: str) -> set[date]:
        entries = body.get(field, [])
        if not isinstance(entries, list):
            raise HolidaysFileError(f"{year}: {field} is a list", path,
                                    lines.of(field, start)[0])
        out: set[date] = set()
        for entry in entries:
            text = str(entry)
            occurrences[text] = occurrences.get(text, 0) + 1
            line = lines.of(text, start, occurrences[text])[0]
            match = ENTRY.match(text) if isinstance(entry, str) else None
            try:
                if match is None:
                    raise ValueError("give YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
                first = date.fromisoformat(match.group(1))
                last = date.fromisoformat(match.group(2) or match.group(1))
                if last < first:
                    raise ValueError("the range ends before it starts")
            except ValueError as exc:
                raise HolidaysFileError(f"{year}: {field} entry {entry!r}: {exc}", path,
                                        line) from exc
            day = first
            while day <= last:
                if day.year != year and not (day.year == year - 1 and day.month == 12):
                    raise HolidaysFileError(
                        f"{day} is listed under year {year}: a year's notice gives its own "
                        "days, and the December before it its New Year reaches back into",
                        path, line)
                if day in seen:
                    what = ("listed twice (overlapping or duplicate dates)" if seen[day] == field
                            else "listed as a holiday and as a working day")
                    raise HolidaysFileError(f"{day} is {what}", path, line)
                if field == "workdays" and day.weekday() < 5:
                    raise HolidaysFileError(
                        f"make-up working day {day} is a {day:%A}: list only the Saturdays and "
                        "Sundays that are worked", path, line)
                seen[day] = field
                out.add(day)
                day += timedelta(days=1)
        return out

    holidays = days("holidays")
    workdays = days("workdays")
    return YearSchedule(year, frozenset(holidays), frozenset(workdays), source)


def load_holidays(path: str | Path) -> HolidaySchedule:
    """Read a holidays file; an unreadable or invalid one fails with the file named."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HolidaysFileError(f"cannot be read: {exc}", path) from exc
    return parse_holidays(text, path)
