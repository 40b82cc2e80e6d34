"""The operations surface of a service: /health, /ready, /metrics and the /ops routes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.http.ops import install_ops
from shared.runtime.lifecycle import Runtime


def install_health(app: FastAPI, get_runtime: Callable[[], Runtime | None]) -> None:
    """The operations surface of a service: /health, /ready, /metrics (when the service did
    not install its own ``Metrics``: then only the runtime's counters), the /ops routes
    (``shared.ops``)."""
    install_ops(app, get_runtime)
    if not any(getattr(route, "path", None) == "/metrics" for route in app.routes):
        @app.get("/metrics", include_in_schema=False)
        async def _metrics() -> Response:
            runtime = get_runtime()
            body = generate_latest(runtime.metrics.registry) if runtime else b""
            return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["ops"], summary="Alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], summary=(
        "200 ready, or 200 degraded (serving; reasons say what needs attention and since "
        "when: parked rules, the relay not publishing for RELAY_STALL_S, a consumer's oldest "
        "unapplied event older than CONSUMER_LAG_DEGRADED_S), or 503 not_ready (store, NATS "
        "or consumer lag in messages; reasons say since when); warnings (e.g. the official "
        "holiday schedules end within CALENDAR_WARN_DAYS) never change the status"))
    async def ready() -> JSONResponse:
        runtime = get_runtime()
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        ok, checks = await runtime.readiness()
        # Degraded still serves (200): a parked rule must not take a pod out of rotation.
        state = "not_ready" if not ok else "degraded" if checks["degraded"] else "ready"
        return JSONResponse({"status": state, "reasons": checks["degraded"],
                             "warnings": checks["warnings"], "checks": checks},
                            status_code=200 if ok else 503)
