"""The deployed sampler of a new trace (``LinkedOrRatio``) keeps a span linked to a kept trace,
and the others by the ratio of their trace id exactly as OpenTelemetry's ``TraceIdRatioBased``
does: same decision, attributes and trace state. Every request's span asks it, nine in ten
are dropped, and a dropped new trace's answer is made once, not once a request."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
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
