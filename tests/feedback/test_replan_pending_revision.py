"""A run that goes through takes the pending re-planning away only if it is the row it read
(redteam123). Feedback's replica A starts a re-planning (a start's, minutes for a city) and
reads the pending row that replica X's failed reload left. Replica B's run goes through
meanwhile and takes that row away; then replica C's reload of the next correction fails on an
item of its own and records a new row. A's run ends: it never covered C's days, so C's row
must stay (and C's own retry, seeing it, goes on). Until redteam123 a new row started again
at revision 1, the revision A had read: A's ``done`` took C's row away, C's retry found it
gone ("done elsewhere") and stopped, and the leader had nothing to adopt: C's item kept the
deadline counted on the old calendar until the next reload or start, and the alert went."""

from __future__ import annotations

from datetime import date

from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.readmodels.readmodel import q
from shared.runtime import replan_pending
from shared.settings import Settings

JANUARY = (date(2026, 12, 31), date(2027, 1, 8))  # over the new year, provisional then
OCTOBER = (date(2027, 9, 30), date(2027, 10, 8))  # the next correction: National Day
FIRST_S, MOST_S = 1.0, 60.0


async def test_a_run_that_read_an_earlier_pending_row_leaves_the_one_recorded_since(
        settings: Settings) -> None:
    schema = settings.schema_for("feedback")
    pool = await create_pool(settings, schema)
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
        await run_migrations(pool, schema, replan_pending.DDL)
        # X's reload of January's schedule: one item not taken in time.
        x = await replan_pending.failed(pool, "feedback", JANUARY, {"*": "jan"}, 1,
                                        "TimeoutError: (1 item)", first_s=FIRST_S,
                                        most_s=MOST_S)
        assert x is not None
        # A's run begins: it reads X's row and covers its days.
        read_by_a = await replan_pending.read(pool, "feedback")
        assert read_by_a is not None and read_by_a.span == JANUARY
        # B's run, which read the same row, goes through first: the row goes.
        assert await replan_pending.done(pool, "feedback", x.revision) is False
        assert await replan_pending.read(pool, "feedback") is None
        # C's reload of October's correction fails on an item A's run never looks at.
        c = await replan_pending.failed(pool, "feedback", OCTOBER, {"*": "oct"}, 1,
                                        "TimeoutError: (1 item)", first_s=FIRST_S,
                                        most_s=MOST_S)
        assert c is not None and c.span == OCTOBER
        # A's run goes through, on January's days: C's row is not the one it read.
        kept = await replan_pending.done(pool, "feedback", read_by_a.revision)
        left = await replan_pending.read(pool, "feedback")
        assert left is not None and left.span == OCTOBER, "C's failed re-planning was lost"
        assert kept is True
    finally:
        await pool.close()
