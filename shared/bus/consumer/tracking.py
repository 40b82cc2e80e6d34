"""The tracking rows (``consumer_tracking``, ``consumer_progress``, ``consumer_held``): their
DDL, the batch's tracking write (``TRACK``), a case's block (``BLOCK``), and read-your-writes
(``wait_for_position``)."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import UUID

import asyncpg

from shared.bus.consumer.items import (
    _Item,
    _RowsMoved,
)
from shared.bus.stream_identity import STREAM_DDL

TRACKING_DDL = [
    "CREATE TABLE IF NOT EXISTS consumer_tracking ("
    " consumer text NOT NULL, key uuid NOT NULL, seq bigint NOT NULL,"
    " blocked_seq bigint, PRIMARY KEY (consumer, key))",
    # A third of each page kept free: every batch moves the row of each case it applies
    # (``_track``), a change of no indexed column, which is then a HOT update, written
    # beside the row with no new entry in the primary key. Set once, the lookup first
    # (ALTER TABLE would take its lock, and make every session plan again, at each start);
    # rows written before keep their pages until rewritten.
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = 'consumer_tracking'::regclass"
    " AND reloptions @> ARRAY['fillfactor=70']) THEN"
    " ALTER TABLE consumer_tracking SET (fillfactor = 70); END IF; END $$",
    # The failed tries of the event at blocked_seq (added after the table was first made;
    # looked up first: ALTER TABLE takes its ACCESS EXCLUSIVE lock even when the column is
    # there, and every batch of every consumer of the schema writes this table).
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
    " 'consumer_tracking'::regclass AND attname = 'blocked_attempts' AND NOT attisdropped)"
    " THEN ALTER TABLE consumer_tracking ADD COLUMN blocked_attempts integer; END IF; END $$",
    # The events held back while another event of their case is retried (the one that
    # failed, and those waiting behind it), by stream sequence, with their service's log
    # position: ``consumer_progress`` keeps the last position applied, and later events of
    # other cases pass a held one, so read-your-writes (``applied_position``) counts a
    # position as applied only below the lowest held. A row is done once its case's
    # tracking row has passed its sequence (applied or dead-lettered); those are deleted at
    # start and every few seconds while any is held (``Consumer._forget_gone_holds``).
    "CREATE TABLE IF NOT EXISTS consumer_held ("
    " consumer text NOT NULL, seq bigint NOT NULL, key uuid NOT NULL, service text NOT NULL,"
    " position bigint NOT NULL, PRIMARY KEY (consumer, seq))",
    "CREATE INDEX IF NOT EXISTS consumer_held_position ON consumer_held"
    " (consumer, service, position)",
    "CREATE TABLE IF NOT EXISTS consumer_progress ("
    " consumer text NOT NULL, service text NOT NULL, position bigint NOT NULL,"
    " stream_seq bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (consumer, service))",
    *STREAM_DDL,
]

#: The position of service ``$2``'s log below which consumer ``$1`` has applied (or
#: dead-lettered) every event it takes: its last position applied, capped below the lowest
#: event it holds back behind a retry (``consumer_held``, rows still ahead of their case's
#: tracking row). NULL before it applied any.
APPLIED_POSITION = (
    "SELECT LEAST(p.position, (SELECT min(h.position) - 1 FROM consumer_held AS h"
    " JOIN consumer_tracking AS t ON t.consumer = h.consumer AND t.key = h.key"
    " WHERE h.consumer = $1 AND h.service = $2 AND h.seq > t.seq))"
    " FROM consumer_progress AS p WHERE p.consumer = $1 AND p.service = $2")

#: Held rows whose case has gone past them (applied, dead-lettered): ``$1``'s to delete.
FORGET_DONE_HOLDS = (
    "DELETE FROM consumer_held AS h USING consumer_tracking AS t WHERE h.consumer = $1"
    " AND t.consumer = $1 AND t.key = h.key AND h.seq <= t.seq")

#: A batch's tracking write, one round trip: consumer ``$1``'s row of each case ``$2`` moved
#: to its highest sequence ``$3`` (a block at or before it lifted) only where every event of
#: the batch is new to it: its lowest sequence ``$7`` past the row's, its highest ``$8`` at
#: or before a block of the row; a case without a row gets one. And its progress of each
#: service ``$4`` to the last position ``$5`` and sequence ``$6``. Answers how many cases it
#: wrote: fewer than the batch's means another transaction moved a row since the batch was
#: judged fresh (``Consumer._track``: the batch is rolled back and judged again).
#:
#: The usual batch (``Consumer._apply_if_all_fresh``) writes it as its first statement; a
#: batch sorted by its rows first (duplicates, waiting, a failed batch one event at a time,
#: ``_isolate``) writes it after its effects, in their transaction. Before, that one wrote
#: unconditionally: a row moved between the read and the write (the rebuild's switch putting
#: the rebuilt rows in place, a batch of the durable's before-leader still committing) was
#: moved back, and the events it covered were applied again.
#:
#: The test is the UPDATE's WHERE, which PostgreSQL evaluates again on the row as the
#: transaction it waited on committed it; a read of the statement's snapshot (a CTE's
#: SELECT) misses a move committed while the statement waited on the row. A row another
#: transaction inserts meanwhile (or deletes and inserts again, as the switch does) is a
#: conflict: DO NOTHING, not counted. The UPDATE and the INSERT see the same snapshot and
#: touch different rows, in either order.
TRACK = (
    "WITH batch AS (SELECT * FROM unnest($2::uuid[], $3::bigint[], $7::bigint[], $8::bigint[])"
    " AS b(k, s, lo, hi)), "
    "moved AS (UPDATE consumer_tracking AS t SET seq = b.s, blocked_seq = "
    " CASE WHEN t.blocked_seq <= b.s THEN NULL ELSE t.blocked_seq END FROM batch AS b"
    " WHERE t.consumer = $1 AND t.key = b.k AND t.seq < b.lo"
    " AND (t.blocked_seq IS NULL OR b.hi <= t.blocked_seq) RETURNING 1), "
    "added AS (INSERT INTO consumer_tracking (consumer, key, seq) SELECT $1, k, s FROM batch"
    " ON CONFLICT (consumer, key) DO NOTHING RETURNING 1), "
    "progressed AS (INSERT INTO consumer_progress (consumer, service, position, stream_seq)"
    " SELECT $1, svc, pos, seq FROM unnest($4::text[], $5::bigint[], $6::bigint[])"
    " AS p(svc, pos, seq) ON CONFLICT (consumer, service) DO UPDATE SET "
    " position = GREATEST(consumer_progress.position, EXCLUDED.position), "
    " stream_seq = GREATEST(consumer_progress.stream_seq, EXCLUDED.stream_seq), "
    " updated_at = now() RETURNING 1)"
    " SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM added)")
#: ``TRACK`` as the usual batch's first statement (its name in the design notes).
TRACK_FIRST = TRACK

#: Consumer ``$1``'s case ``$2`` blocked at the event ``$3`` (its later events wait behind it;
#: a block at an earlier event stays: ``LEAST``), one try of it counted when ``$4`` (it
#: failed; not when its row only kept moving). Answers the tries counted of the event the
#: case is blocked at (a try of another event than the block's starts its count again).
#: One statement for both: the failure's and the moved-again block were two copies of it.
#:
#: A block put without a try keeps the row's count only where a block stood at or before
#: ``$3`` already (the same block): ``TRACK`` lifts a block and leaves its count, and the
#: moved-again block of a case's next event took over the tries of an earlier event that
#: failed, then went through: the next event was dead-lettered that many failures sooner.
BLOCK = (
    "INSERT INTO consumer_tracking (consumer, key, seq, blocked_seq, blocked_attempts)"
    " VALUES ($1, $2, 0, $3, CASE WHEN $4::boolean THEN 1 END)"
    " ON CONFLICT (consumer, key) DO UPDATE SET blocked_attempts = CASE"
    " WHEN NOT $4::boolean THEN CASE WHEN consumer_tracking.blocked_seq <= $3"
    " THEN consumer_tracking.blocked_attempts END"
    " WHEN consumer_tracking.blocked_seq = $3"
    " THEN COALESCE(consumer_tracking.blocked_attempts, 0) + 1 ELSE 1 END,"
    " blocked_seq = LEAST(COALESCE(consumer_tracking.blocked_seq, $3), $3)"
    " RETURNING blocked_attempts")

#: The last stream sequence a consumer applied (``$1``), as ``check_stream`` compares it.
APPLIED_SEQ = "SELECT max(stream_seq) FROM consumer_progress WHERE consumer = $1"


async def wait_for_position(pool: asyncpg.Pool, consumer: str, service: str, position: int,
                            timeout: float) -> bool:
    """Read-your-writes: wait (bounded) until ``consumer`` applied ``service``'s ``position``
    and every event of that log before it that it takes (``APPLIED_POSITION``)."""
    if position <= 0:  # nothing written yet: nothing to wait for (even before any progress)
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.005
    while True:
        applied = await pool.fetchval(APPLIED_POSITION, consumer, service)
        if applied is not None and applied >= position:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


class Tracking:
    """The tracking rows of a consumer's cases (a base of ``Consumer``)."""

    async def _tracking(self, conn: asyncpg.Connection,
                        items: list[_Item]) -> dict[UUID, tuple[int, int | None]]:
        """The tracking rows of the cases of ``items``: key -> (seq, blocked_seq)."""
        keys = list({i.envelope.partition_key for i in items if i.envelope})
        # Joined with the keys, not ``key = ANY($2)``: PostgreSQL's generic plan for a
        # prepared statement tests an array parameter element by element on every row of
        # the consumer it scans (the plan a young table's statistics give), so the lookup
        # grew with rows x keys: 40 ms a batch of 2,000 at 3,600 cases.
        rows = await conn.fetch(
            "SELECT t.key, t.seq, t.blocked_seq FROM unnest($2::uuid[]) AS k(key)"
            " JOIN consumer_tracking AS t ON t.consumer = $1 AND t.key = k.key",
            self.name, keys)
        return {r["key"]: (r["seq"], r["blocked_seq"]) for r in rows}

    def _tracking_args(self, items: list[_Item]) -> tuple[object, ...]:
        """``TRACK``'s arguments for ``items``: each case's highest sequence, each service's
        last position and sequence, each case's lowest and highest sequence again (what the
        row must show new). The highest, not the last delivered: a batch is in delivery
        order, and a redelivered event after a newer one of its case moved the row back to
        it (the newer applied again when it came back)."""
        # Each case's span by its key's ``int``: a UUID's ``__hash__`` and ``__eq__`` are
        # Python functions, and each event's two look-ups paid both (~1.2 us an event, in
        # every consumer's every batch; an int's are C). The key itself kept with its span.
        span: dict[int, list[Any]] = {}
        progress: dict[str, tuple[int, int]] = {}
        for item in items:
            envelope = item.envelope
            assert envelope is not None
            key, seq = envelope.partition_key, item.seq
            found = span.get(key.int)
            if found is None:
                span[key.int] = [key, seq, seq]
            elif seq < found[1]:
                found[1] = seq
            elif seq > found[2]:
                found[2] = seq
            pos, top = progress.get(envelope.service, (0, 0))
            progress[envelope.service] = (max(pos, envelope.position), max(top, seq))
        services = list(progress)
        highest = [high for _, _, high in span.values()]
        return (self.name, [key for key, _, _ in span.values()], highest, services,
                [progress[svc][0] for svc in services], [progress[svc][1] for svc in services],
                [low for _, low, _ in span.values()], highest)

    async def _written(self, conn: asyncpg.Connection, items: list[_Item]) -> bool:
        """``TRACK`` for ``items``: True when it wrote every case's row (each showed the
        events new as it stood when locked)."""
        args = self._tracking_args(items)
        written = await conn.fetchval(TRACK, *args)
        return bool(written == len(cast(list[UUID], args[1])))

    async def _track(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """``items``' tracking, after their effects in the same transaction: ``_RowsMoved``
        (their transaction rolled back) when a row no longer shows them new."""
        if not await self._written(conn, items):
            raise _RowsMoved

    async def _failed(self, conn: asyncpg.Connection, key: UUID, seq: int) -> int:
        """Block the aggregate ``key`` at the event ``seq`` that failed (its later events wait
        behind it); how many times that event has failed now."""
        return await self._block(conn, key, seq, count_try=True)

    async def _block(self, conn: asyncpg.Connection, key: UUID, seq: int, *,
                     count_try: bool) -> int:
        """The aggregate ``key`` blocked at the event ``seq`` (its later events wait behind
        it; a block at an earlier event of it stays: ``LEAST``), one try of it counted when
        ``count_try`` (it failed; not when its row only kept moving: ``MOVED_AGAIN``).
        Returns the tries counted of the event the case is blocked at (0 for none)."""
        tries = await conn.fetchval(BLOCK, self.name, key, seq, count_try)
        return int(tries or 0)

