"""One replica runs the period scheduler (and the survey scheduler): the one whose session
holds the advisory lock. A PostgreSQL restart (or a failover, a proxy's idle cut) ends that
session and its lock with it; the replica's loop never looked at its lock's connection again
and went on ticking on the pool, while another replica took the lock and ticked too: two
schedulers revising the same months at once, each naming the late events since the same last
record (a visit named in two revisions). The holder now looks at its lock's session before
each tick: gone, the loop ends, and the supervisor starts it again to wait for the lock like
any other replica. The survey scheduler had the same defect (its tick on the pool, its lock's
connection never looked at): both hold the lock through ``shared/leadership.py``."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from services.feedback.closing import PeriodScheduler
from services.feedback.main import create_app
from services.feedback.scheduler import SurveyScheduler
from shared.leadership import LeadershipLost
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.support import end_lock_session, lock_free, running, wait_until

LOOPS = {"period-scheduler": "sixstep-feedback-periods", "survey-scheduler":
         "sixstep-feedback-scheduler"}


@pytest.mark.parametrize("loop", list(LOOPS))
async def test_a_replica_whose_lock_session_ended_stops_ticking_when_another_takes_the_lock(
        settings: Settings, loop: str) -> None:
    key = f"{LOOPS[loop]}:redteam95-lock"
    clock = Clock(datetime.fromisoformat("2026-12-20T10:00:00+08:00"))  # Sunday 20 December
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app):
        pool, periods = app.state.pool, app.state.periods
        ticks = {"a": 0, "b": 0}

        def replica(name: str) -> PeriodScheduler | SurveyScheduler:
            # a lock of its own (not the app's scheduler's), ticking at once
            s: PeriodScheduler | SurveyScheduler = (
                PeriodScheduler(pool, periods, 5, schema="redteam95-lock", tick_s=0.01)
                if loop == "period-scheduler" else
                SurveyScheduler(pool, app.state.scheduler.feedback, KeptSender(),
                                "https://survey.test", schema="redteam95-lock", tick_s=0.01))

            async def tick() -> tuple[int, int]:
                ticks[name] += 1
                return 0, 0
            s.tick = tick  # type: ignore[method-assign]
            return s

        a = asyncio.create_task(replica("a").run())
        b: asyncio.Task[None] | None = None
        try:
            async def a_ticked() -> bool:
                return ticks["a"] > 0
            await wait_until(a_ticked, what="replica a holding the lock and ticking")
            # PostgreSQL ends a's lock session (a restart, as ops see it from one session)
            assert await end_lock_session(pool, key) == 1

            async def free() -> bool:
                return await lock_free(pool, key)
            await wait_until(free, what="a's session gone, its lock with it")
            b = asyncio.create_task(replica("b").run())

            async def b_ticked() -> bool:
                return ticks["b"] > 0
            await wait_until(b_ticked, what="replica b taking the free lock")

            async def a_stopped() -> bool:
                return a.done()
            await wait_until(a_stopped, what="replica a ending its loop without its lock")
            assert isinstance(a.exception(), LeadershipLost), "its lock's session is gone"
        finally:
            for task in (a, b):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(a, *([b] if b else []), return_exceptions=True)


async def test_ops_see_which_singleton_loops_this_replica_leads(settings: Settings) -> None:
    """One replica of feedback says what it leads: /ready's ``checks.leading`` and the
    ``sixstep_leading`` gauge (1 leading, 0 standing by), the relay, both schedulers and its
    consumers (the retry of a re-planning another replica left, ``calendar-replan``, runs in
    every worker, one try at a time, and leads nothing)."""
    app = create_app(settings, sender=KeptSender())
    async with running(app) as client:
        loops = ["consumer:feedback-views", "period-scheduler", "relay", "survey-scheduler"]

        async def all_led() -> bool:
            answer = await client.get("/ready")
            return set(loops) <= set(answer.json()["checks"].get("leading", []))
        await wait_until(all_led, what="the replica leading the relay and both schedulers")
        page = (await client.get("/metrics")).text
        for loop in loops:
            assert f'sixstep_leading{{loop="{loop}",service="feedback"}} 1.0' in page
