"""Replaying the log: a selection of the stream, in stream order, in bounded batches.

A :class:`Replay` reads through an ephemeral pull consumer of its own (no acks, in-memory
consumer state, removed by the server if the reader goes away) that starts at the first event,
at a stream sequence, or at a moment. Service and event type select subjects on the server;
a case selects its partition subject on the server and the case itself on the client; centers
and moments are checked on the client (with a cheap byte test before decoding). Every event is
decoded and upcast to its current contract version with ``REGISTRY.current``.

Several subject filters cost the server about ten times more per message than one (measured
with nats-server 2.15: some 21 us against 2 us): a selection of several subjects is read
through one filter covering them all when that delivers at most ``COVER_AT_MOST`` times as
many messages, and the others are dropped on the client by their subject, undecoded. Else a
few filter subjects (``SPLIT_AT_MOST``) are read through one consumer each, merged in stream
order by the reader: the same batches at a third of the server's CPU.

The end is fixed when the replay starts (the stream's last sequence then), so a replay of a
live log finishes. The messages are read in whole batches (``batch_size`` messages scanned,
however the server's replies arrive) by ``shared.analytics.reading``: in this process, or
(``reader="process"``, a long rebuild's) in a child process while this one decodes. A few
batches at most are held at a time: memory does not grow with the length of history.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import orjson
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from shared.analytics.reading import (
    LogReader,
    MergedReader,
    ReaderProcess,
    ReaderSpec,
    SubjectFilter,
    open_reader,
    replay_consumer_config,
    subject_matches,
)
from shared.bus.jetstream import connect, not_its_subject, partition_of
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import decode_envelope
from shared.runtime.cpus import usable_cpus
from shared.settings import Settings, without_password

Clock = Literal["recorded", "occurred"]
Reading = Literal["inline", "process", "auto"]

#: ``reader="auto"`` reads in a child process from this many messages on: it takes some 9 us a
#: message off this process (nats-py's reading), and starting one costs some 0.2 s of CPU and
#: 0.25 s before its first batch (it imports nats and ``shared.bus`` alone: 0.7 s of CPU and
#: 100,000 messages while it imported the settings, the contracts and structlog).
PROCESS_AT_LEAST = 30_000

__all__ = ["SubjectFilter", "subject_matches"]  # their home is shared.analytics.reading

#: A replay "since" a moment starts this much earlier on the stream's own clock, so that a
#: server clock a little behind the service's does not lose events; the rest is filtered.
CLOCK_SKEW = timedelta(minutes=5)


#: A selection of this many filter subjects or fewer (and not read through one covering
#: filter) is read through one consumer per filter subject, merged in stream order by the
#: reader (``shared.analytics.reading.MergedReader``): nats-server matches every message of
#: the stream against all the filters of a consumer of several, at some 4 us of its CPU a
#: message of the stream for three; three consumers of one each cost it 0.7-1.5 us (the
#: three event types of ``feedback.people`` on a 100,000-event log, 2026-12-04).
SPLIT_AT_MOST = 8

#: Read several filter subjects through one covering filter when it delivers at most this
#: many times as many messages (a dropped message costs the client some 5 us, one more filter
#: subject the server some 20 us per message it delivers).
COVER_AT_MOST = 3.0


class NoSuchStream(LookupError):
    pass


def covering(subjects: Sequence[str]) -> str:
    """One filter taking in every one of ``subjects``: ``p.intake.CaseOpened.*`` and
    ``p.feedback.RatingGiven.*`` give ``p.>`` (trailing wildcards become one ``>``: the
    server reads ``p.>``, the stream's own subjects, as no filter at all, and ``p.*.*.*``
    at twice the cost)."""
    split = [s.split(".") for s in subjects]
    if len({len(t) for t in split}) == 1 and not any(">" in t for t in split):
        tokens = [t[0] if len(set(t)) == 1 else "*" for t in zip(*split, strict=True)]
        if tokens[-1] != "*":
            return ".".join(tokens)
        while tokens and tokens[-1] == "*":
            tokens.pop()
        return ".".join([*tokens, ">"])
    prefix: list[str] = []
    for tokens in zip(*split, strict=False):
        if len(set(tokens)) != 1 or tokens[0] in ("*", ">"):
            break
        prefix.append(tokens[0])
    return ".".join([*prefix, ">"])


@dataclass(frozen=True)
class Selection:
    """Which events to replay. Empty fields select everything.

    ``since`` / ``until`` (inclusive) apply to ``recorded_at`` (when the service stored the
    event) or, with ``clock="occurred"``, to ``occurred_at`` (when the counter says it
    happened). ``subjects`` are raw subject filters (a read model's); the other fields narrow
    them further.
    """

    services: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    centers: tuple[str, ...] = ()
    cases: tuple[UUID, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    clock: Clock = "recorded"
    subjects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("since/until need a time zone (the center's, or UTC)")

    def filter_subjects(self, settings: Settings) -> list[str]:
        """Subject filters for the server: origin service, event type, case partition."""
        parts = sorted({f"p{partition_of(c, settings.partitions)}" for c in self.cases}) or ["*"]
        if self.subjects:
            out: list[str] = []
            for subject in self.subjects:
                tokens = subject.split(".")
                if len(tokens) == 4 and tokens[3] == "*":
                    out += [".".join([*tokens[:3], p]) for p in parts]
                else:
                    out.append(subject)
            return list(dict.fromkeys(out))
        pairs: list[tuple[str, str]] = []
        if self.types:
            for type_name in self.types:
                service = REGISTRY.get(type_name).service if type_name in REGISTRY else "*"
                if service == "*":
                    pairs += [(s, type_name) for s in self.services or ("*",)]
                elif not self.services or service in self.services:
                    pairs.append((service, type_name))
            if not pairs:
                raise ValueError(f"none of the event types {', '.join(self.types)} is emitted "
                                 f"by {', '.join(self.services)}")
        else:
            pairs = [(s, "*") for s in self.services or ("*",)]
        prefix = settings.subject_prefix
        return list(dict.fromkeys(f"{prefix}.{s}.{t}.{p}" for s, t in pairs for p in parts))

    def matches(self, e: Envelope) -> bool:
        if self.centers and e.center_id not in self.centers:
            return False
        if self.cases and e.case_id not in self.cases:
            return False
        if self.services and e.service not in self.services:
            return False
        if self.types and e.type not in self.types:
            return False
        moment = e.recorded_at if self.clock == "recorded" else e.occurred_at
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment <= self.until

    def prefilter(self, data: bytes) -> bool:
        """False when the raw message certainly does not match (saves decoding it)."""
        if self.centers and not any(c.encode() in data for c in self.centers):
            return False
        return not self.cases or any(str(c).encode() in data for c in self.cases)

    def fingerprint(self) -> str:
        """Stable text naming this selection, for checkpoints."""
        spec = {
            "services": sorted(self.services), "types": sorted(self.types),
            "centers": sorted(self.centers), "cases": sorted(map(str, self.cases)),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "clock": self.clock, "subjects": sorted(self.subjects),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        bits = [f"{name}={','.join(map(str, value))}" for name, value in (
            ("service", self.services), ("type", self.types), ("center", self.centers),
            ("case", self.cases), ("subject", self.subjects)) if value]
        if self.since:
            bits.append(f"{self.clock}>={self.since.isoformat()}")
        if self.until:
            bits.append(f"{self.clock}<={self.until.isoformat()}")
        return " ".join(bits) or "everything"


def decode(data: bytes) -> tuple[Envelope, int]:
    """A message as its current contract version, and the version it was stored under."""
    stored = decode_envelope(data)
    return REGISTRY.current(stored), stored.version


#: What decoding or converting one event can raise; anything else is a bug and stops the run.
CONVERSION_ERRORS = (ValueError, LookupError, ArithmeticError, TypeError)


@dataclass(frozen=True)
class Unreadable:
    """An event a reader could not convert: where it is on the stream, the event id it
    carries (when that much could be read) and why. Readers report these and go on."""

    seq: int
    event_id: str | None
    reason: str

    @classmethod
    def of(cls, seq: int, data: bytes | None, exc: BaseException,
           event_id: str | None = None) -> Unreadable:
        if event_id is None and data is not None:
            try:
                found = orjson.loads(data).get("event_id")
                event_id = found if isinstance(found, str) else None
            except (ValueError, AttributeError):
                event_id = None
        return cls(seq, event_id, f"{type(exc).__name__}: {str(exc)[:300]}")

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "event_id": self.event_id, "reason": self.reason}


#: How many unreadable events a run names (it counts them all).
UNREADABLE_LISTED = 1000


@dataclass
class Batch:
    """One fetched batch: the matching events (upcast) and the stream range it covered."""

    events: list[Envelope] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    stored_versions: list[int] = field(default_factory=list)
    first_seq: int = 0
    last_seq: int = 0
    scanned: int = 0
    undecodable: list[Unreadable] = field(default_factory=list)
    #: The subject each event (``subjects``) and each undecodable one (``undecodable_subjects``)
    #: came on: several read models rebuilt from one replay take their own share by it.
    subjects: list[str] = field(default_factory=list)
    undecodable_subjects: list[str] = field(default_factory=list)


class Replay:
    """``async with Replay(settings, selection) as r: async for batch in r: ...``

    ``total`` is the number of messages the server will deliver (those matching the subject
    filters), known on entering; ``last_seq`` the last stream sequence handed out, which is
    where a rerun resumes (``from_seq=last_seq + 1``). Setting ``stop`` ends the iteration
    after the current batch, with ``stopped`` true.

    ``reader``: where the messages are read (``shared.analytics.reading``): ``"inline"`` in
    this process, ``"process"`` in a child process (this one decodes; the batches are the
    same), ``"auto"`` in a child process when at least ``PROCESS_AT_LEAST`` messages are to
    be read and the machine has a second core.
    """

    def __init__(self, settings: Settings, selection: Selection | None = None, *,
                 from_seq: int | None = None, batch_size: int = 1000,
                 max_rate: float | None = None, stop: asyncio.Event | None = None,
                 nc: NATS | None = None, reader: Reading = "inline") -> None:
        self.settings = settings
        self.selection = selection or Selection()
        self.from_seq = from_seq
        self.batch_size = batch_size
        self.max_rate = max_rate
        self.stop = stop
        self.reader = reader
        self._nc = nc
        self._own_nc = nc is None
        self._js: JetStreamContext | None = None
        #: The replay's consumers, while this process must delete them (a child reader's).
        self._consumers: list[str] = []
        self._source: LogReader | MergedReader | ReaderProcess | None = None
        self._filters: list[str] = []
        self._keep: tuple[str, ...] | None = None
        self.subjects: list[str] = []
        self.first_seq = 0
        self.upto = 0
        self.total = 0
        self.scanned = 0
        self.matched = 0
        self.undecodable = 0
        self.unreadable: list[Unreadable] = []  # the first UNREADABLE_LISTED of them
        self.last_seq = (from_seq - 1) if from_seq else 0
        self.stopped = False
        self.restarts = 0
        #: Whether the messages are read in a child process (known on entering).
        self.in_child = False

    async def __aenter__(self) -> Replay:
        if self._nc is None:
            self._nc = await connect(self.settings, "sixstep-replay")
        self._js = self._nc.jetstream()
        try:
            info = await self._js.stream_info(self.settings.stream_name)
        except NotFoundError:
            await self.close()
            raise NoSuchStream(f"no stream {self.settings.stream_name!r} at "
                               f"{without_password(self.settings.nats_url)}") from None
        self.first_seq = info.state.first_seq
        self.upto = info.state.last_seq
        self.subjects = self.selection.filter_subjects(self.settings)
        if info.state.messages == 0 or (self.from_seq or 0) > self.upto:
            return self
        self._filters = self.subjects
        if len(self.subjects) > 1:
            await self._choose_filters()
        try:
            spec = await self._spec()
            self.in_child = self.reader == "process" or (
                self.reader == "auto" and self.total >= PROCESS_AT_LEAST
                and usable_cpus() >= 2)
            if self.in_child:
                self._source = ReaderProcess(spec)
                await self._source.start()
            else:
                self._source = open_reader(self._nc, spec)
                self._consumers = []  # the reader deletes them, or those it restarted with
                await self._source.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def _spec(self) -> ReaderSpec:
        """The replay's consumer, or (several filter subjects, at most ``SPLIT_AT_MOST``) one
        consumer per filter subject with messages to read, merged by the reader; sets
        ``total``."""
        def spec(consumer: str, filters: Sequence[str], keep: tuple[str, ...] | None = None,
                 parts: tuple[ReaderSpec, ...] = ()) -> ReaderSpec:
            return ReaderSpec(self.settings.nats_url, self.settings.stream_name, consumer,
                              tuple(filters), keep, self.batch_size, self.upto, self.last_seq,
                              parts, tuple(self.settings.nats_credentials().items()))

        assert self._js is not None
        if not 1 < len(self._filters) <= SPLIT_AT_MOST:
            info = await self._add_consumer(self.from_seq, self._filters)
            self._consumers = [info.name]
            self.total = info.num_pending
            return spec(info.name, self._filters, self._keep)
        infos = [await self._add_consumer(self.from_seq, [f]) for f in self._filters]
        self._consumers = [info.name for info in infos]
        self.total = sum(info.num_pending for info in infos)
        parts = [(info, f) for info, f in zip(infos, self._filters, strict=True)
                 if info.num_pending] or [(infos[0], self._filters[0])]
        for info in infos:  # a filter with nothing to read needs no consumer
            if all(info is not kept for kept, _ in parts):
                self._consumers.remove(info.name)
                with contextlib.suppress(Exception):
                    await self._js.delete_consumer(self.settings.stream_name, info.name)
        if len(parts) == 1:
            (info, only), = parts
            return spec(info.name, [only])
        return spec("", self._filters, None, tuple(spec(info.name, [f]) for info, f in parts))

    async def _choose_filters(self) -> None:
        """One covering filter instead of several, when it delivers few more messages."""
        assert self._js is not None
        cover = covering(self.subjects)
        counts = []
        for filters in (self.subjects, [cover]):
            info = await self._add_consumer(self.from_seq, filters)
            counts.append(info.num_pending)
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self.settings.stream_name, info.name)
        exact, covered = counts
        if covered <= COVER_AT_MOST * exact:
            self._filters = [cover]
            self._keep = tuple(self.subjects)

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            await source.close()
        if self._js is not None:
            # A child reader deletes them when it ends normally; not when it was stopped.
            for consumer in self._consumers:
                with contextlib.suppress(Exception):
                    await self._js.delete_consumer(self.settings.stream_name, consumer)
        self._consumers = []
        if self._own_nc and self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    async def _add_consumer(self, from_seq: int | None, subjects: list[str]) -> ConsumerInfo:
        assert self._js is not None
        if from_seq:
            policy = dict(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_seq)
        elif self.selection.since is not None:
            policy = dict(deliver_policy=DeliverPolicy.BY_START_TIME,
                          opt_start_time=self.selection.since - CLOCK_SKEW)
        else:
            policy = dict(deliver_policy=DeliverPolicy.ALL)
        return await self._js.add_consumer(self.settings.stream_name,
                                           replay_consumer_config(subjects, **policy))

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        if self._source is None:
            return
        started = time.monotonic()
        # A selection of subjects only (a rebuild's) needs no check on the client.
        sel = self.selection
        narrow = bool(sel.centers or sel.cases or sel.services or sel.types
                      or sel.since is not None or sel.until is not None)
        pulled_batches = self._source.batches()
        try:
            while True:
                if self.stop is not None and self.stop.is_set():
                    self.stopped = True
                    return
                pulled = await anext(pulled_batches, None)
                if pulled is None:
                    return
                self.restarts = pulled.restarts
                batch = Batch(first_seq=self.last_seq + 1, scanned=pulled.scanned)
                for seq, subject, data in zip(pulled.seqs, pulled.subjects, pulled.data,
                                              strict=True):
                    if narrow and not sel.prefilter(data):
                        continue
                    try:
                        envelope, stored_version = decode(data)
                        # another service's event under a service's own subject (a forgery
                        # its NATS user could publish): unreadable, never applied
                        forged = not_its_subject(subject, envelope.service, envelope.type)
                        if forged is not None:
                            raise ValueError(forged)
                    except CONVERSION_ERRORS as exc:
                        batch.undecodable.append(Unreadable.of(seq, data, exc))
                        batch.undecodable_subjects.append(subject)
                        continue
                    if not narrow or sel.matches(envelope):
                        batch.events.append(envelope)
                        batch.seqs.append(seq)
                        batch.stored_versions.append(stored_version)
                        batch.subjects.append(subject)
                self.last_seq = batch.last_seq = pulled.last_seq
                self.scanned += batch.scanned
                self.matched += len(batch.events)
                self.undecodable += len(batch.undecodable)
                room = UNREADABLE_LISTED - len(self.unreadable)
                if room > 0:
                    self.unreadable += batch.undecodable[:room]
                if batch.scanned:
                    yield batch
                if pulled.done:
                    return
                if self.max_rate:
                    ahead = self.scanned / self.max_rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:
            await pulled_batches.aclose()
