"""A batch applied one event at a time after ``isolate_after`` batches in a row ran out of
time, to find the event whose handling does (``Consumer._isolate``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from shared.bus.consumer.dead_letters import _timed_out_alone
from shared.bus.consumer.items import (
    _Item,
)
from shared.bus.store_timeouts import ENDED_BY_SERVER, STORE_TIMED_OUT
from shared.kernel.errors import StatementTimedOut

log = structlog.get_logger("sixstep.consumer")

ISOLATION_GIVES_UP = 3
"""How many events in a row may run out of time, none applied, before a pass that applies a
batch one event at a time (``Consumer._isolate``) stops: the store is at fault (a lock on a
table every event writes, a backend that hangs), not those events; each costs a statement
timeout."""


class Isolation:
    """Isolating an event that runs out of time (a base of ``Consumer``)."""

    async def _isolate(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """``isolate_after`` batches in a row ran out of time: apply this one one event at a
        time, each in its own transaction, to find the event whose handling does. One that
        runs out of time is set aside, its case's later events of the batch waiting behind
        it (held); once another event was applied, the store answers: those set aside are
        tried once more (the lock they waited for may have gone during the pass: dead-lettered
        then, nothing was wrong with them) and dead-lettered when they run out of time again
        (``_dead_letter``), then the events that waited behind them are
        applied, in order (``_apply_one_by_one``), as after any dead letter. Handed back
        instead, they came back after the case's next events (read ahead, no longer held
        back once the dead letter lifted the case's hold) were applied, and were taken for
        duplicates: acked, never applied. None applied while ``ISOLATION_GIVES_UP`` ran out
        of time in a row: the store's fault, the last timeout is raised (the batch goes
        back, nothing counted) and the next pass waits for ``isolate_after`` more timed-out
        batches. The pass ends with none applied before that (nothing else to try): each
        set aside counts a try (``_nothing_else_to_apply``), the batch goes back, and the
        next pass comes as after the first."""
        log.warning("consumer.isolating", consumer=self.name, size=len(items),
                    timed_out_batches=self._timeouts_in_a_row)
        set_aside: list[tuple[_Item, BaseException]] = []
        waiting_keys: set[UUID] = set()
        behind: list[_Item] = []  # held behind one set aside: applied after its letter
        applied = 0
        in_a_row = 0
        for index, item in enumerate(items):
            assert item.envelope is not None
            key = item.envelope.partition_key
            if key in waiting_keys:  # the case's order: behind the one set aside
                await self._hold(conn, [item])
                behind.append(item)
                continue
            try:
                await self._apply_alone(conn, item)
            except STORE_TIMED_OUT as exc:
                in_a_row += 1
                if not applied and in_a_row >= ISOLATION_GIVES_UP:
                    self._timeouts_in_a_row = 0  # the next pass after as many again
                    raise
                set_aside.append((item, exc))
                waiting_keys.add(key)
                await self._hold(conn, [item])
                continue
            except Exception:
                # Not a timeout: the ordinary path (tries with back-off, then the dead
                # letters) takes this one and the rest of the pass, in order; those of a
                # case set aside wait for its letter.
                rest = items[index:]
                waits = [i for i in rest
                         if i.envelope is not None and i.envelope.partition_key in waiting_keys]
                if waits:
                    await self._hold(conn, waits)
                    behind += waits
                before = self.stats.applied
                await self._apply_one_by_one(
                    conn, [i for i in rest if i.envelope is not None
                           and i.envelope.partition_key not in waiting_keys])
                applied += self.stats.applied - before
                break
            in_a_row = 0
            applied += 1
            await item.msg.ack()
            self.stats.applied += 1
        if set_aside and not applied:
            self._timeouts_in_a_row = 0  # the next pass after as many again
            if not await self._nothing_else_to_apply(conn, set_aside, behind):
                raise set_aside[-1][1]
            return
        tries = self._timeouts_in_a_row + 2  # the batches it took back, and its own two
        for item, exc in set_aside:
            # Once more, now that the store answers (others were applied since): the lock it
            # waited for may have gone meanwhile (a session's transaction ended during the
            # pass), and a letter would have asked a replay of an event nothing was wrong
            # with, its case's later events applied before it.
            assert item.envelope is not None
            key = item.envelope.partition_key
            try:
                await self._apply_alone(conn, item)
            except STORE_TIMED_OUT as again:
                exc = again  # the reason names the last
            except Exception:  # the ordinary path: tries with back-off, its case behind it
                mine = [i for i in behind if i.envelope and i.envelope.partition_key == key]
                behind = [i for i in behind if not (i.envelope and i.envelope.partition_key == key)]
                await self._apply_one_by_one(conn, [item, *mine])
                continue
            else:
                await item.msg.ack()
                self.stats.applied += 1
                continue
            reason = _timed_out_alone(exc, f"on its own {tries} times while the rest of "
                                           "the log was applied")
            item.error = reason
            await self._dead_letter(item, reason, conn=conn, tries=tries)
        if behind:  # their cases go on now, in order, before any later event of theirs
            await self._apply_one_by_one(conn, behind)

    async def _nothing_else_to_apply(self, conn: asyncpg.Connection,
                                     set_aside: list[tuple[_Item, BaseException]],
                                     behind: list[_Item]) -> bool:
        """A pass of ``_isolate`` applied nothing, and fewer than ``ISOLATION_GIVES_UP`` events
        ran out of time: those set aside were all it had to try besides the events behind
        them (the last on the stream, a quiet night). Nothing else tells the store's fault
        from theirs then, and before, such an event was never dead-lettered: it took each
        pass back, for as long as no other case's event came, the consumer timing out and
        /ready degraded meanwhile. Now each such pass counts a try for each (in the tracking
        row: the store that answers this write is not the one at fault), and one tried
        ``max_deliver`` times is dead-lettered and its case's events behind it applied, as
        after any dead letter. Only when PostgreSQL ended its statement (``ENDED_BY_SERVER``,
        a command's ``StatementTimedOut``): a backend that answered nothing, an event store
        that took no command, counts nothing. Whether all of them were dead-lettered (else
        the batch goes back)."""
        if not all(isinstance(exc, (*ENDED_BY_SERVER, StatementTimedOut))
                   for _, exc in set_aside):
            return False
        left = False
        for item, exc in set_aside:
            assert item.envelope is not None
            key = item.envelope.partition_key
            tries = await self._failed(conn, key, item.seq)
            if tries < self.max_deliver:
                left = True
                log.warning("consumer.timed_out_alone", consumer=self.name, seq=item.seq,
                            tries=tries, max_deliver=self.max_deliver,
                            error=f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            reason = _timed_out_alone(exc, f"on its own in {tries} passes with nothing else "
                                           "to apply")
            item.error = reason
            await self._dead_letter(item, reason, conn=conn, tries=tries)
            mine = [i for i in behind if i.envelope and i.envelope.partition_key == key]
            behind = [i for i in behind if not (i.envelope and i.envelope.partition_key == key)]
            if mine:  # its case goes on, in order
                await self._apply_one_by_one(conn, mine)
        return not left

