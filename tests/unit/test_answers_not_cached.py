"""An answer that carries a resident's data is kept by no cache: a copy in the counter
computer's browser cache would outlive the resident's erasure and the clerk's signing out.
Pages, scripts and styles hold no data and stay cacheable; a route's own Cache-Control
(the public figures page's) is kept."""

from __future__ import annotations

import pytest

from shared.http.security_headers import (
    API_POLICY,
    DOCS_POLICY,
    PAGE_POLICY,
    page_policy,
    secured,
)


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


def test_answers_of_one_shape_still_get_each_path_s_and_page_s_policy() -> None:
    """secured() keeps what it adds by the answer's shape: the path's kind and the pages'
    policy are part of that shape, a header's value other than the content type is not."""
    def policy(path: str, content_type: bytes, page: str = PAGE_POLICY, length: bytes = b"2"
               ) -> bytes:
        headers = secured([(b"content-length", length), (b"content-type", content_type)],
                          path, page)
        assert headers[:2] == [(b"content-length", length), (b"content-type", content_type)]
        return dict(headers)[b"content-security-policy"]

    html = b"text/html; charset=utf-8"
    assert policy("/counter", html) == PAGE_POLICY.encode()
    assert policy("/docs", html) == DOCS_POLICY.encode()
    other = page_policy(["https://idp.example"])
    assert policy("/counter", html, other) == other.encode()
    assert policy("/counter", html, length=b"7") == PAGE_POLICY.encode()
    assert policy("/counter", b"application/json") == API_POLICY.encode()
