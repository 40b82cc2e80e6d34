"""The one replayable log on NATS JetStream: connection, stream definition, subjects."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import (
    ConsumerInfo,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError, ServiceUnavailableError

from shared.bus.connection import connect_to
from shared.kernel.privacy import redact
from shared.settings import Settings

log = structlog.get_logger("sixstep.bus")

DLQ_TOKEN = "dlq"


def partition_of(key: UUID, partitions: int) -> int:
    """Stable partition of a case id (crc32, so every language computes the same)."""
    return zlib.crc32(key.bytes) % partitions


#: How far back each page of :func:`every_consumer` starts: consumers deleted between two
#: pages (ephemeral readers end all the time: ``sixstep dlq``, replays) shift the ones after
#: them forward, and a page from the plain offset would skip as many.
PAGE_OVERLAP = 64


async def every_consumer(js: JetStreamContext, stream: str) -> list[ConsumerInfo]:
    """Every consumer of ``stream``, page after page: the server lists 256 at a time (by
    name), and a consumer past the first page (a city's split workers, old splits' durables)
    was taken for one that is not there. Each page starts ``PAGE_OVERLAP`` back, so up to as
    many deletions between two pages skip nobody."""
    infos: list[ConsumerInfo] = []
    seen: set[str] = set()
    while True:
        offset = max(0, len(infos) - PAGE_OVERLAP)
        page = await js.consumers_info(stream, offset=offset or None)
        new = [info for info in page if info.name not in seen]
        if not new:  # the last page was the last (a server that ignored the offset, too)
            return infos
        infos += new
        seen.update(info.name for info in new)


def event_subject(settings: Settings, service: str, event_type: str, key: UUID) -> str:
    """``<prefix>.<service>.<EventType>.p<NN>``: filter by origin, type, or partition."""
    partition = partition_of(key, settings.partitions)
    return f"{settings.subject_prefix}.{service}.{event_type}.p{partition}"


def not_its_subject(subject: str, service: str, event_type: str) -> str | None:
    """Why an event's envelope is not the one its log subject names (None when it is): the
    subject's service and type (``<prefix>.<service>.<EventType>.p<NN>``) are the ones NATS
    vouches for (each service's user publishes under its own only); the envelope's are the
    writer's to say. A service's user could put another service's event (feedback's
    ``sixstep.feedback.RectificationOpened.p3`` carrying intake's ``CaseResolved``) before a
    consumer that reads that subject, whose handler acts on the envelope's type (redteam128).
    Its partition token is not judged, but its service and type are whatever its form: a
    filter ``<service>.<type>.*`` takes ``...RectificationOpened.zz`` as well as ``.p3``. A
    subject of fewer than three tokens names neither and no consumer's filter takes it."""
    head = subject.find(".")
    if head > 0 and subject.startswith(f".{service}.{event_type}.", head):
        return None  # every event: 0.3 us (the split below took 0.7, of a decoding of 4-5)
    parts = subject.split(".")
    if len(parts) < 3 or (parts[1], parts[2]) == (service, event_type):
        return None
    # the writer's words both (any tokens under its own subjects, any envelope): redacted
    return redact(f"its envelope says {service}'s {event_type}, its subject {subject[:200]} "
                  f"{parts[1]}'s {parts[2]}: not the event the subject's writer may publish")


def consumer_service(consumer: str) -> str:
    """The service a consumer belongs to: its name's first part (``intake-cases-p0_1``:
    ``intake``), the one NATS user that may publish its dead letters (deploy/nats/nats.conf)."""
    return consumer.split("-", 1)[0]


def dead_letter_subject(settings: Settings, consumer: str) -> str:
    """Dead letters live in their own stream, so a replay of the log never meets them. The
    subject names the consumer's service, so that NATS lets that service's user alone write
    them (``dlq.<prefix>.<service>.>``): until December 2026 it was ``dlq.<prefix>.<consumer>``,
    which every service's user could publish for any consumer (``older_dead_letter_subject``:
    still read)."""
    return f"{DLQ_TOKEN}.{settings.subject_prefix}.{consumer_service(consumer)}.{consumer}"


def older_dead_letter_subject(settings: Settings, consumer: str) -> str:
    """Where a release before December 2026 put ``consumer``'s dead letters."""
    return f"{DLQ_TOKEN}.{settings.subject_prefix}.{consumer}"


def dead_letter_stream(settings: Settings) -> str:
    return f"{settings.stream_name}_DLQ"


#: The dead letter's header saying which event stream its sequence is of: the stream's
#: creation time (``shared.bus.stream_identity``; a stream made anew numbers from 1 again).
STREAM_CREATED = "Sixstep-Stream-Created"


async def publish_dead_letter(js: JetStreamContext, settings: Settings, consumer: str, *,
                              seq: int, subject: str, data: bytes, reason: str,
                              tries: int, stream_created: datetime | None = None) -> None:
    """Publish an event ``consumer`` gave up on, with the headers ``sixstep dlq`` reads;
    once per (consumer, stream, stream sequence), however often it is given up on.
    ``stream_created``: when the event stream the event was read from was made (asked of
    the server when not given; a stream not there leaves it unsaid). Without it in the
    message id, the letter of a stream made anew at a sequence the old one had dead-lettered
    within the duplicate window was dropped by the server as a repeat, never listed."""
    if stream_created is None:
        with contextlib.suppress(NatsError, TimeoutError):
            stream_created = (await js.stream_info(settings.stream_name)).created
    made = stream_created.isoformat() if stream_created is not None else ""
    headers = {
        "Nats-Msg-Id": f"dlq:{consumer}:{seq}" + (f"@{made}" if made else ""),
        "Sixstep-Consumer": consumer,
        "Sixstep-Reason": reason.replace("\n", " ")[:1000],
        "Sixstep-Subject": subject,
        "Sixstep-Stream-Seq": str(seq),
        "Sixstep-Delivered": str(tries),
    }
    if made:
        headers[STREAM_CREATED] = made
    await js.publish(dead_letter_subject(settings, consumer), data, headers=headers)


def stream_config(settings: Settings) -> StreamConfig:
    """The stream as code: every event of every service, file storage, kept by limits."""
    return StreamConfig(
        name=settings.stream_name,
        subjects=[f"{settings.subject_prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.stream_max_age_days * 86400.0,
        duplicate_window=float(settings.stream_duplicate_window_s),
        discard=DiscardPolicy.OLD,
        allow_direct=True,
        # A relay's round is one atomic batch (shared/eventstore/outbox.py): stored whole,
        # in order, or not at all (nats-server 2.12+; an older one ignores it).
        allow_atomic=True,
        description="sixstep: every event of every service, the one replayable log",
    )


async def connect(settings: Settings, name: str, *, reconnect: bool = True,
                  headers: bool = True, **options: Any) -> NATS:
    """A connection to the bus (nats-py's client, reading headers at half its cost).

    ``headers=False``: a connection whose messages keep only an inline status as headers
    (``StatusOnlyClient``), for a reader of the log's bytes that reads none of them.

    ``reconnect=False``: a connection that closes for good when its socket breaks, instead of
    reconnecting and then sending what it still held in its buffer. The bytes a broken socket
    delivered are a prefix of what was published on it; a reconnecting client can deliver a
    later message of a burst after an earlier one lost in the socket (the relay's own
    connection, ``shared.eventstore.outbox``). ``options`` go to nats-py's ``connect``
    (callbacks). It signs in as the settings' NATS user (``Settings.nats_credentials``)."""
    return await connect_to(settings.nats_url, name, reconnect=reconnect, headers=headers,
                            **settings.nats_credentials(), **options)


def dead_letter_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=dead_letter_stream(settings),
        subjects=[f"{DLQ_TOKEN}.{settings.subject_prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=float(settings.stream_duplicate_window_s),
        description="sixstep: events a consumer could not apply, with the reason",
    )


async def ensure_streams(js: JetStreamContext, settings: Settings, *,
                         align: bool = True) -> dict[str, str]:
    """The event log and the dead-letter stream, as code; idempotent, safe from every replica.

    Returns what happened to each stream: ``created``, ``updated: <fields>`` or ``unchanged``
    (``differs: <fields>`` when ``align`` is false: a service's start, see ``ensure_stream``).
    A server older than ``OLDEST_SERVER`` is refused (``ServerTooOld``).
    """
    check_server(js)
    return {config.name or "": await ensure_stream(js, config, align=align)
            for config in (stream_config(settings), dead_letter_stream_config(settings))}


#: What JetStream answers while it cannot serve yet or at all (a cluster with no meta leader:
#: just started, or a quorum of its nodes down; a server without JetStream): waited for by
#: ``ensure_streams_when_ready``, and a command's "did not answer" (exit 2) once the wait is
#: over, never a traceback (exit 1 is ``sixstep ops status``'s "a re-planning is pending").
JETSTREAM_NOT_READY = (NatsTimeoutError, NoRespondersError, ServiceUnavailableError)

#: How long ``ensure_streams_when_ready`` waits for JetStream by default (seconds): a service's
#: start, ``ops apply`` and ``make run`` (``apply_streams``).
JETSTREAM_WAIT_S = 30.0


async def ensure_streams_when_ready(js: JetStreamContext, settings: Settings, *,
                                    within_s: float | None = None, align: bool = True
                                    ) -> dict[str, str]:
    """``ensure_streams``, waiting (bounded) while JetStream cannot answer yet: a cluster
    that has just started has no meta leader for a few seconds, and a service started with
    it must not exit for that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (JETSTREAM_WAIT_S if within_s is None else within_s)
    delay = 0.25
    while True:
        try:
            return await ensure_streams(js, settings, align=align)
        except JETSTREAM_NOT_READY as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning("bus.jetstream_not_ready", error=type(exc).__name__,
                        retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def apply_streams(settings: Settings, client: str) -> dict[str, str]:
    """``ensure_streams_when_ready`` over a connection of its own, named ``client``, closed
    after: what ``sixstep ops apply`` does (the compose file's and the Kubernetes Job's step
    before the services), and ``make run`` before its services. One try at the connection
    (no reconnecting: a one-shot whose server is gone says so), JetStream waited for while
    a cluster just started has no meta leader."""
    from shared.bus.revocations import bucket_stream, ensure_bucket  # it imports nothing here

    nc = await connect(settings, client, reconnect=False)
    try:
        done = await ensure_streams_when_ready(nc.jetstream(), settings)
        # and the signed-out tokens bucket: a service makes it when missing, never aligns it
        # (one made the old way is made again: docs/security.md)
        done[bucket_stream(settings)] = await ensure_bucket(nc.jetstream(), settings)
        return done
    finally:
        await nc.close()


def server_at_least(js: JetStreamContext, version: tuple[int, int]) -> bool:
    """Whether the server ``js`` talks to is at least ``version`` (major, minor); True when
    the client cannot tell."""
    try:
        server = js._nc.connected_server_version
        return (server.major, server.minor) >= version
    except (AttributeError, TypeError, ValueError):
        return True


#: The oldest nats-server whose durables keep what sixstep makes them with: their subject
#: filters (``filter_subjects``: a consumer reads only its event types, a split worker only its
#: partitions) and their metadata (``sixstep_refused``, ``sixstep_retrying``: what ``sixstep ops
#: status`` says of a consumer that applies nothing). Both are new in 2.10; an older server
#: (Debian's 2.9.10) drops them without an error: every durable reads every event of the
#: stream, and a consumer retrying for ever looks merely behind. 2.10-2.13 run, degraded (no
#: atomic rounds before 2.12, no reset of a durable before 2.14); deploy/README asks 2.14+.
OLDEST_SERVER = (2, 10)


class ServerTooOld(RuntimeError):
    """The nats-server is older than ``OLDEST_SERVER``: refused at start and by ``sixstep
    ops``, rather than run with every durable's filters and metadata dropped."""


def server_version(js: JetStreamContext) -> str:
    """The version the server said it runs, as it said it (``?`` when unknown)."""
    try:
        return str(js._nc._server_info.get("version") or "?")
    except AttributeError:
        return "?"


def check_server(js: JetStreamContext) -> None:
    """Raise ``ServerTooOld`` when the server ``js`` talks to drops a durable's filters and
    metadata (``OLDEST_SERVER``)."""
    if not server_at_least(js, OLDEST_SERVER):
        raise ServerTooOld(
            f"nats-server {server_version(js)} is older than "
            f"{'.'.join(map(str, OLDEST_SERVER))}: it drops a durable consumer's subject "
            "filters and metadata without an error (every consumer would read every event, "
            "and `sixstep ops status` could not say which one retries for ever); run "
            "nats-server 2.14 or newer (deploy/README, 'The parts and what they need')")


async def ensure_stream(js: JetStreamContext, config: StreamConfig, *, align: bool = True) -> str:
    """Create a stream, or bring its mutable settings in line; says which it did.

    Without ``align`` (a service's start) a stream that differs is left as it is, with a
    warning: the shipped NATS lets a service's user create the streams but not update one
    (an update could make its own publish land under another service's subject, or roll the
    whole log up: docs/security.md), so `sixstep ops apply` aligns them."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return "created"
    current = info.config
    # A server before 2.12 drops allow_atomic: asking again at every start would change nothing.
    knows_atomic = server_at_least(js, (2, 12))
    changed = [name for name, differs in (
        ("num_replicas", current.num_replicas != config.num_replicas),
        ("max_age", (current.max_age or 0) != (config.max_age or 0)),
        ("duplicate_window", current.duplicate_window != config.duplicate_window),
        ("subjects", set(current.subjects or []) != set(config.subjects or [])),
        ("allow_atomic",
         knows_atomic and bool(current.allow_atomic) != bool(config.allow_atomic)),
    ) if differs]
    if not changed:
        return "unchanged"
    if not align:
        log.warning("bus.stream_differs", stream=config.name, fields=changed,
                    fix="sixstep ops apply")
        return f"differs: {', '.join(changed)}"
    await js.update_stream(config)
    return f"updated: {', '.join(changed)}"
