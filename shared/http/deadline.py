"""Every write is answered within ``WRITE_TIMEOUT_S`` of its arrival: the clock starts here,
and group commit (``shared.eventstore.group_commit``) answers by then, whatever the store
does."""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.eventstore.group_commit import write_due
from shared.http.middleware import add_http_middleware

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def install_write_deadline(app: FastAPI, timeout_s: float) -> None:
    """A write's answer is due ``timeout_s`` after its request arrived."""

    async def due(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in WRITES:
            await inner(scope, receive, send)
            return
        token = write_due.set(time.monotonic() + timeout_s)
        try:
            await inner(scope, receive, send)
        finally:
            write_due.reset(token)

    add_http_middleware(app, due)
