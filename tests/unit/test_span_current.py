"""``tracing.span`` does what the SDK's ``start_as_current_span`` does, without its nested
generator context managers (a third of an unsampled HTTP request's span): the same spans
exported, the same current span inside, an exception recorded and the status an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from shared import tracing
from tests.tracing.memory import traced


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    with traced(ALWAYS_ON) as exporter:
        yield exporter


def _story(start: Any) -> None:
    """A request's span with a step inside it, then one that fails at the counter."""
    with start("POST", kind=trace.SpanKind.SERVER, attributes={"http.request.method": "POST"}):
        outer = trace.get_current_span()
        with start("group commit"):
            assert trace.get_current_span() is not outer
        assert trace.get_current_span() is outer
    with pytest.raises(KeyError), start("POST /cases/{case_id}/resolve"):
        raise KeyError("case")
    with pytest.raises(GeneratorExit), start("cancelled"):
        raise GeneratorExit


def _shape(exporter: InMemorySpanExporter) -> list[tuple[Any, ...]]:
    return [(s.name, s.kind, dict(s.attributes or {}), s.status.status_code,
             s.status.description, [(e.name, dict(e.attributes or {}).get("exception.type"))
                                    for e in s.events], s.parent is not None,
             s.end_time is not None) for s in exporter.get_finished_spans()]


def test_a_span_is_what_the_sdk_s_current_span_would_be(
        exported: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    tracer = tracing.spans._tracer
    _story(lambda name, **kw: tracer.start_as_current_span(name, **kw))
    theirs = _shape(exported)
    exported.clear()

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("start_as_current_span: two generator context managers a span")

    monkeypatch.setattr(type(tracer), "start_as_current_span", refused)
    _story(tracing.span)
    assert _shape(exported) == theirs
    assert theirs[2][3] == trace.StatusCode.ERROR and theirs[2][5] == [("exception",
                                                                         "KeyError")]
    assert theirs[3][3] == trace.StatusCode.UNSET, "a BaseException is not the span's error"


def test_an_unsampled_span_is_current_and_exports_nothing() -> None:
    with traced(ALWAYS_OFF) as exporter:
        with tracing.span("POST") as one:
            assert one is not None and not one.is_recording()
            assert trace.get_current_span() is one
            assert tracing.current_traceparent() is not None
        assert trace.get_current_span() is not one
    assert exporter.get_finished_spans() == ()
