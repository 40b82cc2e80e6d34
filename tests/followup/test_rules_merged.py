"""Follow-up's rules take the next batch read ahead into their transaction while the batch in
hand waits for its commands' answers (``shared.bus.consumer.Merging``, ``Rules.merges``).

The next batch reads what the batch in hand planned for its cases (``rule_followups``):
those rows are written once every case of the batch has sent its commands, before any answer
comes, so a reopening merged right behind a resolution finds the check it planned and
cancels it. And the next batch acts on a case of the batch in hand only once that batch's
answers stand (``_Before.stood``): a plan whose command was refused is in the rows but not
in the store, and the merged batch, handed back, is applied after the batch before again,
in the case's order, with nothing of it stored meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import pytest

from services.followup.domain import follow_up_id_for
from shared.bus.consumer import Consumer, _Item
from shared.contracts import Envelope
from shared.kernel.errors import Unavailable
from shared.settings import Settings
from tests.faults.test_tracking_after_effects import Msg
from tests.followup.story import center_day
from tests.followup.test_rules_one_round import DAYS, _event, _opened
from tests.support import wait_until


class Held:
    """The batch's last follow-ups' command (``FollowUps.schedule_each``), its answer held
    until the test lets it go: the answer the store gives (``sent``), or a refusal with
    nothing recorded (None: never sent, as one withdrawn at its write's due time)."""

    def __init__(self, sent: Any, go: asyncio.Event) -> None:
        self.sent, self.go = sent, go

    def withdraw(self) -> None:
        if self.sent is not None:
            self.sent.withdraw()

    def __await__(self) -> Any:
        return self._answer().__await__()

    async def _answer(self) -> Any:
        await self.go.wait()
        if self.sent is None:
            raise Unavailable("the write was not taken within WRITE_TIMEOUT_S; nothing was "
                              "recorded")
        return await self.sent


def _hold_first_plans(monkeypatch: pytest.MonkeyPatch, followups: Any, *, refuse: bool
                      ) -> asyncio.Event:
    """The next ``schedule_each`` (the batch in hand's) held until the event returned is set
    (refused then, when ``refuse``); the later ones as they are."""
    go = asyncio.Event()
    original = followups.schedule_each
    calls: list[int] = []

    def schedule_each(plans: Sequence[Any]) -> Any:
        calls.append(len(plans))
        if len(calls) > 1:
            return original(plans)
        return Held(None if refuse else original(plans), go)

    monkeypatch.setattr(followups, "schedule_each", schedule_each)
    return go


def _rules_consumer(center: Any) -> tuple[Consumer, list[Any]]:
    """A consumer of its own (its own tracking rows) around follow-up's live rules."""
    rules = center.app.state.runtime.consumers["followup-rules"].handler
    consumer = Consumer(settings=center.settings, nc=cast(Any, None),
                        pool=center.app.state.pool,
                        name="rules-merged", handler=rules, filter_subjects=[])
    acked: list[Any] = []

    async def ack(msgs: list[Any]) -> None:
        for msg in msgs:
            await msg.ack()
        acked.append(len(msgs))
    consumer._ack = ack  # type: ignore[method-assign]
    return consumer, acked


def _items(events: list[Envelope], first_seq: int) -> list[_Item]:
    return [_Item(msg=cast(Any, Msg()), seq=first_seq + i, delivered=1, envelope=e)
            for i, e in enumerate(events)]


def _read_ahead(consumer: Consumer, items: list[_Item]) -> list[Any]:
    """``items`` read ahead and decoded, as the consumer's loop leaves them."""
    ahead = [i.msg for i in items]
    consumer._ahead = ahead
    consumer._decoded_ahead = {id(i.msg): i for i in items}
    return ahead


async def _applied(consumer: Consumer, center: Any, items: list[_Item]) -> None:
    async with center.app.state.pool.acquire() as conn:
        consumer._conn = conn
        try:
            await consumer._apply(items)
        finally:
            consumer._conn = None


async def _taken_then_let_go(consumer: Consumer, center: Any, items: list[_Item],
                             ahead: list[Any], go: asyncio.Event) -> None:
    """``items`` applied, the answer of its plans let go once the batch read ahead was
    taken into its transaction."""
    batch = asyncio.ensure_future(_applied(consumer, center, items))
    try:
        async def taken() -> bool:
            return ahead == [] or batch.done()
        await wait_until(taken, timeout=10, what="the next batch taken while plans wait")
        assert ahead == [], "the batch finished without taking the next one"
    except BaseException:
        go.set()
        with contextlib.suppress(Exception):  # this failure, not the batch's, is the test's
            await batch
        raise
    go.set()
    await batch


def _stored(center: Any, aggregate_id: uuid.UUID) -> Any:
    store = center.app.state.followups.committer.app
    try:
        return store.repository.get(aggregate_id)
    except Exception:  # AggregateNotFoundError
        return None


def _reopened(case_id: uuid.UUID, version: int, at: datetime, reason: str) -> Envelope:
    return _event(case_id, version, "CaseReopened", at, {"reason": reason})


def _resolved(case_id: uuid.UUID, version: int, at: datetime) -> Envelope:
    return _event(case_id, version, "CaseResolved", at, {
        "outcome": "resolved", "explanation": "已当场办结", "emotion_defused": True})


async def _rows(center: Any, case_id: uuid.UUID) -> set[tuple[uuid.UUID, str]]:
    return {(r["follow_up_id"], r["rule"]) for r in await center.app.state.pool.fetch(
        "SELECT follow_up_id, rule FROM rule_followups WHERE case_id = $1", case_id)}


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_reopening_merged_behind_the_resolution_cancels_the_check_it_planned(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """A case opened and resolved at the window; the clerk reopens it minutes later (the
    resident came back with a paper missing). The reopening is read ahead while the
    resolution's post-resolution check waits for its round, and applied in the same
    transaction: it finds the check in the rows the resolution wrote before the wait and
    cancels it. Had the rows waited for the answers, the reopening read none, and the check
    of a case being worked on again stayed on the clerk's list."""
    async with center_day(settings, day, with_intake=False) as center:
        consumer, acked = _rules_consumer(center)
        case_id, resident = uuid.uuid4(), uuid.uuid4()
        first = _items([_opened(case_id, resident, day), _resolved(case_id, 2, day)], 1)
        nxt = _items([_reopened(case_id, 3, day, "补交材料")], 3)
        check = follow_up_id_for("resolution", cast(Envelope, first[1].envelope).event_id)
        go = _hold_first_plans(monkeypatch, center.app.state.followups, refuse=False)
        ahead = _read_ahead(consumer, nxt)
        await _taken_then_let_go(consumer, center, first, ahead, go)
        assert consumer.stats.merged == 1
        assert [cast(Msg, i.msg).answer for i in first + nxt] == ["ack"] * 3
        assert acked == [3]  # one write, after the commit
        assert _stored(center, check).status == "cancelled"
        assert await _rows(center, case_id) == {(check, "post_resolution_check")}


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_merged_batch_does_not_act_on_a_plan_whose_command_was_refused(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The resident says at the check that it was not solved: the reopening's "not solved"
    follow-up is planned, but the store is away past the write's due time and nothing is
    recorded. Read ahead meanwhile, the case resolved again: merged behind the reopening, it
    waits for the reopening's answers, and with the refusal both go back with nothing of
    the resolution stored (no new check beside a "not solved" follow-up that does not
    exist). Applied again, the reopening plans its follow-up, and the resolution merged
    behind it takes that follow-up up and plans the new check, in the case's order."""
    async with center_day(settings, day, with_intake=False) as center:
        consumer, acked = _rules_consumer(center)
        case_id, resident = uuid.uuid4(), uuid.uuid4()
        before = _items([_opened(case_id, resident, day), _resolved(case_id, 2, day)], 1)
        await _applied(consumer, center, before)
        first = _items([_reopened(case_id, 3, day, "resident_says_unsolved")], 3)
        nxt = _items([_resolved(case_id, 4, day)], 4)
        unsolved = follow_up_id_for("unsolved", cast(Envelope, first[0].envelope).event_id)
        second_check = follow_up_id_for("resolution",
                                        cast(Envelope, nxt[0].envelope).event_id)
        go = _hold_first_plans(monkeypatch, center.app.state.followups, refuse=True)
        ahead = _read_ahead(consumer, nxt)
        with pytest.raises(Unavailable):
            await _taken_then_let_go(consumer, center, first, ahead, go)
        assert _stored(center, second_check) is None, (
            "the merged resolution planned its check while the reopening it follows was "
            "refused")
        assert _stored(center, unsolved) is None
        assert ahead == [i.msg for i in nxt], "the resolution is the next batch again"
        assert [cast(Msg, i.msg).answer for i in first + nxt] == [None, None]
        assert consumer.stats.merged == 0  # taken, refused with the batch before

        # The batch again, as the consumer gives it after its back-off, the resolution read
        # ahead again.
        _read_ahead(consumer, nxt)
        await _applied(consumer, center, first)
        assert consumer.stats.merged == 1
        assert [cast(Msg, i.msg).answer for i in first + nxt] == ["ack", "ack"]
        assert acked[-1] == 2
        assert _stored(center, unsolved).status == "cancelled"
        assert _stored(center, second_check).status == "scheduled"


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_merged_batch_of_another_case_refused_with_the_batch_before_stands_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """The resident's other case is resolved while the reopening's "not solved" follow-up
    waits for its round: merged, it plans its check at once (no step of the reopened case,
    nothing to wait for). The reopening is refused: both go back, the check already stored
    (the merged batch's commands do not wait for the batch before's). Applied again in
    order, the check is found under the same id, scheduled once, and its row written. (The
    merge is counted as taken, also the one rolled back: ``sixstep_consumer_merged_batches_
    total`` says so.)"""
    async with center_day(settings, day, with_intake=False) as center:
        consumer, acked = _rules_consumer(center)
        case_id, other, resident = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await _applied(consumer, center, _items([
            _opened(case_id, resident, day), _resolved(case_id, 2, day),
            _opened(other, resident, day)], 1))
        first = _items([_reopened(case_id, 3, day, "resident_says_unsolved")], 4)
        nxt = _items([_resolved(other, 2, day)], 5)
        check = follow_up_id_for("resolution", cast(Envelope, nxt[0].envelope).event_id)
        go = _hold_first_plans(monkeypatch, center.app.state.followups, refuse=True)
        ahead = _read_ahead(consumer, nxt)
        with pytest.raises(Unavailable):
            await _taken_then_let_go(consumer, center, first, ahead, go)
        assert ahead == [i.msg for i in nxt], "the resolution is the next batch again"
        assert [cast(Msg, i.msg).answer for i in first + nxt] == [None, None]
        assert await _rows(center, other) == set()  # rolled back with the batch before
        assert _stored(center, check).status == "scheduled"  # sent: it waited for nothing
        assert consumer.stats.merged == 1  # counted as taken

        _read_ahead(consumer, nxt)
        await _applied(consumer, center, first)
        assert consumer.stats.merged == 2
        assert [cast(Msg, i.msg).answer for i in first + nxt] == ["ack", "ack"]
        assert acked[-1] == 2  # one write, after the commit
        assert _stored(center, check).status == "scheduled"
        assert await _rows(center, other) == {(check, "post_resolution_check")}
