"""How far ahead the calendar counts: the years of the official schedules (chinese-calendar's
and the holidays file's) and CALENDAR_PROVISIONAL_YEARS (5) after the last of them, on the law
alone. No fixed year: with chinese-calendar 1.11.0 (2026) the range ends with 2031, and a
30-working-day deadline from Monday 1 December 2031 (ending in January 2032) is refused with
422 ``calendar_out_of_range`` naming the range, at every route; the day 2027's schedule is
added (a holidays file, or a package that carries it), the range moves on to 2032 and the same
deadline is counted, provisional. A date five years ahead is past what the law alone is
trusted for: CALENDAR_PROVISIONAL_YEARS raises it when a center needs it."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.http.errors import install_error_handlers
from shared.kernel.calendar import (
    Basis,
    CalendarNotCovered,
    CalendarOutOfRange,
    WorkingCalendar,
    covered,
)
from shared.kernel.holidays import parse_holidays

DECEMBER_1_2031 = date(2031, 12, 1)  # a Monday
# 2027 as the law gives it (illustrative test data, not the State Council's notice).
WITH_2027 = parse_holidays(json.dumps({"2027": {
    "source": "illustrative test data",
    "holidays": ["2027-01-01", "2027-02-05..2027-02-08", "2027-04-05", "2027-05-01..2027-05-02",
                 "2027-06-09", "2027-09-15", "2027-10-01..2027-10-03"],
    "workdays": []}}))


def test_the_horizon_is_the_last_official_year_and_the_provisional_years_after_it() -> None:
    calendar = WorkingCalendar()
    assert calendar.last_year == calendar.official_until + 5
    assert WorkingCalendar(provisional_years=6).last_year == calendar.official_until + 6
    added = WorkingCalendar(holidays=WITH_2027)
    assert added.official_until == calendar.official_until + 1
    assert added.last_year == calendar.last_year + 1


def test_thirty_working_days_from_1_december_2031_refused_until_2027_is_published() -> None:
    calendar = WorkingCalendar()
    assert calendar.official_until == 2026, "chinese-calendar moved on: re-read this test"
    with pytest.raises(CalendarNotCovered) as refused:
        covered(lambda: calendar.deadline_day(DECEMBER_1_2031, 30))
    assert refused.value.status == 422 and refused.value.code == "calendar_out_of_range"
    assert refused.value.details == {"year": 2032, "first_year": 2004, "last_year": 2031,
                                     "official_until": 2026}
    # 2027 published: Dec 2-5, 8-12, 15-19, 22-26, 29-31 (22; 1 January 2032 off), then
    # 2032's 2, 5-9, 12, 13 January: the 30th working day after 1 December is Tuesday 13.
    added = WorkingCalendar(holidays=WITH_2027)
    due = added.deadline_day(DECEMBER_1_2031, 30)
    assert due == date(2032, 1, 13)
    assert added.basis_of(DECEMBER_1_2031, due) is Basis.PROVISIONAL
    assert WorkingCalendar(provisional_years=6).deadline_day(DECEMBER_1_2031, 30) == due


@pytest.mark.parametrize("when", ["/cases/c1/due", "/rectifications/r1/appeal"])
def test_a_route_that_reaches_past_the_calendar_answers_422_never_500(when: str) -> None:
    """A count not wrapped in ``covered`` by its route: the error handlers' net answers the
    same 422 (it was a bare 500)."""
    app = FastAPI()
    install_error_handlers(app)
    calendar = WorkingCalendar()

    @app.post("/{kind}/{id_}/{what}")
    async def count(kind: str, id_: str, what: str) -> dict[str, str]:
        return {"due": calendar.deadline_day(DECEMBER_1_2031, 30).isoformat()}

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post(when)
    assert answer.status_code == 422, answer.text
    body = answer.json()["error"]
    assert body["code"] == "calendar_out_of_range"
    assert body["details"]["last_year"] == 2031 and "2004-2031" in body["message"]
    with pytest.raises(CalendarOutOfRange):
        calendar.deadline_day(DECEMBER_1_2031, 30)
