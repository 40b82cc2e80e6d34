"""Ops point the services at their collector with OTEL_EXPORTER_OTLP_ENDPOINT and see the
spans arrive, named for the service; the log lines written inside a span name its trace."""

from __future__ import annotations

import contextlib
import gzip
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import structlog
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.intake.main import create_app as intake_app
from shared import tracing
from shared.runtime.logs import log_processors
from shared.runtime.otlp import DirectOTLPSpanExporter
from shared.runtime.tracing import start_tracing, stop_tracing
from shared.settings import Settings
from tests.feedback.test_feedback_loop import CENTER
from tests.support import headers, running, serving


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP receiver: decodes each protobuf export it is sent, keeps (service, span
    name, trace id) of every span."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[tuple[str, str, str]] = []
        self.paths: list[str] = []
        self.bodies: list[bytes] = []  # as sent (after any decompression)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        self.server.bodies.append(body)
        self.server.paths.append(self.path)
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                self.server.spans.extend((service, s.name, s.trace_id.hex())
                                         for s in scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


def collector() -> contextlib.AbstractContextManager[Collector]:
    return serving(Collector())


async def test_spans_reach_the_collector_the_endpoint_names(settings: Settings) -> None:
    with collector() as otlp:
        settings = settings.model_copy(update={"otel_exporter_otlp_endpoint": otlp.url + "/"})
        async with running(intake_app(settings)) as intake:
            assert tracing.enabled()
            r = await intake.post("/cases", headers=headers("trace-export-1"), json={
                "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
                "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY"})
            assert r.status_code == 201, r.text
        # Stopping the service sent what was buffered, and turned tracing off again.
        assert not tracing.enabled()
        assert set(otlp.paths) == {"/v1/traces"}
        [(service, _, trace_id)] = [s for s in otlp.spans if s[1] == "POST /cases"]
        assert service == "sixstep-intake"
        assert ("sixstep-intake", "group commit") in {s[:2] for s in otlp.spans}
        assert ("sixstep-intake", "publish CaseOpened", trace_id) in otlp.spans


def test_the_exporter_posts_the_bytes_the_sdks_encoder_makes() -> None:
    """The services' exporter is the SDK's with its batches encoded directly
    (``shared.runtime.otlp``): the collector gets the SDK's very bytes, and a shut-down
    exporter sends nothing, as the SDK's."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("sixstep").start_as_current_span("POST /cases",
                                                             kind=SpanKind.SERVER):
        pass
    spans = list(memory.get_finished_spans())
    with collector() as otlp:
        exporter = DirectOTLPSpanExporter(endpoint=otlp.url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert exporter.export(spans) is SpanExportResult.FAILURE
    assert otlp.bodies == [encode_spans(spans).SerializePartialToString()]


def test_a_log_line_written_inside_a_span_names_its_trace() -> None:
    provider = TracerProvider()
    tracing.install(provider)
    out = io.StringIO()
    logger = structlog.wrap_logger(structlog.PrintLogger(out), processors=log_processors())
    try:
        with tracing.span("POST /cases/{case_id}/resolve") as span:
            logger.info("case.resolved")
        logger.info("outside")
    finally:
        tracing.install(None)
        provider.shutdown()
    inside, outside = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert span is not None
    assert inside["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert inside["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert "trace_id" not in outside


def test_a_service_stops_at_once_when_its_collector_is_down(settings: Settings) -> None:
    """The SDK's own shutdown retried the last spans for 30 s: a service stopping with its
    collector down outlived compose's 10 s and Kubernetes' 30 s and was killed."""
    with socket.socket() as closed:  # a port nobody listens on: the collector is down
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = settings.model_copy(
        update={"otel_exporter_otlp_endpoint": f"http://127.0.0.1:{port}"})
    provider = start_tracing(settings, "intake")
    for _ in range(2_000):  # a few batches buffered
        with tracing.span("POST /cases"):
            pass
    stopping = threading.Thread(target=stop_tracing, args=(provider, 0.1), daemon=True)
    stopping.start()
    stopping.join(15)
    assert not stopping.is_alive(), "the service's stop waited on a collector that is down"
    assert not tracing.enabled()
