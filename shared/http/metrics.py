"""Every request counted and timed into the service's metrics, and ``/metrics`` to scrape them."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Scope

from shared.runtime.metrics import Metrics


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """``/metrics`` to scrape ``metrics``; the front door (``shared.http.front_door``) counts
    and times every request into them (:func:`record_request`)."""

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def record_request(metrics: Metrics, scope: Scope, status: int, seconds: float) -> None:
    """One request answered ``status`` after ``seconds``, by its route's path pattern."""
    metrics.answered(scope["method"], getattr(scope.get("route"), "path", "unmatched"), status,
                     seconds)
