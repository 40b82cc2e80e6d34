"""A batch applied in one transaction: the usual one tracked first (``TRACK_FIRST``), one not
all fresh sorted by its tracking rows (duplicates, waiting, fresh); a ``Merging`` handler's
usual batch takes the next one read ahead into its transaction while it waits (``_more``)."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import UUID

import asyncpg
import structlog
from nats.aio.msg import Msg

from shared import tracing
from shared.bus.consumer.handlers import Merging, More, Preparing, Waiting
from shared.bus.consumer.items import (
    _TRACKED_ALREADY,
    _handled,
    _Item,
    _NotAllFresh,
    _Once,
    _Prepared,
    _RowsMoved,
    _same,
    _seq_of,
)
from shared.bus.consumer.one_by_one import MOVED_AGAIN, ROLLED_BACK
from shared.bus.pulling import ack_each
from shared.bus.store_timeouts import STORE_TIMED_OUT
from shared.contracts.decoding import EnvelopeHead
from shared.kernel.tasks import cancel_and_wait

log = structlog.get_logger("sixstep.consumer")


class Batches:
    """A batch in one transaction (a base of ``Consumer``)."""

    async def _apply(self, items: list[_Item], prepared: _Prepared | None = None) -> None:
        async with self._connection() as conn:
            self._analyze_when_grown()
            if self._timeouts_in_a_row < self.isolate_after:
                # The usual batch: every event fresh. Its tracking write goes first, in the
                # batch's transaction, made only where the rows show the events new
                # (``_written`` first): the tracking read, its own statement and PostgreSQL
                # transaction before, is needed only by a batch that is not.
                tracked = await self._apply_if_all_fresh(conn, items, prepared)
                if tracked is None:
                    return
            else:
                tracked = await self._tracking(conn, items)
            moves = 0
            while (fresh := await self._sorted(conn, items, tracked)) and (
                    self._timeouts_in_a_row < self.isolate_after):
                applied = await self._applied(conn, fresh, prepared)
                if applied is not None:
                    if not applied:
                        return
                    break
                moves += 1
                if moves >= MOVED_AGAIN:
                    # Its rows keep moving (a run of switches): one event at a time, each
                    # bounded as well (``_applied_alone_again``). Before, the batch was sorted
                    # and applied again for as long as they moved, for ever.
                    log.warning("consumer.rows_keep_moving", consumer=self.name,
                                size=len(fresh), times=moves)
                    await self._apply_one_by_one(conn, fresh)
                    return
                # A row moved after the read (``_RowsMoved``): what is left, sorted again
                # by the rows as they are now, locked by nothing of this batch.
                items, tracked = fresh, await self._tracking(conn, fresh)
            else:
                if fresh:
                    await self._isolate(conn, fresh)
                return
        await self._ack([item.msg for item in fresh])
        self.stats.applied += len(fresh)

    async def _sorted(self, conn: asyncpg.Connection, items: list[_Item],
                      tracked: dict[UUID, tuple[int, int | None]]) -> list[_Item]:
        """``items`` sorted by their tracking rows ``tracked``: duplicates acked, those
        waiting behind a retried event of their case held and handed back (a block whose
        event left the stream lifted: ``_released``); the fresh ones returned."""
        fresh: list[_Item] = []
        waiting: list[_Item] = []
        for item in items:
            assert item.envelope is not None
            seq, blocked = tracked.get(item.envelope.partition_key, (0, None))
            if item.seq <= seq:
                self.stats.duplicates += 1
                await item.msg.ack()
            elif blocked is not None and item.seq > blocked:
                waiting.append(item)
            else:
                fresh.append(item)
        if waiting and (gone := await self._released(conn, waiting, tracked)):
            # Its block's event left the stream: the case's events go on, in order.
            now_fresh = {id(i) for i in fresh} | {
                id(i) for i in waiting if i.envelope and i.envelope.partition_key in gone}
            fresh = [i for i in items if id(i) in now_fresh]
            waiting = [i for i in waiting if id(i) not in now_fresh]
        if waiting:
            await self._hold(conn, waiting)
        for item in waiting:
            await item.msg.nak(delay=self.backoff[0])
        return fresh

    async def _apply_if_all_fresh(self, conn: asyncpg.Connection, items: list[_Item],
                                  prepared: _Prepared | None
                                  ) -> dict[UUID, tuple[int, int | None]] | None:
        """``items`` applied in one transaction whose first statement is their tracking write
        (``_written``: ``TRACK_FIRST``), when the rows it locked show every one fresh (not
        applied yet, none waiting behind a retried event of its case): then committed and
        acked (or, when the handler failed, applied one by one), and None returned.
        Otherwise the transaction is rolled back, nothing of it done, and the rows are read
        and returned, for the batch to be sorted as it always was (duplicates, waiting,
        holds, ``_released``).

        Before, each batch read its tracking rows in a statement of its own (a PostgreSQL
        transaction of its own, outside the batch's) and wrote them in another at its end:
        at a low rate, with a batch of one event, two of its five round trips."""
        written = committed = False
        try:
            async with conn.transaction():
                if not await self._written(conn, items):
                    raise _NotAllFresh
                written = True
                await self._handle(conn, items, prepared, _TRACKED_ALREADY,
                                   lambda until: self._more(conn, until))
            committed = True
        except _NotAllFresh:
            # Rolled back: the rows read as they are now, after whatever the statement
            # waited on (a read of its own, as every batch made before TRACK_FIRST).
            return await self._tracking(conn, items)
        except STORE_TIMED_OUT:
            raise  # not the events' fault: the whole batch goes back (``_timed_out``)
        except ROLLED_BACK:
            if written:
                raise  # the handler's: applied one by one (each tried again at once there)
            # The tracking write itself, rolled back to break a deadlock with the rebuild's
            # switch (it settles the rows in the table's order, the batch in its own): the
            # rows read as they are now, the batch sorted as one not all fresh. Before, it
            # was raised out of the consumer, which handed back all it held and started again.
            return await self._tracking(conn, items)
        except Exception as exc:
            if not written:
                raise  # the tracking statement itself: as the read before it, not the events'
            self._batch_failed(exc, items)
            self._unmerge()
            await self._apply_one_by_one(conn, items)
            return None
        finally:
            if not committed:  # rolled back with it: the merged batch is the next again
                self._unmerge()
        merged, self._merged = self._merged, []
        await self._ack([item.msg for item in items] + [item.msg for item in merged])
        self.stats.applied += len(items) + len(merged)
        return None

    async def _more(self, conn: asyncpg.Connection, until: asyncio.Future[Any]) -> None:
        """The next batch merged into the one in hand (``Merging``): the messages read ahead
        and decoded by then, as soon as any is, unless ``until`` (what the handler waits on)
        is done first; taken out of the read-ahead (``_ahead``) in stream order, tracked
        first and applied in a savepoint of the batch's transaction, on its connection. Once
        a transaction, and only while the consumer's loop reads ahead. Events not all new
        (a redelivered copy of one in hand, a case blocked) or a handler's failure: the
        savepoint rolls back and the messages go back to the front of the read-ahead, to be
        the next batch as they would have been. Merged, they are acked with the batch after
        its commit (``_apply_if_all_fresh``), or handed back with it (``_unmerge``)."""
        ahead = self._ahead
        if ahead is None or self._merging:
            return
        self._merging = True
        while not (taken := self._decoded_prefix(ahead)):
            if until.done():
                return
            self._ahead_grew.clear()
            grew = asyncio.ensure_future(self._ahead_grew.wait())
            try:
                await asyncio.wait((grew, until), return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(grew)
        del ahead[:len(taken)]
        items = self._once_each(sorted([self._decoded(m) for m in taken], key=_seq_of))
        try:
            if any(item.envelope is None for item in items):
                raise _NotAllFresh  # a dead letter: for the next batch's own path
            async with conn.transaction():  # a savepoint
                if not await self._written(conn, items):
                    raise _NotAllFresh
                if events := _handled(items):
                    if tracing.enabled():
                        with tracing.consuming(f"consume {self.name}", [
                                i for i in items if type(i.envelope) is not EnvelopeHead]):
                            await self.handler.apply(conn, events)
                    else:
                        await self.handler.apply(conn, events)
        except BaseException as exc:
            ahead[:0] = taken  # the next batch, as it was
            if not isinstance(exc, Exception):
                raise
            if not isinstance(exc, _NotAllFresh):
                self.stats.merges_refused += 1
                log.info("consumer.merge_refused", consumer=self.name, size=len(items),
                         error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if isinstance(exc, STORE_TIMED_OUT):
                # A batch given back for its time, as one applied alone would be: counted
                # (``sixstep_consumer_store_timeouts_total``), said, and on /ready until a
                # batch goes through again (``_timed_out``). Only said at info level before:
                # a lock held all evening on the merged rows showed nowhere an alert reads.
                self._timed_out(exc)
            return
        self._merged = items
        self.stats.merged += 1

    def _decoded_prefix(self, ahead: list[Msg]) -> list[Msg]:
        """The messages at the front of the read-ahead already decoded, a batch at most
        (the rest is still being decoded: the next batch's)."""
        taken: list[Msg] = []
        for msg in ahead:
            if len(taken) >= self.batch or id(msg) not in self._decoded_ahead:
                break
            taken.append(msg)
        return taken

    def _unmerge(self) -> None:
        """The batch merged into one that did not commit goes back to the front of the
        read-ahead: nothing of it stands, nothing of it was acked."""
        merged, self._merged = self._merged, []
        if merged and self._ahead is not None:
            self._ahead[:0] = [item.msg for item in merged]

    async def _applied(self, conn: asyncpg.Connection, fresh: list[_Item],
                       prepared: _Prepared | None) -> bool | None:
        """``fresh`` (sorted out of a batch by its tracking rows) applied and tracked in one
        transaction: True once committed (to be acked); False when it failed and the events
        were applied one by one instead; None when a row moved since it was read
        (``_RowsMoved``: rolled back, nothing of it done, to be sorted again)."""
        try:
            async with conn.transaction():
                track = _Once(lambda: self._track(conn, fresh))
                await self._handle(conn, fresh, prepared, track)
                await track()
        except _RowsMoved:
            return None
        except STORE_TIMED_OUT:
            raise  # not the events' fault: the whole batch goes back (``_timed_out``)
        except Exception as exc:  # one bad event must not hold back the batch
            self._batch_failed(exc, fresh)
            await self._apply_one_by_one(conn, fresh)
            return False
        return True

    async def _handle(self, conn: asyncpg.Connection, fresh: list[_Item],
                      prepared: _Prepared | None, track: _Once,
                      more: More | None = None) -> None:
        """The handler's part of a batch, inside its transaction; ``more`` offered to a
        ``Merging`` handler (the usual batch's)."""
        events = _handled(fresh)
        if not events:
            return  # only events the handler ignores: only tracked
        if more is not None and getattr(self.handler, "merges", False):
            self._merging = False
            await cast(Merging, self.handler).apply(conn, events, more=more)
        elif prepared is not None and _same(prepared.events, events):
            await cast(Preparing, self.handler).apply(conn, events, prepared.result)
        elif getattr(self.handler, "waits", False):
            await cast(Waiting, self.handler).apply(conn, events, track)
        else:
            await self.handler.apply(conn, events)

    def _batch_failed(self, exc: Exception, fresh: list[_Item]) -> None:
        log.warning("consumer.batch_failed", consumer=self.name, size=len(fresh),
                    error=f"{type(exc).__name__}: {exc}")
        tracing.batch_failed(exc)

    async def _ack(self, msgs: list[Msg]) -> None:
        """A committed batch's acks, in one write (``pulling.ack_each``)."""
        await ack_each(self.nc, msgs)

    @staticmethod
    def _traced(items: list[_Item]) -> list[_Item]:
        """The items a span is made for when applied alone (``tracing.applying``)."""
        if not tracing.enabled():
            return []
        return [i for i in items if i.envelope is not None
                and type(i.envelope) is not EnvelopeHead]

