"""Which stream a consumer's tracking rows were written against, and whether it is this one.

A consumer's tracking rows hold stream sequences (``consumer_tracking.seq``: per case, the
last one applied). They mean something only on the stream they were read from. A stream
deleted and made again (``nats stream rm`` + ``sixstep ops apply``, a disaster recovery)
numbers its messages from 1 again, and the relays publish the stores' events onto it anew,
each at a sequence of its own: compared with the old rows, a new event of a case at a
sequence below the case's row looks applied and is skipped, silently, and an old event
published again above it is applied a second time. A stream restored from a backup older
than the database ends before what the consumers recorded, and the events published after
it get sequences the rows already name.

So each consumer records the stream's creation time (``consumer_stream``), the first time
it starts on a stream, and compares it at each start (one ``STREAM.INFO``):

* another creation time: the stream was made anew (``recreated``);
* a last sequence applied (``consumer_progress.stream_seq``) beyond the stream's last:
  the stream lost what was applied (``behind``: restored from an older backup, or made anew
  before this consumer recorded a creation time, as a consumer of an older version).

Either way the consumer applies nothing on that stream: its tracking cannot say what is
applied. A rebuild of its read model (``sixstep rebuild``) replays the new stream into new
tracking rows and records the stream's creation time with them. A stream whose limits took
its oldest messages, or that was purged, keeps its creation time and its sequences: that is
not a new stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from nats.js.client import JetStreamContext

from shared.bus.durable_names import base_consumer

STREAM_DDL = [
    "CREATE TABLE IF NOT EXISTS consumer_stream ("
    " consumer text PRIMARY KEY, stream_created timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now())",
]


@dataclass(frozen=True)
class StreamSeen:
    """The stream as a consumer finds it at start (its ``STREAM.INFO``)."""

    created: datetime | None
    last_seq: int


def not_the_stream(recorded_created: datetime | None, applied_seq: int | None,
                   stream: StreamSeen) -> str | None:
    """Why tracking rows written against a stream made at ``recorded_created`` (None: not
    recorded), the last of them at ``applied_seq`` (None: nothing applied), do not belong to
    ``stream``; None when they do (or nothing tells them apart)."""
    if (recorded_created is not None and stream.created is not None
            and recorded_created != stream.created):
        return (f"recreated: the stream was made at {stream.created.isoformat()}, the "
                f"tracking rows were written against one made at "
                f"{recorded_created.isoformat()}")
    if applied_seq is not None and applied_seq > stream.last_seq:
        return (f"behind: the stream ends at sequence {stream.last_seq}, the tracking rows "
                f"have applied up to {applied_seq} (restored from an older backup, or made "
                "anew)")
    return None


async def stream_seen(js: JetStreamContext, stream: str) -> StreamSeen:
    info = await js.stream_info(stream)
    return StreamSeen(info.created, int(info.state.last_seq or 0))


async def check_stream(conn: asyncpg.Connection, consumer: str, stream: StreamSeen,
                       *, applied_seq_sql: str) -> str | None:
    """Compare what ``consumer`` recorded with ``stream`` (``not_the_stream``); when they
    agree, record the stream's creation time if it is not yet. A consumer that has applied
    nothing takes the stream as it is. ``applied_seq_sql`` selects the last sequence applied
    (``$1``: the consumer)."""
    why, recorded = await _compared(conn, consumer, stream, applied_seq_sql)
    if why is None and stream.created is not None and recorded != stream.created:
        await record_stream(conn, consumer, stream.created)
    return why


async def _compared(conn: asyncpg.Connection, consumer: str, stream: StreamSeen,
                    applied_seq_sql: str) -> tuple[str | None, datetime | None]:
    """``not_the_stream`` for what ``consumer`` recorded, and the creation time it recorded
    (None when it has applied nothing: nothing to skip wrongly, the stream is taken as it
    is)."""
    recorded = await conn.fetchval(
        "SELECT stream_created FROM consumer_stream WHERE consumer = $1", consumer)
    applied = await conn.fetchval(applied_seq_sql, consumer)
    if applied is None:
        recorded = None
    return not_the_stream(recorded, applied, stream), recorded


async def record_stream(conn: asyncpg.Connection, consumer: str, created: datetime) -> None:
    await conn.execute(
        "INSERT INTO consumer_stream (consumer, stream_created) VALUES ($1, $2) "
        "ON CONFLICT (consumer) DO UPDATE SET stream_created = EXCLUDED.stream_created, "
        "updated_at = now()", consumer, created)


async def forget_replays(conn: asyncpg.Connection, consumer: str, schema: str = "") -> None:
    """Drop the record of the dead letters ``consumer`` replayed (``consumer_replays``, in
    ``schema`` or on the search path), keyed by their sequences on the old stream: a letter
    of the new stream at a sequence an old one had was taken for that one, reported as
    already applied and deleted, never applied. Every durable's of its consumer
    (``base_consumer``), a retired split's too: a replay looks for any of them
    (``shared.bus.deadletters._first_replay``), and a durable no longer running has no
    stream of its own recorded to be found moved by."""
    table = f'"{schema}".consumer_replays' if schema else "consumer_replays"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return
    base = base_consumer(consumer)
    durables = [r["consumer"] for r in await conn.fetch(
        f"SELECT DISTINCT consumer FROM {table}") if base_consumer(r["consumer"]) == base]
    if durables:
        await conn.execute(f"DELETE FROM {table} WHERE consumer = ANY($1::text[])", durables)


async def forget_stream(conn: asyncpg.Connection, consumer: str, stream: StreamSeen,
                        *, applied_seq_sql: str) -> str:
    """Drop ``consumer``'s tracking rows written against another stream, and take ``stream``
    as its own: the consumer applies every event of it again, from the first. Only for a
    handler whose effects are keyed by the upstream event id (a command writer: what it did
    already is found and not done twice); a read model is rebuilt instead. Returns why the
    rows did not belong to ``stream``; raises ``LookupError`` when they do."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                           f"sixstep-forget:{consumer}")
        why, _ = await _compared(conn, consumer, stream, applied_seq_sql)
        if why is None or stream.created is None:
            raise LookupError(f"{consumer}'s tracking rows belong to this stream: nothing to "
                              "forget")
        await conn.execute("DELETE FROM consumer_tracking WHERE consumer = $1", consumer)
        await conn.execute("DELETE FROM consumer_progress WHERE consumer = $1", consumer)
        await conn.execute("DELETE FROM consumer_held WHERE consumer = $1", consumer)
        await forget_replays(conn, consumer)
        await record_stream(conn, consumer, stream.created)
    return why
