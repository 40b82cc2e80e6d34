"""A consumer whose deliveries keep being lost (a server restarted, its durable deleted, lost
heartbeats) starts again at once the first time, then after pauses that double with jitter up
to a cap, from the first again once a batch went through; and says so once per change, not
once per try. Before: a tight loop of reconnects and log lines."""

from __future__ import annotations

import asyncio
import random

import pytest
from structlog.testing import capture_logs

from shared.bus.backoff import Backoff
from shared.bus.consumer import Consumer, _StartAgain
from shared.settings import Settings


class Stop(BaseException):
    """Ends the story (not an Exception: nothing in the consumer catches it)."""


def test_the_pauses_start_at_nothing_double_with_jitter_up_to_the_cap_and_start_over() -> None:
    backoff = Backoff(first=0.25, cap=15.0, rng=random.Random(7))
    pauses = [backoff.next() for _ in range(10)]
    assert pauses[0] == 0.0  # a lost delivery comes back at once
    for n, pause in enumerate(pauses[1:]):
        ceiling = min(15.0, 0.25 * 2 ** n)
        assert ceiling / 2 <= pause <= ceiling
    assert max(pauses) <= 15.0 and len(set(pauses[1:])) == 9  # jittered, never in step
    assert backoff.succeeded() == 10
    assert backoff.next() == 0.0


class Losing:
    """``_consume`` of a consumer whose deliveries are lost at every start; after ``until``
    starts, a batch goes through (``went_well``) and they are lost again."""

    def __init__(self, consumer: Consumer, until: int, stop_after: int) -> None:
        self.consumer = consumer
        self.until = until
        self.stop_after = stop_after
        self.starts: list[float] = []

    async def __call__(self) -> None:
        self.starts.append(asyncio.get_running_loop().time())
        if len(self.starts) == self.stop_after:
            raise Stop
        if len(self.starts) == self.until:
            self.consumer._went_well()
        raise _StartAgain("deliveries 7-8 were lost on the way")


class Recorded(Backoff):
    """The pauses it gave, in order."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.given: list[float] = []

    def next(self) -> float:
        self.given.append(super().next())
        return self.given[-1]


async def test_a_consumer_losing_its_deliveries_again_and_again_backs_off_and_says_so_once(
        ) -> None:
    restarts = Recorded(first=0.02, cap=0.08, rng=random.Random(1))
    consumer = Consumer(settings=Settings(), nc=None, pool=None,  # type: ignore[arg-type]
                        name="intake-cases", handler=None,  # type: ignore[arg-type]
                        filter_subjects=["sixstep.intake.>"], restarts=restarts)
    losing = Losing(consumer, until=6, stop_after=9)
    consumer._consume = losing  # type: ignore[method-assign]
    with capture_logs() as logs, pytest.raises(Stop):
        await consumer._consume_again_and_again()
    # At once, then doubling with jitter up to the cap; a batch went through at the sixth
    # start: at once again, then doubling again.
    bounds = [(0, 0), (0.01, 0.02), (0.02, 0.04), (0.04, 0.08), (0.04, 0.08),
              (0, 0), (0.01, 0.02), (0.02, 0.04)]
    assert len(restarts.given) == len(bounds)
    for pause, (low, high) in zip(restarts.given, bounds, strict=True):
        assert low <= pause <= high
    # ... and it did wait them (a pause never ends early).
    assert losing.starts[-1] - losing.starts[0] >= sum(restarts.given)
    said = [(e["event"], e.get("times")) for e in logs
            if e["event"] in ("consumer.start_again", "consumer.going_again")]
    assert said == [("consumer.start_again", 1), ("consumer.going_again", None),
                    ("consumer.start_again", 1)]
