"""Intake's plan routes: draw up a plan for one beneficiary, add a step, link a case opened
later, and read a plan (or a beneficiary's plans) with its steps in order. Each write hands
its command to one use case (``planning.py``); reads come from ``plan_views.py``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status

from services.intake import commands as c
from services.intake import plan_views
from services.intake.plan_views import PlanPublic
from services.intake.planning import Plans
from shared.catalogue import Catalogue
from shared.http.auth import Staff, center_filter, check_center, not_found_elsewhere
from shared.http.dependencies import After, PoolDep, SettingsDep, Write, WrittenPublic
from shared.http.errors import ERRORS, problem
from shared.readmodels.positions import wait_for_write

plans = APIRouter(prefix="/plans", tags=["plans"], responses=ERRORS)


async def _plans(request: Request) -> Plans:
    return request.app.state.plans


PlansDep = Annotated[Plans, Depends(_plans)]


def named(found: list[PlanPublic], catalogue: Catalogue) -> list[PlanPublic]:
    """Each step with its item's Chinese and English names (what the resident reads)."""
    for p in found:
        for step in p.steps:
            item = catalogue.get(step.service_item)
            if item is not None:
                step.name_zh, step.name_en = item.name_zh, item.name_en
    return found


@plans.post("", status_code=status.HTTP_201_CREATED, response_model=WrittenPublic,
            summary="Draw up a plan: one beneficiary's dated, ordered steps across items")
async def draw_up_plan(body: c.DrawUpPlan, use_cases: PlansDep, write: Write,
                       staff: Staff) -> WrittenPublic:
    check_center(staff, body.center_id)
    return WrittenPublic.of(await use_cases.draw_up(body, write.actor, write.key, staff))


@plans.post("/{plan_id}/steps", response_model=WrittenPublic,
            summary="Add the next step to a plan")
async def add_plan_step(plan_id: UUID, body: c.AddPlanStep, use_cases: PlansDep,
                        write: Write, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await use_cases.add_step(plan_id, body, write.actor, write.key,
                                                     write.expected_version))


@plans.post("/{plan_id}/links", response_model=WrittenPublic,
            summary="A case opened later carries its planned step")
async def link_case(plan_id: UUID, body: c.LinkCase, use_cases: PlansDep, write: Write,
                    staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await use_cases.link_case(plan_id, body, write.actor, write.key,
                                                      write.expected_version))


@plans.get("/{plan_id}", response_model=PlanPublic, summary="A plan with its steps in order")
async def get_plan(plan_id: UUID, request: Request, pool: PoolDep, settings: SettingsDep,
                   staff: Staff, after: After = None) -> PlanPublic:
    await wait_for_write(pool, settings, plan_views.CONSUMER, "intake", after,
                         plan_views.PLAN_EVENTS)
    found = await plan_views.plan(pool, plan_id, staff.center_id)
    if found is None:
        raise problem(404, "not_found", f"plan {plan_id} not found", id=str(plan_id))
    not_found_elsewhere(staff, found.center_id, "plan", plan_id)
    return named([found], request.app.state.catalogue)[0]


@plans.get("", response_model=list[PlanPublic], summary="A beneficiary's plans at a center")
async def list_plans(resident_id: UUID, request: Request, pool: PoolDep,
                     settings: SettingsDep, staff: Staff, center_id: str | None = None,
                     after: After = None) -> list[PlanPublic]:
    await wait_for_write(pool, settings, plan_views.CONSUMER, "intake", after,
                         plan_views.PLAN_EVENTS)
    found = await plan_views.plans_of_resident(pool, center_filter(staff, center_id),
                                               resident_id)
    return named(found, request.app.state.catalogue)
