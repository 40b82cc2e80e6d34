"""The center's working-day calendar: statutory holidays, make-up days, office hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.kernel.calendar import (
    Basis,
    CalendarOutOfRange,
    DueRule,
    OfficeHours,
    Planned,
    WorkingCalendar,
    YearSource,
    covered_years,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()  # Asia/Shanghai, 09:00-17:00


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# -- the years the calendar knows -----------------------------------------------------------


def test_covers_the_years_the_package_knows_including_2025_and_2026() -> None:
    first, last = covered_years()
    assert first <= 2004
    assert last >= 2026
    assert (CALENDAR.first_year, CALENDAR.official_until) == (first, last)


def test_years_after_the_package_are_provisional_up_to_a_bound_then_refused() -> None:
    first, last = covered_years()
    assert CALENDAR.official_until == last
    assert CALENDAR.last_year == last + 5, "five provisional years by default"
    assert CALENDAR.source_of(last) is YearSource.PACKAGE
    assert CALENDAR.source_of(last + 1) is YearSource.PROVISIONAL
    assert CALENDAR.coverage() == [(first, last, YearSource.PACKAGE),
                                   (last + 1, last + 5, YearSource.PROVISIONAL)]
    with pytest.raises(CalendarOutOfRange) as raised:
        CALENDAR.is_working_day(date(last + 6, 3, 2))
    assert raised.value.year == last + 6
    message = str(raised.value)
    assert str(last + 6) in message and f"{first}-{last + 5}" in message
    assert f"official schedules {first}-{last}" in message

    with pytest.raises(CalendarOutOfRange, match=str(first - 1)):
        CALENDAR.working_days_between(date(first - 1, 12, 1), date(first, 1, 5))


def test_without_provisional_years_the_first_unknown_year_is_refused() -> None:
    _, last = covered_years()
    strict = WorkingCalendar(provisional_years=0)
    with pytest.raises(CalendarOutOfRange, match=str(last + 1)):
        strict.add_working_days(date(last, 12, 20), 30)


def test_counting_past_the_last_covered_year_is_refused() -> None:
    end = CALENDAR.last_year
    with pytest.raises(CalendarOutOfRange, match=str(end + 1)):
        CALENDAR.add_working_days(date(end, 12, 20), 30)
    with pytest.raises(CalendarOutOfRange, match=str(end + 1)):
        CALENDAR.next_working_morning(at(end, 12, 31, 18))
    first, _ = covered_years()
    with pytest.raises(CalendarOutOfRange, match=str(first - 1)):
        CALENDAR.subtract_working_days(date(first, 1, 10), 30)


def test_a_date_counted_on_a_provisional_year_says_so() -> None:
    _, last = covered_years()
    assert CALENDAR.basis_of(date(last, 12, 31)) is Basis.OFFICIAL
    assert CALENDAR.basis_of(date(last, 12, 31), date(last + 1, 1, 4)) is Basis.PROVISIONAL
    assert CALENDAR.basis_of(at(last, 12, 31, 23, 30)) is Basis.OFFICIAL
    # 16:30 UTC on Dec 31 is already New Year's Day in Shanghai.
    assert CALENDAR.basis_of(datetime(last, 12, 31, 16, 30, tzinfo=UTC)) is Basis.PROVISIONAL
    planned = CALENDAR.plan(DueRule("on_or_after", date(2026, 12, 28), 5))
    assert planned == Planned(at(2027, 1, 5, 9), Basis.PROVISIONAL)
    # A reminder 3 working days before a deadline on Jan 8 2027 counts January's days.
    reminder = CALENDAR.plan(DueRule("on_or_before", date(2027, 1, 8), 3))
    assert reminder == Planned(at(2027, 1, 5, 9), Basis.PROVISIONAL)
    early = CALENDAR.plan(DueRule("on_or_before", date(2026, 12, 31), 3,
                                  not_before=at(2026, 12, 29, 10)))
    assert early == Planned(at(2026, 12, 29, 10), Basis.OFFICIAL), "closer: at once"


# -- National Day golden week 2025 ----------------------------------------------------------


def test_national_day_golden_week_2025() -> None:
    for day in range(1, 9):  # Oct 1-8 2025: National Day and Mid-Autumn, all off
        assert not CALENDAR.is_working_day(date(2025, 10, day)), f"2025-10-{day:02d}"
    assert CALENDAR.is_working_day(date(2025, 9, 28))  # Sunday, a make-up working day
    assert CALENDAR.is_working_day(date(2025, 10, 11))  # Saturday, a make-up working day
    assert not CALENDAR.is_working_day(date(2025, 9, 27))  # an ordinary Saturday
    assert not CALENDAR.is_working_day(date(2025, 10, 12))  # an ordinary Sunday

    # A request heard on Tuesday Sep 30 with "one working day" is due Thursday Oct 9.
    assert CALENDAR.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    # Sep 26 (Fri), 28 (Sun, make-up), 29, 30, Oct 9, 10, 11 (Sat, make-up).
    assert CALENDAR.working_days_between(date(2025, 9, 26), date(2025, 10, 13)) == 7


def test_a_make_up_saturday_counts_as_a_working_day() -> None:
    # Thursday Oct 9 2025 + 2 working days: Friday Oct 10, then the make-up Saturday Oct 11.
    assert CALENDAR.add_working_days(date(2025, 10, 9), 2) == date(2025, 10, 11)
    assert CALENDAR.due_at(date(2025, 10, 9), 2) == at(2025, 10, 11, 9)


def test_n_working_days_across_spring_festival_2026() -> None:
    # Feb 14 2026 is a make-up Saturday; Feb 15-23 are the Spring Festival holiday.
    assert CALENDAR.is_working_day(date(2026, 2, 14))
    assert not any(CALENDAR.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    # Heard on Friday Feb 13 at 16:00: Sat 14 is 1, Tue 24 is 2, Wed 25 is 3 working days.
    assert CALENDAR.add_working_days(at(2026, 2, 13, 16), 3) == date(2026, 2, 25)
    assert CALENDAR.due_at(at(2026, 2, 13, 16), 3) == at(2026, 2, 25, 9)
    assert CALENDAR.working_days_between(date(2026, 2, 13), date(2026, 2, 25)) == 3
    assert CALENDAR.subtract_working_days(date(2026, 2, 25), 3) == date(2026, 2, 13)


def test_zero_working_days_is_the_same_day_or_the_next_working_day() -> None:
    assert CALENDAR.add_working_days(date(2025, 10, 9), 0) == date(2025, 10, 9)
    assert CALENDAR.add_working_days(date(2025, 10, 1), 0) == date(2025, 10, 9)
    assert CALENDAR.subtract_working_days(date(2025, 10, 5), 0) == date(2025, 9, 30)


def test_a_weekend_home_visit_counts_from_the_next_working_day() -> None:
    # Saturday Nov 15 2025: as if received on Monday Nov 17; one working day -> Tuesday.
    assert CALENDAR.add_working_days(date(2025, 11, 15), 1) == date(2025, 11, 18)


def test_between_is_negative_when_reversed() -> None:
    assert CALENDAR.working_days_between(date(2025, 10, 13), date(2025, 9, 26)) == -7


# -- mornings and deadlines -----------------------------------------------------------------


def test_next_working_morning_after_a_friday_evening_is_monday() -> None:
    assert CALENDAR.next_working_morning(at(2025, 11, 14, 18, 30)) == at(2025, 11, 17, 9)


def test_next_working_morning_before_golden_week_skips_to_after_it() -> None:
    assert CALENDAR.next_working_morning(at(2025, 9, 30, 17, 5)) == at(2025, 10, 9, 9)
    # Friday Oct 10 evening: the next morning is the make-up Saturday.
    assert CALENDAR.next_working_morning(at(2025, 10, 10, 19)) == at(2025, 10, 11, 9)


def test_next_working_morning_before_opening_is_the_same_morning() -> None:
    assert CALENDAR.next_working_morning(at(2025, 11, 17, 7, 45)) == at(2025, 11, 17, 9)
    assert CALENDAR.next_working_morning(at(2025, 11, 17, 9)) == at(2025, 11, 17, 9)
    assert CALENDAR.next_working_morning(at(2025, 11, 17, 9, 1)) == at(2025, 11, 18, 9)


def test_moments_in_other_zones_are_read_in_the_center_zone() -> None:
    # 2025-11-14 23:30 UTC is Saturday 07:30 in Shanghai -> Monday morning.
    utc_evening = datetime(2025, 11, 14, 23, 30, tzinfo=UTC)
    assert CALENDAR.next_working_morning(utc_evening) == at(2025, 11, 17, 9)
    assert CALENDAR.next_working_morning(utc_evening).tzinfo == SHANGHAI
    assert not CALENDAR.is_working_day(utc_evening)


@pytest.mark.parametrize(("at", "next_day"), [
    # Sunday 20 December 2026, in the morning UTC (afternoon at the center)
    (datetime(2026, 12, 20, 3, tzinfo=UTC), date(2026, 12, 21)),
    # 31 December 2026 23:30 at the center: the new year's midnight, half an hour on
    (datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI), date(2027, 1, 1)),
    (datetime(2026, 12, 31, 15, 59, 59, 999999, tzinfo=UTC), date(2027, 1, 1)),
    # exactly midnight: the day after (a later day than its own)
    (datetime(2027, 1, 1, tzinfo=SHANGHAI), date(2027, 1, 2)),
    # a provisional year, and one the package knows nothing of (2028)
    (datetime(2027, 10, 1, 12, tzinfo=SHANGHAI), date(2027, 10, 2)),
    (datetime(2028, 2, 28, 22, tzinfo=UTC), date(2028, 3, 1)),  # 29 Feb at the center
])
def test_the_next_center_day_starts_at_its_midnight(at: datetime, next_day: date) -> None:
    start = CALENDAR.next_day_start(at)
    assert start == datetime.combine(next_day, time(0), tzinfo=SHANGHAI)
    assert start.tzinfo is at.tzinfo  # in the caller's zone, as it gave ``at``
    assert CALENDAR.local_day(start) == next_day
    assert CALENDAR.local_day(start - timedelta(microseconds=1)) < next_day


def test_a_day_whose_midnight_the_clock_skips_starts_when_the_clock_jumps() -> None:
    """Santiago's clock went from 23:59:59 on 5 September 2026 to 01:00 on the 6th: the 6th
    starts at that jump (04:00 UTC), the first moment the center reads as the 6th."""
    santiago = WorkingCalendar(tz="America/Santiago")
    start = santiago.next_day_start(datetime(2026, 9, 5, 23, 30,
                                             tzinfo=ZoneInfo("America/Santiago")))
    assert start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert santiago.local_day(start) == date(2026, 9, 6)
    # a microsecond before, counted on the clock (in the zone itself, 00:59:59.999999 of
    # the 6th: a time that never was)
    assert santiago.local_day(start.astimezone(UTC) - timedelta(microseconds=1)) == date(
        2026, 9, 5)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        CALENDAR.next_working_morning(datetime(2025, 11, 14, 18))
    with pytest.raises(TypeError, match="naive datetime"):
        CALENDAR.add_working_days(datetime(2025, 11, 14, 18), 1)


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        CALENDAR.add_working_days(date(2025, 11, 14), -1)


def test_office_hours_with_a_lunch_break() -> None:
    hours = OfficeHours(
        open=time(8, 30), close=time(17, 30), lunch_start=time(12), lunch_end=time(13, 30)
    )
    calendar = WorkingCalendar("Asia/Shanghai", hours)
    assert calendar.next_working_morning(at(2025, 11, 14, 18)) == at(2025, 11, 17, 8, 30)
    assert calendar.is_open(at(2025, 11, 17, 10))
    assert not calendar.is_open(at(2025, 11, 17, 12, 15))
    assert not calendar.is_open(at(2025, 11, 17, 17, 30))
    assert not calendar.is_open(at(2025, 10, 2, 10))  # golden week
    assert calendar.is_open(at(2025, 10, 11, 10))  # make-up Saturday


def test_inconsistent_office_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="closes"):
        OfficeHours(open=time(17), close=time(9))
    with pytest.raises(ValueError, match="lunch"):
        OfficeHours(lunch_start=time(12))
    with pytest.raises(ValueError, match="inside office hours"):
        OfficeHours(lunch_start=time(8), lunch_end=time(10))


# -- properties -----------------------------------------------------------------------------

_FIRST, _LAST = covered_years()
days = st.dates(min_value=date(_FIRST, 1, 1), max_value=date(_LAST, 9, 30))
counts = st.integers(min_value=0, max_value=40)
zones = st.sampled_from([SHANGHAI, ZoneInfo("UTC"), ZoneInfo("America/New_York")])
moments = st.datetimes(
    min_value=datetime(_FIRST, 1, 2), max_value=datetime(_LAST, 9, 30), timezones=zones
)


@given(days, counts)
def test_adding_lands_on_a_working_day_exactly_n_working_days_later(start: date, n: int) -> None:
    end = CALENDAR.add_working_days(start, n)
    assert CALENDAR.is_working_day(end)
    assert end >= start
    assert CALENDAR.working_days_between(start, end) == n
    assert CALENDAR.add_working_days(start, n + 1) > end


@given(days, counts)
def test_subtracting_undoes_adding(start: date, n: int) -> None:
    end = CALENDAR.add_working_days(start, n)
    assert CALENDAR.subtract_working_days(end, n) == CALENDAR.add_working_days(start, 0)
    later = start + timedelta(days=90)  # far enough from the first covered year's start
    back = CALENDAR.subtract_working_days(later, n)
    assert CALENDAR.is_working_day(back) and back <= later
    # When `later` is a day off, the last working day before it is counted as well.
    expected = n if CALENDAR.is_working_day(later) else n + 1
    assert CALENDAR.working_days_between(back, later) == expected


@given(days, days)
def test_between_is_antisymmetric_and_additive(a: date, b: date) -> None:
    assert CALENDAR.working_days_between(a, b) == -CALENDAR.working_days_between(b, a)
    middle = min(a, b) + (max(a, b) - min(a, b)) / 2
    assert CALENDAR.working_days_between(a, b) == (
        CALENDAR.working_days_between(a, middle) + CALENDAR.working_days_between(middle, b)
    )


@given(moments)
def test_next_working_morning_is_the_first_opening_not_before(moment: datetime) -> None:
    morning = CALENDAR.next_working_morning(moment)
    assert morning.tzinfo == SHANGHAI
    assert morning >= moment
    assert morning.time() == time(9)
    assert CALENDAR.is_working_day(morning.date())
    local = moment.astimezone(SHANGHAI)
    if morning.date() == local.date():
        assert local.time() <= time(9)
    else:  # no working morning is skipped between the moment and the result
        next_day = local.date() + timedelta(days=1)
        assert CALENDAR.working_days_between(next_day, morning.date()) == 0
    assert morning - moment < timedelta(days=20)
