"""A span for every HTTP request, in the caller's trace when it sent a ``traceparent``."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing
from shared.http.middleware import add_http_middleware

_TRACEPARENT = tracing.TRACEPARENT.encode()


async def traced_request(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Hand an HTTP request to ``inner`` inside its span (see :func:`install_tracing`); the
    front door (``shared.http.front_door``) calls it first thing, as the outermost step of
    every request of a service's app."""
    if not tracing.enabled():
        await inner(scope, receive, send)
        return
    caller = None
    for name, value in scope["headers"]:  # the last one, as a dict of them would keep
        if name == _TRACEPARENT:
            caller = value
    method = scope["method"]
    with tracing.span(method, kind=tracing.SpanKind.SERVER,
                      parent=tracing.context_of(caller.decode("latin-1") if caller else None),
                      attributes={"http.request.method": method}) as span:
        assert span is not None
        if not span.is_recording():  # not sampled: the span only carries the trace on
            await inner(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                span.set_attribute("http.response.status_code", message["status"])
                if message["status"] >= 500:
                    span.set_status(tracing.StatusCode.ERROR)
            await send(message)

        try:
            await inner(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            case_id = (scope.get("path_params") or {}).get("case_id")
            if case_id is not None:
                span.set_attribute("sixstep.case_id", str(case_id))


def install_tracing(app: FastAPI) -> None:
    """Each request runs in a server span named for its route (``POST
    /cases/{case_id}/resolve``), with the status and, for a case's route, the case id as
    attributes: never the query string or the body (they may hold personal data). The events
    the request records keep this span's ``traceparent`` (``shared.tracing``). While tracing
    is off a request pays one call and a flag's test.

    A service's app has it from its front door (``shared.http.app.install_surface``); this
    adds it as a middleware of its own to another app."""
    add_http_middleware(app, traced_request)
