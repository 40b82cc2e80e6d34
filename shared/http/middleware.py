"""The one way sixstep adds a middleware: a plain ASGI class (no task per request, unlike
Starlette's ``BaseHTTPMiddleware``) that looks only at HTTP requests; lifespan and websocket
messages pass straight through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

HttpHandler = Callable[[ASGIApp, Scope, Receive, Send], Awaitable[None]]
"""``handle(inner, scope, receive, send)``: answer the request, or hand it to ``inner``."""


def add_http_middleware(app: FastAPI, handle: HttpHandler) -> None:
    """Wrap ``app`` (outermost so far) in a middleware that runs ``handle`` for each request."""

    class _HttpOnly:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            await handle(self.inner, scope, receive, send)

    app.add_middleware(_HttpOnly)
