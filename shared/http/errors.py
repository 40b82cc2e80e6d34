"""One shape for every error a service answers: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.bus.store_timeouts import ENDED_BY_SERVER, client_gave_up
from shared.http.fast_route import principal_of
from shared.http.probe_lines import ProbeLines, Verdict
from shared.kernel.calendar import CalendarNotCovered, CalendarOutOfRange
from shared.kernel.errors import CommandError, OutOfReach, Unavailable
from shared.kernel.privacy.patterns import personal_data_in
from shared.runtime.metrics import Metrics
from shared.security.tokens import CENTER

log = structlog.get_logger("sixstep.http")

#: What the probe line says of a center a caller named that is no center code.
NOT_A_CENTER = "(not a center code)"

#: Seconds a caller waits before trying again a request whose statement ran out of time.
TIMED_OUT_RETRY_AFTER_S = 5


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """Every 4xx/5xx has this shape; ``error.code`` is for machines, ``message`` for people."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of routes that may answer ``statuses``, each an
    :class:`ErrorResponse`."""
    return {status: {"model": ErrorResponse} for status in statuses}


ERRORS = error_responses(400, 401, 403, 404, 409, 422, 503, 504)
"""What any service's routes may answer besides success: a malformed request or header (400),
no or a bad token (401), another center's or role's (403), nothing there (404), a rule or a
stale If-Match (409), an invalid command (422), the store down or a statement out of time (503),
the read model behind a read's ``?after=`` (504)."""


def error_response(status: int, code: str, message: str,
                   details: dict[str, Any] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status)


def refused_out_of_reach(request: Request, reach: OutOfReach, status: int,
                         metrics: Metrics | None, lines: ProbeLines | None = None) -> None:
    """A request refused for naming something of another center (``OutOfReach``): one log
    line for the operators, the answer unchanged (a 404 as for none). The line names the
    caller (subject, role, center), what was named (its kind, its opaque id, whose it is)
    and the route's template, never a path, a body or a query: nothing of a resident but an
    opaque id. Before December 2026 such a probe left no trace at all.

    Counted in ``sixstep_refused_out_of_reach_total`` only when the answer says it was
    refused (403 ``forbidden_center``: a list or body naming another center). ``/metrics``
    takes no token: a count of the 404s would tell the caller, reading it before and after,
    what the 404 hid (that the id is ours). Those are counted with every 404 naming an id
    nobody has, alike (:func:`not_found_by_id`).

    ``lines``: how many lines each caller may write (``shared/http/probe_lines.py``: the
    first 20 of a minute, then one line saying how many were left out); the counts take
    every refusal."""
    if metrics is not None and status != 404:
        metrics.refused_out_of_reach.labels(metrics.service, reach.what, reach.reason).inc()
    principal = principal_of(request)
    actor, actor_center = getattr(principal, "sub", None), getattr(principal, "center_id", None)
    verdicts = [Verdict(True)] if lines is None else lines.refused((actor, actor_center))
    for verdict in verdicts:
        if not verdict.write:
            say_left_out([verdict], lines)
            continue
        route = request.scope.get("route")
        log.warning("access.refused_out_of_reach", status=status, method=request.method,
                    route=getattr(route, "path", None), what=reach.what, id=reach.id,
                    owner_center=_center_named(reach.owner_center), reason=reach.reason,
                    actor=actor, role=getattr(getattr(principal, "role", None), "value", None),
                    actor_center=actor_center)


def say_left_out(verdicts: list[Verdict], lines: ProbeLines | None) -> None:
    """One ``access.refused_out_of_reach.suppressed`` line per caller's minute whose lines
    were left out: whose, and how many."""
    for verdict in verdicts:
        log.warning("access.refused_out_of_reach.suppressed", left_out=verdict.left_out,
                    actor=verdict.caller[0], actor_center=verdict.caller[1],
                    per_minute=lines.per_minute if lines else None)


async def _say_minutes_as_they_end(lines: ProbeLines) -> None:
    """The timer: each caller's minute, once over, says what it left out, also when the
    caller tried nothing more (their next refusal said it, until stop 49). A round that
    fails is not the last: until stop 49 one exception ended the timer for the process's
    life, and was raised again from the lifespan's shutdown before its counts were said."""
    while True:
        # A floor: a clock a test holds still must not spin the loop.
        await asyncio.sleep(max(lines.seconds_to_next_end(), 0.05))
        try:
            say_left_out(lines.ended(), lines)
        except Exception:  # the next round tries again
            with contextlib.suppress(Exception):  # the log itself may be what failed
                log.exception("access.refused_out_of_reach.timer_failed")


def _said_at_the_end(app: FastAPI, lines: ProbeLines) -> None:
    """Around the app's lifespan: the timer while it serves, and at shutdown every count
    left out so far, minute over or not."""
    serving = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with serving(app_) as state:
            timer = asyncio.create_task(_say_minutes_as_they_end(lines), name="probe-lines")
            try:
                yield state
            finally:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
                _say_at_shutdown(lines)

    app.router.lifespan_context = lifespan


def _say_at_shutdown(lines: ProbeLines) -> None:
    """The shutdown's last counts, said if they can be: a failure here (the log's pipe gone
    as the process stops) is logged where it can be and ends nothing. Until stop 50 it was
    raised from the lifespan's exit, through the service's own shutdown."""
    try:
        say_left_out(lines.drain(), lines)
    except Exception:
        with contextlib.suppress(Exception):  # the log itself may be what failed
            log.exception("access.refused_out_of_reach.shutdown_failed")


def not_found_by_id(request: Request, status: int, code: str, details: Any,
                    metrics: Metrics | None) -> None:
    """Count a 404 ``not_found`` naming an id (``details.id``) in
    ``sixstep_not_found_by_id_total`` by the route's template: an id nobody has and one out
    of the caller's reach (answered with the same words) alike, so the public count tells
    nobody which it was; many in a row are someone trying ids (``SixstepIdProbes``), and the
    log's ``access.refused_out_of_reach`` lines say which were another center's, and whose."""
    if (metrics is None or status != 404 or code != "not_found"
            or not isinstance(details, dict) or "id" not in details):
        return
    route = request.scope.get("route")
    metrics.not_found_by_id.labels(metrics.service,
                                   getattr(route, "path", None) or "unmatched").inc()


def _center_named(owner: str | None) -> str | None:
    """The owner center as the line says it. An aggregate's is a code it was recorded with;
    a filter's or a body's (``check_center``) is the caller's own text, any text up to a
    path's length (``/worklists/centers/{center_id}``): a resident's name pasted there would
    be logged as typed (the log's scrubber finds numbers, not a name typed alone). Only a
    center code is said; anything else is :data:`NOT_A_CENTER`."""
    if owner is None or (CENTER.fullmatch(owner) and personal_data_in(owner) is None):
        return owner
    return NOT_A_CENTER


def _afterwards(request: Request, reach: OutOfReach, status: int,
                metrics: Metrics | None, lines: ProbeLines) -> BackgroundTask:
    """The probe's line and count, once the answer has gone (the response's background):
    written before it, the line made another center's id answer later than an id nobody
    has (some 0.4 ms of CPU in a test run), which the caller can time."""
    return BackgroundTask(refused_out_of_reach, request, reach, status, metrics, lines)


def install_error_handlers(app: FastAPI, metrics: Metrics | None = None) -> None:
    lines = app.state.probe_lines = ProbeLines()  # the probe lines' budget, per caller
    _said_at_the_end(app, lines)

    @app.exception_handler(CommandError)
    async def _command_error(request: Request, exc: CommandError) -> JSONResponse:
        not_found_by_id(request, exc.status, exc.code, exc.details, metrics)
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.out_of_reach is not None:
            response.background = _afterwards(request, exc.out_of_reach, exc.status, metrics,
                                              lines)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(CalendarOutOfRange)
    async def _past_the_calendar(request: Request, exc: CalendarOutOfRange) -> JSONResponse:
        # A day past the calendar's years reached by a route that did not wrap its count in
        # ``covered``: the same 422 naming the covered range, never a bare 500 (the calendar's
        # horizon, official_until + CALENDAR_PROVISIONAL_YEARS, is every route's).
        return await _command_error(request, CalendarNotCovered(str(exc), **exc.details()))

    @app.exception_handler(PersistenceError)
    async def _store(_: Request, exc: PersistenceError) -> JSONResponse:
        # A read of the store before the command reached group commit failed (the store is
        # away): nothing was recorded.
        return await _command_error(_, Unavailable(f"the event store is unavailable: {exc}"))

    async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL ended a statement of the pool (DB_STATEMENT_TIMEOUT_S; a lock held
        # elsewhere, a slow query) and rolled its transaction back. Before, a bare 500 that
        # said nothing of it. The route's template, not its path: no id of anyone logged.
        route = request.scope.get("route")
        log.warning("http.statement_timed_out", route=getattr(route, "path", None),
                    method=request.method, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        response = error_response(
            503, "statement_timed_out", "a database statement ran out of time "
            "(DB_STATEMENT_TIMEOUT_S: a lock held elsewhere, or a slow query) and was rolled "
            "back; try again after Retry-After seconds (a write with the same Idempotency-Key)",
            {"error": type(exc).__name__})
        response.headers["Retry-After"] = str(TIMED_OUT_RETRY_AFTER_S)
        return response

    for timed_out in ENDED_BY_SERVER:
        app.add_exception_handler(timed_out, _timed_out)

    @app.exception_handler(TimeoutError)
    async def _client_gave_up(request: Request, exc: TimeoutError) -> JSONResponse:
        # The pool's client gave up on a PostgreSQL that answered nothing (command_timeout,
        # 5 s after DB_STATEMENT_TIMEOUT_S): the same 503 as a statement it ended. Any other
        # TimeoutError (NATS', a route's own) is not the store's: the 500 it was.
        if not client_gave_up(exc):
            raise exc
        return await _timed_out(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in err["loc"] if p != "body"),
                   "message": err["msg"], "type": err["type"]} for err in exc.errors()]
        return error_response(422, "validation_failed",
                              "the request is not valid; see details.fields", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _http_answer(request, exc)
        if (reach := getattr(exc, "out_of_reach", None)) is not None:
            response.background = _afterwards(request, reach, exc.status_code, metrics, lines)
        return response

    def _http_answer(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            not_found_by_id(request, exc.status_code, exc.detail["code"],
                            exc.detail.get("details"), metrics)
            response = error_response(exc.status_code, exc.detail["code"],
                                      exc.detail.get("message", ""), exc.detail.get("details"))
        else:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                     "http_error")
            response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # WWW-Authenticate, Retry-After
        return response


def problem(status: int, code: str, message: str, **details: Any) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message, "details": details})
