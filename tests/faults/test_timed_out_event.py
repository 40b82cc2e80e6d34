"""One case whose event can never be applied in time (another session keeps its row locked)
no longer stalls the consumer for ever: after a timed-out batch (``isolate_after``) the next
is applied one event at a time, the other cases' events are applied, the one that waits for
the lock is dead-lettered with a reason that says so (a lock wait, told from a slow
statement by the pool's lock_timeout), and ``dlq replay`` applies it once the lock is gone.

Before: every batch holding it ran out of time and went back whole, again and again; nothing
behind it was applied."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.bus.consumer import TRACKING_DDL
from shared.bus.deadletters import REPLAY_DDL, read_dead_letters, replay_dead_letters
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import consumer_supervised, held_elsewhere, intake_consumer, wait_until

PER_CASE = ["CREATE TABLE IF NOT EXISTS per_case (case_id uuid PRIMARY KEY, n int NOT NULL)"]


class CountsPerCase:
    """A read model with one row per case (the row of one case another session locks)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for event in events:
            await conn.execute(
                "INSERT INTO per_case VALUES ($1, 1) ON CONFLICT (case_id)"
                " DO UPDATE SET n = per_case.n + 1", event.partition_key)


def its_row(settings: Settings, schema: str) -> str:
    """What another session runs to hold a case's row of ``per_case`` (``$1``)."""
    return (f'SELECT n FROM "{settings.schema_prefix}{schema}".per_case WHERE case_id = $1'
            " FOR UPDATE")


async def test_a_case_whose_row_stays_locked_is_dead_lettered_and_the_other_cases_go_on(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        stuck, *others = await open_and_hear(side, 3)  # two events a case
        await run_relay(settings, side, 6)
    handler = CountsPerCase()
    async with intake_consumer(settings, "poison", handler,
                               [*TRACKING_DDL, *REPLAY_DDL, *PER_CASE], max_deliver=2,
                               backoff=(0.05, 0.1), isolate_after=1) as consumer:
        pool = consumer.pool
        await pool.execute("INSERT INTO per_case VALUES ($1, 0)", stuck)
        # Another session (an operator's forgotten transaction) holds the stuck case's row.
        async with held_elsewhere(settings, its_row(settings, "poison"), stuck), \
                consumer_supervised(consumer):
            async def others_applied() -> bool:
                rows = await pool.fetch("SELECT case_id, n FROM per_case")
                return {r["case_id"]: r["n"] for r in rows} == {stuck: 0, **dict.fromkeys(
                    others, 2)} and consumer.stats.dead_lettered >= 1

            await wait_until(others_applied, timeout=10,
                             what="the other cases applied, the stuck one dead-lettered")
            # Its first event; its second too if it came in a pass with another case's.
            letters = await read_dead_letters(consumer.nc, settings, "poison")
            assert {e.envelope().partition_key for e in letters} == {stuck}
            first = letters[0]
            assert first.envelope().type == "CaseOpened"
            assert "waited for a lock" in first.reason
            assert "LockNotAvailableError" in first.reason  # not a slow statement
            assert first.delivered == 3  # the timed-out batch, and its own two tries
        # the lock gone
        report = await replay_dead_letters(consumer.nc, pool, settings, "poison", handler)
        assert report.replayed == [e.seq for e in letters] and not report.failed
        assert await pool.fetchval("SELECT n FROM per_case WHERE case_id = $1",
                                   stuck) >= len(letters)


async def test_a_locked_case_last_on_the_stream_is_dead_lettered_after_its_tries(
        settings: Settings) -> None:
    """Its events the last on the stream, no other case's to apply in the pass: each pass
    counts a try (the consumer's own write of it answered: not the store's fault), and the
    event is dead-lettered after ``max_deliver``; its case's next event goes on behind it.
    Before: never dead-lettered while no other case's event came, every batch taken back."""
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        [stuck] = await open_and_hear(side, 1)  # its two events, all the stream holds
        await run_relay(settings, side, 2)
    async with intake_consumer(settings, "last", CountsPerCase(), [*TRACKING_DDL, *PER_CASE],
                               max_deliver=2, backoff=(0.05, 0.1),
                               isolate_after=1) as consumer:
        pool = consumer.pool
        await pool.execute("INSERT INTO per_case VALUES ($1, 0)", stuck)
        async with held_elsewhere(settings, its_row(settings, "last"), stuck) as lock, \
                consumer_supervised(consumer):
            async def lettered() -> bool:
                return consumer.stats.dead_lettered >= 1

            await wait_until(lettered, timeout=10, what="the stuck case's opening dead-lettered")
            await lock.rollback()  # the lock goes: the case's next event is applied

            async def applied() -> bool:
                return await pool.fetchval("SELECT n FROM per_case WHERE case_id = $1",
                                           stuck) == 1

            await wait_until(applied, timeout=10, what="the request heard applied")
        [letter] = await read_dead_letters(consumer.nc, settings, "last")
        assert letter.envelope().type == "CaseOpened"
        assert "waited for a lock on its own in 2 passes with nothing else to apply" \
            in letter.reason
        assert letter.delivered == 2  # its tries, one a pass
