"""A service's background loops start again after a failure, after a pause that grows while
they keep failing and starts over once they have run well for a while."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from shared.runtime.background import supervise


class Stop(BaseException):
    """Ends the supervised loop's story (not an Exception: supervise does not catch it)."""


async def test_a_loop_that_ran_well_for_a_day_waits_the_first_pause_after_its_next_failure(
        ) -> None:
    now = [0.0]
    pauses: list[float] = []
    runs = iter([0.1, 0.1, 0.1, 0.1, 0.1, 86_400.0, 0.1, 0.1])  # how long each run lasts

    async def loop() -> None:
        try:
            now[0] += next(runs)
        except StopIteration:
            raise Stop from None
        raise RuntimeError("the bus went away")

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with pytest.raises(Stop):
        await supervise("relay", loop, max_backoff=10.0, clock=lambda: now[0], sleep=sleep)
    # Five quick failures grow the pause to its longest; the failure after a day of health
    # waits the first pause again, and the pause grows anew from there.
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 0.5, 1.0, 2.0]


async def test_a_loop_failing_at_once_again_and_again_waits_at_most_the_longest_pause() -> None:
    pauses: list[float] = []

    async def loop() -> None:
        if len(pauses) == 8:
            raise Stop
        raise RuntimeError("PostgreSQL refuses connections")

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    with pytest.raises(Stop):
        await supervise("relay", loop, max_backoff=3.0, clock=lambda: 0.0, sleep=sleep)
    assert pauses == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]


async def test_a_loop_failing_the_same_way_all_night_is_said_once_a_minute_with_a_count(
        ) -> None:
    now = [0.0]
    errors = iter(["PostgreSQL refuses connections"] * 40 + ["the bus went away"])

    async def loop() -> None:
        try:
            raise RuntimeError(next(errors))
        except StopIteration:
            raise Stop from None

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    with capture_logs() as said, pytest.raises(Stop):
        await supervise("relay", loop, max_backoff=10.0, clock=lambda: now[0], sleep=sleep)
    failed = [e for e in said if e["event"] in ("task.failed", "task.failed_again")]
    # 40 failures over some six minutes (pauses up to 10 s): the first at once, then once a
    # minute with the count, and the run's last count before the new error, said at once.
    assert len(failed) <= 9
    assert failed[0]["error"] == "RuntimeError: PostgreSQL refuses connections"
    assert sum(e.get("since_said", 1) for e in failed[:-1]) == 40
    assert failed[-2]["event"] == "task.failed_again" and failed[-2]["times"] == 40
    assert failed[-1]["error"] == "RuntimeError: the bus went away"
