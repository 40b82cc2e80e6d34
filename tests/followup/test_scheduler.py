"""The scheduler: exactly once with two replicas, never early, catching up after downtime."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg

from services.followup.application import Plan
from services.followup.main import create_app
from services.followup.projections import DDL, upsert_timers
from shared.contracts.followup import Reason
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.followup.story import CENTER, at, quiet
from tests.support import running, schema_pool, stream_envelopes, wait_until


def plan(due_at, clerk: str = "clerk-017") -> Plan:  # type: ignore[no-untyped-def]
    return Plan(follow_up_id=uuid.uuid4(), center_id=CENTER, case_id=uuid.uuid4(),
                reason=Reason.HOME_VISIT, resident_id=uuid.uuid4(), due_at=due_at,
                assigned_clerk=clerk, assigned_team=None, source="test")


async def timers_ready(app, n: int) -> None:  # type: ignore[no-untyped-def]
    pool = app.state.pool

    async def check() -> bool:
        return await pool.fetchval("SELECT count(*) FROM timers WHERE fire_at IS NOT NULL") >= n

    await wait_until(check, what=f"{n} timers")


async def test_two_replicas_fire_each_due_follow_up_exactly_once(settings: Settings) -> None:
    settings = quiet(settings)
    due = at(2026, 3, 2, 9)
    one, two = ManualClock(at(2026, 3, 2, 8)), ManualClock(at(2026, 3, 2, 8))
    first, second = create_app(settings, one), create_app(settings, two)
    async with running(first), running(second):
        plans = [plan(due) for _ in range(24)]
        await asyncio.gather(*(first.state.followups.schedule(p) for p in plans))
        await timers_ready(first, 24)

        early = await asyncio.gather(first.state.scheduler.tick(), second.state.scheduler.tick())
        assert sum(sum(t.fired.values()) for t in early) == 0, "08:00: nothing is due yet"

        one.set(due)
        two.set(due)
        ticks = await asyncio.gather(first.state.scheduler.tick(),
                                     second.state.scheduler.tick())
        fired = ticks[0].fired["FollowUpDue"] + ticks[1].fired["FollowUpDue"]
        assert fired == 24, [t.__dict__ for t in ticks]
        assert ticks[0].attempted + ticks[1].attempted >= 24
        # The loser's attempt is a no-op: asked again, the aggregate has nothing left to do.
        again = await second.state.followups.advance(plans[0].follow_up_id, "followup", due)
        assert again.fired == [] and again.version == 2

    envelopes = await stream_envelopes(settings)
    dues = Counter(e.aggregate_id for e in envelopes if e.type == "FollowUpDue")
    assert len(dues) == 24 and set(dues.values()) == {1}, "one FollowUpDue per follow-up"


async def test_a_restart_after_downtime_catches_up_in_order(settings: Settings) -> None:
    settings = quiet(settings)
    # Due Thursday Apr 30 2026, the day before the Labour Day holiday (May 1-5).
    due = at(2026, 4, 30, 9)
    clock = ManualClock(at(2026, 4, 30, 8, 59))
    app = create_app(settings, clock)
    async with running(app):
        p = plan(due)
        await app.state.followups.schedule(p)
        await timers_ready(app, 1)
        assert (await app.state.scheduler.tick()).fired == {}, "a minute early: nothing"

    # Down over the holiday; back on Thursday May 7 at 10:00. Two working days overdue is
    # Thursday May 7 (Wed May 6 is the first working day after the holiday).
    restarted = create_app(settings, ManualClock(at(2026, 5, 7, 10)))
    async with running(restarted):
        await restarted.state.scheduler.tick()
        await wait_until(lambda: _status(restarted, p.follow_up_id, "escalated"),
                         what="the escalation to be in the worklist")

    envelopes = [e for e in await stream_envelopes(settings)
                 if e.aggregate_id == p.follow_up_id]
    assert [e.type for e in envelopes] == [
        "FollowUpScheduled", "FollowUpDue", "FollowUpMissed", "FollowUpEscalated"]
    due_event, missed, escalated = envelopes[1:]
    assert due_event.payload["overdue_at"].startswith("2026-04-30T17:00:00+08:00")
    assert missed.payload["escalate_at"].startswith("2026-05-07T09:00:00+08:00")
    assert escalated.payload == {"escalated_to": "supervisor", "overdue_working_days": 2,
                                 "by_scheduler": True, "reason": ""}
    assert all(e.actor == "system:scheduler" for e in envelopes[1:])


async def test_a_follow_up_rescheduled_later_does_not_fire_at_its_old_time(
        settings: Settings) -> None:
    settings = quiet(settings)
    clock = ManualClock(at(2026, 3, 2, 8))
    app = create_app(settings, clock)
    async with running(app) as client:
        p = plan(at(2026, 3, 2, 9))
        await app.state.followups.schedule(p)
        await timers_ready(app, 1)
        r = await client.post(f"/followups/{p.follow_up_id}/reschedule",
                              headers={"Idempotency-Key": "k-reschedule-1"},
                              json={"due_at": at(2026, 3, 3, 15).isoformat(),
                                    "reason": "居民改约"})
        assert r.status_code == 200, r.text
        # Even a stale timer row (the projection not yet caught up) cannot make it fire early.
        assert (await app.state.scheduler.tick(at(2026, 3, 2, 9))).fired == {}
        await wait_until(lambda: _timer_version(app, p.follow_up_id, 2), what="the new timer")
        assert (await app.state.scheduler.tick(at(2026, 3, 3, 14, 59))).fired == {}
        assert (await app.state.scheduler.tick(at(2026, 3, 3, 15))).fired == {"FollowUpDue": 1}


async def _status(app, follow_up_id: uuid.UUID, status: str) -> bool:  # type: ignore[no-untyped-def]
    value = await app.state.pool.fetchval(
        "SELECT status FROM followups WHERE follow_up_id = $1", follow_up_id)
    return value == status


async def _timer_version(app, aggregate_id: uuid.UUID, version: int) -> bool:  # type: ignore[no-untyped-def]
    value = await app.state.pool.fetchval(
        "SELECT version FROM timers WHERE aggregate_id = $1", aggregate_id)
    return value == version


async def test_the_worklist_and_a_scheduler_writing_the_same_timers_take_turns(
        settings: Settings) -> None:
    """A worklist batch writes its follow-ups' timers in the order of its events while a
    replica's tick writes the ones it advanced in the order they fell due: the same two
    timers, in opposite orders. Each took the first, waited for the second, and PostgreSQL
    broke the deadlock by failing one of them (a tick failed in the full suite at load).
    Both now take timers in one order, and one waits for the other."""
    first, second = sorted(uuid.uuid4() for _ in range(2))
    due = at(2027, 3, 1, 9)

    def timers(*ids: uuid.UUID) -> list[tuple[uuid.UUID, str, Any, int]]:
        return [(i, "follow-up", due, 2) for i in ids]

    async def waiting(pool: asyncpg.Pool, pid: int) -> bool:
        return await pool.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity"
                                   " WHERE pid = $1", pid) is True

    async with schema_pool(settings, "timers", DDL) as pool:
        await upsert_timers(pool, timers(first, second))
        async with pool.acquire() as holder, pool.acquire() as worklist, \
                pool.acquire() as scheduler:
            holding = holder.transaction()
            await holding.start()  # another batch holds the first timer for a moment
            await holder.execute("SELECT 1 FROM timers WHERE aggregate_id = $1 FOR UPDATE",
                                 first)
            batch = worklist.transaction()
            await batch.start()
            batch_wrote = asyncio.ensure_future(upsert_timers(worklist, timers(first, second)))
            await wait_until(lambda: waiting(pool, worklist.get_server_pid()),
                             what="the worklist's batch waiting for the first timer")
            tick_wrote = asyncio.ensure_future(upsert_timers(scheduler, timers(second, first)))
            await wait_until(lambda: waiting(pool, scheduler.get_server_pid()),
                             what="the tick waiting for a timer")
            await holding.commit()
            await batch_wrote
            await batch.commit()
            await tick_wrote
