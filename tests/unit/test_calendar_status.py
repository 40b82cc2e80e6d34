"""What `sixstep calendar status` and /ready warn as the official schedules end, without
servers: the warning says what happens to next year, as the calendar is configured."""

from __future__ import annotations

from datetime import date

from shared.runtime.calendars import Calendars
from shared.settings import Settings


def warnings(today: date, **settings: object) -> list[str]:
    calendars = Calendars(Settings(environment="development", log_json=False, **settings))
    return calendars.status(today).warnings


def test_on_december_20_next_year_is_said_to_be_planned_provisionally() -> None:
    [warning] = warnings(date(2026, 12, 20))
    assert "in 11 days; 2027 is planned provisionally" in warning


def test_without_provisional_years_next_year_is_said_to_be_refused_not_planned() -> None:
    [warning] = warnings(date(2026, 12, 20), calendar_provisional_years=0)
    assert "2027 is planned provisionally" not in warning
    assert "2027 is not planned provisionally" in warning
    assert "422 calendar_out_of_range" in warning and "parked" in warning


def test_a_today_past_the_whole_calendar_is_said_to_be_refused_not_planned() -> None:
    [warning] = warnings(date(2027, 1, 1), calendar_provisional_years=0)
    assert "dates are planned provisionally" not in warning
    assert "today is past the working-day calendar (it covers until 2026-12-31)" in warning
    [warning] = warnings(date(2032, 1, 5))
    assert "it covers until 2031-12-31" in warning
    [warning] = warnings(date(2027, 1, 1))
    assert "dates are planned provisionally" in warning, "2027 is provisional by default"


def test_in_2028_the_warning_asks_for_2027s_schedule_first() -> None:
    """The holidays file's years follow on from the package's last (2026) without a gap:
    in 2028, or in 2032 past the provisional years, '2028's schedule' alone is refused when
    typed in; the warning names the years from 2027."""
    [warning] = warnings(date(2028, 2, 29))
    assert "add the official schedules of 2027 to 2028 to the holidays file" in warning
    [warning] = warnings(date(2032, 1, 5))
    assert "add the official schedules of 2027 to 2032" in warning
    [warning] = warnings(date(2027, 1, 1))
    assert "add 2027's official schedule" in warning
