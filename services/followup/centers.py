"""Each center's working calendar, built once from settings: office hours and holidays files.

Defaults come from ``office_open`` / ``office_close`` / ``office_lunch_*`` and ``holidays_file``;
a center may have its own hours (``center_office_hours``: ``"08:30-17:30"`` or with a lunch
break ``"08:30-12:00,13:30-17:30"``) and its own holidays file (``center_holidays_files``), which
replaces the default file for that center. Files are read when the service starts, so a bad
file stops the start-up with the file named rather than surfacing in a follow-up weeks later.
"""

from __future__ import annotations

from datetime import time

from shared.calendar import (
    HolidaySchedule,
    OfficeHours,
    WorkingCalendar,
    load_holidays,
)
from shared.settings import Settings


def parse_hours(text: str) -> OfficeHours:
    """``"08:30-17:30"`` or ``"08:30-12:00,13:30-17:30"`` (morning and afternoon)."""
    try:
        spans = [tuple(time.fromisoformat(t.strip()) for t in part.split("-"))
                 for part in text.split(",")]
        if len(spans) == 1 and len(spans[0]) == 2:
            return OfficeHours(open=spans[0][0], close=spans[0][1])
        if len(spans) == 2 and all(len(s) == 2 for s in spans):
            return OfficeHours(open=spans[0][0], lunch_start=spans[0][1],
                               lunch_end=spans[1][0], close=spans[1][1])
    except ValueError as exc:
        raise ValueError(f"office hours {text!r}: {exc}") from exc
    raise ValueError(f"office hours {text!r}: give 'HH:MM-HH:MM' or 'HH:MM-HH:MM,HH:MM-HH:MM'")


class Calendars:
    """``for_center(center_id)``: that center's WorkingCalendar (cached; tables are shared)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default_hours = OfficeHours(
            open=settings.office_open, close=settings.office_close,
            lunch_start=settings.office_lunch_start, lunch_end=settings.office_lunch_end)
        self.hours = {c: parse_hours(h) for c, h in settings.center_office_hours.items()}
        self.default_holidays: HolidaySchedule | None = (
            load_holidays(settings.holidays_file) if settings.holidays_file else None)
        self.holidays = {c: load_holidays(p) for c, p in settings.center_holidays_files.items()}
        self._calendars: dict[str, WorkingCalendar] = {}
        self.default = self._build(None)
        for center_id in {*self.hours, *self.holidays}:  # a bad file stops the start-up
            self._calendars[center_id] = self._build(center_id)

    def _build(self, center_id: str | None) -> WorkingCalendar:
        hours = self.hours.get(center_id or "", self.default_hours)
        holidays = self.holidays.get(center_id or "", self.default_holidays)
        return WorkingCalendar(self.settings.tz, hours, holidays)

    def for_center(self, center_id: str) -> WorkingCalendar:
        calendar = self._calendars.get(center_id)
        if calendar is None:
            if center_id in self.hours or center_id in self.holidays:
                calendar = self._build(center_id)
            else:
                calendar = self.default
            self._calendars[center_id] = calendar
        return calendar
