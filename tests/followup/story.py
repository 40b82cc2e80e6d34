"""Helpers for follow-up stories: the services in-process, a hand-set clock, the stream.

The clock is one ``ManualClock`` for every service of the story (follow-up takes it as a
``Clock``, feedback as a callable). ``DECEMBER_20`` is the calendar's edge: the official
holiday schedules end eleven days later and January is planned provisionally.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from fastapi import FastAPI

from services.feedback.main import create_app as create_feedback
from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.http.case_texts import IntakeCaseTexts
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import KeptSender
from tests.support import bearer, headers, register_resident, running, wait_until

CENTER = "SH-PD-HUAMU"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


DECEMBER_20 = datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI)
"""A Sunday at the end of the last year the chinese-calendar package knows (1.11.0: 2026)."""


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def quiet(settings: Settings, **extra: Any) -> Settings:
    """Settings whose background scheduler and fan-out only run at start: tests tick by hand.

    A moment may be up to a day after the hand-set clock (``OCCURRED_AT_MAX_FUTURE_S``); a
    center day's posts move the clock to it first (:func:`clock_follows_posts`)."""
    return settings.model_copy(update={"followup_scheduler_interval_s": 3600.0,
                                       "occurred_at_max_future_s": 86_400.0, **extra})


def clock_follows_posts(client: httpx.AsyncClient, clock: ManualClock) -> None:
    """Before ``client`` sends a post saying it happened at ``occurred_at`` after the clock,
    set the clock to that moment: the event happened then, so it is at least that time (a
    story opens its case at 09:10 on a clock set to 09:00 and ticks follow-up later). The
    service then records the moment as said, as it would a counter's in step with it; a
    moment ahead of the service's clock is the counter's clock running fast (recorded as the
    service's). Never backwards: a post dated before the clock is a backdated one."""

    async def follow(request: httpx.Request) -> None:
        if not request.content or b"occurred_at" not in request.content:
            return
        body = json.loads(request.content)
        said = body.get("occurred_at") if isinstance(body, dict) else None
        if said is not None and (moment := datetime.fromisoformat(said)) > clock.now():
            clock.set(moment)

    client.event_hooks = {**client.event_hooks,
                          "request": [*client.event_hooks["request"], follow]}


@dataclass
class Center:
    """The center's day: intake at the counter, follow-up behind it, one clock."""

    settings: Settings
    clock: ManualClock
    intake: httpx.AsyncClient
    followup: httpx.AsyncClient
    app: FastAPI
    feedback: httpx.AsyncClient | None = None
    feedback_app: FastAPI | None = None
    sender: KeptSender | None = None

    @property
    def scheduler(self) -> Any:
        return self.app.state.scheduler

    @property
    def fanout(self) -> Any:
        return self.app.state.fanout

    async def resident(self) -> uuid.UUID:
        """A new resident in intake's vault (a case names only a resident on file)."""
        return uuid.UUID(await register_resident(self.intake))

    async def open_case(self, when: datetime, resident: uuid.UUID | None = None,
                        item: str = "SA-HARDSHIP-SUBSIDY", clerk: str = "clerk-017") -> str:
        r = await self.intake.post("/cases", headers=headers(key()), json={
            "center_id": CENTER, "counter_id": "window-3", "clerk_id": clerk,
            "service_item": item, "resident_id": str(resident or await self.resident()),
            "occurred_at": when.isoformat()})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        await self.step(case_id, "hear", {"words": "想问问补助", "occurred_at": when.isoformat()})
        return case_id

    async def living_alone(self, id_number: str) -> uuid.UUID:
        """A resident registered with the fact 'lives alone', once follow-up knows they need
        more care (intake's CareNeedChanged reached ``resident_care``)."""
        clerk = bearer(self.settings, role=Role.CLERK, sub="clerk-017")
        resident = await register_resident(self.intake, id_=id_number)
        r = await self.intake.put(f"/residents/{resident}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["lives_alone"], "consent": True})
        assert r.status_code == 200, r.text
        pool: asyncpg.Pool = self.app.state.pool

        async def flagged() -> bool:
            return bool(await pool.fetchval(
                "SELECT more_care FROM resident_care WHERE resident_id = $1",
                uuid.UUID(resident)))

        await wait_until(flagged, what="follow-up told the resident needs more care")
        return uuid.UUID(resident)

    async def step(self, case_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.intake.post(f"/cases/{case_id}/{name}", json=body, headers=headers(key()))
        assert r.status_code == 200, (name, r.text)
        return r.json()

    async def followups_of(self, case_id: str, n: int, what: str = "follow-ups"
                           ) -> list[dict[str, Any]]:
        """Wait until the case has ``n`` follow-ups in the read model; return them."""
        found: list[dict[str, Any]] = []

        async def check() -> bool:
            nonlocal found
            r = await self.followup.get("/followups", params={"case_id": case_id})
            found = r.json()["items"]
            return len(found) >= n

        await wait_until(check, what=what)
        return found

    async def settled(self) -> None:
        """Wait until the worklist has applied every follow-up event written so far."""
        pool: asyncpg.Pool = self.app.state.pool
        runtime = self.app.state.runtime

        async def check() -> bool:
            last = await pool.fetchval(
                f'SELECT max(notification_id) FROM "{runtime.relay.schema}".'
                f'"{runtime.relay.table}"') or 0
            applied = await pool.fetchval(
                "SELECT position FROM consumer_progress WHERE consumer = 'followup-worklist'"
                " AND service = 'followup'") or 0
            return applied >= last

        await wait_until(check, what="the worklist to catch up")

    async def get(self, follow_up_id: str) -> dict[str, Any]:
        r = await self.followup.get(f"/followups/{follow_up_id}")
        assert r.status_code == 200, r.text
        return r.json()


@contextlib.asynccontextmanager
async def center_day(settings: Settings, start: datetime, *, with_intake: bool = True,
                     with_feedback: bool = False, intake_extra: dict[str, Any] | None = None,
                     **extra: Any) -> AsyncIterator[Center]:
    """``intake_extra``: settings intake alone gets (a calendar out of step with follow-up's)."""
    settings = quiet(settings, **extra)
    clock = ManualClock(start)
    app = create_followup(settings, clock)
    async with contextlib.AsyncExitStack() as stack:
        intake_settings = settings.model_copy(update=intake_extra or {})
        intake = (await stack.enter_async_context(running(
            create_intake(intake_settings, clock=clock))) if with_intake
            else httpx.AsyncClient())
        followup = await stack.enter_async_context(running(app))
        if with_intake:  # follow-up's free text about a case goes to this intake to scrub
            app.state.followups.path.case_texts = IntakeCaseTexts(settings, client=intake)
        for client in (intake, followup):
            clock_follows_posts(client, clock)
        center = Center(settings, clock, intake, followup, app)
        if with_feedback:
            center.sender = KeptSender()
            center.feedback_app = create_feedback(settings, sender=center.sender, clock=clock)
            center.feedback = await stack.enter_async_context(running(center.feedback_app))
            clock_follows_posts(center.feedback, clock)
            if with_intake:
                center.feedback_app.state.feedback.path.case_texts = IntakeCaseTexts(
                    settings, client=intake)
        yield center
