"""The Case aggregate's rules, without servers: what a clerk may and may not do."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.intake.domain import Case, UrgencyNeedsSupervisor, case_id_for
from shared.eventstore.command_path import Act, on_existing
from shared.eventstore.group_commit import Unit
from shared.kernel.errors import (
    AlreadyDoneError,
    IdempotencyKeyReused,
    InvalidCommand,
    RuleViolated,
    VersionConflict,
)


def new_case() -> Case:
    return Case(id=case_id_for("c1", "open-1"), center_id="c1", counter_id="w1",
                clerk_id="k1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=uuid.uuid4(), meta={"causation_id": "open-1"})


def meta(key: str) -> dict[str, str]:
    return {"causation_id": key}


def test_steps_after_listening_need_the_request_heard_first() -> None:
    case = new_case()
    with pytest.raises(RuleViolated):
        case.resolve("resolved", "", True, meta("r1"))
    with pytest.raises(RuleViolated):
        case.give_guidance("SA-HARDSHIP-SUBSIDY", "办法", "eligible", "", [], meta("g1"))
    case.hear_request("想申请补助", meta("h1"))
    case.resolve("resolved", "", True, meta("r1"))
    assert case.status == "resolved"


def test_a_restatement_is_confirmed_or_corrected() -> None:
    case = new_case()
    case.hear_request("想申请补助", meta("h1"))
    with pytest.raises(InvalidCommand):
        case.restate_request("申请补助", False, None, meta("s1"))
    with pytest.raises(InvalidCommand):
        case.restate_request("申请补助", True, "其实不是", meta("s1"))
    case.restate_request("申请补助", False, "是临时救助", meta("s1"))
    assert case.understood is False
    case.restate_request("申请临时救助", True, None, meta("s2"))
    assert case.understood is True


def test_only_a_resolved_case_reopens() -> None:
    case = new_case()
    with pytest.raises(RuleViolated):
        case.reopen("再问问", meta("o1"))
    case.hear_request("x", meta("h1"))
    case.resolve("cannot_be_resolved", "不在本中心职权范围，已告知去向", False, meta("r1"))
    case.reopen("居民带来了新材料", meta("o1"))
    assert case.status == "open"


def on_the_path(case: Case, kind: str, key: str, act: Act,
                expected_version: int | None = None) -> None:
    """A command as the command path runs it, on a unit holding only ``case``."""
    unit = Unit({case.id: case})
    unit.begin(None)
    on_existing(case.id, "case", kind, act, meta(key), key, expected_version)(unit)


def test_a_key_applied_once_answers_with_the_first_version() -> None:
    case = new_case()
    on_the_path(case, "RequestHeard", "h1", lambda c, m: c.hear_request("x", m))
    on_the_path(case, "DeadlineNoted", "d1",
                lambda c, m: c.note_deadline(uuid.uuid4(), date(2026, 12, 1), "补材料", m))
    with pytest.raises(AlreadyDoneError) as done:  # before If-Match: a retry is not stale
        on_the_path(case, "RequestHeard", "h1", lambda c, m: c.hear_request("x", m),
                    expected_version=1)
    assert done.value.version == 2
    with pytest.raises(IdempotencyKeyReused):
        on_the_path(case, "ConcernsNoted", "h1",
                    lambda c, m: c.note_concerns([], [], "calm", "low", m))
    with pytest.raises(VersionConflict):
        on_the_path(case, "ConcernsNoted", "n1",
                    lambda c, m: c.note_concerns([], [], "calm", "low", m), expected_version=2)
    assert case.version == 3


def test_an_obligation_needs_a_resident_to_contact() -> None:
    case = Case(id=uuid.uuid4(), center_id="c1", counter_id="w1", clerk_id="k1",
                channel="phone", service_item="MI-MEDICAL-REIMBURSEMENT", resident_id=None,
                meta={})
    with pytest.raises(RuleViolated):
        case.declare_obligation(uuid.uuid4(), "每月报销", "monthly", date(2026, 12, 10),
                                meta("o1"))


def test_a_residents_not_solved_reopens_a_resolved_case_once_and_only_about_its_last_resolution(
        ) -> None:
    from datetime import datetime, timedelta

    from shared.contracts.vocabulary import RESIDENT_SAYS_UNSOLVED

    resolved_at = datetime.fromisoformat("2026-11-25T10:00:00+08:00")
    case = new_case()
    case.hear_request("临时救助还没到账", meta("h1"))
    assert case.hear_unsolved(resolved_at, meta("early")) is False  # still open: nothing
    case.resolve("resolved", "", True, {"causation_id": "r1", "occurred_at": resolved_at})
    # Said before this resolution: about an earlier one, nothing.
    assert case.hear_unsolved(resolved_at - timedelta(minutes=1), meta("old")) is False
    assert case.hear_unsolved(resolved_at + timedelta(hours=1), meta("verdict:1")) is True
    assert case.status == "open"
    reopened = case.collect_events()[-1]
    assert type(reopened).__name__ == "CaseReopened"
    assert reopened.reason == RESIDENT_SAYS_UNSOLVED
    assert reopened.judged_at is None  # said within the grace: its moment stands
    # The same verdict again (a redelivery) is answered as the first time, through its key.
    case.resolve("resolved", "", True, {"causation_id": "r2", "occurred_at": resolved_at})
    with pytest.raises(AlreadyDoneError):
        case.check_new_command("verdict:1", "CaseReopened")


def test_urgency_rises_by_anyone_and_is_lowered_only_by_a_supervisor_who_is_recorded() -> None:
    """A clerk noted a case critical, then noted it again "normal": the latest ConcernsNoted is
    what the worklists read, so the case left the board's "critical whatever its due date"
    list. Now lowering it is a supervisor's (403 ``urgency_needs_supervisor``, nothing
    recorded); raising is anyone's; the lowering says what it was lowered from, and the
    envelope its actor. Rebuilt from its events, the case knows its urgency."""
    case = new_case()
    case.hear_request("水管爆了", meta("h1"))
    case.note_concerns([], [], "anxious", "normal", meta("n1"))
    case.note_concerns([], [], "anxious", "critical", meta("n2"))
    with pytest.raises(UrgencyNeedsSupervisor) as refused:
        case.note_concerns([], [], "calm", "normal", meta("n3"))
    assert (refused.value.status, refused.value.code) == (403, "urgency_needs_supervisor")
    case.note_concerns([], [], "calm", "critical", meta("n4"))  # the same: anyone
    case.note_concerns([], [], "calm", "high", {**meta("n5"), "actor": "director-01"},
                       supervisor=True)
    events = case.collect_events()
    noted = [e for e in events if type(e).__name__ == "ConcernsNoted"]
    assert [(e.urgency, e.lowered_from) for e in noted] == [
        ("normal", None), ("critical", None), ("critical", None), ("high", "critical")]
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert isinstance(rebuilt, Case) and rebuilt.urgency == "high"
    with pytest.raises(UrgencyNeedsSupervisor):
        rebuilt.note_concerns([], [], "calm", "low", meta("n6"))


def test_a_supervisor_who_is_the_cases_clerk_does_not_lower_its_urgency() -> None:
    """The rule's purpose is that nobody lowers the urgency of their own case: a supervisor
    serving cases too (its first clerk, or one it was handed to, even after handing it on)
    noting their own critical case "normal" took it off the board's critical list with no
    one else looking. Another supervisor lowers it; raising it stays anyone's."""
    case = Case(id=case_id_for("c1", "open-9"), center_id="c1", counter_id="w1",
                clerk_id="director-01", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=uuid.uuid4(), meta={"causation_id": "open-9"})
    case.hear_request("水管爆了", meta("h1"))
    case.note_concerns([], [], "anxious", "critical", {**meta("n1"), "actor": "director-01"})
    own = {**meta("n2"), "actor": "director-01"}
    with pytest.raises(UrgencyNeedsSupervisor) as refused:
        case.note_concerns([], [], "calm", "normal", own, supervisor=True)
    assert refused.value.details["own_case"] is True
    case.note_concerns([], [], "calm", "critical", own, supervisor=True)  # the same: anyone
    case.hand_over("k7", None, "轮岗", {**meta("t1"), "actor": "director-01"})
    with pytest.raises(UrgencyNeedsSupervisor):  # handed on: still its first clerk
        case.note_concerns([], [], "calm", "normal", {**meta("n3"), "actor": "director-01"},
                           supervisor=True)
    case.note_concerns([], [], "calm", "high", {**meta("n4"), "actor": "director-02"},
                       supervisor=True)
    assert case.urgency == "high"


def test_a_supervisor_who_heard_the_resident_out_does_not_lower_the_cases_urgency() -> None:
    """Hearing a case is serving it (steps 1 and 2 are the service): a supervisor who took the
    resident's words and noted their worries "critical" at a busy window, the case staying
    with its clerk, then noted it "normal" took their own case off the board's critical list,
    while feedback already refused them its bad review's decisions (``served_by``). One
    definition (``shared.kernel.serving.is_own_case``): the case is theirs, also rebuilt from
    its events, and for its extension too; a supervisor who never served it lowers it."""
    case = new_case()
    heard = {**meta("h1"), "actor": "director-03"}
    case.hear_request("水管爆了", heard)
    case.note_concerns([], [], "anxious", "critical", {**meta("n1"), "actor": "k1"})
    with pytest.raises(UrgencyNeedsSupervisor) as refused:
        case.note_concerns([], [], "calm", "normal", {**meta("n2"), "actor": "director-03"},
                           supervisor=True)
    assert refused.value.details["own_case"] is True
    assert case.is_own_case("director-03") and not case.approves_extension("director-03", True)
    rebuilt = None
    for e in case.collect_events():
        rebuilt = e.mutate(rebuilt)
    assert isinstance(rebuilt, Case) and rebuilt.is_own_case("director-03")
    assert not rebuilt.is_own_case("director-02")
    rebuilt.note_concerns([], [], "calm", "normal", {**meta("n3"), "actor": "director-02"},
                          supervisor=True)
    assert rebuilt.urgency == "normal"


def test_the_supervisor_who_lowered_a_cases_urgency_approves_its_extension() -> None:
    """Lowering the urgency is a supervisor's decision on another's case, as approving its
    extension is: it serves nobody (``staff_of_step``), so the supervisor above who lowered it
    (a center whose own supervisor served the case) approves the extension after, and a
    survey answer is not theirs to be refused for it; refused before: the lowering counted as
    noting the concerns (step 2), the case became theirs."""
    case = new_case()
    case.hear_request("水管爆了", {**meta("h1"), "actor": "k1"})
    case.note_concerns([], [], "anxious", "critical", {**meta("n1"), "actor": "k1"})
    case.note_concerns([], [], "calm", "normal", {**meta("n2"), "actor": "director-02"},
                       supervisor=True)
    assert case.urgency == "normal" and not case.is_own_case("director-02")
    assert case.approves_extension("director-02", True)
    rebuilt = None
    for e in case.collect_events():
        rebuilt = e.mutate(rebuilt)
    assert isinstance(rebuilt, Case) and not rebuilt.is_own_case("director-02")
    # Noting it again at the same or a higher urgency is noting the concerns: serving.
    rebuilt.note_concerns([], [], "upset", "critical", {**meta("n3"), "actor": "director-02"},
                          supervisor=True)
    assert rebuilt.is_own_case("director-02")


def test_a_not_solved_said_past_the_grace_is_reopened_with_its_judged_moment() -> None:
    """Said a month back, recorded at 23:30 on New Year's Eve: the reopening carries the moment
    follow-up plans the clerk's follow-up from (intake's clock less the grace); without it the
    follow-up was planned on the answer's day and lapsed at once."""
    from datetime import datetime

    resolved_at = datetime.fromisoformat("2026-11-25T10:00:00+08:00")
    judged = datetime.fromisoformat("2026-12-28T23:30:00+08:00")
    case = new_case()
    case.hear_request("临时救助还没到账", meta("h1"))
    case.resolve("resolved", "", True, {"causation_id": "r1", "occurred_at": resolved_at})
    assert case.hear_unsolved(datetime.fromisoformat("2026-12-01T15:00:00+08:00"),
                              meta("verdict:1"), judged_at=judged) is True
    assert case.collect_events()[-1].judged_at == judged
