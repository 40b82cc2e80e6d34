"""A batch that is not all new is sorted by its tracking rows (duplicates, waiting, fresh),
read before its transaction, and writes them after its effects. Between the read and the
write another transaction may move a row (the rebuild's switch putting the rebuilt rows in
place, deleting and inserting them; a batch of the durable's before-leader still
committing): the write must find it and give the batch back to be sorted again, not move
the row back over it and keep the event applied a second time. So must a batch the handler
failed, applied one event at a time. And a case's row goes to its highest sequence of the
batch, not to the last delivered: a redelivered event after a newer one of its case."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from shared.bus.consumer import MOVED_AGAIN, TRACKING_DDL, Consumer, _Item, _RowsMoved
from shared.contracts import Envelope
from shared.settings import Settings
from tests.support import schema_pool, wait_until

#: The lock the handler takes before its effect: the test's barrier, held by the transaction
#: that moves the row.
BARRIER = 4949

EFFECTS_DDL = [*TRACKING_DDL, "CREATE TABLE IF NOT EXISTS effects (seq bigint NOT NULL)"]


class Msg:
    """A delivered message as the consumer answers it."""

    def __init__(self) -> None:
        self.answer: str | None = None

    async def ack(self) -> None:
        self.answer = "ack"

    async def nak(self, delay: float | None = None) -> None:
        self.answer = "nak"


class Effects:
    """A projection: one row an event, written after the barrier; a batch of more than one
    event fails when ``fail_batches`` (the consumer then applies them one by one)."""

    def __init__(self, fail_batches: bool = False) -> None:
        self.fail_batches = fail_batches
        self.given: list[list[int]] = []
        self.acked: list[int] = []  # the size of each batch acked after its commit

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.given.append([e.position for e in events])
        if self.fail_batches and len(events) > 1:
            raise RuntimeError("one event of the batch is refused")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", BARRIER)
        await conn.execute("INSERT INTO effects (seq) SELECT unnest($1::bigint[])",
                           [e.position for e in events])


def _item(case: uuid.UUID, seq: int) -> _Item:
    now = datetime(2026, 12, 20, 9, 30, tzinfo=UTC)
    envelope = Envelope.model_construct(
        event_id=uuid.uuid4(), type="RequestHeard", version=1, service="intake",
        position=seq, aggregate_id=case, aggregate_version=seq, case_id=case,
        center_id="center-1", occurred_at=now, recorded_at=now, causation_id=None,
        correlation_id=None, actor="clerk-1", payload={})
    return _Item(msg=cast(Any, Msg()), seq=seq, delivered=2, envelope=envelope)


def _consumer(settings: Settings, pool: asyncpg.Pool, handler: Effects) -> Consumer:
    consumer = Consumer(settings=settings, nc=cast(Any, None), pool=pool, name="sorted",
                        handler=handler, filter_subjects=[])

    async def ack(msgs: list[Any]) -> None:
        for msg in msgs:
            await msg.ack()
        handler.acked.append(len(msgs))
    consumer._ack = ack  # type: ignore[method-assign]
    return consumer


async def _tracked_at(pool: asyncpg.Pool, rows: dict[uuid.UUID, int]) -> None:
    await pool.execute("INSERT INTO consumer_tracking (consumer, key, seq) SELECT 'sorted',"
                       " k, s FROM unnest($1::uuid[], $2::bigint[]) AS r(k, s)",
                       list(rows), list(rows.values()))


async def _row(pool: asyncpg.Pool, case: uuid.UUID) -> int:
    return int(await pool.fetchval(
        "SELECT seq FROM consumer_tracking WHERE consumer = 'sorted' AND key = $1", case))


#: What the other transaction does to the case's row at 3, having applied its events 4
#: and 5: moves it (a batch of the before-leader), or deletes it and writes the rebuilt one
#: (the rebuild's switch, ``HANDED_OVER``).
MOVES = {
    "moved": ["UPDATE consumer_tracking SET seq = 5 WHERE consumer = 'sorted' AND key = $1"],
    "replaced": ["DELETE FROM consumer_tracking WHERE consumer = 'sorted' AND key = $1",
                 "INSERT INTO consumer_tracking (consumer, key, seq) VALUES ('sorted', $1, 5)"],
}


async def _moved_while_the_handler_waits(pool: asyncpg.Pool, consumer: Consumer,
                                         items: list[_Item], statements: list[str],
                                         case: uuid.UUID) -> None:
    """``items`` applied by ``consumer`` on a connection of their own; the barrier held until
    its handler waits on it, the case's row moved meanwhile by another transaction."""
    async with pool.acquire() as barrier, pool.acquire() as conn:
        await barrier.execute("SELECT pg_advisory_lock($1)", BARRIER)
        consumer._conn = conn  # the leader's connection
        try:
            batch = asyncio.create_task(consumer._apply(items))
            pid = conn.get_server_pid()

            async def waits_on_the_barrier() -> bool:
                return bool(await pool.fetchval(
                    "SELECT wait_event_type = 'Lock' AND wait_event = 'advisory'"
                    " FROM pg_stat_activity WHERE pid = $1", pid))
            await wait_until(waits_on_the_barrier, timeout=10,
                             what="the handler waits on the barrier")
            async with pool.acquire() as other, other.transaction():
                for statement in statements:
                    await other.execute(statement, case)
            await barrier.execute("SELECT pg_advisory_unlock($1)", BARRIER)
            await batch
        finally:
            consumer._conn = None


@pytest.mark.parametrize("move", sorted(MOVES))
async def test_a_row_moved_after_a_sorted_batch_read_it_sends_the_batch_back_to_be_sorted(
        settings: Settings, move: str) -> None:
    """Sun 20 Dec 2026, a quiet morning: a batch holds a case's event 5 again (its ack was
    lost: not all new) and another case's event 4, its row at 3. Read, sorted: 4 is fresh.
    While its projection waits, the rebuild's switch (or the before-leader) writes the
    case's row at 5, the event applied there. The batch's tracking write finds that: rolled
    back, sorted again, 4 a duplicate now, acked, not applied a second time."""
    done, case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_after", EFFECTS_DDL) as pool:
        await _tracked_at(pool, {done: 5, case: 3})
        consumer = _consumer(settings, pool, handler := Effects())
        items = [_item(done, 5), _item(case, 4)]
        await _moved_while_the_handler_waits(pool, consumer, items, MOVES[move], case)
        assert handler.given == [[4]]  # it was applied, then rolled back with its write
        assert await _row(pool, case) == 5  # not moved back to 4
        assert await pool.fetchval("SELECT count(*) FROM effects") == 0  # not applied again
        assert [cast(Msg, i.msg).answer for i in items] == ["ack", "ack"]
        assert consumer.stats.duplicates == 2 and consumer.stats.applied == 0


async def test_a_row_moved_while_a_failed_batch_is_applied_one_by_one_is_not_applied_again(
        settings: Settings) -> None:
    """A batch of two new events fails in the projection and is applied one event at a
    time. While the first waits, another transaction applies it and moves its case's row:
    the event's own tracking write finds that, it is rolled back and acked as a duplicate;
    the other event is applied."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_one_by_one", EFFECTS_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        consumer = _consumer(settings, pool, handler := Effects(fail_batches=True))
        items = [_item(case, 4), _item(other_case, 7)]
        await _moved_while_the_handler_waits(pool, consumer, items, MOVES["moved"], case)
        assert handler.given[0] == [4, 7]  # the batch, refused; then one by one
        assert await _row(pool, case) == 5
        assert await _row(pool, other_case) == 7
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects")] == [7]
        assert [cast(Msg, i.msg).answer for i in items] == ["ack", "ack"]


async def test_a_redelivered_event_after_a_newer_one_of_its_case_leaves_the_row_at_the_newer(
        settings: Settings) -> None:
    """New year's eve, 23:30 in Shanghai: a batch in delivery order holds a case's event
    10, new, then its event 8, redelivered and never applied (both new to the row at 3),
    beside another case's duplicate (not all new: sorted). Both are applied; the row goes
    to 10, not back to 8 (event 10 would be applied again when it came back)."""
    done, case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_highest", EFFECTS_DDL) as pool:
        await _tracked_at(pool, {done: 5, case: 3})
        consumer = _consumer(settings, pool, Effects())
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                await consumer._apply([_item(done, 5), _item(case, 10), _item(case, 8)])
            finally:
                consumer._conn = None
        assert await _row(pool, case) == 10


async def test_a_batch_is_applied_in_stream_order_and_tracked_at_its_highest(
        settings: Settings) -> None:
    """The usual batch (every event new, tracked first), delivered out of order: a case's
    event 10, then its event 8. The projection is given 8 before 10, and the row is at 10."""
    case = uuid.uuid4()
    async with schema_pool(settings, "tracking_order", EFFECTS_DDL) as pool:
        consumer = _consumer(settings, pool, handler := Effects())
        items = [_item(case, 10), _item(case, 8)]
        msgs = [i.msg for i in items]
        consumer._decoded_ahead = {id(i.msg): i for i in items}  # as ``_read_ahead`` leaves them
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                await consumer.process(cast(Any, msgs))
            finally:
                consumer._conn = None
        assert handler.given == [[8, 10]]
        assert await _row(pool, case) == 10
        assert handler.acked == [2]


#: ``effects`` numbered in the order they were written.
ORDERED_DDL = [*TRACKING_DDL,
               "CREATE TABLE IF NOT EXISTS effects (n bigserial, seq bigint NOT NULL)"]


async def test_an_event_whose_row_the_switch_replaced_is_applied_before_its_case_next_event(
        settings: Settings) -> None:
    """Sun 20 Dec 2026: a batch of a case's event 4 and another case's event 7 fails in the
    projection and is applied one event at a time. While event 4 waits, the rebuild's switch
    replaces every tracking row (the case's rebuilt at 3, as it was) and commits while 4's
    tracking write waits on the row: the write finds the row replaced, and 4 is still new.
    The case's event 5, read ahead, is the next batch. Event 4 must be applied, before 5:
    handed back with its row unblocked, 5 was applied first and 4 came back a duplicate,
    acked and never applied."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_replaced", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        consumer = _consumer(settings, pool, Effects(fail_batches=True))
        first = [_item(case, 4), _item(other_case, 7)]
        async with pool.acquire() as barrier, pool.acquire() as conn, \
                pool.acquire() as switch:
            await barrier.execute("SELECT pg_advisory_lock($1)", BARRIER)
            consumer._conn = conn
            try:
                batch = asyncio.create_task(consumer._apply(first))
                pid = conn.get_server_pid()

                async def waits_on(event: str) -> bool:
                    return bool(await pool.fetchval(
                        "SELECT wait_event_type = 'Lock' AND wait_event = $2"
                        " FROM pg_stat_activity WHERE pid = $1", pid, event))
                # Event 4 alone (the batch failed): its projection waits on the barrier.
                await wait_until(lambda: waits_on("advisory"), timeout=10,
                                 what="event 4 alone waits on the barrier")
                async with switch.transaction():
                    for statement in MOVES["replaced"]:
                        await switch.execute(statement.replace("5)", "3)"), case)
                    await barrier.execute("SELECT pg_advisory_unlock($1)", BARRIER)
                    await wait_until(lambda: waits_on("transactionid"), timeout=10,
                                     what="event 4's tracking write waits on the switch")
                await batch
                # The next batch (read ahead), then whatever was handed back, redelivered.
                batches: list[list[_Item]] = [[_item(case, 5)]]
                handed_back = [i for i in first if cast(Msg, i.msg).answer == "nak"]
                for _ in range(4):
                    for items in batches:
                        await consumer._apply(items)
                    handed_back += [i for items in batches for i in items
                                    if cast(Msg, i.msg).answer == "nak"]
                    if not handed_back:
                        break
                    batches = [[_Item(msg=cast(Any, Msg()), seq=i.seq,
                                      delivered=i.delivered + 1, envelope=i.envelope)
                                for i in sorted(handed_back, key=lambda i: i.seq)]]
                    handed_back = []
            finally:
                consumer._conn = None
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")
                if r["seq"] != 7] == [4, 5]
        assert await _row(pool, case) == 5


async def test_an_event_delivered_again_into_the_batch_holding_it_is_applied_once(
        settings: Settings) -> None:
    """31 Dec 2026, 23:30 in Shanghai: a slow minute; a case's event 10 was not acked within
    ack_wait while its batch was held (a long gather, a slow statement), and the server
    delivered it again into the same batch, beside another case's event 11. The projection
    is given event 10 once, and the row is at 10."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_twice", ORDERED_DDL) as pool:
        consumer = _consumer(settings, pool, handler := Effects())
        first = _item(case, 10)
        again = _Item(msg=cast(Any, Msg()), seq=10, delivered=3, envelope=first.envelope)
        items = [first, _item(other_case, 11), again]
        consumer._decoded_ahead = {id(i.msg): i for i in items}  # as ``_read_ahead`` leaves them
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                await consumer.process(cast(Any, [i.msg for i in items]))
            finally:
                consumer._conn = None
        assert handler.given == [[10, 11]]
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")] == [
            10, 11]
        assert await _row(pool, case) == 10
        assert cast(Msg, again.msg).answer == "ack"  # the latest delivery answers for both


async def test_an_event_whose_row_keeps_moving_blocks_its_case_before_it_is_handed_back(
        settings: Settings) -> None:
    """An event applied alone finds its row moved after every try (a pathological run of
    switches): it is not tried for ever; after ``MOVED_AGAIN`` tries its case is blocked at
    it, no try counted, and it is handed back. The case's next event, in the next batch,
    waits behind it; when it comes back it is applied, then the next."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_moving", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        consumer = _consumer(settings, pool, Effects(fail_batches=True))
        track = consumer._track

        async def always_moved(conn: asyncpg.Connection, items: list[_Item]) -> None:
            if any(i.envelope is not None and i.envelope.partition_key == case for i in items):
                raise _RowsMoved
            await track(conn, items)
        consumer._track = always_moved  # type: ignore[method-assign]
        first = [_item(case, 4), _item(other_case, 7)]
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                await consumer._apply(first)
                assert [cast(Msg, i.msg).answer for i in first] == ["nak", "ack"]
                row = await pool.fetchrow(
                    "SELECT seq, blocked_seq, blocked_attempts FROM consumer_tracking"
                    " WHERE consumer = 'sorted' AND key = $1", case)
                assert tuple(row) == (3, 4, None)
                consumer._track = track  # type: ignore[method-assign]
                later = _item(case, 5)
                await consumer._apply([later])
                assert cast(Msg, later.msg).answer == "nak"  # behind event 4
                for item in (first[0], later):  # redelivered, in order
                    await consumer._apply([_Item(msg=cast(Any, Msg()), seq=item.seq,
                                                 delivered=item.delivered + 1,
                                                 envelope=item.envelope)])
            finally:
                consumer._conn = None
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")] == [
            7, 4, 5]
        assert consumer.stats.retried == 0


class Refuses:
    """A projection refusing every batch of more than one event (applied one by one then),
    and each event whose position is in ``refused``."""

    def __init__(self) -> None:
        self.refused: set[int] = set()
        self.acked: list[int] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if len(events) > 1 or events[0].position in self.refused:
            raise RuntimeError("refused")
        await conn.execute("INSERT INTO effects (seq) SELECT unnest($1::bigint[])",
                           [e.position for e in events])


def _always_moved(consumer: Consumer, case: uuid.UUID
                  ) -> Callable[[asyncpg.Connection, list[_Item]], Awaitable[None]]:
    """``consumer``'s tracking write, finding ``case``'s row moved every time."""
    track = consumer._track

    async def always_moved(conn: asyncpg.Connection, items: list[_Item]) -> None:
        if any(i.envelope is not None and i.envelope.partition_key == case for i in items):
            raise _RowsMoved
        await track(conn, items)
    return always_moved


async def _block(pool: asyncpg.Pool, case: uuid.UUID) -> tuple[int, int | None, int | None]:
    """``case``'s tracking row: its sequence, its block and the block's tries."""
    row = await pool.fetchrow("SELECT seq, blocked_seq, blocked_attempts FROM consumer_tracking"
                              " WHERE consumer = 'sorted' AND key = $1", case)
    return (row["seq"], row["blocked_seq"], row["blocked_attempts"])


async def test_a_failure_counts_a_try_of_its_event_and_a_row_that_keeps_moving_does_not(
        settings: Settings) -> None:
    """Sun 20 Dec 2026: a case's event 4 fails (one try, its case blocked at it). When it
    comes back, its row keeps moving (a run of switches): its case is blocked at it again,
    and that is not a try of it. It fails once more: its second try, not its third, so it
    is dead-lettered after ``max_deliver`` failures, not sooner."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_tries", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        handler = Refuses()
        handler.refused = {4}
        consumer = _consumer(settings, pool, cast(Any, handler))
        track, always_moved = consumer._track, _always_moved(consumer, case)

        async def block() -> tuple[int, int | None, int | None]:
            return await _block(pool, case)

        event4 = _item(case, 4)

        def again(delivered: int) -> _Item:
            return _Item(msg=cast(Any, Msg()), seq=4, delivered=delivered,
                         envelope=event4.envelope)
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                await consumer._apply([event4, _item(other_case, 7)])
                assert await block() == (3, 4, 1)
                handler.refused = set()
                consumer._track = always_moved  # type: ignore[method-assign]
                await consumer._apply([again(3), _item(other_case, 8)])
                assert await block() == (3, 4, 1)  # blocked at it still, no try counted
                handler.refused = {4}
                consumer._track = track  # type: ignore[method-assign]
                await consumer._apply([again(4)])
                assert await block() == (3, 4, 2)
            finally:
                consumer._conn = None
        assert consumer.stats.retried == 2
        assert consumer.stats.dead_lettered == 0


async def test_an_event_blocked_because_its_row_kept_moving_starts_its_tries_at_none(
        settings: Settings) -> None:
    """31 Dec 2026, 23:30 in Shanghai: a case's event 4 fails twice, then is applied (its
    case's row at 4, the block lifted). Its event 5's row keeps moving (a run of switches):
    its case is blocked at 5, no try counted. Event 5 then fails once: that is its first
    try, not the third (event 4's two counted on), so it is dead-lettered after
    ``max_deliver`` failures of its own, not sooner."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_stale_tries", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        handler = Refuses()
        consumer = _consumer(settings, pool, cast(Any, handler))
        track, always_moved = consumer._track, _always_moved(consumer, case)

        async def row() -> tuple[int, int | None, int | None]:
            return await _block(pool, case)

        event4, event5 = _item(case, 4), _item(case, 5)

        def again(item: _Item, delivered: int) -> _Item:
            return _Item(msg=cast(Any, Msg()), seq=item.seq, delivered=delivered,
                         envelope=item.envelope)
        async with pool.acquire() as conn:
            consumer._conn = conn
            try:
                handler.refused = {4}
                await consumer._apply([event4, _item(other_case, 7)])
                await consumer._apply([again(event4, 3)])
                assert await row() == (3, 4, 2)
                handler.refused = set()
                await consumer._apply([again(event4, 4)])
                assert (await row())[:2] == (4, None)  # applied at its third try
                consumer._track = always_moved  # type: ignore[method-assign]
                await consumer._apply([event5, _item(other_case, 8)])
                assert await row() == (4, 5, None)  # blocked at 5, none of its tries counted
                consumer._track = track  # type: ignore[method-assign]
                handler.refused = {5}
                await consumer._apply([again(event5, 3)])
                assert await row() == (4, 5, 1)  # before: 3, event 4's two counted on
            finally:
                consumer._conn = None
        assert consumer.stats.dead_lettered == 0


async def _victim_of_a_deadlock(conn: asyncpg.Connection, other: asyncpg.Connection,
                                pool: asyncpg.Pool, waiting: str) -> Callable[[], Awaitable[bool]]:
    """``conn``'s session the one to find a deadlock with ``other``'s (the other looks too
    late: PostgreSQL rolls ``conn``'s transaction back), and a barrier: ``conn`` waits for a
    lock (``waiting``: a condition on its ``pg_stat_activity`` row)."""
    await other.execute("SET deadlock_timeout = '10min'")
    await conn.execute("SET deadlock_timeout = '3s'")
    pid = conn.get_server_pid()

    async def waits() -> bool:
        return bool(await pool.fetchval(
            f"SELECT {waiting} FROM pg_stat_activity WHERE pid = $1", pid))
    return waits


#: The two locks a projection takes in one order and another session in the other.
FIRST, SECOND = 4951, 4952


class TakesTwoLocks:
    """A projection refusing every batch of more than one event (applied one by one then);
    the first time it is given event 4 alone it takes ``FIRST``, then ``SECOND``."""

    def __init__(self) -> None:
        self.given: list[list[int]] = []
        self.acked: list[int] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.given.append([e.position for e in events])
        if len(events) > 1:
            raise RuntimeError("refused")
        if self.given.count([4]) == 1 and events[0].position == 4:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", FIRST)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SECOND)
        await conn.execute("INSERT INTO effects (seq) SELECT unnest($1::bigint[])",
                           [e.position for e in events])


async def test_an_event_rolled_back_to_break_a_deadlock_is_applied_again_no_try_counted(
        settings: Settings) -> None:
    """Sun 20 Dec 2026: a batch applied one event at a time (the handler refused it whole);
    its case's event 4 takes one lock, then waits for another that a session (the rebuild's
    switch) holds, and that session then asks for the first. PostgreSQL rolls the event's
    transaction back to break the deadlock: not the event's fault, as a statement that ran
    out of time is not. It is applied again at once, no try counted; before, each such
    deadlock counted one towards ``max_deliver``, and enough of them dead-lettered it."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_deadlock", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        handler = TakesTwoLocks()
        consumer = _consumer(settings, pool, cast(Any, handler))
        items = [_item(case, 4), _item(other_case, 7)]
        async with pool.acquire() as other, pool.acquire() as conn:
            waits_on_the_second = await _victim_of_a_deadlock(conn, other, pool,
                                                              "wait_event = 'advisory'")
            await other.execute("SELECT pg_advisory_lock($1)", SECOND)
            consumer._conn = conn
            batch = asyncio.create_task(consumer._apply(items))
            try:
                await wait_until(waits_on_the_second, timeout=10,
                                 what="event 4 holds the first lock and waits for the second")
                # granted once PostgreSQL rolled the event's transaction back
                await other.execute("SELECT pg_advisory_lock($1)", FIRST)
            finally:
                await other.execute("SELECT pg_advisory_unlock_all()")
                await batch
                consumer._conn = None
        assert handler.given == [[4, 7], [4], [4], [7]]
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")] == [
            4, 7]
        row = await pool.fetchrow("SELECT seq, blocked_seq, blocked_attempts FROM"
                                  " consumer_tracking WHERE consumer = 'sorted' AND key = $1",
                                  case)
        assert tuple(row) == (4, None, None)
        assert [cast(Msg, i.msg).answer for i in items] == ["ack", "ack"]
        assert consumer.stats.retried == 0


async def test_a_batch_whose_tracking_write_is_rolled_back_by_a_deadlock_is_sorted_again(
        settings: Settings) -> None:
    """31 Dec 2026, 23:30 in Shanghai: a batch of two cases' new events writes its tracking
    rows first; it has taken the first case's row and waits for the second's, which the
    rebuild's switch holds (settling the live consumer's rows, in the table's order) while it
    asks for the first. PostgreSQL rolls the batch back to break the deadlock: its rows are
    read again and it is applied as a batch not all fresh, not raised out of the consumer
    (which then handed back everything it held and started again)."""
    first, second = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_first_deadlock", ORDERED_DDL) as pool:
        await _tracked_at(pool, {first: 3})
        await _tracked_at(pool, {second: 3})
        consumer = _consumer(settings, pool, handler := Effects())
        items = [_item(first, 4), _item(second, 5)]
        row = "UPDATE consumer_tracking SET seq = seq WHERE consumer = 'sorted' AND key = $1"
        async with pool.acquire() as switch, pool.acquire() as conn:
            waits_on_a_row = await _victim_of_a_deadlock(conn, switch, pool,
                                                         "wait_event_type = 'Lock'")
            settling = switch.transaction()
            await settling.start()
            await switch.execute(row, second)
            consumer._conn = conn
            batch = asyncio.create_task(consumer._apply(items))
            try:
                await wait_until(waits_on_a_row, timeout=10,
                                 what="the batch holds the first row and waits for the second")
                await switch.execute(row, first)  # granted once the batch is rolled back
                await settling.commit()
            finally:
                consumer._conn = None
                await batch  # before: DeadlockDetectedError
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")] == [
            4, 5]
        assert handler.given == [[4, 5]]  # as a batch, once, after its rows were read again
        assert (await _row(pool, first), await _row(pool, second)) == (4, 5)
        assert [cast(Msg, i.msg).answer for i in items] == ["ack", "ack"]


#: The gate the next projection waits at before its effect (shared; the test holds it
#: exclusively while the row is not yet taken by the transaction that moves it).
GATE = 4950


class Gated:
    """A projection that waits at ``GATE`` before its effect."""

    def __init__(self) -> None:
        self.given: list[list[int]] = []
        self.acked: list[int] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.given.append([e.position for e in events])
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", GATE)
        await conn.execute("INSERT INTO effects (seq) SELECT unnest($1::bigint[])",
                           [e.position for e in events])


async def test_a_batch_whose_row_keeps_moving_is_applied_one_event_at_a_time(
        settings: Settings) -> None:
    """31 Dec 2026, 23:30 in Shanghai: a batch holds a case's event 3 again (not all new,
    so it is sorted by its rows) with its event 4 and another case's event 7. Each time the
    batch writes its tracking, another transaction has just put the case's row in place
    again (the switch's delete and insert, at the same sequence): the batch rolls back, and
    sorted again, 4 is still new. It is not sorted and applied for ever: after
    ``MOVED_AGAIN`` moves the events are applied one at a time, each once."""
    case, other_case = uuid.uuid4(), uuid.uuid4()
    async with schema_pool(settings, "tracking_resorted", ORDERED_DDL) as pool:
        await _tracked_at(pool, {case: 3})
        handler = Gated()
        consumer = _consumer(settings, pool, cast(Any, handler))
        items = [_item(case, 3), _item(case, 4), _item(other_case, 7)]
        async with pool.acquire() as gate, pool.acquire() as mover, pool.acquire() as conn:
            await gate.execute("SELECT pg_advisory_lock($1)", GATE)
            consumer._conn = conn
            pid = conn.get_server_pid()

            async def waits_on(advisory: bool) -> bool:
                return bool(await pool.fetchval(
                    "SELECT wait_event_type = 'Lock' AND (wait_event = 'advisory') = $2"
                    " FROM pg_stat_activity WHERE pid = $1", pid, advisory))
            async def gate_waits(gate_pid: int) -> bool:
                return bool(await pool.fetchval(
                    "SELECT wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $1",
                    gate_pid))
            batch = asyncio.create_task(consumer._apply(items))
            moves = 0
            try:
                while moves < MOVED_AGAIN + 2:  # the old loop's next round would apply it
                    await wait_until(lambda: waits_on(advisory=True), timeout=10,
                                     what="the projection waits at the gate")
                    if len(handler.given[-1]) == 1:
                        break  # one event at a time now
                    moving = mover.transaction()
                    await moving.start()
                    for statement in MOVES["replaced"]:
                        await mover.execute(statement.replace("5", "3"), case)
                    await gate.execute("SELECT pg_advisory_unlock($1)", GATE)
                    await wait_until(lambda: waits_on(advisory=False), timeout=10,
                                     what="the tracking write waits on the row")
                    # The gate asked back before the move commits: granted when the batch
                    # rolls back, before its next round asks for it.
                    closing = asyncio.create_task(
                        gate.execute("SELECT pg_advisory_lock($1)", GATE))
                    await wait_until(lambda: gate_waits(gate.get_server_pid()), timeout=10,
                                     what="the gate is asked back")
                    await moving.commit()
                    await closing
                    moves += 1
            finally:
                await gate.execute("SELECT pg_advisory_unlock_all()")
                await batch
                consumer._conn = None
        assert moves == MOVED_AGAIN
        assert handler.given == [[4, 7]] * MOVED_AGAIN + [[4], [7]]
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY n")] == [
            4, 7]
        assert await _row(pool, case) == 4
        assert [cast(Msg, i.msg).answer for i in items] == ["ack", "ack", "ack"]
