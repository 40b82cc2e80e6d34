"""Resident ID numbers without servers: the birth date is checked against China's date on the
service's clock, which from 16:00 UTC is a day ahead of the machine's."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.intake.idnumber import check_character, issued_today, problem_with

#: 2026-12-04 17:30 UTC is 2026-12-05 01:30 in Shanghai.
EVENING_UTC = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)


def born_on(day: date) -> str:
    first17 = f"310115{day:%Y%m%d}001"
    return first17 + check_character(first17)


def test_a_child_born_today_in_china_is_valid_while_the_machine_is_still_on_yesterday() -> None:
    assert problem_with(born_on(date(2026, 12, 5)), issued_today(EVENING_UTC)) is None


def test_a_birth_date_after_chinas_today_is_out_of_range() -> None:
    assert problem_with(born_on(date(2026, 12, 6)), issued_today(EVENING_UTC)) == (
        "the ID number's birth date is out of range")


def test_new_years_eve_at_half_past_eleven_in_shanghai_is_still_the_old_year() -> None:
    """31 December 23:30 in Shanghai is 15:30 UTC; an hour later it is 1 January there."""
    eve = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    assert issued_today(eve) == date(2026, 12, 31)
    assert problem_with(born_on(date(2027, 1, 1)), issued_today(eve)) is not None
    assert problem_with(born_on(date(2027, 1, 1)), issued_today(eve.replace(hour=16))) is None


def test_the_caller_may_give_today() -> None:
    assert problem_with(born_on(date(2026, 12, 5)), today=date(2026, 12, 4)) is not None
    assert problem_with(born_on(date(2026, 12, 5)), today=date(2026, 12, 5)) is None


def test_the_reason_never_quotes_the_number() -> None:
    number = "31011519900230001X"
    why = problem_with(number)
    assert why is not None and number not in why and "19900230" not in why
