"""The months the period scheduler closes by itself (``PeriodScheduler.due_months``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.feedback.closing import CLOSE_LOOKBACK_MONTHS, PeriodScheduler


def scheduler(after_days: int = 5) -> PeriodScheduler:
    none: Any = None
    return PeriodScheduler(none, none, after_days, schema="feedback")


def test_months_left_open_while_the_service_was_down_are_closed_when_it_is_back() -> None:
    """Feedback down (or its clock standing) from March 2027 to 3 March 2028: March 2027 had
    events and stayed open with nothing said (only the last two months were looked at,
    redteam65). Every month of the last year that may close is due, oldest first."""
    months = scheduler().due_months(date(2028, 3, 3))
    assert date(2027, 3, 1) in months and date(2028, 1, 1) in months
    assert months == sorted(months) and len(months) == CLOSE_LOOKBACK_MONTHS - 1
    assert date(2028, 2, 1) not in months  # 29 Feb + 5 days: not yet


def test_a_month_closes_after_its_days_even_at_the_years_turn() -> None:
    """December closes once its ``after_days`` have passed, in the new year's first days."""
    assert date(2026, 12, 1) not in scheduler().due_months(date(2027, 1, 5))
    assert date(2026, 12, 1) in scheduler().due_months(date(2027, 1, 6))
    assert scheduler().due_months(date(2026, 12, 20))[-1] == date(2026, 11, 1)
