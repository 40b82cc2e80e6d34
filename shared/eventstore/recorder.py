"""How a batch of events is written: the library's PostgreSQL recorder, minus its slowest part,
minus its hidden retries, and with the moment a batch is sent to the store made visible."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg import Connection
from psycopg.sql import SQL, Composable, Identifier, Literal

BeforeSend = Callable[[Sequence[StoredEvent]], None]
"""Called with a batch's events once a connection is in hand, just before the transaction that
records them is sent; raising there sends nothing."""


class Rendered:
    """Statements composed with ``psycopg.sql`` (identifiers, literals), as the bytes psycopg
    sends for them, rendered once per client encoding instead of at every ``execute``.

    psycopg renders a composed statement anew each time it is executed (``as_bytes``: each
    part encoded, each identifier escaped by libpq), before it finds the rendered text in
    its own caches; the writer thread's statements of every batch (then the library's ``SET
    LOCAL lock_timeout``, ``LOCK TABLE`` and ``NOTIFY``, the insert; now the batch's one
    call, and group commit's look-ups) were ~12 % of its samples (py-spy, intake's API under
    wrk). The bytes are the very ones ``as_bytes`` gives on a connection of that encoding
    (all that the rendering reads of a connection), so psycopg sends the same text, prepared
    or not as before."""

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
    """The library's recorder, with a batch's events sent as four typed arrays in binary to a
    database function of its own that does all of the library's steps in one statement.

    The library sends a batch as one array of a composite type, which psycopg renders as
    text, field by field in Python, and PostgreSQL parses back: a third of the writer
    thread's time for a batch. Here the same rows go as ``uuid[]``, ``bigint[]``, ``text[]``
    and ``bytea[]`` in binary, unnested side by side in the same order.

    The library then sends BEGIN, ``SET LOCAL lock_timeout``, ``LOCK TABLE ... IN EXCLUSIVE
    MODE``, NOTIFY, the insert, a sync and COMMIT through psycopg's pipeline: ~0.5 ms of the
    writer thread's CPU a batch, whatever its size (14 waits and 29 generator steps in
    psycopg's Python; benchmarks/README.md, intake59). Here one prepared statement calls
    ``{schema}.sixstep_insert_events`` (``insert_function_statement``), which runs those very
    statements in that order inside the statement's own transaction (the connections are in
    autocommit): the same table lock (the log's order and gapless notification ids), the same
    ``lock_timeout`` (a lock held too long still refuses), the same NOTIFY and returned ids,
    a unique violation still an ``IntegrityError``; one round trip, and the commit is the
    statement's end. (The library's own database function, ``enable_db_functions``, takes no
    table lock: it is not used.)

    Two things differ on the write path, for group commit (``group_commit.py``) to answer
    within its bound and truthfully: ``insert_events`` and ``select_events`` are not retried
    here (the library retries them ten times, each try waiting for a pooled connection, and a
    retried insert whose first commit did happen finds its own rows taken); and
    ``before_send`` lets the caller withdraw a batch up to the last moment before it goes.
    """

    #: The database function a batch is recorded with, in the service's schema. Every
    #: replica starting makes it anew (CREATE OR REPLACE), and every replica's next batch
    #: runs what was made last, whatever its own release: a release that changes what the
    #: function does (its body, not only its arguments) must give it a new name, or a rolling
    #: pair (or a rollback's replica) runs the other release's body with its own arguments.
    INSERT_FUNCTION = "sixstep_insert_events"

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.before_send: BeforeSend | None = None
        table = SQL("{schema}.{table}").format(schema=Identifier(datastore.schema),
                                               table=Identifier(events_table_name))
        id_type = SQL(datastore.originator_id_type)
        function = SQL("{schema}.{name}").format(schema=Identifier(datastore.schema),
                                                 name=Identifier(self.INSERT_FUNCTION))
        # The library's steps (``_lock_table``'s ``SET LOCAL lock_timeout``, as
        # ``set_config(..., true)``, and ``LOCK TABLE``; ``_notify_channel``; the insert), in
        # its order, as one function: made (or replaced) with the tables. The lock's wait is
        # the caller's (each replica's own POSTGRES_LOCK_TIMEOUT), not fixed in the function.
        # The body goes as a string literal, not between dollar quotes: the names in it come
        # from settings (SCHEMA_PREFIX), and a tag such as ``$body$`` in a schema's name
        # ended a dollar-quoted body there (the rest parsed as SQL; redteam133).
        body = SQL(
            "BEGIN"
            " PERFORM set_config('lock_timeout', lock_wait, true);"
            " LOCK TABLE {table} IN EXCLUSIVE MODE;"
            " NOTIFY {channel};"
            " RETURN QUERY INSERT INTO {table} AS t"
            " (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(ids, versions, topics, states)"
            " RETURNING t.notification_id;"
            " END"
        ).format(table=table, channel=Identifier(self.channel_name))
        self.insert_function_statement = SQL(
            "CREATE OR REPLACE FUNCTION {function}(lock_wait text,"
            " ids {id_type}[], versions bigint[], topics text[], states bytea[])"
            " RETURNS SETOF bigint LANGUAGE plpgsql AS {body}"
        ).format(function=function, id_type=id_type, body=Literal(body.as_string(None)))
        self.sql_create_statements.append(self.insert_function_statement)
        # A batch's one statement, rendered once (``Rendered``).
        self._batch_statement = Rendered(SQL(
            "SELECT notification_id FROM {function}({lock_wait},"
            " %b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) AS notification_id"
        ).format(function=function, id_type=id_type,
                 lock_wait=Literal(f"{datastore.lock_timeout}s")))
        # A writer still holding the table's lock (EXCLUSIVE) finishes before this SHARE lock
        # is granted: what the select then sees is settled.
        self._settled_lock_statement = SQL("LOCK TABLE {} IN SHARE MODE").format(table)
        self._find_rows_statement = SQL(
            "SELECT t.originator_id, t.originator_version, t.state, t.notification_id"
            " FROM {table} AS t JOIN unnest(%b::{id_type}[], %b::bigint[]) AS w(i, v)"
            " ON t.originator_id = w.i AND t.originator_version = w.v"
        ).format(table=table, id_type=id_type)

    # The library's methods without their @retry: group commit retries within its bound.
    select_events = PostgresAggregateRecorder.select_events.__wrapped__  # type: ignore[attr-defined]

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """The library's ``insert_events`` (eventsourcing 9.5.6, pinned; database functions
        off) as one statement (``insert_function_statement``), tried once, with
        ``before_send`` between taking a connection and sending. The connection is in
        autocommit (the library's ``after_connect``): the statement is its own transaction,
        committed when it is answered; an error rolls all of it back."""
        with self.datastore.get_connection() as conn:
            if self.before_send is not None:
                self.before_send(stored_events)
            if not stored_events:
                return None  # the library's answer for an empty batch; nothing to send
            with conn.transaction() if not conn.autocommit else nullcontext(), \
                    conn.cursor() as curs:
                curs.execute(self._batch_statement.on(conn)[0], (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events]), prepare=True)
                return [row["notification_id"] for row in curs.fetchall()]

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
