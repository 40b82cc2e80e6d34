"""Follow-up's aggregates, without servers: how a follow-up moves as time passes and staff act,
how a watched obligation counts its periods, and a policy change fanned out once.

Every date is worked out by hand on the State Council's 2026 schedule, office hours 09:00-17:00
in Asia/Shanghai (the default calendar): 2026-02-28 is a make-up Saturday; 4-6 April are
Qingming; 1-7 October National Day.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import (
    FollowUp,
    NotTheAssignee,
    Obligation,
    OwnMissedFollowUp,
    PolicyChange,
    due_working_day,
    first_watched_period,
    follow_up_id_for,
    retry_rule,
)
from shared.contracts.followup import Reason
from shared.eventstore.command_path import Act, on_existing
from shared.eventstore.group_commit import Unit
from shared.kernel.calendar import Basis, CalendarOutOfRange, DueRule, WorkingCalendar
from shared.kernel.errors import (
    AlreadyDoneError,
    IdempotencyKeyReused,
    InvalidCommand,
    RuleViolated,
)
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
SUPERVISOR = "supervisors"


def at(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def meta(key: str | None = None, occurred_at: datetime | None = None) -> dict[str, Any]:
    return {"actor": "clerk-017", "occurred_at": occurred_at or at(3, 2), "causation_id": key,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def follow_up(due_at: datetime, reason: Reason = Reason.DEADLINE_REMINDER) -> FollowUp:
    return FollowUp(id=uuid.uuid4(), reason=reason.value, resident_id=uuid.uuid4(),
                    due_at=due_at, assigned_clerk="clerk-017", assigned_team=None,
                    priority="normal", service_item="SA-HARDSHIP-SUBSIDY", source="test",
                    source_id=None, meta=meta("schedule-1"))


def advance(f: FollowUp, now: datetime) -> list[str]:
    return f.advance(now, CALENDAR, escalate_after=2, supervisor=SUPERVISOR, meta=meta())


# -- time passes ----------------------------------------------------------------------------


def test_a_follow_up_falls_due_is_missed_and_escalated_each_at_its_moment_never_before() -> None:
    f = follow_up(at(3, 2, 10))  # Monday 2 March 2026, 10:00
    assert advance(f, at(3, 2, 9, 59)) == [] and f.status == "scheduled"
    assert advance(f, at(3, 2, 10)) == ["FollowUpDue"]
    assert f.overdue_at == at(3, 2, 17), "missed at closing of the due day"
    assert advance(f, at(3, 2, 16, 59)) == []
    assert advance(f, at(3, 2, 17)) == ["FollowUpMissed"]
    # Escalated at opening of the 2nd working day after the due day: Mon 2 -> Wed 4 March.
    assert f.escalate_at == at(3, 4, 9)
    assert advance(f, at(3, 4, 8, 59)) == []
    assert advance(f, at(3, 4, 9)) == ["FollowUpEscalated"]
    assert (f.status, f.escalated_to, f.next_fire_at) == ("escalated", SUPERVISOR, None)
    assert advance(f, at(3, 20)) == [], "nothing after the escalation"


def test_after_downtime_one_tick_catches_up_every_step() -> None:
    f = follow_up(at(3, 2, 10))
    assert advance(f, at(3, 10, 11)) == ["FollowUpDue", "FollowUpMissed", "FollowUpEscalated"]


@pytest.mark.parametrize(("due_at", "missed_at"), [
    (at(3, 7, 10), at(3, 9, 17)),  # a Saturday: closing of Monday 9 March
    (at(3, 6, 18), at(3, 9, 17)),  # Friday after closing: Monday
    (at(2, 27, 18), at(2, 28, 17)),  # Friday after closing: the make-up Saturday 28 February
    (at(9, 30, 18), at(10, 8, 17)),  # the eve of National Day: Thursday 8 October
])
def test_a_follow_up_due_outside_office_hours_is_missed_at_the_next_working_closing(
        due_at: datetime, missed_at: datetime) -> None:
    f = follow_up(due_at)
    advance(f, due_at)
    assert f.overdue_at == missed_at


# -- staff ----------------------------------------------------------------------------------


def test_a_done_follow_up_takes_no_other_step_and_a_cancel_of_it_records_nothing() -> None:
    f = follow_up(at(3, 2, 10))
    f.complete("reached", "phone", "已告知材料清单", meta("done-1"))
    assert f.status == "completed"
    with pytest.raises(RuleViolated):
        f.complete("reached", "phone", "", meta("done-2"))
    with pytest.raises(RuleViolated):
        f.reschedule(at(3, 9), "", None, None, at(3, 2), meta("move-1"))
    with pytest.raises(RuleViolated):
        f.escalate("", SUPERVISOR, CALENDAR, at(3, 2), meta("up-1"))
    assert f.cancel("no longer needed", meta("cancel-1")) is False
    assert advance(f, at(3, 20)) == []


def test_rescheduling_a_missed_follow_up_starts_it_over_with_the_same_assignee() -> None:
    f = follow_up(at(3, 2, 10))
    advance(f, at(3, 2, 17))
    assert f.status == "missed"
    with pytest.raises(InvalidCommand):
        f.reschedule(at(3, 2, 16), "", None, None, at(3, 2, 17),
                     {**meta("move-0"), "actor": "director-01"}, by_supervisor=True)
    # Not by clerk-017, who let it go missed: moved or cancelled, it left the escalation
    # worklist. Done late, they complete it; the supervisor moves it.
    with pytest.raises(OwnMissedFollowUp) as refused:
        f.reschedule(at(3, 5, 14), "", None, None, at(3, 2, 17), meta("move-own"))
    assert (refused.value.status, refused.value.code) == (403, "own_missed_followup")
    with pytest.raises(OwnMissedFollowUp):
        f.cancel("no longer needed", meta("cancel-own"))
    # Nor once they handed the case on (to a team, or a colleague): the follow-up went with
    # it (FollowUpReassigned), and was still the one clerk-017 let go missed.
    assert f.reassign(None, "team-east", "the case was handed over", meta("handed-1"))
    with pytest.raises(OwnMissedFollowUp):
        f.reschedule(at(3, 5, 14), "", None, None, at(3, 2, 17), meta("move-own-2"))
    assert f.reassign("clerk-020", None, "the case was handed over", meta("handed-2"))
    with pytest.raises(OwnMissedFollowUp):
        f.cancel("no longer needed", meta("cancel-own-2"))
    assert f.reassign("clerk-017", None, "the case was handed back", meta("handed-3"))
    assert f.status == "missed"
    f.reschedule(at(3, 5, 14), "the resident asked for Thursday", None, None, at(3, 2, 17),
                 {**meta("move-1"), "actor": "director-01"}, by_supervisor=True)
    assert (f.status, f.due_at, f.overdue_at, f.escalate_at) == (
        "scheduled", at(3, 5, 14), None, None)
    assert (f.assigned_clerk, f.assigned_team) == ("clerk-017", None)
    assert f.next_fire_at == at(3, 5, 14)


def test_a_missed_follow_up_handed_to_a_colleague_is_theirs_to_move_not_its_first_clerks(
) -> None:
    """Handed over after it was missed: clerk-020, who did not miss it, moves it (they agreed
    a new day with the resident); clerk-017, who let it go missed, still may not. Before,
    clerk-020 was refused as its assignee now, though the miss was not theirs."""
    f = follow_up(at(3, 2, 10))
    advance(f, at(3, 2, 17))
    assert f.reassign("clerk-020", None, "the case was handed over", meta("handed-1"))
    with pytest.raises(OwnMissedFollowUp):
        f.reschedule(at(3, 5, 14), "", None, None, at(3, 2, 17), meta("move-own"))
    f.reschedule(at(3, 5, 14), "居民约周四", None, None, at(3, 2, 17),
                 {**meta("move-1"), "actor": "clerk-020"})
    assert (f.status, f.assigned_clerk) == ("scheduled", "clerk-020")


@pytest.mark.parametrize("step", ["reschedule", "cancel"])
def test_a_follow_up_a_team_let_go_missed_is_moved_only_by_a_supervisor(step: str) -> None:
    """A home visit assigned to the visits team, missed: no member of staff takes it off the
    escalation worklist (a caller carries no team, so its members cannot be told from the
    rest of the center), the supervisor does; the rules still cancel it (a resolution, an
    appeal upheld). Before, nobody was barred: ``missed_by`` was None, any clerk moved it."""
    def team_visit() -> FollowUp:
        f = FollowUp(id=uuid.uuid4(), reason=Reason.HOME_VISIT.value, resident_id=uuid.uuid4(),
                     due_at=at(3, 2, 10), assigned_clerk=None, assigned_team="visits",
                     priority="normal", service_item="SA-HARDSHIP-SUBSIDY", source="test",
                     source_id=None, meta=meta("schedule-1"))
        advance(f, at(3, 2, 17))
        assert f.status == "missed"
        return f

    def act(f: FollowUp, actor: str, by_supervisor: bool = False) -> None:
        m = {**meta(f"{step}-{actor}"), "actor": actor}
        if step == "cancel":
            f.cancel("不需要了", m, by_supervisor)
        else:
            f.reschedule(at(3, 5, 14), "", None, None, at(3, 2, 17), m,
                         by_supervisor=by_supervisor)

    f = team_visit()
    for clerk in ("clerk-017", "clerk-020"):
        with pytest.raises(OwnMissedFollowUp) as refused:
            act(f, clerk)
        assert refused.value.code == "own_missed_followup"
    # Handed on to a clerk since: still the team's miss, the supervisor's to move.
    assert f.reassign("clerk-020", None, "the case was handed over", meta("handed-1"))
    with pytest.raises(OwnMissedFollowUp):
        act(f, "clerk-020")
    act(f, "director-01", by_supervisor=True)
    assert f.status == ("cancelled" if step == "cancel" else "scheduled")
    rules = team_visit()
    assert rules.cancel("case resolved", {**meta("resolved-1"), "actor": "system:rules"})


def test_an_escalated_follow_up_is_not_escalated_again() -> None:
    f = follow_up(at(3, 2, 10))
    f.escalate("the resident called twice", SUPERVISOR, CALENDAR, at(3, 2, 11), meta("up-1"))
    assert f.status == "escalated"
    with pytest.raises(RuleViolated):
        f.escalate("again", SUPERVISOR, CALENDAR, at(3, 2, 12), meta("up-2"))
    # Passed up by clerk-017, then the case handed to a team: still not theirs to cancel.
    assert f.reassign(None, "team-east", "the case was handed over", meta("handed-1"))
    with pytest.raises(OwnMissedFollowUp):
        f.cancel("no longer needed", meta("cancel-own"))
    f.complete("reached", "counter", "", meta("done-1"))  # an escalated follow-up is still open


def test_a_supervisor_does_not_move_a_follow_up_they_let_go_missed_themselves() -> None:
    """A supervisor serves cases too: the check assigned to director-01 went missed on
    Sunday 20 December's eve, and director-01 moving it (or cancelling it) took it off the
    supervisors' escalation worklist by their own hand. Another supervisor decides; a
    supervisor the case was handed to after it went missed moves it."""
    def as_(actor: str, key: str) -> dict[str, Any]:
        return {**meta(key), "actor": actor}

    f = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                 resident_id=uuid.uuid4(), due_at=at(12, 18, 10), assigned_clerk="director-01",
                 assigned_team=None, priority="normal", service_item="SA-HARDSHIP-SUBSIDY",
                 source="test", source_id=None, meta=as_("director-01", "schedule-1"))
    advance(f, at(12, 20, 12))  # Friday's check, missed by Sunday 20 December
    assert f.status == "missed"
    monday = at(12, 21, 10)
    with pytest.raises(OwnMissedFollowUp) as refused:
        f.reschedule(at(12, 22, 10), "", None, None, monday, as_("director-01", "move-own"),
                     by_supervisor=True)
    assert refused.value.code == "own_missed_followup"
    with pytest.raises(OwnMissedFollowUp):
        f.cancel("no longer needed", as_("director-01", "cancel-own"), by_supervisor=True)
    # Handed to director-02, who takes it up: theirs to move (they did not let it go missed).
    assert f.reassign("director-02", None, "the case was handed over", meta("handed-1"))
    with pytest.raises(OwnMissedFollowUp):
        f.reschedule(at(12, 22, 10), "", None, None, monday, as_("director-01", "move-own-2"),
                     by_supervisor=True)
    f.reschedule(at(12, 22, 10), "the resident asked for Tuesday", None, None, monday,
                 as_("director-02", "move-1"), by_supervisor=True)
    assert (f.status, f.due_at) == ("scheduled", at(12, 22, 10))

    # Passed up by director-01 before its day (escalated by hand): not theirs to cancel.
    g = FollowUp(id=uuid.uuid4(), reason=Reason.DEADLINE_REMINDER.value,
                 resident_id=uuid.uuid4(), due_at=at(12, 31, 16), assigned_clerk="director-01",
                 assigned_team=None, priority="normal", service_item="SA-HARDSHIP-SUBSIDY",
                 source="test", source_id=None, meta=as_("director-01", "schedule-2"))
    g.escalate("", SUPERVISOR, CALENDAR, at(12, 31, 23, 30), as_("director-01", "up-1"))
    with pytest.raises(OwnMissedFollowUp):
        g.cancel("no longer needed", as_("director-01", "cancel-own-3"), by_supervisor=True)
    assert g.cancel("no longer needed", as_("director-02", "cancel-1"), by_supervisor=True)


def on_the_path(f: FollowUp, kind: str, key: str, act: Act) -> None:
    """A command as the command path runs it, on a unit holding only ``f``."""
    unit = Unit({f.id: f})
    unit.begin(None)
    on_existing(f.id, "follow-up", kind, act, meta(key), key)(unit)


def test_a_retried_command_answers_with_the_first_version_and_a_reused_key_is_refused() -> None:
    f = follow_up(at(3, 2, 10))
    on_the_path(f, "FollowUpCompleted", "done-1",
                lambda a, m: a.complete("reached", "phone", "", m))
    with pytest.raises(AlreadyDoneError) as done:  # the path looks at the key before the rules
        on_the_path(f, "FollowUpCompleted", "done-1",
                    lambda a, m: a.complete("reached", "phone", "", m))
    assert done.value.version == 2
    with pytest.raises(IdempotencyKeyReused):
        on_the_path(f, "FollowUpCancelled", "done-1", lambda a, m: a.cancel("x", m))


# -- a watched obligation -------------------------------------------------------------------


def watched(first_due_on: date, grace: int = 3) -> Obligation:
    missed_at = CALENDAR.closing_on(CALENDAR.add_working_days(first_due_on, grace))
    return Obligation(id=uuid.uuid4(), obligation_id=uuid.uuid4(), resident_id=uuid.uuid4(),
                      cadence="monthly", next_due_on=first_due_on, missed_at=missed_at,
                      assigned_clerk="clerk-017", service_item="MI-MEDICAL-REIMBURSEMENT",
                      meta=meta("watch-1"))


def test_periods_fall_on_the_same_day_each_month_or_the_months_last_day_never_drifting() -> None:
    o = watched(date(2026, 1, 31))
    # Saturday 31 January is a day off: the grace counts from Monday 2 February (day 0).
    assert o.missed_at == at(2, 5, 17)
    o.fulfil(None, date(2026, 2, 3), CALENDAR, 3, meta("paid-jan"))
    # February has 28 days; 28 February 2026 is a make-up Saturday, so it is day 0 itself:
    # 28 Feb, 2, 3, 4 March.
    assert (o.next_due_on, o.missed_at) == (date(2026, 2, 28), at(3, 4, 17))
    o.fulfil(None, date(2026, 3, 2), CALENDAR, 3, meta("paid-feb"))
    assert o.next_due_on == date(2026, 3, 31), "back to the 31st, not the 28th"


def test_a_period_without_fulfilment_is_missed_at_the_end_of_its_grace_then_fulfilled_late(
        ) -> None:
    o = watched(date(2026, 2, 28))
    assert o.miss(at(3, 4, 16, 59), CALENDAR, 3, meta()) == []
    [(period, follow_up_id, when)] = o.miss(at(3, 4, 17), CALENDAR, 3, meta())
    assert (period, when) == (date(2026, 2, 28), at(3, 4, 17))
    assert follow_up_id == follow_up_id_for("obligation-missed", f"{o.obligation_id}:{period}")
    # Saturday 28 March is an ordinary Saturday: day 0 is Monday 30 March, then 31, 1, 2 April.
    assert (o.next_due_on, o.missed_at) == (date(2026, 3, 28), at(4, 2, 17))
    o.fulfil(date(2026, 2, 28), date(2026, 3, 5), CALENDAR, 3, meta("paid-feb-late"))
    assert o.missed == set() and o.next_due_on == date(2026, 3, 28), "late: the current stays"
    with pytest.raises(InvalidCommand):
        o.fulfil(date(2026, 1, 31), date(2026, 3, 5), CALENDAR, 3, meta("paid-jan"))


def fulfilled(o: Obligation) -> Any:
    [e] = [e for e in o.pending_events if type(e).__name__ == "ObligationFulfilled"][-1:]
    return e


def test_a_period_fulfilled_past_its_grace_while_the_scheduler_was_down_is_late() -> None:
    """December's period falls on Sunday 20 December 2026: its grace counts from Monday 21
    (day 0) to Thursday 24, missed at 17:00. The scheduler is down from the 23rd and never
    records it missed; the fulfilment is posted at 23:30 on 31 December: late, judged on
    the deadline, not on what the scheduler saw, and January's period (2027, a provisional
    year) is the current one, never missed for December. In time, and backdated past the
    grace (judged on follow-up's clock less the grace), for comparison."""
    o = watched(date(2026, 12, 20))
    assert o.missed_at == at(12, 24, 17)
    o.fulfil(None, date(2026, 12, 31), CALENDAR, 3, meta("paid-dec", at(12, 31, 23, 30)))
    assert fulfilled(o).late is True
    assert (o.next_due_on, o.basis) == (date(2027, 1, 20), Basis.PROVISIONAL.value)
    assert o.miss(at(12, 31, 23, 45), CALENDAR, 3, meta()) == []
    assert o.home_visit_id(True) is not None, "late: in the run, as missed then paid late"

    in_time = watched(date(2026, 12, 20))
    in_time.fulfil(None, date(2026, 12, 24), CALENDAR, 3, meta("paid", at(12, 24, 16)))
    assert fulfilled(in_time).late is False and in_time.home_visit_id(True) is None

    backdated = watched(date(2026, 12, 20))
    backdated.fulfil(None, date(2026, 12, 22), CALENDAR, 3, meta("paid", at(12, 22, 10)),
                     judged_at=at(12, 28, 9))  # posted 31 Dec 09:00, said 22 Dec
    assert fulfilled(backdated).late is True


def test_two_missed_periods_are_both_recorded_by_one_late_tick() -> None:
    o = watched(date(2026, 2, 28))
    missed = o.miss(at(4, 30, 12), CALENDAR, 3, meta())
    assert [p for p, _, _ in missed] == [date(2026, 2, 28), date(2026, 3, 28)]
    # Tuesday 28 April: 28, 29, 30 April, then 1-5 May are Labour Day: Wednesday 6 May.
    assert (o.next_due_on, o.missed_at) == (date(2026, 4, 28), at(5, 6, 17))


def test_a_late_tick_at_the_calendars_end_records_the_periods_it_can_then_waits() -> None:
    """No provisional years: the calendar ends 2026-12-31. October's period is recorded as
    missed (November's grace ends 3 December); November's waits, as December's grace runs
    into 2027, which the calendar does not cover: the next tick raises, to be said."""
    edge = WorkingCalendar(provisional_years=0)
    o = watched(date(2026, 10, 30))
    missed = o.miss(at(12, 10, 12), edge, 3, meta())
    assert [p for p, _, _ in missed] == [date(2026, 10, 30)]
    assert (o.next_due_on, o.missed_at) == (date(2026, 11, 30), at(12, 3, 17))
    with pytest.raises(CalendarOutOfRange):
        o.miss(at(12, 10, 12), edge, 3, meta())
    assert o.next_due_on == date(2026, 11, 30), "nothing recorded for November"


def test_periods_already_missed_when_the_obligation_is_declared_are_not_watched() -> None:
    # Recorded on Friday 4 December: a reimbursement due on the 31st since August. August to
    # October were missed long ago; November's 30th (a Monday) has its grace to Thursday
    # 3 December, over too. December's is the first the center watches.
    index, due, missed_at, _ = first_watched_period(CALENDAR, date(2026, 8, 31), "monthly", 3,
                                                    at(12, 4, 10))
    assert (index, due, missed_at) == (4, date(2026, 12, 31), at(1, 6, 17, year=2027))
    o = Obligation(id=uuid.uuid4(), obligation_id=uuid.uuid4(), resident_id=uuid.uuid4(),
                   cadence="monthly", next_due_on=due, missed_at=missed_at,
                   assigned_clerk="clerk-017", service_item="MI-MEDICAL-REIMBURSEMENT",
                   meta=meta("watch-1"), first_due_on=date(2026, 8, 31), period=index)
    assert o.miss(at(12, 4, 10), CALENDAR, 3, meta()) == []
    # Its periods stay on the declared day (the month's last), January's too.
    [(period, _, _)] = o.miss(at(1, 6, 17, year=2027), CALENDAR, 3, meta())
    assert (period, o.next_due_on) == (date(2026, 12, 31), date(2027, 1, 31))


def test_a_period_still_in_its_grace_when_declared_is_watched() -> None:
    # Declared on Wednesday 2 December: November's 30th is in its grace until Thursday.
    assert first_watched_period(CALENDAR, date(2026, 9, 30), "monthly", 3, at(12, 2, 10))[:2] \
        == (2, date(2026, 11, 30))
    # A quarterly one declared years later jumps to the current quarter.
    assert first_watched_period(CALENDAR, date(2019, 1, 15), "quarterly", 3, at(12, 4, 10))[:2] \
        == (32, date(2027, 1, 15))
    # And one declared ahead of its first period starts there.
    assert first_watched_period(CALENDAR, date(2026, 12, 15), "monthly", 3, at(12, 4, 10))[:2] \
        == (0, date(2026, 12, 15))
    # A long grace (FOLLOWUP_OBLIGATION_GRACE_WORKING_DAYS has no ceiling): February's 15th
    # with 70 working days is missed in June, after a declaration on 1 June. The jump over
    # earlier periods skipped it (it went back 62 days whatever the grace).
    assert first_watched_period(CALENDAR, date(2026, 1, 15), "monthly", 70, at(6, 1, 10))[:2] \
        == (1, date(2026, 2, 15))


def test_periods_asked_for_before_the_next_due_day_reach_back_on_its_series() -> None:
    # At the counter on Monday 21 December: next due 31 January, missed since 1 November.
    # The series reaches back on the 31st (the month's last): October 31 (a Saturday, its
    # grace running to 5 November), November 30, December 31.
    since = datetime(2026, 11, 1, tzinfo=CALENDAR.tz)
    assert first_watched_period(CALENDAR, date(2027, 1, 31), "monthly", 3, since,
                                back=True)[:2] == (-3, date(2026, 10, 31))
    # Without back the series starts at its first due day.
    assert first_watched_period(CALENDAR, date(2027, 1, 31), "monthly", 3, since)[:2] \
        == (0, date(2027, 1, 31))
    # A period due before the day named but still in its grace then is asked for too.
    since = datetime(2026, 12, 2, tzinfo=CALENDAR.tz)
    assert first_watched_period(CALENDAR, date(2027, 3, 30), "quarterly", 3, since,
                                back=True)[:2] == (-1, date(2026, 12, 30))
    assert first_watched_period(CALENDAR, date(2027, 1, 30), "monthly", 3,
                                datetime(2026, 12, 2, tzinfo=CALENDAR.tz), back=True)[:2] \
        == (-2, date(2026, 11, 30))


def test_an_ended_obligation_is_no_longer_watched() -> None:
    o = watched(date(2026, 2, 28))
    o.end("the allowance stopped", meta("end-1"))
    assert o.next_fire_at is None
    assert o.miss(at(12, 31), CALENDAR, 3, meta()) == []
    with pytest.raises(RuleViolated):
        o.end("again", meta("end-2"))
    with pytest.raises(RuleViolated):
        o.fulfil(None, date(2026, 3, 1), CALENDAR, 3, meta("paid-feb"))


# -- a policy change ------------------------------------------------------------------------


def test_a_policy_changes_fan_out_is_recorded_once() -> None:
    policy = PolicyChange(id=uuid.uuid4(), service_items=["SA-HARDSHIP-SUBSIDY"],
                          summary="补助标准调整", effective_on=date(2026, 4, 1),
                          all_centers=False, outreach_due_at=at(3, 4), meta=meta("publish-1"))
    policy.finish_fan_out(412, meta())
    policy.finish_fan_out(999, meta())
    assert policy.residents == 412
    recorded = [type(e).__name__ for e in policy.collect_events()]
    assert recorded == ["PolicyChangePublished", "PolicyChangeFannedOut"]
    assert policy.outreach_due_at - at(3, 4) == timedelta(0)


def test_only_a_post_resolution_check_records_the_residents_verdict() -> None:
    check = follow_up(at(3, 5), Reason.POST_RESOLUTION_CHECK)
    with pytest.raises(InvalidCommand):
        check.complete("unreachable", "phone", "", meta("c0"), verdict="not_solved")
    check.complete("needs_action", "phone", "还没到账", meta("c1"), verdict="not_solved")
    assert check.collect_events()[-1].verdict == "not_solved"
    reminder = follow_up(at(3, 5))
    with pytest.raises(InvalidCommand):
        reminder.complete("done", "phone", "", meta("c2"), verdict="solved")


def test_only_an_attempt_to_reach_the_resident_is_tried_again() -> None:
    # A task without contact (no consent: done from the case file, channel none) or a
    # resident who came in (counter) was not an unanswered call: 'unreachable' closes it at
    # once, not back on the worklist the next morning for two more rounds.
    retry = (at(3, 6, 9), Basis.OFFICIAL)
    for contact, channel in ((False, "none"), (True, "none"), (True, "counter")):
        task = follow_up(at(3, 5), Reason.OBLIGATION_MISSED)
        task.contact = contact
        task.complete("unreachable", channel, "无联系方式", meta("c1"), retry=retry)
        assert task.status == "completed", (contact, channel)
        assert task.collect_events()[-1].outcome == "unreachable"
    for channel in ("phone", "sms", "wechat", "home_visit", "letter"):
        call = follow_up(at(3, 5), Reason.POST_RESOLUTION_CHECK)
        call.complete("unreachable", channel, "无人接听", meta("c1"), retry=retry)
        assert (call.status, call.due_at) == ("scheduled", retry[0]), channel


def test_a_call_made_ahead_of_its_moment_is_tried_again_no_earlier_than_that_moment() -> None:
    # Due Friday 13 March; the clerk tries on Monday 9th and gets no answer. Tried again the
    # next morning it fell due on the 10th and was missed (and escalated) at the 10th's
    # closing, three days before it was planned for: it stays due on the 13th, the attempt
    # counted.
    check = follow_up(at(3, 13), Reason.POST_RESOLUTION_CHECK)
    check.complete("unreachable", "phone", "无人接听", meta("c1", at(3, 9, 15)),
                   retry=(at(3, 10), Basis.OFFICIAL))
    assert (check.status, check.due_at, check.unreached) == ("scheduled", at(3, 13), 1)
    assert advance(check, at(3, 10, 17, 30)) == []
    # Tried on the 13th at its moment: no answer, the next working morning (Monday 16th).
    check.complete("unreachable", "phone", "无人接听", meta("c2", at(3, 13, 10)),
                   retry=(at(3, 16), Basis.OFFICIAL))
    assert (check.due_at, check.unreached) == (at(3, 16), 2)


def test_each_center_day_tried_counts_once_across_the_year_end() -> None:
    # 31 December 23:30 in Shanghai (15:30 UTC) and 1 January 2027 08:00 are two center days
    # and 8.5 hours apart: two attempts; a second 1 January call is refused, and so is 31
    # December typed in again after it (compared with every day tried, not the last typed in).
    check = follow_up(at(12, 31, 9), Reason.POST_RESOLUTION_CHECK)

    def call(key: str, moment: datetime, retry: datetime) -> None:
        check.complete("unreachable", "phone", "无人接听", meta(key, moment),
                       retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR)

    call("c1", at(12, 31, 23, 30), at(1, 4, year=2027))
    call("c2", at(1, 1, 8, year=2027), at(1, 4, year=2027))
    assert (check.status, check.unreached) == ("scheduled", 2)
    for again in (at(1, 1, 10, year=2027), at(12, 31, 10)):
        call("c3", again, at(1, 4, year=2027))
        assert_not_counted(check, "tried_today")
    assert (check.status, check.unreached) == ("scheduled", 2)


@pytest.mark.parametrize(("due", "first", "next_day"), [
    (at(12, 18), at(12, 20, 10), at(12, 21, 0)),  # missed Friday, called Sunday 20 December
    (at(12, 31), at(12, 31, 23, 30), at(1, 1, 0, year=2027)),  # the year's last half hour
    (at(9, 30, year=2027), at(9, 30, 20, year=2027), at(10, 1, 0, year=2027)),  # provisional
    (at(2, 28, year=2028), at(2, 28, 23, year=2028), at(2, 29, 0, year=2028)),  # unknown year
])
def test_a_redial_the_same_day_counts_from_the_next_center_midnight(
        due: datetime, first: datetime, next_day: datetime) -> None:
    """A missed check keeps its moment (days back): a second call the same center day is
    told the next attempt counts from the next day's first moment at the center, the
    calendar's midnight, in 2027 and 2028 as in 2026."""
    check = follow_up(due, Reason.POST_RESOLUTION_CHECK)
    advance(check, due + timedelta(hours=8))
    assert check.status == "missed"

    def call(key: str, moment: datetime) -> None:
        retry = CALENDAR.next_working_morning(moment)
        check.complete("unreachable", "phone", "无人接听", meta(key, moment),
                       retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR,
                       min_gap=timedelta(minutes=5))

    call("c1", first)
    call("c2", first + timedelta(minutes=20))
    uncounted = assert_not_counted(check, "tried_today")
    assert uncounted["next_attempt_at"] == next_day
    call("c3", next_day)  # counts, at that very moment
    assert check.unreached == 2


@pytest.mark.parametrize("midnight", [
    at(12, 21, 0),  # Sunday 20 -> Monday 21 December 2026
    at(1, 1, 0, year=2027),  # 31 December 2026 -> 1 January 2027 (provisional)
    at(3, 1, 0, year=2027),  # Sunday 28 February -> Monday 1 March 2027 (provisional)
])
def test_a_redial_two_minutes_past_midnight_is_not_a_second_day_tried(
        midnight: datetime) -> None:
    """An unanswered call at 23:59 and the redial at 00:01 were two center days, so two of
    the three attempts, and a third the next morning handed the resident to the team as
    unreachable within ten hours. Attempts count on distinct days AND at least
    ``FOLLOWUP_ATTEMPT_MIN_GAP_HOURS`` (8) apart: the redial is refused (409
    ``tried_too_soon``, with the moment the next attempt counts from): recorded with its
    note, not counted; the same day's call 8 hours after the first counts."""
    check = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=midnight - timedelta(hours=6),
                     assigned_clerk="clerk-017", assigned_team=None, priority="normal",
                     service_item=None, source="test", source_id=None,
                     meta=meta("schedule-1", midnight - timedelta(days=1)))
    retry = CALENDAR.next_working_morning(midnight)
    gap = timedelta(hours=8)

    def call(key: str, moment: datetime) -> None:
        check.complete("unreachable", "phone", "无人接听", meta(key, moment),
                       retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR,
                       min_gap=gap)

    call("c1", midnight - timedelta(minutes=1))
    due_at = check.due_at
    call("c2", midnight + timedelta(minutes=1))
    uncounted = assert_not_counted(check, "tried_too_soon")
    assert uncounted["next_attempt_at"] == max(
        midnight - timedelta(minutes=1) + gap, due_at)
    assert (check.status, check.unreached, check.due_at) == ("scheduled", 1, due_at)
    call("c3", midnight + timedelta(hours=7, minutes=59))
    assert (check.status, check.unreached) == ("scheduled", 2)


def test_calls_typed_in_past_the_grace_count_on_one_day_the_day_they_are_judged_on() -> None:
    """A check planned Monday 14 December 2026; on Sunday 20 December a clerk types in three
    unanswered calls dated the 14th, 15th and 16th: as said, three days tried, and the resident
    went to the team as unreachable at once, never called on three days (the once-a-day rule's
    second route). Posted more than the grace (72 h) after they say, each is judged on the
    service's clock less the grace (Thursday 17th, as a completion is): one day tried; the
    next call on the 17th itself is that day's again. One within the grace stands as said."""
    check = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=at(12, 14, 15), assigned_clerk="clerk-017",
                     assigned_team=None, priority="normal", service_item=None, source="test",
                     source_id=None, meta=meta("schedule-1", at(12, 14, 9)))
    judged = at(12, 17, 10)  # Sunday 20th 10:00 less 72 h
    retry = (at(12, 21, 9), Basis.OFFICIAL)

    def call(key: str, said: datetime, judged_at: datetime | None) -> None:
        check.complete("unreachable", "phone", "无人接听", meta(key, said), retry=retry,
                       calendar=CALENDAR, judged_at=judged_at)

    call("c1", at(12, 14, 16), judged)
    for key, day in (("c2", 15), ("c3", 16)):
        call(key, at(12, day, 10), judged)
        assert_not_counted(check, "tried_today")
    assert (check.status, check.unreached) == ("scheduled", 1)
    call("c4", at(12, 18, 11), None)  # Friday the 18th: within the grace, as said
    assert (check.status, check.unreached) == ("scheduled", 2)


def test_a_call_dated_before_the_follow_up_was_planned_is_no_attempt_at_it() -> None:
    # Planned Monday 21 December 2026 (a check due on the 24th); three calls typed in with
    # 1-3 December's dates handed the resident to the team as unreachable at once.
    planned = at(12, 21, 10)
    check = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=at(12, 24), assigned_clerk="clerk-017",
                     assigned_team=None, priority="normal", service_item=None, source="test",
                     source_id=None, meta=meta("schedule-1", planned))
    retry = (at(12, 22), Basis.OFFICIAL)
    for day in (1, 2, 3):
        with pytest.raises(InvalidCommand) as refused:
            check.complete("unreachable", "phone", "无人接听", meta(f"c{day}", at(12, day, 10)),
                           retry=retry, calendar=CALENDAR)
        assert refused.value.details["field"] == "occurred_at"
    assert (check.status, check.unreached) == ("scheduled", 0)
    # Sunday 20 December, before the day it was planned: no attempt; that Monday: one.
    with pytest.raises(InvalidCommand):
        check.complete("unreachable", "phone", "", meta("c4", at(12, 20, 16)), retry=retry,
                       calendar=CALENDAR)
    check.complete("unreachable", "phone", "", meta("c5", at(12, 21, 10, 5)), retry=retry,
                   calendar=CALENDAR)
    assert check.unreached == 1


@pytest.mark.parametrize("midnight", [
    at(12, 21, 0),  # Sunday 20 -> Monday 21 December 2026
    at(1, 1, 0, year=2027),  # New Year's Eve -> 1 January 2027 (provisional)
    at(3, 1, 0, year=2027),  # Sunday 28 February -> Monday 1 March 2027 (provisional)
])
def test_a_call_right_after_midnight_on_a_counter_a_little_behind_is_an_attempt(
        midnight: datetime) -> None:
    # Planned by the server ten seconds after midnight; the clerk calls at once and the
    # counter, forty seconds behind, dates the unanswered call the day before. A real call:
    # counted, not refused, on the planning's day: the redial a minute later, which the same
    # counter dates after midnight, is that day's again (not a second day tried). Ten minutes
    # before the planning, more than a counter's clock may drift (OCCURRED_AT_MAX_FUTURE_S,
    # 300 s), it is no attempt.
    planned = midnight + timedelta(seconds=10)
    check = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=planned, assigned_clerk="clerk-017",
                     assigned_team=None, priority="high", service_item=None, source="test",
                     source_id=None, meta=meta("schedule-1", planned))
    retry = CALENDAR.next_working_morning(CALENDAR.closing_on(CALENDAR.local_day(planned)))
    skew = timedelta(seconds=300)
    with pytest.raises(InvalidCommand):
        check.complete("unreachable", "phone", "", meta("c0", midnight - timedelta(minutes=10)),
                       retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR,
                       skew=skew)
    check.complete("unreachable", "phone", "无人接听",
                   meta("c1", midnight - timedelta(seconds=30)),
                   retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR,
                   skew=skew)
    assert (check.status, check.unreached, check.due_at) == ("scheduled", 1, retry)
    assert CALENDAR.local_day(check.unreached_at[0]) == CALENDAR.local_day(planned)
    check.complete("unreachable", "phone", "无人接听",
                   meta("c2", midnight + timedelta(seconds=30)),
                   retry=(retry, CALENDAR.basis_of(retry)), calendar=CALENDAR,
                   skew=skew)
    assert_not_counted(check, "tried_today")
    assert check.unreached == 1


def test_a_retry_planned_on_new_years_eve_is_re_planned_when_2027_is_published() -> None:
    # Not reached at 23:30 on New Year's Eve: tried again the next working morning, Monday
    # 4 January 2027 by the law alone (provisional). A notice that keeps the 4th confirms it;
    # one that makes the 4th a holiday moves it to the 5th (its rule, kept with it). Before,
    # a retry was a bare moment: 'provisional' for ever, and due on a holiday.
    eve = at(12, 31, 23, 30)
    rule = retry_rule(CALENDAR.local_day(eve))
    planned = CALENDAR.plan(rule)
    assert (planned.at, planned.basis) == (at(1, 4, year=2027), Basis.PROVISIONAL)
    assert planned.at == CALENDAR.next_working_morning(CALENDAR.closing_on(date(2026, 12, 31)))
    notices = {at(1, 4, year=2027): '{"2027": {"source": "test", "holidays": ["2027-01-01"]}}',
               at(1, 5, year=2027): '{"2027": {"source": "test",'
                                    ' "holidays": ["2027-01-01", "2027-01-04"]}}'}
    for due_at, notice in notices.items():
        check = follow_up(at(12, 31, 9), Reason.POST_RESOLUTION_CHECK)
        check.complete("unreachable", "phone", "无人接听", meta("c1", eve),
                       retry=(planned.at, planned.basis, rule), calendar=CALENDAR)
        assert (check.status, check.due_at, check.basis) == ("scheduled", planned.at,
                                                             "provisional")
        published = WorkingCalendar(holidays=parse_holidays(notice))
        now = at(12, 31, 23, 45)
        assert check.replan(published, now, meta("calendar:2027", now)) is True
        assert (check.due_at, check.basis) == (due_at, "official")


def test_a_missed_follow_up_on_a_provisional_day_the_notice_keeps_is_confirmed_never_moved(
        ) -> None:
    # A reminder planned at 23:30 on New Year's Eve for the first working day on or after the
    # next: the law alone, Monday 4 January 2027 09:00 (provisional). Due, missed at its
    # closing, escalated two working days on. The notice comes on Thursday 7 January. If it
    # gives the 4th too, the worklists and the board stop saying "provisional": confirmed,
    # once, nothing else changes (status, next step). If it gives Saturday 2 January (a
    # make-up day), the 4th it was judged on stays, provisional, and says so once
    # (published_due_at: the 2nd): before, it recorded nothing and every reload read it
    # again, for ever.
    rule = DueRule("on_or_after", date(2026, 12, 31), 1, at(12, 31, 23, 30))
    planned = CALENDAR.plan(rule)
    assert (planned.at, planned.basis) == (at(1, 4, year=2027), Basis.PROVISIONAL)
    notices = {True: '{"2027": {"source": "test", "holidays": ["2027-01-01"]}}',
               False: '{"2027": {"source": "test", "holidays": ["2027-01-01"],'
                      ' "workdays": ["2027-01-02"]}}'}
    for keeps, notice in notices.items():
        published = WorkingCalendar(holidays=parse_holidays(notice))
        for steps in (1, 2, 3):  # due; missed; escalated
            f = FollowUp(id=uuid.uuid4(), reason=Reason.DEADLINE_REMINDER.value,
                         resident_id=uuid.uuid4(), due_at=planned.at,
                         assigned_clerk="clerk-017", assigned_team=None, priority="normal",
                         service_item=None, source="test", source_id=None,
                         meta=meta("schedule-1", at(12, 31, 23, 30)),
                         basis=planned.basis.value, due_rule=rule.as_dict())
            for now in (at(1, 4, year=2027), at(1, 4, 17, year=2027),
                        at(1, 6, 17, year=2027))[:steps]:
                advance(f, now)
            status, fire = f.status, f.next_fire_at
            assert status == ("due", "missed", "escalated")[steps - 1]
            now = at(1, 7, 10, year=2027)
            assert f.replan(published, now, meta("calendar:a", now)) is True
            assert (f.status, f.next_fire_at, f.due_at) == (status, fire, planned.at)
            assert f.basis == (Basis.OFFICIAL if keeps else Basis.PROVISIONAL).value
            assert f.collect_events()[-1].published_due_at == (
                None if keeps else at(1, 2, year=2027))
            assert f.replan(published, now, meta("calendar:b", now)) is False, "once"
            with pytest.raises(AlreadyDoneError):
                f.replan(published, now, meta("calendar:a", now))  # a second replica


def missed_rectification_follow_up(deadline_at: datetime) -> FollowUp:
    """A rectification's follow-up, planned on New Year's Eve 23:30 for opening on the
    deadline ``deadline_at`` (provisional, no rule of its own), missed at its closing."""
    f = FollowUp(id=uuid.uuid4(), reason=Reason.RECTIFICATION.value, resident_id=uuid.uuid4(),
                 due_at=deadline_at, assigned_clerk=None, assigned_team="followup-desk",
                 priority="high", service_item=None, source="feedback:RectificationOpened",
                 source_id=uuid.uuid4(), meta=meta("schedule-1", at(12, 31, 23, 30)),
                 basis=Basis.PROVISIONAL.value)
    advance(f, deadline_at)
    advance(f, deadline_at.replace(hour=17))
    return f


def test_a_missed_rectification_follow_up_is_confirmed_by_its_deadlines_confirmation() -> None:
    """A rectification's follow-up has no rule of its own (``due_rule`` None): due at opening
    on the deadline, Monday 4 January 2027 (provisional), missed at its closing. The
    deadline, missed too, is confirmed official on Wednesday the 6th (the schedule keeps the
    4th): its follow-up's basis with it, once, still missed, not moved to the revision's
    moment. Before, it stayed 'provisional' for ever, re-read at every reload."""
    deadline_at = at(1, 4, year=2027)
    f = missed_rectification_follow_up(deadline_at)
    assert (f.status, f.due_rule) == ("missed", None)
    now = at(1, 6, 10, year=2027)
    assert f.follow_deadline(now, Basis.OFFICIAL, now, meta("revised-1", now),
                             at_deadline=deadline_at) is True
    assert (f.status, f.due_at, f.basis) == ("missed", deadline_at, "official")
    assert f.follow_deadline(now, Basis.OFFICIAL, now, meta("revised-2", now),
                             at_deadline=deadline_at) is False, "once"


@pytest.mark.parametrize(("due_at", "working_day"), [
    (at(12, 20, 10), date(2026, 12, 21)),  # Sunday 20 December 2026: Monday's
    (at(12, 18, 18), date(2026, 12, 21)),  # Friday 18th at 18:00, after closing: Monday's
    (at(12, 21, 16, 59), date(2026, 12, 21)),  # a working day before closing: that day
    (at(12, 31, 23, 30), date(2027, 1, 4)),  # New Year's Eve 23:30: Monday 4 Jan (the law's)
    (at(2, 7, 10, year=2027), date(2027, 2, 9)),  # Spring Festival 2027, provisional
])
def test_a_follow_up_done_on_the_working_day_after_a_sunday_due_moment_is_on_time(
        due_at: datetime, working_day: date) -> None:
    """Hand-set to a Sunday (or a Friday 18:00), done on Monday: the figures counted it late
    (the completion's day after the date of due_at), though nobody works on Sunday and the
    scheduler only misses it at Monday's closing. The completion records the working day it
    was to be done on (``due_by``), which the on-time rule compares with."""
    assert due_working_day(CALENDAR, due_at) == working_day
    f = follow_up(due_at)
    f.complete("done", "phone", "", meta("done-1", CALENDAR.opening_on(working_day)),
               due_by=due_working_day(CALENDAR, f.due_at))
    [*_, completed] = f.collect_events()
    assert (type(completed).__name__, completed.due_by) == ("FollowUpCompleted", working_day)


def replayed(events: list[Any]) -> FollowUp:
    """A follow-up rebuilt from its recorded events, as a reader of the store gets it."""
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert isinstance(aggregate, FollowUp)
    return aggregate


def test_an_unanswered_call_on_a_missed_follow_up_leaves_it_on_the_supervisors_list() -> None:
    """A check due Friday 18 December 2026 went missed at its closing. On Sunday the 20th
    clerk-017, who let it go and may not move it, posts an unanswered call: it was made
    'scheduled' at Monday's opening, off the supervisors' escalation list, the door the
    own-missed rule closes. Now the call and its note are recorded and it stays missed, to
    be escalated at its moment (Tuesday 22nd's opening); a supervisor's unanswered call on
    31 December 23:30 leaves it escalated; the third attempt completes it."""
    check = follow_up(at(12, 18), Reason.POST_RESOLUTION_CHECK)
    advance(check, at(12, 18, 17))
    escalate_at = check.escalate_at
    assert (check.status, escalate_at) == ("missed", at(12, 22))
    day_of = CALENDAR.local_day

    def call(key: str, moment: datetime, actor: str = "clerk-017") -> Any:
        retry = CALENDAR.plan(retry_rule(day_of(moment)))
        check.complete("unreachable", "phone", "停机", {**meta(key, moment), "actor": actor},
                       retry=(retry.at, retry.basis, retry_rule(day_of(moment))),
                       calendar=CALENDAR)
        return check.collect_events()[-1]

    first = call("c1", at(12, 20, 10))
    assert (check.status, check.due_at, check.escalate_at, check.unreached) == (
        "missed", at(12, 18), escalate_at, 1)
    assert (first.stays, first.due_at, first.previous_due_at) == ("missed", at(12, 18),
                                                                  at(12, 18))
    assert first.reason == "unreachable: attempt 1 of 3: 停机"
    assert check.next_fire_at == escalate_at
    assert advance(check, at(12, 22)) == ["FollowUpEscalated"]
    second = call("c2", at(12, 31, 23, 30), actor="director-01")
    assert (check.status, check.due_at, check.unreached, second.stays) == (
        "escalated", at(12, 18), 2, "escalated")
    check.complete("unreachable", "phone", "", meta("c3", at(1, 4, 10, year=2027)),
                   retry=(at(1, 5, year=2027), Basis.PROVISIONAL), calendar=CALENDAR)
    assert (check.status, check.outcome) == ("completed", "unreachable")


def test_a_missed_follow_up_rebuilt_from_its_events_stays_as_it_was_live() -> None:
    check = follow_up(at(12, 18), Reason.POST_RESOLUTION_CHECK)
    events = list(check.collect_events())
    events += advance_events(check, at(12, 18, 17))
    check.complete("unreachable", "phone", "无人接听", meta("c1", at(12, 20, 10)),
                   retry=(at(12, 21), Basis.OFFICIAL), calendar=CALENDAR)
    events += check.collect_events()
    again = replayed(events)
    assert (again.status, again.due_at, again.escalate_at, again.unreached) == (
        check.status, check.due_at, check.escalate_at, check.unreached) == (
        "missed", at(12, 18), at(12, 22), 1)
    # A due (not yet missed) follow-up is tried again the next working morning, as before.
    due = follow_up(at(12, 18), Reason.POST_RESOLUTION_CHECK)
    advance(due, at(12, 18, 10))
    due.complete("unreachable", "phone", "", meta("d1", at(12, 18, 11)),
                 retry=(at(12, 21), Basis.OFFICIAL), calendar=CALENDAR)
    assert (due.status, due.due_at) == ("scheduled", at(12, 21))
    assert due.collect_events()[-1].stays is None


def advance_events(f: FollowUp, now: datetime) -> list[Any]:
    advance(f, now)
    return list(f.collect_events())


def test_a_missed_rectification_follow_up_is_kept_with_its_deadline_once() -> None:
    """The same follow-up, missed on Monday 4 January 2027 (provisional); the schedule makes
    the 4th a day off, and the deadline, missed either way, is kept on the 4th
    (RectificationDeadlineRevised with published_deadline_on the 5th): the follow-up keeps
    its day and basis too, and says so once (FollowUpDueConfirmed, published_due_at: the
    5th's opening), so no reload reads it again. Before, nothing was recorded: its
    ``due_rule`` is None, and it was read at every reload, for ever."""
    deadline_at = at(1, 4, year=2027)
    f = missed_rectification_follow_up(deadline_at)
    f.collect_events()
    now = at(1, 6, 10, year=2027)
    assert f.follow_deadline(now, Basis.PROVISIONAL, now, meta("revised-1", now),
                             at_deadline=deadline_at,
                             published_at=at(1, 5, year=2027)) is True
    [kept] = f.collect_events()
    assert kept.published_due_at == at(1, 5, year=2027)
    assert (f.status, f.due_at, f.basis) == ("missed", deadline_at, "provisional")
    assert f.follow_deadline(now, Basis.PROVISIONAL, now, meta("revised-2", now),
                             at_deadline=deadline_at,
                             published_at=at(1, 5, year=2027)) is False, "once"


def _notice(year: int, holidays: list[str], workdays: list[str]) -> WorkingCalendar:
    return WorkingCalendar(holidays=parse_holidays(json.dumps({str(year): {
        "source": "illustrative test data", "holidays": holidays, "workdays": workdays}})))


@pytest.mark.parametrize(("due_at", "published", "missed_on"), [
    # Saturday 20 February 2027 (the law: a day off): due, missed at Monday the 22nd's
    # closing; a notice then works the 20th (a make-up day).
    (at(2, 20, 9, year=2027), _notice(2027, ["2027-02-11..2027-02-17"], ["2027-02-20"]),
     date(2027, 2, 22)),
    # New Year's Eve 23:30, after closing: due, missed at Monday 4 January's closing (the
    # law's); a notice then works Saturday the 2nd.
    (at(12, 31, 23, 30), _notice(2027, ["2027-01-01"], ["2027-01-02"]), date(2027, 1, 4)),
    # Sunday 20 December 2026, the package's year: nothing changes, Monday the 21st both ways.
    (at(12, 20, 10), CALENDAR, date(2026, 12, 21)),
])
def test_a_follow_up_fallen_due_is_judged_by_the_day_the_scheduler_misses_it(
        due_at: datetime, published: WorkingCalendar, missed_on: date) -> None:
    """It fell due on the calendar then in force, which set the moment the scheduler misses
    it (``overdue_at``, that day's closing). A schedule published before it is done works
    an earlier day (a make-up Saturday): done on the day the scheduler would miss it, before
    its closing, it is on time. Before, ``due_by`` was worked out again at the completion on
    the new calendar (that Saturday): judged late, never missed."""
    f = follow_up(due_at)
    advance(f, due_at)
    assert f.status == "due" and CALENDAR.local_day(f.overdue_at) == missed_on
    assert due_working_day(published, due_at) <= missed_on  # < where a notice came
    done_at = published.opening_on(missed_on)
    f.complete("done", "phone", "", meta("done-1", done_at),
               due_by=f.working_day_due(published))
    [*_, completed] = f.collect_events()
    assert completed.due_by == missed_on


def assert_not_counted(f: FollowUp, because: str) -> dict[str, Any]:
    """The last call was recorded (FollowUpRescheduled, cause unreachable) with its note,
    not counted: ``counted`` false, why, and its due moment unchanged."""
    last = f.pending_events[-1]
    payload = {k: v for k, v in last.__dict__.items() if not k.startswith("originator")}
    assert type(last).__name__ == "FollowUpRescheduled"
    assert (payload["counted"], payload["not_counted_because"]) == (False, because)
    assert payload["due_at"] == payload["previous_due_at"]
    assert payload["reason"].startswith(f"unreachable: not counted ({because})")
    return payload


@pytest.mark.parametrize(("due", "called", "redial", "counts_from"), [
    # Due Friday 18 December; Sunday 20th, 10:00 and 16:30: the next center day, Monday
    # 00:00.
    (at(12, 18), at(12, 20, 10), at(12, 20, 16, 30), at(12, 21, 0)),
    # 31 December 23:30 and 23:35: 1 January 2027 (provisional) is a new center day at
    # 00:00, but the gap runs to 07:30.
    (at(12, 28), at(12, 31, 23, 30), at(12, 31, 23, 35), at(1, 1, 7, 30, year=2027)),
    # 2028: due Friday 25 February; Tuesday 29th 01:00 and 03:00: Wednesday 1 March 00:00.
    (at(2, 25, year=2028), at(2, 29, 1, year=2028), at(2, 29, 3, year=2028),
     at(3, 1, 0, year=2028)),
])
def test_a_redial_on_a_missed_follow_up_says_when_the_next_call_counts_not_its_old_moment(
        due: datetime, called: datetime, redial: datetime, counts_from: datetime) -> None:
    """A missed (or escalated) follow-up keeps its due moment, days back, when called
    without answer. The redial the same day was recorded, not counted, with
    ``next_attempt_at`` that old due moment: 'the next attempt counts from 18 December' to
    a clerk on 31 December, who redialled and was not counted again. It says the first
    moment a call counts at: the next center day, and the gap's end after the last
    attempt counted."""
    check = follow_up(due, Reason.POST_RESOLUTION_CHECK)
    due_at = check.due_at
    assert advance(check, due_at) + advance(check, due_at.replace(hour=17)) == [
        "FollowUpDue", "FollowUpMissed"]
    day_of = CALENDAR.local_day

    def call(key: str, moment: datetime) -> None:
        retry = CALENDAR.plan(retry_rule(day_of(moment)))
        check.complete("unreachable", "phone", "空号", meta(key, moment),
                       retry=(retry.at, retry.basis, retry_rule(day_of(moment))),
                       calendar=CALENDAR)

    call("c1", called)
    call("c2", redial)
    uncounted = assert_not_counted(check, "tried_today")
    assert uncounted["next_attempt_at"] == counts_from
    assert (check.status, check.due_at, check.unreached) == ("missed", due_at, 1)
    call("c3", counts_from)  # the moment it said: counted
    assert (check.status, check.unreached) == ("missed", 2)


@pytest.mark.parametrize(("first_due", "first_push"), [
    (at(12, 18, 10), at(12, 18, 11)),  # Friday 18 Dec, pushed over Sunday the 20th
    (at(1, 4, 10, year=2027), at(12, 31, 23, 30)),  # moved ahead on New Year's Eve 23:30
    (at(2, 3, 10, year=2027), at(2, 3, 11, year=2027)),  # before Spring Festival, provisional
])
def test_a_clerk_pushing_their_check_to_tomorrow_every_day_is_still_judged_on_its_first_day(
        first_due: datetime, first_push: datetime) -> None:
    """On its due day clerk-017 moves their post-resolution check to the next working
    morning, and again the next day: it never went missed, and when done at last its
    ``due_by`` was the last morning, so it counted on time. Now a move by anyone but a
    supervisor keeps the day it is judged against (``on_time_by``); a supervisor's move sets
    a new one; rebuilt from its events, it says the same."""
    working_day = due_working_day(CALENDAR, first_due)
    f = follow_up(first_due, Reason.POST_RESOLUTION_CHECK)
    now, day = first_push, working_day
    for n in range(2):
        advance(f, now)
        day = CALENDAR.add_working_days(day, 1)
        f.reschedule(CALENDAR.opening_on(day), "resident busy", None, None, now,
                     meta(f"push-{n}", now), calendar=CALENDAR)
        assert f.working_day_due(CALENDAR) == working_day, "the first due day stays"
        now = CALENDAR.opening_on(day) + timedelta(hours=1)
    events = f.collect_events()
    assert events[-1].on_time_by == working_day
    assert replayed(events).working_day_due(CALENDAR) == working_day
    moved = CALENDAR.add_working_days(day, 3)
    f.reschedule(CALENDAR.opening_on(moved), "resident in hospital", None, None, now,
                 {**meta("boss", now), "actor": "director-01"}, by_supervisor=True,
                 calendar=CALENDAR)
    assert f.working_day_due(CALENDAR) == moved, "a supervisor's move sets a new day"
    assert f.collect_events()[-1].on_time_by is None


def test_a_kept_day_a_notice_makes_a_holiday_judges_by_the_next_working_day() -> None:
    """Due Monday 4 January 2027 (provisional, the law alone), moved by its clerk on New
    Year's Eve at 23:30 to Tuesday's morning: judged against the 4th (``on_time_by``). The
    2027 notice then makes the 4th a holiday: had the clerk not moved it, the notice would
    have moved it to the 5th (``replan``); done on the 5th it is on time, not late on a day
    nobody works."""
    eve = at(12, 31, 23, 30)
    f = follow_up(at(1, 4, 10, year=2027), Reason.POST_RESOLUTION_CHECK)
    f.reschedule(at(1, 5, 9, year=2027), "resident away", None, None, eve, meta("push", eve),
                 calendar=CALENDAR)
    assert f.working_day_due(CALENDAR) == date(2027, 1, 4)
    published = WorkingCalendar(holidays=parse_holidays(
        '{"2027": {"source": "test", "holidays": ["2027-01-01", "2027-01-04"]}}'))
    assert f.working_day_due(published) == date(2027, 1, 5)
    assert replayed(f.collect_events()).working_day_due(published) == date(2027, 1, 5)


@pytest.mark.parametrize("to_a_team_first", [False, True])
def test_a_supervisors_own_follow_up_moved_by_themselves_keeps_its_day(
        to_a_team_first: bool) -> None:
    """director-01 serves cases too: their own post-resolution check, pushed by them to the
    next morning on its due day, was judged on the new day (a supervisor's move set it), so
    pushing it every day it never counted late. Their own move keeps the day, as a clerk's
    does; another supervisor's move sets a new one. On the calendar's edges: due Sunday 20
    December (judged on Monday the 21st), one due in 2027 pushed on New Year's Eve at 23:30,
    one in 2028 (a year no schedule knows). Moved by them to a team first (redteam48: no
    longer assigned to them, their next move set a new day), it is still theirs: one they
    held (as ``Case.is_own_case``)."""
    for first_due, push_at in ((at(12, 20, 10), at(12, 21, 11)),
                               (at(1, 4, 10, year=2027), at(12, 31, 23, 30)),
                               (at(3, 6, 10, year=2028), at(3, 6, 9, year=2028))):
        f = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=first_due, assigned_clerk="director-01",
                     assigned_team=None, priority="normal", service_item="SA-HARDSHIP-SUBSIDY",
                     source="test", source_id=None, meta=meta("schedule-1"))
        working_day = due_working_day(CALENDAR, first_due)
        advance(f, push_at)
        later = CALENDAR.add_working_days(CALENDAR.local_day(push_at), 2)
        if to_a_team_first:
            f.reschedule(CALENDAR.opening_on(later), "交给小组", None, "followup-desk", push_at,
                         {**meta("team", push_at), "actor": "director-01"}, by_supervisor=True,
                         calendar=CALENDAR)
        f.reschedule(CALENDAR.opening_on(later), "resident busy", None, None, push_at,
                     {**meta("own", push_at), "actor": "director-01"}, by_supervisor=True,
                     calendar=CALENDAR)
        assert f.working_day_due(CALENDAR) == working_day, "their own move keeps the day"
        assert replayed(f.collect_events()).working_day_due(CALENDAR) == working_day
        f.reschedule(CALENDAR.opening_on(later), "resident in hospital", None, None, push_at,
                     {**meta("other", push_at), "actor": "director-02"}, by_supervisor=True,
                     calendar=CALENDAR)
        assert f.working_day_due(CALENDAR) == later, "another supervisor's move sets it"


def test_a_clerks_follow_up_is_not_moved_to_a_team_or_a_colleague_to_be_cancelled() -> None:
    """The two steps around ``forbidden_assignee``: clerk-021 moved clerk-017's check (same
    moment) to the follow-up desk, a team's, and cancelled it: anyone may cancel a team's,
    and the figures counted it nowhere; clerk-017 could do the same with their own. Or
    clerk-021 moved it to themselves and cancelled it as theirs. A clerk's follow-up changes
    hands on a staff move only by a supervisor (403, nothing recorded); moved without a new
    assignee it stays theirs; a team's is taken by a clerk. Due Sunday 20 December, New
    Year's Eve at 23:30 in 2027's days, and 2028."""
    def as_(actor: str, key: str) -> dict[str, Any]:
        return {**meta(key), "actor": actor}

    for due in (at(12, 20, 10), at(1, 4, 10, year=2027), at(3, 6, 10, year=2028)):
        now = min(due, at(12, 31, 23, 30))
        f = follow_up(due, Reason.POST_RESOLUTION_CHECK)
        before = len(f.pending_events)
        for actor in ("clerk-021", "clerk-017"):
            for clerk, team in ((None, "followup-desk"), ("clerk-021", None)):
                with pytest.raises(NotTheAssignee) as refused:
                    f.reschedule(due, "转给同事", clerk, team, now, as_(actor, f"{actor}{clerk}"),
                                 calendar=CALENDAR)
                assert refused.value.code == "forbidden_assignee"
        assert len(f.pending_events) == before and f.assigned_clerk == "clerk-017"
        f.reschedule(due, "居民改约", None, None, now, as_("clerk-017", "own"), calendar=CALENDAR)
        f.reschedule(due, "主管调配", None, "followup-desk", now,
                     as_("director-01", "sup"), by_supervisor=True, calendar=CALENDAR)
        f.reschedule(due, "我来做", "clerk-021", None, now, as_("clerk-021", "take"),
                     calendar=CALENDAR)
        assert f.assigned_clerk == "clerk-021"


def test_a_colleague_does_not_cancel_a_clerks_follow_up_its_clerk_or_a_supervisor_does() -> None:
    """clerk-021 cancelled clerk-017's check the day before it would go missed: cancelled, it
    was in no rate, and counted nowhere (not the assignee's, not a supervisor's). Now only
    its clerk or a supervisor cancels it (403 ``forbidden_assignee``, nothing recorded); a
    colleague covering completes it. One assigned to a team is a supervisor's to cancel (no
    token names a team, and the event no role: a clerk's cancelling of it counted nowhere
    either); the rules' own cancels are not staff's."""
    def as_(actor: str, key: str) -> dict[str, Any]:
        return {**meta(key), "actor": actor}

    f = follow_up(at(12, 20, 10), Reason.POST_RESOLUTION_CHECK)  # Sunday 20 December
    before = len(f.pending_events)
    with pytest.raises(NotTheAssignee) as refused:
        f.cancel("不需要了", as_("clerk-021", "c-1"))
    assert (refused.value.status, refused.value.code) == (403, "forbidden_assignee")
    assert len(f.pending_events) == before and f.status == "scheduled"
    assert f.cancel("不需要了", as_("director-01", "c-2"), by_supervisor=True)
    assert follow_up(at(12, 31, 23, 30)).cancel("不需要了", as_("clerk-017", "c-3"))
    assert follow_up(at(3, 6, year=2028)).cancel("case resolved", as_("system:rules", "c-4"))
    team = FollowUp(id=uuid.uuid4(), reason=Reason.HOME_VISIT.value, resident_id=uuid.uuid4(),
                    due_at=at(1, 4, 10, year=2027), assigned_clerk=None,
                    assigned_team="followup-desk", priority="normal",
                    service_item="SA-HARDSHIP-SUBSIDY", source="test", source_id=None,
                    meta=meta("schedule-t"))
    before = len(team.pending_events)  # due Monday 4 January 2027, a provisional year
    with pytest.raises(NotTheAssignee) as refused:
        team.cancel("不需要了", as_("clerk-021", "c-5"))
    assert refused.value.details["assigned_team"] == "followup-desk"
    assert len(team.pending_events) == before and team.status == "scheduled"
    assert team.cancel("不需要了", as_("director-01", "c-6"), by_supervisor=True)


@pytest.mark.parametrize(("zone", "tried"), [
    # New York: 2:00 EDT on Sunday 1 November 2026 fell back to 1:00 EST (a 25-hour day)
    ("America/New_York", datetime(2026, 10, 31, 23, 30)),
    # Santiago: midnight of Sunday 6 September 2026 never came (23:59:59 -> 01:00)
    ("America/Santiago", datetime(2026, 9, 5, 22, 0)),
    # Shanghai keeps no daylight saving: 31 December 2026 23:30, and in 2027 and 2028
    ("Asia/Shanghai", datetime(2026, 12, 31, 23, 30)),
    ("Asia/Shanghai", datetime(2028, 2, 28, 23, 30)),
])
def test_the_redial_gap_is_eight_real_hours_across_a_daylight_saving_change(
        zone: str, tried: datetime) -> None:
    """A center in a zone with daylight saving (the calendar takes any zone): an unanswered
    call late on the evening before the clocks change, and the redial just past midnight. The
    next attempt counts eight hours after the first call as the clock on the wall of the
    world runs, not eight hours of the center's wall clock (one hour too late in New York on
    1 November 2026, one hour too early in Santiago on 6 September 2026); and a redial at
    that moment counts."""
    tz = ZoneInfo(zone)
    calendar = WorkingCalendar(tz=zone)
    first = tried.replace(tzinfo=tz)
    check = FollowUp(id=uuid.uuid4(), reason=Reason.POST_RESOLUTION_CHECK.value,
                     resident_id=uuid.uuid4(), due_at=first - timedelta(hours=1),
                     assigned_clerk="clerk-017", assigned_team=None, priority="normal",
                     service_item=None, source="test", source_id=None,
                     meta=meta("schedule-1", first - timedelta(days=1)))
    gap = timedelta(hours=8)
    counts_at = (first.astimezone(UTC) + gap).astimezone(tz)

    def call(key: str, moment: datetime) -> None:
        retry = moment + timedelta(minutes=1)  # the team's own moment: the gap decides
        check.complete("unreachable", "phone", "无人接听", meta(key, moment),
                       retry=(retry, calendar.basis_of(retry)), calendar=calendar,
                       min_gap=gap)

    call("c1", first)
    redial = calendar.next_day_start(first) + timedelta(minutes=1)
    call("c2", redial)
    uncounted = assert_not_counted(check, "tried_too_soon")
    assert uncounted["next_attempt_at"] == counts_at
    assert check.next_attempt_counts_at(calendar, redial, gap) == counts_at
    just_before = (counts_at.astimezone(UTC) - timedelta(minutes=1)).astimezone(tz)
    assert check.check_attempt_day(calendar, just_before, gap) is not None
    assert check.check_attempt_day(calendar, counts_at, gap) is None
    call("c3", counts_at)
    assert check.unreached == 2
