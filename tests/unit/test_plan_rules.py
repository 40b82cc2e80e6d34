"""Linked plans, acting for someone and employment aid: the rules, without servers."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from pydantic import ValidationError

from services.intake.commands import OpenCase
from services.intake.domain import Case, case_id_for
from services.intake.plan import Plan, effective_day, plan_id_for, step_id_for
from shared.kernel.errors import InvalidCommand, RuleViolated

CENTER = "SH-PD-HUAMU"


def meta(key: str) -> dict[str, str]:
    return {"causation_id": key, "center_id": CENTER}


def new_plan(resident: uuid.UUID) -> Plan:
    plan_id = plan_id_for(CENTER, "plan-1")
    return Plan(id=plan_id, plan_id=plan_id, center_id=CENTER, counter_id="window-3",
                resident_id=resident, title="治疗期间的保障衔接", meta=meta("plan-1"))


def test_a_month_step_takes_effect_on_its_first_day_and_a_day_step_on_its_day() -> None:
    assert effective_day(date(2026, 4, 17), "month") == date(2026, 4, 1)
    assert effective_day(date(2026, 4, 17), "day") == date(2026, 4, 17)


def test_steps_are_ordered_and_wait_for_earlier_steps_only() -> None:
    resident = uuid.uuid4()
    plan = new_plan(resident)
    first = plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 4, 9), "month", None, None,
                          "最后一个月失业金", meta("s1"))
    assert first == step_id_for(plan.id, 1)
    with pytest.raises(InvalidCommand, match="before the step it depends on"):
        plan.add_step("MI-RESIDENT-MEDICAL-SUBSIDY", date(2026, 3, 31), "day", first, None,
                      "补助", meta("s2"))
    with pytest.raises(InvalidCommand, match="no step"):
        plan.add_step("MI-RESIDENT-MEDICAL-SUBSIDY", date(2026, 5, 1), "month",
                      step_id_for(plan.id, 7), None, "补助", meta("s2"))
    second = plan.add_step("MI-RESIDENT-MEDICAL-SUBSIDY", date(2026, 5, 20), "month", first,
                           None, "补助", meta("s2"))
    assert second == step_id_for(plan.id, 2)
    assert plan.steps[second]["effective_on"] == date(2026, 5, 1)


def test_a_step_is_carried_only_by_a_case_of_its_center_its_beneficiary_and_its_item() -> None:
    resident = uuid.uuid4()
    plan = new_plan(resident)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuleViolated, match="another beneficiary"):
        plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 4, 1), "month", None,
                      (theirs, CENTER, uuid.uuid4(), "SI-UNEMPLOYMENT-BENEFIT"), "x", meta("s1"))
    with pytest.raises(RuleViolated, match="another center"):
        plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 4, 1), "month", None,
                      (theirs, "SH-PD-LUJIAZUI", resident, "SI-UNEMPLOYMENT-BENEFIT"), "x",
                      meta("s1"))
    with pytest.raises(RuleViolated, match="another item"):
        plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 4, 1), "month", None,
                      (theirs, CENTER, resident, "MI-MEDICAL-REIMBURSEMENT"), "x", meta("s1"))
    step = plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 4, 1), "month", None, None, "x",
                         meta("s1"))
    with pytest.raises(RuleViolated, match="another item"):
        plan.link_case(step, (mine, CENTER, resident, "MI-MEDICAL-REIMBURSEMENT"), meta("l1"))
    plan.link_case(step, (mine, CENTER, resident, "SI-UNEMPLOYMENT-BENEFIT"), meta("l1"))
    with pytest.raises(RuleViolated, match="carried by a case already"):
        plan.link_case(step, (mine, CENTER, resident, "SI-UNEMPLOYMENT-BENEFIT"), meta("l2"))
    with pytest.raises(RuleViolated, match="carries a step of this plan already"):
        plan.add_step("SI-UNEMPLOYMENT-BENEFIT", date(2026, 5, 1), "month", None,
                      (mine, CENTER, resident, "SI-UNEMPLOYMENT-BENEFIT"), "y", meta("s2"))


def opening(**acting: object) -> OpenCase:
    return OpenCase.model_validate({"center_id": CENTER, "counter_id": "window-3",
                                    "service_item": "MI-RESIDENT-MEDICAL-SUBSIDY", **acting})


def test_acting_for_someone_names_both_residents_and_the_proof_seen() -> None:
    him, her = uuid.uuid4(), uuid.uuid4()
    assert opening(resident_id=him).applicant_id is None  # self: the beneficiary applies
    assert opening(resident_id=him, applicant_id=him).relation == "self"
    spouse = opening(resident_id=him, applicant_id=her, relation="spouse",
                     proof_seen="marriage_certificate")
    assert (spouse.resident_id, spouse.applicant_id) == (him, her)
    for bad in ({"resident_id": him, "relation": "spouse", "proof_seen": "marriage_certificate"},
                {"applicant_id": her, "relation": "guardian",
                 "proof_seen": "guardianship_paper"},
                {"resident_id": him, "applicant_id": her, "relation": "parent"},
                {"resident_id": him, "applicant_id": him, "relation": "child",
                 "proof_seen": "household_register"},
                {"resident_id": him, "applicant_id": her},
                {"resident_id": him, "proof_seen": "household_register"}):
        with pytest.raises(ValidationError):
            opening(**bad)


def test_guidance_sessions_and_one_placement_only_on_employment_aid_cases() -> None:
    case = Case(id=case_id_for(CENTER, "open-1"), center_id=CENTER, counter_id="studio-emp",
                clerk_id="k1", channel="counter", service_item="EMP-EMPLOYMENT-ASSISTANCE",
                resident_id=uuid.uuid4(), meta=meta("open-1"))
    with pytest.raises(RuleViolated, match="employment-aid case"):
        case.hold_guidance_session(uuid.uuid4(), date(2026, 3, 2), "studio-emp",
                                   "career_guidance", None, False, meta("g0"))
    case.hold_guidance_session(uuid.uuid4(), date(2026, 3, 2), "studio-emp", "career_guidance",
                               None, True, meta("g1"))
    case.record_placement(date(2026, 3, 10), "enterprise", "studio-emp", True, meta("p1"))
    with pytest.raises(RuleViolated, match="recorded already"):
        case.record_placement(date(2026, 3, 11), "enterprise", "studio-emp", True, meta("p2"))
    assert case.applicant_id == case.resident_id and len(case.guidance_sessions) == 1
