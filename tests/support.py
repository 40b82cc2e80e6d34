"""Helpers for tests: read the stream, wait for things, run a service in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
from fastapi import FastAPI
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.bus import connect, dead_letter_stream
from shared.contracts import Envelope
from shared.settings import Settings


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def stream_messages(settings: Settings, stream: str | None = None,
                          subject: str | None = None) -> list[Msg]:
    """Every message of a stream (optionally one subject filter), in stream order."""
    nc = await connect(settings, "test-reader")
    try:
        js = nc.jetstream()
        name = stream or settings.stream_name
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            return []
        if info.state.messages == 0:
            return []
        sub = await js.pull_subscribe(
            subject or ">", stream=name,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                                  inactive_threshold=5.0))
        out: list[Msg] = []
        while True:
            try:
                batch = await sub.fetch(1000, timeout=0.5)
            except TimeoutError:
                break
            out.extend(batch)
            if batch and batch[-1].metadata.num_pending == 0:
                break
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def stream_envelopes(settings: Settings, subject: str | None = None) -> list[Envelope]:
    return [Envelope.model_validate(orjson.loads(m.data))
            for m in await stream_messages(settings, subject=subject)]


async def dead_letters(settings: Settings) -> list[Msg]:
    return await stream_messages(settings, stream=dead_letter_stream(settings))


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service's lifespan in-process and talk to it over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sixstep.test",
                                     timeout=30.0) as client:
            yield client


async def drop_test_objects(settings: Settings) -> None:
    """Remove one test's schemas and streams (never anything else)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                settings.schema_prefix + "%")
        for row in rows:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()
    nc = await connect(settings, "test-cleanup")
    try:
        js = nc.jetstream()
        for name in (settings.stream_name, dead_letter_stream(settings)):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


def headers(key: str, **extra: Any) -> dict[str, str]:
    out = {"Idempotency-Key": key}
    out.update({k.replace("_", "-"): str(v) for k, v in extra.items()})
    return out
