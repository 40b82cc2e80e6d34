"""A batch's first statement (``TRACK_FIRST``) decides whether every event of it is new from
what the tracking rows hold, and writes them. Another transaction may hold a row the batch
wants, uncommitted (the rebuild's switch settling the live consumer's rows, a replica losing
the lead mid-batch, an operator's hold or let-go), and commit while the statement waits on
it: the batch must see what that transaction wrote, not the rows as they were when the
statement began. Otherwise an event already applied is applied again and the case's row
moves back to it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import pytest

from shared.bus.consumer import TRACKING_DDL, Consumer, _Item
from shared.contracts.decoding import EnvelopeHead
from shared.settings import Settings
from tests.support import schema_pool, wait_until


class Nothing:
    """A handler given nothing: the batch's events are heads it ignores (only tracked)."""

    ignores = frozenset({"RequestHeard"})

    async def apply(self, conn: Any, events: Any) -> None:
        raise AssertionError("the handler is given no event of this batch")


#: What the other transaction does to the case's row: moves it from 3 to 5, (the case new
#: to the consumer) writes it at 5, or deletes the row at 3 and writes the rebuilt one at 5,
#: as the rebuild's switch hands the rebuilt rows over (``rebuild.HANDED_OVER``): the
#: UPDATE finds its row gone, the INSERT the new one.
MOVES = {
    "moved": ("INSERT INTO consumer_tracking (consumer, key, seq) VALUES ('racing', $1, 3)",
              ["UPDATE consumer_tracking SET seq = 5 WHERE consumer = 'racing' AND key = $1"]),
    "added": ("SELECT $1::uuid",
              ["INSERT INTO consumer_tracking (consumer, key, seq) VALUES ('racing', $1, 5)"]),
    "replaced": ("INSERT INTO consumer_tracking (consumer, key, seq) VALUES ('racing', $1, 3)",
                 ["DELETE FROM consumer_tracking WHERE consumer = 'racing' AND key = $1",
                  "INSERT INTO consumer_tracking (consumer, key, seq) VALUES ('racing', $1, 5)"]),
}


@pytest.mark.parametrize("move", sorted(MOVES))
async def test_a_batch_waiting_on_a_row_another_transaction_moves_on_sees_its_move(
        settings: Settings, move: str) -> None:
    case = uuid.uuid4()
    before, other_writes = MOVES[move]
    async with schema_pool(settings, "track_first_race", TRACKING_DDL) as pool:
        await pool.execute(before, case)
        consumer = Consumer(settings=settings, nc=cast(Any, None), pool=pool, name="racing",
                            handler=Nothing(), filter_subjects=[])
        acked: list[object] = []

        async def ack(msgs: list[object]) -> None:
            acked.extend(msgs)
        consumer._ack = ack  # type: ignore[method-assign]
        # Event 4 of the case, redelivered: the other transaction applied it (and 5).
        head = EnvelopeHead(event_id=uuid.uuid4(), type="RequestHeard", version=1,
                            service="intake", position=4, aggregate_id=case, case_id=case)
        items = [_Item(msg=cast(Any, object()), seq=4, delivered=2, envelope=head)]
        async with pool.acquire() as other, pool.acquire() as conn:
            moving = other.transaction()
            await moving.start()
            for other_write in other_writes:
                await other.execute(other_write, case)
            batch = asyncio.create_task(consumer._apply_if_all_fresh(conn, items, None))
            pid = conn.get_server_pid()

            async def waits_on_the_row() -> bool:
                return bool(await pool.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                    pid))
            await wait_until(waits_on_the_row, timeout=10, what="the batch waits on the row")
            await moving.commit()
            tracked = await batch
        # Not taken for new: the batch is sorted by the rows as the other left them.
        assert tracked is not None and tracked[case] == (5, None)
        assert acked == []
        assert await pool.fetchval("SELECT seq FROM consumer_tracking WHERE consumer ="
                                   " 'racing' AND key = $1", case) == 5


def _head(case: uuid.UUID, seq: int) -> _Item:
    head = EnvelopeHead(event_id=uuid.uuid4(), type="RequestHeard", version=1,
                        service="intake", position=seq, aggregate_id=case, case_id=case)
    return _Item(msg=cast(Any, object()), seq=seq, delivered=1, envelope=head)


async def test_a_redelivered_event_after_a_new_one_of_its_case_is_not_applied_again(
        settings: Settings) -> None:
    """A batch is in delivery order: event 7 of a case, new, then event 4, redelivered (its
    ack was lost), the row at 6. Not all fresh: rolled back, sorted by the row."""
    case = uuid.uuid4()
    async with schema_pool(settings, "track_first_order", TRACKING_DDL) as pool:
        await pool.execute("INSERT INTO consumer_tracking (consumer, key, seq) VALUES"
                           " ('ordered', $1, 6)", case)
        consumer = Consumer(settings=settings, nc=cast(Any, None), pool=pool, name="ordered",
                            handler=Nothing(), filter_subjects=[])
        async with pool.acquire() as conn:
            tracked = await consumer._apply_if_all_fresh(
                conn, [_head(case, 7), _head(case, 4)], None)
        assert tracked == {case: (6, None)}
        assert await pool.fetchval("SELECT seq FROM consumer_tracking WHERE consumer ="
                                   " 'ordered' AND key = $1", case) == 6
