"""A statement that hangs (a lock wait on a row another session holds) no longer stops a
consumer for ever: PostgreSQL ends it after DB_STATEMENT_TIMEOUT_S, the consumer hands the
batch back and tries again with back-off, counting no try against the event (nothing is
dead-lettered for it), says so (stats for /ready, a metric), and once the lock goes every
event is applied once.

Before: the pool had no statement_timeout; the batch waited on the lock, applying nothing and
saying nothing, for as long as the other session held it. A lock wait is ended by
lock_timeout, just below the statement's limit, so it is told from a slow statement; the pass
that applies a batch one event at a time after a timed-out batch (``Consumer._isolate``)
dead-letters nothing when no event goes through (the lock is on what every event writes):
with fewer than three cases to try it counts each a try, and the lock goes long before
``max_deliver`` such passes."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.bus.consumer import TRACKING_DDL
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import (
    consumer_supervised,
    dead_letters,
    held_elsewhere,
    intake_consumer,
    wait_until,
)

COUNTER = ["CREATE TABLE IF NOT EXISTS hearings (id int PRIMARY KEY, n int NOT NULL)",
           "INSERT INTO hearings VALUES (1, 0) ON CONFLICT DO NOTHING"]


class CountsHearings:
    """A read model that counts events on one row (the row another session locks)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        await conn.execute("UPDATE hearings SET n = n + $1 WHERE id = 1", len(events))


async def test_a_consumer_waiting_on_a_locked_row_times_out_retries_and_applies_each_event_once(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        await open_and_hear(side, 2)  # four events
        await run_relay(settings, side, 4)
    timeouts: list[int] = []
    async with intake_consumer(settings, "hung", CountsHearings(), [*TRACKING_DDL, *COUNTER],
                               max_deliver=5, backoff=(0.05, 0.1), isolate_after=1,
                               on_store_timeout=lambda: timeouts.append(1)) as consumer:
        pool = consumer.pool
        # Another session (an operator's forgotten transaction) holds the row.
        async with held_elsewhere(settings, f'SELECT n FROM "{settings.schema_prefix}hung"'
                                            ".hearings WHERE id = 1 FOR UPDATE") as lock, \
                consumer_supervised(consumer):
            async def timed_out() -> bool:
                # the batch, then the pass one event at a time: none applied, so the
                # store is at fault, not the events (none dead-lettered: ``_isolate``)
                return consumer.stats.store_timeouts >= 2

            await wait_until(timed_out, timeout=10, what="the batch timed out, twice")
            assert consumer.stats.timing_out_since is not None  # /ready: degraded
            # A lock wait, told from a slow statement (the pool's lock_timeout).
            assert "LockNotAvailableError" in (consumer.stats.last_timeout or "")
            assert len(timeouts) == consumer.stats.store_timeouts  # the metric
            await lock.rollback()  # the lock goes

            async def applied() -> bool:
                return await pool.fetchval("SELECT n FROM hearings WHERE id = 1") == 4

            await wait_until(applied, timeout=10, what="every event applied")
            assert consumer.stats.timing_out_since is None
            assert consumer.stats.dead_lettered == 0 and await dead_letters(settings) == []
        assert await pool.fetchval("SELECT n FROM hearings WHERE id = 1") == 4  # once each
