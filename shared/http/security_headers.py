"""The headers every response of every service carries, so that a page of the clerk's screen,
the board or the survey cannot be framed by another site, run a script it did not ship, or
hand its URL (a survey token) to the next site in ``Referer``.

* Pages (``text/html``): a Content-Security-Policy that allows the service's own scripts,
  styles, images and API calls (and calls to the identity provider's origin, ``OIDC_ISSUER``,
  where staff sign in) and nothing else: no inline script or style attribute, no
  other origin, no framing (``frame-ancestors 'none'``, and ``X-Frame-Options: DENY`` for
  older browsers). The pages keep to it (``tests/pages`` fails on any violation).
* The API docs (``/docs``, ``/redoc``): FastAPI's pages load Swagger UI and ReDoc from their
  CDN with an inline start-up script, so their policy allows exactly that, and still no
  framing. They hold no data.
* Everything else (JSON): ``default-src 'none'``; nothing in it is meant to be rendered.
* Every response: ``Referrer-Policy: no-referrer``, ``X-Content-Type-Options: nosniff``.
* Answers that carry data (JSON, problem+JSON, the Open311 XML, CSV): ``Cache-Control:
  no-store``. A resident's name, ID number and phone (``GET /residents/{id}``), a case's
  words, a survey: no browser, WebView or proxy cache keeps a copy on the counter's disk,
  where it would outlive the resident's erasure and the clerk's signing out. The pages'
  own calls asked for no-store already (``ui.js``); a counter app's plain ``fetch`` did not,
  and the answers said nothing. Pages, scripts, styles and images stay cacheable: they hold
  no data.

A header a route sets itself is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
               " font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none';"
               " form-action 'self'; frame-ancestors 'none'")
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
               " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net"
               " https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com;"
               " img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly;"
               " worker-src 'self' blob:; connect-src 'self'; object-src 'none';"
               " base-uri 'none'; frame-ancestors 'none'")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
NO_STORE = (b"cache-control", b"no-store")
#: The media types of answers that carry data (``+json`` types too; not ``image/svg+xml``).
DATA_TYPES = frozenset({"application/json", "application/xml", "text/xml", "text/csv"})
ALWAYS = ((b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff"),
          (b"x-frame-options", b"DENY"))


def page_policy(connect: Iterable[str] = ()) -> str:
    """The pages' policy; ``connect``: other origins their scripts may call (the identity
    provider's, for discovery and its token endpoint)."""
    extra = "".join(f" {origin}" for origin in connect)
    return PAGE_POLICY.replace("connect-src 'self';", f"connect-src 'self'{extra};")


def policy_for(path: str, content_type: str, page: str = PAGE_POLICY) -> str:
    if path in DOCS_PATHS:
        return DOCS_POLICY
    if content_type.startswith("text/html"):
        return page
    return API_POLICY


def holds_data(content_type: str) -> bool:
    """Whether an answer of ``content_type`` carries data (no cache may keep it)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in DATA_TYPES or media.endswith("+json")


#: What :func:`secured` adds, by everything that decides it: the answer's header names as sent,
#: its content type, whether the path is the docs', the pages' policy. A service answers with
#: a handful of such shapes (a write's JSON, an error, a page, a script): bounded all the same.
_ADDED: dict[tuple[tuple[bytes, ...], bytes, bool, str], list[tuple[bytes, bytes]]] = {}
_ADDED_MAX = 1024


def secured(headers: list[tuple[bytes, bytes]], path: str,
            page: str = PAGE_POLICY) -> list[tuple[bytes, bytes]]:
    """An answer's ``headers`` with the headers above added (those it sets itself kept);
    ``path``: the request's, ``page``: the pages' policy (:func:`page_policy`). The front
    door (``shared.http.front_door``) puts them on every answer."""
    content_type: bytes | None = None
    for name, value in headers:  # the first, as the answer's own reader takes it
        if name.lower() == b"content-type":
            content_type = value
            break
    shape = (tuple([name for name, _ in headers]), content_type or b"", path in DOCS_PATHS, page)
    extra = _ADDED.get(shape)
    if extra is None:
        extra = _added(headers, (content_type or b"").decode("latin-1"), path, page)
        if len(_ADDED) < _ADDED_MAX:
            _ADDED[shape] = extra
    return headers + extra


def _added(headers: list[tuple[bytes, bytes]], content_type: str, path: str,
           page: str) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    extra = [(n, v) for n, v in ALWAYS if n not in present]
    if b"content-security-policy" not in present:
        extra.append((b"content-security-policy",
                      policy_for(path, content_type, page).encode()))
    if b"cache-control" not in present and holds_data(content_type):
        extra.append(NO_STORE)
    return extra
