"""Every request counted and timed by its route, with the registry's labelled children found
once per (method, route, status), not asked of the registry on each request."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import Counter, Histogram

from shared.http.metrics import record_request
from shared.runtime.metrics import Metrics


class _Route:
    path = "/cases"


def test_a_morning_at_the_counter_is_counted_by_route_and_status(
        monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics("intake")
    asked: list[tuple[str, ...]] = []
    for kind in (Counter, Histogram):
        labels = kind.labels

        def counted(self: Any, *values: str, _labels: Any = labels) -> Any:
            asked.append(values)
            return _labels(self, *values)

        monkeypatch.setattr(kind, "labels", counted)
    opened = {"type": "http", "method": "POST", "route": _Route()}
    for _ in range(5):
        record_request(metrics, opened, 201, 0.004)
    record_request(metrics, opened, 409, 0.003)
    record_request(metrics, {"type": "http", "method": "GET"}, 404, 0.001)
    sample = metrics.registry.get_sample_value
    assert sample("sixstep_http_requests_total", {
        "service": "intake", "method": "POST", "route": "/cases", "status": "201"}) == 5
    assert sample("sixstep_http_requests_total", {
        "service": "intake", "method": "POST", "route": "/cases", "status": "409"}) == 1
    assert sample("sixstep_http_requests_total", {
        "service": "intake", "method": "GET", "route": "unmatched", "status": "404"}) == 1
    assert sample("sixstep_http_request_seconds_count",
                  {"service": "intake", "route": "/cases"}) == 6
    assert sample("sixstep_http_request_seconds_sum",
                  {"service": "intake", "route": "/cases"}) == pytest.approx(0.023)
    assert len(asked) == 6, "each child found once: (201, 409, 404) x (count, time)"
