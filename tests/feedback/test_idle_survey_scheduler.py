"""An idle survey scheduler waits for the next survey it knows falls due, not a quarter of a
second: an idle system ran its three reads every 0.25 s, some 720 statements a minute about
surveys nobody had requested. A survey requested meanwhile wakes it (the read model's
NOTIFY, whichever replica applies it): nothing due waits longer than before.

On a real PostgreSQL (the feedback read model's own tables); the days are the calendar's
edges: Sunday 20 December 2026, New Year's Eve 23:30 in Shanghai (the quiet hours reach into
a provisional year), 29 February 2028."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.feedback.application import SurveyPolicy
from services.feedback.main import DDL
from services.feedback.projections import FeedbackViews
from services.feedback.scheduler import SurveyScheduler
from shared.contracts import Envelope
from shared.kernel.clock import SystemClock
from shared.kernel.errors import NotFound
from shared.leadership import LeadershipLost
from shared.settings import Settings
from tests.support import bare_envelope, schema_pool, wait_until

TICK_S, IDLE_S = 0.01, 3600.0


class StoppedSystemClock(SystemClock):
    """The system clock as the scheduler sees it in production (it runs by itself: a wait
    for a moment is a wait in seconds), read at a moment of the test's choosing."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return self.at


class Feedback:
    """What the scheduler asks of the feedback use cases here: the clock and the policy, and
    a survey's send (kept: the read model does not move on by itself here)."""

    def __init__(self, clock: StoppedSystemClock) -> None:
        self.clock = clock
        self.policy = SurveyPolicy()
        self.sent: list[UUID] = []

    async def send_survey(self, survey_id: UUID) -> None:
        self.sent.append(survey_id)
        raise NotFound("kept here")  # the scheduler leaves it: the read model moves on


async def request(pool: asyncpg.Pool, *, channel: str, status: str, send_at: datetime,
                  sent_at: datetime | None = None) -> UUID:
    survey_id = uuid4()
    await pool.execute(
        "INSERT INTO surveys (survey_id, case_id, center_id, counter_id, clerk_id,"
        " service_item, purpose, channel, status, requested_at, send_at, expires_at,"
        " sent_at, version, position) VALUES ($1, $2, 'SH-PD-HUAMU', 'window-3',"
        " 'clerk-017', 'SA-HARDSHIP-SUBSIDY', 'resolution', $3, $4, $5, $5, $6, $7, 1, 1)",
        survey_id, uuid4(), channel, status, send_at, send_at + timedelta(days=7), sent_at)
    return survey_id


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


@pytest.mark.parametrize("now, text_due, waits_until", [
    # a Sunday evening: the text due at 20:55 goes then, before the quiet hours
    ("2026-12-20T20:50:00+08:00", "2026-12-20T20:55:00+08:00", "2026-12-20T20:55:00+08:00"),
    # New Year's Eve: a text due at 23:40 waits for 08:00 on 1 January (a provisional year)
    ("2026-12-31T23:30:00+08:00", "2026-12-31T23:40:00+08:00", "2027-01-01T08:00:00+08:00"),
    # a text already due in the night waits for the morning, not a tick
    ("2028-02-29T06:00:00+08:00", "2028-02-28T22:00:00+08:00", "2028-02-29T08:00:00+08:00"),
])
async def test_an_idle_scheduler_waits_for_the_next_survey_due_not_a_tick(
        settings: Settings, now: str, text_due: str, waits_until: str) -> None:
    async with schema_pool(settings, "idle_scheduler_due", DDL) as pool:
        await pool.execute("TRUNCATE surveys")
        clock = StoppedSystemClock(at(now))
        scheduler = SurveyScheduler(pool, Feedback(clock), None, "/s",  # type: ignore[arg-type]
                                    schema="idle-due", tick_s=TICK_S, idle_s=10 * 86400)
        assert await scheduler.idle_wait() == 10 * 86400  # nothing requested at all
        await request(pool, channel="sms", status="requested", send_at=at(text_due))
        assert await scheduler.idle_wait() == (at(waits_until) - at(now)).total_seconds()
        # a tablet survey requested a moment later is due sooner: the tablet asks at once
        soon = at(now) + timedelta(seconds=30)
        await request(pool, channel="tablet", status="requested", send_at=soon)
        assert await scheduler.idle_wait() == min(
            30.0, (at(waits_until) - at(now)).total_seconds())


async def test_while_a_tablet_survey_waits_on_its_window_the_scheduler_ticks_as_before(
        settings: Settings) -> None:
    """Whether the window still offers it depends on who comes to the window (trips, another
    read model, no NOTIFY here): the tick as before, until it is answered or redirected."""
    async with schema_pool(settings, "idle_scheduler_tablet", DDL) as pool:
        await pool.execute("TRUNCATE surveys")
        now = at("2026-12-20T10:00:00+08:00")
        scheduler = SurveyScheduler(pool, Feedback(StoppedSystemClock(now)), None, "/s",  # type: ignore[arg-type]
                                    schema="idle-tablet", tick_s=TICK_S, idle_s=IDLE_S)
        await request(pool, channel="tablet", status="sent", send_at=now - timedelta(minutes=2),
                      sent_at=now - timedelta(minutes=2))
        assert await scheduler.idle_wait() == TICK_S


@contextlib.asynccontextmanager
async def idling(settings: Settings, name: str, moment: str, *, tick_s: float = TICK_S,
                 ) -> AsyncIterator[tuple[asyncpg.Pool, CountingScheduler, Feedback,
                                          asyncio.Task[None]]]:
    """A scheduler leading on a read model of its own, its clock at ``moment``, idle: one
    tick read the clock and found nothing, the idle wait read it too (the barrier);
    stopped at the end."""
    async with schema_pool(settings, f"idle_scheduler_{name}", DDL) as pool:
        await pool.execute("TRUNCATE surveys")
        clock = StoppedSystemClock(at(moment))
        feedback = Feedback(clock)
        scheduler = CountingScheduler(pool, feedback, None, "/s",  # type: ignore[arg-type]
                                      schema=f"idle-{name}", tick_s=tick_s, idle_s=IDLE_S)
        running = asyncio.create_task(scheduler.run())
        try:
            async def idle() -> bool:
                assert not running.done(), running
                return clock.reads >= 2
            await wait_until(idle, what="the scheduler idle")
            yield pool, scheduler, feedback, running
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
                await running


class CountingScheduler(SurveyScheduler):
    """The scheduler, noting when each of its ticks began (the loop's clock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.began: list[float] = []

    async def tick(self) -> tuple[int, int]:
        self.began.append(asyncio.get_running_loop().time())
        return await super().tick()


async def apply_requested(pool: asyncpg.Pool, survey_id: UUID, moment: datetime) -> None:
    """One batch of the read model requesting a tablet survey, as the consumer applies it."""
    async with pool.acquire() as conn, conn.transaction():
        await FeedbackViews().apply(conn, [requested(survey_id, moment)])


async def test_a_survey_requested_while_the_scheduler_idles_wakes_it_at_once(
        settings: Settings) -> None:
    """Idle for up to an hour here: only the read model's NOTIFY, sent as the batch that
    requested the survey commits, brings the survey to the scheduler before then."""
    async with idling(settings, "wake", "2026-12-20T10:00:00+08:00") as (
            pool, _, feedback, _):
        survey_id = uuid4()
        await apply_requested(pool, survey_id, feedback.clock.at)

        async def sent() -> bool:
            return survey_id in feedback.sent
        await wait_until(sent, what="the survey sent")


def requested(survey_id: UUID, moment: datetime) -> Envelope:
    """A tablet survey requested at ``moment``, due at once, as the consumer applies it."""
    envelope = bare_envelope("SurveyRequested", moment, service="feedback", case_id=uuid4(),
                             actor="system:feedback", payload={
        "survey_id": str(survey_id), "purpose": "resolution", "channel": "tablet",
        "resident_id": None, "rectification_id": None, "counter_id": "window-3",
        "clerk_id": "clerk-017", "service_item": "SA-HARDSHIP-SUBSIDY",
        "send_at": moment.isoformat(), "expires_at": (moment + timedelta(days=7)).isoformat()})
    return envelope.model_copy(update={"aggregate_id": survey_id})  # the survey's own id


async def test_a_scheduler_idle_when_postgresql_ends_its_session_stands_by_at_once(
        settings: Settings) -> None:
    """A PostgreSQL restart (here ``pg_terminate_backend``) ends the lock's session, and with
    it the LISTEN: no NOTIFY reaches this replica any more. Idle for up to an hour here, the
    scheduler must not sleep on blind until then (a tablet survey requested meanwhile would
    wait for it while the resident sits at the window): it hears the session end, leaves,
    and its supervisor stands it by for the lock again (``LeadershipLost``)."""
    async with idling(settings, "cut", "2026-12-31T23:30:00+08:00") as (
            pool, scheduler, _, running):
        pid = scheduler.leadership.connection.get_server_pid()
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)

        async def left() -> bool:
            return running.done()
        await wait_until(left, what="the scheduler leaving its lost lock")
        with pytest.raises(LeadershipLost):
            running.result()


async def test_a_busy_hour_of_surveys_wakes_the_scheduler_no_more_often_than_its_tick(
        settings: Settings) -> None:
    """At the afternoon's peak the read model applies batch after batch with surveys in
    them, each with its NOTIFY: the tick stays ``tick_s`` apart (it sends in small batches
    beside the surveys being requested, and its reads are not repeated per batch); only an
    idle scheduler is woken at once. (31 ticks in 0.22 s here before redteam111.)"""
    tick_s = 1.0
    async with idling(settings, "burst", "2028-02-29T15:00:00+08:00", tick_s=tick_s) as (
            pool, scheduler, feedback, _):
        before = len(scheduler.began)
        surveys = [uuid4() for _ in range(40)]
        for survey_id in surveys:  # one batch each, as a consumer keeping up applies them
            await apply_requested(pool, survey_id, feedback.clock.at)

        async def all_sent() -> bool:  # the barrier: the last batch's survey handled
            return surveys[-1] in feedback.sent
        await wait_until(all_sent, what="the last survey sent")
        # Each tick of the burst began at least tick_s after the one before it (the idle one
        # it woke from included): a property of the ticks' own moments, whatever the load.
        began = scheduler.began[before - 1:]
        gaps = [later - earlier for earlier, later in itertools.pairwise(began)]
        assert gaps and min(gaps) >= tick_s - 1e-3, gaps
