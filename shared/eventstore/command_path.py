"""The one way a command reaches an aggregate, for every aggregate of every service.

A use case gives the aggregate's id, the event kind its command records, the caller's
Idempotency-Key and If-Match, the meta and the domain verb to call; the path does the rest,
in this order, inside the group commit:

1. load the aggregate: 404 ``not_found`` when there is none;
2. the caller's center (and case) must be the aggregate's: else 404, worded as for none
   (``group_commit.Unit.get``);
3. the Idempotency-Key: the same command again under a key already applied answers with the
   first write (``replayed``); the key with another command (another kind, another caller,
   other content: ``CommandDigests``) is a 422 (``RemembersCommands.check_new_command``);
   a ``sent_at`` too far off the clock is refused here too, unless the key was applied (a
   retry of the same bytes replays: ``group_commit.refused_unless_replayed``);
4. the meta is placed on the aggregate (its ``center_id``, ``case_id``);
5. If-Match: the aggregate must be at the version the caller last saw, else 409;
6. the verb; a new aggregate it returns (a rectification, a revisit survey) commits with it.

Creating an aggregate goes through :meth:`CommandPath.create`: an aggregate already there
under the command's key is the first answer again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from pydantic import BaseModel

from shared import tracing
from shared.eventstore.group_commit import (
    ANOTHER_CENTER,
    ClockReading,
    Command,
    GroupCommitter,
    KeyedRefusal,
    Sent,
    Unit,
    Written,
    arrived_at,
    clock_reading,
    out_of_scope,
    refused_unless_replayed,
)
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.errors import (
    AlreadyDoneError,
    CommandError,
    InvalidCommand,
    NotFound,
    OutOfReach,
    VersionConflict,
)
from shared.kernel.meta import COMMAND_DIGEST, Meta, Stamped, by_a_worker, meta_for
from shared.kernel.moments import Moments
from shared.kernel.scrubbing import CaseTexts, scrubbing_by_intake
from shared.security.principals import Principal, current_caller

Act = Callable[[Any, Meta], Any]
"""The domain verb: ``(aggregate, meta) -> None``, or a new aggregate to commit with it."""


#: What a command says of itself besides what it asks: its id in the traces. A retry may carry
#: another (a header's, or a client's per attempt), and it is the same command.
#: Nor is the sender's clock as it sent it (``sent_at``): stamped anew on every attempt.
NOT_THE_COMMAND = frozenset({"correlation_id", "sent_at"})

#: The digest's length in bytes (128 bits: two commands meeting by chance under one key never).
DIGEST_BYTES = 16


class CommandDigests:
    """The keyed digest of a command (HMAC-SHA256 under ``key``, cut to 128 bits, hex), so
    that its Idempotency-Key sent again with other content is told apart from a retry.

    Over the validated command model, not the request's bytes: its fields in sorted order
    as JSON (key order, whitespace, a default sent or left out do not matter), without
    :data:`NOT_THE_COMMAND`, each text but a code by its shape only (:func:`shape_of`). It is
    kept with the command's events for as long as the store keeps them, after the resident
    is erased too: over the raw text, keyed (``Settings.command_digest_key``), whoever holds
    the key found an erased resident's name again by trying names against it (731,000
    candidates in 13 s found 王秀英 from ``王秀英来问临时救助``), and a phone or ID number the
    same way. Of a text's shape nothing can be found; a retry sends the same text, so it
    has the same shape whatever intake could scrub of it at the time. Two commands under one
    key that differ only in the letters of a text of the same shape are taken for one (the
    first answer replays): a key reused for another command is a client's bug, and every id,
    day, code and the length and make-up of each text still tell such commands apart."""

    def __init__(self, key: bytes) -> None:
        # Keyed once: HMAC's inner and outer hashes with the padded key already in them
        # (RFC 2104), a copy of each per command: the same bytes as ``hmac.new(key, body,
        # sha256)`` (tests/unit/test_command_digests.py) without its Python object and the
        # wrappers of its copy, update and digest (hmac.new per command was ~40 % of a
        # digest: 5.7 -> 4.3 us; a copy of an HMAC ~2.3 us of CPU, of the two hashes ~1.2).
        self._inner, self._outer = _keyed_hashes(key)

    def of(self, command: Any) -> str | None:
        if not isinstance(command, BaseModel):
            return None
        fields: Any = None
        if _plain(type(command)):
            # Which of the JSON dump's strings were texts, told by the command's own values:
            # one dump, not two (the same fields as below: tests/unit/
            # test_command_digest_one_dump.py holds the two ways to the same bytes).
            dumped = command.model_dump(mode="json")
            for name in NOT_THE_COMMAND:
                dumped.pop(name, None)
            try:
                fields = _model_shaped(command, dumped)
            except _NotPlain:
                pass
        if fields is None:
            fields = _texts_shaped(command.model_dump(exclude=NOT_THE_COMMAND),
                                   command.model_dump(mode="json", exclude=NOT_THE_COMMAND))
        body = orjson.dumps([type(command).__name__, fields], option=orjson.OPT_SORT_KEYS)
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:DIGEST_BYTES].hex()


def _keyed_hashes(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hashes of ``key`` (RFC 2104: a key longer than the
    block is hashed first, then padded with zeros to it and XORed with 0x36 and 0x5c)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return (hashlib.sha256(key.translate(hmac.trans_36)),
            hashlib.sha256(key.translate(hmac.trans_5C)))


_CODE = re.compile(r"[A-Za-z0-9_.:/\-]{1,128}")
"""A text kept as it is in the digest: a code (``clerk-017``, ``SA-HARDSHIP-SUBSIDY``,
``window-3``), never a name, an address or a note (those have letters of other scripts or
spaces) ..."""
_NUMBER_RUN = re.compile(r"[0-9](?:[-.:/_]?[0-9]){5}")
"""... nor a number a person can be found by (a phone, an ID number, a card: six digits or
more, in a row or in groups as a number is read out, ``138-1234-5678``)."""
class _Shapes(dict[int, str]):
    """The table :func:`shape_of` translates by: each character's shape, worked out the first
    time it is met (the characters met, never the texts; at most ``_SHAPES_KEPT``)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if "0" <= ch <= "9":
            shape = "0"
        elif ch.isascii():
            shape = "a" if ch.isalpha() else ch
        else:
            shape = "字" if ch.isalpha() else ch
        if len(self) < _SHAPES_KEPT:
            self[code] = shape
        return shape


_SHAPES_KEPT = 65_536
_SHAPES = _Shapes()


def shape_of(text: str) -> str:
    """What the command digest keeps of a text that is not a code: each digit a ``0``, each
    Latin letter an ``a``, each letter of another script (a Han character) a ``字``, the
    rest (spaces, punctuation) as it is. ``王秀英来问临时救助`` and ``李建国来问临时救助`` are
    one shape; ``13812345678`` and any other mobile number too. (One ``translate`` by a table
    filled as characters are met: the same as mapping ASCII digits and letters, then each
    other letter, one character at a time.)"""
    return text.translate(_SHAPES)


def _texts_shaped(value: Any, dumped: Any) -> Any:
    """``dumped`` (a command's JSON dump) with each text of ``value`` (its Python dump: a
    ``str`` there, no enum, is a text; an id, a day, a moment is not) that is not a code
    (:data:`_CODE`, :data:`_NUMBER_RUN`) taken by its shape (:func:`shape_of`)."""
    if isinstance(value, str) and not isinstance(value, Enum):
        if _CODE.fullmatch(value) and _NUMBER_RUN.search(value) is None:
            return dumped
        return shape_of(value)
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {k: _texts_shaped(value.get(k), v) for k, v in dumped.items()}
    if isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        return [_texts_shaped(v, d) for v, d in zip(value, dumped, strict=True)]
    return dumped


class _NotPlain(Exception):
    """A value whose Python dump may not be the value itself (a serializer of its own, an
    alias as its key, a kind of value not below): the digest asks pydantic for the Python
    dump instead, as it always did."""


#: Values that are their own Python dump and never a text (an Enum too, by ``isinstance``).
_LEAVES = frozenset({bool, int, float, Decimal, UUID, date, datetime, time, timedelta})
#: Model classes whose Python dump is a dict of their fields' own values, by field name.
_PLAIN: dict[type, bool] = {}


def _plain(cls: type[BaseModel]) -> bool:
    """Whether ``cls`` dumps as its fields' values by their names: no serializer anywhere in
    its schema (a field's, the model's, an annotated type's, a nested model's), no computed
    field, and its fields' names, not their aliases, as keys."""
    known = _PLAIN.get(cls)
    if known is None:
        known = _PLAIN[cls] = not cls.model_config.get("serialize_by_alias") and not _serializes(
            cls.__pydantic_core_schema__)
    return known


def _serializes(schema: Any) -> bool:
    if isinstance(schema, dict):
        return any((key in ("serialization", "computed_fields") and value)
                   or _serializes(value) for key, value in schema.items())
    if isinstance(schema, list | tuple):
        return any(_serializes(value) for value in schema)
    return False


def _text_shaped(text: str) -> str:
    """:func:`_texts_shaped` of a text: itself when a code, else its shape."""
    if _CODE.fullmatch(text) and _NUMBER_RUN.search(text) is None:
        return text
    return shape_of(text)


def _model_shaped(model: BaseModel, dumped: Any) -> dict[str, Any]:
    """:func:`_texts_shaped` of a plain model's Python dump and ``dumped``, from the model's
    own values (its Python dump is a dict of them by field name)."""
    if not _plain(type(model)) or type(dumped) is not dict:
        raise _NotPlain
    out: dict[str, Any] = {}
    values = model.__dict__  # a field's value (an extra field's is not there: getattr)
    for name, shown in dumped.items():
        value = values[name] if name in values else getattr(model, name)
        kind = type(value)
        if kind is str:  # first: most fields of a command are texts and codes
            out[name] = _text_shaped(value)
        elif value is None or kind in _LEAVES or isinstance(value, Enum):
            out[name] = shown
        else:
            out[name] = _shaped_by_values(value, shown)
    return out


def _shaped_by_values(value: Any, dumped: Any) -> Any:
    """:func:`_texts_shaped` (``value``'s Python dump, ``dumped``) from ``value`` itself: a
    plain model's Python dump is its fields' values, a dict's or a list's its items'. Any
    other kind of value (a set, a dataclass, a model with a serializer) raises
    :class:`_NotPlain`."""
    kind = type(value)
    if kind is str:
        return _text_shaped(value)
    if value is None or kind in _LEAVES or isinstance(value, Enum):
        return dumped
    if isinstance(value, str):  # a subclass of str (not an Enum): a text as well
        return _text_shaped(value)
    if isinstance(value, BaseModel):
        return _model_shaped(value, dumped)
    if kind is dict:
        if type(dumped) is not dict:
            raise _NotPlain
        return {k: _shaped_by_values(value.get(k), v) for k, v in dumped.items()}
    if kind is list or kind is tuple:
        if type(dumped) is not list or len(value) != len(dumped):
            raise _NotPlain
        return [_shaped_by_values(v, d) for v, d in zip(value, dumped, strict=True)]
    raise _NotPlain


def check_version(aggregate: Any, what: str, expected_version: int | None) -> None:
    """If-Match: the caller's view of ``aggregate`` must be current (409 otherwise)."""
    if expected_version is not None and aggregate.version != expected_version:
        raise VersionConflict(
            f"{what} is at version {aggregate.version}, not {expected_version}",
            current_version=aggregate.version, expected_version=expected_version)


def on_existing(aggregate_id: UUID, what: str, kind: str, act: Act, meta: Meta,
                key: str | None, expected_version: int | None = None) -> Command:
    """Steps 1-6 as the group commit runs them (server-free: any ``Unit`` will do)."""

    def run(unit: Unit) -> Aggregate:
        aggregate = unit.get(aggregate_id, what)
        # Another caller's key is a 422 here too: two clerks' tablets counting keys from 1
        # on one case (a handover) would otherwise have the second one's action answered as
        # the first one's and dropped.
        aggregate.check_new_command(key, kind, meta.get("actor"),
                                    digest=meta.get(COMMAND_DIGEST))
        meta.update(aggregate.meta_for(meta))
        check_version(aggregate, what, expected_version)
        created = act(aggregate, meta)
        if isinstance(created, Aggregate):
            unit.add(created)
        return aggregate

    return run


def creating(aggregate_id: UUID, kind: str, key: str | None,
             build: Callable[[], Aggregate], actor: str | None = None,
             digest: str | None = None) -> Command:
    """A new aggregate, once: one already there answers as the first write did (under
    ``key``, checked as every key is; without a key, at its first version). ``actor``: the
    caller, when the id is made from the key alone (another caller's key is a 422);
    ``digest``: the command's (``meta[COMMAND_DIGEST]``; other content is a 422)."""

    def run(unit: Unit) -> Aggregate:
        existing = unit.find(aggregate_id)
        if existing is not None:
            if key is not None:
                existing.check_new_command(key, kind, actor, digest)
            raise AlreadyDoneError(aggregate_id, 1)
        aggregate = build()
        unit.add(aggregate)
        return aggregate

    return run


class _NotCreatedYet(CommandError):
    """Inside :func:`created_before` only: nothing is there under the id yet."""


def _ran_fast(sent_at: datetime, came: datetime) -> bool:
    """Whether a post refused for its sender's clock (``sent_at`` beyond the window) came
    from a clock running fast (else slow): the committer's ``on_clock_refused`` counts it
    (``sixstep_writes_refused_for_clock_total``), at once without a key, and under one only
    when it is answered refused (``KeyedRefusal``): a retry of an answered key, its old
    ``sent_at`` kept, replays the first answer and is no clock refused."""
    sent = sent_at if sent_at.utcoffset() is not None else sent_at.replace(tzinfo=UTC)
    return sent > came


def created_before(aggregate_id: UUID, kind: str, key: str,
                   actor: str | None = None, digest: str | None = None) -> Command:
    """The answer :func:`creating` would give for an aggregate already there (the first
    answer, or the key's 422), without building anything; :class:`_NotCreatedYet` when it is
    not there."""

    def run(unit: Unit) -> Aggregate:
        existing = unit.find(aggregate_id)
        if existing is None:
            raise _NotCreatedYet("not created yet")
        existing.check_new_command(key, kind, actor, digest)
        raise AlreadyDoneError(aggregate_id, 1)

    return run


def creating_each(builds: Mapping[UUID, Callable[[], Aggregate]],
                  trace: tracing.CommandTrace | None = None) -> Command:
    """Many new aggregates in one command (a batch job's, without Idempotency-Keys): each one
    already there is left as it is, so a rerun records nothing twice. Answers with the last
    one created, or, when every one was there, as a replay of the first. Each event is stamped
    with ``trace`` (the job's span), as a single command's are."""

    def run(unit: Unit) -> Aggregate:
        created: Aggregate | None = None
        for aggregate_id, build in builds.items():
            if unit.find(aggregate_id) is None:
                created = build()
                if trace is not None:
                    tracing.stamp(created.pending_events, trace)
                unit.add(created)
        if created is None:
            raise AlreadyDoneError(next(iter(builds)), 1)
        return created

    return run


class CommandPath:
    """What every service's use cases go through: the meta, the clock, the moments window,
    where free text about a case is scrubbed of its resident first (``case_texts``), and the
    steps above, committed in batches by the service's ``GroupCommitter``."""

    def __init__(self, committer: GroupCommitter, clock: Clock | None = None,
                 moments: Moments | None = None, case_texts: CaseTexts | None = None) -> None:
        self.committer = committer
        self.clock: Clock = clock or SystemClock()
        self.moments = moments or Moments()
        self.digests = CommandDigests(committer.command_digest_key)
        self.case_texts = case_texts
        """Intake, for a service that never sees the vault (``shared.http.case_texts``): a
        staff command's free text about a case goes there first (:meth:`scrubbing`); None:
        scrubbed by the patterns alone (intake itself, whose aggregates know the resident)."""

    def now(self) -> datetime:
        return self.clock.now()

    def judged_at(self, meta: Meta) -> datetime | None:
        """The moment a post with this meta is judged by when its ``occurred_at`` lies more
        than the grace back (``Moments.judged_at``, by this path's clock); None when it
        stands."""
        return self.moments.judged_at(meta["occurred_at"], self.now())

    def meta(self, actor: str, key: str | None, command: Stamped | None = None,
             **where: Any) -> Meta:
        """The meta of ``command``; its moments and days checked first (422 out of range).
        The sender's clock, by the ``sent_at`` it stamped as it sent (``Moments.skew``: more
        than 5 s off this path's clock), moves ``occurred_at`` by its error: a step queued
        offline on a tablet running fast is dated when it really happened, though it
        arrives behind the clock. An ``occurred_at`` still ahead of the request's arrival is
        recorded as the arrival (``Moments.recorded``: a counter's clock running fast), and a
        command that gives none is dated by its arrival too (``arrived_at``; outside a
        request, this path's clock). How
        far ahead the sender's clock was (its ``sent_at``'s, else its ``occurred_at``'s)
        is handed to the committer's ``on_clock_ahead`` (the metrics), how far behind
        (by its ``sent_at``) to ``on_clock_behind``, kept nowhere else. ``sent_at`` is
        measured against the request's arrival at the front door (``arrived_at``), not this
        path's clock as it runs.
        A ``sent_at`` beyond the window is refused at once without a key; under one, its
        refusal waits for the key's look-up (``refused_unless_replayed``): a retry of a
        command already applied answers as the first write, whatever its ``sent_at``.
        Under a key, the command's digest (``meta[COMMAND_DIGEST]``) goes with it."""
        now = self.clock.now()
        # The sender's clock is measured against the request's arrival at the front door:
        # the time it spent in here since (a body on a slow network, the loop's queue, a
        # wait for the vault) is not the sender's clock running slow.
        came = arrived_at.get()
        if came is None or came > now:
            came = now
        refused: InvalidCommand | None = None
        if command is not None:
            try:
                self.moments.check(command, now, arrived=came)  # type: ignore[arg-type]
            except InvalidCommand as off:
                clock = off.details.get("field") == "sent_at"
                if clock:
                    fast = _ran_fast(command.sent_at, came)  # type: ignore[attr-defined]
                    counted = getattr(self.committer, "on_clock_refused", None)
                    if key is None and counted is not None:
                        counted(fast)  # refused now; under a key, once answered refused
                if key is None or not clock:
                    raise
                try:  # the rest as for any command: a retry passed them once already
                    self.moments.check(command.model_copy(  # type: ignore[attr-defined]
                        update={"sent_at": None}), now, arrived=came)
                except InvalidCommand:
                    raise off from None
                refused = off
        # A sent_at far off the clock under a key: a new command is refused, but the same
        # request sent again after its answer was lost (its old sent_at kept, by a script)
        # replays the first answer, decided where the key is looked up (group commit).
        if refused is not None and key is not None:
            refused_unless_replayed.set(KeyedRefusal(key, refused, fast))
        elif refused_unless_replayed.get() is not None:  # a set() costs a new context
            refused_unless_replayed.set(None)
        # A caller's command that gives no moment happened as it came in, and one ahead is
        # recorded at that moment: dated by the path's clock as it runs, a post that came in
        # at 23:59:59 on 31 December whose body took two seconds was January's, and next
        # year's. The service's own work (no command: a worker's, or dead letters replayed
        # by an ops request for minutes) is dated as it runs.
        at = came if command is not None else now
        meta = meta_for(actor, key, at, command, **where)
        reading: ClockReading | None = None
        given = meta["occurred_at"]
        if given is not at:  # the command gave its own: the sender's clock may be off
            clock_ahead = 0.0
            # A Command's; none on a worker's (nor one refused unless replayed: not read).
            sent = getattr(command, "sent_at", None) if refused is None else None
            if sent is not None and (skew := self.moments.skew(sent, came)) is not None:
                given = given - skew  # the sender's clock error, in the offset it gave
                clock_ahead = skew.total_seconds()  # negative: a clock slow
            meta["occurred_at"], ahead_s = self.moments.recorded(given, came)
            ahead_s = max(ahead_s, clock_ahead)
            tell: Callable[[float], None] | None = None
            if refused is not None:
                pass  # counted refused if it is answered so (KeyedRefusal), not ahead too
            elif ahead_s > 0 and (tell := self.committer.on_clock_ahead) is not None:
                off_s = ahead_s
            elif clock_ahead < 0 and (tell := self.committer.on_clock_behind) is not None:
                off_s = -clock_ahead
            if tell is not None:
                if key is None:
                    tell(off_s)
                else:  # told as its write is answered, unless that is a retry's replay
                    reading = ClockReading(tell, off_s)
        if reading is not None:
            clock_reading.set(reading)
        elif clock_reading.get() is not None:  # a set() costs a new context
            clock_reading.set(None)
        if key is not None and (digest := self.digests.of(command)) is not None:
            meta[COMMAND_DIGEST] = digest
        return meta

    async def scrubbing(self, meta: Meta, aggregate_id: UUID, *texts: str) -> None:
        """A name typed alone (王秀英不在家) has no shape: in a service that never sees the
        vault, intake scrubs a command's texts of the case's resident before its events are
        built (``shared.http.case_texts``; docs/security.md, "A name typed alone"). The case
        is the one the aggregate's first event names; none (or no such aggregate: the command
        answers the 404): nothing asked. Nor for a service's own worker (``system:rules``
        cancelling a check "case reopened" as it takes an event from the stream): its words are
        the code's or copied from an event already scrubbed, and no consumer waits for intake
        (a replay of the stream, or intake down, would stall every event on the timeout)."""
        said = [t for t in texts if t.strip()]
        if self.case_texts is None or not said or by_a_worker(str(meta.get("actor", ""))):
            return
        about = await asyncio.to_thread(self._about, aggregate_id, current_caller())
        if about is not None:
            await scrubbing_by_intake(self.case_texts, about[1], said, meta, about[0])

    async def in_reach_first(self, aggregate_id: UUID, what: str) -> None:
        """The 404 ``Unit.get`` answers for another center's ``what`` (or another case's
        than a resident's token), worded as for none, answered from the aggregate's first
        event alone: for a command that loads more beside it (a referral's reply loads its
        督办 follow-up), nothing of it is loaded first. None there: nothing said (the
        command answers its own 404). Before December 2026 the referral and its chase were
        loaded whole, for another center's clerk, and refused after."""
        caller = current_caller()
        if caller is None:
            return
        first = await asyncio.to_thread(self._first, aggregate_id)
        if first is not None and (why := out_of_scope(caller, first)) is not None:
            refused = NotFound(f"{what} {aggregate_id} not found", id=str(aggregate_id))
            refused.out_of_reach = OutOfReach(
                what, str(aggregate_id), getattr(first, "center_id", None),
                "another_center" if why == ANOTHER_CENTER else "another_case")
            raise refused

    def _first(self, aggregate_id: UUID) -> Any | None:
        """The aggregate as its first event made it (its center, case or resident: what the
        scope reads), from the store; None: no such aggregate."""
        try:
            return self.committer.app.repository.get(aggregate_id, version=1)
        except AggregateNotFoundError:
            return None

    async def case_of(self, aggregate_id: UUID) -> UUID | None:
        """The case the aggregate's first event names, read from the store (not a read model
        that may not have it yet); None: none, no such aggregate, or out of the caller's
        reach (the command answers the 404 as it loads it)."""
        about = await asyncio.to_thread(self._about, aggregate_id, current_caller())
        return about[1] if about is not None and about[0] == "case" else None

    def _about(self, aggregate_id: UUID, caller: Principal | None
               ) -> tuple[str, UUID] | None:
        """Whom the aggregate's texts are about: its case (``"case"``), or, with no case, the
        resident it names (``"resident"``: a follow-up planned by hand for them, a policy's
        outreach to one who was only shown a hint; before, such a note kept their name typed
        alone). None also when it is out of the caller's reach (another center's, another
        case's than a resident's token): the command answers the 404 as it loads it, and
        intake is not made to read that resident from the vault first, for any caller who
        names an id."""
        first = self._first(aggregate_id)
        if first is None or out_of_scope(caller, first) is not None:  # the unit's own check
            return None
        case_id = getattr(first, "case_id", None)
        if isinstance(case_id, UUID):
            return "case", case_id
        resident_id = getattr(first, "resident_id", None)
        return ("resident", resident_id) if isinstance(resident_id, UUID) else None

    async def on(self, aggregate_id: UUID, what: str, kind: str, act: Act, meta: Meta,
                 key: str | None, expected_version: int | None = None) -> Written:
        """Run ``act`` on the aggregate ``aggregate_id`` (``what``: its name in a 404 or 409,
        ``kind``: the event its command records, for the key's check)."""
        return await self.committer.submit(
            on_existing(aggregate_id, what, kind, act, meta, key, expected_version),
            [aggregate_id])

    def create(self, aggregate_id: UUID, kind: str, key: str | None,
               build: Callable[[], Aggregate], actor: str | None = None,
               meta: Meta | None = None) -> Sent:
        """``meta``: the command's, when ``build`` records it (its digest is checked). Queued
        as it is called (``GroupCommitter.send``): await the answer."""
        digest = meta.get(COMMAND_DIGEST) if meta is not None else None
        return self.committer.send(
            creating(aggregate_id, kind, key, build, actor, digest), [aggregate_id])

    async def created(self, aggregate_id: UUID, kind: str, key: str, actor: str | None,
                      meta: Meta) -> Written | None:
        """What :meth:`create` answers when the aggregate is already there under ``key`` (the
        first answer, replayed; another command's key: a 422), else None: asked first by a use
        case that writes outside the store before it creates (the vault's audit trail), so that
        a retry or a reused key writes nothing there. Once there, an aggregate stays: the
        create after a None may still find it (a racing retry), never the other way round."""
        try:
            return await self.committer.submit(
                created_before(aggregate_id, kind, key, actor, meta.get(COMMAND_DIGEST)),
                [aggregate_id])
        except _NotCreatedYet:
            return None

    def create_each(self, builds: Mapping[UUID, Callable[[], Aggregate]]) -> Sent:
        """Create the aggregates of ``builds`` not there yet, in one command: one load of them
        all and one transaction, instead of a command (and a wait) each. Queued as it is
        called: await the answer."""
        return self.committer.send(creating_each(builds, tracing.command_trace()),
                                   list(builds))
