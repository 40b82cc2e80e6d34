"""The rules send their commands to the group commit (the event store's own transaction)
while the batch's transaction waits: a batch rolled back after they were sent, because its
tracking write found a case's row moved by another transaction (``_RowsMoved``: the rebuild's
switch replacing the rows), is sorted again and applied again, and sends them again. Their
ids come from the events (``follow_up_id_for``, ``help_task_id_for``, ...), so the second
round records nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, cast

import pytest

from shared.bus.consumer import Consumer, Meanwhile, _Item
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_tracking_after_effects import Msg
from tests.followup.story import center_day
from tests.followup.test_rules_one_round import DAYS, _a_morning_at_the_counter, _opened
from tests.support import wait_until

NAME = "followup-rules-moved"


class SwitchedOnce:
    """The rules, whose first batch's tracking write meets the rebuild's switch: every row of
    the consumer deleted and written again as it was, committed while the write waits on it
    (after the batch's commands were sent)."""

    waits = True

    def __init__(self, rules: Any, pool: Any, store: Any) -> None:
        self.rules, self.pool, self.store = rules, pool, store
        self.applied = 0
        #: The store's last notification before the first try, then before and after the
        #: second.
        self.stored: list[int | None] = []

    async def apply(self, conn: Any, events: Any, meanwhile: Meanwhile | None = None) -> None:
        self.applied += 1
        assert meanwhile is not None
        if self.applied > 1:
            self.stored.append(self.store.recorder.max_notification_id())
            await self.rules.apply(conn, events, meanwhile)
            self.stored.append(self.store.recorder.max_notification_id())
            return
        self.stored.append(self.store.recorder.max_notification_id())
        pid = conn.get_server_pid()

        async def switched_then() -> None:
            async with self.pool.acquire() as switch, switch.transaction():
                rows = await switch.fetch(
                    "DELETE FROM consumer_tracking WHERE consumer = $1 RETURNING key, seq", NAME)
                await switch.executemany(
                    "INSERT INTO consumer_tracking (consumer, key, seq) VALUES ($1, $2, $3)",
                    [(NAME, r["key"], r["seq"]) for r in rows])
                switching.set()

                async def waits_on_it() -> bool:
                    return bool(await self.pool.fetchval(
                        "SELECT wait_event_type = 'Lock' AND wait_event = 'transactionid'"
                        " FROM pg_stat_activity WHERE pid = $1", pid))
                await wait_until(waits_on_it, timeout=10,
                                 what="the batch's tracking write waits on the switch")

        switching = asyncio.Event()
        switch = asyncio.create_task(switched_then())

        async def tracked_during_the_switch() -> None:
            await switching.wait()
            await meanwhile()
        try:
            await self.rules.apply(conn, events, tracked_during_the_switch)
        finally:
            await switch


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_the_rules_batch_rolled_back_by_a_switch_and_applied_again_records_nothing_twice(
        settings: Settings, day: datetime) -> None:
    async with center_day(settings, day, with_intake=False) as center:
        pool = center.app.state.pool
        store = center.app.state.followups.committer.app
        handler = SwitchedOnce(center.app.state.runtime.consumers["followup-rules"].handler,
                               pool, store)
        consumer = Consumer(settings=settings, nc=cast(Any, None), pool=pool, name=NAME,
                            handler=handler, filter_subjects=[])

        async def ack(msgs: list[Any]) -> None:
            for msg in msgs:
                await msg.ack()
        consumer._ack = ack  # type: ignore[method-assign]
        case_id, done_case = uuid.uuid4(), uuid.uuid4()
        events, made = _a_morning_at_the_counter(case_id, day)
        # The case's row at 10 (its events at 11-15 new); another case's event at 20, its
        # ack lost: a duplicate, so the batch is sorted by its rows, tracked after its effects.
        await pool.execute("INSERT INTO consumer_tracking (consumer, key, seq) VALUES"
                           " ($1, $2, 10), ($1, $3, 20)", NAME, case_id, done_case)
        envelopes: list[Envelope] = [*events, _opened(done_case, uuid.uuid4(), day)]
        items = [_Item(msg=cast(Any, Msg()), seq=s, delivered=1, envelope=e)
                 for s, e in zip([11, 12, 13, 14, 15, 20], envelopes, strict=True)]
        await consumer._apply(items)
        assert handler.applied == 2  # rolled back once, applied again
        before, first_try, second_try = handler.stored
        # The first try's commands were stored (sent before the rollback); the second's
        # found each of them there and recorded nothing.
        assert (first_try or 0) > (before or 0) and second_try == first_try, handler.stored
        versions = {what: store.repository.get(i).version for what, i in made.items()}
        assert versions == {"help task": 1, "reminder": 2, "obligation": 1}, versions
        assert await pool.fetchval("SELECT seq FROM consumer_tracking WHERE consumer = $1"
                                   " AND key = $2", NAME, case_id) == 15
        assert [cast(Msg, i.msg).answer for i in items] == ["ack"] * 6
