"""Working days counted by hand on the real 2026 schedule and on provisional 2027.

Each expected date below was worked out on paper from the State Council's 2026 notice and, for
2027, from the statutory rules alone (no make-up day assumed). ``add_working_days(s, n)`` is the
(n+1)-th working day on or after ``s``: the deadline of "n working days after s".
"""

from __future__ import annotations

from datetime import date

import pytest

from shared.kernel.calendar import Basis, WorkingCalendar

CALENDAR = WorkingCalendar()


def off(*days: date) -> None:
    for day in days:
        assert not CALENDAR.is_working_day(day), f"{day} should be a day off"


def worked(*days: date) -> None:
    for day in days:
        assert CALENDAR.is_working_day(day), f"{day} should be worked"


def test_spring_festival_2026_nine_days_off_and_two_make_up_saturdays() -> None:
    off(*(date(2026, 2, d) for d in range(15, 24)))  # Sun Feb 15 .. Mon Feb 23
    worked(date(2026, 2, 14), date(2026, 2, 28))  # the make-up Saturdays
    # A bad review on Friday Feb 13: 15 working days are Sat 14, Tue 24 .. Fri 27, Sat 28,
    # Mar 2-6, Mar 9-12.
    assert CALENDAR.add_working_days(date(2026, 2, 13), 15) == date(2026, 3, 12)
    assert CALENDAR.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert CALENDAR.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)


def test_national_day_2026_seven_days_off_and_make_up_sunday_and_saturday() -> None:
    off(*(date(2026, 10, d) for d in range(1, 8)))  # Thu Oct 1 .. Wed Oct 7
    worked(date(2026, 9, 20), date(2026, 10, 10))  # Sunday Sep 20, Saturday Oct 10
    off(date(2026, 9, 19), date(2026, 10, 11))  # the weekend days beside them
    # From Wednesday Sep 30: Oct 8, 9, Sat 10, 12-16, 19-23, 26, 27.
    assert CALENDAR.add_working_days(date(2026, 9, 30), 15) == date(2026, 10, 27)
    assert CALENDAR.add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 8)
    # Friday Sep 18 + 1 working day is the make-up Sunday.
    assert CALENDAR.add_working_days(date(2026, 9, 18), 1) == date(2026, 9, 20)


def test_the_rest_of_2026() -> None:
    off(date(2026, 1, 1), date(2026, 1, 2), date(2026, 4, 6), date(2026, 5, 4),
        date(2026, 5, 5), date(2026, 6, 19), date(2026, 9, 25))
    worked(date(2026, 1, 4), date(2026, 5, 9))  # Sunday Jan 4, Saturday May 9


def test_2027_is_provisional_statutory_holidays_only() -> None:
    off(date(2027, 1, 1),  # Friday, New Year's Day
        date(2027, 2, 5), date(2027, 2, 8),  # Spring Festival eve (Fri) and day 3 (Mon)
        date(2027, 4, 5),  # Qingming (Mon)
        date(2027, 6, 9), date(2027, 9, 15),  # Dragon Boat, Mid-Autumn (Wednesdays)
        date(2027, 10, 1))  # National Day (Fri); Oct 2-3 are a weekend anyway
    # No day in lieu is assumed for a holiday on a weekend, and no make-up day either:
    worked(date(2027, 2, 9), date(2027, 5, 3), date(2027, 10, 4))
    off(date(2027, 2, 6), date(2027, 5, 1), date(2027, 5, 2), date(2027, 10, 2))
    # Monday Feb 1 + 5 working days: Feb 2, 3, 4, then Tue Feb 9 and Wed Feb 10.
    assert CALENDAR.add_working_days(date(2027, 2, 1), 5) == date(2027, 2, 10)
    assert CALENDAR.basis_of(date(2027, 2, 10)) is Basis.PROVISIONAL


@pytest.mark.parametrize(("answered", "deadline"), [
    # Tue Dec 15 2026: Dec 16-18, 21-25, 28-31 (12), Jan 1 off, Jan 4, 5, 6.
    (date(2026, 12, 15), date(2027, 1, 6)),
    # Sunday Dec 20 2026 counts from Monday Dec 21 (day 0): Dec 22 .. Jan 12.
    (date(2026, 12, 20), date(2027, 1, 12)),
    # Thu Dec 3 2026: Dec 4, 7-11, 14-18, 21-24: official.
    (date(2026, 12, 3), date(2026, 12, 24)),
])
def test_a_rectification_deadline_of_fifteen_working_days_in_december(
        answered: date, deadline: date) -> None:
    assert CALENDAR.add_working_days(answered, 15) == deadline
    basis = CALENDAR.basis_of(answered, deadline)
    assert basis is (Basis.PROVISIONAL if deadline.year == 2027 else Basis.OFFICIAL)
