"""The consumer framework: durable pull consumers that apply events exactly once in effect.

A consumer fetches a batch, drops what it has already applied, and applies the rest in one
PostgreSQL transaction together with its tracking records (per aggregate: the last stream
sequence applied). The usual batch (every event fresh) writes its tracking records first,
in a statement that writes a case's row only where the batch's events are all new to it, as
the row stands when locked (``TRACK_FIRST``): one statement and one PostgreSQL transaction a
batch fewer than a read of its own before the transaction; a batch found not all fresh is
rolled back, its rows read and it is sorted as before (duplicates, waiting, holds). Such a
batch, and one applied one event at a time, writes its tracking after its effects with the
same test (``TRACK``): a row another transaction moved since it was read (the rebuild's
switch, a batch of the durable's before-leader) rolls it back and it is sorted again,
never moved back (an event applied alone is applied again at once: ``_applied_alone_again``).
A batch is applied in stream order (a redelivered event can come after a newer one of its
case), each stream sequence once (a copy delivered again into it: ``_once_each``), each
case's row at its highest sequence. It
acks only after the commit, so a crash before the commit redelivers and a crash after it
finds the tracking records and skips. Events of one aggregate are
applied in stream order: when one fails, later events of the same aggregate wait behind it
(durably: the block is a column of the tracking row) until it succeeds or is dead-lettered,
or is no longer on the stream (its limits took it, an operator removed it: ``_released``).
A failing event is retried with back-off up to ``max_deliver`` times, then published to the
dead-letter stream with the reason; an event that cannot be decoded goes there at once. The
tries are counted in the tracking row (``blocked_attempts``), not taken from JetStream's
delivery count: an event waiting behind a failing one is handed back each time it comes, and
each hand-back counts as a delivery. For the same reason the durable has no delivery limit of
its own: JetStream stops delivering a message at its limit without a word, and the case's
later events waiting behind a retry were lost that way.

Per-aggregate order also holds across crashes and replicas, because a durable consumer is
only ever driven by one process at a time:

* **one leader per durable**: a consumer applies its batches on one PostgreSQL connection that
  holds an advisory lock named after the stream and the durable; a second process with the
  same consumer (a rolling update, a double start) waits on standby. If that connection dies,
  the lock goes with it and so does every batch still being applied on it.
* **in-order recovery**: the leader resets its durable to the ack floor when it starts
  (``$JS.API.CONSUMER.RESET``, nats-server 2.14+), so whatever a crashed predecessor had
  fetched but not acknowledged comes back at once and in stream order, before anything newer;
  what was applied already is skipped by its tracking record.
* **deliveries lost on the way**: a message the server sent on a connection that broke (the
  node it came through died) counts as delivered and never came; the pull after the reconnect
  brings what follows, a case's later events among it. Applied, they would move the case's
  tracking past the lost one, which comes back after ack_wait looking like a duplicate. The
  puller watches the deliveries' numbers (``Puller.lost``): at a gap the consumer applies what
  came before it and starts again from its ack floor (``_reset_to_ack_floor``), so the lost
  message comes first; a server without the reset is left ack_wait to give it back first.
* **drain**: ``drain()`` lets the batch in hand finish (applied, tracked, acked) and fetches
  no more; the service's shutdown calls it before it stops the loops.

Tracking rows hold stream sequences, which mean something only on the stream they were read
from: on a stream deleted and made again, or restored from an older backup, the consumer
applies nothing until its read model is rebuilt (``shared.bus.stream_identity``,
``_on_its_stream``; deploy/README, "A stream made anew"). An idle consumer looks again every
few seconds (``_still_there``): a stream made anew under it, or its durable deleted, makes it
start again.

A statement that runs out of time (``DB_STATEMENT_TIMEOUT_S``; a lock wait ends just before
it, as ``lock_timeout``) is not the events' fault: the whole batch goes back, no try counted
(``_timed_out``). But an event whose own handling always runs out of time (a row another
session keeps locked, a statement that is slow for that one case) took every batch it was
in back with it, for ever, and the log behind it waited. After ``isolate_after`` batches in
a row ran out of time, the next is applied one event at a time (``_isolate``): an event that
runs out of time on its own while others of the pass are applied, and again when tried once
more after them (a lock that went during the pass dead-letters nothing), is dead-lettered
(its reason says so: ``sixstep dlq list``; ``sixstep dlq replay`` once the lock is gone) and
the log goes on; its case's later events in the pass wait behind it and are applied after
it, as after any dead letter. A pass in which nothing is applied (``ISOLATION_GIVES_UP``
events in a row ran out of time) is the store's fault, not the events': the batch goes
back, nothing counted. A pass that ran out of events first (those that timed out were the
last on the stream, no other case's came) counts a try for each, and dead-letters one after
``max_deliver`` such passes (``_nothing_else_to_apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast
from uuid import UUID

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from shared import tracing
from shared.bus.backoff import Backoff
from shared.bus.connection import subject_matches
from shared.bus.durable_names import PARTITION_SUFFIX, base_consumer
from shared.bus.jetstream import every_consumer, publish_dead_letter
from shared.bus.pulling import Puller, ack_each, sequence_and_delivered
from shared.bus.store_timeouts import ENDED_BY_SERVER, STORE_TIMED_OUT
from shared.bus.stream_identity import STREAM_DDL, check_stream, stream_seen
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import EnvelopeHead, decode_envelope, decode_head
from shared.kernel.errors import StatementTimedOut
from shared.settings import Settings

log = structlog.get_logger("sixstep.consumer")


async def durables_of(js: JetStreamContext, stream: str, consumer: str) -> list[ConsumerInfo]:
    """The server's durables of ``consumer``: its own name's and each partitioned worker's
    (``base_consumer``), and one a changed split left behind; from every page of the
    stream's consumers (``every_consumer``)."""
    base = base_consumer(consumer)
    return [info for info in await every_consumer(js, stream)
            if base_consumer(info.name) == base]


def partitioned_name(name: str, owned: Sequence[int]) -> str:
    """The durable of consumer ``name`` on a worker owning the partitions ``owned`` (sorted):
    each one named up to four, else the first, the last and how many."""
    return (f"{name}-p{'_'.join(str(p) for p in owned)}" if len(owned) <= 4
            else f"{name}-p{owned[0]}to{owned[-1]}x{len(owned)}")


def partitions_named(name: str, partitions: int) -> set[int]:
    """The partitions a durable's name says it consumes (``partitioned_name``): all
    without a suffix, ``-p0_1`` 0 and 1, ``-p8to15x8`` 8 to 15 (a name of more than four
    partitions keeps only the first and the last: those between are taken as its)."""
    suffix = PARTITION_SUFFIX.search(name)
    if suffix is None:
        return set(range(partitions))
    named = suffix.group(0)[2:]
    if "to" in named:
        first, last = named.split("x")[0].split("to")
        return set(range(int(first), int(last) + 1))
    return {int(p) for p in named.split("_")}


def partitions_consumed(info: ConsumerInfo, partitions: int) -> set[int]:
    """The partitions a durable on the server consumes: by its filter subjects, each ending
    in ``.p<N>`` on a partitioned worker (``Runtime.add_consumer``) or in a wildcard (every
    partition); by its name when it has none. The name of more than four partitions keeps
    only the first and the last (``partitioned_name``): ``0-3,15`` is ``-p0to15x5``, which
    would take 4-14 as its too."""
    config = info.config
    subjects = list(config.filter_subjects or []) or (
        [config.filter_subject] if config.filter_subject else [])
    if not subjects:
        return partitions_named(info.name, partitions)
    consumed: set[int] = set()
    for subject in subjects:
        last = subject.rsplit(".", 1)[-1]
        if not (last.startswith("p") and last[1:].isdigit()):
            return set(range(partitions))
        consumed.add(int(last[1:]))
    return consumed


class PermanentError(Exception):
    """Raised by a handler for an event it can never apply: dead-lettered without retries."""


class Handler(Protocol):
    """Applies a batch of events. A handler may also say ``batch_scale: int``: how many
    times the consumer's configured batch it takes at once (the command writers'), offer
    ``prepare`` (:class:`Preparing`), run the consumer's tracking while it waits
    (:class:`Waiting`), or name the event types on its subjects it does nothing with
    (``ignores``: a ``frozenset[str]``). An event of such a type is only tracked: read no
    further than its head (``EnvelopeHead``: no payload, no moments), never handed to
    ``apply``, applied in no span of its own, in the same transaction and order as the
    others. Only a type the handler reads nothing of belongs there: one left out is handed
    to it as before. A handler that reads its own tables by key in prepared statements names
    them in ``analyzed`` (a ``tuple[str, ...]``): they get fresh statistics with
    ``consumer_tracking``'s (``Consumer._analyze_when_grown``)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        """Apply events (in stream order) inside the caller's transaction."""
        ...


class Preparing(Handler, Protocol):
    """A handler whose batch has work that needs no database (rows built from the events):
    the consumer calls ``prepare`` on the next batch while the one before waits on
    PostgreSQL, and hands the result to ``apply`` when it applies exactly those events.
    ``prepare`` must not change anything: a batch may be applied without it (its events
    were not all fresh, or it was not ready in time), and then ``apply`` gets None."""

    def prepare(self, events: Sequence[Envelope]) -> object:
        ...

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        ...


Meanwhile = Callable[[], Awaitable[None]]
"""The consumer's own write of a batch (its tracking rows and progress), handed to a
:class:`Waiting` handler to run while the batch waits on something else."""


class Waiting(Handler, Protocol):
    """A handler whose batch waits on something other than its connection (the commands it
    sent to group commit, run on the writer thread): it takes ``meanwhile``, the consumer's
    own write of the batch, and awaits it on its connection while it waits, so that the
    statement is off the batch's path instead of after it. Same transaction, so it commits
    with the handler's writes or not at all. A handler says so with ``waits = True``; if its
    ``apply`` returns without having awaited ``meanwhile``, the consumer runs it then. A batch
    whose events were all fresh wrote its tracking first (``Consumer._apply_if_all_fresh``):
    its ``meanwhile`` has nothing left to do."""

    waits: bool

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    meanwhile: Meanwhile | None = None) -> None:
        ...


class _RowsMoved(Exception):
    """A tracking write after a batch's effects found a row another transaction moved since
    the batch was sorted by it (``Consumer._track``): rolled back, sorted again."""


class _NotAllFresh(Exception):
    """A batch's first statement found an event applied already, or waiting behind a retried
    one of its case: its transaction is rolled back and the batch sorted as before
    (``Consumer._apply_if_all_fresh``)."""


class _Once:
    """``write`` run at most once, by whichever asks first (the handler or the consumer)."""

    __slots__ = ("_write", "done")

    def __init__(self, write: Meanwhile) -> None:
        self._write = write
        self.done = False

    async def __call__(self) -> None:
        if not self.done:
            self.done = True
            await self._write()


async def _nothing() -> None:
    return None


#: The ``meanwhile`` of a batch whose tracking write was its first statement: done already.
_TRACKED_ALREADY = _Once(_nothing)
_TRACKED_ALREADY.done = True


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    batches: int = 0
    last_stream_seq: int = 0
    #: Events on its subjects not yet applied (fetched or not), as the server counted them
    #: at the last ``measure_oldest_unapplied`` (the service's probe).
    pending: int = 0
    standing_by: bool = False  # another process drives this durable; this one waits its turn
    #: When (epoch seconds) the oldest event this consumer has not yet applied was stored on
    #: the stream; None when it has applied everything (set by ``measure_oldest_unapplied``).
    oldest_unapplied_at: float | None = None
    #: Why this consumer applies nothing: the stream is not the one its tracking rows were
    #: written against (``shared.bus.stream_identity``); None while it is.
    stream_refused: str | None = None
    #: Batches given back because a statement ran out of time (``STORE_TIMED_OUT``).
    store_timeouts: int = 0
    #: Since when (epoch seconds) its statements time out, and the last such error; None
    #: once a batch went through again.
    timing_out_since: float | None = None
    last_timeout: str | None = None

    def oldest_unapplied_age(self) -> float:
        """Seconds the oldest event not yet applied has been on the stream (0 when none)."""
        at = self.oldest_unapplied_at
        return max(0.0, time.time() - at) if at is not None else 0.0


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
BLOCK = (
    "INSERT INTO consumer_tracking (consumer, key, seq, blocked_seq, blocked_attempts)"
    " VALUES ($1, $2, 0, $3, CASE WHEN $4::boolean THEN 1 END)"
    " ON CONFLICT (consumer, key) DO UPDATE SET blocked_attempts = CASE"
    " WHEN NOT $4::boolean THEN consumer_tracking.blocked_attempts"
    " WHEN consumer_tracking.blocked_seq = $3"
    " THEN COALESCE(consumer_tracking.blocked_attempts, 0) + 1 ELSE 1 END,"
    " blocked_seq = LEAST(COALESCE(consumer_tracking.blocked_seq, $3), $3)"
    " RETURNING blocked_attempts")

#: The last stream sequence a consumer applied (``$1``), as ``check_stream`` compares it.
APPLIED_SEQ = "SELECT max(stream_seq) FROM consumer_progress WHERE consumer = $1"

#: The longest pause between two start-agains of a consumer (``_StartAgain``).
START_AGAIN_MAX_S = 15.0

STREAM_RECHECK_S = 5.0
"""How often a consumer that refused the stream (``Consumer._on_its_stream``) looks again:
a rebuild of its read model records the new stream and the consumer goes on by itself."""


#: The durable's metadata key saying why its consumer applies nothing (``ops status``).
REFUSED_KEY = "sixstep_refused"
#: The durable's metadata key saying since when, and on what, its consumer has handed its
#: batches back without counting a try (``STORE_TIMED_OUT``: a hung statement, or a command
#: the store or the vault refuses as ``Unavailable`` for as long as it is not put right, the
#: vault's key bucket missing): retried for ever, nothing dead-lettered (``ops status``).
RETRYING_KEY = "sixstep_retrying"
#: How long a consumer hands its batches back before its durable says so (``RETRYING_KEY``):
#: a lock held a few seconds does not rewrite the durable's configuration twice.
RETRYING_SAID_AFTER_S = 10.0


class _StartAgain(Exception):
    """What this consumer started on is gone (``Consumer._still_there``): start again."""


#: The server's error code for a sequence the stream does not hold (removed, purged, or past
#: its limits); a stream not there at all is another (10059).
NO_MESSAGE = 10037

DECODE_SLICE = 64
"""How many messages read ahead are decoded between two turns of the event loop (~0.5-1 ms
of work): the batch being applied waits no longer than that for the loop
(``Consumer._read_ahead``)."""

ISOLATION_GIVES_UP = 3
"""How many events in a row may run out of time, none applied, before a pass that applies a
batch one event at a time (``Consumer._isolate``) stops: the store is at fault (a lock on a
table every event writes, a backend that hangs), not those events; each costs a statement
timeout."""

MOVED_AGAIN = 5
"""How many times in a row a sorted batch may find a row moved by another transaction (the
rebuild's switch) and be sorted and applied again before it is applied one event at a time
(``Consumer._apply``); and an event applied alone, before its case is blocked at it and it
is handed back (``Consumer._applied_alone_again``)."""

GONE_CHECK_EVERY = 10
"""How many hand-backs of an event waiting behind a retried one of its case go by between
looks at whether the retried event is still on the stream (``Consumer._released``)."""


@dataclass(slots=True)
class _Item:
    msg: Msg
    seq: int
    delivered: int
    #: The event; only its head when the handler ignores its type (``Handler.ignores``).
    envelope: Envelope | EnvelopeHead | None = None
    error: str | None = None

    # What a batch's span reads of the message (``tracing.Applied``): the header of each,
    # the rest only of a message whose trace is kept, or that caused a command.
    @property
    def traceparent(self) -> str | None:
        headers = self.msg.headers
        return headers.get(tracing.TRACEPARENT) if headers else None

    @property
    def event_id(self) -> UUID:
        assert self.envelope is not None
        return self.envelope.event_id

    @property
    def type(self) -> str:
        assert self.envelope is not None
        return self.envelope.type

    @property
    def case_id(self) -> UUID | None:
        assert self.envelope is not None
        return self.envelope.case_id


def _seq_of(item: _Item) -> int:
    return item.seq


def _handled(items: Iterable[_Item]) -> list[Envelope]:
    """The events of ``items`` the handler is given: those decoded whole."""
    return [e for i in items
            if (e := i.envelope) is not None and type(e) is not EnvelopeHead]  # type: ignore[misc]


def _type_in(subject: str) -> str:
    """The event type a subject names (``<prefix>.<service>.<type>.p<partition>``:
    ``jetstream.event_subject``)."""
    parts = subject.rsplit(".", 2)
    return parts[1] if len(parts) == 3 else ""


@dataclass(slots=True)
class _Prepared:
    """A batch's ``Preparing.prepare``, made while the batch before it was applied."""

    events: list[Envelope]
    result: object


@dataclass
class Consumer:
    """One durable pull consumer feeding one handler."""

    settings: Settings
    nc: NATS
    pool: asyncpg.Pool
    name: str
    handler: Handler
    filter_subjects: list[str]
    batch: int = 500
    max_deliver: int = 5
    backoff: Sequence[float] = (0.2, 1.0, 5.0, 15.0)
    deliver_from_seq: int | None = None
    on_batch: Callable[[ConsumerStats], None] | None = None
    ack_wait: float = 30.0
    #: Called each time a batch is given back because a statement ran out of time.
    on_store_timeout: Callable[[], None] | None = None
    #: How many batches in a row may run out of time before the next is applied one event
    #: at a time, to find the one that does (``_isolate``; ``CONSUMER_ISOLATE_AFTER_TIMEOUTS``).
    isolate_after: int = 3
    #: How long batches go back before the durable says so (``RETRYING_KEY``).
    retrying_said_after_s: float = RETRYING_SAID_AFTER_S
    #: How long a busy consumer waits for more before applying fewer than ``gather_below``
    #: events (``_gather``; ``CONSUMER_GATHER_MS``); 0: never.
    gather_s: float = 0.0
    gather_below: int = 8
    #: Busy: the last batch ended less than this before the next one's events came.
    gather_window_s: float = 0.02
    #: The pauses between start-agains (``_consume_again_and_again``).
    restarts: Backoff = field(default_factory=lambda: Backoff(cap=START_AGAIN_MAX_S))
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    #: Batches in a row given back because a statement ran out of time (``_timed_out``).
    _timeouts_in_a_row: int = field(default=0, init=False, repr=False)
    #: The durable's ``RETRYING_KEY`` being cleared once a batch went through again.
    _unsaying: asyncio.Future[None] | None = field(default=None, init=False, repr=False)
    #: Whether ``ensure`` wrote ``RETRYING_KEY`` into the durable (cleared with it).
    _said_retrying: bool = field(default=False, init=False, repr=False)
    #: When the stream this consumer reads was made (its dead letters say so).
    _stream_created: datetime | None = field(default=None, init=False, repr=False)
    _conn: asyncpg.Connection | None = field(default=None, init=False, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _analyzed_at: int = field(default=0, init=False, repr=False)
    _analyzing: asyncio.Future[str] | None = field(default=None, init=False, repr=False)
    _scale: int = field(default=1, init=False, repr=False)
    #: Messages of the next batch decoded while the one before was applied (by ``id``).
    _decoded_ahead: dict[int, _Item] = field(default_factory=dict, init=False, repr=False)
    #: The next batch prepared while the one before was applied (``Preparing``).
    _prepared_ahead: _Prepared | None = field(default=None, init=False, repr=False)
    _prepared_now: _Prepared | None = field(default=None, init=False, repr=False)
    #: When (loop time) an idle consumer next looks at its stream and durable.
    _next_look: float = field(default=0.0, init=False, repr=False)
    #: When (loop time) a gap in the deliveries started this consumer again (``_after_a_loss``).
    _lost_at: float | None = field(default=None, init=False, repr=False)
    #: Whether ``consumer_held`` may have rows of this consumer (``_forget_gone_holds``):
    #: set by each hold, and at start (rows of a process before); cleared when none is left.
    _holding: bool = field(default=True, init=False, repr=False)
    #: When (loop time) a consumer holding events next looks whether they are still there.
    _next_hold_look: float = field(default=0.0, init=False, repr=False)
    #: The event types the handler does nothing with (``Handler.ignores``): only tracked.
    _ignores: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    #: When (loop time) the last batch ended (``_gather``: whether the consumer is busy).
    _last_done: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        self._idle.set()
        # A handler that appends commands asks for larger batches (``batch_scale``): its
        # commands go to group commit together, one round per command of its busiest case,
        # so a larger batch fills each round instead of adding rounds.
        self._scale = max(1, int(getattr(self.handler, "batch_scale", 1)))
        self.batch *= self._scale
        self._ignores = frozenset(getattr(self.handler, "ignores", ()))

    @property
    def leads(self) -> bool:
        """Whether this process drives the durable now (it holds the durable's lock: no
        other process, of this release or an older one, applies or acks its events)."""
        return self._conn is not None

    @property
    def lock_key(self) -> str:
        return f"sixstep-consumer:{self.settings.stream_name}:{self.name}"

    def _retrying(self) -> str | None:
        """What the durable's ``RETRYING_KEY`` says: since when and on what this consumer's
        batches go back, once that has lasted ``RETRYING_SAID_AFTER_S``; else None."""
        since = self.stats.timing_out_since
        if since is None or time.time() - since < self.retrying_said_after_s:
            return None
        at = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        return f"since {at}: {self.stats.last_timeout}"[:1000]

    async def ensure(self, refused: str | None = None) -> None:
        """Create the durable consumer (or align its filters); idempotent. ``refused``: why
        it applies nothing (``_on_its_stream``), kept in the durable's metadata, as is what
        it has been retrying for a while (``RETRYING_KEY``; at each start again)."""
        js = self.nc.jetstream()
        retrying = self._retrying()
        self._said_retrying = retrying is not None
        metadata = {**({REFUSED_KEY: refused[:1000]} if refused else {}),
                    **({RETRYING_KEY: retrying} if retrying else {})} or None
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # No limit on the server: a message at JetStream's limit is silently never
            # delivered again. The tries that count are ours (``_apply_one_by_one``).
            max_deliver=-1,
            max_ack_pending=max(self.batch * 4, 1000),
            filter_subjects=self.filter_subjects,
            deliver_policy=(DeliverPolicy.BY_START_SEQUENCE if self.deliver_from_seq
                            else DeliverPolicy.ALL),
            opt_start_seq=self.deliver_from_seq,
            max_waiting=64,
            metadata=metadata,
        )
        try:
            info = await js.consumer_info(self.settings.stream_name, self.name)
            if (sorted(info.config.filter_subjects or []) != sorted(self.filter_subjects)
                    or info.config.max_ack_pending != config.max_ack_pending
                    or (info.config.metadata or {}).get(REFUSED_KEY) != refused
                    or (info.config.metadata or {}).get(RETRYING_KEY) != retrying
                    or (info.config.max_deliver or -1) > 0):  # made with a limit: lift it
                await js.add_consumer(self.settings.stream_name, config)
        except NotFoundError:
            await js.add_consumer(self.settings.stream_name, config)

    async def measure_oldest_unapplied(self) -> float | None:
        """Ask the server for the oldest event this consumer has not applied yet: the first
        message on its subjects past its ack floor (an event held for a retry, fetched and
        not yet applied, or not fetched yet). Dead-lettered events count as done. Sets
        ``stats.pending`` (how many are not applied yet) and ``stats.oldest_unapplied_at``
        (returned): true even while the consumer fetches nothing."""
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        info = await js.consumer_info(stream, self.name)
        self.stats.pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        if not info.num_pending and not info.num_ack_pending:
            self.stats.oldest_unapplied_at = None
            return None
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        oldest: tuple[int, float] | None = None
        for subject in self.filter_subjects:
            try:
                msg = await js.get_msg(stream, seq=floor + 1, subject=subject, next=True)
            except NotFoundError:
                continue
            if msg.seq is not None and msg.time is not None and (
                    oldest is None or msg.seq < oldest[0]):
                oldest = (msg.seq, msg.time.timestamp())
        self.stats.oldest_unapplied_at = oldest[1] if oldest else None
        return self.stats.oldest_unapplied_at

    async def caught_up(self) -> bool:
        """Whether this consumer has applied (or dead-lettered) every event on its subjects the
        stream holds now, in whichever process: every partition is some durable's of it
        (``base_consumer``: the partitioned workers' ``-p0_1``, ``-p2_3`` too; an API process
        of a split layout asks about the workers' durables, never its own name) that has
        nothing pending and nothing delivered and not yet acked (an event held behind a retry
        is). A durable the split no longer uses (``CONSUMER_PARTITIONS`` changed, deploy/
        README) stays behind for ever; its partitions count by the durables that took them
        over. Every page of the stream's consumers; False when no such durable is there
        (never started, deleted), a partition is no durable's, or the server does not
        answer."""
        try:
            infos = await self.durables()
        except (NatsError, TimeoutError):
            return False
        counted: set[int] = set()
        for info in infos:
            if not info.num_pending and not info.num_ack_pending:
                counted |= partitions_consumed(info, self.settings.partitions)
        return counted >= set(range(self.settings.partitions))

    async def durables(self) -> list[ConsumerInfo]:
        """The server's durables of this consumer in whichever process (``durables_of``)."""
        return await durables_of(self.nc.jetstream(), self.settings.stream_name, self.name)

    async def drain(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (applied, tracked, acked), then fetch no more."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def run(self) -> None:
        async with self.pool.acquire() as conn:
            await self._lead(conn)
            self._conn = conn
            try:
                await self._consume_again_and_again()
            finally:
                self._conn = None

    async def _consume_again_and_again(self) -> None:
        """``_consume``, started again each time what it started on is gone (``_StartAgain``:
        deliveries lost on the way, the durable deleted, the stream made anew): at once the
        first time, then after pauses that double, with jitter, up to ``START_AGAIN_MAX_S``
        (``restarts``), from the first again once a batch went through or it ran that long.
        Said once per change: the first start-again of a run and each new reason (warning),
        and the first batch after a run of them (``consumer.going_again``). Before, a reason
        that came back at once (a server losing every delivery) was a tight loop of
        reconnects and log lines."""
        loop = asyncio.get_running_loop()
        reason: str | None = None
        while True:
            started = loop.time()
            try:
                await self._consume()
            except _StartAgain as exc:
                if loop.time() - started > self.restarts.cap:
                    self._went_well()
                pause = self.restarts.next()
                if str(exc) != reason or self.restarts.streak == 1:
                    log.warning("consumer.start_again", consumer=self.name, reason=str(exc),
                                times=self.restarts.streak, retry_in_s=round(pause, 2))
                reason = str(exc)
                if pause:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), pause)

    def _went_well(self) -> None:
        """A batch went through (or a start lasted): the next start-again is at once."""
        if self.restarts.streak:
            log.info("consumer.going_again", consumer=self.name,
                     started_again=self.restarts.succeeded())

    async def _lead(self, conn: asyncpg.Connection) -> None:
        """Wait until this process drives the durable (the lock lives as long as ``conn``)."""
        waited = False
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))",
                                      self.lock_key):
            if not waited:
                log.info("consumer.standby", consumer=self.name)
                waited = True
                self.stats.standing_by = True
            await asyncio.sleep(1.0)
        self.stats.standing_by = False

    async def _reset_to_ack_floor(self) -> ConsumerInfo | None:
        """Have what a crashed predecessor fetched and never acked redelivered now, in order.

        The floor is named, not left to the server: a durable made with a delivery limit
        keeps the messages it gave up on below its floor, unacked, and a reset without a
        sequence moves the floor past them (they were lost for good, their cases behind:
        ``ensure`` lifting the limit brings them back only with this). What was applied
        among what comes again is skipped by its tracking record. Returns the durable as the
        reset left it (None: the server could not reset it)."""
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        try:
            info = await js.consumer_info(stream, self.name)
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            start = info.config.opt_start_seq or 0  # a reset below it is refused
            reset = await js.reset_consumer(stream, self.name,
                                            seq=floor + 1 if floor + 1 >= start else None)
        except NatsError as exc:  # an older server: redelivery waits for ack_wait instead
            log.warning("consumer.reset_unavailable", consumer=self.name, error=str(exc))
            return None
        return reset.info

    async def _after_a_loss(self, reset: bool) -> None:
        """Deliveries were lost on the way (``Puller.lost``) and the server could not be reset
        to the ack floor: nothing is asked for until ack_wait has passed since, so that the
        lost messages are due for redelivery, which comes before anything newer."""
        lost_at, self._lost_at = self._lost_at, None
        if reset or lost_at is None:
            return
        wait = lost_at + self.ack_wait + 0.5 - asyncio.get_running_loop().time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def _next_delivery(self, info: ConsumerInfo | None) -> int | None:
        """The consumer sequence the durable's next delivery will carry, from ``info`` (the
        reset's answer) or, without it, asked now (None: unknown)."""
        if info is None:
            try:
                info = await self.nc.jetstream().consumer_info(self.settings.stream_name,
                                                               self.name)
            except (NatsError, TimeoutError):
                return None
        return (info.delivered.consumer_seq if info.delivered else 0) + 1

    async def _on_its_stream(self) -> datetime | None:
        """Return once the stream is the one this consumer's tracking rows were written
        against (``shared.bus.stream_identity``: one STREAM.INFO). Until then nothing is
        fetched: a stream made anew numbers its messages from 1 again, and the rows would
        skip new events as applied and apply old ones again. The durable is made (and says
        why in its metadata, for ``sixstep ops status``); /ready, the metric
        ``sixstep_consumer_stream_refused`` and the log say what to run."""
        js = self.nc.jetstream()
        while True:
            seen = await stream_seen(js, self.settings.stream_name)
            async with self._connection() as conn:
                why = await check_stream(conn, self.name, seen, applied_seq_sql=APPLIED_SEQ)
            if why is None:
                if self.stats.stream_refused is not None:
                    log.warning("consumer.stream_accepted", consumer=self.name)
                self.stats.stream_refused = None
                return seen.created
            if self.stats.stream_refused != why:
                log.error("consumer.stream_refused", consumer=self.name, reason=why,
                          fix=f"rebuild the read model of {base_consumer(self.name)} "
                              "(`sixstep rebuild <read model>`, or `sixstep rebuild --all`)")
                self.stats.stream_refused = why
                await self.ensure(refused=why)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), STREAM_RECHECK_S)
            if self._stopping.is_set():
                await asyncio.Event().wait()  # drained: wait to be cancelled

    async def _still_there(self, made: datetime | None) -> None:
        """While idle, every ``STREAM_RECHECK_S``: raise ``_StartAgain`` when the stream is
        not the one made at ``made`` that this loop started on, or its durable is gone. A
        stream deleted and made again under a running consumer takes the durable with it:
        the pulls found nobody, and the consumer waited for ever, applying nothing and
        saying nothing; started again it refuses the new stream (``_on_its_stream``), or
        makes its durable again. A stream not there (deleted, not made yet) is looked at
        again later, as is one the server does not answer for now."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_look:
            return
        self._next_look = loop.time() + STREAM_RECHECK_S
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        try:
            seen = await stream_seen(js, stream)
        except (NatsError, TimeoutError):
            return
        if made is not None and seen.created is not None and seen.created != made:
            raise _StartAgain(f"the stream was made anew at {seen.created.isoformat()}")
        try:
            await js.consumer_info(stream, self.name)
        except NotFoundError:
            raise _StartAgain("the durable consumer is gone") from None
        except (NatsError, TimeoutError):
            return

    async def _consume(self) -> None:
        made = self._stream_created = await self._on_its_stream()
        await self.ensure()
        reset = await self._reset_to_ack_floor()
        await self._after_a_loss(reset is not None)
        # Lingering pull requests stay open on the server: an event published while this
        # consumer waits is delivered at once, and under load the next batch is already on
        # its way while one is applied. Batches are applied one after the other, in stream
        # order; while one waits on PostgreSQL (its statements, its commands' group commit),
        # the next is taken and decoded (``_read_ahead``). At most four batches are held (one
        # applied, one read ahead, two on their way), far inside ack_wait; three of a command
        # writer's larger ones (one on its way).
        puller = Puller(self.nc, self.settings.stream_name, self.name, self.batch,
                        depth=2 if self._scale == 1 else 1)
        await puller.start(next_delivery=await self._next_delivery(reset))
        if not self.restarts.streak:  # each start of a run of start-agains is said once
            log.info("consumer.started", consumer=self.name, subjects=self.filter_subjects)
        held: list[Msg] = []  # taken from the puller, neither acked nor handed back yet
        try:
            while not self._stopping.is_set():
                await self._forget_gone_holds()
                if not held:
                    held = await puller.take(timeout=1.0)
                    if not held:
                        if puller.lost is not None:
                            self._lost_at = asyncio.get_running_loop().time()
                            missing, came = puller.lost
                            raise _StartAgain(
                                f"deliveries {missing}-{came - 1} were lost on the way (the "
                                "connection they went out on broke): again from the ack floor")
                        await self._still_there(made)
                    continue
                self._idle.clear()  # a drain waits for the batch gathered too
                if self.gather_s > 0 and len(held) < min(self.gather_below, self.batch):
                    try:
                        await self._gather(puller, held)
                    except BaseException:
                        self._idle.set()
                        raise
                ahead: list[Msg] = []
                # What was prepared of this batch while the last one was applied.
                self._prepared_now, self._prepared_ahead = self._prepared_ahead, None
                applying = asyncio.ensure_future(self.process(held))
                try:
                    await self._read_ahead(puller, applying, ahead)
                    await applying
                except Exception as exc:
                    # The store or the bus failed under us: hand the batches back now
                    # rather than after ack_wait, then let the supervisor restart us (with
                    # back-off, ``shared.runtime.background.supervise``).
                    self._timed_out(exc)
                    await self._stop_applying(applying)
                    for msg in [*held, *ahead]:
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=self.backoff[0])
                    held = []
                    raise
                except BaseException:  # cancelled: the batch in hand goes with us
                    held = [*held, *ahead]
                    await self._stop_applying(applying)
                    raise
                finally:
                    self._idle.set()
                    self._last_done = asyncio.get_running_loop().time()
                self._answers_again()
                self._went_well()
                held = ahead
            await asyncio.Event().wait()  # drained: wait to be cancelled
        finally:
            # Not started, or delivered but never taken: back to the stream at once, for the
            # next leader (an unsubscribe on a connection being drained must not hold the
            # shutdown).
            unstarted = list(held)
            self._decoded_ahead.clear()
            self._prepared_ahead = self._prepared_now = None
            if self._analyzing is not None and not self._analyzing.done():
                self._analyzing.cancel()
            with contextlib.suppress(Exception):
                unstarted += await asyncio.wait_for(puller.stop(), 2.0)
            for msg in unstarted:
                with contextlib.suppress(Exception):
                    await msg.nak()

    def _timed_out(self, exc: BaseException) -> None:
        """A batch went back because a statement ran out of time: counted, said (the first of
        a run at error level, the others at warning), and kept for /ready until a batch
        goes through again."""
        if not isinstance(exc, STORE_TIMED_OUT):
            return
        stats = self.stats
        stats.store_timeouts += 1
        self._timeouts_in_a_row += 1
        stats.last_timeout = f"{type(exc).__name__}: {str(exc)[:200]}"
        if self.on_store_timeout is not None:
            self.on_store_timeout()
        first = stats.timing_out_since is None
        stats.timing_out_since = stats.timing_out_since or time.time()
        (log.error if first else log.warning)(
            "consumer.store_timed_out", consumer=self.name, error=stats.last_timeout,
            times=stats.store_timeouts, hint="a lock another session holds, a hung backend: "
            "pg_stat_activity (deploy/README, 'A hung statement')")

    def _answers_again(self) -> None:
        self._timeouts_in_a_row = 0
        if self.stats.timing_out_since is not None:
            log.warning("consumer.store_answers_again", consumer=self.name,
                        after_s=round(time.time() - self.stats.timing_out_since, 1))
            self.stats.timing_out_since = None
            if self._said_retrying:  # the durable said it retried: no longer (``ops status``)
                self._said_retrying = False
                self._unsaying = asyncio.ensure_future(self._unsay_retrying())

    async def _unsay_retrying(self) -> None:
        try:
            await self.ensure(refused=self.stats.stream_refused)
        except Exception as exc:  # said again at the next start, or this one's next try
            log.warning("consumer.retrying_not_cleared", consumer=self.name, error=str(exc))

    async def _gather(self, puller: Puller, held: list[Msg]) -> None:
        """A small batch of a busy consumer waits up to ``gather_s`` for more, taken into
        ``held`` (in place: a cancellation leaves nothing taken outside it). Every batch pays
        the same fixed cost whatever its size (its transaction and tracking write, the
        handler's round trips, the ack, the span): at middle rates each stage applied one
        event at a time and spent as much CPU a second as at the maximum. Busy means the
        last batch ended within ``gather_window_s``: an idle consumer's lone event (a quiet
        hour's write) is applied at once, never delayed."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last_done >= self.gather_window_s:
            return
        deadline, enough = now + self.gather_s, min(self.gather_below, self.batch)
        while len(held) < enough and not self._stopping.is_set():
            left = deadline - loop.time()
            if left <= 0 or puller.lost is not None:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(puller.arrival(), left)
            held += await puller.take_now(self.batch - len(held))

    async def _read_ahead(self, puller: Puller, applying: asyncio.Future[None],
                          ahead: list[Msg]) -> None:
        """While ``applying`` runs, take the next batch into ``ahead`` and decode it: what
        arrives until the batch is full or the one applied is done. Nothing of it is applied
        (or acked) before ``applying`` has committed.

        The batch applied comes first: it starts (sends its first statement) before anything
        is decoded here, and the decoding goes in slices of ``DECODE_SLICE`` messages with a
        turn of the loop between them, so that the batch goes on as soon as an answer it
        waits for comes. Decoded in one run, a full batch read ahead (2,000 messages of a
        command writer: 20-40 ms) held up each of the applied batch's statements and its
        commands' answers until the run was over."""
        await asyncio.sleep(0)  # ``applying`` starts first
        while len(ahead) < self.batch:
            got = await puller.take_now(self.batch - len(ahead))
            if got:
                ahead += got
                for start in range(0, len(got), DECODE_SLICE):
                    if start:
                        await asyncio.sleep(0)
                    for msg in got[start:start + DECODE_SLICE]:
                        self._decoded_ahead[id(msg)] = self._decode(msg)
                continue
            if applying.done():
                return
            arrival = asyncio.ensure_future(puller.arrival())
            try:
                await asyncio.wait((applying, arrival), return_when=asyncio.FIRST_COMPLETED)
            finally:
                arrival.cancel()
                # Waited for, not awaited: a cancellation of this task itself still raises.
                await asyncio.wait((arrival,))
        if not applying.done():
            self._prepare_ahead(ahead)

    def _prepare_ahead(self, ahead: list[Msg]) -> None:
        """The full batch read ahead, prepared while the one before still waits on
        PostgreSQL (``Preparing``): pure work, used only if the batch is applied as it is."""
        prepare = getattr(self.handler, "prepare", None)
        if prepare is None:
            return
        items = [self._decoded_ahead.get(id(m)) for m in ahead]
        if all(i is not None and i.envelope is not None for i in items):
            events = _handled(cast(list[_Item], items))
            try:
                self._prepared_ahead = _Prepared(events, prepare(events))
            except Exception:  # the batch's own apply meets it again, and retries it
                self._prepared_ahead = None

    @staticmethod
    async def _stop_applying(applying: asyncio.Future[None]) -> None:
        """The batch being applied is abandoned: its transaction rolls back."""
        if not applying.done():
            applying.cancel()
        await asyncio.wait((applying,))  # its own failure is the caller's to report
        if not applying.cancelled():
            applying.exception()  # retrieved: reported by the caller's raise

    # -- one batch --------------------------------------------------------------------------

    async def process(self, msgs: Sequence[Msg]) -> None:
        prepared, self._prepared_now = self._prepared_now, None
        # In stream order: a batch comes in delivery order, and a redelivered event can
        # follow a newer one of its case (applied after it, the case's view went back).
        items = self._once_each(sorted([self._decoded(m) for m in msgs], key=_seq_of))
        for item in items:
            if item.envelope is None:
                await self._dead_letter(item, item.error or "undecodable")
        good = [i for i in items if i.envelope is not None]
        if good and tracing.enabled():
            # One span for the batch, linked to each message of a kept trace (not one of a
            # type the handler ignores: only tracked); the commands it causes go on in
            # their message's trace.
            with tracing.consuming(f"consume {self.name}", [
                    i for i in good if type(i.envelope) is not EnvelopeHead]):
                await self._apply(good, prepared)
        elif good:
            await self._apply(good, prepared)
        self.stats.batches += 1
        if self.on_batch:
            self.on_batch(self.stats)

    def _once_each(self, items: list[_Item]) -> list[_Item]:
        """``items`` (in stream order) with each stream sequence once: its latest delivery.
        A message not acked within ack_wait is delivered again while the first copy is still
        in hand (a batch held longer: a slow statement, a long ``CONSUMER_GATHER_MS``), and
        both copies could land in one batch: every event of it new to its row, the batch's
        tracking write passed and the handler was given the event twice. The copy left out
        is not answered: the server keeps one pending entry a sequence, answered by the
        kept copy's ack or nak (an ack of the left-out one before the commit would let the
        event go should the batch fail)."""
        once: list[_Item] = []
        last = -1
        for item in items:
            if item.seq != last:
                once.append(item)
                last = item.seq
                continue
            self.stats.duplicates += 1
            if item.delivered > once[-1].delivered:
                once[-1] = item
        return once

    def _decoded(self, msg: Msg) -> _Item:
        """The message decoded: ahead of its batch (``_read_ahead``), or now."""
        item = self._decoded_ahead.pop(id(msg), None)
        return item if item is not None and item.msg is msg else self._decode(msg)

    def _decode(self, msg: Msg) -> _Item:
        item = _Item(msg, *sequence_and_delivered(msg))
        self.stats.last_stream_seq = max(self.stats.last_stream_seq, item.seq)
        if self._ignores and _type_in(msg.subject) in self._ignores:
            head = decode_head(msg.data)
            if head is not None and head.type in self._ignores:
                item.envelope = head  # only tracked: no span, never handed to the handler
                return item
        try:
            item.envelope = REGISTRY.current(decode_envelope(msg.data))
        except (ValidationError, LookupError, ValueError) as exc:
            item.error = f"undecodable event: {type(exc).__name__}: {str(exc)[:500]}"
            return item
        return item

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The leader's own connection (it holds the lock); a pooled one outside ``run``."""
        if self._conn is not None:
            yield self._conn
            return
        async with self.pool.acquire() as conn:
            yield conn

    def _analyze_when_grown(self) -> None:
        """Fresh statistics for ``consumer_tracking`` (and the handler's ``analyzed``) at
        start and each time this consumer has doubled what it applied: the tracking lookup is
        a prepared statement, and a plan made while the table was young scans every row
        (1.2 s a batch at a million rows, 0.9 ms with statistics) long before autovacuum
        looks at it. PostgreSQL plans a prepared statement again once the statistics of its
        tables change.

        ANALYZE runs beside the batches, on a pooled connection, not first thing in a batch:
        it blocks no writer (SHARE UPDATE EXCLUSIVE) and took 3-40 ms each of the 3-7 times a
        26,000-event backlog asked for it, a batch's whole wait each time."""
        if self.stats.applied < self._analyzed_at or (
                self._analyzing is not None and not self._analyzing.done()):
            return
        self._analyzed_at = max(2 * self.stats.applied, 5_000)
        # The handler's own tables read by key the same way (``Handler.analyzed``): the
        # figures' ``= ANY($1)`` lookups planned on empty tables scanned every fact row each
        # batch (4.6 of the figures' 19 us an event at 37,764 events, and growing).
        tables = ", ".join(("consumer_tracking", *getattr(self.handler, "analyzed", ())))
        self._analyzing = asyncio.ensure_future(self.pool.execute(f"ANALYZE {tables}"))
        self._analyzing.add_done_callback(self._analyzed)

    def _analyzed(self, analyzing: asyncio.Future[str]) -> None:
        if not analyzing.cancelled() and (exc := analyzing.exception()) is not None:
            self._analyzed_at = 0  # asked again with the next batch
            log.warning("consumer.analyze_failed", consumer=self.name,
                        error=f"{type(exc).__name__}: {exc}")

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
        written = False
        try:
            async with conn.transaction():
                if not await self._written(conn, items):
                    raise _NotAllFresh
                written = True
                await self._handle(conn, items, prepared, _TRACKED_ALREADY)
        except _NotAllFresh:
            # Rolled back: the rows read as they are now, after whatever the statement
            # waited on (a read of its own, as every batch made before TRACK_FIRST).
            return await self._tracking(conn, items)
        except STORE_TIMED_OUT:
            raise  # not the events' fault: the whole batch goes back (``_timed_out``)
        except Exception as exc:
            if not written:
                raise  # the tracking statement itself: as the read before it, not the events'
            self._batch_failed(exc, items)
            await self._apply_one_by_one(conn, items)
            return None
        await self._ack([item.msg for item in items])
        self.stats.applied += len(items)
        return None

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
                      prepared: _Prepared | None, track: _Once) -> None:
        """The handler's part of a batch, inside its transaction."""
        events = _handled(fresh)
        if not events:
            return  # only events the handler ignores: only tracked
        if prepared is not None and _same(prepared.events, events):
            await cast(Preparing, self.handler).apply(conn, events, prepared.result)
        elif getattr(self.handler, "waits", False):
            await cast(Waiting, self.handler).apply(conn, events, track)
        else:
            await self.handler.apply(conn, events)

    def _batch_failed(self, exc: Exception, fresh: list[_Item]) -> None:
        log.warning("consumer.batch_failed", consumer=self.name, size=len(fresh),
                    error=f"{type(exc).__name__}: {exc}")
        tracing.batch_failed(exc)

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

    def _tracking_args(self, items: list[_Item]) -> tuple[object, ...]:
        """``TRACK``'s arguments for ``items``: each case's highest sequence, each service's
        last position and sequence, each case's lowest and highest sequence again (what the
        row must show new). The highest, not the last delivered: a batch is in delivery
        order, and a redelivered event after a newer one of its case moved the row back to
        it (the newer applied again when it came back)."""
        span: dict[UUID, tuple[int, int]] = {}
        progress: dict[str, tuple[int, int]] = {}
        for item in items:
            envelope = item.envelope
            assert envelope is not None
            key, seq = envelope.partition_key, item.seq
            found = span.get(key)
            span[key] = (seq, seq) if found is None else (min(found[0], seq), max(found[1], seq))
            pos, top = progress.get(envelope.service, (0, 0))
            progress[envelope.service] = (max(pos, envelope.position), max(top, seq))
        services = list(progress)
        highest = [high for _, high in span.values()]
        return (self.name, list(span), highest, services,
                [progress[svc][0] for svc in services], [progress[svc][1] for svc in services],
                [low for low, _ in span.values()], highest)

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

    async def _apply_one_by_one(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """``items`` one at a time, each in its own transaction: a failing event is retried
        with back-off (its case's later events wait behind it), dead-lettered after
        ``max_deliver`` tries."""
        failed_keys: set[UUID] = set()
        for item in items:
            assert item.envelope is not None
            key = item.envelope.partition_key
            if key in failed_keys:  # keep the aggregate's order: wait behind the failure
                await self._hold(conn, [item])
                await item.msg.nak(delay=self.backoff[0])
                continue
            try:
                with structlog.contextvars.bound_contextvars(
                        correlation_id=item.envelope.correlation_id,
                        event_id=str(item.envelope.event_id)):
                    moved = await self._applied_alone_again(conn, item)
            except STORE_TIMED_OUT:
                raise  # not this event's fault: no try counted (``_timed_out``)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:500]}"
                permanent = isinstance(exc, PermanentError)
                tries = 1 if permanent else await self._failed(conn, key, item.seq)
                if permanent or tries >= self.max_deliver:
                    item.error = reason
                    await self._dead_letter(item, reason, conn=conn, tries=tries)
                    continue
                failed_keys.add(key)
                await self._hold(conn, [item])
                delay = self.backoff[min(tries, len(self.backoff)) - 1]
                self.stats.retried += 1
                log.warning("consumer.retry", consumer=self.name, seq=item.seq,
                            delivered=item.delivered, tries=tries, delay=delay, error=reason,
                            correlation_id=item.envelope.correlation_id,
                            event_id=str(item.envelope.event_id))
                await item.msg.nak(delay=delay)
                continue
            if moved == "duplicate":  # its row went past it meanwhile: applied elsewhere
                self.stats.duplicates += 1
                await item.msg.ack()
                continue
            if moved == "behind":
                # Behind a block of its case (a failed event's, or the one put when its row
                # kept moving): handed back, its case's later events with it, sorted again
                # when it comes back. No try counted.
                failed_keys.add(key)
                await self._hold(conn, [item])
                await item.msg.nak(delay=self.backoff[0])
                continue
            await item.msg.ack()
            self.stats.applied += 1

    async def _applied_alone_again(self, conn: asyncpg.Connection, item: _Item) -> str | None:
        """``item`` applied alone (``_apply_alone``), and again for as long as another
        transaction moved its row meanwhile (``_RowsMoved``) and the row, read again, still
        shows it new: None once applied; "duplicate" when the row went past it (applied
        meanwhile); "behind" when the row is blocked at an earlier event of its case.

        Before, an event whose row moved and that was still new was handed back with its
        row unblocked (the rebuild's switch replaces every row: one waited on, then found
        replaced). Its case's next event, read ahead in the next batch, found nothing to
        wait behind and was applied first; the row went past the event handed back, which
        came back a duplicate and was never applied. After ``MOVED_AGAIN`` moves in a row
        its case is blocked at it (no try counted) before it is handed back: its case's
        later events wait behind it whatever batch they come in."""
        assert item.envelope is not None
        key = item.envelope.partition_key
        for _ in range(MOVED_AGAIN):
            try:
                await self._apply_alone(conn, item)
                return None
            except _RowsMoved:
                seq, blocked = (await self._tracking(conn, [item])).get(key, (0, None))
                if item.seq <= seq:
                    return "duplicate"
                if blocked is not None and item.seq > blocked:
                    return "behind"
        log.warning("consumer.rows_keep_moving", consumer=self.name, seq=item.seq,
                    key=str(key), times=MOVED_AGAIN)
        await self._block(conn, key, item.seq, count_try=False)
        return "behind"

    async def _isolate(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        """``isolate_after`` batches in a row ran out of time: apply this one one event at a
        time, each in its own transaction, to find the event whose handling does. One that
        runs out of time is set aside, its case's later events of the batch waiting behind
        it (held); once another event was applied, the store answers: those set aside are
        tried once more (the lock they waited for may have gone during the pass: dead-lettered
        then, nothing was wrong with them) and dead-lettered when they run out of time again
        (``_dead_letter``), then the events that waited behind them are
        applied, in order (``_apply_one_by_one``), as after any dead letter. Handed back
        instead, they came back after the case's next events (read ahead, no longer held
        back once the dead letter lifted the case's hold) were applied, and were taken for
        duplicates: acked, never applied. None applied while ``ISOLATION_GIVES_UP`` ran out
        of time in a row: the store's fault, the last timeout is raised (the batch goes
        back, nothing counted) and the next pass waits for ``isolate_after`` more timed-out
        batches. The pass ends with none applied before that (nothing else to try): each
        set aside counts a try (``_nothing_else_to_apply``), the batch goes back, and the
        next pass comes as after the first."""
        log.warning("consumer.isolating", consumer=self.name, size=len(items),
                    timed_out_batches=self._timeouts_in_a_row)
        set_aside: list[tuple[_Item, BaseException]] = []
        waiting_keys: set[UUID] = set()
        behind: list[_Item] = []  # held behind one set aside: applied after its letter
        applied = 0
        in_a_row = 0
        for index, item in enumerate(items):
            assert item.envelope is not None
            key = item.envelope.partition_key
            if key in waiting_keys:  # the case's order: behind the one set aside
                await self._hold(conn, [item])
                behind.append(item)
                continue
            try:
                await self._apply_alone(conn, item)
            except STORE_TIMED_OUT as exc:
                in_a_row += 1
                if not applied and in_a_row >= ISOLATION_GIVES_UP:
                    self._timeouts_in_a_row = 0  # the next pass after as many again
                    raise
                set_aside.append((item, exc))
                waiting_keys.add(key)
                await self._hold(conn, [item])
                continue
            except Exception:
                # Not a timeout: the ordinary path (tries with back-off, then the dead
                # letters) takes this one and the rest of the pass, in order; those of a
                # case set aside wait for its letter.
                rest = items[index:]
                waits = [i for i in rest
                         if i.envelope is not None and i.envelope.partition_key in waiting_keys]
                if waits:
                    await self._hold(conn, waits)
                    behind += waits
                before = self.stats.applied
                await self._apply_one_by_one(
                    conn, [i for i in rest if i.envelope is not None
                           and i.envelope.partition_key not in waiting_keys])
                applied += self.stats.applied - before
                break
            in_a_row = 0
            applied += 1
            await item.msg.ack()
            self.stats.applied += 1
        if set_aside and not applied:
            self._timeouts_in_a_row = 0  # the next pass after as many again
            if not await self._nothing_else_to_apply(conn, set_aside, behind):
                raise set_aside[-1][1]
            return
        tries = self._timeouts_in_a_row + 2  # the batches it took back, and its own two
        for item, exc in set_aside:
            # Once more, now that the store answers (others were applied since): the lock it
            # waited for may have gone meanwhile (a session's transaction ended during the
            # pass), and a letter would have asked a replay of an event nothing was wrong
            # with, its case's later events applied before it.
            assert item.envelope is not None
            key = item.envelope.partition_key
            try:
                await self._apply_alone(conn, item)
            except STORE_TIMED_OUT as again:
                exc = again  # the reason names the last
            except Exception:  # the ordinary path: tries with back-off, its case behind it
                mine = [i for i in behind if i.envelope and i.envelope.partition_key == key]
                behind = [i for i in behind if not (i.envelope and i.envelope.partition_key == key)]
                await self._apply_one_by_one(conn, [item, *mine])
                continue
            else:
                await item.msg.ack()
                self.stats.applied += 1
                continue
            reason = _timed_out_alone(exc, f"on its own {tries} times while the rest of "
                                           "the log was applied")
            item.error = reason
            await self._dead_letter(item, reason, conn=conn, tries=tries)
        if behind:  # their cases go on now, in order, before any later event of theirs
            await self._apply_one_by_one(conn, behind)

    async def _nothing_else_to_apply(self, conn: asyncpg.Connection,
                                     set_aside: list[tuple[_Item, BaseException]],
                                     behind: list[_Item]) -> bool:
        """A pass of ``_isolate`` applied nothing, and fewer than ``ISOLATION_GIVES_UP`` events
        ran out of time: those set aside were all it had to try besides the events behind
        them (the last on the stream, a quiet night). Nothing else tells the store's fault
        from theirs then, and before, such an event was never dead-lettered: it took each
        pass back, for as long as no other case's event came, the consumer timing out and
        /ready degraded meanwhile. Now each such pass counts a try for each (in the tracking
        row: the store that answers this write is not the one at fault), and one tried
        ``max_deliver`` times is dead-lettered and its case's events behind it applied, as
        after any dead letter. Only when PostgreSQL ended its statement (``ENDED_BY_SERVER``,
        a command's ``StatementTimedOut``): a backend that answered nothing, an event store
        that took no command, counts nothing. Whether all of them were dead-lettered (else
        the batch goes back)."""
        if not all(isinstance(exc, (*ENDED_BY_SERVER, StatementTimedOut))
                   for _, exc in set_aside):
            return False
        left = False
        for item, exc in set_aside:
            assert item.envelope is not None
            key = item.envelope.partition_key
            tries = await self._failed(conn, key, item.seq)
            if tries < self.max_deliver:
                left = True
                log.warning("consumer.timed_out_alone", consumer=self.name, seq=item.seq,
                            tries=tries, max_deliver=self.max_deliver,
                            error=f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            reason = _timed_out_alone(exc, f"on its own in {tries} passes with nothing else "
                                           "to apply")
            item.error = reason
            await self._dead_letter(item, reason, conn=conn, tries=tries)
            mine = [i for i in behind if i.envelope and i.envelope.partition_key == key]
            behind = [i for i in behind if not (i.envelope and i.envelope.partition_key == key)]
            if mine:  # its case goes on, in order
                await self._apply_one_by_one(conn, mine)
        return not left

    async def _apply_alone(self, conn: asyncpg.Connection, item: _Item) -> None:
        """``item`` in a transaction of its own, with its tracking row (only the row for an
        event of a type the handler ignores: its head is all that was decoded)."""
        assert item.envelope is not None
        async with conn.transaction():
            if type(item.envelope) is not EnvelopeHead:
                with tracing.applying(f"apply {self.name}", self._traced([item])):
                    await self.handler.apply(conn, [item.envelope])
            await self._track(conn, [item])

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


def _timed_out_alone(exc: BaseException, how: str) -> str:
    """The reason of an event dead-lettered by ``Consumer._isolate``: it ran out of time
    ``how`` (``on its own 5 times while ...``), waiting for a lock or slow."""
    lock = isinstance(exc, asyncpg.LockNotAvailableError) or (
        isinstance(exc, StatementTimedOut) and exc.details.get("error") == "LockNotAvailable")
    return (f"{'waited for a lock' if lock else 'ran out of time'} {how}"
            f" ({type(exc).__name__}: {str(exc)[:300]}): "
            + ("a session holds its rows" if lock else "its statement is slow")
            + "; replay it (sixstep dlq replay) once that is fixed")


def _same(a: list[Envelope], b: list[Envelope]) -> bool:
    """The same envelopes (the same objects), in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


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


