"""Follow-up's HTTP API: worklists for clerks and teams, and what staff do with a follow-up.

Writes take an Idempotency-Key (required) and If-Match (optional, the version last seen) and
answer with the version and log position; reads take ``?after=<position>`` to see that write.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, status

from services.followup import commands as c
from services.followup import parked
from services.followup.application import FollowUps
from services.followup.projections import CONSUMER, OPEN
from shared.http.auth import (
    Staff,
    Supervisor,
    center_filter,
    check_center,
    forbidden,
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
from shared.http.errors import ErrorResponse, problem
from shared.kernel.clock import Clock
from shared.readmodels.positions import wait_for_write
from shared.security.principals import Principal, Role
from shared.settings import Settings

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse}, 401: {"model": ErrorResponse},
    403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    409: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
    503: {"model": ErrorResponse}, 504: {"model": ErrorResponse},
}


async def _followups(request: Request) -> FollowUps:
    return request.app.state.followups




async def _clock(request: Request) -> Clock:
    return request.app.state.clock


FollowUpsDep = Annotated[FollowUps, Depends(_followups)]
ClockDep = Annotated[Clock, Depends(_clock)]
Center = Annotated[str, Query(max_length=64, description="The center whose worklist it is.")]
Horizon = Annotated[int, Query(ge=0, le=90, description="Upcoming: this many days ahead.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many per list.")]

followups = APIRouter(prefix="/followups", tags=["follow-ups"], responses=ERRORS)
worklists = APIRouter(prefix="/worklists", tags=["worklists"], responses=ERRORS)
policies = APIRouter(prefix="/policy-changes", tags=["policy changes"], responses=ERRORS)
obligations = APIRouter(prefix="/obligations", tags=["obligations"], responses=ERRORS)
parked_rules = APIRouter(prefix="/parked-rules", tags=["parked rules"], responses=ERRORS)
SupervisorOrOps = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS))]


async def _wait(pool: asyncpg.Pool, settings: Settings, after: int | None) -> None:
    await wait_for_write(pool, settings, CONSUMER, "followup", after)


# -- writes ---------------------------------------------------------------------------------


@followups.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
                summary="Schedule a follow-up by hand (e.g. a home visit)")
async def schedule(body: c.ScheduleFollowUp, app: FollowUpsDep, key: IdempotencyKey,
                   actor: Actor, staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    return WrittenPublic.of(await app.schedule_by_hand(body, actor, key))


def _action(router: APIRouter, name: str, summary: str, command: type[c._Command],
            method: str) -> None:
    async def route(id: UUID, body: Any, app: FollowUpsDep, key: IdempotencyKey,
                    actor: Actor, expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
        # The follow-up's center is checked against the token where it is loaded
        # (shared.eventstore.group_commit.Unit).
        return WrittenPublic.of(await getattr(app, method)(id, body, actor, key, expected))

    route.__annotations__["body"] = command
    route.__name__ = method
    router.post(f"/{{id}}/{name}", response_model=WrittenPublic, summary=summary)(route)


_action(followups, "complete", "Done: outcome, contact channel used, note", c.CompleteFollowUp,
        "complete")
_action(followups, "reschedule", "Move to another day or time (and assignee)",
        c.RescheduleFollowUp, "reschedule")
_action(followups, "escalate", "Hand to the center's supervisor", c.EscalateFollowUp,
        "escalate")
_action(followups, "cancel", "No longer needed", c.CancelFollowUp, "cancel")
_action(obligations, "fulfilments", "Record that a period of the obligation was fulfilled",
        c.FulfilObligation, "fulfil")
_action(obligations, "end", "Stop watching the obligation", c.EndObligation, "end_obligation")


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

COLUMNS = ("follow_up_id, center_id, case_id, resident_id, reason, priority, status, due_at,"
           " due_on, basis, assigned_clerk, assigned_team, escalated_to, service_item, source,"
           " source_id, outcome, channel, scheduled_at, updated_at, completed_at, version,"
           " position, contact")


@followups.get("/{id}", summary="One follow-up")
async def get_follow_up(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                        after: After = None) -> dict[str, Any]:
    await _wait(pool, settings, after)
    row = await pool.fetchrow(f"SELECT {COLUMNS} FROM followups WHERE follow_up_id = $1", id)
    if row is None:
        raise problem(404, "not_found", f"follow-up {id} not found", id=str(id))
    check_center(staff, row["center_id"])
    return dict(row)


@followups.get("", summary="Follow-ups of a case, a resident or a source (newest due first)")
async def list_follow_ups(
    pool: PoolDep, settings: SettingsDep, staff: Staff,
    case_id: UUID | None = None, resident_id: UUID | None = None,
    source_id: UUID | None = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^[a-z]+$")] = None,
    limit: Limit = 100, after: After = None,
) -> dict[str, Any]:
    await _wait(pool, settings, after)
    where, args = [], []
    for column, value in (("case_id", case_id), ("resident_id", resident_id),
                          ("source_id", source_id), ("status", status_)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if not where:
        raise problem(422, "filter_required", "give case_id, resident_id or source_id")
    if (center := center_filter(staff, None)) is not None:
        args.append(center)
        where.append(f"center_id = ${len(args)}")
    args.append(limit)
    rows = await pool.fetch(f"SELECT {COLUMNS} FROM followups WHERE {' AND '.join(where)}"
                            f" ORDER BY due_at DESC LIMIT ${len(args)}", *args)
    return {"items": [dict(r) for r in rows]}


async def _worklist(pool: asyncpg.Pool, settings: Settings, clock: Clock, center_id: str,
                    who: str, value: str, days: int, limit: int) -> dict[str, Any]:
    today = clock.now().astimezone(settings.tz).date()
    base = (f"SELECT {COLUMNS} FROM followups WHERE center_id = $1 AND {who}"
            f" AND status = ANY($3::text[])")
    open_ = list(OPEN)
    overdue = await pool.fetch(
        f"{base} AND (due_on < $4 OR status IN ('missed', 'escalated'))"
        " ORDER BY due_at, follow_up_id LIMIT $5", center_id, value, open_, today, limit)
    due_today = await pool.fetch(
        f"{base} AND due_on = $4 AND status IN ('scheduled', 'due')"
        " ORDER BY priority = 'high' DESC, due_at, follow_up_id LIMIT $5",
        center_id, value, open_, today, limit)
    upcoming = await pool.fetch(
        f"{base} AND due_on > $4 AND due_on <= $5 AND status = 'scheduled'"
        " ORDER BY due_at, follow_up_id LIMIT $6",
        center_id, value, open_, today, today + timedelta(days=days), limit)
    return {"today": today, "overdue": [dict(r) for r in overdue],
            "due_today": [dict(r) for r in due_today], "upcoming": [dict(r) for r in upcoming]}


@worklists.get("/clerks/{clerk_id}", summary="A clerk's follow-ups: overdue, due today, "
               "upcoming")
async def clerk_worklist(clerk_id: str, center_id: Center, pool: PoolDep,
                         settings: SettingsDep, clock: ClockDep, staff: Staff,
                         days: Horizon = 14, limit: Limit = 200,
                         after: After = None) -> dict[str, Any]:
    check_center(staff, center_id)
    await _wait(pool, settings, after)
    return await _worklist(pool, settings, clock, center_id, "assigned_clerk = $2", clerk_id,
                           days, limit)


@worklists.get("/teams/{team_id}", summary="A team's follow-ups (escalations included for the "
               "supervisor team): overdue, due today, upcoming")
async def team_worklist(team_id: str, center_id: Center, pool: PoolDep, settings: SettingsDep,
                        clock: ClockDep, staff: Staff, days: Horizon = 14, limit: Limit = 200,
                        after: After = None) -> dict[str, Any]:
    check_center(staff, center_id)
    if team_id == settings.followup_supervisor_team and staff.role is not Role.SUPERVISOR:
        raise forbidden("forbidden_role", "escalations are the supervisor's worklist",
                        role=staff.role.value, allowed=[Role.SUPERVISOR.value])
    await _wait(pool, settings, after)
    return await _worklist(pool, settings, clock, center_id,
                           "(assigned_team = $2 OR escalated_to = $2)", team_id, days, limit)


@worklists.get("/centers/{center_id}", summary="The whole center's follow-ups, every clerk and "
               "team (the supervisor's board): overdue and escalated, due today, upcoming, and "
               "how many rules are parked")
async def center_worklist(center_id: str, pool: PoolDep, settings: SettingsDep,
                          clock: ClockDep, supervisor: Supervisor, days: Horizon = 14,
                          limit: Limit = 200, after: After = None) -> dict[str, Any]:
    check_center(supervisor, center_id)
    await _wait(pool, settings, after)
    board = await _worklist(pool, settings, clock, center_id, "center_id = $2", center_id,
                            days, limit)
    # Rules waiting for a day the calendar does not cover (GET /parked-rules): on the board.
    board["parked_rules"] = await parked.count(pool, center_id)
    return board


PolicyReader = Annotated[Principal, Depends(require_roles(Role.CLERK, Role.SUPERVISOR,
                                                        Role.CITY))]


@policies.get("/{id}", summary="A policy change and its fan-out's progress")
async def get_policy(id: UUID, pool: PoolDep, settings: SettingsDep, staff: PolicyReader,
                     after: After = None) -> dict[str, Any]:
    await _wait(pool, settings, after)
    row = await pool.fetchrow("SELECT * FROM policy_changes WHERE policy_id = $1", id)
    if row is None:
        raise problem(404, "not_found", f"policy change {id} not found", id=str(id))
    if not row.get("all_centers", False):
        check_center(staff, row.get("center_id"))
    out = dict(row)
    out["state"] = "fanned_out" if row["finished_at"] else "fanning_out"
    return out


@obligations.get("/{id}", summary="A watched obligation: current period, missed periods")
async def get_obligation(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                         after: After = None) -> dict[str, Any]:
    await _wait(pool, settings, after)
    row = await pool.fetchrow("SELECT * FROM obligations WHERE obligation_id = $1", id)
    if row is None:
        raise problem(404, "not_found", f"obligation {id} is not watched", id=str(id))
    check_center(staff, row.get("center_id"))
    return dict(row)


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
