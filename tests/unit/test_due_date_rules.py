"""The due date's rules, without servers: the earliest wins, only a person moves it later, only
the item's provisional count is re-planned; and what makes a case urgent."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.followup.consumer import is_urgent
from services.intake.domain import Case, DueCandidate, NotCaseOwner
from shared.contracts.vocabulary import Basis, DueCause, DueSource
from shared.kernel.errors import InvalidCommand, RuleViolated


def heard_case() -> Case:
    case = Case(id=uuid.uuid4(), center_id="c1", counter_id="w1", clerk_id="k1",
                channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                meta={"causation_id": "open"})
    case.hear_request("想申请补助", {"causation_id": "hear"})
    return case


def item_days(day: date, basis: Basis = Basis.OFFICIAL) -> DueCandidate:
    return DueCandidate(day, DueSource.ITEM_DAYS, DueCause.GUIDANCE, basis,
                        counted_from=date(2026, 3, 2), working_days=15)


def promised(day: date) -> DueCandidate:
    return DueCandidate(day, DueSource.PROMISED, DueCause.PROMISED, Basis.OFFICIAL)


def recorded(case: Case) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def test_the_earliest_candidate_wins_and_automatic_sources_never_put_it_later() -> None:
    case = heard_case()
    case.collect_events()
    case.give_guidance("SA-HARDSHIP-SUBSIDY", "办法", "eligible", "", [],
                       {"causation_id": "g1"},
                       [item_days(date(2026, 3, 23)), promised(date(2026, 3, 12))])
    assert recorded(case) == ["GuidanceGiven", "CaseDueDateSet"]
    assert case.due_on == date(2026, 3, 12) and case.due["source"] == "promised"
    # Later or equal: nothing; earlier: recorded with the day it replaces.
    assert not case.consider_due([item_days(date(2026, 3, 12))], {"causation_id": "x"})
    assert not case.consider_due([], {"causation_id": "y"})
    assert case.consider_due([DueCandidate(date(2026, 3, 5), DueSource.DEADLINE,
                                           DueCause.DEADLINE_NOTED, Basis.OFFICIAL)],
                             {"causation_id": "d1"})
    [event] = case.collect_events()
    assert (event.due_on, event.previous_due_on, event.source) == (
        date(2026, 3, 5), date(2026, 3, 12), "deadline")


def test_a_person_moves_it_either_way_with_a_reason_while_the_case_is_open() -> None:
    case = heard_case()
    case.consider_due([item_days(date(2026, 3, 23))], {"causation_id": "g"})
    with pytest.raises(NotCaseOwner):
        case.move_due_date(date(2026, 4, 1), "等证明", "official", "k2", False, {})
    with pytest.raises(InvalidCommand):
        case.move_due_date(date(2026, 4, 1), " ", "official", "k1", False, {})
    with pytest.raises(InvalidCommand):
        case.move_due_date(date(2026, 3, 23), "同一天", "official", "k1", False, {})
    case.move_due_date(date(2026, 4, 1), "等证明", "official", "k1", False, {})
    case.move_due_date(date(2026, 3, 30), "主管要求提前", "official", "boss", True, {})
    assert case.due_on == date(2026, 3, 30) and case.due["source"] == "moved"
    case.resolve("resolved", "", True, {})
    with pytest.raises(RuleViolated):
        case.move_due_date(date(2026, 4, 10), "延期", "official", "k1", False, {})


def test_only_an_open_cases_item_count_is_re_planned_when_its_day_or_basis_moves() -> None:
    case = heard_case()
    case.consider_due([item_days(date(2027, 1, 12), Basis.PROVISIONAL)], {})
    assert not case.replan_due(date(2027, 1, 12), "provisional", {})  # nothing changed
    assert case.replan_due(date(2027, 1, 13), "official", {})
    assert case.due["basis"] == "official"
    assert not case.replan_due(date(2027, 1, 13), "official", {})  # the same count: stays
    # The published notice corrected (a day it counted over is off after all): moved again.
    assert case.replan_due(date(2027, 1, 14), "official", {})
    assert case.due_on == date(2027, 1, 14)
    case.resolve("resolved", "", True, {})
    assert not case.replan_due(date(2027, 1, 15), "official", {})  # resolved: never rewritten

    fixed = heard_case()
    fixed.consider_due([promised(date(2027, 1, 5))], {})
    fixed.due["basis"] = "provisional"  # as a promise on a provisional year is recorded
    assert not fixed.replan_due(date(2027, 1, 6), "official", {})


@pytest.mark.parametrize(("case", "urgent"), [
    ({"urgency": "critical"}, True), ({"urgency": "high"}, True),
    ({"urgency": "normal"}, False), ({"urgency": "low", "deadline_close": True}, True),
    ({"urgency": None, "deadline_close": False}, False), ({}, False)])
def test_urgency_high_or_critical_or_a_close_deadline_makes_a_case_urgent(
        case: dict[str, object], urgent: bool) -> None:
    assert is_urgent(case) is urgent
