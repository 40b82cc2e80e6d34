"""A survey scheduler's tick sends its due surveys side by side. One failing ended the tick
at once (a plain ``asyncio.gather``) while another send was still on its way: the loop ended,
its lock went back and the supervisor started it again (or another replica took over), and
the next tick found that survey still due and sent it again. The tick now ends, with the
first failure, once every send has ended (``shared.kernel.tasks.gather_all``). Server-free:
the store and the sends are stand-ins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from services.feedback.scheduler import SurveyScheduler
from shared.eventstore.group_commit import background
from shared.kernel.tasks import gather_all
from tests.support import OneFailsOneSlow, failed_once_ended

NOW = datetime(2026, 12, 20, 9, 30, tzinfo=UTC)


class Refused(Exception):
    pass


class Store:
    """Nothing to expire; two surveys due."""

    def __init__(self) -> None:
        self.fetched = 0

    async def fetch(self, sql: str, *args: object) -> list[dict[str, Any]]:
        self.fetched += 1
        if self.fetched == 2:
            return [{"survey_id": uuid4()}, {"survey_id": uuid4()}]
        return []


async def test_a_tick_with_a_failed_send_ends_once_the_other_sends_have(
        monkeypatch: pytest.MonkeyPatch) -> None:
    feedback = SimpleNamespace(clock=SimpleNamespace(now=lambda: NOW),
                               policy=SimpleNamespace(not_quiet=lambda now: now))
    scheduler = SurveyScheduler(Store(), feedback, None, "", schema="s")  # type: ignore[arg-type]
    sends = OneFailsOneSlow(Refused)
    monkeypatch.setattr(scheduler, "_send_if_allowed", sends)
    assert await failed_once_ended(scheduler.tick(), sends)  # no send still on its way


async def test_gather_all_returns_in_order_and_raises_the_first_failure_once_all_ended(
        ) -> None:
    ended: list[int] = []

    async def one(n: int, fail: bool = False) -> int:
        await asyncio.sleep(0)
        if fail:
            raise Refused(n)
        for _ in range(n):
            await asyncio.sleep(0)
        ended.append(n)
        return n

    assert await gather_all(one(3), one(1), one(2)) == [3, 1, 2]
    ended.clear()
    with pytest.raises(Refused) as raised:
        await gather_all(one(0, fail=True), one(6), one(5, fail=True))
    assert raised.value.args == (0,) and ended == [6]


async def test_a_ticks_sends_go_in_the_writers_background_lane_and_a_request_after_it_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    feedback = SimpleNamespace(clock=SimpleNamespace(now=lambda: NOW),
                               policy=SimpleNamespace(not_quiet=lambda now: now))
    scheduler = SurveyScheduler(Store(), feedback, None, "", schema="s")  # type: ignore[arg-type]
    lanes: list[bool] = []

    async def send(row: Any) -> int:
        await asyncio.sleep(0)  # in its own task (gather_all), as a real send's submit
        lanes.append(background.get())
        return 1

    monkeypatch.setattr(scheduler, "_send_if_allowed", send)
    assert await scheduler.tick() == (0, 2)
    assert lanes == [True, True], "a round of sends does not hold the survey requests"
    assert background.get() is False, "what the follower writes next is live"
