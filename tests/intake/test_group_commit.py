"""Group commit: commands that arrive together commit together, and each one's failure stays
its own, also when it fails after it has already recorded events on a case of the batch."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.intake.application import IntakeApplication
from services.intake.domain import Case
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter, Unit, Written, answered
from shared.kernel.errors import InvalidCommand, NotFound
from shared.kernel.meta import Meta
from shared.settings import Settings


def meta(key: str) -> Meta:
    return {"actor": "clerk-001", "occurred_at": datetime.now(UTC), "causation_id": key,
            "correlation_id": None}


def opening(case_id: uuid.UUID, *, then_fail: bool = False) -> Any:
    def run(unit: Unit) -> Aggregate:
        case = Case(id=case_id, center_id="SH-PD-HUAMU", counter_id="window-1",
                    clerk_id="clerk-001", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                    resident_id=None, meta=meta(f"open-{case_id}"))
        unit.add(case)
        if then_fail:
            raise InvalidCommand("the clerk opened it by mistake")
        return case
    return run


def hearing(case_id: uuid.UUID, words: str, *, then_fail: bool = False) -> Any:
    def run(unit: Unit) -> Aggregate:
        case: Case = unit.get(case_id)
        case.hear_request(words, meta(f"hear-{uuid.uuid4()}"))
        if then_fail:
            raise InvalidCommand("the resident took it back")
        return case
    return run


async def test_each_failure_in_a_batch_stays_its_own(settings: Settings) -> None:
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    batches: list[int] = []
    committer = GroupCommitter(app, max_wait_ms=200, on_batch=batches.append)
    committer.start()
    try:
        opened = [uuid.uuid4() for _ in range(3)]
        assert all(isinstance(w, Written) for w in await asyncio.gather(
            *[committer.submit(opening(i), [i]) for i in opened]))
        fresh, spoiled, missing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        results = await asyncio.gather(
            committer.submit(opening(fresh), [fresh]),
            committer.submit(hearing(opened[0], "想问补贴"), [opened[0]]),
            committer.submit(hearing(opened[0], "又改口了", then_fail=True), [opened[0]]),
            committer.submit(opening(spoiled, then_fail=True), [spoiled]),
            committer.submit(hearing(missing, "没有这个案子"), [missing]),
            committer.submit(hearing(opened[1], "想问医保"), [opened[1]]),
            return_exceptions=True)
        assert batches[-1] == 6, batches  # one batch: the taken-back hearing spoils it, re-run
        written = [r for r in results if isinstance(r, Written)]
        assert [type(r) for r in results] == [Written, Written, InvalidCommand, InvalidCommand,
                                             NotFound, Written]
        assert len({w.position for w in written}) == 3
        assert app.repository.get(opened[0]).version == 2  # the one taken back is not there
        assert app.repository.get(opened[1]).version == 2
        assert app.repository.get(fresh).version == 1
        with pytest.raises(AggregateNotFoundError):
            app.repository.get(spoiled)
    finally:
        await committer.close()
        app.close()


@contextlib.asynccontextmanager
async def committing(settings: Settings, batches: list[int]
                     ) -> AsyncIterator[tuple[IntakeApplication, GroupCommitter]]:
    """Intake's store and a group commit writing to it, each round's size in ``batches``."""
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app, max_wait_ms=200, on_batch=batches.append)
    committer.start()
    try:
        yield app, committer
    finally:
        await committer.close()
        app.close()


async def test_commands_sent_together_are_answered_each_in_one_round(
        settings: Settings) -> None:
    """A consumer's batch sends its commands before awaiting any (``send``): one round, in the
    order sent (a hearing on a case opened by the command before it), each answered alone: a
    refused one (404) costs none of the others, and ``answered`` raises it only once every
    answer is in; one withdrawn before its round is never stored."""
    batches: list[int] = []
    async with committing(settings, batches) as (app, committer):
        first, second, dropped, missing = (uuid.uuid4() for _ in range(4))
        sent = [committer.send(opening(first), [first]),
                committer.send(hearing(first, "想问补贴"), [first]),
                committer.send(hearing(missing, "没有这个案子"), [missing]),
                committer.send(opening(second), [second])]
        committer.send(opening(dropped), [dropped]).withdraw()
        with pytest.raises(NotFound):
            await answered(sent)
        assert len(batches) == 1, batches  # one round (the withdrawn one taken, not run)
        stored = {i: app.repository.get(i).version for i in (first, second)}
        assert stored == {first: 2, second: 1}
        assert not any(True for _ in app.events.get(dropped))  # never stored


async def test_a_clerk_writing_alone_is_not_held_back_waiting_for_company(
        settings: Settings) -> None:
    """One counter at a quiet hour: each write goes as soon as the writer is free, however
    long a batch may wait for a burst still arriving (a minute here)."""
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    batches: list[int] = []
    committer = GroupCommitter(app, max_wait_ms=60_000, on_batch=batches.append)
    committer.start()
    try:
        for _ in range(2):
            case_id = uuid.uuid4()
            written = await asyncio.wait_for(committer.submit(opening(case_id), [case_id]), 30)
            assert written.aggregate_id == case_id
        assert batches == [1, 1]
    finally:
        await committer.close()
        app.close()


def busy_until_stored(app: IntakeApplication, case_id: uuid.UUID, within_s: float) -> bool:
    """Keep the calling thread (the event loop's) busy until ``case_id`` is stored."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            return app.repository.get(case_id).version >= 1
        except AggregateNotFoundError:
            time.sleep(0.01)
    return False


async def test_a_write_queued_behind_a_batch_is_stored_while_the_event_loop_is_busy(
        settings: Settings) -> None:
    """The morning rush: a clerk's write comes while the writer stores the batch before it,
    and the service's event loop is then busy for a while (a long stretch of other work).
    The writer goes on to the queued write as soon as its batch is stored: it does not wait
    for a turn of the loop to take the next batch."""
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app, max_wait_ms=0)
    committer.start()
    inside, go_on = threading.Event(), threading.Event()

    def held_opening(case_id: uuid.UUID) -> Any:
        open_it = opening(case_id)

        def run(unit: Unit) -> Aggregate:
            inside.set()  # the writer is in this batch now
            go_on.wait(30)
            return open_it(unit)
        return run

    first, queued = uuid.uuid4(), uuid.uuid4()
    try:
        writing = asyncio.ensure_future(committer.submit(held_opening(first), [first]))
        assert await asyncio.to_thread(inside.wait, 30)
        waiting = asyncio.ensure_future(committer.submit(opening(queued), [queued]))
        await asyncio.sleep(0)  # submitted: queued behind the batch in hand
        go_on.set()
        assert busy_until_stored(app, queued, within_s=10), (
            "the queued write waited for the event loop")
        assert (await writing).aggregate_id == first
        assert (await waiting).aggregate_id == queued
    finally:
        go_on.set()
        await committer.close()
        app.close()
