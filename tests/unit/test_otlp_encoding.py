"""The spans a service sends its collector are the bytes the SDK's own encoder makes, whatever
a span holds: the ordinary request's and group commit's spans written directly
(``shared.runtime.otlp``), anything else (events, bytes, a big int, a lone surrogate) by the
SDK's functions, in its place."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceFlags, TraceState

from shared.runtime import otlp
from shared.runtime.otlp import encoded

SERVICE = Resource.create({"service.name": "sixstep-intake", "service.namespace": "sixstep"})


def sdk_bytes(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializePartialToString()


class _Ids(RandomIdGenerator):
    def __init__(self, draw: random.Random) -> None:
        self.draw = draw

    def generate_span_id(self) -> int:
        return self.draw.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.draw.getrandbits(128) or 1


def recorded(resource: Resource = SERVICE, scope: str = "sixstep",
             ids: random.Random | None = None, memory: InMemorySpanExporter | None = None,
             limits: SpanLimits | None = None) -> tuple[Any, InMemorySpanExporter]:
    memory = memory or InMemorySpanExporter()
    provider = TracerProvider(resource=resource, span_limits=limits,
                              id_generator=_Ids(ids) if ids is not None else None)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider.get_tracer(scope), memory


def test_a_counters_write_and_its_group_commit_are_sent_as_the_sdk_sends_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tracer, memory = recorded()
    writes = []
    for n in range(40):
        with tracer.start_as_current_span("POST", kind=SpanKind.SERVER,
                                          attributes={"http.request.method": "POST"}) as span:
            span.update_name("POST /cases/{case_id}/hear")
            span.set_attribute("http.route", "/cases/{case_id}/hear")
            span.set_attribute("http.response.status_code", 201 if n % 7 else 500)
            span.set_attribute("sixstep.case_id", f"0f6c1e0e-6b57-4c57-9d5e-{n:012d}")
            if not n % 7:
                span.set_status(StatusCode.ERROR)
            writes.append(Link(span.get_span_context(), {"sixstep.event_type": "RequestHeard"}))
    with tracer.start_as_current_span("group commit", links=writes) as span:
        span.set_attribute("sixstep.writes", len(writes))
    spans = list(memory.get_finished_spans())
    expected = sdk_bytes(spans)
    # written directly, every one of them: the SDK's encoder of a span is not asked
    monkeypatch.setattr(otlp, "_encode_span", None)
    assert encoded(spans) == expected


def test_a_text_protobuf_cannot_hold_is_left_out_as_the_sdk_leaves_it() -> None:
    tracer, memory = recorded()
    with tracer.start_as_current_span("POST", attributes={"broken": "a\ud800",
                                                          "http.route": "/cases"}):
        pass
    spans = list(memory.get_finished_spans())
    assert encoded(spans) == sdk_bytes(spans)


def test_a_span_in_a_callers_trace_says_its_parent_is_remote() -> None:
    tracer, memory = recorded()
    caller = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("sixstep", "a1")]))
    with tracer.start_as_current_span("POST", context=set_span_in_context(
            NonRecordingSpan(caller))):
        with tracer.start_as_current_span("inside"):
            pass
    spans = list(memory.get_finished_spans())
    assert encoded(spans) == sdk_bytes(spans)


def test_spans_of_two_services_and_scopes_go_each_under_their_own() -> None:
    intake, memory = recorded()
    with intake.start_as_current_span("POST /cases"):
        pass
    # an equal resource that is another object groups with the first, as the SDK groups it
    same, memory_2 = recorded(Resource.create(dict(SERVICE.attributes)))
    with same.start_as_current_span("publish CaseOpened", kind=SpanKind.PRODUCER):
        pass
    followup, memory_3 = recorded(Resource.create({"service.name": "sixstep-followup"},
                                                  schema_url="https://example.org/s"), "rules")
    with followup.start_as_current_span("consume followup-rules", kind=SpanKind.CONSUMER):
        pass
    spans = [*memory.get_finished_spans(), *memory_3.get_finished_spans(),
             *memory_2.get_finished_spans()]
    assert encoded(spans) == sdk_bytes(spans)
    assert encoded([]) == sdk_bytes([])


scalars = st.one_of(
    st.text(max_size=40), st.text(min_size=130, max_size=200),
    st.booleans(), st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(), st.binary(max_size=8))
values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=4),
                   st.lists(st.integers(-1000, 1 << 40), max_size=4),
                   st.lists(st.booleans(), max_size=3), st.lists(st.floats(), max_size=3))
attributes = st.dictionaries(st.text(max_size=20), values, max_size=6)


@st.composite
def spans(draw: st.DrawFn) -> list[ReadableSpan]:
    # the limits a deployment may set (OTEL_SPAN_EVENT_COUNT_LIMIT=0 ...): dropped counts
    limit = st.sampled_from([None, 0, 1, 2])
    limits = SpanLimits(max_events=draw(limit), max_attributes=draw(limit),
                        max_links=draw(limit), max_link_attributes=draw(limit),
                        max_attribute_length=draw(st.sampled_from([None, 0, 3])))
    tracer, memory = recorded(ids=draw(st.randoms(use_true_random=False)), limits=limits)
    made = draw(st.integers(1, 4))
    links: list[Link] = []
    for _ in range(made):
        name = draw(st.text(max_size=300))
        kind = draw(st.sampled_from(list(SpanKind)))
        with tracer.start_as_current_span(name, kind=kind, links=links,
                                          attributes=draw(attributes)) as span:
            if draw(st.booleans()):
                span.add_event(draw(st.text(max_size=10)), draw(attributes))
            code = draw(st.sampled_from(list(StatusCode)))
            if code is not StatusCode.UNSET:
                span.set_status(code, draw(st.text(max_size=20)) if code is StatusCode.ERROR
                                else None)
            links = [Link(span.get_span_context(), draw(attributes))
                     for _ in range(draw(st.integers(0, 2)))]
    return list(memory.get_finished_spans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans())
def test_whatever_a_span_holds_its_bytes_are_the_sdks(made: list[ReadableSpan]) -> None:
    assert encoded(made) == sdk_bytes(made)


def test_a_span_whose_events_the_limit_dropped_still_says_how_many() -> None:
    """OTEL_SPAN_EVENT_COUNT_LIMIT=0 keeps no event (a failed write's exception included) and
    counts each one dropped: the SDK sends that count, and so must the direct encoder."""
    tracer, memory = recorded(limits=SpanLimits(max_events=0))
    with tracer.start_as_current_span("POST /cases") as span:
        span.record_exception(ValueError("the store refused the write"))
    spans = list(memory.get_finished_spans())
    assert spans[0].dropped_events == 1 and not spans[0].events
    assert encoded(spans) == sdk_bytes(spans)


def test_spans_of_equal_services_from_two_providers_keep_the_order_they_ended_in() -> None:
    """Two providers with equal resources (other objects), their spans interleaved in one
    batch: the SDK lists a scope's spans in the batch's order, and groups resources as a dict
    does (equal and of one hash: ``1`` and ``True`` are equal, their JSON is not)."""
    first, memory = recorded()
    second, _ = recorded(Resource.create(dict(SERVICE.attributes)), memory=memory)
    for tracer, name in ((first, "POST /cases"), (second, "publish CaseOpened"),
                         (first, "POST /cases/{case_id}/hear")):
        with tracer.start_as_current_span(name):
            pass
    spans = list(memory.get_finished_spans())
    assert encoded(spans) == sdk_bytes(spans)
    one, memory_1 = recorded(Resource({"sixstep.replica": 1}))
    true, memory_2 = recorded(Resource({"sixstep.replica": True}))
    with one.start_as_current_span("a"), true.start_as_current_span("b"):
        pass
    spans = [*memory_1.get_finished_spans(), *memory_2.get_finished_spans()]
    assert encoded(spans) == sdk_bytes(spans)
