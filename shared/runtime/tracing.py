"""The OpenTelemetry SDK, wired from settings: spans go to the OTLP/HTTP collector that
``OTEL_EXPORTER_OTLP_ENDPOINT`` names, in batches, off the request's path. Unset, nothing is
installed and ``shared.tracing`` stays off (no span, no header, no meta key)."""

from __future__ import annotations

import structlog
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from shared import tracing
from shared.settings import ServiceName, Settings

log = structlog.get_logger("sixstep.tracing")


def start_tracing(settings: Settings, service: ServiceName) -> TracerProvider | None:
    """Trace this process as ``sixstep-<service>`` when an endpoint is set; None otherwise."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"sixstep-{service}",
                                  "service.namespace": "sixstep"}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg)))
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
