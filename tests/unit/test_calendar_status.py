"""What `sixstep calendar status` and /ready warn as the official schedules end, without
servers: the warning says what happens to next year, as the calendar is configured."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from shared.runtime.calendars import Calendars, ClockAheadUntilRefused
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


# -- CLOCK_AHEAD_UNTIL: feedback's word that its clock ran ahead, said while it is set ---------


def ahead(until: date, **settings: object) -> Calendars:
    return Calendars(Settings(environment="development", log_json=False, **settings), until)


@pytest.mark.parametrize(("until", "today", "said"), [
    # Set on Monday 28 December 2026 for a clock that recorded Tuesday 29: in force a day.
    (date(2026, 12, 29), date(2026, 12, 28), "1 day ahead of the center's day (2026-12-28)"),
    # The same, mistyped a year ahead: a year of clocks set back reopening windows, said.
    (date(2027, 12, 29), date(2026, 12, 28), "366 days ahead of the center's day"),
    # At 23:30 on New Year's Eve in Shanghai the center's day is the 31st (15:30 UTC).
    (date(2027, 1, 1), date(2026, 12, 31), "1 day ahead of the center's day (2026-12-31)"),
    # On 29 February 2028, a clock that ran a year ahead (7 March 2029, provisional).
    (date(2029, 3, 7), date(2028, 2, 29), "372 days ahead of the center's day (2028-02-29)"),
])
def test_clock_ahead_until_is_said_while_it_holds(until: date, today: date, said: str) -> None:
    [warning] = [w for w in ahead(until).status(today).warnings if "CLOCK_AHEAD_UNTIL" in w]
    assert said in warning and "a clock set back now reopens appeal windows" in warning


@pytest.mark.parametrize(("until", "today"), [
    (date(2026, 12, 19), date(2026, 12, 20)),  # Sunday 20 December 2026
    (date(2026, 12, 30), date(2026, 12, 31)),
    (date(2028, 2, 28), date(2028, 2, 29)),
])
def test_clock_ahead_until_is_said_stale_once_the_centers_day_has_passed_it(
        until: date, today: date) -> None:
    [warning] = [w for w in ahead(until).status(today).warnings if "CLOCK_AHEAD_UNTIL" in w]
    assert f"CLOCK_AHEAD_UNTIL is {until}, which the center's day ({today}) has passed" \
        in warning and "unset it" in warning
    # The other services judge nothing on it, and say nothing of it.
    other = Calendars(Settings(environment="development", log_json=False,
                               clock_ahead_until=until))
    assert not [w for w in other.status(today).warnings if "CLOCK_AHEAD_UNTIL" in w]


def test_a_clock_ahead_until_past_the_calendar_is_refused_at_start() -> None:
    # 2062 for 2026: the calendar covers until 2031 (2027-2031 provisional by default).
    with pytest.raises(ClockAheadUntilRefused, match=r"CLOCK_AHEAD_UNTIL=2062-12-29 is past "
                       r"the working-day calendar \(it covers until 2031-12-31\)"):
        ahead(date(2062, 12, 29))
    assert ahead(date(2031, 12, 31)).clock_ahead_until == date(2031, 12, 31)
    # Without provisional years the calendar ends with 2026: a clock that recorded New
    # Year's Day recorded a day no rule is judged on (422 calendar_out_of_range).
    with pytest.raises(ClockAheadUntilRefused, match="covers until 2026-12-31"):
        ahead(date(2027, 1, 1), calendar_provisional_years=0)


def test_feedback_refuses_to_start_on_a_clock_ahead_until_past_the_calendar_in_one_line(
        ) -> None:
    """As an operator starts it (its own process: ``serve`` configures the process's logging,
    and in the test run's process it left every later test's log lines on a closed stream)."""
    env = {**os.environ, "ENVIRONMENT": "development", "LOG_JSON": "false",
           "CLOCK_AHEAD_UNTIL": "2062-12-29"}
    started = subprocess.run([sys.executable, "-m", "services.feedback.main"], env=env,
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert started.returncode == 2, started.stderr
    assert ("sixstep feedback: refusing to start: CLOCK_AHEAD_UNTIL=2062-12-29 is past"
            in started.stderr)
    assert "Traceback" not in started.stderr
