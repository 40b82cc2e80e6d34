"""The front door: the one ASGI middleware every request of every service passes through before
its route, doing in one place what six middlewares did in turn.

In this order, as the six nested middlewares did (outermost first):

0. the request's span (``shared.http.tracing``), whatever answers it;
1. a write's answer is due ``WRITE_TIMEOUT_S`` from now (``shared.http.deadline``), and its
   arrival on the service's clock is kept (``group_commit.arrived_at``: its ``sent_at`` is
   measured against it, not against when the command path runs);
2. the correlation id is found and bound into the log context (``shared.http.correlation``);
3. the request is counted and timed, by its route, whatever answers it (``shared.http.metrics``);
4. the request limits refuse a NUL character or a body too large (``shared.http.limits``);
5. authentication (``shared.http.auth``) answers 401/403/503 or hands the request, with its
   principal, to the routes: a write route of a ``FastRoute`` router directly
   (``shared.http.direct_writes``), anything else through FastAPI's stack.

Every answer, a 401 or a 413 as well as a route's, leaves with ``X-Correlation-Id`` and the
security headers (``shared.http.security_headers``), in that order after its own headers.
So does a 500: what no exception handler answers (a bug, an error of a library nobody
expected) is answered here, ``{"error": {"code": "internal_error"}}`` with the correlation id
in ``details`` and nothing of the exception, and logged once (``http.unhandled_error``, with
the correlation id, the route's template and the traceback, scrubbed as every log line).
Before, it went on to Starlette's ``ServerErrorMiddleware``, outside this door: a plain-text
"Internal Server Error" without the security headers, ``Cache-Control: no-store`` or the id.
One request thus costs one middleware call and one wrapper of ``send``, not six of each: the
profile of intake's API under load had ~21 % of the request thread in the nested six.
The request's span (``shared.http.tracing``) is its first step, around all of the above:
one layer less than as a middleware of its own, which it is for other apps
(``install_tracing``).
"""

from __future__ import annotations

import time

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from shared.eventstore.group_commit import arrived_at, write_due
from shared.http.correlation import (
    CORRELATION_HEADER,
    PersonalCorrelation,
    correlation_of,
    new_correlation,
)
from shared.http.deadline import start_write_clock
from shared.http.direct_writes import DirectWrites
from shared.http.limits import BodyNul, BodyTooLarge, RequestLimits
from shared.http.metrics import record_request
from shared.http.middleware import HttpHandler
from shared.http.security_headers import secured
from shared.http.tracing import traced_request
from shared.kernel.clock import Clock, SystemClock
from shared.runtime.metrics import Metrics

_CORRELATION = CORRELATION_HEADER.encode()
log = structlog.get_logger("sixstep.http")


class FrontDoor:
    """The middleware described in the module's docstring (``app.add_middleware(FrontDoor,
    ...)``); lifespan and websocket messages pass straight through."""

    def __init__(self, app: ASGIApp, *, authenticate: HttpHandler, limits: RequestLimits,
                 metrics: Metrics, page_policy: str, write_timeout_s: float,
                 traced: bool = True, clock: Clock | None = None) -> None:
        self.app = app
        #: The service's clock: a write's arrival on it (``arrived_at``) is what its sender's
        #: ``sent_at`` is measured against.
        self.clock: Clock = clock or SystemClock()
        #: Each request in its span (``shared.http.tracing``), first of all.
        self.traced = traced
        #: What an authenticated request goes on to: ``app``, the write routes answered
        #: directly (``shared.http.direct_writes``).
        self.inner = DirectWrites.over(app)
        self.authenticate = authenticate
        self.limits = limits
        self.metrics = metrics
        self.page_policy = page_policy
        self.write_timeout_s = write_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.traced:
            await traced_request(self._door, scope, receive, send)
        else:
            await self._door(scope, receive, send)

    async def _door(self, scope: Scope, receive: Receive, send: Send) -> None:
        due = start_write_clock(scope["method"], self.write_timeout_s)
        arrived = arrived_at.set(self.clock.now()) if due is not None else None
        try:
            await self._correlated(scope, receive, send)
        finally:
            if due is not None:
                write_due.reset(due)
            if arrived is not None:
                arrived_at.reset(arrived)

    async def _correlated(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: PersonalCorrelation | None = None
        try:
            correlation, receive = await correlation_of(scope, receive)
        except PersonalCorrelation as exc:
            correlation, refused = new_correlation(), exc
        echoed = correlation.encode()
        path: str = scope["path"]
        page = self.page_policy
        status = 0  # 0 until the answer has started

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = secured(
                    [*message.get("headers", []), (_CORRELATION, echoed)], path, page)
            await send(message)

        tokens = bind_contextvars(correlation_id=correlation)
        start = time.perf_counter()
        try:
            if refused is not None:
                await _refuse_correlation(refused, sending)
                return
            limits = self.limits
            refusal = limits.refusal(scope)
            if refusal is not None:
                await limits.refuse(refusal, sending)
                return
            try:
                await self.authenticate(self.inner, scope, limits.counting(receive), sending)
            except BodyTooLarge:
                if not status:
                    await limits.refuse(413, sending)
            except BodyNul:
                if not status:
                    await limits.refuse(422, sending)
            except Exception:
                route = scope.get("route")  # the template, never the path: no id of anyone
                log.exception("http.unhandled_error", method=scope["method"],
                              route=getattr(route, "path", None), started=bool(status))
                if status:
                    # Part of the answer has gone: the connection must end unfinished, not
                    # look complete (a CSV cut short). The server logs it too.
                    raise
                await _internal_error(correlation, sending)
        finally:
            record_request(self.metrics, scope, status or 500, time.perf_counter() - start)
            reset_contextvars(**tokens)


async def _refuse_correlation(refused: PersonalCorrelation, send: Send) -> None:
    """422 ``correlation_id_personal_data``: the header's id is neither logged nor echoed."""
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps({"error": {
        "code": "correlation_id_personal_data",
        "message": f"{refused}: it is logged and kept with what the request does; send an "
                   "id of the app's own (1-128 of A-Z a-z 0-9 _ . : -)",
        "details": {"holds": refused.what}}})})


async def _internal_error(correlation: str, send: Send) -> None:
    """500 ``internal_error``: nothing of the exception (its words may hold a resident's); the
    correlation id to find the log line by."""
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps({"error": {
        "code": "internal_error",
        "message": "the service failed while answering; whether a write was recorded is "
                   "not known: send it again with the same Idempotency-Key. The log has the "
                   "failure under details.correlation_id",
        "details": {"correlation_id": correlation}}})})
