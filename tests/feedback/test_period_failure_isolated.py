"""A closed month whose revision the database refuses does not hold back the others
(months50): May and June are closed, a slip of each is typed in afterwards, and the database
refuses May's writes: its marks (a constraint, as a lock timeout or a full disk would refuse
it), or its record in the event store (redteam95). The tick
revises June, says May failed (the log and ``sixstep_period_failures_total``) and May is
revised at the first tick after the database takes its writes again. Before, May's error
ended the whole tick: June waited, and nothing told ops."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime

import asyncpg
import pytest

from services.feedback.figures.projection import MARKS
from services.feedback.main import create_app
from services.feedback.periods import period_id_for
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_visits_and_periods import May, applied_up_to, at
from tests.support import TEST_CENTER, running, wait_until


def failures(app, step: str) -> float:  # type: ignore[no-untyped-def]
    value = app.state.runtime.metrics.registry.get_sample_value(
        "sixstep_period_failures_total", {"service": "feedback", "step": step})
    return value or 0.0


async def reported_as(pool: asyncpg.Pool, revisions: dict[date, int]) -> None:
    """Wait until the reported months (a read model) stand at ``revisions``."""
    async def there() -> bool:
        return dict(await pool.fetch("SELECT month, revision FROM fig_reported"
                                     " WHERE center_id = $1", TEST_CENTER)) == revisions
    await wait_until(there, what=f"the reported months at {revisions}")


@contextlib.asynccontextmanager
async def store_times_out(pool: asyncpg.Pool, month: date) -> AsyncIterator[None]:
    """While in the block, the event store ends every write of ``month``'s reported month
    as PostgreSQL ends one that waited its ``lock_timeout`` on a row held elsewhere."""
    events = await pool.fetchval(
        "SELECT table_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND column_name = 'originator_id' AND table_name LIKE"
        " '%events' ORDER BY table_name LIMIT 1")
    period = period_id_for(TEST_CENTER, month)
    await pool.execute(
        "CREATE FUNCTION month_waits() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.originator_id = '{period}' THEN RAISE EXCEPTION 'canceling statement due"
        " to lock timeout' USING ERRCODE = 'lock_not_available'; END IF;"
        " RETURN NEW; END $$")
    await pool.execute(f'CREATE TRIGGER month_waits BEFORE INSERT ON "{events}"'
                       " FOR EACH ROW EXECUTE FUNCTION month_waits()")
    try:
        yield
    finally:
        await pool.execute(f'DROP TRIGGER month_waits ON "{events}"')
        await pool.execute("DROP FUNCTION month_waits()")



@contextlib.asynccontextmanager
async def marks_refuse(pool: asyncpg.Pool, month: date) -> AsyncIterator[None]:
    """While in the block, ``month``'s marks take no write (a constraint, as a lock timeout
    or a full disk would refuse it)."""
    await pool.execute(f"ALTER TABLE {MARKS} ADD CONSTRAINT month_refused"
                       f" CHECK (month <> '{month.isoformat()}') NOT VALID")
    try:
        yield
    finally:
        await pool.execute(f"ALTER TABLE {MARKS} DROP CONSTRAINT month_refused")


#: Where the database refuses May: its marks (``fig_closed_marks``), or the event store
#: (its record's insert ended as by ``lock_timeout``: the group commit answers a 503,
#: ``statement_timed_out``, a CommandError; until redteam95 a warning nobody counted, the
#: alert silent while May failed at every tick).
REFUSED_IN = {"marks": marks_refuse, "store": store_times_out}


@pytest.mark.parametrize("where", sorted(REFUSED_IN))
@pytest.mark.parametrize("step", ["close", "revise"])
async def test_a_month_the_database_refuses_leaves_the_other_months_closed_or_revised(
        settings: Settings, step: str, where: str) -> None:
    """``close``: May and June are due to close and May's close is refused; ``revise``:
    both closed, a slip of each typed in, and May's revision is refused. June's goes
    through in the same tick, May's failure is counted under its step, and May's goes
    through at the first tick after the database takes it."""
    may, june = date(2026, 5, 1), date(2026, 6, 1)
    clock = Clock(datetime.fromisoformat("2026-07-10T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app):
        pool = app.state.pool
        scheduler = app.state.period_scheduler
        months = May()
        months.visit("may", at("14"))
        months.visit("june", at("14", month="06"))
        history = months.h
        await applied_up_to(pool, await history.publish(settings), scheduler.caught_up)
        one, revision, before = (1, 0), 0, {}
        if step == "revise":
            assert await scheduler.tick() == (2, 0)  # May and June close
            slips = May()
            slips.h._positions = history._positions
            slips.visit("may-slip", at("20"))
            slips.visit("june-slip", at("20", month="06"))
            await applied_up_to(pool, await slips.h.publish(settings), scheduler.caught_up)
            one, revision, before = (0, 1), 1, {may: 0}
        async with REFUSED_IN[where](pool, may):
            assert await scheduler.tick() == one, "June's done, May's failure its own"
            assert failures(app, step) == 1
            await reported_as(pool, {**before, june: revision})
        await wait_until(scheduler.caught_up, what="the figures through June's record")
        assert await scheduler.tick() == one, "May's done once the database takes it"
        await reported_as(pool, {may: revision, june: revision})
        assert failures(app, step) == 1
