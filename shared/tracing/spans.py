"""Spans, and the ``traceparent`` each event keeps of the request that caused it.

How one case stays in one trace across the services:

* the HTTP surface opens a span per request (a caller's own ``traceparent`` header is its
  parent);
* group commit keeps, with each command, the trace it was submitted in
  (:func:`command_trace`), and writes it into the meta of the events the command records
  (:func:`stamp`): ``meta["traceparent"]``, the W3C string of random ids, nothing about the
  resident. The envelope on the bus is unchanged, so every stored event stays decodable by
  every consumer and export, old and new;
* the relay publishes each event with a ``traceparent`` NATS header made from it;
* a consumer applies a batch in one span (:func:`consuming`, OpenTelemetry's messaging
  conventions for a batch processed at once) with a link to each message of a kept trace
  (its header's sampled flag), and the commands a handler submits for a message (its
  ``causation_id`` is the message's event id) are stamped with the message's own
  ``traceparent``: a resolution's survey and follow-up are in the resolution's trace, and so
  are the events they cause in turn. A message applied on its own (a batch that failed is
  applied one event at a time) gets a span below its header (:func:`applying`).

Nothing is traced until :func:`install` is given a tracer provider (``shared.runtime.tracing``
does when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; a test gives one with an in-memory
exporter). Until then every helper returns at once: no span, no header, no meta key.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
"""The W3C header (on HTTP and on NATS messages) and the key in an event's meta."""

_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_tracer: Tracer = trace.NoOpTracer()
_enabled = False
#: Whether the installed sampler never records a span whose (remote) parent was not sampled,
#: as ``ParentBased`` does: then such a span is not made at all (see :func:`published`).
_follows_parent = False
#: The spans of the batch :func:`consuming` has open (its own, and those beside it).
_batch_spans: ContextVar[tuple[Span, ...]] = ContextVar("sixstep_batch_spans", default=())
#: The trace each message being applied gives the commands it causes: event id -> traceparent.
_causes: ContextVar[Mapping[UUID, str] | None] = ContextVar("sixstep_trace_causes",
                                                            default=None)


def install(provider: trace.TracerProvider | None) -> None:
    """Trace with ``provider`` from now on; ``None`` turns tracing off again."""
    global _tracer, _enabled, _follows_parent
    _tracer = provider.get_tracer("sixstep") if provider is not None else trace.NoOpTracer()
    _enabled = provider is not None
    _follows_parent = _drops_unsampled_children(provider)


def _drops_unsampled_children(provider: trace.TracerProvider | None) -> bool:
    """Asks ``provider``'s sampler (the SDK's, when it has one) whether it drops a span whose
    remote parent was not sampled, whatever its trace id."""
    should_sample = getattr(getattr(provider, "sampler", None), "should_sample", None)
    if should_sample is None:
        return False
    unsampled = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        0x5EED, 0x5EED, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))
    try:
        return all(getattr(should_sample(unsampled, trace_id, "probe").decision, "name", "")
                   == "DROP" for trace_id in (1, 0x5EED, 2**64 + 1, 2**127 + 0x5EED, 2**128 - 1))
    except Exception:  # a sampler that cannot say: every span is made, as before
        return False


def enabled() -> bool:
    return _enabled


# -- the W3C traceparent ----------------------------------------------------------------------

def traceparent_of(span: Span) -> str | None:
    """``00-<trace id>-<span id>-<flags>`` for ``span``; None for a span that is not valid."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str | None:
    return traceparent_of(trace.get_current_span()) if _enabled else None


_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: A version-00 ``traceparent`` naming a valid parent (neither id all zeros) whose sampled
#: flag (the lowest bit of the flags, so of their last hex digit) is off.
_UNSAMPLED_00 = re.compile(
    r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f][02468ace]")


def _span_context(traceparent: str) -> SpanContext | None:
    """The remote span a version-00 ``traceparent`` (the one every sixstep process writes)
    names, read directly; None for another version or a malformed one."""
    match = _VERSION_00.fullmatch(traceparent)
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match[3], 16)))


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a ``traceparent`` names; None for none or a malformed one."""
    if not traceparent:
        return None
    remote = _span_context(traceparent)
    if remote is not None:  # what the propagator makes of it, without its general parsing
        return trace.set_span_in_context(NonRecordingSpan(remote), Context())
    ctx = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def _not_recorded(traceparent: str | None) -> bool:
    """Whether a span below ``traceparent`` would not be recorded: its trace was not sampled
    and the sampler follows the parent's decision. Such a span is not made: the next hop gets
    ``traceparent`` itself, so the trace id goes on unchanged and nothing recorded is lost."""
    if not _follows_parent or not traceparent:
        return False
    # What ``_span_context`` reads, without building the SpanContext, in one match (once per
    # message a consumer applies and per event the relay publishes): a valid version-00
    # parent whose sampled flag is off (3.7 -> 1.4 -> 0.5 us).
    return _UNSAMPLED_00.fullmatch(traceparent) is not None


_SAMPLED_LAST = frozenset("13579bdf")
"""The last hex digit of a version-00 ``traceparent`` whose sampled flag is on."""


def _kept(traceparent: str | None) -> SpanContext | None:
    """The remote span a message's ``traceparent`` names when a span below it would be
    recorded (its trace is sampled, or the sampler does not follow the parent's decision);
    None otherwise, and for a malformed one. Most messages are of traces not kept: two
    character tests answer for them."""
    if not traceparent:
        return None
    if _follows_parent and len(traceparent) == 55 and traceparent[-1] not in _SAMPLED_LAST:
        return None  # its sampled flag is off (or it is malformed)
    remote = _span_context(traceparent)
    if remote is None:  # another version: the propagator's general parsing
        parent = context_of(traceparent)
        if parent is None:
            return None
        remote = trace.get_current_span(parent).get_span_context()
    return remote if remote.trace_flags.sampled or not _follows_parent else None


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, in hex, for a log line; None outside one."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


MAX_LINKS = 128
"""The SDK keeps at most 128 links a span (``OTEL_SPAN_LINK_COUNT_LIMIT``): no more are made."""


def linked(traceparents: Iterable[str | None]) -> list[Link]:
    """Links from a batch's span to the traces of what it holds that are kept (one each,
    duplicates once, the first :data:`MAX_LINKS`): given to the span as it starts, so that
    the sampler keeps the batch of a kept trace (``shared.runtime.tracing.LinkedOrRatio``).
    Most are of traces not kept: two character tests each (:func:`_kept`)."""
    links: dict[int, Link] = {}
    for tp in traceparents:
        if len(links) >= MAX_LINKS:
            break
        remote = _kept(tp)
        if remote is not None:
            links.setdefault(remote.span_id, Link(remote))
    return list(links.values())


# -- spans ------------------------------------------------------------------------------------

def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, parent: Context | None = None,
         links: Sequence[Link] = (), attributes: Mapping[str, Any] | None = None,
         linked_to: Iterable[str | None] = (),
         ) -> contextlib.AbstractContextManager[Span | None]:
    """A span, current inside the ``with``; an exception marks it failed. Nothing at all
    (``None``) while tracing is off. ``linked_to``: the traceparents of what a batch's span
    holds, linked as :func:`linked` says. Linked only once the span was recorded, a group
    commit holding a sampled request's command was kept only by its own trace id (a tenth
    as deployed, never with a ratio of 0): the request's trace did not reach it."""
    if not _enabled:
        return _NOTHING
    if linked_to:
        links = [*links, *linked(linked_to)]
    return _Current(_tracer.start_span(name, context=parent, kind=kind, links=links,
                                       attributes=attributes))


class _Current(contextlib.AbstractContextManager[Span]):
    """What ``Tracer.start_as_current_span`` does with the span it starts (``trace.use_span``
    with ``end_on_exit``): current inside the ``with``, an ``Exception`` recorded on it and
    its status set to error when it is recorded, ended at the exit. As a plain class: the
    SDK's nests two generator context managers and a decorator's wrapper, about a third of
    an unsampled request's span (the span of every HTTP request, most of them unsampled)."""

    __slots__ = ("_span", "_token")

    def __init__(self, one: Span) -> None:
        self._span = one

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        one = self._span
        try:
            otel_context.detach(self._token)
            # As use_span: an Exception (not a BaseException: GeneratorExit, a cancellation)
            # is an error of the span.
            if isinstance(exc, Exception) and one.is_recording():
                one.record_exception(exc)
                one.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            one.end()


def published(event_type: str, traceparent: str | None) -> str | None:
    """The relay publishes one event: a short span in the event's own trace (the request's
    that caused it; else the relay's batch), whose ``traceparent`` goes in the message's
    header, so the consumers' spans hang below it."""
    if not _enabled:
        return None
    if _not_recorded(traceparent):
        return traceparent
    one = _tracer.start_span(f"publish {event_type}", context=context_of(traceparent),
                             kind=SpanKind.PRODUCER)
    one.end()
    return traceparent_of(one)


class Applied(Protocol):
    """What a consumer's span reads of each message it applies (``shared.bus.consumer``'s
    item): the header always, the rest only of a message of a kept trace, and
    the event id when a command it causes is stamped."""

    @property
    def traceparent(self) -> str | None: ...
    @property
    def event_id(self) -> UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def case_id(self) -> UUID | None: ...


class _Causes(Mapping[UUID, str]):
    """Event id -> the message's own ``traceparent``, for the commands a batch's handler
    submits: made on the first look (at a command's commit; many batches cause none), a
    looked-up header checked then (a malformed one stamps nothing)."""

    __slots__ = ("_batch", "_made")

    def __init__(self, batch: Sequence[Applied]) -> None:
        self._batch = batch
        self._made: dict[UUID, str] | None = None

    def _all(self) -> dict[UUID, str]:
        if self._made is None:
            self._made = {m.event_id: tp for m in self._batch if (tp := m.traceparent)}
        return self._made

    def __getitem__(self, event_id: UUID) -> str:
        tp = self._all()[event_id]
        if _span_context(tp) is None and context_of(tp) is None:
            raise KeyError(event_id)
        return tp

    def get(self, event_id: UUID, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[event_id]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __bool__(self) -> bool:
        return bool(self._batch)


def _batch_links(batch: Sequence[Applied]) -> list[Link]:
    """A link to each message of ``batch`` whose trace is kept, saying which event it was
    (its type and case)."""
    links: list[Link] = []
    for message in batch:
        remote = _kept(message.traceparent)
        if remote is None:
            continue
        # Which event, by its type and case (``sixstep.case_id`` is how a case's spans are
        # found); its event id would be a third string made and exported for each.
        attributes = {"sixstep.event_type": message.type}
        if message.case_id is not None:
            attributes["sixstep.case_id"] = str(message.case_id)
        links.append(Link(remote, attributes))
    return links


@contextlib.contextmanager
def consuming(name: str, batch: Sequence[Applied]) -> Iterator[None]:
    """A consumer applies ``batch`` in one transaction: one span for it (kind consumer, a new
    trace, or the message's own when it holds one kept message), with a link to each message
    whose trace is kept, as OpenTelemetry's messaging
    conventions have a batch processed at once. The installed sampler keeps a span that links
    to a kept trace (``shared.runtime.tracing``), so every sampled message's trace reaches
    the batch that applied it. A command the handler submits with a message's event id as
    its ``causation_id`` is stamped with that message's own ``traceparent``
    (:func:`command_trace`): the events it causes go on in the message's trace.

    The span links at most :data:`MAX_LINKS` messages (the SDK's limit); the kept messages
    past them get a span of their own beside it, with the same name and the next links.
    Per message this is a header read and two character tests, and, only for a message of a
    kept trace, a link (a span per message cost ~55 us each, its export included)."""
    if not _enabled or not batch:
        yield
        return
    links = _batch_links(batch)
    attributes = {"sixstep.batch.size": len(batch), "messaging.system": "nats",
                  "messaging.operation.type": "process",
                  "messaging.batch.message_count": len(batch)}
    root = Context()
    # A batch holding one kept message (a quiet hour: most batches) is a child of its
    # ``publish`` span as well as linked to it: a case's trace shows the consumers that
    # applied its events, and Jaeger's search by ``sixstep.case_id`` finds them (it searches
    # a span's own attributes, not its links').
    parent = root
    if len(links) == 1:
        parent = trace.set_span_in_context(NonRecordingSpan(links[0].context))
        attributes.update(links[0].attributes or {})
    one = _tracer.start_span(name, context=parent, kind=SpanKind.CONSUMER,
                             links=links[:MAX_LINKS], attributes=attributes)
    more = [_tracer.start_span(name, context=root, kind=SpanKind.CONSUMER,
                               links=links[at:at + MAX_LINKS], attributes=attributes)
            for at in range(MAX_LINKS, len(links), MAX_LINKS)]
    token = _causes.set(_Causes(batch))
    batch_token = _batch_spans.set((one, *more))
    try:
        with _Current(one):
            yield
    except BaseException as exc:
        for other in more:
            other.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        _batch_spans.reset(batch_token)
        _causes.reset(token)
        for other in more:
            other.end()


def batch_failed(exc: BaseException) -> None:
    """The batch of the :func:`consuming` in hand failed in its transaction and is applied
    again message by message (each in a span of its own, :func:`applying`): its spans say
    so, with the exception, rather than ending as a success because the consumer went on."""
    for one in _batch_spans.get():
        if one.is_recording():
            one.record_exception(exc)
            one.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def applying(name: str, messages: Sequence[Applied]) -> Iterator[None]:
    """A consumer applies ``messages`` one at a time (a failed batch's events, each in a
    transaction of its own; a batch is :func:`consuming`'s): one span per message, in the
    message's own trace, open while the handler runs. A command the handler submits with
    the message's event id as its ``causation_id`` is stamped with that span
    (:func:`command_trace`). With one
    message, its span is also the current one (log lines carry its trace id). A message of a
    trace that is not sampled gets no span (:func:`_not_recorded`): its commands are stamped
    with its own ``traceparent``, and with one message that is the current context."""
    if not _enabled or not messages:
        yield
        return
    spans: list[Span] = []
    causes: dict[UUID, str] = {}
    current: Context | None = None
    for message in messages:
        if _not_recorded(message.traceparent):
            assert message.traceparent is not None
            causes[message.event_id] = message.traceparent
            if len(messages) == 1:
                current = context_of(message.traceparent)
            continue
        attributes = {"sixstep.event_id": str(message.event_id),
                      "sixstep.event_type": message.type}
        if message.case_id is not None:
            attributes["sixstep.case_id"] = str(message.case_id)
        one = _tracer.start_span(f"{name} {message.type}",
                                 context=context_of(message.traceparent),
                                 kind=SpanKind.CONSUMER, attributes=attributes)
        spans.append(one)
        if (tp := traceparent_of(one)) is not None:
            causes[message.event_id] = tp
    token = _causes.set(causes)
    if len(messages) == 1 and spans:
        current = trace.set_span_in_context(spans[0])
    attached = otel_context.attach(current) if current is not None else None
    try:
        yield
    except BaseException as exc:
        for one in spans:
            one.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        if attached is not None:
            otel_context.detach(attached)
        _causes.reset(token)
        for one in spans:
            one.end()


# -- what a command's events keep -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CommandTrace:
    """The trace a command was submitted in: the current span's, and, for a consumer's
    command, the trace of each message it may be caused by (event id -> traceparent)."""

    current: str | None
    causes: Mapping[UUID, str] | None


def command_trace() -> CommandTrace | None:
    """Taken when a command is submitted (in the caller's context); None while tracing is
    off."""
    if not _enabled:
        return None
    return CommandTrace(traceparent_of(trace.get_current_span()), _causes.get())


def _event_id(causation_id: object) -> UUID | None:
    """A command's ``causation_id`` (the text of the event id it answers) as the key of the
    causes, taken only for a command's events: the consumer no longer makes every message's
    event id a string (1.5 us a message) for the few that cause a command."""
    if isinstance(causation_id, UUID):
        return causation_id
    if not isinstance(causation_id, str):
        return None
    try:
        return UUID(causation_id)
    except ValueError:
        return None


def stamp(events: Iterable[Any], trace_: CommandTrace) -> None:
    """Write the command's trace into the meta of the events it recorded (before they are
    saved): the trace of the message that caused it (its own ``traceparent`` in a batch, its
    span when applied alone), else the span it was submitted in."""
    for event in events:
        meta = getattr(event, "meta", None)
        if not isinstance(meta, dict) or TRACEPARENT in meta:
            continue
        causes = trace_.causes
        tp = (causes.get(_event_id(meta.get("causation_id"))) if causes else None) \
            or trace_.current
        if tp is not None:
            meta[TRACEPARENT] = tp
