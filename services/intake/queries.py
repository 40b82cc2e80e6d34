"""Intake's reads: a case with its timeline, and the cases of a center, from the read model
(``projections.py``). The routes (``api.py``) check the caller may see what these return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from pydantic import Field

from services.intake import plan_views, projections
from services.intake.plan_views import PlanPublic
from shared.kernel.errors import CommandError
from shared.readmodels.public import Elsewhere, Moment, Public, elsewhere, in_reach

CASE_COLUMNS = ", ".join(projections.CASE_COLUMNS)
RESIDENT_STATUS = ("(SELECT CASE WHEN r.erased_at IS NULL THEN 'on_file' ELSE 'erased' END"
                   " FROM residents r WHERE r.resident_id = cases.resident_id)"
                   " AS resident_status")
"""The vault's word on the case's resident: on_file, erased (PIPL erasure), or null."""
CASE_IN_REACH = in_reach([*projections.CASE_COLUMNS, RESIDENT_STATUS], "$2")
"""A case by id: its columns only in the caller's reach (``public.in_reach``)."""


class CaseSummary(Public):
    """A case as the list shows it: where it stands in the six steps."""

    case_id: UUID
    center_id: str
    counter_id: str
    clerk_id: str
    channel: str
    service_item: str
    resident_id: UUID | None
    resident_basis: str | None
    applicant_id: UUID | None = Field(None, description=(
        "Who applied: another resident acting for the beneficiary (resident_id), or the "
        "beneficiary; null on cases opened before applicants were recorded."))
    status: str
    stage: str
    emotion_on_arrival: str | None
    urgency: str | None
    eligibility: str | None
    outcome: str | None
    emotion_defused: bool | None
    opened_at: Moment
    updated_at: Moment
    resolved_at: Moment | None
    next_deadline: date | None
    reopen_count: int
    version: int
    position: int
    due_on: date | None = Field(None, description=(
        "The day the case must be finished by (办结时限): CaseDueDateSet"))
    due_basis: str | None = Field(None, description="official, or provisional")
    due_source: str | None = Field(None, description="item_days, promised, deadline, moved")
    owner_clerk: str | None = None
    owner_team: str | None = None
    resident_status: str | None = None


class TimelineEntry(Public):
    """One event of the case, as recorded (its payload as the contract has it)."""

    version: int
    position: int
    type: str
    schema_version: int
    occurred_at: Moment
    recorded_at: Moment
    actor: str
    causation_id: str | None
    correlation_id: str | None
    payload: dict[str, Any]


class ActingFor(Public):
    """How the applicant is related to the beneficiary and the proof the clerk saw (the
    vault's ``case_relations``; never on the bus)."""

    applicant_id: UUID
    beneficiary_id: UUID
    relation: str
    proof_seen: str


class CasePublic(CaseSummary):
    """A case with its full timeline, who acted for whom, and the plans it carries a step of
    (``plans[].steps[]``: the resident's timeline, in order)."""

    timeline: list[TimelineEntry]
    acting_for: ActingFor | None = None
    plans: list[PlanPublic] = Field(default_factory=list)


class CaseList(Public):
    """A page of cases, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[CaseSummary]
    next_cursor: str | None


class CursorInvalid(CommandError):
    status = 400
    code = "cursor_invalid"


@dataclass(frozen=True)
class CaseFilter:
    center_id: str | None = None
    status: str | None = None
    service_item: str | None = None
    channel: str | None = None
    resident_id: UUID | None = None
    clerk_id: str | None = None
    opened_from: date | None = None
    opened_to: date | None = None
    due_before: date | None = None
    overdue_on: date | None = None  # open cases due before this day (the center's today)
    urgency: tuple[str, ...] = ()
    cursor: str | None = None


async def case(pool: asyncpg.Pool, case_id: UUID, reach: str | None = None
               ) -> CasePublic | Elsewhere | None:
    """The case with its timeline, relation and plans, or None. ``reach``: the caller's
    center (None: every center's). A case of another center comes back as its center alone
    (``Elsewhere``), for the route to refuse as for none (``not_found_elsewhere``): its
    timeline, relation and plans are not read first, nor its row decoded. They were, and
    the 404 took four queries where an id nobody has takes one: by the answer's time,
    which guessed ids are cases here."""
    row = await pool.fetchrow(f"SELECT {CASE_IN_REACH} FROM cases WHERE case_id = $1",
                              case_id, reach)
    if row is None:
        return None
    if away := elsewhere(row, reach):
        return away  # its columns not even sent: decoding them answered ours later than none
    timeline = await pool.fetch(
        "SELECT version, position, type, schema_version, occurred_at, recorded_at, actor,"
        " causation_id, correlation_id, payload::text AS payload FROM case_timeline"
        " WHERE case_id = $1 ORDER BY version", case_id)
    relation = await pool.fetchrow(
        "SELECT applicant_id, beneficiary_id, relation, proof_seen FROM case_relations"
        " WHERE case_id = $1", case_id)
    return CasePublic.of(row, timeline=[
        TimelineEntry.of(t, payload=orjson.loads(t["payload"])) for t in timeline],
        acting_for=ActingFor.of(relation) if relation else None,
        plans=await plan_views.plans_of_case(pool, case_id))


async def cases(pool: asyncpg.Pool, time_zone: str, given: CaseFilter, limit: int) -> CaseList:
    """The cases ``given`` asks for, newest first (``limit`` a page)."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if given.center_id:
        where.append(f"center_id = {arg(given.center_id)}")
    if given.status:
        where.append(f"status = {arg(given.status)}")
    if given.service_item:
        where.append(f"service_item = {arg(given.service_item)}")
    if given.channel:
        where.append(f"channel = {arg(given.channel)}")
    if given.resident_id:
        where.append(f"resident_id = {arg(given.resident_id)}")
    if given.clerk_id:  # 首问负责制: the first clerk's, and the current owner's
        clerk = arg(given.clerk_id)
        where.append(f"(clerk_id = {clerk} OR owner_clerk = {clerk})")
    if given.opened_from:
        where.append(f"(opened_at AT TIME ZONE {arg(time_zone)})::date >= "
                     f"{arg(given.opened_from)}")
    if given.opened_to:
        where.append(f"(opened_at AT TIME ZONE {arg(time_zone)})::date <= "
                     f"{arg(given.opened_to)}")
    if given.due_before:
        where.append(f"due_on < {arg(given.due_before)}")
    if given.overdue_on:
        where.append(f"status = 'open' AND due_on < {arg(given.overdue_on)}")
    if given.urgency:
        where.append(f"urgency = ANY({arg(list(given.urgency))}::text[])")
    if given.cursor:
        try:
            stamp, _, ident = given.cursor.partition("|")
            cursor_at, cursor_id = datetime.fromisoformat(stamp), UUID(ident)
        except ValueError:
            raise CursorInvalid("cursor is not one this API returned") from None
        where.append(f"(opened_at, case_id) < ({arg(cursor_at)}, {arg(cursor_id)})")
    sql = f"SELECT {CASE_COLUMNS}, {RESIDENT_STATUS} FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY opened_at DESC, case_id DESC LIMIT {arg(limit + 1)}"
    rows = await pool.fetch(sql, *args)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = f"{last['opened_at'].isoformat()}|{last['case_id']}"
    return CaseList(items=[CaseSummary.of(r) for r in rows], next_cursor=next_cursor)
