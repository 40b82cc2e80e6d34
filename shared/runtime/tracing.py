"""The OpenTelemetry SDK, wired from settings: spans go to the OTLP/HTTP collector that
``OTEL_EXPORTER_OTLP_ENDPOINT`` names, in batches, off the request's path. Unset, nothing is
installed and ``shared.tracing`` stays off (no span, no header, no meta key)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from shared import tracing
from shared.settings import ServiceName, Settings

log = structlog.get_logger("sixstep.tracing")


class LinkedOrRatio(Sampler):
    """A new trace's sampler: a span linked to a kept (sampled) trace is kept too, the others
    by ``ratio`` of their trace id. A consumer applies a batch in one span linked to each of
    its messages of a kept trace (``shared.tracing.consuming``): so the batch that applied a
    sampled message is always there to see, whatever its own trace id."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if links and any(link.context.trace_flags.sampled for link in links):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes,
                                         links, trace_state)

    def get_description(self) -> str:
        return f"LinkedOrRatio{{{self._ratio.get_description()}}}"


def start_tracing(settings: Settings, service: ServiceName) -> TracerProvider | None:
    """Trace this process as ``sixstep-<service>`` when an endpoint is set; None otherwise."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"sixstep-{service}",
                                  "service.namespace": "sixstep"}),
        sampler=ParentBased(LinkedOrRatio(settings.otel_traces_sampler_arg)))
    url = f"{endpoint.rstrip('/')}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    tracing.install(provider)
    log.info("tracing.started", service=service, endpoint=url)
    return provider


def stop_tracing(provider: TracerProvider | None) -> None:
    """Send what is buffered, then stop tracing (on the service's way out)."""
    if provider is None:
        return
    tracing.install(None)
    provider.shutdown()
