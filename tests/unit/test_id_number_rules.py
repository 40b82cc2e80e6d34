"""Resident ID numbers without servers: the birth date is checked against China's date, which
from 16:00 UTC is a day ahead of the machine's."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

import pytest

from services.intake import idnumber
from services.intake.idnumber import check_character, problem_with

#: 2026-12-04 17:30 UTC is 2026-12-05 01:30 in Shanghai.
EVENING_UTC = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)


class _Evening(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Evening:  # type: ignore[override]
        moment = EVENING_UTC.astimezone(tz) if tz is not None else EVENING_UTC
        return cls.fromtimestamp(moment.timestamp(), moment.tzinfo)


def born_on(day: date) -> str:
    first17 = f"310115{day:%Y%m%d}001"
    return first17 + check_character(first17)


@pytest.fixture
def evening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idnumber, "datetime", _Evening)


@pytest.mark.usefixtures("evening")
def test_a_child_born_today_in_china_is_valid_while_the_machine_is_still_on_yesterday() -> None:
    assert problem_with(born_on(date(2026, 12, 5))) is None


@pytest.mark.usefixtures("evening")
def test_a_birth_date_after_chinas_today_is_out_of_range() -> None:
    assert problem_with(born_on(date(2026, 12, 6))) == "the ID number's birth date is out of range"


def test_the_caller_may_give_today() -> None:
    assert problem_with(born_on(date(2026, 12, 5)), today=date(2026, 12, 4)) is not None
    assert problem_with(born_on(date(2026, 12, 5)), today=date(2026, 12, 5)) is None


def test_the_reason_never_quotes_the_number() -> None:
    number = "31011519900230001X"
    why = problem_with(number)
    assert why is not None and number not in why and "19900230" not in why
