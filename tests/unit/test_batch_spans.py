"""A consumer applies a batch in one span, linked to each of its messages whose trace is kept
(OpenTelemetry's messaging conventions for a batch processed at once), and the commands it
causes go on in their message's trace. As deployed (a tenth of new traces kept) the batch's
span is kept whenever it holds a message of a kept trace, whatever its own trace id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanKind

from shared import tracing
from shared.runtime.tracing import LinkedOrRatio
from tests.tracing.memory import traced


class Msg(NamedTuple):
    event_id: uuid.UUID
    type: str
    case_id: uuid.UUID | None
    traceparent: str | None


def header(sampled: bool) -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-{'01' if sampled else '00'}"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """As deployed, but keeping no new trace by its id: only what a kept trace asks for."""
    with traced(ParentBased(LinkedOrRatio(0.0))) as exporter:
        yield exporter


def test_a_batch_is_one_span_linked_to_each_message_whose_trace_is_kept(
        exporter: InMemorySpanExporter) -> None:
    kept = Msg(uuid.uuid4(), "CaseResolved", uuid.uuid4(), header(sampled=True))
    batch = [Msg(uuid.uuid4(), "RequestHeard", uuid.uuid4(), header(sampled=False))
             for _ in range(30)]
    batch[17] = kept
    with tracing.consuming("consume followup-rules", batch):
        pass
    [one] = exporter.get_finished_spans()
    assert one.name == "consume followup-rules" and one.kind is SpanKind.CONSUMER
    assert one.attributes["sixstep.batch.size"] == 30
    [link] = one.links
    # One kept message: the batch is in its trace too, below its publish span, and found by
    # its case id (Jaeger searches a span's own attributes, not its links').
    assert one.parent is not None and one.parent.span_id == link.context.span_id
    assert one.context.trace_id == link.context.trace_id
    assert one.attributes["sixstep.case_id"] == str(kept.case_id)
    assert tracing.traceparent_of(NonRecordingSpan(link.context)) == \
        kept.traceparent
    assert dict(link.attributes) == {"sixstep.event_type": "CaseResolved",
                                     "sixstep.case_id": str(kept.case_id)}


def test_a_batch_of_traces_not_kept_records_nothing(exporter: InMemorySpanExporter) -> None:
    batch = [Msg(uuid.uuid4(), "RequestHeard", None, header(sampled=False)) for _ in range(30)]
    with tracing.consuming("consume followup-rules", batch):
        pass
    assert not exporter.get_finished_spans()


def test_more_kept_messages_than_a_span_links_get_a_span_beside_it(
        exporter: InMemorySpanExporter) -> None:
    batch = [Msg(uuid.uuid4(), "CaseOpened", None, header(sampled=True)) for _ in range(300)]
    with tracing.consuming("consume intake-cases", batch):
        pass
    spans = exporter.get_finished_spans()
    assert [len(s.links) for s in spans] == [128, 128, 44]
    linked = {link.context.span_id for s in spans for link in s.links}
    assert len(linked) == 300


class _Event:
    def __init__(self, causation_id: object) -> None:
        self.meta: dict[str, object] = {"causation_id": causation_id}


def test_a_command_goes_on_in_the_trace_of_the_message_it_answers(
        exporter: InMemorySpanExporter) -> None:
    """Sampled or not, a message's own ``traceparent`` is what the events its command
    records keep; one without a (well-formed) header leaves them the batch's."""
    sampled = Msg(uuid.uuid4(), "CaseResolved", uuid.uuid4(), header(sampled=True))
    unsampled = Msg(uuid.uuid4(), "CaseResolved", uuid.uuid4(), header(sampled=False))
    malformed = Msg(uuid.uuid4(), "CaseResolved", uuid.uuid4(), "00-not-a-trace-01")
    bare = Msg(uuid.uuid4(), "CaseResolved", uuid.uuid4(), None)
    batch = [sampled, unsampled, malformed, bare]
    with tracing.consuming("consume feedback-intake", batch):
        command = tracing.command_trace()
    assert command is not None
    [batch_span] = exporter.get_finished_spans()
    events = [_Event(str(m.event_id)) for m in batch]
    tracing.stamp(events, command)
    assert [e.meta[tracing.TRACEPARENT] for e in events] == [
        sampled.traceparent, unsampled.traceparent, tracing.traceparent_of(batch_span),
        tracing.traceparent_of(batch_span)]


def test_a_group_commit_holding_a_kept_request_is_kept_and_linked_to_it(
        exporter: InMemorySpanExporter) -> None:
    """Its span links to the requests whose commands it saved: the sampler sees the links as
    the span starts, so a kept request's group commit is kept, whatever its own trace id."""
    kept, other = header(sampled=True), header(sampled=False)
    with tracing.span("group commit", linked_to=[other, kept, None, kept, "00-bad-01"]):
        pass
    [one] = exporter.get_finished_spans()
    assert [tracing.traceparent_of(NonRecordingSpan(link.context)) for link in one.links] == [kept]


def test_a_batch_whose_transaction_failed_says_so_though_the_consumer_goes_on(
        exporter: InMemorySpanExporter) -> None:
    """The consumer catches a failed batch and applies it again message by message: its span
    ended as a success, with nothing saying the batch's transaction had failed."""
    batch = [Msg(uuid.uuid4(), "CaseOpened", None, header(sampled=True)) for _ in range(200)]
    with tracing.consuming("consume intake-cases", batch):
        tracing.batch_failed(ValueError("bad row"))
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for one in spans:
        assert one.status.status_code is tracing.StatusCode.ERROR
        assert [e.name for e in one.events] == ["exception"]
    tracing.batch_failed(ValueError("no batch open"))  # outside one: nothing to mark
