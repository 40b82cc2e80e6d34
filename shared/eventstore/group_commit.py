"""Group commit: commands that arrive together are saved in one transaction.

The eventsourcing library serialises writers with a table lock so that its notification log
(our outbox) has no gaps. Paying that lock and a commit per HTTP request caps a service near
a few hundred writes a second; paying it once per batch does not. Each caller still gets its
own answer: a command that breaks a rule fails alone, and when the batch as a whole hits an
optimistic-concurrency conflict its commands are re-run one by one so that only the real
loser sees a 409.

The library is synchronous; it runs on one dedicated thread so the event loop never blocks.
A backlog that queued while a batch was written is taken by that thread at once, without a
turn of the event loop (``GroupCommitter._backlog``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from psycopg import sql

from shared import tracing
from shared.eventstore.postgres import ended_by_server
from shared.eventstore.recorder import ArrayInsertRecorder, Rendered
from shared.kernel.errors import (
    AlreadyDoneError,
    CommandError,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    OutOfReach,
    StatementTimedOut,
    Unavailable,
    VersionConflict,
)
from shared.security.principals import Principal, current_caller
from shared.settings import DEV_SURVEY_TOKEN_SECRET
from shared.settings import command_digest_key as _command_digest_key


@dataclass(frozen=True)
class Written:
    """What a caller gets back: the aggregate, its version, and the log position of the write."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = False


def _letters(name: str) -> str:
    """An aggregate's kind as its letters in lower case: "follow-up" and ``FollowUp`` alike."""
    return "".join(ch for ch in name.lower() if ch.isalpha())


def _kind(aggregate: Any) -> str:
    return str(getattr(type(aggregate), "KIND", type(aggregate).__name__))


ANOTHER_CENTER = "this belongs to another center than the token's"
ANOTHER_CASE = "this belongs to another case than the token's"


def out_of_scope(caller: Principal | None, aggregate: Any) -> str | None:
    """Why ``aggregate`` (anything with a ``center_id`` and a ``case_id``: an aggregate, its
    first event) is out of the caller's reach, or None: another center's than the token's,
    another case's than a resident's token."""
    if caller is None:
        return None
    center = getattr(aggregate, "center_id", None)
    if caller.center_id is not None and center is not None and center != caller.center_id:
        return ANOTHER_CENTER
    case = getattr(aggregate, "case_id", None)
    if caller.case_id is not None and case is not None and case != caller.case_id:
        return ANOTHER_CASE
    return None


def _reach(aggregate: Any, what: str, why: str) -> OutOfReach:
    """What a refusal of ``aggregate`` kept from its caller, for the operators' log."""
    return OutOfReach(what, str(aggregate.id), getattr(aggregate, "center_id", None),
                      "another_center" if why == ANOTHER_CENTER else "another_case")


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
        why = out_of_scope(caller, aggregate)
        if why is not None:
            assert caller is not None
            refused = Forbidden(why, **({"token_center": caller.center_id}
                                        if why == ANOTHER_CENTER else {}))
            refused.out_of_reach = _reach(aggregate, _kind(aggregate), why)
            raise refused

    def find(self, aggregate_id: UUID) -> Any | None:
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is not None:
            self._touch(aggregate)
        return aggregate

    def get(self, aggregate_id: UUID, what: str = "case") -> Any:
        """The aggregate, scope-checked; 404 unless it is a ``what`` (a case's id where a plan
        is asked for is no plan): its class's name, or its ``KIND`` when it has one
        (``FollowUp`` is a "follow-up", ``HelpTask`` a "help task"). Another center's
        aggregate is a 404 too, worded as for none (since December 2026; it was a 403): the
        ids are worked out from a center and an Idempotency-Key (a case, a plan) or from a
        case's events (a survey, a rule's follow-up), so a 403 said which exist there (which
        cases, which were resolved). So is one of another case than a resident's token is
        bound to (it was a 403 unless ``unseen_elsewhere``: a resident signed in for their own
        case could tell which of the center's cases had a survey, i.e. were resolved)."""
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None or (what and _letters(_kind(aggregate)) != _letters(what)):
            raise NotFound(f"{what} {aggregate_id} not found", id=str(aggregate_id))
        if (why := out_of_scope(self.caller, aggregate)) is not None:
            refused = NotFound(f"{what} {aggregate_id} not found", id=str(aggregate_id))
            refused.out_of_reach = _reach(aggregate, what or _kind(aggregate), why)
            raise refused
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

    def recorded_by_command(self) -> list[tuple[UUID, int]]:
        """The last new event (aggregate id, version) of each aggregate the command in hand
        gave events to: its answer's position covers them all (a bad review's rectification
        beside the survey), so a read ``?after=`` that position sees the whole command."""
        return [(i, self._aggregates[i].pending_events[-1].originator_version)
                for i, n in self._before.items()
                if i in self._aggregates and len(self._aggregates[i].pending_events) > n]

    def pending_before(self, aggregate_id: UUID) -> int:
        """How many pending events ``aggregate_id`` had before the running command."""
        return self._before.get(aggregate_id, 0)

    def dirty(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a.pending_events]

    def answered(self, ids: Sequence[UUID], key: str) -> bool:
        """Whether one of the aggregates ``ids`` in the caller's reach applied a command
        under ``key`` (``RemembersCommands.answered``): another center's is as none, so the
        answer tells nobody which keys it used."""
        for aggregate_id in ids:
            aggregate = self._aggregates.get(aggregate_id)
            answered = getattr(aggregate, "answered", None)
            if answered is not None and out_of_scope(self.caller, aggregate) is None \
                    and answered(key):
                return True
        return False


Command = Callable[[Unit], Aggregate]

class KeyedRefusal(NamedTuple):
    """A refusal that waits for the key's look-up (``refused_unless_replayed``)."""

    key: str
    refusal: CommandError
    #: A refusal for the sender's clock: True when it ran fast, False slow, told to the
    #: committer's ``on_clock_refused`` when the write is answered with the refusal (a
    #: retry's replay is not: its old ``sent_at`` was no clock off); None: not counted.
    clock_fast: bool | None = None


class ClockReading:
    """How far a command's sender's clock was off, read by ``CommandPath.meta`` off a post
    under an Idempotency-Key: told to the metrics (``on_clock_ahead`` / ``on_clock_behind``)
    once, when its write is answered, unless the answer is a retry's replay (a script
    sending its answered request again minutes on, its old ``sent_at`` kept, was measured as
    a clock that many minutes slow, every replay one more in SixstepCounterClockSlow's
    share)."""

    __slots__ = ("_tell", "seconds")

    def __init__(self, tell: Callable[[float], None], seconds: float) -> None:
        self._tell: Callable[[float], None] | None = tell
        self.seconds = seconds

    def told(self) -> None:
        tell, self._tell = self._tell, None
        if tell is not None:
            tell(self.seconds)


clock_reading: ContextVar[ClockReading | None] = ContextVar("clock_reading", default=None)
"""The running request's ``ClockReading``, set by ``CommandPath.meta``, kept by the write it
submits and told as that write is answered (``GroupCommitter``)."""

refused_unless_replayed: ContextVar[KeyedRefusal | None] = ContextVar(
    "refused_unless_replayed", default=None)
"""The refusal the running request's writes answer with unless they are a retry of a command
already applied under its Idempotency-Key (the key, the refusal), set by ``CommandPath.meta``:
a ``sent_at`` far behind the clock is refused, but the same bytes sent again by a client whose
answer was lost, ten minutes on, replay the first answer as every retry does."""

arrived_at: ContextVar[datetime | None] = ContextVar("arrived_at", default=None)
"""The service's clock as the running write came in at the front door (``shared.http.
front_door``), before its body was read, authenticated, queued or run: a sender's ``sent_at``
is measured against it (``CommandPath.meta``), so that the time a request spends inside the
service (a body trickling in on a slow network, the event loop's queue, a wait for the vault)
does not read as the sender's clock running slow. None outside a request (a consumer, a test
calling a use case): the command path's own clock."""

background: ContextVar[bool] = ContextVar("background", default=False)
"""Set by a worker whose writes may wait for the live path's (the survey scheduler's tick):
its commands go in the writer's background lane (``GroupCommitter``), taken only when no
live command waits, ``background_batch`` at a time. A resolution's survey request queued on
feedback's writer behind a round of the scheduler's ``SurveySent`` in 12-15 % of cases, its
wait for the writer p50 43-72 ms against 8-21 with the writer idle (benchmarks/README.md,
feedback57)."""

write_due: ContextVar[float | None] = ContextVar("write_due", default=None)
"""When the running write's answer is due (``time.monotonic()``), set where the request
arrived (``shared.http.deadline``); without it a write is due ``write_timeout_s`` after it is
submitted."""


class _State(Enum):
    WAITING = "waiting"      # queued or being run: its caller may still withdraw it
    SENT = "sent"            # its batch's transaction went to the store: it may be recorded
    DONE = "done"            # it has its answer
    WITHDRAWN = "withdrawn"  # its caller left before it was sent: it is never sent
    ABANDONED = "abandoned"  # its caller left while its commit was unconfirmed: never re-run


@dataclass(eq=False)
class _Item:
    command: Command
    ids: Sequence[UUID]
    future: asyncio.Future[Written]
    outcome: Written | BaseException | None = None
    events: list[Any] = field(default_factory=list)
    #: (aggregate id, version) of the last event of every aggregate the command recorded to.
    recorded: list[tuple[UUID, int]] = field(default_factory=list)
    aggregate: Aggregate | None = None
    caller: Principal | None = None
    state: _State = _State.WAITING
    trace: tracing.CommandTrace | None = None
    #: ``refused_unless_replayed`` as the command was submitted.
    unless_replayed: KeyedRefusal | None = None
    #: ``clock_reading`` as the command was submitted.
    clock: ClockReading | None = None
    #: When a background command was queued (``time.monotonic()``), 0.0 for a live one.
    since: float = 0.0


class _Tainted(Exception):
    """A command failed after emitting events: the batch's in-memory state is not trustworthy."""


class _Withdrawn(Exception):
    """A caller left before its batch was sent: the batch runs again without it."""


class _NotRecorded(Exception):
    """A batch sent without a confirmed commit turned out not to be recorded (or its callers
    all left before that could be known): whoever still waits is run again."""


#: What no longer waits for its due time: answered, or its caller left.
_ANSWERED = frozenset({_State.DONE, _State.WITHDRAWN, _State.ABANDONED})

#: How early (seconds) ``_sweep`` may answer a write: the loop runs a timer up to its clock's
#: resolution before the moment it was set for.
_DUE_SLACK = 0.001

#: Pauses of the writer between tries while the store is away (seconds, doubling).
_FIRST_PAUSE, _LAST_PAUSE = 0.05, 0.5


def _spent(unit: Unit) -> Aggregate:
    """An answered write's command, let go (``GroupCommitter._finish``): never run again."""
    raise AssertionError("an answered write is not run again")


def _fail(future: asyncio.Future[Written], error: BaseException) -> None:
    """``future`` answered with ``error``, marked as retrieved at once: an answer nobody
    waits for any more (its caller left, or was answered at the bound) is dropped without
    asyncio's "exception was never retrieved", while one awaited still raises it. (A done
    callback did this on every future, answered or not: a loop callback more a write.)"""
    future.set_exception(error)
    future.exception()


def _settle(items: list[_Item]) -> None:
    for item in items:
        if item.future.done():
            continue
        if isinstance(item.outcome, Written):
            item.future.set_result(item.outcome)
        else:
            _fail(item.future, item.outcome or RuntimeError("no outcome"))


def _settle_then_free(items: list[_Item], free: asyncio.Future[None],
                      error: BaseException | None) -> None:
    """The writer's last batch answered and the writer free, in one call from its thread."""
    _settle(items)
    if free.done():
        return  # the collector was cancelled (the loop shut down under it)
    if error is None:
        free.set_result(None)
    else:
        free.set_exception(error)


class Sent:
    """A command queued by ``GroupCommitter.send``: ``await`` it for its answer (once), or
    ``withdraw`` it when nobody will."""

    __slots__ = ("_committer", "_item")

    def __init__(self, committer: GroupCommitter, item: _Item) -> None:
        self._committer, self._item = committer, item

    def __await__(self) -> Generator[Any, None, Written]:
        return self._committer._answer(self._item).__await__()

    def withdraw(self) -> None:
        """Nobody awaits it: not sent if not yet sent, its answer dropped."""
        self._committer._leave(self._item)


async def answered(sent: Sequence[Sent]) -> None:
    """Each command's answer, in the order sent; the first failure raised once every one is
    answered (none left running past its caller, a consumer's transaction); cancelled, the
    ones not awaited yet are withdrawn."""
    failed: Exception | None = None
    for i, one in enumerate(sent):
        try:
            await one
        except asyncio.CancelledError:
            for rest in sent[i + 1:]:
                rest.withdraw()
            raise
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


class GroupCommitter:
    """Saves the commands queued when its writer is free at once (``max_batch`` at most;
    waiting ``max_wait_ms`` at most for a burst still arriving, see ``_collect``).

    Every caller is answered by its write's due time (``write_timeout_s`` after submitting,
    or ``write_due``): with its result, or, if the store has not committed it by then,

    * ``Unavailable`` (503 ``store_unavailable``) when the command had not been sent: it is
      withdrawn, and no later try of its batch runs it, so nothing is recorded;
    * ``OutcomeUnknown`` (503 ``outcome_unknown``) when its batch's transaction had been sent
      and the commit was not confirmed: a retry with the same Idempotency-Key finds it, or
      records it.

    "Sent" is the moment the recorder has a connection and is about to send the transaction
    (``ArrayInsertRecorder.before_send``). While the store is away the writer thread retries a
    batch (reloading, re-running its commands) for as long as any of its callers waits; a
    batch whose commit went unconfirmed is looked up in the store, so that its callers are
    answered as first writes (``replayed`` false) when it was recorded.

    Two lanes: a command submitted under ``background`` (the survey scheduler's sends,
    expiries, redirections) waits in the background lane, taken ``background_batch`` at a
    time and only when no live command (a request, a consumer's) is queued, or when the
    oldest of them has waited ``background_patience_s`` (live commands that never stop do
    not starve it). A live command that comes while a round of 500 sends is in hand is
    written after the chunk being written, before the rest; each lane keeps its order (an
    overdue chunk goes in a live batch, after its commands).
    """

    def __init__(self, app: Application, *, max_batch: int = 256, max_wait_ms: float = 2.0,
                 cache_size: int = 20_000, on_batch: Callable[[int], None] | None = None,
                 write_timeout_s: float = 5.0,
                 command_digest_key: bytes | None = None, background_batch: int = 64,
                 background_patience_s: float = 0.5) -> None:
        self.app = app
        #: The key of the commands' digests (``command_path.CommandDigests``); the services
        #: pass ``Settings.command_digest_key()``, a committer built bare the development one.
        self.command_digest_key = command_digest_key or _command_digest_key(
            DEV_SURVEY_TOKEN_SECRET)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        #: Told how many seconds ahead of the service's clock a command's ``occurred_at`` was
        #: when the command path recorded it as the clock's (``CommandPath.meta``): the
        #: runtime's ``sixstep_occurred_at_ahead_seconds``; None: not measured.
        self.on_clock_ahead: Callable[[float], None] | None = None
        #: Told how many seconds behind the service's clock a command's sender's clock was,
        #: by its ``sent_at`` (more than 5 s): the runtime's
        #: ``sixstep_occurred_at_behind_seconds``; None: not measured.
        self.on_clock_behind: Callable[[float], None] | None = None
        #: Told of a command refused for its sender's clock (``sent_at`` beyond
        #: ``OCCURRED_AT_MAX_FUTURE_S``), True when it ran fast: the runtime's
        #: ``sixstep_writes_refused_for_clock_total``; None: not counted. Under a key, told
        #: as the refusal is answered (``KeyedRefusal``), never for a retry's replay.
        self.on_clock_refused: Callable[[bool], None] | None = None
        self.write_timeout = write_timeout_s
        # Appended on the loop (``submit``); taken by ``_collect`` on the loop, or by the
        # writer thread while it holds the batch before (``_backlog``), never by both at once.
        self._queue: deque[_Item] = deque()
        # The background lane (``background``), taken as ``_queue`` is.
        self._later: deque[_Item] = deque()
        self.background_batch = max(1, min(background_batch, max_batch))
        self.background_patience = background_patience_s
        # Every write not answered yet, by its due time (loop time; a heap, ``_expect``).
        self._dues: list[tuple[float, int, _Item]] = []
        self._order = itertools.count()  # ties in ``_dues`` go in submission order
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0  # when ``_sweeper`` runs
        self._sweeper_loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._on_batch = on_batch
        self._last = 0  # the size of the last batch
        self._states = threading.Lock()  # every _Item.state change, on either side
        self._sending: list[_Item] = []  # the writer thread's attempt in hand
        # The writer thread's batch answered, held to be settled with the writer's next word
        # to the loop (``_write``): one wake of the loop a batch, not two.
        self._held: list[_Item] = []
        self._sent: Sequence[StoredEvent] | None = None
        recorder: Any = app.recorder
        if isinstance(recorder, ArrayInsertRecorder):
            recorder.before_send = self._seal
        self._recorder = recorder
        table = sql.SQL("{}.{}").format(sql.Identifier(recorder.datastore.schema),
                                        sql.Identifier(recorder.events_table_name))
        self._versions_sql = sql.SQL(
            "SELECT originator_id, max(originator_version) AS v FROM {} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id").format(table)
        self._position_sql = sql.SQL(
            "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(table)
        # Rendered once (``recorder.Rendered``), not by psycopg at each batch's look-up.
        self._lookups = Rendered(self._versions_sql, self._position_sql)

    # -- the asyncio side -------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def submit(self, command: Command, ids: Sequence[UUID]) -> Written:
        """Run ``command`` against the aggregates ``ids`` and commit it with its batch; answer
        by the write's due time (see the class)."""
        return await self._answer(self._queued(command, ids))

    def send(self, command: Command, ids: Sequence[UUID]) -> Sent:
        """``submit``, queued now, answered when the result is awaited: a caller that sends
        several commands before awaiting any (a consumer's batch) has them all in the writer's
        next round, in the order sent, each with its own answer. One never awaited must be
        ``withdraw``-n (as a cancelled caller's is)."""
        return Sent(self, self._queued(command, ids))

    def _queued(self, command: Command, ids: Sequence[UUID]) -> _Item:
        """``command`` queued for the writer, due at the write's due time."""
        if self._closing:
            raise Unavailable("the service is shutting down")
        now = time.monotonic()
        due = write_due.get()
        remaining = (due if due is not None else now + self.write_timeout) - now
        if remaining <= 0:
            raise Unavailable(f"the write was not taken within {self.write_timeout:g} s "
                              "(WRITE_TIMEOUT_S); nothing was recorded",
                              timeout_s=self.write_timeout)
        loop = asyncio.get_running_loop()
        item = _Item(command, ids, loop.create_future(), caller=current_caller(),
                     trace=tracing.command_trace(),
                     unless_replayed=refused_unless_replayed.get(), clock=clock_reading.get())
        if background.get():
            item.since = now
            self._later.append(item)
        else:
            self._queue.append(item)
        self._arrived.set()
        self._expect(loop, loop.time() + remaining, item)
        return item

    async def _answer(self, item: _Item) -> Written:
        try:
            written = await item.future
        except asyncio.CancelledError:
            self._leave(item)
            raise
        except CommandError as refused:
            # Refused for its sender's clock, now that its key is known to be no retry's.
            unless = item.unless_replayed
            if unless is not None and refused is unless.refusal \
                    and unless.clock_fast is not None \
                    and (counted := self.on_clock_refused) is not None:
                counted(unless.clock_fast)
            if item.clock is not None:
                item.clock.told()
            raise
        if item.clock is not None and not written.replayed:
            item.clock.told()
        return written

    def _leave(self, item: _Item) -> None:
        """The caller is gone (cancelled): send nothing more for it."""
        with self._states:
            if item.state is _State.WAITING:
                item.state = _State.WITHDRAWN
            elif item.state is _State.SENT:
                item.state = _State.ABANDONED

    def _expect(self, loop: asyncio.AbstractEventLoop, at: float, item: _Item) -> None:
        """``item`` is due at ``at`` (loop time). One timer (``_sweep``) for the earliest write
        instead of a timer each, made and cancelled per command (``call_later`` was half of
        ``submit``'s own time in follow-up's rules, which submit a command for every fifth
        event; an HTTP write paid one too). A write without ``write_due`` (a consumer's, a
        worker's) is due ``write_timeout`` after it was submitted, an HTTP write that long
        after its request arrived, so they come nearly in the order they fall due: the timer
        is made again only when a write falls due before it. What was answered meanwhile
        leaves the heap as new writes come."""
        dues = self._dues
        if self._sweeper_loop is not loop:  # started again on another loop: the old is gone
            dues.clear()
            self._sweeper, self._sweeper_loop = None, loop
        while dues and dues[0][2].state in _ANSWERED:
            heapq.heappop(dues)
        heapq.heappush(dues, (at, next(self._order), item))
        if self._sweeper is not None and at < self._sweep_at:
            self._sweeper.cancel()
            self._sweeper = None
        if self._sweeper is None:
            self._sweep_at = dues[0][0]
            self._sweeper = loop.call_at(self._sweep_at, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """The earliest write is due: every write due by now that has no answer gets one
        (``_due``); the timer is set again for the next."""
        self._sweeper = None
        dues = self._dues
        now = loop.time() + _DUE_SLACK
        while dues and (dues[0][0] <= now or dues[0][2].state in _ANSWERED):
            self._due(heapq.heappop(dues)[2])  # nothing for an answered one
        if dues:
            self._sweep_at = dues[0][0]
            self._sweeper = loop.call_at(self._sweep_at, self._sweep, loop)

    def _due(self, item: _Item) -> None:
        """The write's answer is due and the store has not given one: withdraw it, or, if it
        is already sent, say that its outcome is unknown."""
        with self._states:
            if item.state is _State.WAITING:
                item.state = _State.WITHDRAWN
                answer: Unavailable = Unavailable(
                    f"the event store did not take the write within {self.write_timeout:g} s "
                    "(WRITE_TIMEOUT_S); it was withdrawn and nothing was recorded: retry with "
                    "the same Idempotency-Key", timeout_s=self.write_timeout)
            elif item.state is _State.SENT:
                item.state = _State.ABANDONED
                answer = OutcomeUnknown(
                    f"the write was sent to the event store but its commit was not confirmed "
                    f"within {self.write_timeout:g} s (WRITE_TIMEOUT_S): it may or may not be "
                    "recorded; a retry with the same Idempotency-Key returns the first answer "
                    "if it was, and records it if not", timeout_s=self.write_timeout)
            else:
                return  # answered already, or about to be (the writer settles it)
        if not item.future.done():
            _fail(item.future, answer)

    async def close(self) -> None:
        """Finish what was accepted, then stop."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            # Not cancelled: the collector may hold a batch taken off the queue while it
            # waited for the rest of a burst, which a cancel lost (its callers answered 503 at
            # their due time, or never if the loop stopped first). Closing, it takes what is
            # queued at once and ends when nothing is left.
            await self._task
        # Waited for off the loop: a round the writer holds while the store is away ends only
        # when its callers' bounds have passed (``_due``, on the loop): blocking the loop here
        # hung the stop for as long as the store stayed away, those callers unanswered.
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _collect(self) -> list[_Item] | None:
        """The next batch, taken when the writer is free: what is queued by then (the queue
        grows while a batch is written, so the batch grows with the load, and a lone caller
        never waits). Only while a burst is still arriving (fewer queued than the last batch
        held) does it wait for the rest, ``max_wait`` at most: otherwise, in a closed loop of
        callers, the first of them to come back would make a batch of its own while the
        others queue behind its commit. (Waiting for half of the last batch split 32 callers
        into two groups taking turns: twice the commits, relay rounds and answers, 0.72-1.05 x
        the rate of one group on a quiet machine, paired, split layout.) Closing, it waits
        for nothing, and says None once nothing is queued."""
        loop = asyncio.get_running_loop()
        while not self._queue:
            if (chunk := self._background_turn()) is not None:
                return chunk
            if self._closing:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._queue.popleft()]
        want = min(self.max_batch, self._last)
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if self._queue:
                batch.append(self._queue.popleft())
                continue
            remaining = deadline - loop.time()
            if len(batch) >= want or remaining <= 0 or self._closing:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            # Woken with no live command queued: the time is up (next round), or a background
            # command came, which is no part of the burst: it waits on (a send of the
            # scheduler's cut the live batch short, split the burst in two commits).
        self._last = len(batch)
        return self._with_overdue(batch)

    def _backlog(self) -> list[_Item] | None:
        """On the writer thread, its batch written: the next batch, when what queued
        meanwhile is one that ``_collect`` would take at once (as many as the last batch held,
        or any when there is no waiting); else None, and the loop collects as before. A
        command queued behind a batch then goes in the next one as soon as that batch is
        written, however busy the event loop is: taken on the loop, it waited for two turns
        of it (one to take the batch, one to hand it to the thread), in feedback's workers at
        half of the maximum p99 75 and 26 ms, as long as the commit itself
        (benchmarks/README.md). Only a batch the loop would not wait for is taken here: on
        the writer thread the API's batches came out smaller, at ~20 % more CPU a write."""
        if (chunk := self._background_turn()) is not None:
            return chunk
        queued = len(self._queue)
        want = min(self.max_batch, self._last) if self.max_wait > 0 else 1
        if not queued or queued < want:
            return None
        batch = [self._queue.popleft() for _ in range(min(queued, self.max_batch))]
        self._last = len(batch)
        return self._with_overdue(batch)

    def _background_turn(self) -> list[_Item] | None:
        """The background lane's next chunk (``background_batch`` at most, in the order
        queued) as a batch of its own, when no live command is queued; else None (an overdue
        one goes with the live batch: ``_with_overdue``). Taken at once, without waiting for
        more: the size of a live burst (``_last``) is not its business."""
        if not self._later or self._queue:
            return None
        return self._chunk()

    def _with_overdue(self, batch: list[_Item]) -> list[_Item]:
        """A live batch, and after its commands a chunk of the background lane if its oldest
        waited ``background_patience`` (live writes that never stop): the live commands go
        first still, in the same commit, never behind a batch of their own."""
        later = self._later
        if later and (self._closing or time.monotonic() - later[0].since
                      >= self.background_patience):
            batch.extend(self._chunk())
        return batch

    def _chunk(self) -> list[_Item]:
        later = self._later
        return [later.popleft() for _ in range(min(len(later), self.background_batch))]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (batch := await self._collect()) is not None:
            # Not ``run_in_executor``: its completion is a wake of the loop of its own, after
            # the one that answers the batch; the writer says both at once (``_write``).
            free: asyncio.Future[None] = loop.create_future()
            self._executor.submit(self._write, batch, free)
            await free

    # -- the writer thread ------------------------------------------------------------------

    def _write(self, batch: list[_Item], free: asyncio.Future[None]) -> None:
        """Write ``batch``, then each backlog that queued meanwhile (``_backlog``); the last
        batch's answers go to the loop with the word that the writer is free."""
        error: BaseException | None = None
        try:
            while True:
                if self._on_batch is not None:
                    self._on_batch(len(batch))
                try:
                    with tracing.span("group commit", linked_to=_traceparents(batch),
                                      attributes={"sixstep.batch.size": len(batch)}):
                        self._execute(batch)
                except BaseException as exc:  # a bug in this module: never leave a caller
                    for item in batch:        # hanging
                        if item.state is not _State.DONE:
                            item.outcome = exc
                    self._finish(batch)
                if (next_batch := self._backlog()) is None:
                    return
                if held := self._release():
                    self._post(_settle, held)  # answered now, not after the next batch
                batch = next_batch
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._post(_settle_then_free, self._release(), free, error)

    def _release(self) -> list[_Item]:
        held, self._held = self._held, []
        return held

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """``callback(*args)`` on the loop, from the writer thread."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(callback, *args)

    def _live(self, batch: list[_Item]) -> list[_Item]:
        """The commands of ``batch`` still to be run: their callers wait, no answer yet."""
        with self._states:
            return [i for i in batch if i.state in (_State.WAITING, _State.SENT)]

    def _finish(self, items: list[_Item], *, hold: bool = False) -> list[_Item]:
        """Give ``items`` their outcomes; callers who left (withdrawn, abandoned) are skipped.
        ``hold``: the answers go to the loop with the writer's next word (``_write``, at the
        end of the batch, nothing run in between), else at once."""
        with self._states:
            done = [i for i in items if i.state in (_State.WAITING, _State.SENT)]
            for item in done:
                item.state = _State.DONE
                # An answered write stays in the due heap until its due time when no write
                # comes after it (the end of a burst): what it ran and recorded is let go
                # now, its answer kept (~1.8 kB a case opened, held up to WRITE_TIMEOUT_S).
                item.command, item.aggregate = _spent, None
                item.events.clear()
        if hold:
            self._held.extend(done)
        elif done:
            self._post(_settle, done)
        return done

    def _seal(self, stored_events: Sequence[StoredEvent]) -> None:
        """``before_send``: the attempt in hand goes to the store now, unless one of its
        callers has left, in which case nothing is sent and the batch runs again without it."""
        items = self._sending
        if not items:
            return  # not a save of this committer's
        with self._states:
            if any(i.state is not _State.WAITING for i in items):
                raise _Withdrawn()
            for item in items:
                item.state = _State.SENT
        self._sent = stored_events

    def _unsend(self, items: list[_Item]) -> None:
        """A sent attempt is known not to be recorded: its callers may withdraw again."""
        with self._states:
            for item in items:
                if item.state is _State.SENT:
                    item.state = _State.WAITING

    def _execute(self, batch: list[_Item]) -> None:
        pause = _FIRST_PAUSE
        alone = len(batch) == 1
        while live := self._live(batch):
            timed_out: BaseException | None = None
            try:
                if alone:
                    for item in live:
                        self._attempt_alone(item)
                else:
                    self._attempt(live)
                    self._finish(live, hold=True)
                return
            except (IntegrityError, _Tainted):
                alone = True  # a conflict or a failed command: each is re-run on its own
            except (_Withdrawn, _NotRecorded):
                pass  # at once, with whoever still waits
            except (PersistenceError, psycopg.Error) as exc:
                if ended_by_server(exc):
                    timed_out = exc  # rolled back, nothing recorded: answered below
                else:
                    time.sleep(pause)  # the store is away: try again while someone waits
                    pause = min(pause * 2, _LAST_PAUSE)
            finally:
                self._sending, self._sent = [], None
            for item in live:
                self._forget(item.ids)
                if item.state is not _State.DONE:
                    item.outcome, item.events, item.aggregate = None, [], None
                    item.recorded = []
            if timed_out is not None:
                # PostgreSQL ended a statement of the batch (DB_STATEMENT_TIMEOUT_S): run
                # again, it would wait as long again, the writer held for every write
                # behind it. Its callers are told now, 503 statement_timed_out.
                for item in live:
                    if item.state is _State.DONE:
                        continue  # answered already (a command run alone before it)
                    item.outcome = StatementTimedOut(
                        "a database statement of the write ran out of time "
                        "(DB_STATEMENT_TIMEOUT_S: a lock held elsewhere, or a slow query) "
                        "and was rolled back: nothing was recorded; try again with the "
                        "same Idempotency-Key", error=type(timed_out.__cause__
                                                           or timed_out).__name__)
                self._finish(live)
                return

    def _attempt_alone(self, item: _Item) -> None:
        try:
            self._attempt([item])
        except IntegrityError:
            self._forget(item.ids)
            item.outcome = VersionConflict(
                "the case was changed by another writer; reload and retry")
        except _Tainted as exc:
            self._forget(item.ids)
            item.outcome = exc.__cause__ or exc
        self._finish([item])

    def _attempt(self, batch: list[_Item]) -> None:
        unit = Unit(self._load({i for item in batch for i in item.ids}))
        single = len(batch) == 1
        for item in batch:
            unit.begin(item.caller)
            if (unless := item.unless_replayed) is not None \
                    and not unit.answered(item.ids, unless.key):
                item.outcome = unless.refusal  # no retry: refused before it is run
                continue
            try:
                aggregate = item.command(unit)
            except AlreadyDoneError as done:
                # The first answer's position is settled below: it may be in this very
                # batch (a client's retry racing its own first attempt).
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
            if unless is not None:  # its key was another aggregate's there: not a retry
                if unit.changed():
                    raise _Tainted() from (unless[1] if single else None)
                item.outcome = unless[1]
                continue
            item.aggregate = aggregate
            item.events = list(aggregate.pending_events[unit.pending_before(aggregate.id):])
            item.recorded = unit.recorded_by_command()
            if item.trace is not None:
                tracing.stamp(item.events, item.trace)
        dirty = unit.dirty()
        # Where each answer is in the log: asked before anything is sent for what is stored
        # already (replays, commands with nothing to record), from the save for the rest.
        recording = {(e.originator_id, e.originator_version)
                     for a in dirty for e in a.pending_events}
        positions = {key: self._position_of(*key) for key in map(self._answer_of, batch)
                     if key is not None and key not in recording}
        # A batch whose commands all had nothing to record saves nothing, but each caller
        # still gets its answer (the aggregate's current version and position) below.
        if dirty:
            positions.update(self._save(batch, dirty))
        for item in batch:
            outcome = item.outcome
            if isinstance(outcome, Written):  # replayed
                key = (outcome.aggregate_id, outcome.version)
                item.outcome = Written(*key, positions.get(key, 0), replayed=True)
            elif outcome is None and (answer := self._answer_of(item)) is not None:
                item.outcome = Written(*answer, max(
                    [positions.get(answer, 0), *(positions.get(k, 0) for k in item.recorded)]))

    @staticmethod
    def _answer_of(item: _Item) -> tuple[UUID, int] | None:
        """The aggregate and version ``item`` is answered with."""
        outcome = item.outcome
        if isinstance(outcome, Written):
            return outcome.aggregate_id, outcome.version
        if outcome is not None or item.aggregate is None:
            return None
        if item.events:
            return item.aggregate.id, item.events[-1].originator_version
        return item.aggregate.id, item.aggregate.version

    def _save(self, batch: list[_Item], dirty: list[Aggregate]) -> dict[tuple[UUID, int], int]:
        """Save ``dirty`` for ``batch``: each event's position. If the commit went unconfirmed
        (the connection was lost after sending), the store is asked whether these events were
        recorded, until it answers or every caller of the batch has left."""
        self._sending, self._sent = batch, None
        try:
            recordings = self.app.save(*dirty)
        except (PersistenceError, psycopg.Error) as exc:
            sent = self._sent
            if sent is None:
                raise  # nothing was sent
            if isinstance(exc, IntegrityError) or ended_by_server(exc):
                self._unsend(batch)  # refused or ended by the store: nothing recorded
                raise
            positions = self._recorded(batch, sent)
            on_recorded = getattr(self.app, "on_recorded", None)
            if on_recorded is not None:
                on_recorded(len(sent))
            for aggregate in dirty:
                self._forget([aggregate.id])  # reloaded from the store next time
            return positions
        finally:
            self._sending, self._sent = [], None
        for aggregate in dirty:
            self._remember(aggregate)
        return {(r.domain_event.originator_id, r.domain_event.originator_version):
                r.notification.id for r in recordings}

    def _recorded(self, batch: list[_Item], sent: Sequence[StoredEvent]
                  ) -> dict[tuple[UUID, int], int]:
        pause = _FIRST_PAUSE
        while True:
            try:
                positions = self._recorder.recorded_positions(sent)
            except (PersistenceError, psycopg.Error):
                if not self._live(batch):
                    raise _NotRecorded() from None  # nobody to tell: the retries will know
                time.sleep(pause)
                pause = min(pause * 2, _LAST_PAUSE)
                continue
            if positions is None:
                self._unsend(batch)
                raise _NotRecorded()
            return positions

    def _load(self, ids: set[UUID]) -> dict[UUID, Aggregate]:
        if not ids:
            return {}
        datastore: Any = self.app.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as curs:
            versions_sql = self._lookups.on(conn)[0]
            curs.execute(versions_sql, (list(ids),), prepare=True)
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
            position_sql = self._lookups.on(conn)[1]
            curs.execute(position_sql, (aggregate_id, version), prepare=True)
            row = curs.fetchone()
        return int(row["notification_id"]) if row else 0


def _traceparents(batch: list[_Item]) -> list[str | None]:
    """The traces of the batch's commands, for its span's links (nothing while tracing is
    off)."""
    if not tracing.enabled():
        return []
    return [item.trace.current for item in batch if item.trace is not None]
