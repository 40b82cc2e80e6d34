"""The outbox relay: every stored event, in order, onto the stream, exactly once.

The application's notification log is the outbox. The relay is woken by the NOTIFY the
event store sends on each commit, reads what is new in large batches, and publishes them
pipelined on one connection (so the stream receives them in log order) with
``Nats-Msg-Id = <service>:<position>``: a re-publish after a crash is dropped by the server.
The next round is published only once the last one is acknowledged (``Relay._room``): a round
published behind one the stream then refuses (no leader, mid-election) can be stored when
the new leader is up, before the refused round is published again, and the stream would hold
the service's events out of order. A round that fails sends the relay back to the last
acknowledged event.
Its position moves only past events the server has acknowledged, in order, and is kept in
PostgreSQL; at start it is also checked against the stream itself, so a crash after
publishing but before saving the position never republishes outside the duplicate window.
One relay per service publishes at a time (a PostgreSQL advisory lock elects it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from shared import tracing
from shared.bus.jetstream import event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.settings import Settings
from shared.tracing import TRACEPARENT

log = structlog.get_logger("sixstep.outbox")

#: How often, at most, a relay busy publishing saves its position (a hint: see Relay._save).
SAVE_EVERY_S = 0.25
#: How long a round's acknowledgements may take before it counts as failed.
ACK_TIMEOUT_S = 10.0


@dataclass
class _Round:
    """One round's messages, published and waiting for their acknowledgements."""

    epoch: int  # the relay's epoch when it was read: a failure before it makes it void
    size: int
    futures: list[tuple[int, asyncio.Future[dict[str, Any]]]]


def to_envelope(service: str, position: int, event: Any) -> Envelope:
    """A stored domain event as it crosses the bus: envelope + payload of its contract."""
    contract = REGISTRY.get(type(event).__name__)
    fields = {name: getattr(event, name) for name in contract.payload.model_fields
              if hasattr(event, name)}
    payload = contract.payload.model_validate(fields).model_dump(mode="json")
    return Envelope(**_envelope_fields(service, position, event, contract.type,
                                       contract.version, payload))


def as_stored(service: str, position: int, event: Any) -> Envelope:
    """A stored event its contract refuses (one recorded before a bound existed, e.g. an
    ``occurred_at`` in the year 1), as it was stored: unvalidated. The relay still publishes
    it, in its place, so the stream holds every stored event and nothing after it waits;
    readers report it as unreadable (consumers dead-letter it, export and replay skip it)."""
    contract = REGISTRY.get(type(event).__name__)
    fields = {name: getattr(event, name) for name in contract.payload.model_fields
              if hasattr(event, name)}
    return Envelope.model_construct(**_envelope_fields(
        service, position, event, contract.type, contract.version,
        to_jsonable_python(fields)))


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
    return orjson.dumps(envelope.model_dump(mode="json"))


class Relay:
    """Publishes a service's outbox to the stream; ``run()`` until cancelled."""

    def __init__(self, settings: Settings, service: str, app: Application, pool: asyncpg.Pool,
                 nc: NATS, *, on_published: Callable[[int], None] | None = None) -> None:
        recorder: Any = app.recorder
        self.settings = settings
        self.service = service
        self.app = app
        self.pool = pool
        self.nc = nc
        self.schema = recorder.datastore.schema
        self.table = recorder.events_table_name
        self.channel = recorder.channel_name
        self.batch = settings.relay_batch
        self.position = 0
        self.leading = False  # holds the relay lock (a standby replica does not publish)
        self.on_published = on_published
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

    async def ensure_table(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{self.schema}".outbox_position ('
            " stream text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz"
            " NOT NULL DEFAULT now())")

    async def run(self) -> None:
        listener: asyncpg.Connection = await self.pool.acquire()
        sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        try:
            await self._lead(listener)
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
            self.position = await self._start_position(listener)
            self._sent = self.position
            log.info("relay.started", service=self.service, position=self.position)
            # Two loops: one reads and publishes rounds, the other waits for their
            # acknowledgements; either failing stops both (and the relay: supervised).
            loops = (asyncio.ensure_future(self._publish_rounds(lost)),
                     asyncio.ensure_future(self._settle_rounds()))
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.wait(loops)
        finally:
            self.leading = False
            self.behind_since = None  # the next leader (maybe this one again) measures anew
            self._conn = None
            self._forget_flight()
            await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await listener.remove_listener(self.channel, self._notified)
            await self.pool.release(listener)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        """Wait until this replica holds the relay lock (held for the connection's life)."""
        key = f"sixstep-relay:{self.schema}"
        waited = False
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            if not waited:
                log.info("relay.standby", service=self.service)
                waited = True
            await asyncio.sleep(2.0)

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _start_position(self, conn: asyncpg.Connection) -> int:
        stored = await conn.fetchval(
            f'SELECT position FROM "{self.schema}".outbox_position WHERE stream = $1',
            self.settings.stream_name) or 0
        on_stream = await self._last_on_stream()
        return max(int(stored), on_stream)

    async def _last_on_stream(self) -> int:
        js = self.nc.jetstream()
        subject = f"{self.settings.subject_prefix}.{self.service}.>"
        try:
            msg = await js.get_last_msg(self.settings.stream_name, subject)
        except NotFoundError:
            return 0
        msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        service, _, position = msg_id.rpartition(":")
        return int(position) if service == self.service and position.isdigit() else 0

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
                # A round failed: what it and the rounds behind it held is published again,
                # from the last acknowledged event, after a pause.
                epoch = self._epoch
                self._sent = self.position
                await asyncio.sleep(1.0)
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
                    await asyncio.wait_for(self._wake.wait(),
                                           timeout=SAVE_EVERY_S if behind else 5.0)
                if (not self._wake.is_set() and not self._flight
                        and self._saved < self.position):
                    # Idle: the saved position catches up, so that a standby's count, ops
                    # status and the relay-stall check do not see published events as
                    # waiting (they did, for good, after the last throttled save).
                    await self._write_position()

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
        with tracing.span(f"publish {self.service}", kind=tracing.SpanKind.PRODUCER,
                          attributes={"sixstep.batch.size": len(rows)}):
            futures = await self._publish(rows)
        self._sent = rows[-1]["notification_id"]
        self._flight.append(_Round(epoch, len(rows), futures))
        self._published.set()
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]
                       ) -> list[tuple[int, asyncio.Future[dict[str, Any]]]]:
        """Publish ``rows`` in order; their acknowledgements will resolve the futures."""
        loop = asyncio.get_running_loop()
        futures: list[tuple[int, asyncio.Future[dict[str, Any]]]] = []
        for row in rows:
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
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._acks[position] = future
            futures.append((position, future))
            headers = {"Nats-Msg-Id": f"{self.service}:{position}",
                       "Sixstep-Type": envelope.type}
            if tracing.enabled():  # the event's own trace goes on with it
                traceparent = tracing.published(envelope.type, event.meta.get(TRACEPARENT))
                if traceparent is not None:
                    headers[TRACEPARENT] = traceparent
            await self.nc.publish(
                event_subject(self.settings, self.service, envelope.type,
                              envelope.partition_key),
                encode(envelope), reply=f"{self._inbox}.{position}", headers=headers)
        # No ``flush()`` (a PING and its PONG every batch, some 4 % of a busy API + relay
        # process): the client's flusher sends what was published as soon as this task waits,
        # and the acknowledgements awaited are the proof that the server has every message.
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
        acked = self.position
        try:
            # One wait for the whole round (acks come back in order), not one timer each.
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
                acked = position
        except (TimeoutError, RuntimeError) as exc:
            log.warning("relay.publish_failed", service=self.service, acked=acked,
                        error=str(exc))
            self.last_error = str(exc)[:300]
            self._epoch += 1  # the rounds behind it are void: published again from ``acked``
            self._wake.set()
            await self._save(acked)
            return
        await self._save(acked, now=False)
        self.last_error = None
        # Caught up with what it read: the next read starts a new wait (a full round means
        # more is waiting already, so the oldest unpublished event waits on).
        if round_.size < self.batch and len(self._flight) == 1:
            self.behind_since = None
        if self.on_published:
            self.on_published(round_.size)

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
        return self.unpublished

    async def _on_ack(self, msg: Msg) -> None:
        position = int(msg.subject.rsplit(".", 1)[1])
        future = self._acks.get(position)
        if future is not None and not future.done():
            try:
                future.set_result(json.loads(msg.data or b"{}"))
            except ValueError:
                future.set_result({"error": {"description": "undecodable ack"}})

    async def _save(self, position: int, *, now: bool = True) -> None:
        """Publishing goes on from ``position``; it is saved (the hint the next start reads)
        at once when ``now``, else at most every SAVE_EVERY_S: the next round's read need not
        wait for the write, and a start from an older hint re-publishes events the stream
        drops as duplicates (the start also takes the stream's last message, later still)."""
        if position <= self.position:
            return
        self.position = position
        if not now and time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        await self._write_position()

    async def _write_position(self) -> None:
        async with self._using:  # the publishing loop's reads and idle saves, the acks' saves
            self._saved_at = time.monotonic()
            self._saved = self.position
            await (self._conn or self.pool).execute(
                f'INSERT INTO "{self.schema}".outbox_position (stream, position) VALUES '
                "($1, $2) ON CONFLICT (stream) DO UPDATE SET position = GREATEST("
                "outbox_position.position, EXCLUDED.position), updated_at = now()",
                self.settings.stream_name, self.position)
