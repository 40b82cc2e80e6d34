"""An answer that carries a resident's data is kept by no cache: a copy in the counter
computer's browser cache would outlive the resident's erasure and the clerk's signing out.
Pages, scripts and styles hold no data and stay cacheable; a route's own Cache-Control
(the public figures page's) is kept."""

from __future__ import annotations

import pytest

from shared.http.security_headers import secured


def _cache_control(content_type: str, *own: tuple[bytes, bytes]) -> str | None:
    headers = secured([(b"content-type", content_type.encode()), *own], "/residents/x")
    values = [v.decode() for n, v in headers if n.lower() == b"cache-control"]
    assert len(values) <= 1, values
    return values[0] if values else None


@pytest.mark.parametrize("content_type", [
    "application/json", "application/problem+json", "application/json; charset=utf-8",
    "text/xml; charset=utf-8", "application/xml", "text/csv; charset=utf-8"])
def test_a_residents_data_read_at_the_counter_is_kept_by_no_cache(content_type: str) -> None:
    assert _cache_control(content_type) == "no-store"


@pytest.mark.parametrize("content_type", [
    "text/html; charset=utf-8", "text/javascript", "application/javascript", "text/css",
    "image/png", "image/svg+xml", "text/plain; version=0.0.4"])
def test_pages_scripts_and_styles_hold_no_data_and_stay_cacheable(content_type: str) -> None:
    assert _cache_control(content_type) is None


def test_a_routes_own_cache_control_is_kept() -> None:
    own = (b"Cache-Control", b"public, max-age=300")
    assert _cache_control("application/json", own) == "public, max-age=300"
