"""Holidays files: the official schedule typed in the day it is published, checked to the line."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from shared.kernel.calendar import Basis, WorkingCalendar, YearSource
from shared.kernel.holidays import HolidaysFileError, load_holidays, parse_holidays

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "holidays" / "2026.json"


def test_the_shipped_2026_example_is_the_packages_2026_day_for_day() -> None:
    schedule = load_holidays(EXAMPLE)
    year = schedule.years[2026]
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert year.works(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)
    # The two weeks docs/calendar.md walks through.
    assert {date(2026, 2, 15) + timedelta(days=n) for n in range(9)} <= year.holidays
    assert {date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20),
            date(2026, 10, 10)} <= year.workdays


def test_a_file_year_after_the_package_is_official_and_the_rest_provisional() -> None:
    # An illustrative 2027 schedule (not the State Council's), written as the example is.
    text = json.dumps({"2027": {"source": "illustrative", "holidays": [
        "2027-01-01..2027-01-03", "2027-02-05..2027-02-13"], "workdays": ["2027-02-14"]}})
    calendar = WorkingCalendar(holidays=parse_holidays(text, "2027.json"))
    assert calendar.official_until == 2027
    assert calendar.source_of(2027) is YearSource.FILE
    assert calendar.source_of(2028) is YearSource.PROVISIONAL
    assert calendar.last_year == 2032
    assert calendar.is_working_day(date(2027, 2, 14))  # a Sunday worked, as the file says
    assert calendar.basis_of(date(2027, 12, 31)) is Basis.OFFICIAL
    assert calendar.basis_of(date(2028, 1, 3)) is Basis.PROVISIONAL


def test_a_notice_reaching_back_into_december_counts_those_days_as_it_says() -> None:
    # The State Council's notices give a New Year's days off and make-up days in the December
    # before when the year starts mid-week (the 2019 notice: 2018-12-30..2019-01-01 off,
    # Saturday 2018-12-29 worked; 2012: Saturday 2011-12-31 worked). An illustrative 2027
    # notice of that shape (not the published one): Thursday 31 December 2026 off, Saturday
    # 26 December worked. The package (released before the notice) knows neither.
    text = json.dumps({"2027": {"source": "illustrative", "holidays": [
        "2026-12-31..2027-01-03"], "workdays": ["2026-12-26"]}})
    calendar = WorkingCalendar(holidays=parse_holidays(text, "2027.json"))
    assert calendar.is_working_day(date(2026, 12, 26))
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.is_working_day(date(2026, 12, 28)), "the rest of December as the package"
    assert calendar.source_of(2026) is YearSource.PACKAGE
    # Two working days after Thursday 24 December: Friday 25, then the make-up Saturday.
    assert calendar.add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 26)
    assert calendar.add_working_days(date(2026, 12, 30), 1) == date(2027, 1, 4)
    plain = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {"holidays": [
        "2027-01-01..2027-01-03"]}}), "2027.json"))
    assert plain.fingerprint != calendar.fingerprint, "re-planning sees the change"
    with pytest.raises(HolidaysFileError, match="listed under year 2027"):
        parse_holidays(json.dumps({"2027": {"holidays": ["2026-11-30"]}}))
    with pytest.raises(HolidaysFileError, match="listed under 2027 and under 2028"):
        parse_holidays(json.dumps({"2027": {"holidays": ["2027-12-31"]},
                                   "2028": {"holidays": ["2027-12-31..2028-01-01"]}}))


def write(tmp_path: Path, text: str, name: str = "holidays.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "words"), [
    ('{\n  "2027": {\n    "holidays": ["2027-01-01",\n }', 4, "not JSON"),
    ('{\n  "27": {"holidays": []}\n}', 2, "not a year"),
    ('{\n  "2027": {\n    "holidays": [\n      "2027-01-01",\n      "2027-02-05..2027-02-11",'
     '\n      "2027-02-10"\n    ]\n  }\n}', 6, "listed twice (overlapping or duplicate"),
    ('{\n  "2027": {\n    "holidays": ["2027-02-05..2027-02-11",\n'
     '                 "2027-02-09..2027-02-12"]\n  }\n}', 4, "overlapping"),
    ('{\n  "2027": {\n    "holidays": [],\n    "workdays": [\n      "2027-02-17"\n    ]\n  }\n}',
     5, "is a Wednesday"),
    ('{\n  "2027": {\n    "holidays": ["2027-02-20"],\n    "workdays": ["2027-02-20"]\n  }\n}',
     4, "a holiday and as a working day"),
    ('{\n  "2027": {\n    "holidays": ["2028-01-01"]\n  }\n}', 3, "listed under year 2027"),
    ('{\n  "2027": {\n    "holidays": ["2027-13-01"]\n  }\n}', 3, "2027-13-01"),
    ('{\n  "2027": {\n    "holiday": []\n  }\n}', 3, "unknown field 'holiday'"),
])
def test_a_bad_file_is_refused_with_the_file_and_line(tmp_path: Path, text: str, line: int,
                                                      words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HolidaysFileError) as raised:
        load_holidays(path)
    assert raised.value.line == line, str(raised.value)
    assert words in str(raised.value)
    assert str(path) in str(raised.value) and f"line {line}" in str(raised.value)


def test_a_gap_after_the_package_is_refused_at_the_years_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "2028": {"holidays": ["2028-01-03"]}\n}')
    with pytest.raises(HolidaysFileError, match="2027 is not covered") as raised:
        WorkingCalendar(holidays=load_holidays(path))
    assert raised.value.line == 2 and raised.value.path == str(path)


def test_the_package_wins_for_its_own_years(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"2026": {"holidays": ["2026-03-02"]}}))
    calendar = WorkingCalendar(holidays=load_holidays(path))
    assert calendar.is_working_day(date(2026, 3, 2))
    assert calendar.source_of(2026) is YearSource.PACKAGE


def test_an_empty_file_is_a_place_for_next_years_schedule(tmp_path: Path) -> None:
    calendar = WorkingCalendar(holidays=load_holidays(write(tmp_path, "{}")))
    assert calendar.official_until == 2026


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(HolidaysFileError, match="cannot be read") as raised:
        load_holidays(tmp_path / "nowhere.json")
    assert raised.value.path == str(tmp_path / "nowhere.json")
