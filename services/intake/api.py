"""Intake's HTTP API: one route per step of the method, reads with read-your-writes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, status

from services.intake import commands as c
from services.intake import projections
from services.intake.application import Intake
from services.intake.projections import CONSUMER
from shared.catalogue import Catalogue, ServiceItem
from shared.contracts.vocabulary import Channel
from shared.http.auth import Staff, center_filter, check_center
from shared.http.dependencies import After, PoolDep, SettingsDep, Write, WrittenPublic
from shared.http.errors import ErrorResponse, problem
from shared.http.fast_route import FastRoute
from shared.readmodels.positions import wait_for_write
from shared.settings import Settings

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse}, 401: {"model": ErrorResponse},
    403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    409: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


async def _intake(request: Request) -> Intake:
    return request.app.state.intake




async def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


IntakeDep = Annotated[Intake, Depends(_intake)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]

# FastRoute: ordinary writes skip FastAPI's dependency solver; anything unusual takes its path.
cases = APIRouter(prefix="/cases", tags=["cases"], responses=ERRORS, route_class=FastRoute)
catalogue = APIRouter(prefix="/catalogue", tags=["catalogue"])


@cases.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
            summary="Open a case (a resident arrives, calls, or is visited)")
async def open_case(body: c.OpenCase, request: Request, write: Write,
                    staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    intake: Intake = request.app.state.intake
    return WrittenPublic.of(await intake.open_case(body, write.actor, write.key, staff))


def _step(name: str, summary: str, command: type[c._Command], method: str) -> None:
    async def route(case_id: UUID, body: Any, request: Request, write: Write,
                    staff: Staff) -> WrittenPublic:
        # The case's center is checked against the token where the case is loaded
        # (shared.eventstore.group_commit.Unit): the read model may not have the case yet.
        use_case = getattr(request.app.state.intake, method)
        return WrittenPublic.of(await use_case(case_id, body, write.actor, write.key,
                                               write.expected_version))

    route.__annotations__["body"] = command
    route.__name__ = method
    cases.post(f"/{{case_id}}/{name}", response_model=WrittenPublic, summary=summary)(route)


_step("hear", "Step 1: the request in the resident's own words", c.HearRequest, "hear_request")
_step("restate", "Step 1: restate the request; confirmed or corrected", c.RestateRequest,
      "restate_request")
_step("concerns", "Step 2: needs, worries, emotion on arrival, urgency", c.NoteConcerns,
      "note_concerns")
_step("guidance", "Step 3: policy basis, eligibility, what was promised", c.GiveGuidance,
      "give_guidance")
_step("actions", "Step 4: an action taken or a referral", c.TakeAction, "take_action")
_step("deadlines", "Step 4: a deadline that must not be missed", c.NoteDeadline,
      "note_deadline")
_step("obligations", "Step 4: a recurring obligation to watch", c.DeclareObligation,
      "declare_obligation")
_step("resolve", "Step 4: resolve with outcome and emotion at the end", c.ResolveCase,
      "resolve_case")
_step("reopen", "Reopen a resolved case", c.ReopenCase, "reopen_case")


async def _wait(pool: asyncpg.Pool, settings: Settings, after: int | None) -> None:
    await wait_for_write(pool, settings, CONSUMER, "intake", after)


CASE_COLUMNS = ", ".join(projections.CASE_COLUMNS)
RESIDENT_STATUS = ("(SELECT CASE WHEN r.erased_at IS NULL THEN 'on_file' ELSE 'erased' END"
                   " FROM residents r WHERE r.resident_id = cases.resident_id)"
                   " AS resident_status")
"""The vault's word on the case's resident: on_file, erased (PIPL erasure), or null."""


@cases.get("/{case_id}", summary="A case with its full timeline")
async def get_case(case_id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                   after: After = None) -> dict[str, Any]:
    await _wait(pool, settings, after)
    row = await pool.fetchrow(f"SELECT {CASE_COLUMNS}, {RESIDENT_STATUS} FROM cases"
                              " WHERE case_id = $1", case_id)
    if row is None:
        raise problem(404, "not_found", f"case {case_id} not found", id=str(case_id))
    check_center(staff, row["center_id"])
    timeline = await pool.fetch(
        "SELECT version, position, type, schema_version, occurred_at, recorded_at, actor,"
        " causation_id, correlation_id, payload::text AS payload FROM case_timeline"
        " WHERE case_id = $1 ORDER BY version", case_id)
    import orjson
    return {**dict(row), "timeline": [
        {**dict(t), "payload": orjson.loads(t["payload"])} for t in timeline]}


@cases.get("", summary="Cases by center, status, service item and date, newest first")
async def list_cases(
    pool: PoolDep, settings: SettingsDep, staff: Staff,
    center_id: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|resolved)$")] = None,
    service_item: Annotated[str | None, Query(max_length=64)] = None,
    channel: Channel | None = None,
    resident_id: UUID | None = None,
    clerk_id: Annotated[str | None, Query(max_length=64, description=(
        "The clerk who opened the case (the counter page: the clerk's own open cases)"))] = None,
    opened_from: date | None = None,
    opened_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    after: After = None,
) -> dict[str, Any]:
    await _wait(pool, settings, after)
    center_id = center_filter(staff, center_id)
    where, args = [], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if center_id:
        where.append(f"center_id = {arg(center_id)}")
    if status_:
        where.append(f"status = {arg(status_)}")
    if service_item:
        where.append(f"service_item = {arg(service_item)}")
    if channel:
        where.append(f"channel = {arg(channel.value)}")
    if resident_id:
        where.append(f"resident_id = {arg(resident_id)}")
    if clerk_id:
        where.append(f"clerk_id = {arg(clerk_id)}")
    if opened_from:
        where.append(f"(opened_at AT TIME ZONE {arg(settings.center_timezone)})::date >= "
                     f"{arg(opened_from)}")
    if opened_to:
        where.append(f"(opened_at AT TIME ZONE {arg(settings.center_timezone)})::date <= "
                     f"{arg(opened_to)}")
    if cursor:
        try:
            stamp, _, ident = cursor.partition("|")
            cursor_at, cursor_id = datetime.fromisoformat(stamp), UUID(ident)
        except ValueError:
            raise problem(400, "cursor_invalid", "cursor is not one this API returned") from None
        where.append(f"(opened_at, case_id) < ({arg(cursor_at)}, {arg(cursor_id)})")
    sql = f"SELECT {CASE_COLUMNS}, {RESIDENT_STATUS} FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY opened_at DESC, case_id DESC LIMIT {arg(limit + 1)}"
    rows = [dict(r) for r in await pool.fetch(sql, *args)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = f"{last['opened_at'].isoformat()}|{last['case_id']}"
    return {"items": rows, "next_cursor": next_cursor}


@catalogue.get("", response_model=list[ServiceItem], summary="The service catalogue")
async def list_items(cat: CatalogueDep,
                     q: Annotated[str | None, Query(max_length=100, description=(
                         "Search in Chinese, pinyin (full or initials) or English"))] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 500) -> list[ServiceItem]:
    if q:
        return cat.search(q, limit=limit)
    return list(cat.items())[:limit]


@catalogue.get("/{code}", response_model=ServiceItem, responses=ERRORS)
async def get_item(code: str, cat: CatalogueDep) -> ServiceItem:
    item = cat.get(code)
    if item is None:
        raise problem(404, "not_found", f"service item {code!r} is not in the catalogue")
    return item
