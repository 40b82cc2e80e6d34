"""intake's verdicts consumer reopens each case's "not solved" side by side. One case's
command failing (the store out of reach) gave the batch back at once (a plain
``asyncio.gather``) while another case's reopening was still on its way: the batch, rolled
back and applied again, met that reopening still running beside its own. The batch now fails
once every case's command has ended (``shared.kernel.tasks.gather_all``). Server-free: the
application and the events are stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import uuid4

import pytest

from services.intake import helpers
from services.intake.verdicts import Verdicts
from tests.support import OneFailsOneSlow, failed_once_ended


class StoreGone(Exception):
    pass


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
    reopening = OneFailsOneSlow(StoreGone)
    verdicts = Verdicts(SimpleNamespace(hear_unsolved=reopening))  # type: ignore[arg-type]
    # no reopening still on its way
    assert await failed_once_ended(verdicts.apply(None, [not_solved(), not_solved()]),  # type: ignore[arg-type]
                                   reopening)
