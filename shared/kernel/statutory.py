"""China's statutory public holidays as the law fixes them, for years no schedule covers yet.

The State Council's rules on national holidays (《全国年节及纪念日放假办法》) name the days off;
each year's schedule (放假安排) then adds the days taken in lieu and the make-up working days
(调休). A year whose schedule is not yet published is planned on the law alone, *provisionally*
(``shared.kernel.calendar``): weekends plus the days below, no make-up day ever assumed.

The rules in force are those of 国务院令第795号, effective 2025-01-01: 13 days —

* New Year's Day: 1 January
* Spring Festival: the lunar New Year's Eve and days 1-3 of the first lunar month
* Qingming: the day of the Qingming solar term (清明)
* Labour Day: 1-2 May
* Dragon Boat Festival: the 5th day of the 5th lunar month
* Mid-Autumn Festival: the 15th day of the 8th lunar month
* National Day: 1-3 October

The two earlier versions are kept with their effective dates (国务院令第513号, 2008-2013:
Spring Festival eve and days 1-2, Labour Day one day; 国务院令第644号, 2014-2024: Spring Festival
days 1-3, no eve, Labour Day one day) so that the method is checked against every year the
chinese-calendar package knows (``tests/unit/test_statutory.py``), not only the last two.

Lunar dates and the solar term come from ``lunar-python`` (6tail's pure-Python port of the
寿星天文历 algorithms, computed in Beijing time, no tables that run out): one maintained
library, no native code, for both the lunar months and the 24 solar terms. The package is
imported here only, so swapping it touches one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar, Solar

__all__ = ["RULES", "StatutoryRules", "qingming", "rules_for", "statutory_holidays"]


@dataclass(frozen=True)
class StatutoryRules:
    """One version of the national holiday rules: which days are off, from when."""

    decree: str
    effective_from: date
    spring_festival_eve: bool
    spring_festival_days: int  # days of the first lunar month from day 1
    labour_days: int  # from 1 May


RULES: tuple[StatutoryRules, ...] = (
    StatutoryRules("国务院令第513号", date(2008, 1, 1), spring_festival_eve=True,
                   spring_festival_days=2, labour_days=1),
    StatutoryRules("国务院令第644号", date(2014, 1, 1), spring_festival_eve=False,
                   spring_festival_days=3, labour_days=1),
    StatutoryRules("国务院令第795号", date(2025, 1, 1), spring_festival_eve=True,
                   spring_festival_days=3, labour_days=2),
)
"""Oldest first; the last one is in force."""


def rules_for(year: int) -> StatutoryRules:
    """The rules in force on 1 January of ``year`` (2008 or later)."""
    if year < RULES[0].effective_from.year:
        raise ValueError(f"no statutory holiday rules are kept for {year} (before 2008)")
    return [r for r in RULES if r.effective_from <= date(year, 1, 1)][-1]


def _solar(lunar: Lunar) -> date:
    solar = lunar.getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def lunar_day(year: int, month: int, day: int) -> date:
    """The Gregorian date of a day of the lunar year that starts in Gregorian ``year``."""
    return _solar(Lunar.fromYmd(year, month, day))


def qingming(year: int) -> date:
    """The day of the Qingming solar term (4, 5 or 6 April), Beijing time."""
    term = Solar.fromYmd(year, 4, 20).getLunar().getJieQiTable()["清明"]
    day = date(term.getYear(), term.getMonth(), term.getDay())
    if day.year != year:  # the table is the lunar year's; never expected, checked anyway
        raise ValueError(f"Qingming of {year} came out as {day}")
    return day


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> dict[date, str]:
    """Every statutory day off of ``year`` by the rules then in force, with its holiday's name.

    Only what the law gives: no day in lieu for a holiday that falls on a weekend (a weekend is
    off anyway) and no make-up working day (those come only with the published schedule).
    Two holidays on one day (Mid-Autumn on 1 October) are one day off.
    """
    rules = rules_for(year)
    new_year = lunar_day(year, 1, 1)
    days: dict[date, str] = {}

    def off(day: date, name: str) -> None:
        days.setdefault(day, name)

    off(date(year, 1, 1), "new_years_day")
    if rules.spring_festival_eve:
        off(new_year - timedelta(days=1), "spring_festival")
    for n in range(rules.spring_festival_days):
        off(new_year + timedelta(days=n), "spring_festival")
    off(qingming(year), "tomb_sweeping_day")
    for n in range(rules.labour_days):
        off(date(year, 5, 1 + n), "labour_day")
    off(lunar_day(year, 5, 5), "dragon_boat_festival")
    off(date(year, 10, 1), "national_day")  # before Mid-Autumn: the day keeps this name
    off(lunar_day(year, 8, 15), "mid_autumn_festival")
    for n in (1, 2):
        off(date(year, 10, 1 + n), "national_day")
    return dict(sorted(days.items()))
