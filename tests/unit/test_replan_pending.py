"""A re-planning with failed items is run again by the service (``shared.runtime.replanning.
Pending``, replan56): after a pause doubled at each failed try up to a ceiling, said once when
it starts failing and once when it goes through, and a reload that went through meanwhile
ends it without another try."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from shared.kernel.calendar import CalendarNotCovered
from shared.runtime import replanning
from shared.runtime.replanning import RETRY_FIRST_S, RETRY_MOST_S, Pending, failures


class Said:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, event: str, **_: Any) -> None:
        self.lines.append(event)

    info = error = warning

    def debug(self, event: str, **_: Any) -> None:
        pass


def test_the_failures_are_the_parts_failed_counts() -> None:
    assert failures({"feedback": {"rectifications_checked": 3, "deadlines_revised": 1,
                                  "rectifications_failed": 1},
                     "followup": {"followups_failed": 2, "referrals_failed": 0,
                                  "rules_unparked": 4},
                     "intake": {"hook_failed": 1}}) == 4
    assert failures({"feedback": {"rectifications_checked": 3}}) == 0


async def test_a_failed_re_planning_is_tried_again_backing_off_until_it_goes_through() -> None:
    said = Said()
    pauses: list[float] = []
    outcomes = iter([3, 2, 1, 1, 1, 1, 1, 1, 0])  # items failed at each try
    pending = Pending("feedback", said)
    through = asyncio.Event()

    async def paused(seconds: float) -> None:
        pauses.append(seconds)

    async def replan() -> None:
        failed = next(outcomes)
        pending.went(failed)
        if not failed:
            through.set()

    pending.sleep = paused
    retrying = asyncio.create_task(pending.keep_retrying(replan))
    pending.went(4)  # the reload's re-planning: 4 items failed
    assert pending.since is not None and pending.failed == 4
    await through.wait()
    retrying.cancel()
    await asyncio.gather(retrying, return_exceptions=True)
    assert pauses == [RETRY_FIRST_S * 2 ** n for n in range(6)] + [RETRY_MOST_S] * 3
    assert (pending.since, pending.failed) == (None, 0)
    assert said.lines == ["calendar.replan_pending", "calendar.replan_caught_up"]


async def test_a_reload_that_went_through_meanwhile_ends_the_retry_without_another_try() -> None:
    pending = Pending("followup", Said())
    tried: list[int] = []
    paused = asyncio.Event()

    async def pause(_: float) -> None:
        pending.went(0)  # a reload went through during the pause
        paused.set()

    async def replan() -> None:
        tried.append(1)

    pending.sleep = pause
    retrying = asyncio.create_task(pending.keep_retrying(replan))
    pending.went(1)
    await paused.wait()  # the retry runs on to its wait before this task resumes
    assert not pending.wanted.is_set()
    retrying.cancel()
    await asyncio.gather(retrying, return_exceptions=True)
    assert tried == []


class Lines:
    """A logger keeping each line's event and fields."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


class Candidates:
    """A read model naming ``ids`` (one page)."""

    def __init__(self, ids: list[UUID]) -> None:
        self.ids = ids

    async def fetch(self, _: str, after: UUID | None, batch: int, *__: Any) -> list[tuple[UUID]]:
        return [] if after is not None else [(i,) for i in self.ids[:batch]]


async def test_an_item_that_cannot_go_through_is_said_once_per_error_then_at_a_slower_pace(
        ) -> None:
    # Three rectifications recounted into a year no calendar covers fail at every try (once
    # a minute): said once, with how many items and which, not three lines a minute for ever.
    ids = sorted(uuid4() for _ in range(3))
    now = [0.0]
    said = replanning.FailureLog(clock=lambda: now[0])
    log = Lines()

    async def uncovered(rectification_id: UUID) -> bool:
        raise CalendarNotCovered("no working-day calendar for year 2028", year=2028)

    async def a_try() -> int:
        told = replanning.FAILURES.set(said)
        try:
            said.begin()
            done = await replanning.replan_each(
                Candidates(ids), "", uncovered,  # type: ignore[arg-type]
                batch=500, log=log, key="rectification_id")
        finally:
            replanning.FAILURES.reset(told)
        return done.failed

    assert await a_try() == 3
    [(event, fields)] = log.lines
    assert event == "replan.failed" and fields["items"] == 3
    assert fields["rectification_id"] == str(ids[0]) and fields["more"] == [str(ids[1]),
                                                                              str(ids[2])]
    assert "CalendarNotCovered" in fields["error"] and "again" not in fields
    assert said.summary() == f"{fields['error']} (3 items)"
    for _ in range(59):  # an hour of tries, a minute apart: nothing more said
        now[0] += 60
        assert await a_try() == 3
    assert len(log.lines) == 1
    now[0] += 60  # an hour after it was said: said again, with the tries since
    await a_try()
    assert len(log.lines) == 2 and log.lines[1][1]["again"] == 59
    # Another error is said at once.
    said.say(log, "replan.failed", "TimeoutError: the write was not taken", ["x"], "case_id")
    assert log.lines[2][1] == {"error": "TimeoutError: the write was not taken", "items": 1,
                               "case_id": "x"}


def test_the_error_a_pending_row_keeps_is_redacted_and_cut() -> None:
    """``/ops/calendar`` and ``calendar status`` print the row's error as stored: an exception
    quoting a resident's phone or ID number must not put it there (redteam123 saw hook errors
    stored unfiltered)."""
    from shared.runtime.replan_pending import ERROR_CHARS, stored_error

    said = stored_error("ValueError: input_value='13812345678' for 310101197505051234")
    assert said is not None
    assert "13812345678" not in said and "310101197505051234" not in said, said
    assert "ValueError" in said
    assert stored_error(None) is None
    assert len(stored_error("CalendarNotCovered: 2029 " * 100) or "") == ERROR_CHARS
