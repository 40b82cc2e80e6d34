"""帮办 and 派单 / 回复 / 督办 over HTTP: help tasks and referrals.

Both start at the counter (intake's ``ActionTaken`` of kind ``escalated`` or ``referred``;
``consumer.py`` opens them); here staff move them along and read them. A help task is moved
by its owner (the named colleague) or a supervisor. A referral's reply is recorded by a clerk
of its center, or by the referred unit itself with a reply link (``referral_tokens.py``)
bound to that one referral: the link's route is the only one without a bearer token, and it
reaches nothing but that referral's reply. Every read and write checks the caller's center.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Request

from services.followup import commands as c
from services.followup import queries
from services.followup.deps import ClockDep, FollowUpsDep, wait_for
from services.followup.domain import ReferralClosedError
from services.followup.queries import (
    HelpTaskList,
    HelpTaskPublic,
    ReferralList,
    ReferralPublic,
    ReplyLinkPublic,
)
from services.followup.referral_tokens import (
    ReferralTokens,
    ReplyLinkInvalid,
    link_expires_at,
)
from shared.http.auth import Staff, center_filter, not_found_elsewhere
from shared.http.dependencies import (
    After,
    ExpectedVersion,
    IdempotencyKey,
    PoolDep,
    SettingsDep,
    WrittenPublic,
)
from shared.http.errors import ERRORS, problem
from shared.http.limits import TokenBuckets
from shared.kernel.errors import RuleViolated
from shared.security.principals import Principal
from shared.settings import Settings

help_tasks = APIRouter(prefix="/help-tasks", tags=["help tasks (帮办)"], responses=ERRORS)
referrals = APIRouter(prefix="/referrals", tags=["referrals (派单)"], responses=ERRORS)

#: The one route a referred unit calls, with its reply link instead of a bearer token.
UNIT_REPLY = r"/referrals/[^/]+/unit-reply"


async def _tokens(request: Request) -> ReferralTokens:
    return request.app.state.referral_tokens


async def _limits(request: Request) -> TokenBuckets:
    return request.app.state.referral_limits


TokensDep = Annotated[ReferralTokens, Depends(_tokens)]
LimitsDep = Annotated[TokenBuckets, Depends(_limits)]


# -- help tasks -----------------------------------------------------------------------------

@help_tasks.post("/{id}/accept", response_model=WrittenPublic,
                 summary="The owner takes the help task on")
async def accept(id: UUID, body: c.MoveHelpTask, app: FollowUpsDep, key: IdempotencyKey,
                 expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.move_help_task(id, "accept", body, staff, key, expected))


@help_tasks.post("/{id}/start", response_model=WrittenPublic,
                 summary="Work on the help task has begun")
async def start(id: UUID, body: c.MoveHelpTask, app: FollowUpsDep, key: IdempotencyKey,
                expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.move_help_task(id, "start", body, staff, key, expected))


@help_tasks.post("/{id}/done", response_model=WrittenPublic,
                 summary="The help was given")
async def done(id: UUID, body: c.FinishHelpTask, app: FollowUpsDep, key: IdempotencyKey,
               expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.move_help_task(id, "finish", body, staff, key, expected))


@help_tasks.post("/{id}/hand-back", response_model=WrittenPublic,
                 summary="The owner cannot help, and says why")
async def hand_back(id: UUID, body: c.HandBackHelpTask, app: FollowUpsDep,
                    key: IdempotencyKey, expected: ExpectedVersion,
                    staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.move_help_task(id, "hand_back", body, staff, key,
                                                     expected))


@help_tasks.get("/{id}", response_model=HelpTaskPublic, summary="One help task")
async def get_help_task(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                        after: After = None) -> HelpTaskPublic:
    await wait_for(pool, settings, after)
    task = await queries.help_task(pool, id, staff.center_id)
    if task is None:
        raise problem(404, "not_found", f"help task {id} not found", id=str(id))
    not_found_elsewhere(staff, task.center_id, "help task", id)
    return task


@help_tasks.get("", response_model=HelpTaskList, summary="The help tasks of a case")
async def list_help_tasks(case_id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                          after: After = None) -> HelpTaskList:
    await wait_for(pool, settings, after)
    return await queries.help_tasks(pool, center_filter(staff, None), case_id, 100)


# -- referrals ------------------------------------------------------------------------------

@referrals.post("/{id}/reply", response_model=WrittenPublic,
                summary="回复: record the unit's reply (a clerk of the referral's center)")
async def reply(id: UUID, body: c.ReplyToReferral, app: FollowUpsDep, key: IdempotencyKey,
                expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await app.reply_to_referral(id, body.reply, False, staff.actor, key,
                                                        body, expected))


@referrals.post("/{id}/reply-link", response_model=ReplyLinkPublic,
                summary="A reply link for the referred unit: it records this referral's reply "
                        "and nothing else")
async def reply_link(id: UUID, pool: PoolDep, settings: SettingsDep, tokens: TokensDep,
                     clock: ClockDep, staff: Staff, after: After = None) -> ReplyLinkPublic:
    referral = await _referral(pool, settings, staff, id, after)  # 404 unknown or elsewhere
    # The status decides whether a link is issued at all: read it as of the referral's last
    # stored event, not as the read model happens to stand (a reply recorded a moment ago,
    # by the unit or another clerk, whose position this caller cannot know).
    last = await _last_position_of(pool, settings, id)
    if last is not None and last > (after or 0):
        await wait_for(pool, settings, last)
        referral = await queries.referral(pool, id) or referral
    if referral.status == "closed":  # the link would take no reply (``Referral.reply``)
        raise ReferralClosedError("the referral was closed when its case was resolved: a reply "
                                  "link is issued again once the case is reopened",
                                  status=referral.status)
    if referral.status == "replied":
        raise RuleViolated("the referral's reply is already recorded", status=referral.status,
                           rule="replied_once")
    expires_at = link_expires_at(clock.now(), referral.reply_due_at,
                                 settings.followup_referral_link_days,
                                 settings.followup_referral_link_grace_days,
                                 settings.followup_referral_link_max_days)
    return ReplyLinkPublic(referral_id=id, token=tokens.issue(id, expires_at),
                           expires_at=expires_at)


@referrals.post("/{id}/unit-reply", response_model=WrittenPublic,
                summary="回复 by the referred unit itself, with the referral's reply link "
                        "(no bearer token)")
async def unit_reply(id: UUID, body: c.ReplyWithLink, app: FollowUpsDep, key: IdempotencyKey,
                     tokens: TokensDep, limits: LimitsDep, clock: ClockDep) -> WrittenPublic:
    """403 ``token_invalid`` (forged, or spelled another way) or ``token_wrong_referral``
    (another referral's link), 410 ``token_expired``; 409 when the reply is already
    recorded, 409 ``referral_closed`` when its case's resolution closed the referral. Rate
    limited per referral (429 with Retry-After)."""
    try:  # keyed on the referral the link verifiably answers, never on the string sent
        limits.check(f"referral:{tokens.read(body.token).referral_id}")
    except ReplyLinkInvalid:
        limits.check(f"invalid-link:{id}")
        raise
    tokens.check(body.token, id, clock.now())
    return WrittenPublic.of(await app.reply_to_referral(id, body.reply, True, f"unit:{id}",
                                                        key))


async def _last_position_of(pool: asyncpg.Pool, settings: Settings, id: UUID) -> int | None:
    """The log position of the referral's last stored event (None: none stored)."""
    return await pool.fetchval(
        f'SELECT max(notification_id) FROM "{settings.schema_for("followup")}".followup_events'
        " WHERE originator_id = $1", id)


@referrals.get("/{id}", response_model=ReferralPublic, summary="One referral")
async def get_referral(id: UUID, pool: PoolDep, settings: SettingsDep, staff: Staff,
                       after: After = None) -> ReferralPublic:
    return await _referral(pool, settings, staff, id, after)


async def _referral(pool: asyncpg.Pool, settings: Settings, staff: Principal, id: UUID,
                    after: int | None) -> ReferralPublic:
    """One referral as the caller's center may read it: 404 when unknown or elsewhere."""
    await wait_for(pool, settings, after)
    found = await queries.referral(pool, id, staff.center_id)
    if found is None:
        raise problem(404, "not_found", f"referral {id} not found", id=str(id))
    not_found_elsewhere(staff, found.center_id, "referral", id)
    return found


@referrals.get("", response_model=ReferralList,
               summary="A case's referrals, or the center's still without a reply")
async def list_referrals(pool: PoolDep, settings: SettingsDep, staff: Staff,
                         case_id: UUID | None = None, waiting: bool = False,
                         center_id: str | None = None, after: After = None) -> ReferralList:
    await wait_for(pool, settings, after)
    center = center_filter(staff, center_id)
    if case_id is None and center is None:
        raise problem(422, "filter_required", "give case_id or center_id")
    return await queries.referrals(pool, center, case_id, waiting, 200)
