"""Beyond the package's years: the holidays file, and never a guessed date."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from pathlib import Path

import pytest

from services.followup.centers import Calendars
from services.followup.clock import ManualClock
from services.followup.main import create_app
from shared.calendar import (
    CalendarOutOfRange,
    HolidaysFileError,
    WorkingCalendar,
    covered_years,
    load_holidays,
)
from shared.settings import Settings
from tests.followup.story import at, center_day, quiet
from tests.support import running, wait_until

# An illustrative 2027 schedule for the tests, NOT the State Council's published one.
SCHEDULE_2027 = {"2027": {
    "source": "illustrative test data",
    "holidays": ["2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10",
                 "2027-02-11", "2027-02-12"],
    "workdays": ["2027-02-20"]}}


def write(tmp_path: Path, data: dict, name: str = "holidays.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_holidays_file_adds_the_year_the_package_lacks(tmp_path: Path) -> None:
    assert covered_years()[1] == 2026, "chinese_calendar 1.11 stops at 2026"
    calendar = WorkingCalendar(holidays=load_holidays(write(tmp_path, SCHEDULE_2027)))
    assert (calendar.first_year, calendar.last_year) == (covered_years()[0], 2027)
    # A holiday week, and the make-up Saturday after it.
    assert not any(calendar.is_working_day(date(2027, 2, d)) for d in range(5, 15))
    assert calendar.is_working_day(date(2027, 2, 20))
    assert calendar.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 15)
    assert calendar.add_working_days(date(2027, 2, 19), 1) == date(2027, 2, 20)
    # Across the new year: Thursday Dec 31 2026 + 1 working day skips Jan 1-3.
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert calendar.working_days_between(date(2026, 12, 28), date(2027, 1, 5)) == 5
    with pytest.raises(CalendarOutOfRange, match="holidays file") as raised:
        calendar.is_working_day(date(2028, 1, 3))
    assert raised.value.year == 2028


def test_without_the_file_2027_is_refused_not_guessed() -> None:
    with pytest.raises(CalendarOutOfRange, match="2027"):
        WorkingCalendar().add_working_days(date(2026, 12, 28), 5)


def test_the_package_wins_for_its_own_years(tmp_path: Path) -> None:
    data = {**SCHEDULE_2027, "2026": {"holidays": ["2026-03-02"]}}
    calendar = WorkingCalendar(holidays=load_holidays(write(tmp_path, data)))
    assert calendar.is_working_day(date(2026, 3, 2))


def test_bad_holidays_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    gap = load_holidays(write(tmp_path, {"2028": {"holidays": ["2028-01-03"]}}, "gap.json"))
    with pytest.raises(HolidaysFileError, match="without a gap"):
        WorkingCalendar(holidays=gap)
    for name, data, words in [
        ("weekday.json", {"2027": {"workdays": ["2027-02-17"]}}, "weekday"),
        ("year.json", {"2027": {"holidays": ["2028-01-01"]}}, "listed under year 2027"),
        ("both.json", {"2027": {"holidays": ["2027-02-20"], "workdays": ["2027-02-20"]}},
         "holiday and a working day"),
    ]:
        with pytest.raises(HolidaysFileError, match=words) as raised:
            load_holidays(write(tmp_path, data, name))
        assert name in str(raised.value)


def test_each_center_has_its_hours_and_file_from_settings(tmp_path: Path) -> None:
    file = write(tmp_path, SCHEDULE_2027)
    settings = Settings(center_office_hours={"SH-PD-ZHANGJIANG": "08:30-11:30,13:00-17:30"},
                        center_holidays_files={"SH-PD-ZHANGJIANG": file},
                        office_open=time(8, 45))
    calendars = Calendars(settings)
    own = calendars.for_center("SH-PD-ZHANGJIANG")
    assert own.office_hours.lunch_start == time(11, 30) and own.last_year == 2027
    other = calendars.for_center("SH-PD-HUAMU")
    assert other.office_hours.open == time(8, 45) and other.last_year == 2026
    with pytest.raises(ValueError, match="office hours"):
        Calendars(Settings(center_office_hours={"X": "nine to five"}))


async def test_a_2027_deadline_waits_parked_until_the_year_is_known(
        settings: Settings, tmp_path: Path) -> None:
    async with center_day(settings, at(2026, 12, 28, 9)) as center:
        case_id = await center.open_case(at(2026, 12, 28, 9, 10))
        await center.step(case_id, "deadlines", {
            "due_on": "2027-01-08", "description": "年审材料",
            "occurred_at": at(2026, 12, 28, 9, 20).isoformat()})
        pool = center.app.state.pool

        async def parked() -> bool:
            return await pool.fetchval("SELECT count(*) FROM parked_rules") == 1

        await wait_until(parked, what="the rule to be parked")
        reason = await pool.fetchval("SELECT reason FROM parked_rules")
        assert "2027" in reason and "holidays file" in reason
        r = await center.followup.get("/followups", params={"case_id": case_id})
        assert r.json()["items"] == [], "no follow-up at a guessed date"

    # Ops add the 2027 schedule and restart: the parked rule goes through.
    with_file = quiet(settings, holidays_file=write(tmp_path, SCHEDULE_2027))
    app = create_app(with_file, ManualClock(at(2026, 12, 29, 9)))
    async with running(app) as api:
        items: list[dict] = []

        async def scheduled() -> bool:
            nonlocal items
            items = (await api.get("/followups", params={"case_id": case_id})).json()["items"]
            return bool(items)

        await wait_until(scheduled, what="the reminder")
        [reminder] = items
        # Friday Jan 8 2027, three working days before: Tuesday Jan 5.
        assert datetime.fromisoformat(reminder["due_at"]) == at(2027, 1, 5, 9)
        assert await app.state.pool.fetchval("SELECT count(*) FROM parked_rules") == 0
