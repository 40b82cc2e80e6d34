"""Intake's word about a resident merged behind the batch that planned for them (``Rules.merges``).

A resident's erasure or care need read ahead while the batch in hand waits for the answer of
the check it planned for the resident's case: merged into its transaction, it acts once that
answer stands (``_Before.stood``), on the rows the batch in hand wrote before the wait. The
check of an erased resident never stays to fall due (a follow-up call to someone erased must
not go); a resident needing more care has it brought forward. Refused or stopped mid-way,
the batch before and the merged word go back together, and applied again they end the same.
On the calendar's edges: a Sunday in December, New Year's Eve at 23:30 in Shanghai, a year
the holiday package does not know (2027: provisional) and 29 February 2028."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Any, cast

import pytest

from services.followup.domain import follow_up_id_for
from shared.contracts import Envelope
from shared.contracts.registry import REGISTRY
from shared.kernel.errors import Unavailable
from shared.settings import Settings
from tests.faults.test_tracking_after_effects import Msg
from tests.followup.story import SHANGHAI, center_day
from tests.followup.test_rules_merged import (
    _applied,
    _hold_first_plans,
    _items,
    _read_ahead,
    _resolved,
    _rules_consumer,
    _stored,
    _taken_then_let_go,
)
from tests.followup.test_rules_one_round import CENTER, _opened
from tests.support import wait_until

DAYS = [datetime(2026, 12, 20, 10, tzinfo=SHANGHAI),
        datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI),
        datetime(2027, 2, 10, 9, tzinfo=SHANGHAI),
        datetime(2028, 2, 29, 15, tzinfo=SHANGHAI)]


def _about(resident: uuid.UUID, type_: str, at: datetime, payload: dict[str, Any]) -> Envelope:
    """Intake's word about a resident, on the resident's partition (no case)."""
    contract = REGISTRY.get(type_)
    return Envelope(
        event_id=uuid.uuid4(), type=type_, version=contract.version, service="intake",
        position=1, aggregate_id=resident, aggregate_version=1, case_id=None,
        center_id=CENTER, occurred_at=at, recorded_at=at, actor="clerk-017",
        payload=contract.payload.model_validate(
            {"resident_id": str(resident), **payload}).model_dump(mode="json"))


def _a_resolution_then(word: str, day: datetime) -> tuple[uuid.UUID, list[Envelope], Envelope]:
    """A case opened and resolved at the window (its check planned), then ``word`` about its
    resident: the resident asks to be erased, or the vault finds they need more care."""
    case_id, resident = uuid.uuid4(), uuid.uuid4()
    said = (_about(resident, "ResidentErased", day, {}) if word == "erased" else
            _about(resident, "CareNeedChanged", day, {"more_care": True}))
    return resident, [_opened(case_id, resident, day), _resolved(case_id, 2, day)], said


class _Merge:
    """A resolution applied with ``word`` about its resident read ahead, the answer of the
    check it plans held (``go``; refused when let go, when ``refuse``)."""

    def __init__(self, center: Any, monkeypatch: pytest.MonkeyPatch, word: str,
                 day: datetime, *, refuse: bool) -> None:
        self.consumer, self.acked = _rules_consumer(center)
        self.resident, events, said = _a_resolution_then(word, day)
        self.first, self.nxt = _items(events, 1), _items([said], 3)
        self.check = follow_up_id_for("resolution", events[1].event_id)
        self.go = _hold_first_plans(monkeypatch, center.app.state.followups, refuse=refuse)
        self.ahead = _read_ahead(self.consumer, self.nxt)

    def answers(self) -> list[str | None]:
        return [cast(Msg, i.msg).answer for i in self.first + self.nxt]


async def _erased(center: Any, resident: uuid.UUID) -> bool | None:
    return await center.app.state.pool.fetchval(
        "SELECT erased FROM resident_consent WHERE resident_id = $1", resident)


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d-%H%M"))
async def test_an_erasure_merged_behind_the_resolution_cancels_the_check_it_planned(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The resident, their case just resolved, asks at the next window to be erased. The
    erasure is read ahead while the resolution's check waits for its round: merged, it waits
    for that answer, finds the check in the rows the resolution wrote and cancels it."""
    async with center_day(settings, day, with_intake=False) as center:
        m = _Merge(center, monkeypatch, "erased", day, refuse=False)
        await _taken_then_let_go(m.consumer, center, m.first, m.ahead, m.go)
        assert m.consumer.stats.merged == 1
        assert m.answers() == ["ack"] * 3
        assert m.acked == [3]  # one write, after the commit
        assert await _erased(center, m.resident) is True
        assert _stored(center, m.check).status == "cancelled", (
            "a check planned for a resident erased right after stays to fall due")


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d-%H%M"))
async def test_an_erasure_merged_behind_a_refused_resolution_goes_back_and_still_ends_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The store is away past the check's due time: the resolution is refused, and the
    erasure merged behind it goes back with it, nothing of it stored (no erased row, the
    batch before's check never recorded). Applied again in order, the check is planned and
    cancelled by the erasure merged behind it again."""
    async with center_day(settings, day, with_intake=False) as center:
        m = _Merge(center, monkeypatch, "erased", day, refuse=True)
        with pytest.raises(Unavailable):
            await _taken_then_let_go(m.consumer, center, m.first, m.ahead, m.go)
        assert _stored(center, m.check) is None  # never recorded
        await _back_whole_then_applied_again(center, m)


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d-%H%M"))
async def test_a_care_need_merged_behind_the_resolution_brings_its_check_forward(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The vault finds the resident lives alone, just after their case was resolved: merged
    behind the resolution, the care need waits for the check's answer, then makes it the
    early check, high priority."""
    async with center_day(settings, day, with_intake=False) as center:
        m = _Merge(center, monkeypatch, "cared", day, refuse=False)
        await _taken_then_let_go(m.consumer, center, m.first, m.ahead, m.go)
        assert m.consumer.stats.merged == 1
        assert m.answers() == ["ack"] * 3
        stored = _stored(center, m.check)
        assert stored.status == "scheduled"
        assert stored.priority == "high", "the resident's care need did not reach the check"


@pytest.mark.parametrize("day", DAYS[1:2], ids=lambda d: d.strftime("%Y-%m-%d-%H%M"))
async def test_a_batch_stopped_while_the_merged_erasure_waits_goes_back_whole(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The service is stopped (SIGTERM) while the erasure merged behind the resolution waits
    for the check's answer: both go back unacked, nothing of the erasure stands, and the
    consumer after the restart applies them again to the same end."""
    async with center_day(settings, day, with_intake=False) as center:
        m = _Merge(center, monkeypatch, "erased", day, refuse=False)
        batch = asyncio.ensure_future(_applied(m.consumer, center, m.first))
        try:
            async def taken() -> bool:
                return m.ahead == [] or batch.done()
            await wait_until(taken, timeout=10, what="the erasure taken while plans wait")
            assert m.ahead == [], "the batch finished without taking the erasure"
        finally:
            batch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batch
            m.go.set()
        await _back_whole_then_applied_again(center, m)


async def _back_whole_then_applied_again(center: Any, m: _Merge) -> None:
    """Nothing of the batch or the erasure merged behind it stands, the erasure the next
    batch again; applied again in order, the erasure ends the check."""
    assert m.ahead == [i.msg for i in m.nxt], "the erasure is the next batch again"
    assert m.answers() == [None] * 3
    assert await _erased(center, m.resident) is None
    _read_ahead(m.consumer, m.nxt)
    await _applied(m.consumer, center, m.first)
    assert m.answers() == ["ack"] * 3
    assert await _erased(center, m.resident) is True
    assert _stored(center, m.check).status == "cancelled"
