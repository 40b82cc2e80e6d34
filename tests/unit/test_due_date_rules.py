"""The due date's rules, without servers: the earliest wins, only a person moves it later, only
the item's provisional count is re-planned; and what makes a case urgent."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.followup.consumer import is_urgent
from services.intake.domain import Case, DueCandidate, ExtensionNeedsSupervisor, NotCaseOwner
from shared.contracts.vocabulary import Basis, DueCause, DueSource
from shared.kernel.calendar import WorkingCalendar
from shared.kernel.errors import CommandError, InvalidCommand, RuleViolated


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


CALENDAR_EDGES = [
    date(2026, 12, 20),  # a Sunday
    date(2026, 12, 31),  # New Year's Eve, 23:30 in Shanghai (15:30 UTC): still the 31st there
    date(2027, 3, 10),  # a year the holiday package does not know
]


@pytest.mark.parametrize("today", CALENDAR_EDGES)
def test_an_overdue_cases_extension_is_approved_by_a_supervisor_not_its_own_clerk(
        today: date) -> None:
    """延期审批: a supervisor who opened the case, or had it handed to them, is its clerk, and
    approving its own extension would take it off the overdue list and count it on time in
    按时办结率, as its clerk moving it would. Another supervisor approves it."""
    case = Case(id=uuid.uuid4(), center_id="c1", counter_id="w1", clerk_id="boss",
                channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                meta={"causation_id": "open"})
    case.hear_request("想申请补助", {"causation_id": "hear"})
    case.consider_due([item_days(date(2026, 12, 18))], {"causation_id": "g"})
    later = date(2027, 4, 1)
    with pytest.raises(CommandError) as refused:
        case.move_due_date(later, "延期", "official", "boss", True, {}, today)
    assert (refused.value.status, refused.value.code) == (403, "self_approval")
    case.hand_over("boss2", None, "转办", {"causation_id": "h"})
    for own_clerk in ("boss", "boss2"):  # the first clerk, and the one it was handed to
        with pytest.raises(CommandError) as refused:
            case.move_due_date(later, "延期", "official", own_clerk, True, {}, today)
        assert refused.value.code == "self_approval"
    with pytest.raises(ExtensionNeedsSupervisor):
        case.move_due_date(later, "延期", "official", "boss2", False, {}, today)
    # Earlier, they move it as before; before it is overdue, later too.
    case.move_due_date(date(2026, 12, 17), "提前", "official", "boss", True, {}, today)
    case.move_due_date(later, "延期审批", "official", "director", True, {}, today)
    assert case.due_on == later
    case.move_due_date(date(2027, 4, 2), "等证明", "official", "boss2", True, {}, today)
    assert case.due_on == date(2027, 4, 2)


@pytest.mark.parametrize("today", CALENDAR_EDGES)
def test_a_supervisor_who_hands_their_overdue_case_away_does_not_approve_its_extension(
        today: date) -> None:
    """The second route around ``self_approval``: a case opened by clerk A, handed to
    supervisor S, is overdue on S's desk; S hands it to a team (or to clerk B), approves the
    extension as if someone else's, and takes it back. Who had it once approves it no more;
    another supervisor does."""
    case = Case(id=uuid.uuid4(), center_id="c1", counter_id="w1", clerk_id="clerk-a",
                channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                meta={"causation_id": "open"})
    case.hear_request("想申请补助", {"causation_id": "hear"})
    case.consider_due([item_days(date(2026, 12, 18))], {"causation_id": "g"})
    later = date(2027, 4, 1)
    case.hand_over("boss", None, "转办", {"causation_id": "h1"})
    case.hand_over(None, "team-hardship", "交给组里", {"causation_id": "h2"})
    with pytest.raises(CommandError) as refused:  # on the team's desk now
        case.move_due_date(later, "延期", "official", "boss", True, {}, today)
    assert (refused.value.status, refused.value.code) == (403, "self_approval")
    case.hand_over("clerk-b", None, "转办", {"causation_id": "h3"})
    with pytest.raises(CommandError) as refused:  # on a colleague's desk now
        case.move_due_date(later, "延期", "official", "boss", True, {}, today)
    assert refused.value.code == "self_approval"
    case.move_due_date(later, "延期审批", "official", "director", True, {}, today)
    assert case.due_on == later


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


def reopened_due(calendar: WorkingCalendar, reopened_on: date, days: int = 15
                 ) -> DueCandidate:
    """What intake works out at a reopening (``Intake._reopened_due``): the item's days
    counted from the reopening day."""
    due_on = calendar.add_working_days(reopened_on, days)
    return DueCandidate(due_on, DueSource.ITEM_DAYS, DueCause.REOPENED,
                        calendar.basis_of(reopened_on, due_on), counted_from=reopened_on,
                        working_days=days)


@pytest.mark.parametrize(("reopened_on", "due_on", "basis"), [
    # Sunday 20 December: Monday 21 is day 0; New Year's Day by the law; 2027 provisional.
    (date(2026, 12, 20), date(2027, 1, 12), Basis.PROVISIONAL),
    # New Year's Eve (reopened at 23:30 Shanghai, the 31st there): day 0 that Thursday.
    (date(2026, 12, 31), date(2027, 1, 22), Basis.PROVISIONAL),
    (date(2027, 3, 10), date(2027, 3, 31), Basis.PROVISIONAL),
])
def test_a_reopened_case_gets_its_items_days_again_from_the_reopening_day(
        reopened_on: date, due_on: date, basis: Basis) -> None:
    case = heard_case()
    case.consider_due([item_days(date(2026, 3, 23))], {"causation_id": "g"})
    case.resolve("resolved", "", True, {"causation_id": "r"})
    case.collect_events()
    due = reopened_due(WorkingCalendar(), reopened_on)
    assert (due.due_on, due.basis) == (due_on, basis)
    case.reopen("居民补充了材料", {"causation_id": "o"}, due)
    assert recorded(case) == ["CaseReopened", "CaseDueDateSet"]
    assert (case.due_on, case.due["basis"], case.due["source"]) == (
        due_on, basis.value, "item_days")
    # Re-planned like any count of the item's days when that year's schedule comes.
    assert case.replan_due(due_on, "official", {})


def test_a_case_past_its_due_date_is_reopened_by_its_clerk_still_overdue() -> None:
    """延期 by a reopening: due Friday 18 December, nothing done; on Sunday 20 December its
    clerk posts the resolution dated the 18th (within the 72 h grace: on time) and reopens
    it. Renewed, the overdue case got 15 working days (12 January 2027, provisional) without
    a supervisor; resolved again, on time. It stays due on the 18th, overdue; a supervisor
    who is not its clerk renews it (延期审批), the resident's word too."""
    calendar, sunday = WorkingCalendar(), date(2026, 12, 20)
    for reopener, supervisor, renewed in (("k1", False, False), ("k9", False, False),
                                          ("k1", True, False), ("boss", True, True)):
        case = heard_case()
        case.consider_due([item_days(date(2026, 12, 18))], {"causation_id": "g"})
        case.resolve("resolved", "", True, {"causation_id": "r"})
        case.collect_events()
        case.reopen("居民补充了材料", {"causation_id": "o", "actor": reopener},
                    reopened_due(calendar, sunday), sunday, supervisor)
        assert (recorded(case)[1:], case.due_on) == (
            (["CaseDueDateSet"], date(2027, 1, 12)) if renewed else ([], date(2026, 12, 18)))
    # Nor by the clerk's own post-resolution check that Sunday, the resident's "not solved"
    # recorded by k1: the same extension by another door. Heard by a colleague's call or the
    # survey's link, the resident's word renews it.
    for heard_by, renewed in (("k1", False), ("k9", True), ("resident", True)):
        case = heard_case()
        case.consider_due([item_days(date(2026, 12, 18))], {"causation_id": "g"})
        case.resolve("resolved", "", True, {"causation_id": "r"})
        case.collect_events()
        assert case.hear_unsolved(datetime(2026, 12, 20, 10, tzinfo=UTC),
                                  {"causation_id": "v", "actor": "system:verdicts"},
                                  reopened_due(calendar, sunday), sunday, heard_by)
        assert case.due_on == (date(2027, 1, 12) if renewed else date(2026, 12, 18)), heard_by
    # The day is the center's on the service's clock: at 23:30 on New Year's Eve in Shanghai
    # (15:30 UTC) a case due on the 31st is not overdue yet; at 00:10 on 1 January it is.
    for now, renewed in ((datetime(2026, 12, 31, 15, 30, tzinfo=UTC), True),
                         (datetime(2026, 12, 31, 16, 10, tzinfo=UTC), False)):
        today = calendar.local_day(now)
        case = heard_case()
        case.consider_due([item_days(date(2026, 12, 31))], {"causation_id": "g"})
        case.resolve("resolved", "", True, {"causation_id": "r"})
        case.collect_events()
        case.reopen("x", {"causation_id": "o", "actor": "k1"}, reopened_due(calendar, today),
                    today)
        assert case.due_on == (date(2027, 1, 22) if renewed else date(2026, 12, 31)), now


def test_a_later_due_date_stays_and_a_case_never_given_one_gets_none_at_a_reopening() -> None:
    calendar = WorkingCalendar()
    promised_late = heard_case()
    promised_late.consider_due([promised(date(2027, 6, 30))], {"causation_id": "p"})
    promised_late.resolve("resolved", "", True, {"causation_id": "r"})
    promised_late.collect_events()
    promised_late.reopen("x", {"causation_id": "o"}, reopened_due(calendar, date(2026, 12, 20)))
    assert recorded(promised_late) == ["CaseReopened"]
    assert promised_late.due_on == date(2027, 6, 30)
    never = heard_case()
    never.resolve("resolved", "", True, {"causation_id": "r"})
    never.collect_events()
    assert never.hear_unsolved(datetime(2026, 12, 20, 10, tzinfo=UTC), {"causation_id": "v"},
                               reopened_due(calendar, date(2026, 12, 20)))
    assert recorded(never) == ["CaseReopened"] and never.due_on is None
    # A resident's "not solved" renews it as a clerk's reopening does.
    unsolved = heard_case()
    unsolved.consider_due([item_days(date(2026, 3, 23))], {"causation_id": "g"})
    unsolved.resolve("resolved", "", True, {"causation_id": "r"})
    unsolved.collect_events()
    assert unsolved.hear_unsolved(datetime(2026, 12, 20, 10, tzinfo=UTC),
                                  {"causation_id": "v"},
                                  reopened_due(calendar, date(2026, 12, 20)))
    assert recorded(unsolved) == ["CaseReopened", "CaseDueDateSet"]
    assert unsolved.due_on == date(2027, 1, 12)


@pytest.mark.parametrize(("case", "urgent"), [
    ({"urgency": "critical"}, True), ({"urgency": "high"}, True),
    ({"urgency": "normal"}, False), ({"urgency": "low", "deadline_close": True}, True),
    ({"urgency": None, "deadline_close": False}, False), ({}, False)])
def test_urgency_high_or_critical_or_a_close_deadline_makes_a_case_urgent(
        case: dict[str, object], urgent: bool) -> None:
    assert is_urgent(case) is urgent


def test_a_case_resolved_after_its_due_date_is_late_and_one_resolved_on_it_is_not() -> None:
    """``Case.resolved_late``, on the center's day: resolved on the due date itself is on time
    (its days are counted again at a reopening), the day after is late (they are not)."""
    case = heard_case()
    case.consider_due([item_days(date(2026, 12, 31))], {"causation_id": "g"})
    assert not case.resolved_late(date(2026, 12, 31))
    assert case.resolved_late(date(2027, 1, 1))
    assert not heard_case().resolved_late(date(2027, 1, 1))  # never given a due date
