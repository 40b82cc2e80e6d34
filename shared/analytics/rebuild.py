"""Blue/green rebuild of a read model: build it from the log beside the live one, compare, switch.

0. One run of a read model at a time: ``prepare`` (and ``discard``) take its rebuild lock, a
   session-level advisory lock held to the run's end (``Rebuild.hold``); a second run is
   refused (:class:`RebuildBusy`, naming the first's session) or waits (``wait=True``).
1. ``prepare``: a staging schema ``<live>__rb_<consumer>_<stamp>`` gets the read model's DDL,
   the consumer tracking tables and a ``rebuild_state`` row (the last stream sequence
   applied). An unfinished staging schema is picked up again, so an interrupted rebuild
   resumes. Read models sharing a live schema (feedback's views and figures) each get their
   own.
2. ``catch_up``: replays the consumer's subjects from there in large batches, the next batch
   fetched and decoded while this one is written, one transaction per batch (effects,
   tracking records and ``rebuild_state`` together: exactly once in effect, like the live
   consumer; committed without waiting for the WAL flush, so a crash may lose the last
   batches, whole, and the rebuild resumes after the last one kept). A handler that is a
   :class:`~shared.readmodels.readmodel.BulkHandler` writes the staging tables with COPY and
   set-based statements (``copy_apply``); a batch it gives up on (a key an earlier batch
   wrote, a value COPY refuses) is applied by the live handler instead. An event the live
   handler refuses is recorded in ``rebuild_skipped`` and passed, as the live consumer would
   dead-letter it. The indexes no handler finds rows by (``ReadModel.built_after``) are left
   out of the staging tables until the replay has reached the end of the log, then made in
   one sort each (an index entry per row written, and per row version an update leaves, cost
   PostgreSQL more than the sort); ``diff`` and ``switch`` find them there. A run started
   again after one killed while making them waits for the index PostgreSQL is still making.
   A stop (Ctrl-C) while they are being made cancels the builds on the server (the
   session's own cancel request, whatever the role may do): what was made stays,
   ``unbuilt`` names the rest, and the next run makes only those.
3. ``diff``: row by row, by primary key, staging against live, leaving out volatile columns and
   the cases whose live tracking has not applied exactly the same events (they are counted as
   lagging, not as differences).
4. ``switch``: pauses the live durable consumer (and partitioned workers' durables of it,
   ``<consumer>-p0_1``) and waits until none has anything unacknowledged (no batch of it is
   half applied), catches up, and then in one transaction: locks the live tables, applies
   the last events, moves the live tables to ``<live>__old_<consumer>_<stamp>`` and the
   rebuilt ones into the live schema, and replaces each such durable's tracking rows (and
   the stream they belong to) with the rebuilt ones. Readers see the old tables until
   the commit and the new ones after it. The consumer is resumed (it also resumes by itself
   when the pause runs out) and goes on from the rebuilt tracking: what the rebuild already
   applied is skipped as a duplicate. A transaction PostgreSQL rolls back to break a
   deadlock with a batch of the live consumer is tried again (``SWITCH_TRIES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import itertools
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from shared.analytics.replay import (
    Batch,
    NoSuchStream,
    Reading,
    Replay,
    Selection,
    SubjectFilter,
    Unreadable,
    covering,
)
from shared.bus.connection import covers
from shared.bus.consumer import TRACKING_DDL, durables_of
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import connect
from shared.bus.stream_identity import check_stream, forget_replays, stream_seen
from shared.contracts import Envelope
from shared.kernel.tasks import cancel_and_wait, gather_all
from shared.readmodels.bulk import q
from shared.readmodels.readmodel import REBUILD_BATCH, BulkHandler, ReadModel, make_tables
from shared.settings import Settings, without_password

STAGING = "__rb_"
RETIRED = "__old_"
STATE_DDL = [
    "CREATE TABLE IF NOT EXISTS rebuild_state (consumer text PRIMARY KEY,"
    " ddl_hash text NOT NULL, last_seq bigint NOT NULL DEFAULT 0,"
    " applied bigint NOT NULL DEFAULT 0,"
    " skipped bigint NOT NULL DEFAULT 0, started_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS rebuild_skipped (seq bigint PRIMARY KEY, type text,"
    " reason text NOT NULL)",
]
#: The consumers' tables, not the read model's: never compared, never swapped. The live
#: schema's ``consumer_held`` also holds what the schema's other consumers hold back; swapped
#: for the staging's empty one, their holds were lost and ``?after=`` let their positions
#: through while their events were still retried.
BOOKKEEPING = frozenset({"consumer_tracking", "consumer_progress", "consumer_stream",
                         "consumer_held", "rebuild_state", "rebuild_skipped"})
#: What the switch hands from the staging schema to each live durable of the consumer: the
#: bookkeeping tables and their columns after ``consumer``.
HANDED_OVER = {"consumer_tracking": "key, seq", "consumer_progress":
               "service, position, stream_seq", "consumer_stream": "stream_created"}
#: The last sequence a staging schema applied, as ``check_stream`` compares it.
REBUILT_SEQ = "SELECT NULLIF(last_seq, 0) FROM rebuild_state WHERE consumer = $1"
_ALTER = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}


#: The rebuild's own sessions: a role's ``statement_timeout`` (``ALTER ROLE ... SET
#: statement_timeout``, common on managed PostgreSQL) cut a batch's COPY, an index's sort or
#: the comparison of two large tables; a role's ``lock_timeout`` the wait for an index a killed
#: run left being made. Sent at connection (they override the role's and the database's
#: settings); the switch sets its own lock wait (``switch(lock_timeout_s=)``).
SESSION_SETTINGS = {"statement_timeout": "0", "lock_timeout": "0",
                    "idle_in_transaction_session_timeout": "0"}
#: How often a rebuild's session, while a statement runs, asks whether its client is still
#: there (``client_connection_check_interval``, PostgreSQL 14 and later, on Linux, macOS and
#: the BSDs). A run killed (kill -9, a pod evicted) while its CREATE INDEX sorted a large
#: table or waited for a lock left the statement running on the server to its end, and with
#: it the session's rebuild lock: the next run was refused, or waited, for minutes. The
#: server now ends such a session within this interval, its transaction rolled back.
CLIENT_CHECK_MS = 1000


class RebuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Holder:
    """The session that holds a read model's rebuild lock, as ``pg_stat_activity`` shows it
    (``client`` is None over a Unix socket, or for a role that may not see it)."""

    pid: int
    application_name: str
    client: str | None
    started: datetime | None

    def __str__(self) -> str:
        when = f", since {self.started:%Y-%m-%d %H:%M:%S%z}" if self.started else ""
        return (f"pid {self.pid}, {self.application_name or 'no application_name'}"
                f"{f' from {self.client}' if self.client else ''}{when}")


class RebuildBusy(RebuildError):
    """Another run (another operator, a retried Job's pod, ``--all`` beside this one) holds
    the read model's rebuild lock: nothing was done."""

    def __init__(self, consumer: str, holder: Holder) -> None:
        super().__init__(f"{consumer}: another rebuild of it is running ({holder})")
        self.consumer = consumer
        self.holder = holder


class RebuildStopped(RebuildBusy):
    """Stopped (Ctrl-C) while waiting for another run's rebuild lock: nothing was done."""


#: How long ``DROP SCHEMA`` of a staging schema waits for a lock before ``Rebuild._drop``
#: looks who holds it (and says so), then waits again.
DROP_WAIT_MS = 2000

#: How many times the switch's transaction is tried when PostgreSQL rolls it back to break a
#: deadlock with the live consumer (``Rebuild._swap_again_after_deadlocks``).
SWITCH_TRIES = 3


@dataclass(frozen=True)
class Holding:
    """A session holding a lock on tables of a schema being dropped: who, what it is doing
    (``pg_stat_activity.state``) since when, and which tables."""

    holder: Holder
    state: str
    since: datetime | None
    tables: list[str]

    def __str__(self) -> str:
        since = f" since {self.since:%H:%M:%S%z}" if self.since else ""
        return (f"{self.holder} ({self.state or 'state unknown'}{since}) holding "
                f"{', '.join(self.tables)}")


class DropStopped(RebuildError):
    """Stopped (Ctrl-C) while dropping a staging schema waited for another session."""

    def __init__(self, consumer: str, schema: str, holders: Sequence[Holding]) -> None:
        super().__init__(f"{consumer}: stopped while dropping {schema}, waiting for "
                         f"{'; '.join(map(str, holders)) or 'another session'}; it is kept")
        self.consumer = consumer
        self.schema = schema
        self.holders = list(holders)


@dataclass(frozen=True)
class FailedAt:
    """Where a database error reached a rebuild: its read model's consumer and the phase."""

    consumer: str
    phase: str


#: What a session's failure can raise: the server's errors (with a SQLSTATE), a connection
#: lost or refused (the server restarted).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError,
                                                    asyncpg.InterfaceError, OSError)
#: And what the bus can raise while a phase asks it (the stream, the live consumers' pause):
#: told apart from the database's (``nats: timeout`` is an ``OSError`` too).
FAILURES: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, nats.errors.Error)


def failed_at(exc: BaseException) -> FailedAt | None:
    """The read model and phase a database error came from (``Rebuild._during``)."""
    return getattr(exc, "_sixstep_rebuild_failed_at", None)


@dataclass
class TableDiff:
    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int = 0
    only_rebuilt: int = 0
    changed: int = 0
    compared: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    missing_live: bool = False

    @property
    def same(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.changed or self.missing_live)


@dataclass
class Diff:
    staging: str
    live: str
    tables: list[TableDiff]
    lagging_keys: int
    rebuilt_seq: int

    @property
    def same(self) -> bool:
        return all(t.same for t in self.tables)


@dataclass
class SwitchResult:
    retired: str
    last_seq: int
    tables: list[str]
    paused_consumer: bool


#: A batch's bookkeeping in one statement (one round trip, not three): the live consumer's
#: tracking records and progress for what the rebuild applied (same tables), and
#: ``rebuild_state``. Each key and each service comes once (``_tracking``), as one INSERT ...
#: ON CONFLICT DO UPDATE needs.
SETTLE = (
    "WITH tracked AS (INSERT INTO consumer_tracking (consumer, key, seq)"
    " SELECT $1, k, s FROM unnest($2::uuid[], $3::bigint[]) AS t(k, s)"
    " ON CONFLICT (consumer, key) DO UPDATE SET seq = EXCLUDED.seq, blocked_seq = NULL),"
    " progressed AS (INSERT INTO consumer_progress (consumer, service, position, stream_seq)"
    " SELECT $1, v, p, q FROM unnest($4::text[], $5::bigint[], $6::bigint[]) AS t(v, p, q)"
    " ON CONFLICT (consumer, service) DO UPDATE SET"
    " position = GREATEST(consumer_progress.position, EXCLUDED.position),"
    " stream_seq = GREATEST(consumer_progress.stream_seq, EXCLUDED.stream_seq),"
    " updated_at = now())"
    " UPDATE rebuild_state SET last_seq = $7, applied = applied + $8, skipped = skipped + $9,"
    " updated_at = now() WHERE consumer = $1")


def _tracking(events: Sequence[Envelope], seqs: Sequence[int]
              ) -> tuple[list[UUID], list[int], list[str], list[int], list[int]]:
    """Per key its last sequence, per service its highest position and sequence: the arrays
    of :data:`SETTLE`."""
    # A dict keeps the last value given for a key; one pass of plain attribute reads (this
    # runs for every event of every read model rebuilt).
    last: dict[UUID, int] = dict(zip([e.case_id or e.aggregate_id for e in events], seqs,
                                     strict=True))
    progress: dict[str, tuple[int, int]] = {}
    for e, seq in zip(events, seqs, strict=True):
        service, position = e.service, e.position
        found = progress.get(service)
        if found is None:
            progress[service] = (position, seq)
        elif position > found[0] or seq > found[1]:
            progress[service] = (max(found[0], position), max(found[1], seq))
    return (list(last), list(last.values()), list(progress),
            [p for p, _ in progress.values()], [top for _, top in progress.values()])


class _GaveUp(Exception):
    """The bulk path refused a batch (``Rebuild._apply``)."""


class Rebuild:
    """``async with Rebuild(settings, model) as rb: await rb.prepare(); await rb.catch_up()``

    ``copy=False`` writes every batch with the live handler, as the live consumer does (the
    bulk path is checked against it that way).
    """

    def __init__(self, settings: Settings, model: ReadModel, *, batch_size: int = REBUILD_BATCH,
                 stop: asyncio.Event | None = None,
                 on_start: Callable[[Replay], None] | None = None,
                 on_batch: Callable[[Replay, Batch], None] | None = None,
                 copy: bool = True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 reader: Reading = "auto",
                 on_index: Callable[[Rebuild, Sequence[str]], None] | None = None,
                 wait: bool = False,
                 on_wait: Callable[[Rebuild, Holder], None] | None = None,
                 on_drop_wait: Callable[[Rebuild, str, list[Holding], float], None]
                 | None = None,
                 on_switch_retry: Callable[[Rebuild, int, int], None] | None = None) -> None:
        self.settings = settings
        self.model = model
        self.live = model.schema(settings)
        self.batch_size = batch_size
        self.stop = stop
        self.on_start = on_start
        self.on_batch = on_batch
        self.copy = copy
        #: Where the log is read (``Replay``'s ``reader``): in a child process for a long
        #: catch-up, so that this one decodes and applies while the other core reads.
        self.reader = reader
        #: Stamps the staging and retired schemas' names.
        self.clock = clock
        self.staging: str | None = None
        self.resumed = False
        #: The staging schema dropped by ``prepare`` because it was begun with another
        #: version of the read model's DDL (another release's), if any.
        self.started_over: str | None = None
        self._handler = model.handler(settings)
        self._bulk = (self._handler if copy and isinstance(self._handler, BulkHandler)
                      else None)
        #: Batches the bulk path gave back to the live handler (e.g. a duplicate on the log).
        self.fallbacks = 0
        self._conn: asyncpg.Connection | None = None
        self._nc: NATS | None = None
        self._loading_ddl, self._built_after = split_indexes(model)
        #: Called with the names of the indexes put off, as their builds begin.
        self.on_index = on_index
        #: The indexes put off that a stop left unmade (the next run makes them).
        self.unbuilt: list[str] = []
        #: Whether ``prepare``/``discard`` wait for another run's lock (``hold``) rather than
        #: raise :class:`RebuildBusy`; ``on_wait`` is told whom it waits for.
        self.wait = wait
        self.on_wait = on_wait
        #: Told, every ``DROP_WAIT_MS``, who holds a staging schema being dropped, and for
        #: how long (s) the drop has waited.
        self.on_drop_wait = on_drop_wait
        #: Told (the try that deadlocked, of how many) when the switch deadlocked with the
        #: live consumer and is tried again (``SWITCH_TRIES``).
        self.on_switch_retry = on_switch_retry
        self._held = False
        #: The first error the bus connection met (it does not reconnect).
        self.bus_error: Exception | None = None

    async def __aenter__(self) -> Rebuild:
        with self._during("connecting"):
            self._conn = await self._connect()
        # No reconnecting: with NATS gone, nats-py tried again every half second for ever,
        # a warning each time (a flood on the operator's terminal) while the run waited on
        # requests that timed out one by one. Closed at the first break, the next request
        # fails at once and the run ends in one line (``sixstep rebuild``): every batch it
        # committed is kept, and the same command resumes once NATS is back.
        self._nc = await connect(self.settings, "sixstep-rebuild", reconnect=False,
                                 error_cb=self._bus_broke)
        return self

    async def _bus_broke(self, error: Exception) -> None:
        """nats-py's error callback: kept, not logged (the run's end says it once)."""
        self.bus_error = self.bus_error or error

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.settings.database_url, server_settings={
            **SESSION_SETTINGS, "application_name": f"sixstep-rebuild {self.model.consumer}"})
        if conn.get_server_version().major >= 14:
            # Not among the connection's settings: an older server, or a platform without
            # the check, would refuse the connection; here only the check is given up.
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.execute(
                    f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
        return conn

    @contextlib.contextmanager
    def _during(self, phase: str) -> Iterator[None]:
        """A database error raised inside says which read model and phase it came from
        (:func:`failed_at`), the innermost phase kept; the error itself goes on as it was."""
        try:
            yield
        except FAILURES as exc:
            if failed_at(exc) is None:
                exc._sixstep_rebuild_failed_at = FailedAt(  # type: ignore[union-attr]
                    self.model.consumer, phase)
            raise

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "use Rebuild as an async context manager"
        return self._conn

    # -- the lock ---------------------------------------------------------------------------

    @property
    def lock_key(self) -> str:
        """The rebuild lock's name: the live schema (its prefix in it) and the consumer, what
        the staging schemas' names are made of; two runs with the same pair write into the
        same staging schema, whatever stream each reads."""
        return f"sixstep-rebuild:{self.live}:{self.model.consumer}"

    async def hold(self) -> None:
        """This read model's rebuild lock, held by this run's session until it closes
        (``prepare`` and ``discard`` take it): a second run (another operator, a retried
        Job's pod, ``--all`` beside a single one) wrote into the same staging schema, or
        dropped it under the first (one begun with another DDL). Raises
        :class:`RebuildBusy` naming the holder, unless ``wait``: then it waits for it
        (:class:`RebuildStopped` if ``stop`` is set meanwhile). A session-level advisory
        lock: a run killed (kill -9, a pod evicted) leaves it with its session, which the
        server ends once it sees the client gone (:data:`CLIENT_CHECK_MS`).
        :func:`hold_together` takes several read models' locks, all or none."""
        await hold_together([self])

    async def _try_hold(self) -> Holder | None:
        """The lock taken now (None), or the session that holds it."""
        while not self._held:
            if await self.conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                                        self.lock_key):
                self._held = True
                break
            holder = await self.holder()
            if holder is not None:
                return holder
            # it ended between the two statements: try again
        return None

    async def _wait_for(self, holder: Holder) -> None:
        """The lock, once ``holder`` gave it up (``wait``)."""
        if self.on_wait:
            self.on_wait(self, holder)
        waiting = self.conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))",
                                    self.lock_key)
        if self.stop is None:
            await waiting
        elif not await unless_stopped(waiting, self.stop):
            raise RebuildStopped(self.model.consumer, holder)
        self._held = True

    async def _let_go(self) -> None:
        if self._held:
            await self.conn.fetchval("SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                                     self.lock_key)
            self._held = False

    async def holder(self) -> Holder | None:
        """The session holding this read model's rebuild lock, if any."""
        row = await self.conn.fetchrow(
            "SELECT a.pid, a.application_name, a.backend_start,"
            " coalesce(a.client_hostname, host(a.client_addr)) AS client"
            " FROM (SELECT hashtextextended($1, 0) AS k) k"
            " JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid::bigint = (k.k >> 32) & 4294967295"
            " AND l.objid::bigint = k.k & 4294967295"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " JOIN pg_stat_activity a ON a.pid = l.pid", self.lock_key)
        if row is None:
            return None
        return Holder(row["pid"], row["application_name"] or "", row["client"],
                      row["backend_start"])

    # -- staging ----------------------------------------------------------------------------

    def _prefix(self, tag: str) -> str:
        """``<live>__rb_<consumer>_``: read models sharing a schema (feedback's views and its
        figures) are rebuilt in staging schemas of their own, at the same time if need be."""
        return f"{self.live}{tag}{self.model.consumer}_"

    async def schemas(self, tag: str = STAGING) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname",
            self._prefix(tag))
        return [r["nspname"] for r in rows]

    async def discard(self) -> list[str]:
        """Drop every unfinished staging schema of this read model."""
        with self._during("discarding"):
            await self.hold()
            dropped = await self.schemas()
            for schema in dropped:
                await self._drop(schema)
        return dropped

    async def _drop(self, schema: str) -> None:
        """``DROP SCHEMA schema CASCADE``, telling ``on_drop_wait`` whom it waits for while
        another session holds one of its tables (a run killed on a server that cannot see
        its client gone, whose CREATE INDEX goes on; a reader of a dry run's tables): it
        waited silently, for minutes. Asked on this session between short lock waits (no
        other session: a role may be unable to open one). A stop (Ctrl-C) while it waits
        raises :class:`DropStopped`, nothing dropped."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            try:
                async with self.conn.transaction():
                    await self.conn.execute(f"SET LOCAL lock_timeout = '{DROP_WAIT_MS}ms'")
                    await self.conn.execute(f"DROP SCHEMA {q(schema)} CASCADE")
                return
            except asyncpg.LockNotAvailableError:
                pass
            holders = await self._holding(schema)
            if self.on_drop_wait:
                self.on_drop_wait(self, schema, holders, loop.time() - began)
            if self.stop is not None and self.stop.is_set():
                raise DropStopped(self.model.consumer, schema, holders)

    async def _holding(self, schema: str) -> list[Holding]:
        """The other sessions holding a lock on a relation of ``schema``."""
        rows = await self.conn.fetch(
            "SELECT a.pid, a.application_name, a.backend_start, a.state, a.state_change,"
            " coalesce(a.client_hostname, host(a.client_addr)) AS client,"
            # its tables, not their indexes (every lock on a table takes them too)
            " coalesce(array_agg(DISTINCT c.relname::text ORDER BY c.relname::text)"
            " FILTER (WHERE c.relkind <> 'i'),"
            " array_agg(DISTINCT c.relname::text ORDER BY c.relname::text)) AS tables"
            " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = $1"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.granted AND l.pid <> pg_backend_pid()"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY a.pid", schema)
        return [Holding(Holder(r["pid"], r["application_name"] or "", r["client"],
                               r["backend_start"]), r["state"] or "", r["state_change"],
                        list(r["tables"])) for r in rows]

    async def prepare(self, *, fresh: bool = False) -> str:
        """The staging schema: an unfinished one (resumed), or a new one."""
        with self._during("preparing"):
            return await self._prepare(fresh)

    async def _prepare(self, fresh: bool) -> str:
        await self.hold()  # until this session ends: to the switch, or the run's end
        if fresh:
            await self.discard()
        existing = await self.schemas()
        ddl_hash = hashlib.sha256("\n".join(self.model.ddl).encode()).hexdigest()[:16]
        if existing and await self._begun_with(existing[-1]) not in (None, ddl_hash):
            # Begun with another version of the read model's DDL: another release's, a dry
            # run kept from before an upgrade (its tables lack the new columns, its rows were
            # written by the old handler). Nothing of it can go on, and the new DDL's
            # statements may not even run on its tables: start over, and say so (until
            # upgrade48 the command exited 1 and told the operator to pass --fresh).
            self.started_over = existing[-1]
            await self.discard()
            existing = []
        self.resumed = bool(existing)
        stamp = self.clock().strftime("%Y%m%dT%H%M%S")
        self.staging = existing[-1] if existing else f"{self._prefix(STAGING)}{stamp}"
        if len(self.staging) > 63:
            raise RebuildError(f"schema name {self.staging!r} is longer than PostgreSQL allows")
        # The staging tables grow from nothing while the same statements run batch after
        # batch: a plan cached while a table was small (a sequential scan) would stay.
        await self.conn.execute("SET plan_cache_mode = force_custom_plan")
        # A batch's commit need not wait for its WAL flush: after a crash PostgreSQL comes
        # back with a prefix of the batches, each whole with its rebuild_state, and the
        # rebuild resumes from there. The switch commits synchronously (``_swap``).
        await self.conn.execute("SET synchronous_commit = off")
        # The indexes no handler finds rows by come once the log is read (``_index``).
        await make_tables(self.conn, self.staging,
                          [*self._loading_ddl, *TRACKING_DDL, *STATE_DDL])
        await self.conn.execute(
            "INSERT INTO rebuild_state (consumer, ddl_hash) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING", self.model.consumer, ddl_hash)
        built_with = await self.conn.fetchval(
            "SELECT ddl_hash FROM rebuild_state WHERE consumer = $1", self.model.consumer)
        if built_with != ddl_hash:
            raise RebuildError(f"{self.staging} was started with another version of the read "
                               "model's DDL; start over with --fresh")
        # The stream it is built from (``shared.bus.stream_identity``): the switch hands it
        # to the live consumer with the tracking rows; a staging schema begun on a stream
        # since made anew cannot go on.
        await self._on_its_stream()
        return self.staging

    async def _begun_with(self, staging: str) -> str | None:
        """The hash of the DDL ``staging`` was begun with (None: it recorded none yet)."""
        table = await self.conn.fetchval("SELECT to_regclass($1)",
                                         f"{q(staging)}.rebuild_state")
        if table is None:
            return None
        return await self.conn.fetchval(
            f"SELECT ddl_hash FROM {q(staging)}.rebuild_state WHERE consumer = $1",
            self.model.consumer)

    async def _on_its_stream(self) -> None:
        """Raise unless the stream is the one the staging schema was built from (recorded
        at its first ``prepare``)."""
        assert self._nc is not None
        try:
            seen = await stream_seen(self._nc.jetstream(), self.settings.stream_name)
        except NotFoundError:  # as a replay says it (it went past as a traceback)
            raise NoSuchStream(f"no stream {self.settings.stream_name!r} at "
                               f"{without_password(self.settings.nats_url)}") from None
        why = await check_stream(self.conn, self.model.consumer, seen,
                                 applied_seq_sql=REBUILT_SEQ)
        if why is not None:
            raise RebuildError(f"{self.staging} was begun on another stream ({why}); start "
                               "over with --fresh")

    async def state(self) -> asyncpg.Record:
        return await self.conn.fetchrow(
            "SELECT last_seq, applied, skipped FROM rebuild_state WHERE consumer = $1",
            self.model.consumer)

    async def skipped(self, limit: int = 20) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT seq, type, reason FROM rebuild_skipped ORDER BY seq LIMIT $1", limit)

    # -- catching up ------------------------------------------------------------------------

    def selection(self) -> Selection:
        return Selection(subjects=tuple(self.model.subjects(self.settings)))

    async def catch_up(self, *, stoppable: bool = True) -> int:
        """Apply what the log holds beyond the staging schema's last sequence, then make the
        indexes put off (unless stopped: a stop while they are made cancels their builds,
        ``unbuilt`` names those left); returns the last sequence."""
        assert self.staging is not None, "prepare() first"
        stop = self.stop if stoppable else None
        with self._during("catching up"):
            last_seq = (await self.state())["last_seq"]
        replay = Replay(self.settings, self.selection(), from_seq=last_seq + 1,
                        batch_size=self.batch_size, stop=stop, nc=self._nc, reader=self.reader)
        with self._during("catching up"):
            async with replay:
                if self.on_start:
                    self.on_start(replay)
                with collections_paused() as collect:
                    async for batch in read_ahead(replay):
                        await self._apply(batch)
                        collect(batch.scanned)
                        if self.on_batch:
                            self.on_batch(replay, batch)
        with self._during("catching up"):
            last_seq = int((await self.state())["last_seq"])
        if not (stop is not None and stop.is_set()):
            await self._index(stop)
        return last_seq

    async def _index(self, stop: asyncio.Event | None = None) -> list[str]:
        """The indexes put off while the log was read (``ReadModel.built_after``), each
        made in one pass over its table; those already there are left as they are. Returns
        (and keeps in ``unbuilt``) those ``stop`` left unmade.

        A run killed while making one (kill -9) leaves its CREATE INDEX running: PostgreSQL
        finishes it and commits. The run started again then made the same index beside it
        and failed on the catalog's unique name once the other committed. Under a lock
        CREATE INDEX's own conflicts with, it waits for that one and finds the index made.
        Those already made cost one look-up in all (the switch calls this under its lock).

        ``stop`` set while one is being made cancels it on the server (an index of a large
        table takes minutes to sort, and Ctrl-C waited for every one): its transaction rolls
        back, those made before it stay, and the next run makes the rest.
        """
        with self._during("making indexes"):
            made = await self._made_indexes()
        todo: list[tuple[str, str, str]] = []
        for statement in self._built_after:
            found = _CREATES_INDEX.match(statement.strip())
            assert found is not None  # split_indexes took only these
            if found[1].lower() not in made:
                todo.append((found[1], found[2], statement))
        self.unbuilt = [name for name, _, _ in todo]
        if not todo or (stop is not None and stop.is_set()):
            return self.unbuilt
        if self.on_index:
            self.on_index(self, list(self.unbuilt))
        if stop is None:
            await self._make_indexes(todo)
        elif not await unless_stopped(self._make_indexes(todo), stop):
            # The catalog says what the cancel left: a build that committed as the cancel
            # came is made.
            with self._during("making indexes"):
                made = await self._made_indexes()
            self.unbuilt = [name for name, _, _ in todo if name.lower() not in made]
        return self.unbuilt

    async def _made_indexes(self) -> set[str]:
        return set(await self.conn.fetchval(
            "SELECT coalesce(array_agg(relname::text), '{}') FROM pg_class WHERE"
            " relkind = 'i' AND relnamespace = to_regnamespace($1)", q(str(self.staging))))

    async def _make_indexes(self, todo: Sequence[tuple[str, str, str]]) -> None:
        for name, table, statement in todo:
            with self._during("making indexes"):
                async with self.conn.transaction():
                    await self.conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
                    await self.conn.execute(statement)
            self.unbuilt.remove(name)

    async def _apply(self, batch: Batch) -> None:
        """The batch and its bookkeeping in one transaction: through the bulk path (its
        transaction rolled back whole if the path gives up on it), else the live handler,
        event by event for a batch it refuses (the refused ones recorded and passed)."""
        conn = self.conn
        unreadable: list[tuple[int, str | None, str]] = [(u.seq, None, u.reason)
                                                          for u in batch.undecodable]
        if batch.events and self._bulk is not None:
            try:
                async with conn.transaction():
                    try:
                        await self._bulk.copy_apply(conn, batch.events)
                    except Exception as exc:
                        raise _GaveUp from exc
                    await self._settle(batch, unreadable, [])
                return
            except _GaveUp:
                self.fallbacks += 1
        async with conn.transaction():
            refused: list[tuple[int, str | None, str]] = []
            if batch.events:
                try:
                    async with conn.transaction():
                        await self._handler.apply(conn, batch.events)
                except Exception:
                    refused = await self._one_by_one(batch.events, batch.seqs)
            await self._settle(batch, unreadable, refused)

    async def _settle(self, batch: Batch, unreadable: list[tuple[int, str | None, str]],
                      refused: list[tuple[int, str | None, str]]) -> None:
        """What the batch leaves beside its effects: the skipped events (undecodable, and
        those the live handler refused, among ``batch.events``), the tracking records,
        ``rebuild_state``."""
        skipped = [*unreadable, *refused]
        if skipped:
            await self.conn.executemany(
                "INSERT INTO rebuild_skipped (seq, type, reason) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING", skipped)
        await self.conn.execute(SETTLE, self.model.consumer,
                                *_tracking(batch.events, batch.seqs), batch.last_seq,
                                len(batch.events) - len(refused), len(skipped))

    async def _one_by_one(self, events: Sequence[Envelope],
                          seqs: Sequence[int]) -> list[tuple[int, str | None, str]]:
        refused = []
        for e, seq in zip(events, seqs, strict=True):
            try:
                async with self.conn.transaction():
                    await self._handler.apply(self.conn, [e])
            except Exception as exc:
                refused.append((seq, e.type, f"{type(exc).__name__}: {str(exc)[:500]}"))
        return refused

    # -- comparing --------------------------------------------------------------------------

    async def _relations(self, schema: str) -> dict[str, str]:
        rows = await self.conn.fetch(
            "SELECT c.relname, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON"
            " n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r','p','v','m')"
            " ORDER BY c.relname", schema)
        return {r["relname"]: r["relkind"] for r in rows if r["relname"] not in BOOKKEEPING}

    async def _columns(self, schema: str, table: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = ($1 || '.' || $2)::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", q(schema), q(table))
        return [r["attname"] for r in rows]

    async def _primary_key(self, schema: str, table: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = ($1 || '.' || $2)::regclass"
            " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            q(schema), q(table))
        return [r["attname"] for r in rows]

    async def _has_tracking(self, schema: str) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f"{q(schema)}.consumer_tracking"))

    async def diff(self, *, samples: int = 5) -> Diff:
        """The rebuilt view against the live one (cases the live one lags on left out)."""
        assert self.staging is not None, "prepare() first"
        with self._during("comparing"):
            return await self._diff(samples)

    async def _diff(self, samples: int) -> Diff:
        assert self.staging is not None
        await self._index()  # a catch-up stopped before its end put them off
        staging, live = q(self.staging), q(self.live)
        tracked = await self._has_tracking(self.live)
        in_sync = (f"(SELECT s.key FROM {staging}.consumer_tracking s JOIN {live}"
                   ".consumer_tracking x ON x.consumer = s.consumer AND x.key = s.key"
                   " AND x.seq = s.seq WHERE s.consumer = $1)")
        live_relations = await self._relations(self.live)
        tables = []
        for table in await self._relations(self.staging):
            t = q(table)
            rebuilt_rows = await self.conn.fetchval(f"SELECT count(*) FROM {staging}.{t}")
            if table not in live_relations:
                tables.append(TableDiff(table, 0, rebuilt_rows, only_rebuilt=rebuilt_rows,
                                        missing_live=True))
                continue
            live_rows = await self.conn.fetchval(f"SELECT count(*) FROM {live}.{t}")
            mine = await self._columns(self.staging, table)
            theirs = set(await self._columns(self.live, table))
            common = [c for c in mine if c in theirs]
            pk = await self._primary_key(self.staging, table) or common
            compared = [c for c in common if c not in pk and c not in self.model.volatile]
            join = " AND ".join(f"l.{q(c)} = r.{q(c)}" for c in pk)
            changed = " OR ".join(f"l.{q(c)} IS DISTINCT FROM r.{q(c)}" for c in compared)
            changed = f"({changed})" if changed else "false"
            key = self.model.keys.get(table)
            where = (f"COALESCE(l.{q(key)}, r.{q(key)}) IN {in_sync}" if key and tracked
                     else "true")
            args = [self.model.consumer] if key and tracked else []
            source = (f"FROM (SELECT true AS _p, * FROM {live}.{t}) l FULL JOIN"
                      f" (SELECT true AS _p, * FROM {staging}.{t}) r ON {join} WHERE {where}")
            counts = await self.conn.fetchrow(
                "SELECT count(*) FILTER (WHERE l._p IS NULL) AS only_rebuilt,"
                " count(*) FILTER (WHERE r._p IS NULL) AS only_live,"
                f" count(*) FILTER (WHERE l._p AND r._p AND {changed}) AS changed {source}",
                *args)
            found = TableDiff(table, live_rows, rebuilt_rows, counts["only_live"],
                              counts["only_rebuilt"], counts["changed"], compared)
            if not found.same and samples:
                rows = await self.conn.fetch(
                    f"SELECT to_jsonb(l) AS l, to_jsonb(r) AS r {source} AND (l._p IS NULL"
                    f" OR r._p IS NULL OR {changed}) LIMIT {int(samples)}", *args)
                found.samples = [_sample(row, pk, compared) for row in rows]
            tables.append(found)
        lagging = 0
        if tracked:
            lagging = await self.conn.fetchval(
                f"SELECT count(*) FROM (SELECT key, seq FROM {staging}.consumer_tracking WHERE"
                f" consumer = $1) s FULL JOIN (SELECT key, seq FROM {live}.consumer_tracking"
                " WHERE consumer = $1) x ON x.key = s.key WHERE s.seq IS DISTINCT FROM x.seq",
                self.model.consumer)
        return Diff(self.staging, self.live, tables, lagging, (await self.state())["last_seq"])

    # -- switching --------------------------------------------------------------------------

    async def _live_durables(self) -> list[str]:
        """The live durables of this read model's consumer: its own and those of partitioned
        workers (``<consumer>-p0_1``, ``shared.bus.durable_names.base_consumer``)."""
        assert self._nc is not None
        infos = await durables_of(self._nc.jetstream(), self.settings.stream_name,
                                  self.model.consumer)
        return sorted(i.name for i in infos)

    async def _pause_live_consumers(self, durables: Sequence[str], timeout: float) -> list[str]:
        """Pause ``durables`` and wait until none has a batch in hand; returns them."""
        assert self._nc is not None
        js = self._nc.jetstream()
        stream = self.settings.stream_name
        until = (datetime.now(UTC) + timedelta(seconds=timeout + 300)).isoformat()
        paused: list[str] = []
        try:
            for name in durables:
                with contextlib.suppress(NotFoundError):  # gone meanwhile: nothing to pause
                    await js.pause_consumer(stream, name, until.replace("+00:00", "Z"))
                    paused.append(name)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            for name in paused:
                while (info := await js.consumer_info(stream, name)).num_ack_pending:
                    if loop.time() > deadline:
                        raise RebuildError(f"the live consumer {name} still had "
                                           f"{info.num_ack_pending} events in hand after "
                                           f"{timeout} s")
                    await asyncio.sleep(0.05)
        except BaseException:
            await self._resume(paused)
            raise
        return paused

    async def _resume(self, paused: Sequence[str]) -> None:
        assert self._nc is not None
        for name in paused:
            with contextlib.suppress(Exception):
                await self._nc.jetstream().resume_consumer(self.settings.stream_name, name)

    async def switch(self, *, pause_timeout: float = 30.0,
                     lock_timeout_s: float = 10.0) -> SwitchResult:
        """Catch up and put the rebuilt tables in place of the live ones, atomically."""
        with self._during("switching"):
            return await self._switch(pause_timeout, lock_timeout_s)

    async def _switch(self, pause_timeout: float, lock_timeout_s: float) -> SwitchResult:
        assert self.staging is not None and self._nc is not None, "prepare() first"
        # Partitioned workers' durables too: each keeps tracking rows of its own, which
        # the swap replaces with the rebuilt ones (a stream made anew: they refused it).
        durables = await self._live_durables()
        paused = await self._pause_live_consumers(durables, pause_timeout)
        try:
            await self.catch_up()
            if self.stop is not None and self.stop.is_set():
                raise RebuildError("stopped before the switch; run again to resume")
            # A stream made anew since ``prepare``: the catch-up read the new stream's
            # sequences against tracking rows of the old one (events skipped, others applied
            # twice), and the swap put that in place of the live view, readers saw it, and the
            # live consumer refused the stream again.
            await self._on_its_stream()
            result = await self._swap_again_after_deadlocks(lock_timeout_s, durables)
            result.paused_consumer = self.model.consumer in paused
        finally:
            await self._resume(paused)
        await self.conn.execute(f"DROP SCHEMA {q(self.staging)} CASCADE")
        await self.conn.execute("SET search_path TO DEFAULT")
        return result

    async def _swap_again_after_deadlocks(self, lock_timeout_s: float,
                                          durables: Sequence[str]) -> SwitchResult:
        """``_swap``, once more after PostgreSQL broke a deadlock by rolling it back, up to
        ``SWITCH_TRIES`` times in all (``on_switch_retry`` told of each). The swap locks the
        live tables, then moves the live consumer's tracking rows; a batch of the live
        consumer (one of a worker, a before-leader, not paused) writes its tracking rows
        first, then the tables: each waited for the other, PostgreSQL rolled the swap back,
        and the analyst saw asyncpg's DeadlockDetectedError as a traceback. Rolled back
        whole, the swap is the same work again once that batch has committed; a batch
        applied one event at a time takes them in the other order, so no one order of the
        swap's locks avoids both."""
        for attempt in range(1, SWITCH_TRIES + 1):
            try:
                return await self._swap(lock_timeout_s, durables)
            except asyncpg.LockNotAvailableError:
                # The swap's transaction rolled back whole: the live view as it was.
                raise RebuildError(f"a session held the live tables (a long read) past the switch's"
                                   f" {lock_timeout_s:g} s lock wait; nothing switched, run "
                                   "again to resume") from None
            except asyncpg.DeadlockDetectedError:
                if attempt == SWITCH_TRIES:
                    raise RebuildError(
                        f"the switch deadlocked with the live consumer {SWITCH_TRIES} times"
                        " (PostgreSQL rolled it back each time); nothing switched, run again"
                        " to resume") from None
                if self.on_switch_retry:
                    self.on_switch_retry(self, attempt, SWITCH_TRIES)
        raise AssertionError("unreachable")

    async def _sequences_go_on(self, staging: str, live: str) -> None:
        """Each sequence of the read model goes on, after the switch, from the larger of its
        live and its rebuilt value: the live one stays (nothing that numbered from it is
        left behind), and what the rebuild numbered (the figures' notes and the marks of
        the closed months, ``fig_noted_seq``) stays below what is numbered next. A live
        sequence behind the rebuilt one (its notes of before numbered by the rebuild only)
        numbered new notes below a closed month's rebuilt mark: never counted again."""
        rows = await self.conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY c.relname", self.staging)
        for r in rows:
            name = q(r["relname"])
            if await self.conn.fetchval("SELECT to_regclass($1) IS NULL",
                                        f"{live}.{name}"):
                await self.conn.execute(f"ALTER SEQUENCE {staging}.{name} SET SCHEMA {live}")
                continue
            await self.conn.execute(
                f"SELECT setval('{live}.{name}', greatest((SELECT last_value FROM"
                f" {live}.{name}), (SELECT last_value FROM {staging}.{name})))")

    async def _live_rows_kept(self, retired: str, live: str, present: Mapping[str, str]
                              ) -> None:
        """The rows of the model's ``kept_live`` tables that a use case wrote to the live
        view and the log cannot give the rebuild (a close's mark of its month, taken before
        its count, its ``PeriodClosed`` not recorded yet): copied from the retired table
        where the rebuilt one has no row of their key."""
        for table in sorted(self.model.kept_live):
            if table not in present:
                continue
            # the names as a list (a name may hold ", ": one string split on it cut it)
            names: list[str] = await self.conn.fetchval(
                "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute"
                " WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                f"{live}.{q(table)}")
            numbered = self.model.kept_numbered.get(table, {})
            columns = ", ".join(q(c) for c in names)
            picked = ", ".join(_kept_number(c, numbered, live) for c in names)
            order = next((f" ORDER BY {q(c)}" for c, s in numbered.items() if s), "")
            await self.conn.execute(
                f"INSERT INTO {live}.{q(table)} ({columns}) SELECT {picked} FROM"
                f" {retired}.{q(table)}{order} ON CONFLICT DO NOTHING")
        if self.model.kept_live and self.model.kept_live <= present.keys():
            for statement in self.model.at_switch:
                await self.conn.execute(statement.format(retired=retired, live=live))

    async def _retired_name(self) -> str:
        """``<live>__old_<consumer>_<stamp>``, to the microsecond, with ``_<n>`` after it if
        a switch at the same moment (or a clock set back) took that name already: two
        switches within one second must not collide. While the clock goes forward the names
        sort in the order of the switches: ``schemas(RETIRED)[:-n]`` are the older ones."""
        base = f"{self._prefix(RETIRED)}{self.clock():%Y%m%dT%H%M%S%f}"
        taken = set(await self.schemas(RETIRED))
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        if len(name) > 63:
            raise RebuildError(f"schema name {name!r} is longer than PostgreSQL allows")
        return name

    async def _swap(self, lock_timeout_s: float, durables: Sequence[str]) -> SwitchResult:
        assert self.staging is not None
        conn = self.conn
        staging, live = q(self.staging), q(self.live)
        consumer = self.model.consumer
        async with conn.transaction():
            retired = await self._retired_name()
            await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
            await conn.execute("SET LOCAL synchronous_commit = on")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {live}")
            rebuilt = await self._relations(self.staging)
            present = await self._relations(self.live)
            moving_out = [t for t in rebuilt if t in present]
            if moving_out:
                await conn.execute(f"LOCK TABLE {', '.join(f'{live}.{q(t)}' for t in moving_out)}"
                                   " IN ACCESS EXCLUSIVE MODE")
            # The last events, under the lock: nothing can be applied to the live view now.
            await self.catch_up(stoppable=False)
            last_seq = int((await self.state())["last_seq"])
            await conn.execute(f"CREATE SCHEMA {q(retired)}")
            for t in moving_out:
                await conn.execute(f"ALTER {_ALTER[present[t]]} {live}.{q(t)} SET SCHEMA"
                                   f" {q(retired)}")
            for t, kind in rebuilt.items():
                await conn.execute(f"ALTER {_ALTER[kind]} {staging}.{q(t)} SET SCHEMA {live}")
            await self._sequences_go_on(staging, live)
            await self._live_rows_kept(q(retired), live, present)
            await conn.execute(f"SET LOCAL search_path TO {live}, public")
            for statement in TRACKING_DDL:
                await conn.execute(statement)
            # The live consumer, and each partitioned worker's durable (on the stream, or in
            # the live bookkeeping: a worker's progress rows), goes on from the rebuilt
            # tracking rows, against the stream this was built from. A partitioned durable
            # gets every rebuilt row: it only ever looks up the cases of its own partitions.
            known = await conn.fetch(f"SELECT consumer FROM {live}.consumer_progress UNION"
                                     f" SELECT consumer FROM {live}.consumer_stream")
            names = sorted(n for n in {consumer, *durables, *(r["consumer"] for r in known)}
                           if base_consumer(n) == consumer)
            built_on = await conn.fetchval(
                f"SELECT stream_created FROM {staging}.consumer_stream WHERE consumer = $1",
                consumer)
            for name in names:
                was_on = await conn.fetchval(
                    f"SELECT stream_created FROM {live}.consumer_stream WHERE consumer = $1",
                    name)
                if was_on is not None and built_on is not None and was_on != built_on:
                    # Its replayed dead letters are keyed by sequences of the old stream.
                    await forget_replays(conn, name, self.live)
                # The rebuilt rows block no case: nothing of the live consumer's is held.
                await conn.execute(f"DELETE FROM {live}.consumer_held WHERE consumer = $1", name)
                for table, columns in HANDED_OVER.items():
                    await conn.execute(f"DELETE FROM {live}.{table} WHERE consumer = $1", name)
                    await conn.execute(
                        f"INSERT INTO {live}.{table} (consumer, {columns}) SELECT $2::text,"
                        f" {columns} FROM {staging}.{table} WHERE consumer = $1", consumer, name)
            await conn.execute(
                f"CREATE TABLE {q(retired)}.switch_info AS SELECT $1::text AS consumer,"
                " $2::text AS rebuilt_in, $3::bigint AS last_seq, now() AS switched_at",
                consumer, self.staging, last_seq)
        return SwitchResult(retired, last_seq, list(rebuilt), False)


async def hold_together(rebuilds: Sequence[Rebuild]) -> None:
    """Every one's rebuild lock (``Rebuild.hold``), or none: ``rebuild --all`` refused at
    one read model (another run holds it) kept the locks it took for those before it until
    it exited, and while it waited for one (``wait``) it held the others, refusing their
    own single runs. Now the locks taken are let go before it raises :class:`RebuildBusy`,
    or before it waits for the one held (then it tries them all again)."""
    while True:
        busy: tuple[Rebuild, Holder] | None = None
        for rb in rebuilds:
            with rb._during("preparing"):
                holder = await rb._try_hold()
            if holder is not None:
                busy = (rb, holder)
                break
        if busy is None:
            return
        rb, holder = busy
        for other in rebuilds:
            if other is not rb:
                with other._during("preparing"):
                    await other._let_go()
        if not rb.wait:
            raise RebuildBusy(rb.model.consumer, holder)
        with rb._during("preparing"):
            await rb._wait_for(holder)


async def unless_stopped(work: Awaitable[Any], stop: asyncio.Event) -> bool:
    """``work`` done, unless ``stop`` is set first: then the task is cancelled, and asyncpg
    cancels the statement under way on the server with PostgreSQL's cancel request, keyed
    by the session's own secret (its transaction rolls back). That needs no other session:
    ``pg_cancel_backend`` from one was refused to a role that cannot open another (its
    ``CONNECTION LIMIT``, a full server) or whose sessions run as another role (``ALTER
    ROLE ... SET role``: 42501), silently, and the builds went on after "cancelling". Returns
    whether ``work`` ended by itself; its own error is raised."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(stopped, task)  # the cancel delivered: nothing later is hit
    if task.cancelled():
        return False
    task.result()
    return True


async def catch_up_together(rebuilds: Sequence[Rebuild], *, batch_size: int = REBUILD_BATCH,
                            stop: asyncio.Event | None = None,
                            on_start: Callable[[Replay], None] | None = None,
                            on_batch: Callable[[Replay, Batch], None] | None = None) -> int:
    """Several read models caught up from ONE replay: the log is read and decoded once, and
    its events go to the read models whose subject filters they came on, each written on its
    own connection, all at the same time (PostgreSQL writes one read model's batch while
    another's is being prepared). A read model is given its events in batches of
    ``batch_size`` of its own, in stream order, with its undecodable ones: the batches its
    own replay reads when the server filters its subjects exactly. Each keeps its own
    ``rebuild_state``; one that was further on (a resumed staging schema) skips what it has.
    Memory: one log batch and at most one pending batch per read model. Every rebuild must
    be prepared. ``on_start`` and ``on_batch`` see the one replay (its log batches), for
    progress. Returns the events read."""
    if not rebuilds:
        return 0
    settings = rebuilds[0].settings
    after: list[int] = []
    for rb in rebuilds:
        with rb._during("catching up"):
            after.append(int((await rb.state())["last_seq"]))
    routes = _Routes([SubjectFilter(rb.selection().filter_subjects(settings))
                      for rb in rebuilds])
    subjects = _without_overlaps([s for rb in rebuilds for s in rb.selection().subjects])
    replay = Replay(settings, Selection(subjects=subjects), from_seq=min(after) + 1,
                    batch_size=batch_size, stop=stop, nc=rebuilds[0]._nc,
                    reader=rebuilds[0].reader)
    pending = [Batch(first_seq=seen + 1, last_seq=seen) for seen in after]

    async def apply(ready: list[list[Batch]]) -> None:
        async def one(rb: Rebuild, shares: list[Batch]) -> None:
            with rb._during("catching up"):
                for share in shares:  # one connection: one after the other
                    await rb._apply(share)

        await gather_all(*(one(rb, shares) for rb, shares in
                           zip(rebuilds, ready, strict=True) if shares))

    async with replay:
        if on_start:
            on_start(replay)
        with collections_paused() as collect:
            async for batch in read_ahead(replay):
                await apply(_deal(batch, routes, after, pending, batch_size))
                collect(batch.scanned)
                if on_batch:
                    on_batch(replay, batch)
            for share in pending:  # the rest, up to where the replay ended
                share.last_seq = max(share.last_seq, replay.last_seq)
            await apply([[share] if share.last_seq > seen else []
                         for share, seen in zip(pending, after, strict=True)])
    if not (stop is not None and stop.is_set()):
        # Each on its own connection: PostgreSQL sorts two tables at once on two cores. One
        # failing (the disk full) ends no other's sort half way: the error once all are done.
        # A stop cancels every one's build at once (``Rebuild._index``).
        await gather_all(*(rb._index(stop) for rb in rebuilds))
    return replay.scanned


#: ``CREATE INDEX IF NOT EXISTS <name> ON <table>``: a statement of a read model's DDL that
#: makes the non-unique index ``<name>`` on ``<table>`` (of the search path's schema).
_CREATES_INDEX = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+) ON (?:ONLY )?(\w+)[ (]",
                            re.IGNORECASE)


def split_indexes(model: ReadModel) -> tuple[list[str], list[str]]:
    """``model.ddl`` less the statements that make the indexes of ``built_after``, and
    those statements, each in its order."""
    loading: list[str] = []
    after: list[str] = []
    made: set[str] = set()
    for statement in model.ddl:
        found = _CREATES_INDEX.match(statement.strip())
        if found is not None and found[1] in model.built_after:
            after.append(statement)
            made.add(found[1])
        else:
            loading.append(statement)
    if missing := model.built_after - made:
        raise RebuildError(f"{model.consumer}: built_after names {', '.join(sorted(missing))},"
                           " which no CREATE INDEX IF NOT EXISTS statement of its DDL makes")
    return loading, after


def _deal(batch: Batch, routes: Callable[[str], tuple[int, ...]], after: Sequence[int],
          pending: list[Batch], size: int) -> list[list[Batch]]:
    """``batch`` dealt out to the read models in one pass: each event (undecodable ones
    included, in stream order) added to the pending share of every read model whose subjects
    take it (``routes``) and that is not past it (``after``); per read model, the shares that
    filled up to ``size`` (``pending`` then holds the ones still filling)."""
    items: Iterable[tuple[int, Envelope | None, int, str, Unreadable | None]] = zip(
        batch.seqs, batch.events, batch.stored_versions, batch.subjects,
        itertools.repeat(None))
    if batch.undecodable:
        items = sorted([*items, *((u.seq, None, 0, subject, u) for u, subject in zip(
            batch.undecodable, batch.undecodable_subjects, strict=True))],
            key=lambda item: item[0])
    full: list[list[Batch]] = [[] for _ in pending]
    for seq, e, version, subject, unreadable in items:
        for i in routes(subject):
            if seq <= after[i]:
                continue
            share = pending[i]
            if unreadable is None:
                assert e is not None
                share.events.append(e)
                share.seqs.append(seq)
                share.stored_versions.append(version)
                share.subjects.append(subject)
            else:
                share.undecodable.append(unreadable)
                share.undecodable_subjects.append(subject)
            share.scanned += 1
            share.last_seq = seq
            if share.scanned >= size:
                full[i].append(share)
                pending[i] = Batch(first_seq=seq + 1, last_seq=seq)
    return full


class _Routes:
    """Per subject, the read models (their indexes) whose filters take it, remembered per
    subject (a stream has services x types x partitions of them)."""

    def __init__(self, wanted: Sequence[SubjectFilter]) -> None:
        self.wanted = wanted
        self._seen: dict[str, tuple[int, ...]] = {}

    def __call__(self, subject: str) -> tuple[int, ...]:
        found = self._seen.get(subject)
        if found is None:
            if len(self._seen) > 100_000:
                self._seen.clear()
            found = self._seen[subject] = tuple(
                i for i, keep in enumerate(self.wanted) if keep(subject))
        return found


def _without_overlaps(subjects: Sequence[str]) -> tuple[str, ...]:
    """The filters, each once, less those another one covers (the server refuses a consumer
    whose filters overlap)."""
    unique = list(dict.fromkeys(subjects))
    kept = [s for s in unique if not any(o != s and covers(o, s) for o in unique)]
    if any(_meet(a, b) for i, a in enumerate(kept) for b in kept[i + 1:]):
        return (covering(kept),)  # overlapping without one covering the other
    return tuple(kept)


def _meet(a: str, b: str) -> bool:
    """Whether some subject matches both filters."""
    x, y = a.split("."), b.split(".")
    for i in range(max(len(x), len(y))):
        if (i < len(x) and x[i] == ">") or (i < len(y) and y[i] == ">"):
            return True
        if i >= len(x) or i >= len(y):
            return False
        if x[i] != y[i] and "*" not in (x[i], y[i]):
            return False
    return True


#: While batches are replayed, a collection of the young generations after this many events.
COLLECT_EVERY = 100_000
_paused = 0
_enabled_before = True


@contextlib.contextmanager
def collections_paused() -> Iterator[Callable[[int], None]]:
    """Python's cyclic garbage collector out of the way of a replay; yields ``collect(n)``,
    to be called with the events of each batch done.

    Measured on a rebuild of intake (py-spy, gc callbacks): with the default thresholds the
    collector ran some 9,500 times and took 28 % of the process's CPU, scanning the objects
    of the batches in flight over and over (they outlive hundreds of allocations). Reference
    counting frees a batch's objects when it is done, so here automatic collection is off
    and the young generations (what the replay allocated and still holds, and any garbage
    cycles among it) are collected every ``COLLECT_EVERY`` events: memory stays bounded.
    Older objects (a service's, frozen or not) are left as they are. Concurrent replays in
    one process share one pause.
    """
    global _paused, _enabled_before
    if _paused == 0:
        _enabled_before = gc.isenabled()
        gc.disable()
    _paused += 1
    since = 0

    def collect(events: int) -> None:
        nonlocal since
        since += events
        if since >= COLLECT_EVERY:
            since = 0
            gc.collect(1)

    try:
        yield collect
    finally:
        _paused -= 1
        if _paused == 0 and _enabled_before:
            gc.enable()


async def read_ahead(batches: AsyncIterable[Batch]) -> AsyncIterator[Batch]:
    """The batches of ``batches``, the next one fetched and decoded while the caller applies
    this one (PostgreSQL works on one batch while this process decodes the next). Two
    decoded batches at most: the caller's and the next one."""
    queue: asyncio.Queue[Batch | Exception | None] = asyncio.Queue()
    decoded = asyncio.Semaphore(2)
    source = aiter(batches)

    async def produce() -> None:
        try:
            while True:
                await decoded.acquire()
                batch = await anext(source, None)
                await queue.put(batch)
                if batch is None:
                    return
        except Exception as exc:
            await queue.put(exc)
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
            decoded.release()  # the caller is done with it
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


def _kept_number(column: str, numbered: Mapping[str, str | None], live: str) -> str:
    """A kept row's ``column`` (its name as the catalogue has it) at the switch
    (``ReadModel.kept_numbered``), as SQL: after every rebuilt number, 0, or as it was."""
    name = next((c for c in numbered if c in (column, q(column))), None)  # or quoted
    if name is None:
        return q(column)
    sequence = numbered[name]
    number = f"nextval('{live}.{q(sequence)}')" if sequence else "0"
    return f"CASE WHEN {q(column)} IS NULL THEN NULL ELSE {number} END"


def _sample(row: asyncpg.Record, pk: list[str], compared: list[str]) -> dict[str, Any]:
    live = orjson.loads(row["l"]) if row["l"] else None
    rebuilt = orjson.loads(row["r"]) if row["r"] else None
    either = live or rebuilt or {}
    out: dict[str, Any] = {"key": {c: either.get(c) for c in pk}}
    if live is None:
        out["only"] = "rebuilt"
    elif rebuilt is None:
        out["only"] = "live"
    else:
        out["columns"] = {c: (live.get(c), rebuilt.get(c)) for c in compared
                          if live.get(c) != rebuilt.get(c)}
    return out
