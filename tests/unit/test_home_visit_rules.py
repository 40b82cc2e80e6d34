"""When a run of missed periods calls for a home visit: after two in a row, after one for a
resident who needs more care; one visit per run; a period paid in time ends the run. Pure
domain, no servers (the story over HTTP: tests/followup/test_home_visits.py)."""

from __future__ import annotations

from datetime import date

from services.followup.domain import follow_up_id_for, home_visit_after
from tests.unit.test_followup_rules import CALENDAR, at, meta, watched


def test_two_periods_in_a_row_call_for_a_visit_one_for_a_resident_needing_care() -> None:
    assert (home_visit_after(False), home_visit_after(True)) == (2, 1)
    o = watched(date(2026, 2, 28))
    assert o.home_visit_id(False) is None and o.home_visit_id(True) is None
    o.miss(at(3, 4, 17), CALENDAR, 3, meta())
    run = follow_up_id_for("home-visit", f"{o.obligation_id}:2026-02-28")
    assert o.home_visit_id(True) == run and o.home_visit_id(False) is None
    o.miss(at(4, 2, 17), CALENDAR, 3, meta())
    assert o.home_visit_id(False) == run == o.home_visit_id(True), "one visit per run"


def test_a_period_paid_late_does_not_end_the_run_one_paid_in_time_does() -> None:
    o = watched(date(2026, 2, 28))
    o.miss(at(3, 4, 17), CALENDAR, 3, meta())
    o.fulfil(date(2026, 2, 28), date(2026, 3, 5), CALENDAR, 3, meta("late-feb"))
    o.miss(at(4, 2, 17), CALENDAR, 3, meta())
    assert o.home_visit_id(False) is not None, "two missed in a row, one of them paid late"
    o.fulfil(None, date(2026, 4, 28), CALENDAR, 3, meta("april-in-time"))
    assert o.home_visit_id(True) is None, "a period paid in time ends the run"
    o.miss(at(6, 30, 17), CALENDAR, 3, meta())
    assert o.home_visit_id(True) == follow_up_id_for(
        "home-visit", f"{o.obligation_id}:{o.run_start}") and o.run_start == date(2026, 5, 28)
