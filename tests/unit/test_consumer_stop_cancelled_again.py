"""A consumer's loop ends, also when cancelled, by stopping its puller and handing back what was
delivered but never taken (a nak: the next leader has it at once, not after ack_wait). That
``finally`` runs during a shutdown, which cancels the loop again every 0.2 s
(``Background.stop``). Bounded with ``asyncio.wait_for`` (until stop 51), the stop ran as a
task of its own, which Python 3.11's wait_for, cancelled while it waited for that task to
unwind, gave up on: the stop went on with no owner past the consumer's end, and what it would
have returned was never handed back. Server-free: the puller is a stand-in whose stop waits on
the server until cancelled, then on its unsubscribe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.bus.consumer import Consumer, consuming
from shared.settings import Settings
from tests.started_tasks import started_here
from tests.support import library_cleanup


class Delivered:
    """A message delivered but never taken; says whether it was handed back."""

    def __init__(self) -> None:
        self.naks = 0

    async def nak(self, delay: float | None = None) -> None:
        self.naks += 1


class SlowToStop:
    """A puller holding one delivered message, whose ``take`` waits for ever (an idle
    stream) and whose ``stop`` waits on the server (a flush) until cancelled, then on its
    unsubscribe until ``let_go`` is set."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.ready: list[Any] = [DELIVERED]
        self.lost = None
        self.taking = asyncio.Event()
        self.stopping = asyncio.Event()
        self.unwinding = asyncio.Event()
        self.let_go = asyncio.Event()
        MADE.append(self)

    async def start(self, next_delivery: int | None = None) -> None:
        return None

    async def take(self, timeout: float) -> list[Any]:
        self.taking.set()
        await asyncio.Event().wait()
        return []

    async def stop(self) -> list[Any]:
        self.stopping.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.unwinding.set()
            await self.let_go.wait()
        return self.left()

    def left(self) -> list[Any]:
        left, self.ready = self.ready, []
        return left


DELIVERED = Delivered()
MADE: list[SlowToStop] = []


async def nothing(*args: object) -> None:
    return None


async def test_a_consumer_cancelled_again_while_it_stops_its_puller_leaves_nothing_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consuming, "Puller", SlowToStop)
    consumer = Consumer(settings=Settings(), nc=None, pool=None,  # type: ignore[arg-type]
                        name="intake-cases", handler=None,  # type: ignore[arg-type]
                        filter_subjects=["sixstep.intake.>"])
    for name in ("_on_its_stream", "ensure", "_reset_to_ack_floor", "_after_a_loss",
                 "_next_delivery", "_forget_gone_holds", "_still_there"):
        monkeypatch.setattr(consumer, name, nothing)
    with started_here() as made:  # not another app's, on the run's shared loop (tests/pages)
        task = asyncio.create_task(consumer._consume())
    while not MADE:
        await asyncio.sleep(0)
    puller = MADE[0]
    try:
        await puller.taking.wait()
        task.cancel()  # the shutdown: the loop's finally stops the puller
        await puller.stopping.wait()
        task.cancel()  # 0.2 s later, again: the stop unwinds (unsubscribes)
        await puller.unwinding.wait()
        task.cancel()  # and again, before it could
        await asyncio.wait((task,))
        # Not another test's cleanup on the run's shared loop (asyncpg's shielded release of
        # a connection, started meanwhile: failed once in a two-worker run).
        left = [t for t in made() if t is not task and not t.done() and not library_cleanup(t)]
        assert left == []  # wait_for's task went on stopping, the consumer ended
        assert DELIVERED.naks == 1  # handed back for the next leader, not after ack_wait
    finally:
        puller.let_go.set()  # the old code's orphan ends here, not in the next test
        await asyncio.sleep(0)
    assert task.cancelled()
