"""The OpenTelemetry SDK, wired from settings: spans go to the OTLP/HTTP collector that
``OTEL_EXPORTER_OTLP_ENDPOINT`` names, in batches, off the request's path (encoded by
``shared.runtime.otlp``: the SDK's bytes, a few times cheaper). Unset, nothing is
installed and ``shared.tracing`` stays off (no span, no header, no meta key)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from weakref import WeakKeyDictionary

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
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from shared import tracing
from shared.runtime.otlp import DirectOTLPSpanExporter
from shared.settings import ServiceName, Settings

log = structlog.get_logger("sixstep.tracing")

#: How long a stopping service waits for its last spans to reach the collector, then as long
#: again for the exporter to give up. The SDK's own shutdown waits up to 30 s for a collector
#: that is down (each batch retried with back-off for ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s):
#: a service stopping while its collector was down outlived compose's 10 s and Kubernetes'
#: 30 s of grace and was killed, its stop never said.
STOP_WAIT_S = 3.0
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
#: A dropped span's sampling result: nothing in it but the decision (the SDK only reads it).
_DROPPED = SamplingResult(Decision.DROP, None, None)
_exporters: WeakKeyDictionary[TracerProvider, OTLPSpanExporter] = WeakKeyDictionary()


class LinkedOrRatio(Sampler):
    """A new trace's sampler: a span linked to a kept (sampled) trace is kept too, the others
    by ``ratio`` of their trace id. A consumer applies a batch in one span linked to each of
    its messages of a kept trace (``shared.tracing.consuming``): so the batch that applied a
    sampled message is always there to see, whatever its own trace id.

    The ratio is ``TraceIdRatioBased``'s, decided here: every request of every service asks
    (its span's trace is new), and nine in ten are dropped, each with the same answer (no
    attributes, the parent's trace state: none, as a new trace has no parent), which is made
    once."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)
        self._bound = self._ratio.bound

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if links and any(link.context.trace_flags.sampled for link in links):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        parent = _parent_trace_state(parent_context)
        if trace_id & _TRACE_ID_LIMIT < self._bound:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent)
        return _DROPPED if parent is None else SamplingResult(Decision.DROP, None, parent)

    def get_description(self) -> str:
        return f"LinkedOrRatio{{{self._ratio.get_description()}}}"


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    """The trace state of the span ``parent_context`` holds (the current one for None), as
    ``TraceIdRatioBased`` passes it on; None for no valid parent."""
    parent = get_current_span(parent_context).get_span_context()
    return parent.trace_state if parent is not None and parent.is_valid else None


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
    # The SDK's exporter, its batches encoded a few times cheaper (shared.runtime.otlp)
    exporter = _exporters[provider] = DirectOTLPSpanExporter(endpoint=url)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing.install(provider)
    log.info("tracing.started", service=service, endpoint=url)
    return provider


def stop_tracing(provider: TracerProvider | None, wait_s: float = STOP_WAIT_S) -> None:
    """Send what is buffered, then stop tracing (on the service's way out): what the
    collector has not taken within ``wait_s`` (it is down, or slow) is dropped, said once."""
    if provider is None:
        return
    tracing.install(None)
    stopping = threading.Thread(target=provider.shutdown, name="sixstep-tracing-stop",
                                daemon=True)
    stopping.start()
    stopping.join(wait_s)
    if stopping.is_alive():
        log.warning("tracing.spans_unsent", waited_s=wait_s,
                    hint="the collector did not take the last spans (OTEL_EXPORTER_OTLP_ENDPOINT)")
        exporter = _exporters.get(provider)
        if exporter is not None:
            exporter.shutdown()  # its retries stop: the rest of the queue fails at once
        stopping.join(wait_s)
