"""Each center's working-day calendar, built once per process from settings: the one place every
service gets its working days from.

Defaults come from ``office_open`` / ``office_close`` / ``office_lunch_*`` and ``holidays_file``;
a center may have its own hours (``center_office_hours``: ``"08:30-17:30"`` or with a lunch
break ``"08:30-12:00,13:30-17:30"``) and its own holidays file (``center_holidays_files``), which
replaces the default file for that center. ``calendar_provisional_years`` bounds the provisional
years after the last official one. Files are read when the service starts, so a bad file stops
the start-up with the file and line named rather than surfacing in a follow-up weeks later.

``reload()`` reads the files again (``POST /ops/calendar/reload``, ``sixstep calendar reload``):
all or nothing, a bad file leaves the calendars as they were. ``status(today)`` says, per
center, which years are covered and on what source, and warns when the official schedules end
within ``calendar_warn_days``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path

from pydantic import BaseModel, Field

from shared.kernel.calendar import OfficeHours, WorkingCalendar, YearSource
from shared.kernel.holidays import HolidaySchedule, load_holidays
from shared.runtime.replan_pending import ReplanPendingPublic
from shared.settings import Settings

DEFAULT_CENTER = "*"
"""How status names the calendar of every center without its own hours or file."""


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


class YearsPublic(BaseModel):
    first_year: int
    last_year: int
    source: YearSource = Field(description="package, file (a holidays file) or provisional")


class CenterCalendarPublic(BaseModel):
    center_id: str = Field(description=f"'{DEFAULT_CENTER}': every center without its own")
    time_zone: str
    office_hours: str
    holidays_file: str | None
    years: list[YearsPublic]
    official_until: date = Field(description="The last day of the official schedules")
    covers_until: date = Field(description="The last day the calendar answers (provisionally)")
    official_days_left: int
    fingerprint: str = Field(description="Changes exactly when the official schedules change")


class CalendarStatusPublic(BaseModel):
    today: date
    provisional_years: int
    warn_days: int
    centers: list[CenterCalendarPublic]
    warnings: list[str]


class CalendarPublic(CalendarStatusPublic):
    """``GET /ops/calendar``: the status, the service that answers, and its re-planning still
    pending after a calendar change, if any (whichever replica's it was)."""

    service: str
    replan_pending: ReplanPendingPublic | None = Field(None, description=(
        "A re-planning with failed items, retried until it goes through: since when, tries, "
        "items failed at the last, the last error, the days still to re-plan"))


class CalendarReloadPublic(BaseModel):
    """``POST /ops/calendar/reload``: read by the route that answers it and by ``sixstep
    calendar reload`` (another program's 200 is none), one shape for both."""

    service: str
    changed: list[str] = Field(description="Centers whose official schedules changed ('*': "
                               "every center without its own file)")
    replanned: dict[str, dict[str, int]] = Field(
        description="What followed, per part: re-planned dates, rules taken off the parking; "
                    "``..._failed``: the items whose re-plan failed")
    failed: int = Field(0, description="Items whose re-plan failed, over every part (a write "
                                       "not taken in time, the store away)")
    retry_scheduled: bool = Field(False, description=(
        "Whether the service runs the re-planning again by itself (it does while any item "
        "failed, backing off, until it goes through, on another replica should this one go; "
        "nothing is remembered as re-planned before)"))
    calendar: CalendarPublic


@dataclass(frozen=True)
class _State:
    default: WorkingCalendar
    own: dict[str, WorkingCalendar]  # centers with their own hours or file
    files: dict[str, str | None]


def _hours_text(hours: OfficeHours) -> str:
    if hours.lunch_start is not None and hours.lunch_end is not None:
        return (f"{hours.open:%H:%M}-{hours.lunch_start:%H:%M},"
                f"{hours.lunch_end:%H:%M}-{hours.close:%H:%M}")
    return f"{hours.open:%H:%M}-{hours.close:%H:%M}"


def _build(settings: Settings) -> _State:
    """Every center's calendar from settings, reading the files: raises on any bad one."""
    default_hours = OfficeHours(
        open=settings.office_open, close=settings.office_close,
        lunch_start=settings.office_lunch_start, lunch_end=settings.office_lunch_end)
    hours = {c: parse_hours(h) for c, h in settings.center_office_hours.items()}
    files: dict[str, Path | None] = {DEFAULT_CENTER: settings.holidays_file,
                                     **settings.center_holidays_files}
    schedules: dict[Path, HolidaySchedule] = {}
    for path in {p for p in files.values() if p is not None}:
        schedules[path] = load_holidays(path)

    def calendar(center_id: str) -> WorkingCalendar:
        path = files.get(center_id, files[DEFAULT_CENTER])
        return WorkingCalendar(settings.tz, hours.get(center_id, default_hours),
                               schedules[path] if path is not None else None,
                               settings.calendar_provisional_years)

    own = {center_id: calendar(center_id)
           for center_id in {*hours, *settings.center_holidays_files}}
    shown = {c: str(files.get(c, files[DEFAULT_CENTER]) or "") or None
             for c in [DEFAULT_CENTER, *own]}
    return _State(calendar(DEFAULT_CENTER), own, shown)


class ClockAheadUntilRefused(ValueError):
    """``CLOCK_AHEAD_UNTIL`` names a day past the working-day calendar: a mistyped year."""


class Calendars:
    """``for_center(center_id)``: that center's WorkingCalendar (tables shared between centers
    with the same schedule). One object per process, handed to every use case; ``reload()``
    swaps what it holds, so every holder sees the new calendars at once.

    ``clock_ahead_until``: feedback's ``CLOCK_AHEAD_UNTIL`` (the other services judge nothing
    on it, and say nothing of it): refused past the last day the calendar answers
    (``ClockAheadUntilRefused``), and said in ``status``'s warnings while it is set."""

    def __init__(self, settings: Settings, clock_ahead_until: date | None = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._state = _build(settings)  # a bad file or office hours stop the start-up here
        self.clock_ahead_until = clock_ahead_until
        if clock_ahead_until is not None:
            covers_until = max(date(c.last_year, 12, 31) for c in self.centers().values())
            if clock_ahead_until > covers_until:
                # A year mistyped (2062 for 2026) turned the set-back protection off for
                # decades, silently: a day past the calendar is no day feedback judged
                # anything on (every rule on such a day answers 422 calendar_out_of_range).
                raise ClockAheadUntilRefused(
                    f"CLOCK_AHEAD_UNTIL={clock_ahead_until} is past the working-day calendar "
                    f"(it covers until {covers_until}): a mistyped year? It names the last "
                    "center day feedback's clock recorded while it ran ahead; until the "
                    "center's day passes it, a clock set back reopens appeal windows and "
                    "moves missed deadlines. Give that day, or unset it "
                    "(deploy/README.md, \"Feedback's own clock ran ahead\")")
        #: The first and last official day the reloads since the last re-planning changed (a
        #: published day corrected, a notice's December): what re-planning looks at besides
        #: provisional dates. Kept across a reload told by another replica (which re-plans
        #: nothing), until ``replanned``.
        self.changed_official: tuple[date, date] | None = None

    @property
    def default(self) -> WorkingCalendar:
        return self._state.default

    def for_center(self, center_id: str) -> WorkingCalendar:
        state = self._state
        return state.own.get(center_id, state.default)

    def centers(self) -> dict[str, WorkingCalendar]:
        """The default calendar (as ``'*'``) and every center with its own."""
        state = self._state
        return {DEFAULT_CENTER: state.default, **dict(sorted(state.own.items()))}

    def fingerprints(self) -> dict[str, str]:
        return {center: c.fingerprint for center, c in self.centers().items()}

    def reload(self) -> list[str]:
        """Read the files again; returns the centers whose official schedules changed.

        All or nothing: a file that cannot be used raises ``HolidaysFileError`` (file, line)
        and the calendars stay as they were.
        """
        fresh = _build(self.settings)
        with self._lock:
            earlier = self.centers()
            self._state = fresh
            now = self.centers()
            spans = [span for center, calendar in now.items()
                     if (span := calendar.changed_official_days(
                         earlier.get(center, earlier[DEFAULT_CENTER]))) is not None]
            if self.changed_official is not None:
                spans.append(self.changed_official)  # not re-planned yet
            self.changed_official = (min(a for a, _ in spans),
                                     max(b for _, b in spans)) if spans else None
        return sorted(c for c in now if earlier.get(c) is None
                      or earlier[c].fingerprint != now[c].fingerprint)

    def changed_since(self, seen: dict[str, tuple[int, list[int]]]) -> None:
        """Add to ``changed_official`` the official days that changed since ``seen`` (per
        center: the official_until and official working days a re-planning last ran on)."""
        with self._lock:
            spans = [span for center, known in seen.items()  # a center without its file:
                     if (span := self.for_center(center)  # on the default calendar
                         .changed_official_days(known)) is not None]
            if self.changed_official is not None:
                spans.append(self.changed_official)
            if spans:
                self.changed_official = (min(a for a, _ in spans), max(b for _, b in spans))

    def changed_since_span(self, span: tuple[date, date]) -> None:
        """Add ``span`` to ``changed_official``: days a failed re-planning left (its row in
        ``calendar_replan_pending``, perhaps another replica's)."""
        with self._lock:
            spans = [span] if self.changed_official is None else [span, self.changed_official]
            self.changed_official = (min(a for a, _ in spans), max(b for _, b in spans))

    def replanned(self, span: tuple[date, date] | None) -> None:
        """Re-planning over ``span`` (what ``changed_official`` was when it began) is done."""
        with self._lock:
            if self.changed_official == span:
                self.changed_official = None

    def clock_ahead_said(self, today: date) -> str | None:
        """What ``CLOCK_AHEAD_UNTIL`` does on ``today`` (the center's day), when it is set:
        a warning in ``status`` (so /ready's, never its status: the service serves as it
        should, an operator has something to undo) and in feedback's log at start."""
        ahead = self.clock_ahead_until
        if ahead is None:
            return None
        if today > ahead:
            return (f"CLOCK_AHEAD_UNTIL is {ahead}, which the center's day ({today}) has "
                    "passed: it changes nothing any more (a day recorded after it counts); "
                    "unset it")
        days = (ahead - today).days
        return (f"CLOCK_AHEAD_UNTIL is {ahead}, {days} day{'' if days == 1 else 's'} ahead of the "
                f"center's day ({today}): until the center's day passes it, a day feedback "
                "recorded up to it is not judged on, so a clock set back now reopens appeal "
                "windows and moves missed deadlines; unset it once the center's day has "
                "passed it (a year too far and this holds for a year)")

    def status(self, today: date) -> CalendarStatusPublic:
        centers: list[CenterCalendarPublic] = []
        warnings: list[str] = []
        warn_days = self.settings.calendar_warn_days
        for center_id, calendar in self.centers().items():
            official_until = date(calendar.official_until, 12, 31)
            left = (official_until - today).days
            centers.append(CenterCalendarPublic(
                center_id=center_id, time_zone=calendar.tz.key,
                office_hours=_hours_text(calendar.office_hours),
                holidays_file=self._state.files.get(center_id),
                years=[YearsPublic(first_year=a, last_year=b, source=s)
                       for a, b, s in calendar.coverage()],
                official_until=official_until, covers_until=date(calendar.last_year, 12, 31),
                official_days_left=left, fingerprint=calendar.fingerprint))
            who = "every center" if center_id == DEFAULT_CENTER else f"center {center_id}"
            following = calendar.official_until + 1
            # The file's years follow on from the last official one without a gap: in 2028
            # with 2026 the last, 2028's schedule alone is refused; 2027's comes first.
            missing = (f"{following}'s official schedule" if following >= today.year
                       else f"the official schedules of {following} to {today.year}")
            if today.year > calendar.last_year:
                warnings.append(
                    f"{who}: today is past the working-day calendar (it covers until "
                    f"{calendar.last_year}-12-31): worklists and every write that needs a "
                    f"working day answer 422 calendar_out_of_range and rules are parked; add "
                    f"{missing} to the holidays file and reload (`sixstep calendar reload`)")
            elif left < 0:
                warnings.append(
                    f"{who}: today is past the official schedules (they end {official_until});"
                    f" dates are planned provisionally: add {missing} to the holidays file "
                    "and reload (`sixstep calendar reload`)")
            elif left <= warn_days and calendar.last_year > calendar.official_until:
                warnings.append(
                    f"{who}: the official holiday schedules end {official_until}, in {left} "
                    f"days; {following} is planned provisionally (statutory holidays, no make-up"
                    f" days) until its schedule is added to the holidays file and reloaded "
                    "(`sixstep calendar reload`)")
            elif left <= warn_days:
                warnings.append(
                    f"{who}: the working-day calendar ends {official_until}, in {left} days, "
                    f"and {following} is not planned provisionally (CALENDAR_PROVISIONAL_YEARS"
                    f" is 0): a write that needs a day in {following} answers 422 "
                    "calendar_out_of_range and a rule is parked until its schedule is added to"
                    " the holidays file and reloaded (`sixstep calendar reload`)")
        if (said := self.clock_ahead_said(today)) is not None:
            warnings.append(said)
        return CalendarStatusPublic(today=today,
                                    provisional_years=self.settings.calendar_provisional_years,
                                    warn_days=warn_days, centers=centers, warnings=warnings)
