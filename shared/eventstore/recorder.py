"""How a batch of events is written: the library's PostgreSQL recorder, minus its slowest part,
minus its hidden retries, and with the moment a batch is sent to the store made visible."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier

BeforeSend = Callable[[Sequence[StoredEvent]], None]
"""Called with a batch's events once a connection is in hand, just before the transaction that
records them is sent; raising there sends nothing."""


class Rendered:
    """Statements composed with ``psycopg.sql`` (identifiers, literals), as the bytes psycopg
    sends for them, rendered once per client encoding instead of at every ``execute``.

    psycopg renders a composed statement anew each time it is executed (``as_bytes``: each
    part encoded, each identifier escaped by libpq), before it finds the rendered text in
    its own caches; the writer thread's statements of every batch (the library's ``SET
    LOCAL lock_timeout``, ``LOCK TABLE`` and ``NOTIFY``, the insert, group commit's version
    look-up) were ~12 % of its samples (py-spy, intake's API under wrk). The bytes are the
    very ones ``as_bytes`` gives on a connection of that encoding (all that the rendering
    reads of a connection), so psycopg sends the same text, prepared or not as before."""

    __slots__ = ("_made", "_statements")

    def __init__(self, *statements: Composable) -> None:
        self._statements = statements
        # (encoding, the statements' bytes): one tuple, swapped whole (another thread may
        # render too; both render the same bytes).
        self._made: tuple[str, tuple[bytes, ...]] = ("", ())

    def on(self, conn: Connection[Any]) -> tuple[bytes, ...]:
        """The statements' bytes on ``conn`` (rendered on it when its encoding is new)."""
        encoding, rendered = self._made
        if encoding != conn.info.encoding or not rendered:
            rendered = tuple(s.as_bytes(conn) for s in self._statements)
            self._made = (conn.info.encoding, rendered)
        return rendered


class ArrayInsertRecorder(PostgresApplicationRecorder):
    """The library's recorder, with a batch's events sent as four typed arrays in binary.

    The library sends a batch as one array of a composite type, which psycopg renders as
    text, field by field in Python, and PostgreSQL parses back: a third of the writer
    thread's time for a batch. Here the same rows go as ``uuid[]``, ``bigint[]``, ``text[]``
    and ``bytea[]`` in binary, unnested side by side in the same order. Everything else is the
    library's: the table lock, the NOTIFY, the pipeline, the transaction, the returned
    notification ids, the errors.

    Two things differ on the write path, for group commit (``group_commit.py``) to answer
    within its bound and truthfully: ``insert_events`` and ``select_events`` are not retried
    here (the library retries them ten times, each try waiting for a pooled connection, and a
    retried insert whose first commit did happen finds its own rows taken); and
    ``before_send`` lets the caller withdraw a batch up to the last moment before it goes.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.before_send: BeforeSend | None = None
        table = SQL("{schema}.{table}").format(schema=Identifier(datastore.schema),
                                               table=Identifier(events_table_name))
        self.insert_events_statement = SQL(
            "INSERT INTO {table} AS t"
            " (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(table=table, id_type=SQL(datastore.originator_id_type))
        # Every batch's statements, rendered once (``Rendered``): the library's lock
        # statements (``_lock_table``: each with ``prepare=True``, as the library runs
        # them), its NOTIFY (``_notify_channel``, which composed it anew for every batch),
        # then the insert.
        self._batch_statements = Rendered(
            *self.lock_table_statements, SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
            self.insert_events_statement)
        # A writer still holding the table's lock (EXCLUSIVE) finishes before this SHARE lock
        # is granted: what the select then sees is settled.
        self._settled_lock_statement = SQL("LOCK TABLE {} IN SHARE MODE").format(table)
        self._find_rows_statement = SQL(
            "SELECT t.originator_id, t.originator_version, t.state, t.notification_id"
            " FROM {table} AS t JOIN unnest(%b::{id_type}[], %b::bigint[]) AS w(i, v)"
            " ON t.originator_id = w.i AND t.originator_version = w.v"
        ).format(table=table, id_type=SQL(datastore.originator_id_type))

    # The library's methods without their @retry: group commit retries within its bound.
    select_events = PostgresAggregateRecorder.select_events.__wrapped__  # type: ignore[attr-defined]

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """The library's ``insert_events`` (eventsourcing 9.5.6, pinned; database functions
        off), tried once, with ``before_send`` between taking a connection and sending."""
        exc: Exception | None = None
        notification_ids: Sequence[int] | None = None
        with self.datastore.get_connection() as conn:
            if self.before_send is not None:
                self.before_send(stored_events)
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if len(stored_events) > 0:
                    with conn.cursor() as curs:
                        try:
                            self._insert_stored_events(curs, stored_events, **kwargs)
                            pipeline.sync()
                            notification_ids = self._fetch_ids_after_insert_events(
                                curs, stored_events, **kwargs)
                        except Exception as e:
                            exc = e  # raised after the pipeline has exited, as the library does
            if exc:
                raise exc
        return notification_ids

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """The library's steps (``_lock_table``, ``_notify_channel``, the insert) with the
        statements it would send, rendered once (``Rendered``)."""
        *locks, notify, insert = self._batch_statements.on(curs.connection)
        for lock_statement in locks:
            curs.execute(lock_statement, prepare=True)
        curs.execute(notify)
        curs.execute(insert, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events]))

    def recorded_positions(self, stored_events: Sequence[StoredEvent]
                           ) -> dict[tuple[UUID, int], int] | None:
        """Whether a batch whose commit went unconfirmed was recorded: each event's position
        if it was (these very events, not another writer's at the same versions), None if it
        was not. Raises if the store cannot be asked."""
        if not stored_events:
            return {}
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            curs.execute(self._settled_lock_statement)
            curs.execute(self._find_rows_statement, (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events]))
            rows = {(r["originator_id"], r["originator_version"]): r
                    for r in curs.fetchall()}
        positions: dict[tuple[UUID, int], int] = {}
        for e in stored_events:
            row = rows.get((e.originator_id, e.originator_version))
            if row is None or bytes(row["state"]) != bytes(e.state):
                return None
            positions[(e.originator_id, e.originator_version)] = int(row["notification_id"])
        return positions
