"""Limits on what one caller can send: request body size and no NUL characters (every
service), and a token bucket per credential (the survey answer, where a leaked link must not
become a flood)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import orjson
from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.middleware import add_http_middleware

_NUL_MARKS = (b"\x00", b"%00", b"\\u0000")
"""A NUL character, raw, percent-encoded or JSON-escaped. PostgreSQL's text and jsonb cannot hold
one: let in, it would be stored in an event and then fail every projection of it."""


class _Nul(HTTPException):
    def __init__(self) -> None:
        super().__init__(422, {"code": "nul_character", "message": (
            "the request contains a NUL character (\\u0000), which no field accepts"),
            "details": {}})


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing lets it through
    to the error handlers (it turns any other exception into a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, {"code": "body_too_large", "message": (
            f"the request body is larger than {max_bytes} bytes"),
            "details": {"max_bytes": max_bytes}})


def install_request_limits(app: FastAPI, max_bytes: int) -> None:
    """Refuse request bodies over ``max_bytes`` with 413 ``body_too_large`` (at once when
    ``Content-Length`` says so, else as soon as the streamed body passes the limit), and any
    NUL character in the path, the query or the body with 422 ``nul_character``."""

    async def refuse(send: Send) -> None:
        body = {"error": {"code": "body_too_large", "message": (
            f"the request body is larger than {max_bytes} bytes"),
            "details": {"max_bytes": max_bytes}}}
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    async def refuse_nul(send: Send) -> None:
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(
            {"error": _Nul().detail})})

    async def limit(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if "\x00" in scope["path"] or any(m in target for m in _NUL_MARKS[:2]):
            await refuse_nul(send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > max_bytes
                except ValueError:
                    too_large = True
                if too_large:
                    await refuse(send)
                    return
        seen = 0
        started = False
        tail = b""

        async def counting() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
                window = tail + chunk
                if any(m in window for m in _NUL_MARKS):
                    raise _Nul()
                tail = window[-5:]
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await inner(scope, counting, sending)
        except _TooLarge:
            if not started:
                await refuse(send)
        except _Nul:
            if not started:
                await refuse_nul(send)

    add_http_middleware(app, limit)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One bucket per key (``rate`` per second, ``burst`` at most), the least recently used
    forgotten past ``max_keys`` so memory stays bounded. In-process: each replica counts its
    own, which bounds a flood per replica."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when a request may go now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def check(self, key: str) -> None:
        """429 ``rate_limited`` with ``Retry-After`` when ``key`` has no token left."""
        wait = self.take(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise HTTPException(429, {"code": "rate_limited", "message": (
                "too many requests with this token; retry later"),
                "details": {"retry_after_s": seconds}},
                headers={"Retry-After": str(seconds)})
