"""Events held back behind a retried one of their case (``consumer_held``), and blocks lifted
when the event they wait for is no longer on the stream."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import structlog
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from shared.bus.connection import subject_matches
from shared.bus.consumer.items import (
    _Item,
)
from shared.bus.consumer.pacing import STREAM_RECHECK_S
from shared.bus.consumer.tracking import (
    FORGET_DONE_HOLDS,
)

log = structlog.get_logger("sixstep.consumer")


#: The server's error code for a sequence the stream does not hold (removed, purged, or past
#: its limits); a stream not there at all is another (10059).
NO_MESSAGE = 10037

GONE_CHECK_EVERY = 10
"""How many hand-backs of an event waiting behind a retried one of its case go by between
looks at whether the retried event is still on the stream (``Consumer._released``)."""


class Holds:
    """Holds and blocks lifted (a base of ``Consumer``)."""

    async def _released(self, conn: asyncpg.Connection, waiting: list[_Item],
                        tracked: dict[UUID, tuple[int, int | None]]) -> set[UUID]:
        """The cases of ``waiting`` whose blocking event is no longer on the stream (or no
        longer on this consumer's subjects: ``_still_coming``), their block lifted. An event
        the stream's limits took (max_msgs, max_bytes), an operator removed or purged while
        it was retried is never delivered again: it can be neither applied nor
        dead-lettered, and its case's later events waited behind it for ever, handed back
        every ``backoff[0]``. Looked at once every ``GONE_CHECK_EVERY`` hand-backs of a
        waiting event (one request to the stream)."""
        released: set[UUID] = set()
        due = {i.envelope.partition_key for i in waiting
               if i.envelope is not None and i.delivered % GONE_CHECK_EVERY == 0}
        for key in due:
            blocked = tracked[key][1]
            assert blocked is not None
            if await self._still_coming(blocked) is not False:
                continue  # still there (its retries go on), or no answer now: asked later
            await self._let_go(conn, key, blocked)
            log.error("consumer.blocked_event_gone", consumer=self.name, seq=blocked,
                      key=str(key))
            released.add(key)
        return released

    async def _hold(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """Record ``items`` as held back behind a retry (``consumer_held``), before anything
        after them is tracked as applied (``_forget_gone_holds`` forgets them)."""
        held = [(i.seq, i.envelope) for i in items if i.envelope is not None]
        await conn.execute(
            "INSERT INTO consumer_held (consumer, seq, key, service, position) SELECT $1, s, k,"
            " v, p FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bigint[])"
            " AS h(s, k, v, p) ON CONFLICT DO NOTHING", self.name, [seq for seq, _ in held],
            [e.partition_key for _, e in held], [e.service for _, e in held],
            [e.position for _, e in held])
        self._holding = True

    async def _forget_gone_holds(self) -> None:
        """Every ``STREAM_RECHECK_S`` while this consumer holds events back: forget the holds
        its cases have gone past, and those whose event is no longer on the stream (its
        limits took it, an operator removed or purged it while it was retried), lifting the
        block of a case whose failing event it was, and those no longer on its subjects
        (``_still_coming``). Such an event is never delivered again,
        so it is neither applied nor dead-lettered: its hold stayed, and every ``?after=`` at
        or past it answered 504 for good (``_released`` lifts a block only when a later event
        of the case comes, and a case may have none). A consumer holding nothing asks
        nothing."""
        if not self._holding:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_hold_look:
            return
        self._next_hold_look = loop.time() + STREAM_RECHECK_S
        async with self._connection() as conn:
            await conn.execute(FORGET_DONE_HOLDS, self.name)
            rows = await conn.fetch(
                "SELECT seq, key FROM consumer_held WHERE consumer = $1 ORDER BY seq LIMIT 50",
                self.name)
            if not rows:
                self._holding = False
                return
            for row in rows:
                coming = await self._still_coming(row["seq"])
                if coming is None:  # no answer now: asked again later
                    return
                if coming:
                    continue  # applied, or dead-lettered, in its turn
                await self._let_go(conn, row["key"], row["seq"])
                log.error("consumer.held_event_gone", consumer=self.name, seq=row["seq"],
                          key=str(row["key"]))

    async def _let_go(self, conn: asyncpg.Connection, key: UUID, seq: int) -> None:
        """The event at ``seq`` will never be delivered again (``_still_coming``): the block
        it put on its case ``key`` (if it was the failing one) is lifted and its hold
        forgotten."""
        await conn.execute(
            "UPDATE consumer_tracking SET blocked_seq = NULL, blocked_attempts = NULL "
            "WHERE consumer = $1 AND key = $2 AND blocked_seq = $3", self.name, key, seq)
        await conn.execute("DELETE FROM consumer_held WHERE consumer = $1 AND seq = $2",
                           self.name, seq)

    async def _still_coming(self, seq: int) -> bool | None:
        """Whether the event at stream sequence ``seq`` will be delivered to this consumer
        again: still on the stream, and on its subjects (a release that no longer takes its
        type changed the durable's filters, and the server never hands it back); None when
        the server does not answer now, or has no such stream (deleted, not restored yet:
        what it held is not gone for that)."""
        try:
            msg = await self.nc.jetstream().get_msg(self.settings.stream_name, seq=seq)
        except NotFoundError as exc:
            return False if exc.err_code == NO_MESSAGE else None
        except (NatsError, TimeoutError):
            return None
        return msg.subject is None or any(
            subject_matches(f, msg.subject) for f in self.filter_subjects)

