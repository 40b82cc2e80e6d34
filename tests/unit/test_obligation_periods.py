"""The periods of a recurring obligation (``shared/kernel/periods.py``): the next one a
resident is told about, whenever the obligation was declared."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.kernel.periods import add_months, next_period_on_or_after


def test_a_series_begun_before_the_declaration_is_told_from_its_next_period() -> None:
    # Declared on 5 December for a reimbursement due on the 1st since September.
    assert next_period_on_or_after(date(2026, 9, 1), "monthly", date(2026, 12, 5)) == \
        date(2027, 1, 1)
    assert next_period_on_or_after(date(2026, 9, 1), "monthly", date(2026, 12, 1)) == \
        date(2026, 12, 1)
    assert next_period_on_or_after(date(2026, 9, 30), "quarterly", date(2026, 12, 20)) == \
        date(2026, 12, 30)
    assert next_period_on_or_after(date(2025, 12, 31), "yearly", date(2026, 12, 31)) == \
        date(2026, 12, 31)


def test_a_first_period_still_ahead_is_itself() -> None:
    assert next_period_on_or_after(date(2027, 2, 28), "monthly", date(2026, 12, 20)) == \
        date(2027, 2, 28)


def test_the_31st_falls_on_each_months_last_day_and_comes_back() -> None:
    assert next_period_on_or_after(date(2026, 1, 31), "monthly", date(2027, 2, 1)) == \
        date(2027, 2, 28)
    assert next_period_on_or_after(date(2026, 1, 31), "monthly", date(2027, 3, 1)) == \
        date(2027, 3, 31)
    assert next_period_on_or_after(date(2024, 2, 29), "yearly", date(2027, 1, 1)) == \
        date(2027, 2, 28)


@pytest.mark.parametrize("cadence", ["monthly", "quarterly", "yearly"])
def test_it_is_the_first_period_not_past_for_every_day_of_two_years(cadence: str) -> None:
    first = date(2025, 1, 31)
    series = [add_months(first, n * {"monthly": 1, "quarterly": 3, "yearly": 12}[cadence])
              for n in range(40)]
    day = date(2025, 1, 1)
    while day < date(2027, 1, 1):
        assert next_period_on_or_after(first, cadence, day) == \
            min(due for due in series if due >= day)
        day += timedelta(days=1)
