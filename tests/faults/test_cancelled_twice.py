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
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from services.followup.fanout import FanOut
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.eventstore.outbox import Relay
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, stream_made, write_side
from tests.started_tasks import started_here
from tests.support import bus_connection, library_cleanup, schema_pool, wait_until


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


def running(name: str) -> bool:
    return any(t.get_coro().__qualname__.endswith(name)  # type: ignore[union-attr]
               for t in asyncio.all_tasks() if not t.done())


async def cancelled_twice(run: Coroutine[Any, Any, None], ready: Callable[[], Awaitable[bool]],
                          between: Callable[[], Awaitable[object]] | None = None) -> list[str]:
    """``run`` started until ``ready()``, then cancelled twice as a shutdown does, the second
    time once ``between()`` is done (else at its next step: in its ``finally``, cancelling
    what it started); the tasks it started still running once it has ended, by coroutine."""
    # What ``run`` started, not another app's batches on the run's shared loop (tests/pages'
    # center) nor another test's cleanup (``tests.started_tasks``).
    with started_here() as made:
        task = asyncio.create_task(run)
    await wait_until(ready, timeout=20, what="the loop at work")
    started = [t for t in made() if t is not task and not library_cleanup(t)]
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


async def test_a_fan_out_cancelled_twice_leaves_no_write_running() -> None:
    """A policy change's walk cancelled (a shutdown) while a batch is being written and the
    next looked up: the write, rolling back slowly, ends before the walk does. Only cancelled
    (until stop 51), it went on past the walk with no owner. Its store is a stand-in: what is
    looked at is the walk's own tasks, not what they write."""
    write = SlowToUnwind()
    policy = {"policy_id": uuid4(), "finished_at": None, "cursor": None, "residents": 0,
              "center_id": "c1", "all_centers": False, "scope": "center"}

    class Store:
        async def fetchrow(self, sql: str, *args: object) -> dict[str, Any]:
            return policy

    class Lead:
        async def check(self) -> None:
            return None

    followups = SimpleNamespace(settings=SimpleNamespace(followup_team="team"))
    fanout = FanOut(Store(), followups, batch=2, interval_s=1.0)  # type: ignore[arg-type]
    looked_up = 0

    async def residents(*_: object) -> list[dict[str, Any]]:
        nonlocal looked_up
        looked_up += 1
        if looked_up > 1:  # the look-up ahead: the next batch, still on its way
            await asyncio.Event().wait()
        return [{"resident_id": uuid4()}, {"resident_id": uuid4()}]

    async def writing(*_: object) -> None:
        await write.apply(None, None)

    fanout._residents = residents  # type: ignore[method-assign]
    fanout._write = writing  # type: ignore[method-assign]

    async def applying() -> bool:
        return write.applying.is_set()
    try:
        left = await cancelled_twice(fanout._walk(policy["policy_id"], Lead()),  # type: ignore[arg-type]
                                     applying, write.unwinding.wait)
    finally:
        write.let_go.set()
    assert left == []


async def test_the_event_path_probe_cancelled_twice_leaves_no_measure_running() -> None:
    """The probe (``Runtime.probe_event_path``) cancelled twice as a service stops, while a
    consumer's measure is still unwinding: the measure ends before the probe does. Bounded by
    ``asyncio.wait_for`` (until stop 51), it ran as a task of its own that Python 3.11's
    ``wait_for`` stopped waiting for at the second cancel: the guard in ``tests.support``
    found it left after a lifespan. The runtime is a stand-in: its loop is what is looked at."""
    measure = SlowToUnwind()

    class Measured:
        async def measure_oldest_unapplied(self) -> None:
            await measure.apply(None, None)

    runtime = SimpleNamespace(
        service="followup", relay=None, driven={"worklist": Measured()},
        metrics=SimpleNamespace(relay_unpublished=SimpleNamespace(labels=lambda _: None)),
        settings=SimpleNamespace(health_probe_interval_s=60.0))

    async def measuring() -> bool:
        return measure.applying.is_set()
    try:
        left = await cancelled_twice(Runtime.probe_event_path(runtime),  # type: ignore[arg-type]
                                     measuring, measure.unwinding.wait)
    finally:
        measure.let_go.set()
    assert left == []
