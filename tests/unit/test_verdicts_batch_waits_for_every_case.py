"""intake's verdicts consumer reopens each case's "not solved" side by side. One case's
command failing (the store out of reach) gave the batch back at once (a plain
``asyncio.gather``) while another case's reopening was still on its way: the batch, rolled
back and applied again, met that reopening still running beside its own. The batch now fails
once every case's command has ended (``shared.kernel.tasks.gather_all``). Server-free: the
application and the events are stand-ins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest

from services.intake import helpers
from services.intake.verdicts import Verdicts


class StoreGone(Exception):
    pass


class Intake:
    """The first case's reopening fails once the second's is on its way; the second's takes
    a few more turns of the loop (its round trips) once it may go on."""

    def __init__(self) -> None:
        self.second_on_its_way = asyncio.Event()
        self.may_go_on = asyncio.Event()
        self.second_reopened = False

    async def hear_unsolved(self, case_id: UUID, verdict: object) -> bool:
        if not self.second_on_its_way.is_set():
            self.second_on_its_way.set()
            await self.may_go_on.wait()
            for _ in range(5):
                await asyncio.sleep(0)
            self.second_reopened = True
            return True
        self.may_go_on.set()
        raise StoreGone


def not_solved() -> SimpleNamespace:
    return SimpleNamespace(type="RatingGiven", case_id=uuid4(), payload={"verdict": "not_solved"},
                           event_id=uuid4(), occurred_at=datetime(2026, 12, 20, 9, tzinfo=UTC),
                           correlation_id=None, center_id="c1", actor="clerk-1",
                           recorded_at=datetime(2026, 12, 20, 9, tzinfo=UTC))


async def nothing(*args: object) -> None:
    return None


async def test_a_batch_with_a_failed_reopening_fails_once_the_other_cases_have_ended(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers, "keep", nothing)
    intake = Intake()
    batch = asyncio.create_task(Verdicts(intake).apply(None, [not_solved(), not_solved()]))  # type: ignore[arg-type]
    reopened_when_it_ended: list[bool] = []
    batch.add_done_callback(lambda _: reopened_when_it_ended.append(intake.second_reopened))
    with pytest.raises(StoreGone):
        await batch
    assert reopened_when_it_ended == [True]  # not still on its way
    while not intake.second_reopened:  # the old code's orphan ends here, not in the next test
        await asyncio.sleep(0)
