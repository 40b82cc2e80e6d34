"""Traces across services: OpenTelemetry spans, and the W3C ``traceparent`` that ties a
resident's case together from the counter's request to the survey and the follow-up it
causes (``spans.py``). Only the OpenTelemetry API is used here; the SDK and its OTLP
exporter are wired by ``shared.runtime.tracing`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
Low in the layers, so the store, the bus and the HTTP surface all use it."""

from opentelemetry.trace import SpanKind, StatusCode

from shared.tracing.spans import (
    TRACEPARENT,
    Applied,
    CommandTrace,
    applying,
    batch_failed,
    command_trace,
    consuming,
    context_of,
    current_ids,
    current_traceparent,
    enabled,
    install,
    linked,
    published,
    span,
    stamp,
    traceparent_of,
)

__all__ = [
    "TRACEPARENT",
    "Applied",
    "CommandTrace",
    "SpanKind",
    "StatusCode",
    "applying",
    "batch_failed",
    "command_trace",
    "consuming",
    "context_of",
    "current_ids",
    "current_traceparent",
    "enabled",
    "install",
    "linked",
    "published",
    "span",
    "stamp",
    "traceparent_of",
]
