"""An event published to the dead-letter stream, its case's block lifted."""

from __future__ import annotations

import asyncpg
import structlog

from shared.bus.consumer.items import (
    _Item,
)
from shared.bus.jetstream import publish_dead_letter
from shared.kernel.errors import StatementTimedOut

log = structlog.get_logger("sixstep.consumer")


def _timed_out_alone(exc: BaseException, how: str) -> str:
    """The reason of an event dead-lettered by ``Consumer._isolate``: it ran out of time
    ``how`` (``on its own 5 times while ...``), waiting for a lock or slow."""
    lock = isinstance(exc, asyncpg.LockNotAvailableError) or (
        isinstance(exc, StatementTimedOut) and exc.details.get("error") == "LockNotAvailable")
    return (f"{'waited for a lock' if lock else 'ran out of time'} {how}"
            f" ({type(exc).__name__}: {str(exc)[:300]}): "
            + ("a session holds its rows" if lock else "its statement is slow")
            + "; replay it (sixstep dlq replay) once that is fixed")


class DeadLetters:
    """Dead letters (a base of ``Consumer``)."""

    async def _dead_letter(self, item: _Item, reason: str,
                           conn: asyncpg.Connection | None = None,
                           tries: int | None = None) -> None:
        # the tries (what ``sixstep dlq list`` shows): hand-backs while it waited behind
        # another event of its case do not count
        await publish_dead_letter(
            self.nc.jetstream(), self.settings, self.name, seq=item.seq,
            subject=item.msg.subject, data=item.msg.data, reason=reason,
            tries=tries if tries is not None else item.delivered,
            stream_created=self._stream_created)
        if item.envelope is not None:
            # The dead letter no longer holds back the aggregate's later events.
            sql = ("INSERT INTO consumer_tracking (consumer, key, seq) VALUES ($1, $2, $3) "
                   "ON CONFLICT (consumer, key) DO UPDATE SET "
                   "seq = GREATEST(consumer_tracking.seq, EXCLUDED.seq), blocked_seq = NULL,"
                   " blocked_attempts = NULL")
            args = (self.name, item.envelope.partition_key, item.seq)
            if conn is not None:
                await conn.execute(sql, *args)
            else:
                async with self._connection() as own:
                    await own.execute(sql, *args)
        await item.msg.term()
        self.stats.dead_lettered += 1
        envelope = item.envelope
        log.error("consumer.dead_lettered", consumer=self.name, seq=item.seq, reason=reason,
                  correlation_id=envelope.correlation_id if envelope else None,
                  event_id=str(envelope.event_id) if envelope else None)

