"""A shutdown cancels a loop again every 0.2 s (``Background.stop``). A loop cancelled a
second time while it waited for the tasks it started to unwind gave up waiting and left them
running with no owner: the consumer's and the relay's. Their event loop then closed under
them ("Task was destroyed but it is pending!"), and the garbage collector closing such a
coroutine in the middle of its ``finally`` broke an unrelated ``compile`` in CI (CPython
3.11's gh-106905, in tests/security/test_bad_input.py). Each loop here is cancelled twice in
a row, the second time before its children could end: once it has ended, so have they."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.eventstore.outbox import Relay
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, stream_made, write_side
from tests.support import bus_connection, schema_pool, wait_until


class SlowToUnwind:
    """A handler whose batch, once cancelled, takes until ``let_go`` is set to unwind (its
    transaction rolling back on a slow database); cancelled again meanwhile (a shutdown's
    next cancel), it ends at once."""

    def __init__(self) -> None:
        self.applying = asyncio.Event()
        self.unwinding = asyncio.Event()
        self.let_go = asyncio.Event()

    async def apply(self, conn: object, events: object) -> None:
        self.applying.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.unwinding.set()
            await self.let_go.wait()


def children(started_before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """The tasks started since ``started_before`` was taken, but this test's own."""
    return [t for t in asyncio.all_tasks()
            if t not in started_before and t is not asyncio.current_task()]


def running(name: str) -> bool:
    return any(t.get_coro().__qualname__.endswith(name)  # type: ignore[union-attr]
               for t in asyncio.all_tasks() if not t.done())


async def cancelled_twice(run: Coroutine[Any, Any, None], ready: Callable[[], Awaitable[bool]],
                          between: Callable[[], Awaitable[object]] | None = None) -> list[str]:
    """``run`` started until ``ready()``, then cancelled twice as a shutdown does, the second
    time once ``between()`` is done (else at its next step: in its ``finally``, cancelling
    what it started); the tasks it started still running once it has ended, by coroutine."""
    before = set(asyncio.all_tasks())
    task = asyncio.create_task(run)
    await wait_until(ready, timeout=20, what="the loop at work")
    started = children(before)
    task.cancel()
    await (between() if between is not None else asyncio.sleep(0))
    task.cancel()
    await asyncio.wait((task,))
    left = [t for t in started if not t.done() and t is not task]
    return [t.get_coro().__qualname__ for t in left]  # type: ignore[union-attr]


async def test_a_consumer_cancelled_twice_leaves_nothing_running(settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    handler = SlowToUnwind()
    async with schema_pool(settings, "cancelled_twice", TRACKING_DDL) as pool, \
            bus_connection(settings, "cancelled_twice") as nc:
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="cancelled_twice",
                            handler=handler,
                            filter_subjects=[f"{settings.subject_prefix}.intake.*.*"])
        await consumer.ensure()

        async def applying() -> bool:
            return handler.applying.is_set()
        try:
            left = await cancelled_twice(consumer.run(), applying, handler.unwinding.wait)
        finally:
            handler.let_go.set()  # the old code's orphans end, not the next test's mess
        assert left == []


async def test_a_relay_cancelled_twice_leaves_nothing_running(settings: Settings) -> None:
    await stream_made(settings)
    async with write_side(settings) as side:
        relay = Relay(settings, "intake", side.app, side.pool)

        async def settling() -> bool:
            return running("_settle_rounds")
        assert await cancelled_twice(relay.run(), settling) == []
