"""The outbox relay: every stored event, in order, onto the stream, exactly once.

The application's notification log is the outbox. The relay is woken by the NOTIFY the
event store sends on each commit, reads what is new in rounds of up to RELAY_BATCH events,
and publishes each round on a connection of its own, with
``Nats-Msg-Id = <service>:<position>``: a re-publish after a crash is dropped by the server.
One relay per service publishes at a time (a PostgreSQL advisory lock elects it).

In order, also when the stream or the connection fails in the middle of a round:

* On a replicated stream (or with RELAY_ATOMIC_ROUNDS=true) a round is one JetStream atomic
  batch (``allow_atomic``, nats-server 2.12+; at most ATOMIC_BATCH_MAX events): the stream
  stores all of it, in order, or none of it. A message lost on the way (a stream leader that
  went away with it, a socket that broke) makes the server refuse the whole batch, where
  event by event the events after it were stored and the lost one, published again, stood
  after them. The batch's first message expects the service's last event on the stream to
  be the one the relay knows (``Nats-Expected-Last-Subject-Sequence`` over
  ``<prefix>.<service>.>``), so the server also refuses a round that would not follow it
  directly. It is not the default on one node: nats-server 2.15 spends ~2 ms of CPU on each
  atomic batch and answers it ~5 ms later (``benchmarks/relay_cpu.py --batch 10``: 7 x the
  server's CPU an event at rounds of 10), and there no leader changes in the middle of a
  round: the stream refuses an event there only when it refuses the rest too (JetStream
  down, limits, disk), or the connection breaks, which delivers a prefix of the round.
* The next round is published only once the last one is acknowledged (``Relay._room``).
* A round that fails (refused, or its answer lost: it may be stored) sends the relay back to
  the service's last event on the stream (``_start_position``), never past a gap.
* The connection is the relay's own and never reconnects (``connect(reconnect=False)``), so
  it never sends what it still held in its buffer after a new socket is up. When it closes
  (or JetStream does not answer) the relay, still the leader, opens a new one after a pause
  and starts again from the stream (``relay.nats_connection_lost``,
  ``sixstep_relay_connections_lost_total``; /ready goes on timing how long it is behind).

Its position moves only past events the server has acknowledged, and is kept in PostgreSQL
with the stream sequence of its message. At start the relay takes the service's last event
on the stream when every event between the saved position and it is there (a crash after
publishing, before saving), read from that sequence on; else it publishes again from the
first one missing, round by round event by event until past the last one on the stream (an
atomic batch holding one would be refused), leaving out those the start found on it: the
stream drops a re-published Nats-Msg-Id only within its duplicate window, and stores it
again after.
When the stream's limits (max_age, discard old) took the saved position's message, the check
still reads from the sequence after it; the events before the first one still held count as
taken with it when as many messages went after it (``relay.start_after_limits``). A stream
that ends before the saved position's sequence, or holds another message there, lost what
the relay had published (a server that crashed before syncing it, a stream restored from an
older backup): the relay goes on after the service's last event on it
(``relay.stream_behind_saved_position``), as the restore runbook's deleted position did.
A stream deleted and made again while the relay publishes takes its next event at a low
sequence: an acknowledged sequence not above the last one (and, besides, a look every
``STREAM_LOOK_S``, publishing or idle: the other relays may have filled the new stream past
this one's last sequence first) makes the relay compare the stream's creation time with the
one it started on, and on a new stream it publishes every
event of the store onto it (``relay.stream_made_anew``), not only those after its position.
The saved position carries the creation time of the stream it was published onto as far as
the relay knew (``stream_created``): a relay that stopped before it noticed is followed by one
that does, at its start.

The relay trusts no id it did not publish: the messages the start would take for events past
the saved position must carry the store's event ids (``_StreamNotOurs``), and a publish the
stream answers as a duplicate of a message the start did not find there must name the
store's event (one a relay racing this one published), else the stream dropped the event
for a message of someone else's (published by hand, ``_StreamNotOurs``) or for one it no
longer holds (the round fails). Such a message, or one beyond the store's last position
(``_StreamAhead``), stops publishing until it is removed, with its stream sequence in the
log and /ready.

What is only detected, event by event (rounds not atomic, or a server before 2.12): a
stream that refuses an event of a round (no leader) and stores a later one (a leader
elected meanwhile) holds them out of store order; so may a stream written by an older relay. The
acknowledgements carry the stream sequence, which must rise with the position: a refused
event with a later one stored, a sequence not above the last one's, or a gap found at start
is logged as ``relay.stream_out_of_order`` and counted (``Relay.out_of_order``,
``sixstep_relay_out_of_order_total``, /ready's ``checks.relay``). The refused events are
published again, so nothing is lost, but the stream holds them after the later ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from shared import tracing
from shared.bus.jetstream import connect, event_subject
from shared.bus.publishing import Outgoing, publish_each
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.contracts.decoding import envelope_of
from shared.kernel.tasks import cancel_and_wait
from shared.leadership import Leadership
from shared.settings import Settings
from shared.tracing import TRACEPARENT

log = structlog.get_logger("sixstep.outbox")

#: How often, at most, a relay busy publishing saves its position (a hint: see Relay._save).
SAVE_EVERY_S = 0.25
#: How long a round's acknowledgements may take before it counts as failed.
ACK_TIMEOUT_S = 10.0
#: How often a relay looks at the stream's creation time besides an acknowledgement below
#: the one before it (``Relay._stream_made_anew``): a new stream the other services' relays
#: filled first acknowledges this one's next event above its last sequence, in seeming order.
STREAM_LOOK_S = 1.0
#: The first and the longest pause before the relay opens a new NATS connection.
RECONNECT_PAUSE_S = (0.5, 5.0)
#: At most this many of the service's events on the stream past the saved position are
#: read at start to check that none is missing; past it the stream's last is trusted.
CHECK_AT_START_MAX = 100_000
#: The most messages nats-server takes in one atomic batch.
ATOMIC_BATCH_MAX = 1000


class _ConnectionLost(Exception):
    """The relay's own NATS connection closed (or could not be opened, or JetStream did not
    answer it): publishing starts over on a new one."""


class _StreamAhead(_ConnectionLost):
    """The stream holds events of the service beyond the store's last position: a database
    restored without its stream (deploy/README, "Back up and restore"). Publishing would hand
    the stream positions it already holds: it would drop the new events as duplicates within
    its window, and the relay would count them as published. The relay, still the leader,
    publishes nothing and looks again after a pause; /ready and SixstepRelayBehind time the
    wait."""

    log_event = "relay.stream_ahead_of_store"


class _StreamNotOurs(_StreamAhead):
    """A message on the stream carries one of the service's ids (``Nats-Msg-Id``) and is not
    the store's event at that position: one published by hand (an operator, a bug), or a
    database restored without its stream and written to since. Taken for the event, it would
    let the relay skip the real one, and, within its duplicate window, drop it. Publishing
    waits until it is removed, as for a stream ahead of the store."""

    log_event = "relay.stream_holds_foreign_id"


class _AllBut:
    """The positions up to ``last`` but those ``held`` (what a stream made anew lacks: a
    store's length of them, not kept one by one)."""

    def __init__(self, last: int, held: Container[int]) -> None:
        self.last, self.held = last, held

    def __contains__(self, position: object) -> bool:
        return (isinstance(position, int) and 0 < position <= self.last
                and position not in self.held)


@dataclass(frozen=True)
class _OnStream:
    """A message of the service on the stream: the position its id names, its sequence, and
    the event id its envelope carries (None: not an envelope)."""

    position: int
    seq: int
    event_id: str | None


@dataclass
class _Round:
    """One round's messages, published and waiting for their acknowledgements."""

    epoch: int  # the relay's epoch when it was read: a failure before it makes it void
    size: int
    atomic: bool  # one atomic batch: its commit's is the only acknowledgement
    futures: list[tuple[int, asyncio.Future[dict[str, Any]]]]
    #: The round's last event and its sequence when the stream held it (not published again).
    held_last: tuple[int, int] | None = None


def to_envelope(service: str, position: int, event: Any) -> Envelope:
    """A stored domain event as it crosses the bus: envelope + payload of its contract."""
    contract = REGISTRY.get(type(event).__name__)
    fields = {name: getattr(event, name) for name in _payload_fields(contract.payload)
              if hasattr(event, name)}
    payload = contract.payload.model_validate(fields).model_dump(mode="json")
    # ``Envelope(**...)``'s answer or error, its two moments' bounds checked inline.
    return envelope_of(_envelope_fields(service, position, event, contract.type,
                                        contract.version, payload))


def as_stored(service: str, position: int, event: Any) -> Envelope:
    """A stored event its contract refuses (one recorded before a bound existed, e.g. an
    ``occurred_at`` in the year 1), as it was stored: unvalidated. The relay still publishes
    it, in its place, so the stream holds every stored event and nothing after it waits;
    readers report it as unreadable (consumers dead-letter it, export and replay skip it)."""
    contract = REGISTRY.get(type(event).__name__)
    fields = {name: getattr(event, name) for name in _payload_fields(contract.payload)
              if hasattr(event, name)}
    return Envelope.model_construct(**_envelope_fields(
        service, position, event, contract.type, contract.version,
        to_jsonable_python(fields)))


_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}


def _payload_fields(payload: type[BaseModel]) -> tuple[str, ...]:
    """A contract's payload fields, read once per payload class (pydantic's class property
    behind ``model_fields`` was ~5 % of ``to_envelope``)."""
    names = _PAYLOAD_FIELDS.get(payload)
    if names is None:
        names = _PAYLOAD_FIELDS[payload] = tuple(payload.model_fields)
    return names


def _envelope_fields(service: str, position: int, event: Any, type_name: str, version: int,
                     payload: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = event.meta
    return dict(
        event_id=event_id_for(service, event.originator_id, event.originator_version),
        type=type_name,
        version=version,
        service=service,
        position=position,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        case_id=meta.get("case_id"),
        center_id=meta["center_id"],
        occurred_at=meta.get("occurred_at") or event.timestamp,
        recorded_at=event.timestamp,
        causation_id=meta.get("causation_id"),
        correlation_id=meta.get("correlation_id"),
        actor=meta.get("actor") or "system",
        payload=payload,
    )


def encode(envelope: Envelope) -> bytes:
    """The envelope as JSON, by its own serializer in one pass (the same bytes as
    ``orjson.dumps(envelope.model_dump(mode="json"))``, without the dict between: ~3 us of
    the relay's ~45 us an event)."""
    return _TO_JSON(envelope)


_TO_JSON = Envelope.__pydantic_serializer__.to_json


class Relay:
    """Publishes a service's outbox to the stream; ``run()`` until cancelled."""

    def __init__(self, settings: Settings, service: str, app: Application, pool: asyncpg.Pool,
                 *, locks: asyncpg.Pool | None = None,
                 on_published: Callable[[int], None] | None = None,
                 on_connection_lost: Callable[[], None] | None = None,
                 on_out_of_order: Callable[[int], None] | None = None) -> None:
        recorder: Any = app.recorder
        self.settings = settings
        self.service = service
        self.app = app
        self.pool = pool
        #: The relay's own connection (``run`` opens it; never reconnecting: module doc).
        self.nc: NATS | None = None
        self.schema = recorder.datastore.schema
        self.table = recorder.events_table_name
        self.channel = recorder.channel_name
        self.batch = settings.relay_batch
        self.position = 0
        self.leading = False  # holds the relay lock (a standby replica does not publish)
        self.on_published = on_published
        self.on_connection_lost = on_connection_lost
        self.on_out_of_order = on_out_of_order
        #: Times the relay's NATS connection closed or could not be opened.
        self.connections_lost = 0
        #: Events of this service seen standing on the stream out of store order.
        self.out_of_order = 0
        #: The stream sequence of ``position``'s message (0: not known).
        self._position_seq = 0
        #: The sequence of the service's last message on the stream, as far as the relay
        #: knows: the next atomic round expects it (``Nats-Expected-Last-Subject-Sequence``).
        self._tail_seq = 0
        #: Whether rounds go as atomic batches (RELAY_ATOMIC_ROUNDS, or a replicated stream;
        #: and the stream allows them: nats-server 2.12+).
        self.atomic = False
        #: Rounds up to this position go event by event: a start found events missing
        #: before ones the stream holds (an atomic batch holding those would be refused).
        self._repair_until = 0
        #: The service's last position on the stream at the last start, and those before it
        #: the start found missing: a duplicate answer for any other position means the stream
        #: holds an id the relay did not publish, and dropped the event (``_settle``).
        self._stream_last = 0
        self._missing: Container[int] = frozenset()
        #: The events after the first one missing that the start found on the stream, and
        #: their sequences: the rounds up to ``_repair_until`` do not publish them again (out
        #: of the duplicate window the stream would store them twice).
        self._held: dict[int, int] = {}
        self._pause = RECONNECT_PAUSE_S[0]
        #: The stream's creation time when this connection started, and whether the stream
        #: was found made anew since (``_refuse_made_anew``; ``_start_position`` clears it).
        self._stream_made: datetime | None = None
        self._made_anew = False
        #: The creation time of the stream ``position`` belongs to: the one ``_start_position``
        #: last took, saved with the position (``outbox_position.stream_created``). A stream
        #: found made anew does not change it: what the relay published onto the new stream
        #: before it noticed is saved as written against the old one, so that a start after
        #: a crash (or a lost connection) in between still finds the stream made anew.
        self._position_stream: datetime | None = None
        #: When (``time.monotonic()``) the relay last looked at the stream's creation time.
        self._looked_at = 0.0
        #: Events stored and not yet on the stream (set by :meth:`measure`).
        self.unpublished = 0
        #: When (``time.time()``) the relay first read the oldest event it has not yet
        #: published; None while it is caught up. Its age is how long publishing is behind.
        self.behind_since: float | None = None
        #: Why the last publish failed (cleared by the next that succeeds).
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._saved_at = 0.0  # time.monotonic() of the last saved position
        self._saved = 0  # the position last saved
        self._acks: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: The last position published (read ahead of ``position``, the last acknowledged).
        self._sent = 0
        #: Rounds published, in order, waiting for their acknowledgements (``_settle_rounds``).
        self._flight: deque[_Round] = deque()
        self._published = asyncio.Event()  # a round joined the flight
        self._settled = asyncio.Event()  # a round left it
        #: Bumped when a round fails: what was read before is published again from
        #: ``position``, and the rounds still in flight from before are void.
        self._epoch = 0
        #: One statement at a time on the leader's connection (reads, position writes).
        self._using = asyncio.Lock()
        self._inbox = f"_INBOX.relay.{service}.{secrets.token_hex(6)}"
        #: The leader's: lock, LISTEN, its reads of the outbox and its position.
        self._conn: asyncpg.Connection | None = None
        #: The relay lock, one per service's schema, held as every singleton loop holds its
        #: own (``shared.leadership``; until review50 the relay took it by itself), on a
        #: connection of ``locks`` (the runtime's lock pool), else of ``pool``.
        self.leadership = Leadership(locks or pool, f"sixstep-relay:{self.schema}",
                                     what="relay")

    async def ensure_table(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{self.schema}".outbox_position ('
            " stream text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz"
            " NOT NULL DEFAULT now())")
        # The stream sequence of the saved position's message: where the start's check of
        # what is on the stream beyond it begins (NULL in a row saved before it existed).
        await conn.execute(f'ALTER TABLE "{self.schema}".outbox_position'
                           " ADD COLUMN IF NOT EXISTS stream_seq bigint")
        # The creation time of the stream the saved position was published onto (NULL in a
        # row saved before it existed): a start on a stream made since goes from the first.
        await conn.execute(f'ALTER TABLE "{self.schema}".outbox_position'
                           " ADD COLUMN IF NOT EXISTS stream_created timestamptz")

    async def run(self) -> None:
        """Publish while this replica holds the relay lock (``shared.leadership``, as every
        singleton loop); stand by until then."""
        async with self.leadership as lead:
            await self._lead(lead)

    async def _lead(self, lead: Leadership) -> None:
        """The leader's run, on the lock's own connection (its LISTEN and its reads)."""
        listener = lead.connection
        try:
            self.leading = True
            await self.ensure_table(listener)  # by the leader only: no CREATE TABLE race
            await listener.add_listener(self.channel, self._notified)
            # The position is a hint (the start takes the later of it and the stream's last
            # message, and the stream drops a re-published Nats-Msg-Id), so saving it need
            # not wait for the disk: the next round starts sooner.
            await listener.execute("SET synchronous_commit TO off")
            self._conn = listener
            # The lock and the NOTIFY live on this connection: when the store restarts both
            # are gone, so stop publishing at once and start over (supervised) to take them
            # again, rather than race a relay that took the lock meanwhile.
            lost = asyncio.Event()

            def on_lost(*_: Any) -> None:
                lost.set()
                self._wake.set()

            listener.add_termination_listener(on_lost)
            try:
                while True:
                    try:
                        await self._publish_on_own_connection(lost)
                    except _ConnectionLost as exc:
                        # Still the leader: a new connection, after a pause, and from the
                        # stream's last event again (what the closed one had sent is not known).
                        self.last_error = str(exc)[:300]
                        if self.behind_since is None and self.unpublished:
                            self.behind_since = time.time()  # /ready's stall check goes on
                        if isinstance(exc, _StreamAhead):
                            log.error(exc.log_event, service=self.service, error=str(exc),
                                      retry_in_s=self._pause)
                        else:
                            self.connections_lost += 1
                            if self.on_connection_lost:
                                self.on_connection_lost()
                            log.warning("relay.nats_connection_lost", service=self.service,
                                        position=self.position, error=str(exc),
                                        retry_in_s=self._pause)
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._pause):
                                await lost.wait()
                        self._pause = min(self._pause * 2, RECONNECT_PAUSE_S[1])
                    if lost.is_set():
                        raise ConnectionError("the store connection holding the relay lock"
                                              " ended")
            except Exception as exc:
                if lost.is_set():  # LeadershipLost (a ConnectionError): said as any loop's
                    lead.lost(f"{type(exc).__name__}: {exc}")
                raise
        finally:
            self.leading = False
            self.behind_since = None  # the next leader (maybe this one again) measures anew
            self._conn = None
            self._forget_flight()
            await lead.unlisten(self.channel, self._notified)

    async def _publish_on_own_connection(self, lost: asyncio.Event) -> None:
        """Publish on a new connection of the relay's own until it closes
        (``_ConnectionLost``) or something else fails."""
        closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()
            # The acks still awaited will not come: the round fails now, not in 10 s.
            self._fail_acks("the relay's NATS connection closed")

        try:
            nc = await connect(self.settings, f"sixstep-{self.service}-relay",
                               reconnect=False, closed_cb=on_closed)
        except (OSError, TimeoutError, NatsError) as exc:
            raise _ConnectionLost(f"cannot connect to NATS: {type(exc).__name__}: {exc}"
                                  ) from exc
        self.nc = nc
        loops: tuple[asyncio.Future[None], ...] = ()
        try:
            await nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
            info = await nc.jetstream().stream_info(self.settings.stream_name)
            self._stream_made = info.created
            wanted = self.settings.relay_atomic_rounds
            if wanted is None:
                wanted = (info.config.num_replicas or 1) > 1
            self.atomic = wanted and bool(info.config.allow_atomic)
            self.batch = (min(self.settings.relay_batch, ATOMIC_BATCH_MAX) if self.atomic
                          else self.settings.relay_batch)
            self.position, self._position_seq = await self._start_position(self._conn)
            self._sent = self.position
            log.info("relay.started", service=self.service, position=self.position)
            # Two loops: one reads and publishes rounds, the other waits for their
            # acknowledgements; either failing stops both (and the relay: supervised).
            loops = (asyncio.ensure_future(self._publish_rounds(lost)),
                     asyncio.ensure_future(self._settle_rounds()),
                     asyncio.ensure_future(closed.wait()))
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            if not closed.is_set():
                for task in done:
                    task.result()
        except Exception as exc:
            if closed.is_set() or nc.is_closed:
                raise _ConnectionLost(f"the relay's NATS connection closed: "
                                      f"{type(exc).__name__}: {exc}") from exc
            if isinstance(exc, NatsError | TimeoutError) and not lost.is_set():
                # JetStream not answering (a cluster electing the stream's leader): still
                # the leader, so /ready goes on measuring how long publishing is behind.
                raise _ConnectionLost(f"NATS: {type(exc).__name__}: {exc}") from exc
            raise
        finally:
            try:  # a loop's own failure as the connection closed: said above
                await cancel_and_wait(*loops)
            finally:
                self._forget_flight()
                self.nc = None
                with contextlib.suppress(Exception):
                    await nc.close()
        if closed.is_set():
            raise _ConnectionLost(f"the relay's NATS connection closed: {nc.last_error!r}")

    def _fail_acks(self, why: str) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_result({"error": {"description": why}})

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _start_position(self, conn: asyncpg.Connection | None) -> tuple[int, int]:
        """Where publishing goes on, and that message's stream sequence: after the service's
        last event on the stream when every event between the saved position and it is
        there (a crash after publishing, before saving); else after the last event before
        the first one missing, which goes out again (the stream drops the re-published
        events it holds: Nats-Msg-Id)."""
        row = await (conn or self.pool).fetchrow(
            f'SELECT position, stream_seq, stream_created FROM "{self.schema}".outbox_position '
            "WHERE stream = $1", self.settings.stream_name)
        saved, saved_seq = (int(row["position"]), row["stream_seq"]) if row else (0, 0)
        saved_on = row["stream_created"] if row else None
        self._position_stream = self._stream_made
        if (not self._made_anew and saved_on is not None and self._stream_made is not None
                and saved_on != self._stream_made):
            # Saved on another stream than this one: made anew while this relay (or one
            # before it) published, and not noticed before it stopped or lost its connection.
            # Without this, a position it had published onto the new stream (and saved) was
            # taken as the stream's: the store's events before it never went there.
            log.error("relay.stream_made_anew", service=self.service, at_start=True,
                      saved=saved, saved_on=saved_on.isoformat(),
                      made_at=self._stream_made.isoformat())
            self._made_anew = True
        made_anew, self._made_anew = self._made_anew, False
        on_stream = await self._last_on_stream()
        last, last_seq = on_stream.position, on_stream.seq
        head = await (conn or self.pool).fetchval(
            f'SELECT max(notification_id) FROM "{self.schema}"."{self.table}"') or 0
        if last > head:
            raise _StreamAhead(
                f"the stream's message {last_seq} ({self.service}:{last}) is beyond this "
                f"store's last ({head}): a database restored without its stream, or a "
                "message published by hand? Nothing is published until the stream is "
                "restored as deploy/README's 'Back up and restore' says, or that message is "
                "removed")
        self._tail_seq = last_seq
        self._repair_until = 0
        self._stream_last, self._missing, self._held = last, frozenset(), {}
        if made_anew:
            return await self._start_on_new_stream(conn, last, last_seq)
        if last < saved and saved_seq and await self._gone_after(
                saved, int(saved_seq)) is None:
            # The saved position's sequence is past the stream's end, or another message
            # stands there: the stream lost messages the relay had published (a server that
            # crashed before syncing its last writes, a stream restored from an older backup
            # or made anew). What it lost goes out again.
            log.warning("relay.stream_behind_saved_position", service=self.service,
                        saved=saved, on_stream=last)
            return last, last_seq
        if last <= saved:
            # Nothing past the saved position (or a stream whose limits took its messages):
            # new messages get sequences above every one it holds.
            return saved, last_seq
        gone = None if (saved_seq is None or last - saved > CHECK_AT_START_MAX
                        or saved_seq >= last_seq) else (
            await self._gone_after(saved, int(saved_seq)))
        if gone is None:
            # No sequence saved with the position (a row from before), or one the stream
            # contradicts (another message there: the row edited by hand, a stream made anew),
            # or too far behind.
            await self._refuse_not_ours(conn, [on_stream])
            log.warning("relay.start_unchecked", service=self.service, saved=saved,
                        on_stream=last)
            return last, last_seq
        found = await self._on_stream(int(saved_seq) + 1, last_seq)
        await self._refuse_not_ours(conn, found)
        positions = [f.position for f in found]
        first = saved + 1
        if gone and positions and first < min(positions) <= first + gone:
            # The stream's limits took the oldest messages, the saved position's and some
            # after it: the events before the first one still held went with them (as many
            # messages went, of every service, as events are not there). More events not
            # there than messages gone: at least one never reached the stream, and all of
            # them go again (a duplicate of one the limits took rather than a loss).
            first = min(positions)
            log.warning("relay.start_after_limits", service=self.service, saved=saved,
                        taken_by_limits=[saved + 1, first - 1], messages_gone=gone)
        expected = list(range(first, last + 1))
        if positions == expected:
            return last, last_seq
        missing = sorted(set(expected) - set(positions))
        self._report_disorder(len(missing) or 1, "start", saved=saved, on_stream=last,
                              missing=missing[:10], missing_count=len(missing))
        if not missing:
            return last, last_seq
        self._repair_until = last
        self._missing = frozenset(missing)
        self._held = {f.position: f.seq for f in found if f.position > missing[0]}
        return missing[0] - 1, 0

    async def _start_on_new_stream(self, conn: asyncpg.Connection | None, last: int,
                                   last_seq: int) -> tuple[int, int]:
        """The start on a stream made anew under this relay (``_refuse_made_anew``, or saved
        on another stream): nothing saved belongs to it, and it holds no more of the service
        than what the relay put on it before it noticed. Those events are read (all of them:
        however long the store, they are few) and left out (``_held``); every other event
        goes onto the stream from the first (after them: reported as out of order). The
        usual check reads at most CHECK_AT_START_MAX events past the saved position and
        trusts the stream's last beyond it: from position 0, a store longer than that had
        only what was published since on the new stream."""
        if not last:
            return 0, 0
        found = await self._on_stream(1, last_seq)
        await self._refuse_not_ours(conn, found)
        self._held = {f.position: f.seq for f in found}
        self._missing = _AllBut(last, self._held)
        self._repair_until = last
        if missing := last - len(self._held):
            self._report_disorder(missing, "start", saved=0, on_stream=last,
                                  missing_count=missing, made_anew=True)
        return 0, 0

    async def _last_on_stream(self) -> _OnStream:
        """The service's last message on the stream (position 0 when it is not one the relay
        published; sequence 0 when there is none)."""
        assert self.nc is not None
        js = self.nc.jetstream()
        subject = f"{self.settings.subject_prefix}.{self.service}.>"
        try:
            msg = await js.get_last_msg(self.settings.stream_name, subject)
        except NotFoundError:
            return _OnStream(0, 0, None)
        return self._read(msg.headers, int(msg.seq or 0), msg.data)

    async def _refuse_not_ours(self, conn: asyncpg.Connection | None,
                               found: Sequence[_OnStream]) -> None:
        """Raise ``_StreamNotOurs`` when one of ``found`` is not the store's event at the
        position its id names (the start would take it for that event)."""
        found = [f for f in found if f.position]
        if not found:
            return
        rows = await (conn or self.pool).fetch(
            f'SELECT notification_id, originator_id, originator_version '
            f'FROM "{self.schema}"."{self.table}" WHERE notification_id = ANY($1::bigint[])',
            [f.position for f in found])
        stored = {row[0]: str(event_id_for(self.service, row[1], row[2])) for row in rows}
        for f in found:
            # A position the store has no event at is taken for nothing (one beyond the
            # store's last, as the stream's last, is ``_StreamAhead``).
            if f.position in stored and stored[f.position] != f.event_id:
                raise _StreamNotOurs(
                    f"the stream's message {f.seq} ({self.service}:{f.position}) is not this "
                    f"store's event {f.position}: published by hand, or a database restored "
                    "without its stream? Nothing is published while it is there (remove it: "
                    f"nats stream rmm {self.settings.stream_name} {f.seq}); the event goes "
                    "out once its id's duplicate window has passed")

    async def _gone_after(self, position: int, seq: int) -> int | None:
        """Whether the stream's sequence ``seq`` still places the service's event
        ``position``: None when it does not (another message stands there, or the stream ends
        before it); else how many messages after it the stream no longer holds. The stream's
        limits (max_age, discard old) take the oldest messages first: the saved position's
        may be gone while every message after it is still there (0), and the check of what
        follows it still holds."""
        if position == 0 or seq == 0:
            return 0 if position == seq else None
        assert self.nc is not None
        js = self.nc.jetstream()
        try:
            msg = await js.get_msg(self.settings.stream_name, seq)
        except NotFoundError:
            state = (await js.stream_info(self.settings.stream_name)).state
            if seq > state.last_seq:
                return None
            return max(0, state.first_seq - seq - 1)
        return 0 if self._position_of(msg.headers) == position else None

    def _position_of(self, headers: dict[str, str] | None) -> int:
        service, _, position = (headers or {}).get("Nats-Msg-Id", "").rpartition(":")
        return int(position) if service == self.service and position.isdigit() else 0

    def _read(self, headers: dict[str, str] | None, seq: int, data: bytes | None
              ) -> _OnStream:
        position = self._position_of(headers)
        event_id = None
        if position:
            with contextlib.suppress(ValueError):
                envelope = orjson.loads(data or b"")
                if isinstance(envelope, dict) and isinstance(envelope.get("event_id"), str):
                    event_id = envelope["event_id"]
        return _OnStream(position, seq, event_id)

    async def _on_stream(self, from_seq: int, to_seq: int) -> list[_OnStream]:
        """The service's messages on the stream from sequence ``from_seq`` to ``to_seq``, in
        stream order (those whose id names no position of it left out)."""
        assert self.nc is not None
        js = self.nc.jetstream()
        subject = f"{self.settings.subject_prefix}.{self.service}.>"
        sub = await js.pull_subscribe(subject, stream=self.settings.stream_name, config=(
            ConsumerConfig(ack_policy=AckPolicy.NONE,
                           deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                           opt_start_seq=from_seq, inactive_threshold=10.0)))
        found: list[_OnStream] = []
        try:
            seq = from_seq - 1
            while seq < to_seq:
                for msg in await sub.fetch(min(self.batch, 1000), timeout=5.0):
                    seq = msg.metadata.sequence.stream
                    if seq > to_seq:
                        break
                    on_stream = self._read(msg.headers, seq, msg.data)
                    if on_stream.position:
                        found.append(on_stream)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return found

    def _report_disorder(self, count: int, where: str, **details: Any) -> None:
        """Events of the service stand on the stream out of store order: say it loudly."""
        self.out_of_order += count
        if self.on_out_of_order:
            self.on_out_of_order(count)
        log.error("relay.stream_out_of_order", service=self.service, seen_at=where,
                  count=count, **details)

    async def _publish_rounds(self, lost: asyncio.Event) -> None:
        """Read and publish rounds until cancelled (their acknowledgements are
        ``_settle_rounds``'s)."""
        epoch = self._epoch
        while True:
            if lost.is_set():
                raise ConnectionError("lost the store connection holding the relay lock")
            # Clear before reading: a commit that lands while this round is published
            # must wake the next round, not be forgotten for the 5 s safety timeout.
            self._wake.clear()
            if epoch != self._epoch:
                # A round failed: after a pause, publishing goes on after the service's last
                # event on the stream (what an atomic round whose answer was lost stored is
                # there), or from the first one missing (``_start_position``).
                epoch = self._epoch
                await asyncio.sleep(1.0)
                before = self.position
                self.position, self._position_seq = await self._start_position(self._conn)
                self._sent = self.position
                if self.position > before and self.on_published:
                    self.on_published(self.position - before)  # stored, its answer lost
                continue
            await self._room()
            if epoch != self._epoch:
                continue
            sent = await self._publish_once(epoch)
            if sent < self.batch:
                behind = self._saved < self.position or bool(self._flight)
                with contextlib.suppress(TimeoutError):
                    # NOTIFY wakes us; the timeout only guards against a lost notification
                    # (or, with a position not saved yet, ends a short pause to save it).
                    async with asyncio.timeout(SAVE_EVERY_S if behind else 5.0):
                        await self._wake.wait()
                if (not self._wake.is_set() and not self._flight
                        and self._saved < self.position):
                    # Idle: the saved position catches up, so that a standby's count, ops
                    # status and the relay-stall check do not see published events as
                    # waiting (they did, for good, after the last throttled save).
                    await self._write_position()
                if (not self._flight and time.monotonic() - self._looked_at > STREAM_LOOK_S
                        and await self._stream_made_anew() is not None):
                    # Idle after an event that went onto a new stream unnoticed: the rest of
                    # the store goes there too, from the start (``_start_position``).
                    log.error("relay.stream_made_anew", service=self.service, idle=True)
                    self._epoch += 1

    async def _room(self) -> None:
        """Wait until the round in flight is settled: nothing is published behind a round
        not yet acknowledged. A second round published while the first's acknowledgements
        are on their way is stored out of order when the stream refuses the first (no
        leader) and takes the second (a new leader elected in between), as a three-node
        cluster losing its stream leader did in CI (tests/faults/test_nats_cluster.py: "in
        order False"; test_log_guarantees shows the rule). Pipelined rounds had shown no gain
        on one node and p50 0.7-0.8 x on three replicas."""
        while self._flight:
            self._settled.clear()
            await self._settled.wait()

    async def _publish_once(self, epoch: int) -> int:
        # On the leader's own connection, not the pool's: a pooled read waits for a free
        # connection behind the API and pays a second round trip (the reset on release).
        async with self._using:
            rows = await (self._conn or self.pool).fetch(
                f'SELECT notification_id, originator_id, originator_version, topic, state '
                f'FROM "{self.schema}"."{self.table}" WHERE notification_id > $1 '
                "ORDER BY notification_id LIMIT $2", self._sent, self.batch)
        if not rows:
            if not self._flight:
                self.behind_since = None
            return 0
        if self.behind_since is None:
            self.behind_since = time.time()
        atomic = self.atomic and self._sent >= self._repair_until
        held_last = None
        out = rows
        if self._held and self._sent < self._repair_until:
            out = [row for row in rows if row["notification_id"] not in self._held]
            last = rows[-1]["notification_id"]
            if last in self._held:
                held_last = (last, self._held[last])
        with tracing.span(f"publish {self.service}", kind=tracing.SpanKind.PRODUCER,
                          attributes={"sixstep.batch.size": len(rows)}):
            futures = await self._publish(out, atomic) if out else []
        self._sent = rows[-1]["notification_id"]
        self._flight.append(_Round(epoch, len(rows), atomic, futures, held_last))
        self._published.set()
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record], atomic: bool
                       ) -> list[tuple[int, asyncio.Future[dict[str, Any]]]]:
        """Publish ``rows`` in order; their acknowledgements will resolve the futures. An
        ``atomic`` round is one batch: the stream stores all of it, in order, right after the
        service's last event as the relay knows it, or none of it (a message lost on the way,
        a leader change, another event of the service in between), and only its commit (the
        last) is answered."""
        loop = asyncio.get_running_loop()
        nc = self.nc
        assert nc is not None
        futures: list[tuple[int, asyncio.Future[dict[str, Any]]]] = []
        messages: list[Outgoing] = []
        batch = secrets.token_hex(4)  # stored with each message: short (one round in flight)
        last = rows[-1]["notification_id"]
        for i, row in enumerate(rows, 1):
            position = row["notification_id"]
            event = self.app.mapper.to_domain_event(StoredEvent(
                originator_id=row["originator_id"], originator_version=row["originator_version"],
                topic=row["topic"], state=bytes(row["state"])))
            try:
                envelope = to_envelope(self.service, position, event)
            except ValidationError as exc:
                log.warning("relay.event_refused_by_contract", service=self.service,
                            position=position, type=type(event).__name__,
                            errors=exc.error_count())
                envelope = as_stored(self.service, position, event)
            headers = {"Nats-Msg-Id": f"{self.service}:{position}",
                       "Sixstep-Type": envelope.type}
            reply = f"{self._inbox}.{position}"
            if atomic:
                headers["Nats-Batch-Id"] = batch
                headers["Nats-Batch-Sequence"] = str(i)
                if i == 1:
                    headers["Nats-Expected-Last-Subject-Sequence"] = str(self._tail_seq)
                    headers["Nats-Expected-Last-Subject-Sequence-Subject"] = (
                        f"{self.settings.subject_prefix}.{self.service}.>")
                if position == last:
                    headers["Nats-Batch-Commit"] = "1"
                else:
                    reply = ""
            if reply:
                future: asyncio.Future[dict[str, Any]] = loop.create_future()
                self._acks[position] = future
                futures.append((position, future))
            if tracing.enabled():  # the event's own trace goes on with it
                traceparent = tracing.published(envelope.type, event.meta.get(TRACEPARENT))
                if traceparent is not None:
                    headers[TRACEPARENT] = traceparent
            messages.append(Outgoing(
                event_subject(self.settings, self.service, envelope.type,
                              envelope.partition_key),
                encode(envelope), reply, headers))
        # The round in one write to the client's buffer, in order, the bytes each publish
        # would have buffered (``shared.bus.publishing``). No ``flush()`` (a PING and its PONG
        # every batch, some 4 % of a busy API + relay process): the client's flusher sends
        # what was published as soon as this task waits, and the acknowledgements awaited are
        # the proof that the server has every message.
        await publish_each(nc, messages)
        return futures

    async def _settle_rounds(self) -> None:
        """Wait for each round's acknowledgements, in the order published, and move the
        position past them; a failed round voids the rest of the flight (``_epoch``)."""
        while True:
            while not self._flight:
                self._published.clear()
                await self._published.wait()
            round_ = self._flight[0]
            try:
                if round_.epoch == self._epoch:
                    await self._settle(round_)
            finally:
                self._flight.popleft()
                self._forget(round_)
                self._settled.set()

    async def _settle(self, round_: _Round) -> None:
        acked, acked_seq = self.position, self._position_seq
        try:
            # One wait for the whole round (acks come back in order), not one timer each.
            if round_.futures:
                await asyncio.wait([future for _, future in round_.futures],
                                   timeout=ACK_TIMEOUT_S)
            for position, future in round_.futures:
                if not future.done():
                    raise TimeoutError(f"no ack for {self.service}:{position} within "
                                       f"{ACK_TIMEOUT_S:.0f} s")
                reply = future.result()
                if "error" in reply or "seq" not in reply:
                    raise RuntimeError(f"stream refused {self.service}:{position}: "
                                       f"{reply.get('error', 'no answer (no leader?)')}")
                if reply.get("duplicate") and (position > self._stream_last
                                               or position in self._missing):
                    await self._duplicate_of_ours(position, int(reply["seq"]))
                if round_.atomic and reply.get("count") != round_.size:
                    raise RuntimeError(f"stream stored {reply.get('count')} of a round of "
                                       f"{round_.size} ending at {self.service}:{position}")
                seq = int(reply["seq"])
                self._tail_seq = max(self._tail_seq, seq)
                if seq <= acked_seq:
                    await self._refuse_made_anew(position, seq)
                    # Stored (or, a duplicate, found) before the event ahead of it.
                    self._report_disorder(1, "ack", position=position, seq=seq,
                                          seq_before=acked_seq)
                elif time.monotonic() - self._looked_at > STREAM_LOOK_S:
                    await self._refuse_made_anew(position, seq)
                acked, acked_seq = position, seq
            if round_.held_last is not None:
                acked, acked_seq = round_.held_last  # on the stream already, at that sequence
        except (TimeoutError, RuntimeError) as exc:
            log.warning("relay.publish_failed", service=self.service, acked=acked,
                        error=str(exc))
            self.last_error = str(exc)[:300]
            ahead = [] if round_.atomic else [
                position for position, future in round_.futures
                if position > acked + 1 and future.done() and "seq" in future.result()
                and "error" not in future.result() and not future.result().get("duplicate")]
            if ahead:
                # The stream took later events of the round than one it refused (a leader
                # elected in between): they stand before it, whatever is done now.
                self._report_disorder(len(ahead), "refused", refused=acked + 1,
                                      stored_after=ahead[:10])
            self._epoch += 1  # the rounds behind it are void: published again from ``acked``
            self._wake.set()
            await self._save(acked, acked_seq)
            return
        await self._save(acked, acked_seq, now=False)
        self.last_error = None
        self._pause = RECONNECT_PAUSE_S[0]
        # Caught up with what it read: the next read starts a new wait (a full round means
        # more is waiting already, so the oldest unpublished event waits on).
        if round_.size < self.batch and len(self._flight) == 1:
            self.behind_since = None
        if self.on_published:
            self.on_published(round_.size)

    async def _stream_made_anew(self) -> datetime | None:
        """The stream's creation time when it is not the one this relay started on (found
        made anew: ``_made_anew`` is set for ``_start_position``); None when it is, or when
        it is not known now."""
        assert self.nc is not None
        self._looked_at = time.monotonic()
        try:
            made = (await self.nc.jetstream().stream_info(self.settings.stream_name)).created
        except (NatsError, TimeoutError):
            return None
        if self._stream_made is None or made is None or made == self._stream_made:
            return None
        self._stream_made, self._made_anew = made, True
        return made

    async def _refuse_made_anew(self, position: int, seq: int) -> None:
        """An acknowledgement's sequence is not above the one before it (or the last look
        is ``STREAM_LOOK_S`` old): is the stream a new one (deleted and made again while
        this relay published: ``nats stream rm``, ``sixstep ops apply``)? Then it holds none
        of what was published before, the round fails, and the start after it finds every
        event of the service missing from the new stream and publishes them
        (``_start_position``), not only the new ones. (On a stream that merely stored events
        out of order, the creation time is the same; one not known now is reported as out
        of order.)"""
        made = await self._stream_made_anew()
        if made is None:
            return
        log.error("relay.stream_made_anew", service=self.service, position=position, seq=seq,
                  made_at=made.isoformat())
        raise RuntimeError(f"the stream was made anew at {made.isoformat()} (its message "
                           f"{seq} is {self.service}:{position}): every event of the "
                           "service goes onto it again")

    async def _duplicate_of_ours(self, position: int, seq: int) -> None:
        """The stream answered the publish of ``position`` as a duplicate of its message
        ``seq``, and the start had not found that position there: go on only if that message
        is the store's event (a relay racing this one published it). Else the stream dropped
        the event: for a message of someone else's (``_StreamNotOurs``), or for one it no
        longer holds (the round fails and goes again)."""
        assert self.nc is not None
        try:
            msg = await self.nc.jetstream().get_msg(self.settings.stream_name, seq)
        except NotFoundError:
            raise RuntimeError(
                f"the stream dropped {self.service}:{position} as a duplicate of its message "
                f"{seq}, which it no longer holds: published again once its duplicate window "
                "has passed") from None
        await self._refuse_not_ours(self.pool, [self._read(msg.headers, seq, msg.data)])

    def _forget(self, round_: _Round) -> None:
        """Stop waiting for a round's acknowledgements (not for those of the same positions
        published again since)."""
        for position, future in round_.futures:
            if self._acks.get(position) is future:
                del self._acks[position]

    def _forget_flight(self) -> None:
        for round_ in self._flight:
            self._forget(round_)
        self._flight.clear()

    def unpublished_age(self) -> float:
        """Seconds the oldest event not yet on the stream has waited (0 when caught up)."""
        since = self.behind_since
        return max(0.0, time.time() - since) if since is not None else 0.0

    async def measure(self) -> int:
        """Count the events stored and not yet on the stream (``self.unpublished``). A standby
        replica counts from the leader's saved position."""
        last = await self.pool.fetchval(
            f'SELECT max(notification_id) FROM "{self.schema}"."{self.table}"') or 0
        position = self.position
        if not self.leading:
            with contextlib.suppress(asyncpg.UndefinedTableError):
                position = await self.pool.fetchval(
                    f'SELECT position FROM "{self.schema}".outbox_position WHERE stream = $1',
                    self.settings.stream_name) or 0
        self.unpublished = max(0, int(last) - int(position))
        if self.leading and self.nc is None and self.unpublished and self.behind_since is None:
            # Between two connections of its own nothing is published: what was stored since
            # the last one closed waits from now on (caught up when it closed, the relay had
            # no wait to time, and /ready said ready through a 7 s reconnect in CI).
            self.behind_since = time.time()
        return self.unpublished

    async def _on_ack(self, msg: Msg) -> None:
        position = int(msg.subject.rsplit(".", 1)[1])
        future = self._acks.get(position)
        if future is not None and not future.done():
            try:
                future.set_result(orjson.loads(msg.data or b"{}"))
            except ValueError:
                future.set_result({"error": {"description": "undecodable ack"}})

    async def _save(self, position: int, seq: int, *, now: bool = True) -> None:
        """Publishing goes on from ``position``; it is saved (the hint the next start reads)
        at once when ``now``, else at most every SAVE_EVERY_S: the next round's read need not
        wait for the write, and a start from an older hint re-publishes events the stream
        drops as duplicates (the start also takes the stream's last message, later still)."""
        if position <= self.position:
            return
        self.position, self._position_seq = position, seq
        if not now and time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        await self._write_position()

    async def _write_position(self) -> None:
        async with self._using:  # the publishing loop's reads and idle saves, the acks' saves
            self._saved_at = time.monotonic()
            self._saved = self.position
            await (self._conn or self.pool).execute(
                f'INSERT INTO "{self.schema}".outbox_position (stream, position, stream_seq,'
                " stream_created) VALUES ($1, $2, $3, $4) ON CONFLICT (stream) DO UPDATE SET"
                " stream_seq = CASE WHEN EXCLUDED.position >= outbox_position.position THEN"
                " EXCLUDED.stream_seq ELSE outbox_position.stream_seq END, position = GREATEST("
                "outbox_position.position, EXCLUDED.position), stream_created = COALESCE("
                "EXCLUDED.stream_created, outbox_position.stream_created), updated_at = now()",
                self.settings.stream_name, self.position, self._position_seq or None,
                self._position_stream)
