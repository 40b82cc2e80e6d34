"""A correlation id for every request: taken from the caller, bound into the logs, echoed back."""

from __future__ import annotations

import re
import secrets

from fastapi import FastAPI
from orjson import JSONDecodeError
from orjson import loads as json_loads
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from shared.http.middleware import add_http_middleware

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

    async def correlate(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
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
            await inner(scope, receive, sending)
        finally:
            reset_contextvars(**tokens)

    add_http_middleware(app, correlate)


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
