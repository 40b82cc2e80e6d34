"""Group commit: commands that arrive together are saved in one transaction.

The eventsourcing library serialises writers with a table lock so that its notification log
(our outbox) has no gaps. Paying that lock and a commit per HTTP request caps a service near
a few hundred writes a second; paying it once per batch does not. Each caller still gets its
own answer: a command that breaks a rule fails alone, and when the batch as a whole hits an
optimistic-concurrency conflict its commands are re-run one by one so that only the real
loser sees a 409.

The library is synchronous; it runs on one dedicated thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError
from psycopg import sql

from shared import tracing
from shared.kernel.errors import (
    AlreadyDoneError,
    CommandError,
    Forbidden,
    NotFound,
    Unavailable,
    VersionConflict,
)
from shared.security.principals import Principal, current_caller


@dataclass(frozen=True)
class Written:
    """What a caller gets back: the aggregate, its version, and the log position of the write."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = False


class Unit:
    """The aggregates one batch works on: each loaded once, shared by the batch's commands.

    ``caller`` is the principal of the command being run (None for the service's own
    workers): ``get`` and ``add`` refuse an aggregate of another center than the caller's
    token, so no route can write across centers by forgetting a check.
    """

    def __init__(self, loaded: dict[UUID, Aggregate]) -> None:
        self._aggregates = loaded
        self.caller: Principal | None = None
        self._before: dict[UUID, int] = {}

    def begin(self, caller: Principal | None) -> None:
        """A command starts: ``caller`` runs it, and nothing has been touched by it yet.

        A command reaches aggregates only through ``find``, ``get`` and ``add``, so the unit
        notes how many pending events each had when the command first touched it: whether a
        failed command left events behind is then a look at those few, not at the batch.
        """
        self.caller = caller
        self._before = {}

    def _touch(self, aggregate: Any) -> None:
        if aggregate.id not in self._before:
            self._before[aggregate.id] = len(aggregate.pending_events)

    def _check_scope(self, aggregate: Any) -> None:
        caller = self.caller
        if caller is None:
            return
        center = getattr(aggregate, "center_id", None)
        if caller.center_id is not None and center is not None and center != caller.center_id:
            raise Forbidden("this belongs to another center than the token's",
                            token_center=caller.center_id)
        case = getattr(aggregate, "case_id", None)
        if caller.case_id is not None and case is not None and case != caller.case_id:
            raise Forbidden("this belongs to another case than the token's")

    def find(self, aggregate_id: UUID) -> Any | None:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is not None:
            self._touch(aggregate)
        return aggregate

    def get(self, aggregate_id: UUID, what: str = "case") -> Any:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} {aggregate_id} not found", id=str(aggregate_id))
        self._check_scope(aggregate)
        self._touch(aggregate)
        return aggregate

    def add(self, aggregate: Aggregate) -> None:
        self._check_scope(aggregate)
        if aggregate.id not in self._before:
            known = self._aggregates.get(aggregate.id)
            self._before[aggregate.id] = len(known.pending_events) if known is aggregate else 0
        self._aggregates[aggregate.id] = aggregate

    def changed(self) -> bool:
        """Whether the running command left new pending events on what it touched."""
        return any(len(self._aggregates[i].pending_events) != n
                   for i, n in self._before.items() if i in self._aggregates)

    def pending_before(self, aggregate_id: UUID) -> int:
        """How many pending events ``aggregate_id`` had before the running command."""
        return self._before.get(aggregate_id, 0)

    def dirty(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a.pending_events]


Command = Callable[[Unit], Aggregate]


def _links(batch: list[_Item]) -> list[Any]:
    """The batch's span links to each command's trace (nothing while tracing is off)."""
    if not tracing.enabled():
        return []
    return tracing.linked(item.trace.current for item in batch if item.trace is not None)


@dataclass
class _Item:
    command: Command
    ids: Sequence[UUID]
    future: asyncio.Future[Written]
    outcome: Written | BaseException | None = None
    events: list[Any] = field(default_factory=list)
    aggregate: Aggregate | None = None
    caller: Principal | None = None
    trace: tracing.CommandTrace | None = None


class _Tainted(Exception):
    """A command failed after emitting events: the batch's in-memory state is not trustworthy."""


class GroupCommitter:
    """Collects commands for up to ``max_wait_ms`` (or ``max_batch``) and saves them at once."""

    def __init__(self, app: Application, *, max_batch: int = 256, max_wait_ms: float = 2.0,
                 cache_size: int = 20_000, on_batch: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_batch = on_batch
        recorder: Any = app.recorder
        table = sql.SQL("{}.{}").format(sql.Identifier(recorder.datastore.schema),
                                        sql.Identifier(recorder.events_table_name))
        self._versions_sql = sql.SQL(
            "SELECT originator_id, max(originator_version) AS v FROM {} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id").format(table)
        self._position_sql = sql.SQL(
            "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(table)

    # -- the asyncio side -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def submit(self, command: Command, ids: Sequence[UUID]) -> Written:
        """Run ``command`` against the aggregates ``ids`` and commit it with its batch."""
        if self._closing:
            raise Unavailable("the service is shutting down")
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(command, ids, future, caller=current_caller(),
                                    trace=tracing.command_trace()))
        return await future

    async def close(self) -> None:
        """Finish what was accepted, then stop."""
        self._closing = True
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                with tracing.span("group commit", links=_links(batch),
                                  attributes={"sixstep.batch.size": len(batch)}):
                    await loop.run_in_executor(self._executor, self._execute, batch)
            except BaseException as exc:  # a bug in this module: never leave a caller hanging
                for item in batch:
                    if item.outcome is None:
                        item.outcome = exc
            for item in batch:
                if item.future.done():
                    continue
                if isinstance(item.outcome, Written):
                    item.future.set_result(item.outcome)
                else:
                    item.future.set_exception(item.outcome or RuntimeError("no outcome"))
            if self._on_batch is not None:
                self._on_batch(len(batch))

    # -- the writer thread ------------------------------------------------------------------

    def _execute(self, batch: list[_Item]) -> None:
        try:
            if len(batch) > 1:
                try:
                    self._attempt(batch)
                    return
                except (IntegrityError, _Tainted):
                    for item in batch:
                        self._forget(item.ids)
                        item.outcome, item.events, item.aggregate = None, [], None
            for item in batch:
                try:
                    self._attempt([item])
                except IntegrityError:
                    self._forget(item.ids)
                    item.outcome = VersionConflict(
                        "the case was changed by another writer; reload and retry")
                except _Tainted as exc:
                    self._forget(item.ids)
                    item.outcome = exc.__cause__ or exc
        except (PersistenceError, psycopg.Error) as exc:
            for item in batch:
                self._forget(item.ids)
                if not isinstance(item.outcome, Written):
                    item.outcome = Unavailable(f"the event store is unavailable: {exc}")

    def _attempt(self, batch: list[_Item]) -> None:
        unit = Unit(self._load({i for item in batch for i in item.ids}))
        single = len(batch) == 1
        for item in batch:
            unit.begin(item.caller)
            try:
                aggregate = item.command(unit)
            except AlreadyDoneError as done:
                # The first answer's position is settled after the save: it may be in this
                # very batch (a client's retry racing its own first attempt).
                item.outcome = Written(done.aggregate_id, done.version, 0, replayed=True)
                continue
            except CommandError as exc:
                if unit.changed():
                    # Alone, the caller gets its own error; in a batch, each is re-run alone.
                    raise _Tainted() from (exc if single else None)
                item.outcome = exc
                continue
            except Exception as exc:
                raise _Tainted() from exc
            item.aggregate = aggregate
            item.events = list(aggregate.pending_events[unit.pending_before(aggregate.id):])
            if item.trace is not None:
                tracing.stamp(item.events, item.trace)
        dirty = unit.dirty()
        # A batch whose commands all had nothing to record saves nothing, but each caller
        # still gets its answer (the aggregate's current version and position) below.
        recordings = self.app.save(*dirty) if dirty else []
        positions = {id(r.domain_event): r.notification.id for r in recordings}
        self._settle_replays(batch, recordings)
        for aggregate in dirty:
            self._remember(aggregate)
        for item in batch:
            if item.outcome is None and item.aggregate is not None:
                if item.events:
                    last = item.events[-1]
                    item.outcome = Written(item.aggregate.id, last.originator_version,
                                           positions[id(last)])
                else:
                    item.outcome = Written(item.aggregate.id, item.aggregate.version,
                                           self._position_of(item.aggregate.id,
                                                             item.aggregate.version))

    def _settle_replays(self, batch: list[_Item], recordings: Sequence[Any]) -> None:
        """Give each replayed answer the position of the write it repeats."""
        saved = {(r.domain_event.originator_id, r.domain_event.originator_version):
                 r.notification.id for r in recordings}
        for item in batch:
            outcome = item.outcome
            if isinstance(outcome, Written) and outcome.replayed and not outcome.position:
                key = (outcome.aggregate_id, outcome.version)
                item.outcome = Written(outcome.aggregate_id, outcome.version,
                                       saved.get(key) or self._position_of(*key),
                                       replayed=True)

    def _load(self, ids: set[UUID]) -> dict[UUID, Aggregate]:
        if not ids:
            return {}
        datastore: Any = self.app.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._versions_sql, (list(ids),), prepare=True)
            stored = {row["originator_id"]: row["v"] for row in curs.fetchall()}
        loaded: dict[UUID, Aggregate] = {}
        for aggregate_id, version in stored.items():
            cached = self._cache.get(aggregate_id)
            if cached is not None and cached.version == version:
                # No copy: every failure path forgets the ids it touched, so a cached
                # aggregate is only ever left holding committed state.
                self._cache.move_to_end(aggregate_id)
                loaded[aggregate_id] = cached
            else:
                loaded[aggregate_id] = self.app.repository.get(aggregate_id)
        return loaded

    def _remember(self, aggregate: Aggregate) -> None:
        self._cache[aggregate.id] = aggregate
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _forget(self, ids: Sequence[UUID]) -> None:
        for i in ids:
            self._cache.pop(i, None)

    def _position_of(self, aggregate_id: UUID, version: int) -> int:
        datastore: Any = self.app.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._position_sql, (aggregate_id, version), prepare=True)
            row = curs.fetchone()
        return int(row["notification_id"]) if row else 0
