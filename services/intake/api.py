"""Intake's HTTP API: one route per step of the method, reads with read-your-writes.

Each write route hands its command to one use case (``application.py``, through the command
path); the case's center is checked against the token where the case is loaded
(``shared.eventstore.group_commit.Unit``: the read model may not have the case yet). Reads
come from ``queries.py``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, status

from services.intake import commands as c
from services.intake import plan_views, queries
from services.intake.application import Intake
from services.intake.notice import NoticePublic, notice_of
from services.intake.plan_api import named
from services.intake.projections import CONSUMER
from services.intake.queries import CaseFilter, CaseList, CasePublic
from shared.catalogue import Catalogue, ServiceItem
from shared.contracts.vocabulary import Channel, Urgency
from shared.http.auth import Staff, center_filter, check_center, not_found_elsewhere
from shared.http.dependencies import After, PoolDep, SettingsDep, Write, WrittenPublic
from shared.http.errors import ERRORS, problem
from shared.http.fast_route import FastRoute
from shared.readmodels.positions import wait_for_write
from shared.security.principals import Role
from shared.settings import Settings


async def _intake(request: Request) -> Intake:
    return request.app.state.intake


async def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


IntakeDep = Annotated[Intake, Depends(_intake)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]

# FastRoute: ordinary writes skip FastAPI's dependency solver; anything unusual takes its path.
cases = APIRouter(prefix="/cases", tags=["cases"], responses=ERRORS, route_class=FastRoute)
catalogue = APIRouter(prefix="/catalogue", tags=["catalogue"])
visits = APIRouter(prefix="/visits", tags=["visits"], responses=ERRORS, route_class=FastRoute)


def _use_cases(request: Request) -> Intake:
    """The write routes' use cases (read here, not as a dependency: ``FastRoute``)."""
    return request.app.state.intake


@cases.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
            summary="Open a case (a resident arrives, calls, or is visited)")
async def open_case(body: c.OpenCase, request: Request, write: Write,
                    staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    return WrittenPublic.of(await _use_cases(request).open_case(body, write.actor, write.key,
                                                             staff))


@cases.post("/{case_id}/hear", response_model=WrittenPublic,
            summary="Step 1: the request in the resident's own words")
async def hear_request(case_id: UUID, body: c.HearRequest, request: Request, write: Write,
                       staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).hear_request(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/restate", response_model=WrittenPublic,
            summary="Step 1: restate the request; confirmed or corrected")
async def restate_request(case_id: UUID, body: c.RestateRequest, request: Request,
                          write: Write, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).restate_request(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/concerns", response_model=WrittenPublic,
            summary="Step 2: needs, worries, emotion on arrival, urgency")
async def note_concerns(case_id: UUID, body: c.NoteConcerns, request: Request, write: Write,
                        staff: Staff) -> WrittenPublic:
    """Urgency rises by anyone; lowered only by a supervisor (403
    ``urgency_needs_supervisor``)."""
    return WrittenPublic.of(await _use_cases(request).note_concerns(
        case_id, body, write.actor, write.key, write.expected_version,
        supervisor=staff.role is Role.SUPERVISOR))


@cases.post("/{case_id}/guidance", response_model=WrittenPublic,
            summary="Step 3: policy basis, eligibility, what was promised")
async def give_guidance(case_id: UUID, body: c.GiveGuidance, request: Request, write: Write,
                        staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).give_guidance(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/actions", response_model=WrittenPublic,
            summary="Step 4: an action taken or a referral")
async def take_action(case_id: UUID, body: c.TakeAction, request: Request, write: Write,
                      staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).take_action(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/handover", response_model=WrittenPublic,
            summary="Hand the case to another clerk or team (首问负责制: the first clerk stays "
                    "accountable)")
async def hand_over(case_id: UUID, body: c.HandOverCase, request: Request, write: Write,
                    staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).hand_over(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/deadlines", response_model=WrittenPublic,
            summary="Step 4: a deadline that must not be missed")
async def note_deadline(case_id: UUID, body: c.NoteDeadline, request: Request, write: Write,
                        staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).note_deadline(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/due-date", response_model=WrittenPublic,
            summary="Move the case's due date, with the reason (the case's clerk or a "
                    "supervisor)")
async def move_due_date(case_id: UUID, body: c.MoveDueDate, request: Request, write: Write,
                        staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).move_due_date(
        case_id, body, staff, write.key, write.expected_version))


@cases.post("/{case_id}/obligations", response_model=WrittenPublic,
            summary="Step 4: a recurring obligation to watch")
async def declare_obligation(case_id: UUID, body: c.DeclareObligation, request: Request,
                             write: Write, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).declare_obligation(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/resolve", response_model=WrittenPublic,
            summary="Step 4: resolve with outcome and emotion at the end")
async def resolve_case(case_id: UUID, body: c.ResolveCase, request: Request, write: Write,
                       staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).resolve_case(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/reopen", response_model=WrittenPublic,
            summary="Reopen a resolved case")
async def reopen_case(case_id: UUID, body: c.ReopenCase, request: Request, write: Write,
                      staff: Staff) -> WrittenPublic:
    """Past its due date, the case keeps it unless a supervisor who is not its clerk
    reopens it (延期审批: a renewed due date would be an extension without approval)."""
    return WrittenPublic.of(await _use_cases(request).reopen_case(
        case_id, body, write.actor, write.key, write.expected_version,
        supervisor=staff.role is Role.SUPERVISOR))


@visits.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
             summary="A resident sat down at the window: one trip (一人次)")
async def record_visit(body: c.RecordVisit, request: Request, write: Write,
                       staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    return WrittenPublic.of(await _use_cases(request).record_visit(body, write.actor,
                                                                write.key))

def _today(request: Request, settings: Settings) -> date:
    """The center's today, on the service's clock."""
    return request.app.state.runtime.clock.now().astimezone(settings.tz).date()


@cases.post("/{case_id}/guidance-sessions", response_model=WrittenPublic,
            summary="Employment aid: a guidance session (职业指导), one guidance visit")
async def hold_guidance_session(case_id: UUID, body: c.HoldGuidanceSession, request: Request,
                                write: Write, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).hold_guidance_session(
        case_id, body, write.actor, write.key, write.expected_version))


@cases.post("/{case_id}/placement", response_model=WrittenPublic,
            summary="Employment aid: the beneficiary is in work (employer type, never name)")
async def record_placement(case_id: UUID, body: c.RecordPlacement, request: Request,
                           write: Write, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await _use_cases(request).record_placement(
        case_id, body, write.actor, write.key, write.expected_version))


async def _wait(pool: asyncpg.Pool, settings: Settings, after: int | None) -> None:
    await wait_for_write(pool, settings, CONSUMER, "intake", after)


@cases.get("/{case_id}", response_model=CasePublic,
           summary="A case with its full timeline, who acted for whom, and its plans")
async def get_case(case_id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                   cat: CatalogueDep, after: After = None) -> CasePublic:
    await _wait(pool, settings, after)
    await wait_for_write(pool, settings, plan_views.CONSUMER, "intake", after,
                         plan_views.PLAN_EVENTS)
    case = await queries.case(pool, case_id, staff.center_id)
    if case is None:
        raise problem(404, "not_found", f"case {case_id} not found", id=str(case_id))
    not_found_elsewhere(staff, case.center_id, "case", case_id)  # another center's: none
    named(case.plans, cat)
    return case


@cases.get("/{case_id}/notice", response_model=NoticePublic,
           summary="The one-time notice (一次性告知) the resident takes home")
async def case_notice(case_id: UUID, request: Request, pool: PoolDep, settings: SettingsDep,
                      staff: Staff, cat: CatalogueDep, after: After = None) -> NoticePublic:
    """What was agreed, the documents to bring, the due date, who served (the caller, by the
    staff directory's name) and the center's phone; nothing of the resident's. Its plans
    are read-your-writes too (``?after=`` waits for both read models, as the case's read)."""
    await _wait(pool, settings, after)
    await wait_for_write(pool, settings, plan_views.CONSUMER, "intake", after,
                         plan_views.PLAN_EVENTS)
    case = await queries.case(pool, case_id, staff.center_id)
    if case is None:
        raise problem(404, "not_found", f"case {case_id} not found", id=str(case_id))
    not_found_elsewhere(staff, case.center_id, "case", case_id)
    return notice_of(case, cat, settings, staff.sub, request.app.state.runtime.clock.now())


@cases.get("", response_model=CaseList,
           summary="Cases by center, status, service item and date, newest first")
async def list_cases(
    request: Request, pool: PoolDep, settings: SettingsDep, staff: Staff,
    center_id: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|resolved)$")] = None,
    service_item: Annotated[str | None, Query(max_length=64)] = None,
    channel: Channel | None = None,
    resident_id: UUID | None = None,
    clerk_id: Annotated[str | None, Query(max_length=64, description=(
        "The clerk who opened the case (the counter page: the clerk's own open cases)"))] = None,
    opened_from: date | None = None,
    opened_to: date | None = None,
    due_before: Annotated[date | None, Query(description=(
        "Cases whose due date (办结时限) is before this day"))] = None,
    overdue: Annotated[bool, Query(description=(
        "Only open cases past their due date (before the center's today)"))] = False,
    urgency: Annotated[list[Urgency] | None, Query(description=(
        "The urgency noted at step 2; repeat for several"))] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    after: After = None,
) -> CaseList:
    await _wait(pool, settings, after)
    given = CaseFilter(center_id=center_filter(staff, center_id), status=status_,
                       service_item=service_item, channel=channel.value if channel else None,
                       resident_id=resident_id, clerk_id=clerk_id, opened_from=opened_from,
                       opened_to=opened_to, due_before=due_before,
                       overdue_on=_today(request, settings) if overdue else None,
                       urgency=tuple(u.value for u in urgency or ()), cursor=cursor)
    return await queries.cases(pool, settings.center_timezone, given, limit)


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
