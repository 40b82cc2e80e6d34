"""Follow-up's HTTP API: worklists for clerks and teams, and what staff do with a follow-up.

Writes take an Idempotency-Key (required) and If-Match (optional, the version last seen) and
answer with the version and log position; each hands its command to one use case
(``application.py``, through the command path), where the follow-up's center is checked
against the token as it is loaded. Reads come from ``queries.py`` and take
``?after=<position>`` to see that write.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, status

from services.followup import commands as c
from services.followup import parked, queries
from services.followup.application import FollowUps
from services.followup.deps import ClockDep, FollowUpsDep, wait_for
from services.followup.domain import FollowUpStatus, WorkDay, work_day
from services.followup.queries import (
    CaseDuePublic,
    CenterBoardPublic,
    FollowUpList,
    FollowUpPublic,
    ObligationPublic,
    PolicyChangePublic,
    WorklistPublic,
)
from shared.contracts.followup import FollowUpOutcome, NotCountedBecause
from shared.http.auth import (
    Staff,
    Supervisor,
    center_filter,
    check_center,
    forbidden,
    not_found_elsewhere,
    require_roles,
)
from shared.http.dependencies import (
    Actor,
    After,
    ExpectedVersion,
    IdempotencyKey,
    PoolDep,
    SettingsDep,
    WrittenPublic,
)
from shared.http.errors import ERRORS, problem
from shared.kernel.calendar import CalendarOutOfRange, covered
from shared.kernel.clock import Clock
from shared.readmodels.public import Elsewhere
from shared.security.principals import Principal, Role
from shared.settings import Settings

Center = Annotated[str, Query(max_length=64, description="The center whose worklist it is.")]
Horizon = Annotated[int, Query(ge=0, le=90, description="Upcoming: this many days ahead.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many per list.")]

followups = APIRouter(prefix="/followups", tags=["follow-ups"], responses=ERRORS)
worklists = APIRouter(prefix="/worklists", tags=["worklists"], responses=ERRORS)
policies = APIRouter(prefix="/policy-changes", tags=["policy changes"], responses=ERRORS)
obligations = APIRouter(prefix="/obligations", tags=["obligations"], responses=ERRORS)
parked_rules = APIRouter(prefix="/parked-rules", tags=["parked rules"], responses=ERRORS)
SupervisorOrOps = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS))]


# -- writes ---------------------------------------------------------------------------------


@followups.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
                summary="Schedule a follow-up by hand (e.g. a home visit)")
async def schedule(body: c.ScheduleFollowUp, app: FollowUpsDep, key: IdempotencyKey,
                   actor: Actor, staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    return WrittenPublic.of(await app.schedule_by_hand(body, actor, key))


class CompletedPublic(WrittenPublic):
    """A completion's answer. An unanswered call the same center day as one counted, or
    within ``FOLLOWUP_ATTEMPT_MIN_GAP_HOURS`` of one, is recorded with its note but is not an
    attempt: ``counted`` false, why, and when the next attempt counts from; the follow-up is
    unchanged. ``counted`` true: an unanswered call counted (or ending it); None: no
    unanswered call. A retry under the same Idempotency-Key answers as the first."""

    counted: bool | None = None
    not_counted_because: NotCountedBecause | None = None
    next_attempt_at: datetime | None = None


@followups.post("/{id}/complete", response_model=CompletedPublic,
                summary="Done: outcome, contact channel used, note")
async def complete(id: UUID, body: c.CompleteFollowUp, app: FollowUpsDep, key: IdempotencyKey,
                   actor: Actor, expected: ExpectedVersion, staff: Staff) -> CompletedPublic:
    written, uncounted = await app.complete_counted(id, body, actor, key, expected)
    public = CompletedPublic(**WrittenPublic.of(written).model_dump())
    if uncounted is not None:
        public.counted = False
        public.not_counted_because = uncounted.because
        public.next_attempt_at = uncounted.next_attempt_at
    elif body.outcome is FollowUpOutcome.UNREACHABLE:
        public.counted = True
    return public


@followups.post("/{id}/reschedule", response_model=WrittenPublic,
                summary="Move to another day or time (and assignee)")
async def reschedule(id: UUID, body: c.RescheduleFollowUp, app: FollowUpsDep,
                     key: IdempotencyKey, actor: Actor, expected: ExpectedVersion,
                     staff: Staff) -> WrittenPublic:
    """A missed or escalated follow-up: not by the clerk it was missed by, nor by anyone
    but a supervisor when a team let it go (403 ``own_missed_followup``: it would leave the
    escalation worklist); a supervisor may, not one it was missed by. One assigned to a
    clerk given to another clerk or a team only by a supervisor (403 ``forbidden_assignee``)."""
    return WrittenPublic.of(await app.reschedule(
        id, body, actor, key, expected, by_supervisor=staff.role is Role.SUPERVISOR))


@followups.post("/{id}/escalate", response_model=WrittenPublic,
                summary="Hand to the center's supervisor")
async def escalate(id: UUID, body: c.EscalateFollowUp, app: FollowUpsDep, key: IdempotencyKey,
                   actor: Actor, expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.escalate(id, body, actor, key, expected))


@followups.post("/{id}/cancel", response_model=WrittenPublic, summary="No longer needed")
async def cancel(id: UUID, body: c.CancelFollowUp, app: FollowUpsDep, key: IdempotencyKey,
                 actor: Actor, expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    """As a reschedule: a missed or escalated one not by whoever let it go (403
    ``own_missed_followup``); a supervisor may. One assigned to a clerk only by that clerk
    or a supervisor (403 ``forbidden_assignee``)."""
    return WrittenPublic.of(await app.cancel(id, body, actor, key, expected,
                                             by_supervisor=staff.role is Role.SUPERVISOR))


@obligations.post("/{id}/fulfilments", response_model=WrittenPublic,
                  summary="Record that a period of the obligation was fulfilled")
async def fulfil(id: UUID, body: c.FulfilObligation, app: FollowUpsDep, key: IdempotencyKey,
                 actor: Actor, expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.fulfil(id, body, actor, key, expected))


@obligations.post("/{id}/end", response_model=WrittenPublic,
                  summary="Stop watching the obligation")
async def end_obligation(id: UUID, body: c.EndObligation, app: FollowUpsDep,
                         key: IdempotencyKey, actor: Actor, expected: ExpectedVersion,
                         staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.end_obligation(id, body, actor, key, expected))


Publisher = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.CITY))]


@policies.post("", status_code=status.HTTP_202_ACCEPTED, response_model=WrittenPublic,
               summary="Publish a policy change; outreach to affected residents follows")
async def publish(body: c.PublishPolicyChange, app: FollowUpsDep, key: IdempotencyKey,
                  publisher: Publisher) -> WrittenPublic:
    """A center's supervisor publishes to their own center's residents; ``all_centers``
    (every center's residents) needs the ``city`` role (403 ``forbidden_role``). Residents
    who are erased or have not agreed to be contacted are not reached."""
    check_center(publisher, body.center_id)
    return WrittenPublic.of(await app.publish_policy(body, publisher, key))


# -- reads ----------------------------------------------------------------------------------

@followups.get("/{id}", response_model=FollowUpPublic, summary="One follow-up")
async def get_follow_up(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                        after: After = None) -> FollowUpPublic:
    await wait_for(pool, settings, after)
    follow_up = await queries.follow_up(pool, id, staff.center_id)
    if follow_up is None:
        raise problem(404, "not_found", f"follow-up {id} not found", id=str(id))
    # Its id is worked out from ids another center knows (a case's events, a policy and a
    # resident): another center's is none of theirs.
    not_found_elsewhere(staff, follow_up.center_id, "follow-up", id)
    return follow_up


@followups.get("", response_model=FollowUpList,
               summary="Follow-ups of a case, a resident or a source (newest due first)")
async def list_follow_ups(
    pool: PoolDep, settings: SettingsDep, staff: Staff,
    case_id: UUID | None = None, resident_id: UUID | None = None,
    source_id: UUID | None = None,
    status_: Annotated[FollowUpStatus | None, Query(alias="status")] = None,
    limit: Limit = 100, after: After = None,
) -> FollowUpList:
    await wait_for(pool, settings, after)
    if case_id is None and resident_id is None and source_id is None and status_ is None:
        raise problem(422, "filter_required", "give case_id, resident_id or source_id")
    given = {"case_id": case_id, "resident_id": resident_id, "source_id": source_id,
             "status": status_}
    return await queries.follow_ups(pool, given, center_filter(staff, None), limit)


def _day(followups: FollowUps, center_id: str, clock: Clock) -> WorkDay:
    """The worklist's day on the center's calendar: 422 ``calendar_out_of_range`` past it."""
    return covered(lambda: work_day(followups.calendar(center_id), clock.now()))


async def _cases(pool: asyncpg.Pool, followups: FollowUps, settings: Settings, today: date,
                 center_id: str, who: str, value: str, limit: int) -> list[CaseDuePublic]:
    """The open cases due soon (``CASE_DUE_SOON_WORKING_DAYS`` on the center's calendar),
    overdue, or critical, for a worklist."""
    calendar = followups.calendar(center_id)
    try:
        soon = calendar.add_working_days(today, settings.case_due_soon_working_days)
    except CalendarOutOfRange:  # past the calendar: the next working day is unknown
        soon = today
    return await queries.cases_due(pool, today, soon, center_id, who, value, limit)


@worklists.get("/clerks/{clerk_id}", response_model=WorklistPublic,
               summary="A clerk's follow-ups: overdue, due today, upcoming")
async def clerk_worklist(clerk_id: str, center_id: Center, pool: PoolDep,
                         settings: SettingsDep, clock: ClockDep, staff: Staff,
                         followups: FollowUpsDep, days: Horizon = 14, limit: Limit = 200,
                         after: After = None) -> WorklistPublic:
    check_center(staff, center_id)
    await wait_for(pool, settings, after)
    day = _day(followups, center_id, clock)
    worklist = await queries.worklist(pool, day, center_id, "assigned_clerk = $2",
                                      clerk_id, days, limit)
    # 首问负责制: the clerk sees the cases they first took and those handed to them.
    worklist.cases = await _cases(pool, followups, settings, day.today, center_id,
                                  "(clerk_id = $2 OR owner_clerk = $2)", clerk_id, limit)
    worklist.help_tasks = [
        *await queries.open_help_tasks(pool, center_id, "owner_clerk = $2", clerk_id, limit),
        *await queries.handed_back_help_tasks(
            pool, center_id, clerk_id, limit,
            clock.now() - timedelta(days=settings.followup_handed_back_days))]
    return worklist


@worklists.get("/teams/{team_id}", response_model=WorklistPublic,
               summary="A team's follow-ups (escalations included for the supervisor team): "
               "overdue, due today, upcoming")
async def team_worklist(team_id: str, center_id: Center, pool: PoolDep, settings: SettingsDep,
                        clock: ClockDep, staff: Staff, followups: FollowUpsDep,
                        days: Horizon = 14, limit: Limit = 200,
                        after: After = None) -> WorklistPublic:
    check_center(staff, center_id)
    if team_id == settings.followup_supervisor_team and staff.role is not Role.SUPERVISOR:
        raise forbidden("forbidden_role", "escalations are the supervisor's worklist",
                        role=staff.role.value, allowed=[Role.SUPERVISOR.value])
    await wait_for(pool, settings, after)
    day = _day(followups, center_id, clock)
    worklist = await queries.worklist(pool, day, center_id,
                                      "(assigned_team = $2 OR escalated_to = $2)", team_id,
                                      days, limit)
    if team_id == settings.followup_supervisor_team:  # the supervisors': every clerk's cases
        worklist.cases = await _cases(pool, followups, settings, day.today, center_id,
                                      "center_id = $2", center_id, limit)
    else:  # 转办 to a team: the team does the work now, so it sees the case's due date
        worklist.cases = await _cases(pool, followups, settings, day.today, center_id,
                                      "owner_team = $2", team_id, limit)
    worklist.help_tasks = await queries.open_help_tasks(
        pool, center_id, "(owner_team = $2 OR escalated_to = $2)", team_id, limit)
    return worklist


@worklists.get("/centers/{center_id}", response_model=CenterBoardPublic,
               summary="The whole center's follow-ups, every clerk and team (the supervisor's "
               "board): overdue and escalated, due today, upcoming, how many rules are "
               "parked, and the open home visits")
async def center_worklist(center_id: str, pool: PoolDep, settings: SettingsDep,
                          clock: ClockDep, supervisor: Supervisor, followups: FollowUpsDep,
                          days: Horizon = 14, limit: Limit = 200,
                          after: After = None) -> CenterBoardPublic:
    check_center(supervisor, center_id)
    await wait_for(pool, settings, after)
    day = _day(followups, center_id, clock)
    board = await queries.worklist(pool, day, center_id, "center_id = $2", center_id, days,
                                   limit)
    board.cases = await _cases(pool, followups, settings, day.today, center_id, "center_id = $2",
                               center_id, limit)
    # Rules waiting for a day the calendar does not cover (GET /parked-rules): on the board.
    escalations, referrals = await queries.help_and_referral_counts(pool, center_id,
                                                                     clock.now())
    return CenterBoardPublic(**{**dict(board), "help_tasks": await queries.open_help_tasks(
        pool, center_id, "center_id = $2", center_id, limit)},
        parked_rules=await parked.count(pool, center_id),
        home_visits=await queries.home_visits(pool, center_id, limit),
        escalations=escalations, referrals=referrals,
        referrals_waiting=(await queries.referrals(pool, center_id, None, True, limit)).items)


PolicyReader = Annotated[Principal, Depends(require_roles(Role.CLERK, Role.SUPERVISOR,
                                                        Role.CITY))]


@policies.get("/{id}", response_model=PolicyChangePublic,
              summary="A policy change and its fan-out's progress")
async def get_policy(id: UUID, pool: PoolDep, settings: SettingsDep, staff: PolicyReader,
                     after: After = None) -> PolicyChangePublic:
    await wait_for(pool, settings, after)
    policy = await queries.policy_change(pool, id, staff.center_id)
    if policy is None:
        raise problem(404, "not_found", f"policy change {id} not found", id=str(id))
    if isinstance(policy, Elsewhere) or not policy.all_centers:
        not_found_elsewhere(staff, policy.center_id, "policy change", id)
    return policy


@obligations.get("/{id}", response_model=ObligationPublic,
                 summary="A watched obligation: current period, missed periods")
async def get_obligation(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                         after: After = None) -> ObligationPublic:
    await wait_for(pool, settings, after)
    obligation = await queries.obligation(pool, id, staff.center_id)
    if obligation is None:
        raise problem(404, "not_found", f"obligation {id} is not watched", id=str(id))
    not_found_elsewhere(staff, obligation.center_id, "obligation", id,
                        f"obligation {id} is not watched")
    return obligation


@parked_rules.get("", response_model=parked.ParkedRulesPublic,
                  summary="Rules waiting for a day the working-day calendar does not cover yet")
async def list_parked_rules(
    pool: PoolDep, caller: SupervisorOrOps,
    center_id: Annotated[str | None, Query(max_length=64, description=(
        "A supervisor sees only their own center's; ops every center's, or one."))] = None,
    limit: Limit = 100,
) -> parked.ParkedRulesPublic:
    """Each parked rule: the upstream event, its center and case, the year the calendar does
    not cover, why. They are applied again when the calendar grows (``sixstep calendar
    reload``); never on a guessed date."""
    return await parked.listing(pool, center_filter(caller, center_id), limit)
