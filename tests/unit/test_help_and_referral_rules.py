"""帮办, 派单 and 转办 without servers: a help task's statuses and its one escalation, a
referral's reply and its 督办, a reply link bound to one referral, a handover that keeps the
first clerk, and deadlines at the calendar's edges (20 December; 2027 and 2028, provisional).

Dates on the 2026 schedule, office hours 09:00-17:00 in Asia/Shanghai (the default calendar).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.feedback.tokens import SurveyTokens, TokenInvalid
from services.followup.consumer import HELP_TASK, REFERRAL, Rules, _CaseRefs, _Planned
from services.followup.domain import (
    HelpTask,
    NotTheOwner,
    Referral,
    ReferralClosedError,
    referral_overdue_follow_up_id,
    working_deadline,
)
from services.followup.referral_tokens import (
    ReferralTokens,
    ReplyLinkExpired,
    ReplyLinkInvalid,
    ReplyLinkWrongReferral,
    link_expires_at,
)
from services.intake.domain import Case, case_id_for
from shared.contracts.envelope import Envelope
from shared.contracts.followup import Reason
from shared.kernel.calendar import Basis, WorkingCalendar
from shared.kernel.errors import InvalidCommand, RuleViolated
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
SECRET = "a-test-secret-of-thirty-two-chars!"


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


def meta(key: str | None = None) -> dict[str, Any]:
    return {"actor": "clerk-018", "occurred_at": at(2026, 3, 2), "causation_id": key,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def task(owner: str | None = "clerk-018") -> HelpTask:
    return HelpTask(id=uuid.uuid4(), owner_clerk=owner,
                    owner_team=None if owner else "supervisor", requested_by="clerk-017",
                    deadline_at=at(2026, 3, 4, 17), source_id=uuid.uuid4(),
                    service_item=None, meta=meta("open"))


def test_a_help_task_goes_accepted_in_progress_done_and_no_further() -> None:
    t = task()
    t.accept(meta("a"))
    t.start(meta("s"))
    t.finish("已协助", meta("d"))
    assert t.status == "done" and t.next_fire_at is None
    with pytest.raises(RuleViolated):
        t.hand_back("太晚", meta("b"))
    fresh = task()
    fresh.start(meta("s"))  # straight to work: acceptance is implied
    with pytest.raises(RuleViolated):
        fresh.accept(meta("a"))


def test_only_the_owner_or_a_supervisor_moves_a_help_task() -> None:
    task().check_owner("clerk-018", supervisor=False)
    task().check_owner("director-01", supervisor=True)
    with pytest.raises(NotTheOwner):
        task().check_owner("clerk-017", supervisor=False)
    with pytest.raises(NotTheOwner):
        task(owner=None).check_owner("clerk-018", supervisor=False)


def test_a_handed_back_task_says_why_and_is_not_escalated() -> None:
    t = task()
    with pytest.raises(InvalidCommand):
        t.hand_back("  ", meta("b"))
    t.hand_back("不属本人职责", meta("b"))
    assert t.advance(at(2026, 3, 9), CALENDAR, "supervisor", meta()) == []


def test_an_overdue_help_task_is_escalated_once_never_early() -> None:
    t = task()
    assert t.advance(at(2026, 3, 4, 16), CALENDAR, "supervisor", meta()) == []
    assert t.advance(at(2026, 3, 6, 10), CALENDAR, "supervisor", meta()) == [
        "HelpTaskEscalated"]
    assert t.escalated_to == "supervisor" and t.status == "open"
    assert t.next_fire_at is None
    assert t.advance(at(2026, 3, 9), CALENDAR, "supervisor", meta()) == []
    t.accept(meta("a"))  # still the owner's to do


def test_a_help_task_of_a_resolved_case_is_closed_once_and_never_escalated() -> None:
    t = task()
    t.accept(meta("a"))
    assert t.close_as_not_needed(meta()) is True
    assert (t.status, t.next_fire_at) == ("closed", None)
    assert t.close_as_not_needed(meta()) is False, "a redelivered resolution: nothing more"
    assert t.advance(at(2026, 3, 9), CALENDAR, "supervisor", meta(), True) == []
    assert t.advance(at(2026, 3, 9), CALENDAR, "supervisor", meta()) == []
    with pytest.raises(RuleViolated):
        t.finish("已协助", meta("d"))
    done = task()
    done.finish("已协助", meta("d"))
    assert done.close_as_not_needed(meta()) is False and done.status == "done"


def test_the_scheduler_closes_rather_than_escalates_a_task_of_a_case_known_resolved() -> None:
    t = task()
    assert t.advance(at(2026, 3, 4, 16), CALENDAR, "supervisor", meta(), True) == [], \
        "never early, not even to close"
    assert t.advance(at(2026, 3, 4, 17), CALENDAR, "supervisor", meta(), True) == [
        "HelpTaskClosed"]
    assert (t.status, t.escalated_to) == ("closed", None)
    # Escalated already before the case was resolved: it stays on the supervisors' list
    # (``test_resolving_the_case_leaves_an_overdue_help_task_to_a_supervisor``).
    late = task()
    late.advance(at(2026, 3, 4, 17), CALENDAR, "supervisor", meta())
    assert late.close_as_not_needed(meta()) is False and late.status == "open"


@pytest.mark.parametrize(("deadline_at", "resolved_at"), [
    (at(2026, 12, 18, 17), at(2026, 12, 20, 10)),  # Friday's, resolved on Sunday 20 December
    (at(2026, 12, 31, 17), datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)),  # New Year's Eve
    (at(2027, 2, 3, 17), at(2027, 2, 4, 10)),  # 2027, provisional
])
def test_resolving_the_case_leaves_an_overdue_help_task_to_a_supervisor(
        deadline_at: datetime, resolved_at: datetime) -> None:
    """The colleague asked to help let the deadline pass; the clerk resolved the case and the
    rules closed the task: the board's overdue 帮办 count dropped and the supervisors' list
    lost it, nobody above the clerk having said a word. Now a task past its deadline when the
    resolution was recorded is escalated (if the scheduler has not yet) and stays open, for
    its owner to finish late or a supervisor to finish or hand back; one escalated before
    stays too; a redelivered resolution records nothing; one still within its deadline is
    closed as before."""
    t = HelpTask(id=uuid.uuid4(), owner_clerk="clerk-018", owner_team=None,
                 requested_by="clerk-017", deadline_at=deadline_at, source_id=uuid.uuid4(),
                 service_item=None, meta=meta("open"))
    assert t.close_as_not_needed(meta("r1"), resolved_at, CALENDAR, "supervisor") is False
    assert (t.status, t.escalated_to, t.next_fire_at) == ("open", "supervisor", None)
    [*_, escalated] = t.collect_events()
    assert type(escalated).__name__ == "HelpTaskEscalated"
    assert t.close_as_not_needed(meta("r1"), resolved_at, CALENDAR, "supervisor") is False
    assert t.collect_events() == [], "a redelivered resolution records nothing"
    t.hand_back("案件已办结，不再需要", meta("b"))  # the route lets only owner or supervisor
    in_time = HelpTask(id=uuid.uuid4(), owner_clerk="clerk-018", owner_team=None,
                       requested_by="clerk-017", deadline_at=deadline_at,
                       source_id=uuid.uuid4(), service_item=None, meta=meta("open"))
    assert in_time.close_as_not_needed(meta("r2"), deadline_at - timedelta(minutes=1),
                                       CALENDAR, "supervisor") is True
    assert in_time.status == "closed"


def test_a_referral_chased_once_and_replied_once() -> None:
    r = Referral(id=uuid.uuid4(), unit_kind="employer", unit_name="某公司人事部",
                 unit_contact="", referred_by="clerk-017", reply_due_at=at(2026, 3, 5, 17),
                 source_id=uuid.uuid4(), meta=meta("sent"))
    assert r.advance(at(2026, 3, 5, 16), "clerk-018", None, meta()) is None
    chase = r.advance(at(2026, 3, 5, 17), "clerk-018", None, meta())
    assert chase == referral_overdue_follow_up_id(r.id) and r.status == "overdue"
    assert r.advance(at(2026, 3, 9), "clerk-018", None, meta()) is None
    r.reply("已补缴", by_recipient=True, meta=meta("reply"))
    with pytest.raises(RuleViolated):
        r.reply("再次回复", by_recipient=False, meta=meta("reply-2"))


def referral(due: datetime) -> Referral:
    return Referral(id=uuid.uuid4(), unit_kind="social_insurance_bureau",
                    unit_name="浦东新区社保中心", unit_contact="", referred_by="clerk-017",
                    reply_due_at=due, source_id=uuid.uuid4(), meta=meta("sent"))


@pytest.mark.parametrize("sent_on", [
    at(2026, 12, 20).date(),  # a Sunday: due Monday 21 December
    at(2026, 12, 31).date(),  # New Year's Eve: due Monday 4 January 2027, provisional
    at(2027, 3, 10).date(),  # 2027, provisional
])
def test_a_referral_of_a_resolved_case_is_closed_and_never_chased(sent_on: Any) -> None:
    due, _ = working_deadline(CALENDAR, sent_on, 1)
    # Closed by the rule on the resolution: nothing fires after; the unit's link takes no
    # reply (409 referral_closed), a clerk who heard the unit still records it.
    r = referral(due)
    assert r.close_as_not_needed(meta()) is True
    assert (r.status, r.next_fire_at) == ("closed", None)
    assert r.close_as_not_needed(meta()) is False, "a redelivered resolution: nothing more"
    assert r.advance(due + timedelta(days=1), "clerk-018", None, meta()) is None
    with pytest.raises(ReferralClosedError) as refused:
        r.reply("已核定", by_recipient=True, meta=meta("link-reply"))
    assert (refused.value.status, refused.value.code) == (409, "referral_closed")
    assert r.status == "closed"
    r.reply("已核定", by_recipient=False, meta=meta("reply"))
    assert r.status == "replied" and r.close_as_not_needed(meta()) is False
    # The scheduler at the deadline, the case known resolved: closed, no 督办.
    s = referral(due)
    assert s.advance(due, "clerk-018", None, meta(), True) is None
    assert (s.status, s.overdue_follow_up) == ("closed", None)
    # Still waiting, its deadline days away, the case known resolved (sent before the rules
    # closed referrals): closed at the tick that sees it, not left until its deadline.
    waiting = referral(due)
    assert waiting.advance(due - timedelta(days=1), "clerk-018", None, meta(), True) is None
    assert (waiting.status, waiting.next_fire_at) == ("closed", None)
    # Overdue already (a 督办 planned) when the case is resolved: closed too.
    late = referral(due)
    assert late.advance(due, "clerk-018", None, meta()) is not None
    assert late.close_as_not_needed(meta()) is True and late.next_fire_at is None
    # Overdue, its case resolved before the rules closed referrals: the scheduler finds it
    # (no timer: any moment after) and closes it; an overdue one of an open case stays.
    left = referral(due)
    assert left.advance(due, "clerk-018", None, meta()) is not None
    assert left.advance(due + timedelta(days=9), "clerk-018", None, meta()) is None
    assert left.status == "overdue"
    assert left.advance(due + timedelta(days=9), "clerk-018", None, meta(), True) is None
    assert (left.status, left.next_fire_at) == ("closed", None)


@pytest.mark.parametrize(("reopened_at", "due", "basis"), [
    # Sunday: counted as from Monday 21, the next working day, so Thursday 24 (until stop
    # 51 Monday was day 1 and it fell on Wednesday 23, a rectification's on Thursday 24).
    (at(2026, 12, 20, 10), at(2026, 12, 24, 17), Basis.OFFICIAL),
    # 23:30 on New Year's Eve, still the 31st in Shanghai: Jan 1 off, 2-3 a weekend, then
    # Monday 4 to Wednesday 6 January 2027 (the law alone: provisional).
    (datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI), at(2027, 1, 6, 17), Basis.PROVISIONAL),
    (at(2027, 3, 10, 10), at(2027, 3, 15, 17), Basis.PROVISIONAL),  # Wednesday, 2027
])
def test_a_referral_the_resolution_closed_is_chased_again_from_the_reopening(
        reopened_at: datetime, due: datetime, basis: Basis) -> None:
    """Sent Monday 2 March with three working days (due Thursday 5th), overdue, then closed by
    the resolution: the case reopened, the unit is awaited again, three working days from the
    reopening's day, and missed again gets a 督办 of its own (the first was cancelled)."""
    first, _ = working_deadline(CALENDAR, at(2026, 3, 2).date(), 3)
    r = referral(first)
    assert r.advance(first, "clerk-018", None, meta()) == referral_overdue_follow_up_id(r.id)
    assert r.close_as_not_needed(meta()) is True
    days = r.reply_working_days(CALENDAR, default=5)
    assert days == 3, "the referral's own working days, not the default"
    reply_due_at, worked_on = working_deadline(CALENDAR, CALENDAR.local_day(reopened_at), days)
    assert (reply_due_at, worked_on) == (due, basis)
    assert r.chase_again(reply_due_at, worked_on, meta("reopen")) is True
    assert (r.status, r.next_fire_at) == ("awaiting_reply", due)
    [*_, again] = r.collect_events()
    assert (type(again).__name__, again.round, again.basis) == (
        "ReferralReopened", 1, basis.value)
    assert r.chase_again(reply_due_at, worked_on, meta("reopen")) is False, "once"
    assert r.advance(due - timedelta(minutes=1), "clerk-018", None, meta()) is None
    chase = r.advance(due, "clerk-018", None, meta())
    assert chase == r.chase_id == referral_overdue_follow_up_id(r.id, 1)
    assert chase != referral_overdue_follow_up_id(r.id)
    # The same reopening delivered again once this round is overdue (its 督办 running), or
    # once a second resolution closed it: no new round, no second 督办.
    assert r.chased_by("reopen") and not r.chased_by("another-reopening")
    assert r.chase_again(reply_due_at, worked_on, meta("reopen")) is False, "redelivered"
    assert (r.status, r.round, r.chase_id) == ("overdue", 1, chase)
    assert r.close_as_not_needed(meta()) is True
    assert r.chase_again(reply_due_at, worked_on, meta("reopen")) is False, "redelivered"
    assert (r.status, r.round) == ("closed", 1)
    # A second reopening chases it again (round 2).
    assert r.chase_again(reply_due_at, worked_on, meta("reopen-2")) is True
    assert r.round == 2 and r.chase_id == referral_overdue_follow_up_id(r.id, 2)
    # Answered, a referral stays answered: a reopening does not chase it.
    answered = referral(first)
    answered.reply("已核定", by_recipient=True, meta=meta("reply"))
    assert answered.chase_again(reply_due_at, worked_on, meta("reopen")) is False
    assert answered.status == "replied"


@pytest.mark.parametrize(("day", "days", "due", "basis"), [
    (at(2026, 3, 2).date(), 1, at(2026, 3, 3, 17), Basis.OFFICIAL),  # Monday -> Tuesday
    (at(2026, 4, 3).date(), 1, at(2026, 4, 7, 17), Basis.OFFICIAL),  # over Qingming (4-6)
    # A Sunday counts as received on Monday 21: five working days after it (Friday 25
    # until stop 51, when the Sunday's next day counted as the first of five).
    (at(2026, 12, 20).date(), 5, at(2026, 12, 28, 17), Basis.OFFICIAL),
    (at(2026, 12, 28).date(), 5, None, Basis.PROVISIONAL),  # into 2027
    (at(2028, 6, 1).date(), 3, None, Basis.PROVISIONAL),
])
def test_deadlines_are_closing_on_the_nth_working_day_after(day: Any, days: int,
                                                              due: datetime | None,
                                                              basis: Basis) -> None:
    deadline, worked_on = working_deadline(CALENDAR, day, days)
    assert worked_on is basis
    if due is not None:
        assert deadline == due
    local = CALENDAR.local_day(deadline)
    assert CALENDAR.is_working_day(local) and local > day
    assert CALENDAR.working_days_between(day, local) == days  # a day off counts none


def test_a_reply_link_answers_its_own_referral_until_it_expires() -> None:
    tokens = ReferralTokens(SECRET)
    mine, other = uuid.uuid4(), uuid.uuid4()
    expires = datetime(2026, 4, 1, tzinfo=UTC)
    token = tokens.issue(mine, expires)
    assert tokens.check(token, mine, expires - timedelta(seconds=1)).referral_id == mine
    with pytest.raises(ReplyLinkWrongReferral):
        tokens.check(token, other, expires - timedelta(days=1))
    with pytest.raises(ReplyLinkExpired):
        tokens.check(token, mine, expires)
    with pytest.raises(ReplyLinkInvalid):
        ReferralTokens("another-secret-of-thirty-two-chars").read(token)
    with pytest.raises(ReplyLinkInvalid):
        tokens.read(token + "=")  # the same bytes, spelled another way
    with pytest.raises(ReplyLinkInvalid):
        tokens.read("中文.链接")


def test_a_survey_link_is_never_a_reply_link_nor_the_other_way_round() -> None:
    same = uuid.uuid4()
    expires = datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(ReplyLinkInvalid):
        ReferralTokens(SECRET).read(SurveyTokens(SECRET).issue(same, expires))
    with pytest.raises(TokenInvalid):
        SurveyTokens(SECRET).read(ReferralTokens(SECRET).issue(same, expires))


def test_a_handover_keeps_the_first_clerk_and_needs_one_new_owner() -> None:
    case = Case(id=case_id_for("c1", "open-1"), center_id="c1", counter_id="w1",
                clerk_id="k1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=uuid.uuid4(), meta={"causation_id": "open-1"})
    with pytest.raises(RuleViolated):
        case.hand_over("k1", None, "同一人", {"causation_id": "h0"})
    with pytest.raises(InvalidCommand):
        case.hand_over("k2", "team-a", "两个", {"causation_id": "h1"})
    case.hand_over("k2", None, "熟悉政策", {"causation_id": "h2"})
    case.hand_over(None, "team-a", "转团队", {"causation_id": "h3"})
    assert (case.clerk_id, case.owner_clerk, case.owner_team) == ("k1", None, "team-a")
    case.hear_request("想申请补助", {"causation_id": "w1"})
    with pytest.raises(InvalidCommand):
        case.take_action("done_on_the_spot", "当场办结", None, {"causation_id": "a1"},
                         owner_clerk="k2")


async def test_a_case_turning_urgent_prioritises_its_follow_ups_not_its_help_task() -> None:
    """A case escalated (a help task remembered under ``help_task``) and referred (the
    referral and its 督办's id, remembered when it is sent) turns urgent: its open follow-ups
    become high priority; the help task is no follow-up, and the 督办 exists only once the
    reply is overdue (high priority from its start). Before, their ids were handed to
    ``FollowUps.prioritise`` too, found nothing and logged ``rule.prioritise_unknown`` (the
    warnings of every ``make run`` after the demo)."""
    case_id, check, task, referral, chase, later = (uuid.uuid4() for _ in range(6))
    planned = _Planned([{"case_id": case_id, "follow_up_id": f, "rule": r} for f, r in (
        (check, "deadline_near"), (task, HELP_TASK), (referral, REFERRAL),
        (chase, Reason.REFERRAL_OVERDUE.value))])
    prioritised: list[uuid.UUID] = []

    class FollowUps:
        async def prioritise(self, follow_up_id: uuid.UUID, *_: Any) -> None:
            prioritised.append(follow_up_id)

    rules = Rules.__new__(Rules)
    rules.followups = FollowUps()  # type: ignore[assignment]
    when = datetime(2026, 12, 20, 10, tzinfo=SHANGHAI)
    e = Envelope(event_id=uuid.uuid4(), type="ConcernsNoted", version=1, service="intake",
                 position=1, aggregate_id=case_id, aggregate_version=3, case_id=case_id,
                 center_id="SH-PD-HUAMU", occurred_at=when, recorded_at=when,
                 actor="clerk-017", payload={})
    effect = rules._turned_urgent(planned, e)
    await effect([(case_id, later, "deadline_near"), (case_id, uuid.uuid4(), HELP_TASK),
                  (case_id, uuid.uuid4(), Reason.REFERRAL_OVERDUE.value)])
    assert prioritised == [check, later]


async def test_a_handover_moves_the_cases_follow_ups_not_the_teams_verification() -> None:
    """The resident rated "very dissatisfied, not solved": the case was reopened and the bad
    review's verification (回访核实) and rectification follow-ups planned for the team
    (``FOLLOWUP_TEAM``). The reopened case is handed back to the clerk the review is about:
    the case's own follow-ups go to them, the team's stay the team's. Before, a handover moved
    every follow-up of the case, so the reviewed clerk verified the review of their own
    service, off the team's worklist (回访 is not the 承办人's)."""
    case_id, unsolved, verification, rectification, later = (uuid.uuid4() for _ in range(5))
    planned = _Planned([{"case_id": case_id, "follow_up_id": f, "rule": r} for f, r in (
        (unsolved, Reason.RESIDENT_SAYS_UNSOLVED.value),
        (verification, Reason.VERIFICATION.value),
        (rectification, Reason.RECTIFICATION.value))])
    moved: list[tuple[uuid.UUID, str | None]] = []

    class FollowUps:
        async def reassign(self, follow_up_id: uuid.UUID, clerk: str | None, *_: Any) -> None:
            moved.append((follow_up_id, clerk))

    rules = Rules.__new__(Rules)
    rules.followups = FollowUps()  # type: ignore[assignment]
    refs = _CaseRefs({case_id: {"case_id": case_id, "clerk_id": "clerk-017",
                                "owner_clerk": "clerk-017", "owner_team": None}})
    when = datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)
    e = Envelope(event_id=uuid.uuid4(), type="CaseHandedOver", version=1, service="intake",
                 position=1, aggregate_id=case_id, aggregate_version=9, case_id=case_id,
                 center_id="SH-PD-HUAMU", occurred_at=when, recorded_at=when,
                 actor="director-01", payload={"to_clerk": "clerk-017"})
    effect = rules._effect_for(planned, e, refs)
    assert effect is not None
    # Planned by earlier events of the same batch: the same, the team's stay.
    await effect([(case_id, later, Reason.POST_RESOLUTION_CHECK.value),
                  (case_id, uuid.uuid4(), Reason.VERIFICATION.value),
                  (case_id, uuid.uuid4(), Reason.RECTIFICATION.value)])
    assert moved == [(unsolved, "clerk-017"), (later, "clerk-017")]


@pytest.mark.parametrize("now", [
    at(2026, 12, 20, 10),                                      # Sunday 20 December
    datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI),           # New Year's Eve, late
    at(2027, 1, 25), at(2028, 1, 20),                          # provisional years
])
def test_a_reply_link_outlives_a_sixty_working_day_deadline_and_stays_bounded(
        now: datetime) -> None:
    defaults = {name: Settings.model_fields[f"followup_referral_link_{name}"].default
                for name in ("days", "grace_days", "max_days")}
    due, _ = working_deadline(CALENDAR, now.astimezone(SHANGHAI).date(), 60)
    expires = link_expires_at(now, due, defaults["days"], defaults["grace_days"],
                              defaults["max_days"])
    assert due + timedelta(days=defaults["grace_days"]) == expires
    assert now + timedelta(days=defaults["days"]) <= expires
    assert expires <= now + timedelta(days=defaults["max_days"])
    overdue = link_expires_at(now, now - timedelta(days=3), 30, 30, 180)
    assert overdue == now + timedelta(days=30), "a chased referral's link still works"


def test_a_reply_link_at_least_over_its_at_most_is_refused_at_start() -> None:
    """FOLLOWUP_REFERRAL_LINK_DAYS over FOLLOWUP_REFERRAL_LINK_MAX_DAYS was cut to the most
    without a word: every link shorter than the least the ops team set."""
    Settings(followup_referral_link_days=180, followup_referral_link_max_days=180)
    with pytest.raises(ValidationError, match="FOLLOWUP_REFERRAL_LINK_DAYS"):
        Settings(followup_referral_link_days=200, followup_referral_link_max_days=180)


def test_a_lapse_window_not_over_the_grace_is_refused_at_start() -> None:
    """A rule's follow-up is planned from its post's judged moment, at most OCCURRED_AT_GRACE_S
    back: a center given a 20-day grace with the 14-day lapse left as it was lapsed the
    reminder of a deadline posted within the grace the moment it was planned."""
    Settings(occurred_at_grace_s=13 * 86_400, followup_lapse_after_days=14)
    with pytest.raises(ValidationError, match="FOLLOWUP_LAPSE_AFTER_DAYS"):
        Settings(occurred_at_grace_s=20 * 86_400, followup_lapse_after_days=14)
    with pytest.raises(ValidationError, match="FOLLOWUP_LAPSE_AFTER_DAYS"):
        Settings(occurred_at_grace_s=14 * 86_400, followup_lapse_after_days=14)
