"""A case whose first event is dead-lettered by isolation (its statement always runs out of
time) goes on with its later events in their order: the one that waited behind it in the
isolating pass is applied before the case's next one, not handed back and passed.

Before: the pass handed it back (nak, ``backoff[0]``) and dead-lettered the slow one, which
lifted the case's every hold; the case's next event, already read ahead, was applied first,
and the handed-back one, coming back, was taken for a duplicate (its sequence below the
case's tracked one): acked, never applied, never dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from services.intake import commands as c
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.deadletters import REPLAY_DDL, read_dead_letters
from shared.contracts import Envelope
from shared.runtime.background import supervise
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import bus_connection, schema_pool, wait_until

PER_CASE = ["CREATE TABLE IF NOT EXISTS per_case (case_id uuid PRIMARY KEY, n int NOT NULL)"]
APPLIED = ["CREATE TABLE IF NOT EXISTS applied (n serial PRIMARY KEY, case_id uuid NOT NULL,"
           " version int NOT NULL)"]


class SlowForOneEvent:
    """A read model whose statement for one event (the stuck case's opening) always runs out
    of time; every other event is written down in the order applied."""

    def __init__(self, stuck: uuid.UUID) -> None:
        self.stuck = stuck

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for event in events:
            if event.partition_key == self.stuck and event.type == "CaseOpened":
                await conn.execute("SELECT pg_sleep(5)")  # ended by statement_timeout
            await conn.execute("INSERT INTO applied (case_id, version) VALUES ($1, $2)",
                               event.partition_key, event.aggregate_version)


async def test_the_event_behind_an_isolated_one_is_applied_before_its_cases_next(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        stuck, other = await open_and_hear(side, 2)
        # The stuck case's third event, after the other case's: the next batch's.
        await side.intake.hear_request(stuck, c.HearRequest(words="又补充了一句"), "clerk-1",
                                       f"hear-{uuid.uuid4().hex}")
        await run_relay(settings, side, 5)
    async with schema_pool(settings, "isolated", [*TRACKING_DDL, *REPLAY_DDL, *APPLIED]) as pool, \
            bus_connection(settings, "isolated") as nc:
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="isolated",
                            handler=SlowForOneEvent(stuck),
                            filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                            # every pass isolates; a handed-back event comes back late
                            batch=3, max_deliver=2, backoff=(1.0, 1.0), isolate_after=0)
        task = asyncio.create_task(supervise("consumer:isolated", consumer.run))
        try:
            async def all_taken() -> bool:
                if not consumer.stats.dead_lettered:  # (the durable is made by then)
                    return False
                info = await nc.jetstream().consumer_info(settings.stream_name, "isolated")
                return info.num_pending == 0 and info.num_ack_pending == 0

            await wait_until(all_taken, timeout=10, what="every event applied or dead-lettered")
            letters = await read_dead_letters(nc, settings, "isolated")
            assert [(x.envelope().partition_key, x.envelope().type) for x in letters] == [
                (stuck, "CaseOpened")]
            rows = await pool.fetch("SELECT case_id, version FROM applied ORDER BY n")
            assert [r["version"] for r in rows if r["case_id"] == stuck] == [2, 3]
            assert [r["version"] for r in rows if r["case_id"] == other] == [1, 2]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class LockedUntilTheOtherCase:
    """A read model with one row per case; the stuck case's row is held by another session
    until the other case's first event is applied (its transaction ends meanwhile)."""

    def __init__(self, other: uuid.UUID, release: Callable[[], Awaitable[None]]) -> None:
        self.other, self.release = other, release

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for event in events:
            if event.partition_key == self.other:
                await self.release()
            await conn.execute(
                "INSERT INTO per_case VALUES ($1, 1) ON CONFLICT (case_id)"
                " DO UPDATE SET n = per_case.n + 1", event.partition_key)


async def test_an_event_whose_lock_went_during_the_pass_is_applied_not_dead_lettered(
        settings: Settings) -> None:
    """The operator's transaction holding the stuck case's row ends while the isolating
    pass applies the other case: the stuck case's opening, set aside, is tried again and
    applied, and its next event after it; nothing is dead-lettered (no replay to make)."""
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        stuck, other = await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    async with schema_pool(settings, "released", [*TRACKING_DDL, *REPLAY_DDL, *PER_CASE]
                           ) as pool, bus_connection(settings, "released") as nc:
        await pool.execute("INSERT INTO per_case VALUES ($1, 0)", stuck)
        blocker = await asyncpg.connect(settings.database_url)
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute(f'SELECT n FROM "{settings.schema_prefix}released".per_case'
                              " WHERE case_id = $1 FOR UPDATE", stuck)

        async def release() -> None:
            if not blocker.is_in_transaction():
                return
            await lock.rollback()

        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="released",
                            handler=LockedUntilTheOtherCase(other, release),
                            filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                            max_deliver=2, backoff=(1.0, 1.0), isolate_after=0)
        task = asyncio.create_task(supervise("consumer:released", consumer.run))
        try:
            async def counted() -> bool:
                rows = await pool.fetch("SELECT case_id, n FROM per_case")
                return ({r["case_id"]: r["n"] for r in rows} == {stuck: 2, other: 2}
                        or consumer.stats.dead_lettered > 0)

            await wait_until(counted, timeout=10, what="both cases applied")
            assert consumer.stats.dead_lettered == 0
            assert await read_dead_letters(nc, settings, "released") == []
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await blocker.close()
