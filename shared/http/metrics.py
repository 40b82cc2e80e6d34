"""Every request counted and timed into the service's metrics, and ``/metrics`` to scrape them."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.middleware import add_http_middleware
from shared.runtime.metrics import Metrics


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Count and time every request (a plain ASGI middleware: no per-request task)."""

    async def measure(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await inner(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.requests.labels(metrics.service, scope["method"], path,
                                    str(status[0])).inc()
            metrics.latency.labels(metrics.service, path).observe(
                time.perf_counter() - start)

    add_http_middleware(app, measure)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
