"""A batch applied one event at a time (the handler failed it, or its rows keep moving): a
failing event retried with back-off, its case's later events behind it."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from shared import tracing
from shared.bus.consumer.handlers import PermanentError
from shared.bus.consumer.items import (
    _Item,
    _RowsMoved,
)
from shared.bus.store_timeouts import STORE_TIMED_OUT
from shared.contracts.decoding import EnvelopeHead

log = structlog.get_logger("sixstep.consumer")

MOVED_AGAIN = 5
"""How many times in a row a sorted batch may find a row moved by another transaction (the
rebuild's switch) and be sorted and applied again before it is applied one event at a time
(``Consumer._apply``); and an event applied alone, before its case is blocked at it and it
is handed back (``Consumer._applied_alone_again``), or rolled back by PostgreSQL (a
deadlock) before that counts a try."""


#: What PostgreSQL raises when it rolls a transaction back to break a deadlock, or for a
#: serialization conflict: try again, the transaction's own content is not at fault (a
#: deferred constraint's 40002, also a TransactionRollbackError, is).
ROLLED_BACK: tuple[type[Exception], ...] = (asyncpg.DeadlockDetectedError,
                                             asyncpg.SerializationError)


class OneByOne:
    """One event at a time (a base of ``Consumer``)."""

    async def _apply_one_by_one(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """``items`` one at a time, each in its own transaction: a failing event is retried
        with back-off (its case's later events wait behind it), dead-lettered after
        ``max_deliver`` tries."""
        failed_keys: set[UUID] = set()
        for item in items:
            assert item.envelope is not None
            key = item.envelope.partition_key
            if key in failed_keys:  # keep the aggregate's order: wait behind the failure
                await self._hold(conn, [item])
                await item.msg.nak(delay=self.backoff[0])
                continue
            try:
                with structlog.contextvars.bound_contextvars(
                        correlation_id=item.envelope.correlation_id,
                        event_id=str(item.envelope.event_id)):
                    moved = await self._applied_alone_again(conn, item)
            except STORE_TIMED_OUT:
                raise  # not this event's fault: no try counted (``_timed_out``)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:500]}"
                permanent = isinstance(exc, PermanentError)
                tries = 1 if permanent else await self._failed(conn, key, item.seq)
                if permanent or tries >= self.max_deliver:
                    item.error = reason
                    await self._dead_letter(item, reason, conn=conn, tries=tries)
                    continue
                failed_keys.add(key)
                await self._hold(conn, [item])
                delay = self.backoff[min(tries, len(self.backoff)) - 1]
                self.stats.retried += 1
                log.warning("consumer.retry", consumer=self.name, seq=item.seq,
                            delivered=item.delivered, tries=tries, delay=delay, error=reason,
                            correlation_id=item.envelope.correlation_id,
                            event_id=str(item.envelope.event_id))
                await item.msg.nak(delay=delay)
                continue
            if moved == "duplicate":  # its row went past it meanwhile: applied elsewhere
                self.stats.duplicates += 1
                await item.msg.ack()
                continue
            if moved == "behind":
                # Behind a block of its case (a failed event's, or the one put when its row
                # kept moving): handed back, its case's later events with it, sorted again
                # when it comes back. No try counted.
                failed_keys.add(key)
                await self._hold(conn, [item])
                await item.msg.nak(delay=self.backoff[0])
                continue
            await item.msg.ack()
            self.stats.applied += 1

    async def _applied_alone_again(self, conn: asyncpg.Connection, item: _Item) -> str | None:
        """``item`` applied alone (``_apply_alone``), and again for as long as another
        transaction moved its row meanwhile (``_RowsMoved``) and the row, read again, still
        shows it new: None once applied; "duplicate" when the row went past it (applied
        meanwhile); "behind" when the row is blocked at an earlier event of its case.

        Before, an event whose row moved and that was still new was handed back with its
        row unblocked (the rebuild's switch replaces every row: one waited on, then found
        replaced). Its case's next event, read ahead in the next batch, found nothing to
        wait behind and was applied first; the row went past the event handed back, which
        came back a duplicate and was never applied. After ``MOVED_AGAIN`` moves in a row
        its case is blocked at it (no try counted) before it is handed back: its case's
        later events wait behind it whatever batch they come in."""
        assert item.envelope is not None
        key = item.envelope.partition_key
        rolled_back: Exception | None = None
        for _ in range(MOVED_AGAIN):
            try:
                await self._apply_alone(conn, item)
                return None
            except ROLLED_BACK as exc:
                # PostgreSQL rolled it back to break a deadlock (the rebuild's switch holds
                # the tables and waits for the tracking rows) or a serialization conflict:
                # not the event's fault, as a statement that ran out of time is not. Again
                # at once; only ``MOVED_AGAIN`` in a row count a try (raised). Before, each
                # counted one, and enough of them dead-lettered an event nothing was wrong with.
                rolled_back = exc
                log.warning("consumer.rolled_back", consumer=self.name, seq=item.seq,
                            error=f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            except _RowsMoved:
                rolled_back = None
                seq, blocked = (await self._tracking(conn, [item])).get(key, (0, None))
                if item.seq <= seq:
                    return "duplicate"
                if blocked is not None and item.seq > blocked:
                    return "behind"
        if rolled_back is not None:
            raise rolled_back
        log.warning("consumer.rows_keep_moving", consumer=self.name, seq=item.seq,
                    key=str(key), times=MOVED_AGAIN)
        await self._block(conn, key, item.seq, count_try=False)
        return "behind"

    async def _apply_alone(self, conn: asyncpg.Connection, item: _Item) -> None:
        """``item`` in a transaction of its own, with its tracking row (only the row for an
        event of a type the handler ignores: its head is all that was decoded)."""
        assert item.envelope is not None
        async with conn.transaction():
            if type(item.envelope) is not EnvelopeHead:
                with tracing.applying(f"apply {self.name}", self._traced([item])):
                    await self.handler.apply(conn, [item.envelope])
            await self._track(conn, [item])

