"""The law's holidays, worked out with lunar-python, against every official schedule we have.

The provisional calendar plans a year nobody has published yet from the statutory rules alone.
That is only honest if the rules, applied to the years whose official schedules the
chinese-calendar package carries, give exactly the days the State Council then named.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from chinese_calendar import Holiday

from shared.kernel.calendar import covered_years
from shared.kernel.statutory import RULES, qingming, rules_for, statutory_holidays

NAMES = {h.name: h.value for h in Holiday}  # national_day -> "National Day"
PACKAGE_YEARS = range(2008, covered_years()[1] + 1)  # 2008-2026 with chinese-calendar 1.11


def test_the_rules_in_force_are_decree_795_from_2025() -> None:
    assert rules_for(2027) is RULES[-1]
    assert RULES[-1].decree == "国务院令第795号"
    assert RULES[-1].effective_from == date(2025, 1, 1)
    assert rules_for(2024).decree == "国务院令第644号"
    assert len(statutory_holidays(2027)) == 13, "13 statutory days off since 2025"
    assert len(statutory_holidays(2024)) == 11


@pytest.mark.parametrize("year", list(PACKAGE_YEARS))
def test_every_statutory_day_is_a_day_off_in_the_official_schedule(year: int) -> None:
    """Computed as if the year were provisional, each holiday falls on a day the published
    schedule gives off, under that holiday's name (the package leaves a weekend unnamed): a
    lunar date one day out, the wrong rules (Spring Festival eve off before 2025) or a wrong
    solar term fail here."""
    for day, name in statutory_holidays(year).items():
        assert not chinese_calendar.is_workday(day), f"{day} ({name}) was worked in {year}"
        on_holiday, official = chinese_calendar.get_holiday_detail(day)
        unnamed_weekend = official is None and day.weekday() >= 5
        assert on_holiday and (official == NAMES[name] or unnamed_weekend), (day, name)


def test_2025_and_2026_by_the_rules_now_in_force() -> None:
    # Spring Festival eve is off again, Labour Day is two days.
    assert date(2025, 1, 28) in statutory_holidays(2025)  # 除夕
    assert date(2026, 2, 16) in statutory_holidays(2026)  # 除夕
    assert {date(2026, 5, 1), date(2026, 5, 2)} <= set(statutory_holidays(2026))
    assert date(2024, 2, 9) not in statutory_holidays(2024), "2024: the eve was worked"
    assert not chinese_calendar.is_holiday(date(2024, 2, 9))


def test_2027_provisional_holidays_worked_out_by_hand() -> None:
    # 2027: lunar New Year Sat Feb 6 (eve Fri Feb 5); Qingming Mon Apr 5; Dragon Boat
    # (5/5) Wed Jun 9; Mid-Autumn (8/15) Wed Sep 15.
    assert statutory_holidays(2027) == {
        date(2027, 1, 1): "new_years_day",
        date(2027, 2, 5): "spring_festival", date(2027, 2, 6): "spring_festival",
        date(2027, 2, 7): "spring_festival", date(2027, 2, 8): "spring_festival",
        date(2027, 4, 5): "tomb_sweeping_day",
        date(2027, 5, 1): "labour_day", date(2027, 5, 2): "labour_day",
        date(2027, 6, 9): "dragon_boat_festival",
        date(2027, 9, 15): "mid_autumn_festival",
        date(2027, 10, 1): "national_day", date(2027, 10, 2): "national_day",
        date(2027, 10, 3): "national_day",
    }


def test_mid_autumn_on_national_day_is_one_day_off() -> None:
    days = statutory_holidays(2031)  # 2031: 8/15 falls on Oct 1
    assert days[date(2031, 10, 1)] == "national_day"
    assert "mid_autumn_festival" not in days.values()
    assert len(days) == 12


@pytest.mark.parametrize("year", range(2004, 2051))
def test_qingming_agrees_with_the_packages_own_solar_term_formula(year: int) -> None:
    """Two independent methods: lunar-python's astronomy, chinese-calendar's 寿星 formula."""
    terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 30))
    [day] = [d for d, term in terms if term == "清明"]
    assert qingming(year) == day


def test_years_before_the_kept_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="2007"):
        statutory_holidays(2007)
    assert min(statutory_holidays(2008)) == date(2008, 1, 1)
    assert date(2008, 2, 6) in statutory_holidays(2008) and \
        date(2008, 2, 6) + timedelta(days=1) in statutory_holidays(2008)
