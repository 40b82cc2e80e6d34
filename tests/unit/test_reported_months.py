"""The rules of a reported month, server-free: when it may close, what counts as a change."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.feedback.figures.projection import FiguresProjection
from services.feedback.periods import (
    as_reported,
    changed_figures,
    closable,
    month_end,
    period_id_for,
)


@pytest.mark.parametrize(("month", "today", "after", "ok"), [
    (date(2026, 12, 1), date(2026, 12, 20), 5, False),  # 20 December: December is not over
    (date(2026, 11, 1), date(2026, 12, 5), 5, False),
    (date(2026, 11, 1), date(2026, 12, 6), 5, True),
    (date(2027, 12, 1), date(2028, 1, 1), 0, True),  # a provisional year: calendar days only
    (date(2028, 2, 1), date(2028, 2, 29), 0, False),  # a leap February ends on the 29th
    (date(2028, 2, 1), date(2028, 3, 1), 0, True),
])
def test_a_month_closes_by_itself_after_its_days(month: date, today: date, after: int,
                                                 ok: bool) -> None:
    assert closable(month, today, after) is ok


def test_a_month_is_one_id_per_center() -> None:
    assert period_id_for("SH-PD-HUAMU", date(2026, 5, 1)) == period_id_for(
        "SH-PD-HUAMU", date(2026, 5, 1))
    assert period_id_for("SH-PD-HUAMU", date(2026, 5, 1)) != period_id_for(
        "SH-XH-OTHER", date(2026, 5, 1))
    assert month_end(date(2027, 2, 1)) == date(2027, 2, 28)


def test_only_a_reported_figure_whose_counts_moved_is_a_change() -> None:
    before = as_reported({"visits": 8, "satisfaction_rate": {
        "numerator": 0, "denominator": 0, "rate": None}}, ["visits", "satisfaction_rate"])
    assert before == [{"name": "visits", "count": 8}, {
        "name": "satisfaction_rate", "numerator": 0, "denominator": 0, "rate": None}]
    same = [*before, {"name": "a_new_figure", "count": 3}]
    assert changed_figures(before, same) == []
    moved = [before[0], {"name": "satisfaction_rate", "numerator": 1, "denominator": 1,
                         "rate": 1.0}]
    assert changed_figures(before, moved) == ["satisfaction_rate"]


@pytest.mark.parametrize(("recorded", "month", "late"), [
    ("2026-12-31T15:30:00+00:00", date(2026, 12, 1), False),  # 31 Dec 23:30 in Shanghai
    ("2026-12-31T16:30:00+00:00", date(2026, 12, 1), True),  # 1 Jan 00:30 there, UTC's 31st
    ("2026-12-20T02:00:00+00:00", date(2026, 11, 1), True),  # Sunday 20 December
    ("2026-12-20T02:00:00+00:00", date(2026, 12, 1), False),
    ("2027-02-28T16:10:00+00:00", date(2027, 2, 1), True),  # 1 March 2027 in Shanghai
])
def test_a_fact_recorded_after_its_month_ended_at_the_center_is_noted_late(
        recorded: str, month: date, late: bool) -> None:
    figures = FiguresProjection(ZoneInfo("Asia/Shanghai"))
    e = SimpleNamespace(event_id=uuid4(), partition_key=uuid4(), center_id="SH-PD-HUAMU",
                        type="CaseResolved", recorded_at=datetime.fromisoformat(recorded))
    figures.late, figures.touched = {}, {}
    figures._note_late(0, e, {month}, set())  # type: ignore[arg-type]
    assert bool(figures.late) is late
    assert bool(figures.touched) is not late  # to be noted if the month is closed
