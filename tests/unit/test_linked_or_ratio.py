"""The deployed sampler of a new trace (``LinkedOrRatio``) keeps a span linked to a kept trace,
and the others by the ratio of their trace id exactly as OpenTelemetry's ``TraceIdRatioBased``
does: same decision, attributes and trace state. Every request's span asks it, nine in ten
are dropped, and a dropped new trace's answer is made once, not once a request."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from shared.runtime.tracing import LinkedOrRatio

ATTRIBUTES = {"http.request.method": "POST"}


def _parent(kind: int) -> Context | None:
    """No parent, an empty context, an invalid span's, or a valid remote span with a state."""
    if kind == 0:
        return None
    if kind == 1:
        return Context()
    if kind == 2:
        return trace.set_span_in_context(NonRecordingSpan(SpanContext(0, 0, False)), Context())
    return trace.set_span_in_context(NonRecordingSpan(SpanContext(
        0x5EED, 0xBEEF, is_remote=True, trace_flags=TraceFlags(kind % 2),
        trace_state=TraceState([("vendor", f"v{kind}")]))), Context())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.integers(1, 2**128 - 1),
       st.integers(0, 5), st.booleans())
def test_a_span_without_a_kept_link_is_kept_as_the_ratio_of_its_trace_id_says(
        ratio, trace_id, parent_kind, with_attributes):
    parent = _parent(parent_kind)
    attributes = ATTRIBUTES if with_attributes else None
    ours = LinkedOrRatio(ratio).should_sample(parent, trace_id, "POST", None, attributes, ())
    theirs = TraceIdRatioBased(ratio).should_sample(parent, trace_id, "POST", None, attributes,
                                                    ())
    assert ours.decision is theirs.decision
    assert dict(ours.attributes) == dict(theirs.attributes)
    assert ours.trace_state == theirs.trace_state


def test_a_span_linked_to_a_kept_trace_is_kept_whatever_its_id():
    kept = Link(SpanContext(7, 8, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    result = LinkedOrRatio(0.0).should_sample(None, 2**64 - 1, "consume", None, ATTRIBUTES,
                                              [kept])
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes) == ATTRIBUTES


def test_a_dropped_new_trace_is_answered_by_one_result_made_once():
    sampler = LinkedOrRatio(0.1)
    dropped = [sampler.should_sample(None, trace_id, "POST", None, ATTRIBUTES, ())
               for trace_id in (2**64 - 1, 2**63, 2**128 - 1)]
    assert all(one.decision is Decision.DROP for one in dropped)
    assert dropped[0] is dropped[1] is dropped[2]
    assert not dropped[0].attributes and dropped[0].trace_state is None


# redteam112: the deployed sampler as start_tracing builds it (ParentBased around it), spans
# exported or not; the fraction kept over many trace ids, the same ids every run.
def _traced(ratio: float) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(LinkedOrRatio(ratio)))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("redteam112"), exported


def _remote(sampled: bool, trace_id: int = 0x5EED) -> SpanContext:
    return SpanContext(trace_id, 0xBEEF, is_remote=True,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))


@pytest.mark.parametrize("ratio", [0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_the_fraction_kept_is_the_ratio_over_many_trace_ids(ratio):
    ids = random.Random(112).getrandbits
    ours, theirs = LinkedOrRatio(ratio), TraceIdRatioBased(ratio)
    kept = 0
    for _ in range(20_000):
        trace_id = ids(128)
        decision = ours.should_sample(None, trace_id, "POST", None, ATTRIBUTES, ()).decision
        assert decision is theirs.should_sample(None, trace_id, "POST").decision, trace_id
        kept += decision.is_sampled()
    assert abs(kept / 20_000 - ratio) < 0.01


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_the_ids_at_the_bound_are_decided_as_the_sdk_decides_them(ratio):
    bound = TraceIdRatioBased(ratio).bound
    for low in {0, 1, max(bound - 1, 0), bound, bound + 1, 2**64 - 1}:
        for high in (0, 1, 2**63, 2**64 - 1):
            trace_id = (high << 64) | (low & (2**64 - 1))
            if trace_id == 0:
                continue
            ours = LinkedOrRatio(ratio).should_sample(None, trace_id, "POST")
            theirs = TraceIdRatioBased(ratio).should_sample(None, trace_id, "POST")
            assert ours.decision is theirs.decision, (ratio, hex(trace_id))


def test_at_ratio_one_every_span_is_exported_and_at_zero_only_the_linked_and_children():
    tracer, exported = _traced(1.0)
    for _ in range(200):
        with tracer.start_as_current_span("POST /cases"):
            pass
    assert len(exported.get_finished_spans()) == 200

    tracer, exported = _traced(0.0)
    for _ in range(200):
        with tracer.start_as_current_span("POST /cases"):
            pass
    assert exported.get_finished_spans() == ()
    with tracer.start_as_current_span("apply batch", links=[Link(_remote(True, 7))]):
        pass
    with tracer.start_as_current_span("apply batch", links=[Link(_remote(False, 7))]):
        pass
    kept_parent = trace.set_span_in_context(NonRecordingSpan(_remote(True)))
    with tracer.start_as_current_span("POST /cases", context=kept_parent):
        pass
    assert [s.name for s in exported.get_finished_spans()] == ["apply batch", "POST /cases"]


def test_a_child_follows_its_parents_decision_whatever_the_ratio():
    for ratio in (0.0, 1.0):
        tracer, exported = _traced(ratio)
        for sampled in (True, False):
            parent = trace.set_span_in_context(NonRecordingSpan(_remote(sampled)))
            with tracer.start_as_current_span("child", context=parent):
                pass
        spans = exported.get_finished_spans()
        assert [s.context.trace_id for s in spans] == [0x5EED], ratio
    tracer, exported = _traced(0.0)
    with tracer.start_as_current_span("kept", links=[Link(_remote(True, 9))]) as root:
        with tracer.start_as_current_span("inner"):
            pass
    assert [s.name for s in exported.get_finished_spans()] == ["inner", "kept"]
    assert root.get_span_context().trace_flags.sampled


def test_a_dropped_answer_shared_by_every_request_is_never_changed_by_one():
    tracer, exported = _traced(0.0)
    for i in range(50):
        with tracer.start_as_current_span("POST /cases", attributes={"n": i}) as span:
            span.set_attribute("x", i)
    result = LinkedOrRatio(0.0).should_sample(None, 2**64 - 1, "POST", None, ATTRIBUTES, ())
    assert result.decision is Decision.DROP and dict(result.attributes) == {}
    assert result.trace_state is None and exported.get_finished_spans() == ()
