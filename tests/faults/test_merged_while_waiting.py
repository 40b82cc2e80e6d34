"""A merging handler (feedback's intake follower) takes the next batch read ahead into its
transaction while its commands wait for their round (``Batches._more``). The next batch is
tracked first in a savepoint and applied on the same connection, after the batch in hand
(it reads that batch's rows), and acked with it only after the commit. A batch that fails
after taking the next one hands both back: nothing of the next one stands or is acked, it
is the next batch again, in its order. Events not all new (a redelivered copy of one in
hand) are not merged, nor applied twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from shared.bus.consumer import Consumer, More, _Item
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_tracking_after_effects import EFFECTS_DDL, Msg, _consumer, _item, _row
from tests.support import schema_pool, wait_until


class Waits:
    """A projection whose batch waits for a round the test ends (its commands' group
    commit), taking the next batch meanwhile. Each event writes its row and notes how many
    rows of the batch before it saw (one transaction: the merged batch sees the first's)."""

    merges = True

    def __init__(self, fail_after_more: bool = False) -> None:
        self.fail_after_more = fail_after_more
        self.round_over = asyncio.Event()
        self.given: list[list[int]] = []
        self.saw: list[int] = []
        self.acked: list[int] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    more: More | None = None) -> None:
        self.given.append([e.position for e in events])
        self.saw.append(int(await conn.fetchval("SELECT count(*) FROM effects")))
        await conn.execute("INSERT INTO effects (seq) SELECT unnest($1::bigint[])",
                           [e.position for e in events])
        if more is not None:
            round_ = asyncio.ensure_future(self.round_over.wait())
            await more(round_)
            await round_
            if self.fail_after_more:
                raise RuntimeError("a command of the batch was refused")


def _answers(items: list[_Item]) -> list[str | None]:
    return [cast(Msg, i.msg).answer for i in items]


async def _read_ahead(consumer: Consumer, items: list[_Item]) -> list[Any]:
    """``items`` read ahead and decoded, as the consumer's loop leaves them."""
    ahead = [i.msg for i in items]
    consumer._ahead = ahead
    consumer._decoded_ahead = {id(i.msg): i for i in items}
    return ahead


async def _applied(pool: asyncpg.Pool, consumer: Consumer, items: list[_Item]) -> None:
    """``items`` applied as the leader applies a batch, on a connection of its own."""
    async with pool.acquire() as conn:
        consumer._conn = conn
        try:
            await consumer._apply(items)
        finally:
            consumer._conn = None


async def test_the_next_batch_is_applied_while_the_round_waits_and_acked_after_the_commit(
        settings: Settings) -> None:
    """Sun 20 Dec 2026, the morning's resolutions: a batch holds a case's event 4 and waits
    for its round; read ahead meanwhile, the case's event 5 and another case's 7. They are
    applied before the round is over, seeing the batch's row, and nothing is acked or
    committed before the round ends; then all three are committed and acked together, the
    rows at 5 and 7, nothing left read ahead."""
    case, other = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "merged_acked", EFFECTS_DDL) as pool:
        consumer = _consumer(settings, pool, cast(Any, handler := Waits()))
        first, nxt = [_item(case, 4)], [_item(case, 5), _item(other, 7)]
        ahead = await _read_ahead(consumer, nxt)
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                batch = asyncio.create_task(consumer._apply(first))

                async def both_given() -> bool:  # the next batch's read of the rows too
                    return len(handler.saw) == 2
                await wait_until(both_given, timeout=10, what="the next batch applied")
                assert handler.given == [[4], [5, 7]]
                assert handler.saw == [0, 1]  # the next batch read the first one's row
                assert ahead == []
                assert _answers(first + nxt) == [None, None, None], "acked before the commit"
                assert await pool.fetchval("SELECT count(*) FROM effects") == 0
                handler.round_over.set()
                await batch
            finally:
                consumer._conn = None
        assert _answers(first + nxt) == ["ack", "ack", "ack"]
        assert handler.acked == [3]  # in one write, after the commit
        assert await _row(pool, case) == 5 and await _row(pool, other) == 7
        assert sorted(r["seq"] for r in await pool.fetch("SELECT seq FROM effects")) == [4, 5, 7]
        assert consumer.stats.merged == 1 and consumer.stats.applied == 3


async def test_a_batch_failing_after_taking_the_next_hands_the_next_back_unacked(
        settings: Settings) -> None:
    """New year's eve, 23:30 in Shanghai: the batch takes the next one, then one of its own
    commands is refused. Its transaction rolls back with the next batch's savepoint; the
    batch is applied again one event at a time, and the next batch is back at the front of
    the read-ahead, in its order, not acked, nothing of it written or tracked."""
    case, other = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "merged_failed", EFFECTS_DDL) as pool:
        handler = Waits(fail_after_more=True)
        handler.round_over.set()
        consumer = _consumer(settings, pool, cast(Any, handler))
        first, nxt = [_item(case, 4)], [_item(case, 5), _item(other, 7)]
        ahead = await _read_ahead(consumer, nxt)
        await _applied(pool, consumer, first)
        assert handler.given[:2] == [[4], [5, 7]]
        assert ahead == [i.msg for i in nxt]  # the next batch again, in its order
        assert _answers(first + nxt) == ["ack", None, None]
        assert await _row(pool, case) == 4
        assert await pool.fetchval("SELECT count(*) FROM consumer_tracking WHERE key = $1",
                                   other) == 0
        assert sorted(r["seq"] for r in await pool.fetch("SELECT seq FROM effects")) == [4]
        assert consumer.stats.merged == 1 and consumer.stats.applied == 1


async def test_a_redelivered_copy_of_an_event_in_hand_is_not_merged(settings: Settings) -> None:
    """Sun 20 Dec 2026: the batch in hand holds a case's event 4; read ahead, a second copy
    of it (redelivered while the batch was held) and the case's event 5. Not all new to the
    case's row as the batch wrote it: not merged, not applied twice; both stay read ahead
    for the next batch (which acks the copy as a duplicate)."""
    case = uuid.uuid4()
    async with schema_pool(settings, "merged_copy", EFFECTS_DDL) as pool:
        handler = Waits()
        handler.round_over.set()
        consumer = _consumer(settings, pool, cast(Any, handler))
        first, nxt = [_item(case, 4)], [_item(case, 4), _item(case, 5)]
        ahead = await _read_ahead(consumer, nxt)
        await _applied(pool, consumer, first)
        assert handler.given == [[4]]
        assert ahead == [i.msg for i in nxt]
        assert _answers(first + nxt) == ["ack", None, None]
        assert await _row(pool, case) == 4
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects")] == [4]
        assert consumer.stats.merged == 0


async def test_a_batch_not_the_usual_one_takes_nothing_ahead(settings: Settings) -> None:
    """A batch sorted by its rows (a duplicate in it) is given no ``more``: only the usual
    batch, tracked first, merges."""
    done, case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "merged_sorted", EFFECTS_DDL) as pool:
        await pool.execute("INSERT INTO consumer_tracking (consumer, key, seq)"
                           " VALUES ('sorted', $1, 5)", done)
        handler = Waits()
        handler.round_over.set()
        consumer = _consumer(settings, pool, cast(Any, handler))
        nxt = [_item(case, 9)]
        ahead = await _read_ahead(consumer, nxt)
        await _applied(pool, consumer, [_item(done, 5), _item(case, 8)])
        assert handler.given == [[8]]
        assert ahead == [nxt[0].msg]


async def test_the_next_batch_arriving_while_the_round_waits_is_taken_as_it_comes(
        settings: Settings) -> None:
    """Sun 20 Dec 2026: nothing is read ahead when the batch starts to wait for its round;
    the case's event 5 comes meanwhile. It is taken as soon as it is decoded, before the
    round is over, and acked with the batch after the commit."""
    case = uuid.uuid4()
    async with schema_pool(settings, "merged_arriving", EFFECTS_DDL) as pool:
        consumer = _consumer(settings, pool, cast(Any, handler := Waits()))
        first, nxt = [_item(case, 4)], [_item(case, 5)]
        ahead = await _read_ahead(consumer, [])
        batch = asyncio.create_task(_applied(pool, consumer, first))

        async def waiting() -> bool:
            return len(handler.given) == 1
        await wait_until(waiting, timeout=10, what="the batch waits for its round")
        ahead.append(nxt[0].msg)  # as the consumer's read-ahead takes and decodes it
        consumer._decoded_ahead[id(nxt[0].msg)] = nxt[0]
        consumer._ahead_grew.set()

        async def merged() -> bool:
            return len(handler.given) == 2
        await wait_until(merged, timeout=10, what="the arriving batch applied")
        assert not handler.round_over.is_set() and ahead == []
        assert _answers(first + nxt) == [None, None]
        handler.round_over.set()
        await batch
        assert _answers(first + nxt) == ["ack", "ack"]
        assert await _row(pool, case) == 5 and consumer.stats.merged == 1


class MergedRunsOutOfTime(Waits):
    """The batch merged into the one in hand runs out of time (a lock another session holds:
    here its own statement limit, set in its savepoint only)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    more: More | None = None) -> None:
        if more is None:
            self.given.append([e.position for e in events])
            await conn.execute("SET LOCAL statement_timeout = '50ms'")
            await conn.execute("SELECT pg_sleep(5)")
        await super().apply(conn, events, more)


async def test_a_merged_batch_that_runs_out_of_time_is_counted_as_a_store_timeout(
        settings: Settings) -> None:
    """31 Dec, 23:30 in Shanghai: the batch merged into the one in hand runs out of time. It
    goes back to the read-ahead (the batch in hand commits without it) and is counted as a
    batch given back for its time (``sixstep_consumer_store_timeouts_total``, /ready), not
    only said at info level as a refused merge: a lock held all evening showed nowhere an
    alert reads."""
    case, other = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "merged_timed_out", EFFECTS_DDL) as pool:
        handler = MergedRunsOutOfTime()
        handler.round_over.set()
        consumer = _consumer(settings, pool, cast(Any, handler))
        counted: list[None] = []
        consumer.on_store_timeout = lambda: counted.append(None)
        first, nxt = [_item(case, 4)], [_item(case, 5), _item(other, 7)]
        ahead = await _read_ahead(consumer, nxt)
        await _applied(pool, consumer, first)
        assert handler.given == [[4], [5, 7]]
        assert ahead == [i.msg for i in nxt]  # the next batch again, in its order
        assert _answers(first + nxt) == ["ack", None, None]
        assert consumer.stats.merged == 0 and consumer.stats.applied == 1
        assert consumer.stats.store_timeouts == 1 and len(counted) == 1
        assert consumer.stats.timing_out_since is not None  # /ready, until a batch goes through
