"""Group commit's two lanes: the survey scheduler's round of sends does not hold the live path.

The writer's own work is stubbed (``_attempt`` answers each command in the order it writes
them; a barrier holds the first batch), so these see only which commands each batch takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError

from shared.eventstore.group_commit import GroupCommitter, Sent, Written, background
from shared.kernel.errors import Unavailable, VersionConflict

_APP = SimpleNamespace(recorder=SimpleNamespace(
    datastore=SimpleNamespace(schema="test"), events_table_name="stored_events"))


class _OrderedWriter(GroupCommitter):
    """Writes each batch's commands at the next log positions; the first batch is held until
    ``go`` is set (``taken`` says it is in hand)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_APP, **kwargs)  # type: ignore[arg-type]
        self.taken = threading.Event()
        self.go = threading.Event()
        self.batches: list[list[str]] = []
        self.position = 0

    def _attempt(self, batch: list[Any]) -> None:
        self.taken.set()
        self.go.wait(10)
        self.batches.append([item.ids[0].hex[:4] for item in batch])
        for item in batch:
            self.position += 1
            item.outcome = Written(item.ids[0], 1, self.position)


@contextlib.asynccontextmanager
async def _started(**kwargs: Any) -> AsyncIterator[_OrderedWriter]:
    committer = _OrderedWriter(**kwargs)
    committer.start()
    try:
        yield committer
    finally:
        committer.go.set()
        await committer.close()


def _never_run(unit: Any) -> Any:
    raise AssertionError("the stub answers without running commands")


def _sends(committer: GroupCommitter, n: int) -> list[Sent]:
    """The scheduler's round: ``n`` SurveySent commands queued at once in its lane."""
    lane = background.set(True)
    try:
        return [committer.send(_never_run, [uuid.UUID(int=i + 1)]) for i in range(n)]
    finally:
        background.reset(lane)


async def test_a_survey_request_that_comes_while_500_sends_are_in_hand_is_written_before_their_rest(
        ) -> None:
    async with _started(background_patience_s=30.0) as committer:  # however slow the host
        sends = _sends(committer, 500)
        await asyncio.to_thread(committer.taken.wait, 10)  # the writer holds its first chunk
        request = committer.send(_never_run, [uuid.uuid4()])  # the follower's, live
        committer.go.set()
        written = await request
        positions = [(await one).position for one in sends]
        first = len(committer.batches[0])
        assert 0 < first < 500, "the round goes in chunks"
        # The request waited for the chunk in hand only: every send after it comes later.
        assert written.position == first + 1
        assert positions == sorted(positions), "the sends keep their order"
        assert positions[first] > written.position
        assert committer.batches[1] == [written.aggregate_id.hex[:4]], \
            "written alone, not in a chunk of sends"


async def test_sends_waiting_behind_live_writes_that_never_stop_go_with_them_after_their_patience(
        ) -> None:
    async with _started(background_patience_s=0.0) as committer:
        live = committer.send(_never_run, [uuid.uuid4()])
        await asyncio.to_thread(committer.taken.wait, 10)
        sends = _sends(committer, 3)
        more = committer.send(_never_run, [uuid.uuid4()])  # live, queued after the sends
        committer.go.set()
        await live
        # Past their patience the sends go in the live batch, after its command: neither
        # waits for a batch of the other.
        assert [(await one).position for one in (more, *sends)] == [2, 3, 4, 5]
        assert len(committer.batches) == 2


async def test_a_round_of_sends_queued_just_before_the_service_stops_is_still_stored() -> None:
    committer = _OrderedWriter()
    committer.go.set()
    committer.start()
    sends = _sends(committer, 150)
    await committer.close()  # "finish what was accepted, then stop": both lanes
    assert all(one._item.future.done() for one in sends)
    assert [len(b) for b in committer.batches] == [64, 64, 22]
    assert time.monotonic() >= sends[0]._item.since > 0


async def test_a_send_queued_while_a_live_burst_is_gathered_does_not_cut_the_burst_short(
        ) -> None:
    # The live path's batches are as without the lane: the collector waits for the rest of a
    # burst (fewer queued than the last batch held) up to ``max_wait``; a background command
    # queued meanwhile wakes it, but is no live command for the burst.
    async with _started(max_wait_ms=30_000.0) as committer:  # however slow the host
        committer.go.set()
        committer._last = 2  # the last live batch held two: a burst of two is awaited
        first = committer.send(_never_run, [uuid.UUID(int=0xA000 << 112)])
        for _ in range(5):
            await asyncio.sleep(0)  # the collector holds the first, waits for the rest
        sends = _sends(committer, 1)
        for _ in range(5):
            await asyncio.sleep(0)  # woken by the send's arrival
        second = committer.send(_never_run, [uuid.UUID(int=0xC000 << 112)])
        await first
        await second
        await sends[0]
        assert committer.batches[0] == ["a000", "c000"], committer.batches
        assert committer.batches[1] == ["0000"], committer.batches


async def test_live_writers_batches_are_as_without_the_lane() -> None:
    # Intake's and follow-up's writers never set ``background``: their batches are those of
    # the writer before the lane (the first alone, then ``max_batch`` at most, in order).
    async with _started() as committer:
        first = committer.send(_never_run, [uuid.UUID(int=1 << 112)])
        await asyncio.to_thread(committer.taken.wait, 10)
        rest = [committer.send(_never_run, [uuid.UUID(int=(i + 2) << 112)]) for i in range(300)]
        committer.go.set()
        positions = [(await one).position for one in (first, *rest)]
        assert positions == list(range(1, 302))
        assert [len(b) for b in committer.batches] == [1, 256, 44]
        assert not committer._later


class _OneConflict(_OrderedWriter):
    """As ``_OrderedWriter``, but a batch holding ``bad`` is refused by the store."""

    bad: uuid.UUID | None = None

    def _attempt(self, batch: list[Any]) -> None:
        if any(item.ids[0] == self.bad for item in batch):
            self.taken.set()
            self.go.wait(10)
            self.batches.append(["refused"])
            raise IntegrityError("duplicate key")
        super()._attempt(batch)


async def test_a_ride_along_chunk_refused_by_the_store_leaves_each_caller_its_own_answer() -> None:
    committer = _OneConflict(background_patience_s=0.0)
    committer.start()
    try:
        live = committer.send(_never_run, [uuid.UUID(int=0xA << 124)])
        await asyncio.to_thread(committer.taken.wait, 10)
        sends = _sends(committer, 3)
        committer.bad = sends[1]._item.ids[0]  # a unique violation in the chunk
        more = committer.send(_never_run, [uuid.UUID(int=0xB << 124)])
        committer.go.set()
        await live
        assert (await more).position == 2  # its batch ran again, each command alone
        assert (await sends[0]).position == 3
        with pytest.raises(VersionConflict):
            await sends[1]
        assert (await sends[2]).position == 4
        assert ["refused"] in committer.batches
    finally:
        committer.go.set()
        await committer.close()


class _StoreAway(_OrderedWriter):
    def _attempt(self, batch: list[Any]) -> None:
        self.batches.append(["away"])
        raise PersistenceError("connection refused")


async def test_stopping_with_a_round_queued_and_the_store_away_answers_every_send() -> None:
    committer = _StoreAway(write_timeout_s=0.3)
    committer.start()
    sends = _sends(committer, 1000)
    await committer.close()  # ends once each send's bound has passed, not hung on the store
    for one in sends:
        with pytest.raises(Unavailable):
            await one
    assert committer.batches, "the store was tried"
