"""What every service's HTTP API shares: error bodies, idempotency and version headers,
read-your-writes waits, health, readiness and metrics."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from orjson import JSONDecodeError
from orjson import loads as json_loads
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from shared.auth import OptionalPrincipal, Principal
from shared.eventstore.group_commit import Written
from shared.fast_route import SLOW, fast_dependency, principal_of
from shared.kernel.errors import CommandError
from shared.settings import Settings

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """Every 4xx/5xx has this shape; ``error.code`` is for machines, ``message`` for people."""

    error: ErrorBody


class WrittenPublic(BaseModel):
    """The answer to every write: where the aggregate now stands and where the write is in the log.

    Pass ``position`` as ``?after=`` on a read to see your own write.
    """

    id: str
    version: int
    position: int
    replayed: bool = False

    @classmethod
    def of(cls, written: Written) -> WrittenPublic:
        return cls(id=str(written.aggregate_id), version=written.version,
                   position=written.position, replayed=written.replayed)


def new_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app as every sixstep service wants it: Prometheus metrics are ours, so
    FastAPI's own OpenTelemetry hooks (an environment lookup on every request) stay off."""
    return FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False}, **kwargs)


def error_response(status: int, code: str, message: str,
                   details: dict[str, Any] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CommandError)
    async def _command_error(_: Request, exc: CommandError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in err["loc"] if p != "body"),
                   "message": err["msg"], "type": err["type"]} for err in exc.errors()]
        return error_response(422, "validation_failed",
                              "the request is not valid; see details.fields", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict) and "code" in exc.detail:
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


async def _idempotency_key(
    idempotency_key: Annotated[str | None, Header(
        description="Unique per intended write (8-128 chars of A-Z a-z 0-9 _ . : -); "
                    "a retry with the same key returns the first answer.")] = None,
) -> str:
    if idempotency_key is None:
        raise problem(400, "idempotency_key_required",
                      "every write needs an Idempotency-Key header")
    if not KEY_PATTERN.fullmatch(idempotency_key):
        raise problem(400, "idempotency_key_invalid",
                      "Idempotency-Key must be 8-128 characters of A-Z a-z 0-9 _ . : -")
    return idempotency_key


async def _expected_version(
    if_match: Annotated[str | None, Header(
        description="The version you last saw; the write is refused with 409 if it moved.")]
        = None,
) -> int | None:
    if if_match is None:
        return None
    version = _version_in(if_match)
    if version is None:
        raise problem(400, "if_match_invalid", "If-Match must be a case version number")
    return version


def _version_in(if_match: str) -> int | None:
    """``3``, ``"3"``, ``W/"3"`` -> 3; None when it is not a version number."""
    value = if_match.strip().strip('"').removeprefix("W/").strip('"')
    return int(value) if value.isascii() and value.isdigit() else None


async def _actor(principal: OptionalPrincipal) -> str:
    """Who acts: the bearer token's subject (``shared.auth``)."""
    return principal.actor if principal is not None else "anonymous"


@dataclass(frozen=True)
class WriteContext:
    """What every write carries besides its body: who, which attempt, and what version."""

    key: str
    actor: str
    expected_version: int | None
    principal: Principal | None = None


def _fast_write_context(request: Request) -> WriteContext:
    """``_write_context`` without FastAPI's solver (``shared.fast_route``): the ordinary
    case only; a missing or malformed header is left to the dependency to refuse."""
    headers = request.headers
    key = headers.get("idempotency-key")
    if key is None or not KEY_PATTERN.fullmatch(key):
        return SLOW
    if_match = headers.get("if-match")
    expected: int | None = None
    if if_match is not None:
        expected = _version_in(if_match)
        if expected is None:
            return SLOW
    principal: Principal | None = principal_of(request)
    return WriteContext(key=key, actor=principal.actor if principal is not None else "anonymous",
                        expected_version=expected, principal=principal)


@fast_dependency(_fast_write_context)
async def _write_context(
    principal: OptionalPrincipal,
    idempotency_key: Annotated[str | None, Header(
        description="Unique per intended write (8-128 chars of A-Z a-z 0-9 _ . : -); "
                    "a retry with the same key returns the first answer.")] = None,
    if_match: Annotated[str | None, Header(
        description="The version you last saw; the write is refused with 409 if it moved.")]
        = None,
) -> WriteContext:
    """One dependency for the write headers and the caller (the token's subject acts)."""
    return WriteContext(key=await _idempotency_key(idempotency_key),
                        actor=await _actor(principal),
                        expected_version=await _expected_version(if_match),
                        principal=principal)


Write = Annotated[WriteContext, Depends(_write_context)]

async def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
"""The service's PostgreSQL pool (``app.state.pool``), for the read routes."""
SettingsDep = Annotated[Settings, Depends(_settings)]
After = Annotated[int | None, Query(ge=0, description=(
    "A write's position: wait (bounded) until the read model has applied it."))]
"""``?after=``: read-your-writes (``shared.readmodels.positions.wait_for_write``)."""

IdempotencyKey = Annotated[str, Depends(_idempotency_key)]
ExpectedVersion = Annotated[int | None, Depends(_expected_version)]
Actor = Annotated[str, Depends(_actor)]


class Metrics:
    """Prometheus metrics of one service, on its own registry (tests run several in one process)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sixstep_http_requests_total", "HTTP requests",
                                ["service", "method", "route", "status"], registry=self.registry)
        self.latency = Histogram("sixstep_http_request_seconds", "HTTP request latency",
                                 ["service", "route"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.appended = Counter("sixstep_events_appended_total", "Events stored",
                                ["service"], registry=self.registry)
        self.batches = Histogram("sixstep_group_commit_batch_size", "Commands per commit",
                                 ["service"], registry=self.registry,
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.published = Counter("sixstep_events_published_total", "Events on the stream",
                                 ["service"], registry=self.registry)
        self.consumed = Counter("sixstep_events_applied_total", "Events applied by consumers",
                                ["service", "consumer"], registry=self.registry)
        self.dead_letters = Counter("sixstep_dead_letters_total", "Events dead-lettered",
                                    ["service", "consumer"], registry=self.registry)
        self.lag = Gauge("sixstep_consumer_lag", "Events on the stream not yet applied",
                         ["service", "consumer"], registry=self.registry)
        self.scheduler_backlog = Gauge(
            "sixstep_scheduler_backlog", "Due work a scheduler has not yet turned into events",
            ["service", "scheduler"], registry=self.registry)
        self.parked_rules = Gauge(
            "sixstep_parked_rules", "Rules waiting for a day the working-day calendar does not "
            "cover (GET /parked-rules)", ["service"], registry=self.registry)
        self.calendar_days_left = Gauge(
            "sixstep_calendar_official_days_left", "Days until the official holiday schedules "
            "end (the earliest over the centers); after it dates are provisional",
            ["service"], registry=self.registry)
        self.service = service

    def install(self, app: FastAPI) -> None:
        """Count and time every request (a plain ASGI middleware: no per-request task)."""
        metrics = self

        class _Measure:
            def __init__(self, inner: ASGIApp) -> None:
                self.inner = inner

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] != "http":
                    await self.inner(scope, receive, send)
                    return
                start = time.perf_counter()
                status = [500]

                async def sending(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        status[0] = message["status"]
                    await send(message)

                try:
                    await self.inner(scope, receive, sending)
                finally:
                    route = scope.get("route")
                    path = getattr(route, "path", "unmatched")
                    metrics.requests.labels(metrics.service, scope["method"], path,
                                            str(status[0])).inc()
                    metrics.latency.labels(metrics.service, path).observe(
                        time.perf_counter() - start)

        app.add_middleware(_Measure)

        @app.get("/metrics", include_in_schema=False)
        async def _metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


CORRELATION_HEADER = "x-correlation-id"
_CORRELATION = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_MAX_SNIFFED_BODY = 64 * 1024


def install_correlation(app: FastAPI) -> None:
    """Bind a correlation id into the log context of every request, and echo it back.

    The id is the ``X-Correlation-Id`` header, else the JSON body's ``correlation_id`` (the
    field every command takes), else a new one; every log line written while the request is
    handled carries it, and the response has it in ``X-Correlation-Id``. Only the id is
    looked at: the body is handed on unchanged.
    """

    class _Correlate:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            header = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode(
                "latin-1")
            correlation = header if _CORRELATION.fullmatch(header) else None
            if correlation is None and scope["method"] in ("POST", "PUT", "PATCH"):
                correlation, receive = await _sniff_body(receive)
            correlation = correlation or secrets.token_hex(8)
            echoed = correlation.encode()

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []),
                                          (CORRELATION_HEADER.encode(), echoed)]
                await send(message)

            tokens = bind_contextvars(correlation_id=correlation)
            try:
                await self.inner(scope, receive, sending)
            finally:
                reset_contextvars(**tokens)

    app.add_middleware(_Correlate)


async def _sniff_body(receive: Receive) -> tuple[str | None, Receive]:
    """Read the request body, find ``correlation_id`` in it, and replay it to the app."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body") or size > _MAX_SNIFFED_BODY:
            break
    found: str | None = None
    if size <= _MAX_SNIFFED_BODY:
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            value = json_loads(body).get("correlation_id") if body[:1] == b"{" else None
        except (JSONDecodeError, AttributeError):
            value = None
        if isinstance(value, str) and _CORRELATION.fullmatch(value):
            found = value
    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    return found, replayed
