"""Dead letters: what a consumer could not apply, how to list them, and how to replay them.

A consumer publishes an event it gave up on to the dead-letter stream (``<STREAM>_DLQ``,
subject ``dlq.<prefix>.<service>.<consumer>``, which the shipped NATS lets that service's
user alone publish) with the original bytes and headers that say why
(``Sixstep-Reason``), where it came from (``Sixstep-Subject``, ``Sixstep-Stream-Seq``) and
how often it was tried (``Sixstep-Delivered``).

Replay never puts the event back on the event stream: that would record it twice in the one
replayable log. Instead the service that owns the consumer applies the dead letter through
the consumer's own handler, in one PostgreSQL transaction together with a row in
``consumer_replays`` keyed by (consumer, original stream sequence, that stream's creation
time: ``Sixstep-Stream-Created``; a stream made anew numbers from 1 again, and its letter at
a sequence an old one had was taken for that one, reported as already applied, deleted and
never applied), and only then deletes it
from the dead-letter stream. A crash between the commit and the delete leaves the row, so
the next replay skips the effect and just deletes the letter: exactly once in effect, like
the live consumer.

The event is applied late when its case's later events went on without it (that is what
dead-lettering is for): the report lists those letters as ``late``. A view that depends on
the order of a case's events should then be rebuilt (``sixstep rebuild``) rather than trusted.

A letter is only a pointer: what is applied is the log's event at the letter's stream
sequence (``logged_event``), and a letter that says otherwise, or that is on another
service's subject, is refused, kept, and marked by ``sixstep dlq list``. Until December 2026
every service's NATS user could publish a dead letter for any consumer
(``dlq.<prefix>.<consumer>``) and a replay applied the letter's own bytes: a compromised
service forged another's event (intake's ``CaseResolved`` of another center) through an
operator's replay. A letter whose event the log no longer holds (its limits dropped it)
cannot be checked, and is refused as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from pydantic import ValidationError

from shared.bus.consumer import Handler
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import (
    DLQ_TOKEN,
    STREAM_CREATED,
    dead_letter_stream,
    dead_letter_subject,
    not_its_subject,
    older_dead_letter_subject,
)
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import decode_envelope
from shared.kernel.privacy import redact
from shared.settings import Settings

log = structlog.get_logger("sixstep.deadletters")

REPLAY_DDL = [
    "CREATE TABLE IF NOT EXISTS consumer_replays ("
    " consumer text NOT NULL, stream_seq bigint NOT NULL, dlq_seq bigint NOT NULL,"
    " replayed_at timestamptz NOT NULL DEFAULT now(), stream_created timestamptz)",
    # Which stream the sequence is of (added later; NULL: a replay recorded before, of an
    # unknown stream). Looked up first, as consumer_tracking's column: ALTER TABLE takes its
    # ACCESS EXCLUSIVE lock even when the column is there.
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
    " 'consumer_replays'::regclass AND attname = 'stream_created' AND NOT attisdropped)"
    " THEN ALTER TABLE consumer_replays ADD COLUMN stream_created timestamptz; END IF; END $$",
    # The key was (consumer, stream_seq) alone: a new stream's letter at an old sequence
    # could not be recorded.
    "DO $$ DECLARE k text; BEGIN SELECT conname INTO k FROM pg_constraint WHERE conrelid ="
    " 'consumer_replays'::regclass AND contype = 'p'; IF k IS NOT NULL THEN"
    " EXECUTE format('ALTER TABLE consumer_replays DROP CONSTRAINT %I', k); END IF; END $$",
    "CREATE UNIQUE INDEX IF NOT EXISTS consumer_replays_once ON consumer_replays"
    " (consumer, stream_seq, stream_created) NULLS NOT DISTINCT",
]


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter stream."""

    seq: int
    consumer: str
    reason: str
    subject: str
    stream_seq: int
    delivered: int
    data: bytes
    dead_at: datetime | None = None
    #: When the event stream it came from was made (``STREAM_CREATED``): which stream
    #: ``stream_seq`` is of. None: not said (a letter of an older version).
    stream_created: datetime | None = None
    #: The subject it was published on (``dead_letter_subject``): whose user wrote it.
    written_on: str = ""

    def written_by_another(self, settings: Settings) -> str | None:
        """Why the letter's subject is not its consumer's (None when it is): published on
        another service's subject (``dlq.<prefix>.feedback.intake-cases``), which only that
        service's user (or ops) may publish on. An older release's subject is its consumer's
        too (the log check stands for it: any service could publish it then)."""
        if not self.written_on or self.written_on in (
                dead_letter_subject(settings, self.consumer),
                older_dead_letter_subject(settings, self.consumer)):
            return None
        # The subject is the writer's to choose (any tokens under its own): redacted, as the
        # letter's Sixstep-Subject is, since the reason goes to the log and the operator.
        return (f"it was published on {redact(self.written_on[:200])}, not on its consumer's "
                f"{dead_letter_subject(settings, self.consumer)}: another service's user wrote "
                "it")

    def same_event_stream(self, created: datetime | None,
                          seen_at: datetime | None = None) -> bool:
        """Whether its ``stream_seq`` may be of the stream made at ``created`` (said by a
        replay or a letter recorded at ``seen_at``): the same creation time; when one of the
        two does not say (a letter or a replay of an older version), unless it was recorded
        before the other's stream was made: of an older stream, then. Taken for this one,
        every replay recorded before the upgrade matched the letter of a stream made anew
        at its sequence: reported as already applied, deleted, never applied."""
        if created is not None and self.stream_created is not None:
            return created == self.stream_created
        if created is None and self.stream_created is not None:
            return seen_at is None or seen_at >= self.stream_created
        if created is not None:  # this letter says none: died before that stream was made?
            return self.dead_at is None or self.dead_at >= created
        return True

    def envelope(self) -> Envelope:
        """The event as its consumer would see it now (upcast to the current version)."""
        return REGISTRY.current(decode_envelope(self.data))

    def summary(self) -> dict[str, object]:
        """What an operator needs to decide, without the payload (no free text)."""
        out: dict[str, object] = {
            "seq": self.seq, "consumer": self.consumer, "stream_seq": self.stream_seq,
            "subject": self.subject, "delivered": self.delivered,
            "reason": redact(self.reason),
            "dead_at": self.dead_at.isoformat() if self.dead_at else None}
        try:
            raw = orjson.loads(self.data)
            out.update(type=raw.get("type"), event_id=raw.get("event_id"),
                       aggregate_id=raw.get("aggregate_id"),
                       correlation_id=raw.get("correlation_id"))
        except (orjson.JSONDecodeError, AttributeError):
            out.update(type=None, event_id=None, aggregate_id=None, correlation_id=None)
        return out


async def read_dead_letters(nc: NATS, settings: Settings, consumer: str | None = None,
                            seqs: Sequence[int] | None = None) -> list[DeadLetter]:
    """The dead letters of one consumer (or of all), oldest first."""
    js = nc.jetstream()
    stream = dead_letter_stream(settings)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    if info.state.messages == 0:
        return []
    subjects = ([dead_letter_subject(settings, consumer),
                 older_dead_letter_subject(settings, consumer)] if consumer
                else [f"{DLQ_TOKEN}.{settings.subject_prefix}.>"])
    sub = await js.pull_subscribe(
        subjects[0], stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=10.0, filter_subjects=subjects))
    wanted = set(seqs) if seqs is not None else None
    letters: list[DeadLetter] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (TimeoutError, NatsTimeoutError):
                break
            for m in msgs:
                h = m.headers or {}
                seq = m.metadata.sequence.stream
                if wanted is None or seq in wanted:
                    letters.append(DeadLetter(
                        seq=seq, consumer=h.get("Sixstep-Consumer", ""),
                        reason=h.get("Sixstep-Reason", ""),
                        subject=h.get("Sixstep-Subject", ""),
                        stream_seq=int(h.get("Sixstep-Stream-Seq", "0") or 0),
                        delivered=int(h.get("Sixstep-Delivered", "0") or 0),
                        data=m.data, dead_at=m.metadata.timestamp,
                        stream_created=_created(h.get(STREAM_CREATED)),
                        written_on=m.subject))
            if not msgs or msgs[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return letters


def _created(said: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(said) if said else None
    except ValueError:
        return None


async def log_info(js: JetStreamContext, settings: Settings) -> StreamInfo | None:
    """The event stream a letter is checked against; None when there is none."""
    try:
        return await js.stream_info(settings.stream_name)
    except NotFoundError:
        return None


def selects(filters: Sequence[str], subject: str) -> bool:
    """Whether one of a consumer's filter subjects (NATS wildcards: ``*`` one token, ``>``
    the rest) takes ``subject``."""
    tokens = subject.split(".")
    for wanted in filters:
        parts = wanted.split(".")
        if parts[-1] == ">":
            if len(tokens) >= len(parts) and all(
                    p in ("*", t) for p, t in zip(parts[:-1], tokens, strict=False)):
                return True
        elif len(parts) == len(tokens) and all(
                p in ("*", t) for p, t in zip(parts, tokens, strict=True)):
            return True
    return False


async def logged_event(js: JetStreamContext, settings: Settings, log_stream: StreamInfo | None,
                       letter: DeadLetter, filters: Sequence[str] | None = None,
                       ) -> tuple[bytes | None, str | None]:
    """The log's event that ``letter`` names (its bytes), or why the letter is not it.

    The letter must be on its consumer's service's subject (``written_by_another``), name
    the event stream as it is (made when the letter says), a sequence the log still holds,
    and that event's subject and bytes; given its consumer's ``filters`` (the subjects its
    code reads, never the durable's config on the server, which any service's user may
    change), the event must be on one of them. The reason says which, with no payload
    (types and subjects are codes)."""
    name, at = settings.stream_name, letter.stream_seq
    another = letter.written_by_another(settings)
    if another is not None:
        return None, another
    if log_stream is None:
        return None, f"no event stream {name} to check it against"
    if at <= 0:
        return None, "it names no stream sequence of the log"
    made = log_stream.created
    if made is not None and not letter.same_event_stream(made):
        said = letter.stream_created.isoformat() if letter.stream_created else "before"
        return None, (f"it is of another event stream (made {said}; {name} was made "
                      f"{made.isoformat()}): its sequence {at} is not this log's")
    try:
        logged = await js.get_msg(name, at)
    except NotFoundError:
        first, last = int(log_stream.state.first_seq or 0), int(log_stream.state.last_seq or 0)
        if at > last:
            return None, f"the log has no stream seq {at} (its last is {last})"
        return None, (f"the log no longer holds stream seq {at} ("
                      + (f"its limits dropped the events before {first}" if at < first
                         else "deleted from it") + "): it cannot be checked against it")
    except APIError as exc:
        if exc.err_code in NO_MESSAGE:
            return None, f"the log no longer holds stream seq {at}: it cannot be checked"
        raise
    if logged.subject != letter.subject:
        return None, (f"the log's event at stream seq {at} is on {redact(logged.subject[:200])}, "
                      f"the letter says {redact(letter.subject[:200]) or 'none'}")
    if (logged.data or b"") != letter.data:
        return None, (f"its bytes are not the log's event at stream seq {at} (the log: "
                      f"{_type_of(logged.data or b'')}, the letter: {_type_of(letter.data)})")
    if filters is not None and not selects(filters, logged.subject):
        # The live consumer never reads it: a service's own subject carrying another's event
        # type (``sixstep.feedback.CaseResolved``), which its handler takes by type alone.
        return None, (f"the log's event at stream seq {at} is on "
                      f"{redact(logged.subject[:200])}, which none of consumer "
                      f"{base_consumer(letter.consumer)}'s subjects take: its consumer never "
                      "reads it")
    return logged.data or b"", None


def _type_of(data: bytes) -> str:
    try:
        said = orjson.loads(data).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return "undecodable"
    return said if isinstance(said, str) and said.isidentifier() else "no type"


async def unlike_the_log(nc: NATS, settings: Settings,
                         letters: Sequence[DeadLetter]) -> dict[int, str]:
    """Letter seq -> why it is not the log's event (``logged_event``), for those that are
    not: what ``sixstep dlq list`` marks and a replay refuses."""
    js = nc.jetstream()
    log_stream = await log_info(js, settings)
    out: dict[int, str] = {}
    for letter in letters:
        _, why = await logged_event(js, settings, log_stream, letter)
        if why is not None:
            out[letter.seq] = why
    return out


@dataclass
class ReplayReport:
    consumer: str
    replayed: list[int] = field(default_factory=list)
    already_applied: list[int] = field(default_factory=list)
    failed: list[dict[str, object]] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    #: Letters that are not the log's event (``logged_event``): not applied, kept.
    refused: list[dict[str, object]] = field(default_factory=list)


def _case_of(letter: DeadLetter) -> str | None:
    """The case (else the aggregate) a dead letter is about, read from its raw bytes: also
    for a letter no contract can decode."""
    try:
        raw = orjson.loads(letter.data)
        return str(raw.get("case_id") or raw.get("aggregate_id") or "") or None
    except (orjson.JSONDecodeError, AttributeError):
        return None


async def replay_dead_letters(nc: NATS, pool: asyncpg.Pool, settings: Settings,
                              consumer: str, handler: Handler,
                              seqs: Sequence[int] | None = None, *,
                              filters: Sequence[str] | None = None) -> ReplayReport:
    """Apply ``consumer``'s dead letters through ``handler``, each once, and delete the applied.

    Named without a partition suffix, ``consumer`` covers its partitioned durables too
    (``intake-cases`` replays the letters of ``intake-cases-p0_1`` and ``-p2_3``). Letters are
    applied in the order of the event stream, so a case's events go in the order they were
    recorded; a letter that fails again holds back the later letters of its case (they stay
    in the dead-letter stream, reported as failed, for the next replay).

    What is applied is the log's event at the letter's stream sequence: a letter that is not
    it (``logged_event``: forged, of another stream, its event no longer in the log) is
    refused and kept, and holds nothing back (a forged letter naming a case must not stop
    that case's true letters). ``filters``: the subjects the consumer's code reads (the
    /ops route gives them, ``Runtime.filters_for``); an event on none of them is refused
    too, the log's own though it is (redteam128: a service's user published another
    service's event type on its own log subject, then a letter of its own consumer for it;
    the handler, which acts on the type, applied it)."""
    report = ReplayReport(consumer)
    js = nc.jetstream()
    stream = dead_letter_stream(settings)
    base = base_consumer(consumer)
    whole = consumer == base
    letters = [letter for letter in await read_dead_letters(
                   nc, settings, None if whole else consumer, seqs)
               if letter.consumer == consumer
               or (whole and base_consumer(letter.consumer) == base)]
    letters.sort(key=lambda letter: (letter.stream_seq, letter.seq))
    waits_behind: dict[str, int] = {}  # case -> the dead letter it must not overtake
    log_stream = await log_info(js, settings)
    for letter in letters:
        logged, unlike = await logged_event(js, settings, log_stream, letter, filters)
        if logged is None:
            report.refused.append({"seq": letter.seq, "reason": f"not the log's event: {unlike}"})
            log.warning("deadletter.refused", consumer=letter.consumer, seq=letter.seq,
                        stream_seq=letter.stream_seq, reason=unlike)
            continue
        letter = dataclasses.replace(letter, data=logged)  # the log's bytes, never the letter's
        case = _case_of(letter)
        if case is not None and case in waits_behind:
            report.failed.append({"seq": letter.seq, "reason": (
                f"waits behind dead letter {waits_behind[case]} of its case")})
            continue
        try:
            decoded = decode_envelope(letter.data)
            envelope = REGISTRY.current(decoded)
        except (ValidationError, LookupError, ValueError) as exc:
            report.failed.append({"seq": letter.seq,
                                  "reason": f"undecodable: {type(exc).__name__}"})
            if case is not None:
                waits_behind[case] = letter.seq
            continue
        forged = not_its_subject(letter.subject, decoded.service, decoded.type)
        if forged is not None:  # the log's event, but not what its subject's writer may say
            report.refused.append({"seq": letter.seq, "reason": f"not the log's event: {forged}"})
            log.warning("deadletter.refused", consumer=letter.consumer, seq=letter.seq,
                        stream_seq=letter.stream_seq, reason=forged)
            continue
        try:
            with structlog.contextvars.bound_contextvars(
                    correlation_id=envelope.correlation_id, event_id=str(envelope.event_id)):
                async with pool.acquire() as conn, conn.transaction():
                    fresh = await _first_replay(conn, letter)
                    if fresh:
                        await handler.apply(conn, [envelope])
                        applied_after = await conn.fetchval(
                            "SELECT seq FROM consumer_tracking WHERE consumer = $1 AND key = $2",
                            letter.consumer, envelope.partition_key)
                        if applied_after is not None and applied_after > letter.stream_seq:
                            report.late.append(letter.seq)
        except Exception as exc:
            reason = redact(f"{type(exc).__name__}: {str(exc)[:300]}")
            report.failed.append({"seq": letter.seq, "reason": reason})
            if case is not None:
                waits_behind[case] = letter.seq
            log.warning("deadletter.replay_failed", consumer=letter.consumer, seq=letter.seq,
                        stream_seq=letter.stream_seq, error=reason)
            continue
        (report.replayed if fresh else report.already_applied).append(letter.seq)
        await _delete(js, stream, letter.seq)  # gone already when another replica was first
        log.info("deadletter.replayed", consumer=letter.consumer, seq=letter.seq,
                 stream_seq=letter.stream_seq, applied=bool(fresh),
                 event_id=str(envelope.event_id))
    return report


async def _first_replay(conn: asyncpg.Connection, letter: DeadLetter) -> bool:
    """Record the replay of ``letter``'s event in ``consumer_replays``; False when it was
    replayed before, from this letter or another of the same event: the same durable's after
    the dead-letter stream's duplicate window (a redelivery given up on again), or another
    durable of its consumer (a partitioned replica's, an old split's: ``base_consumer``).
    Keyed by the letter's own durable alone, a replay of ``intake-cases`` applied such an
    event once per durable. Two replays at once (two replicas) take turns on the event's
    lock, and the second finds the first's row."""
    base = base_consumer(letter.consumer)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"sixstep-replay:{base}:{letter.stream_seq}")
    replayed = await conn.fetch(
        "SELECT consumer, stream_created, replayed_at FROM consumer_replays"
        " WHERE stream_seq = $1", letter.stream_seq)
    if any(base_consumer(r["consumer"]) == base and letter.same_event_stream(
            r["stream_created"], r["replayed_at"]) for r in replayed):
        return False
    await conn.execute("INSERT INTO consumer_replays (consumer, stream_seq, dlq_seq,"
                       " stream_created) VALUES ($1, $2, $3, $4)", letter.consumer,
                       letter.stream_seq, letter.seq, letter.stream_created)
    return True


def repeats(letters: Sequence[DeadLetter]) -> dict[int, int]:
    """The letters of an event dead-lettered before (by the same consumer, under any of its
    durables): letter seq -> the first letter's seq. Replay applies the event once and drops
    them all (``_first_replay``); ``sixstep dlq list`` says so."""
    first: dict[tuple[str, int], list[DeadLetter]] = {}
    out: dict[int, int] = {}
    for letter in sorted(letters, key=lambda x: x.seq):
        key = (base_consumer(letter.consumer), letter.stream_seq)
        earlier = next((e for e in first.get(key, ())
                        if letter.same_event_stream(e.stream_created, e.dead_at)), None)
        if earlier is not None:
            out[letter.seq] = earlier.seq
        else:
            first.setdefault(key, []).append(letter)
    return out


#: The server's answer to deleting a message that is not there (any more).
NO_MESSAGE = 10037, 10057


async def _delete(js: JetStreamContext, stream: str, seq: int) -> bool:
    """Delete one message; False when it was not there (another replay deleted it first:
    the server answers 404 or, on some versions, 500 with err_code 10057)."""
    try:
        return bool(await js.delete_msg(stream, seq))
    except NotFoundError:
        return False
    except APIError as exc:
        if exc.err_code in NO_MESSAGE:
            return False
        raise


async def drop_dead_letter(nc: NATS, settings: Settings, seq: int) -> bool:
    """Delete one dead letter for good (it is kept nowhere else); False if it was not there."""
    return await _delete(nc.jetstream(), dead_letter_stream(settings), seq)
