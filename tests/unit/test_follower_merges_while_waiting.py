"""Feedback's intake follower takes the next batch read ahead into its transaction while its
survey requests wait for their group-commit round (``shared.bus.consumer.Merging``): the
next batch is decided then, not after this round, this commit and its own tracking write.
Only when nothing of the batch is left to do after the answers and nothing of it is sent
later: a case's run of steps sends each step once the one before is answered, and the next
batch's command for that case must not go first."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.feedback import consumer
from shared.kernel.errors import Unavailable
from tests.unit.test_follower_batch_settled import _event, _Feedback, _Known, _opened_and_resolved

pytestmark = pytest.mark.usefixtures("no_store")


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> _Known:
    known = _Known()

    async def read(conn: Any, events: Any) -> tuple[dict[Any, Any], _Known]:
        return {}, known

    async def nothing(*args: Any) -> None:
        pass

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer, "save_cases", nothing)
    return known


class _Round:
    """The group commit's round: the requests are answered when the test says so."""

    def __init__(self) -> None:
        self.over = asyncio.Event()
        self.sent: list[uuid.UUID] = []

    def request(self, case: Any, consent: Any = None, plan: Any = None) -> Any:
        self.sent.append(case.case_id)
        return self.answer()

    async def answer(self) -> None:
        await self.over.wait()


async def test_the_next_batch_is_taken_while_the_requests_wait_for_their_round(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Sun 20 Dec 2026, the morning's resolutions: a batch of two lone survey requests
    waits for its round; the next batch read ahead is applied meanwhile, before the round
    is over, and the batch ends only once both its requests and the next batch are done."""
    round_ = _Round()
    monkeypatch.setattr(consumer, "answered", lambda sent: asyncio.gather(*sent))
    follower = consumer.IntakeFollower(_Feedback(round_.request))  # type: ignore[arg-type]
    merged = asyncio.Event()
    round_over_when_merged: list[bool] = []

    async def more(waiting: Any) -> None:
        round_over_when_merged.append(round_.over.is_set() or waiting.done())
        merged.set()

    first, second = uuid.uuid4(), uuid.uuid4()
    batch = asyncio.create_task(follower.apply(
        object(), [*_opened_and_resolved(first), *_opened_and_resolved(second)],  # type: ignore[arg-type]
        more))
    await asyncio.wait_for(merged.wait(), timeout=5)
    assert not batch.done(), "the batch ended before its requests were answered"
    round_.over.set()
    await asyncio.wait_for(batch, timeout=5)
    assert round_over_when_merged == [False]
    assert round_.sent == [first, second]


@pytest.mark.parametrize("why", ["a case's run of steps", "a resident's narrowed consent"])
async def test_a_batch_with_work_after_its_answers_does_not_take_the_next(
        monkeypatch: pytest.MonkeyPatch, no_store: _Known, why: str) -> None:
    """A case resolved, then reopened by staff and resolved again within the batch: its
    steps go one after the other, each once the one before is answered; the next batch's
    command for that case could go first, so the next batch waits for this one's commit.
    So it does behind a resident who narrowed their consent (their open surveys are
    withdrawn after the answers)."""
    round_ = _Round()
    round_.over.set()
    monkeypatch.setattr(consumer, "answered", lambda sent: asyncio.gather(*sent))
    ran: list[uuid.UUID] = []

    async def run(self: Any, steps: list[tuple[str, Any]], known: Any, plans: Any) -> Any:
        ran.append(steps[0][1].case_id)
        return consumer.Chain()

    monkeypatch.setattr(consumer.IntakeFollower, "_run", run)
    follower = consumer.IntakeFollower(_Feedback(round_.request))  # type: ignore[arg-type]
    taken: list[bool] = []

    async def more(waiting: Any) -> None:
        taken.append(True)

    lone, stepped = uuid.uuid4(), uuid.uuid4()
    events = [*_opened_and_resolved(lone), *_opened_and_resolved(stepped)]
    if why == "a case's run of steps":
        events += [_event(stepped, "CaseReopened", 3, reason="staff"),
                   _event(stepped, "CaseResolved", 4, outcome="resolved")]
    else:
        no_store.narrowed[uuid.uuid4()] = str(uuid.uuid4())

        async def no_open_surveys(conn: Any, resident_id: Any) -> list[uuid.UUID]:
            return []
        monkeypatch.setattr(consumer.residents, "open_surveys", no_open_surveys)
    await follower.apply(object(), events, more)  # type: ignore[arg-type]
    assert round_.sent, "the lone case's request was sent"
    assert taken == [], "the next batch was taken into a batch with work after its answers"


async def test_a_merged_batch_sends_nothing_for_a_case_before_its_request_stands(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """New year's eve, 23:30 in Shanghai: a batch asks the survey of a case resolved at the
    window and waits for its round; merged meanwhile, the case reopened by staff and
    resolved again. The batch's request is then refused (the store away past its due time:
    503), and the reopening's withdrawal, queued behind it with a later due time, went on
    alone: it found no survey (``_withdraw_unless_sent``: "none was made: nothing stands")
    and the second resolution asked anew, a survey that stays in the store when both
    batches are applied again and the first survey has gone by then (two for one day). The
    merged batch's commands for a case of the batch before wait for that batch's answers,
    and a refused one hands the merged batch back with nothing of it sent."""
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    known = _Known()

    async def read(conn: Any, events: Any) -> tuple[dict[Any, Any], _Known]:
        return {k: dict(v) for k, v in rows.items()}, known

    async def save(conn: Any, cases: list[dict[str, Any]]) -> None:
        rows.update({c["case_id"]: dict(c) for c in cases})

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer, "save_cases", save)
    refused = asyncio.Event()
    sent: list[str] = []

    async def refuse() -> None:
        await refused.wait()
        raise Unavailable("the write was not taken within 5 s (WRITE_TIMEOUT_S)")

    def request(case: Any, consent: Any = None, plan: Any = None) -> Any:
        sent.append(f"request {case.resolved_event_id}")
        return refuse() if len(sent) == 1 else asyncio.sleep(0)

    async def withdraw(self: Any, survey_id: Any, cause: str) -> None:
        sent.append(f"withdraw {survey_id}")

    monkeypatch.setattr(consumer, "answered", lambda s: asyncio.gather(*s))
    monkeypatch.setattr(consumer.IntakeFollower, "_withdraw", withdraw)
    follower = consumer.IntakeFollower(_Feedback(request))  # type: ignore[arg-type]
    case = uuid.uuid4()
    first = _opened_and_resolved(case)
    nxt = [_event(case, "CaseReopened", 3, reason="staff"),
           _event(case, "CaseResolved", 4, outcome="resolved")]
    merged: list[BaseException | None] = []

    async def more(waiting: Any) -> None:  # as ``Batches._more``: a failure hands it back
        task = asyncio.ensure_future(follower.apply(object(), nxt))  # type: ignore[arg-type]
        for _ in range(20):  # the merged batch's rounds, the first's still unanswered
            await asyncio.sleep(0)
        refused.set()
        await asyncio.wait((task,))
        merged.append(task.exception())

    with pytest.raises(Unavailable):
        await follower.apply(object(), first, more)  # type: ignore[arg-type]
    assert sent == [f"request {first[1].event_id}"], "the merged batch went on alone"
    assert merged and merged[0] is not None, "the merged batch stood without the first's"


async def test_a_batch_stopped_twice_while_merging_ends_after_its_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """31 Dec 2026, 23:30 in Shanghai, the service stopping: a batch waiting for its survey
    request's round, the next batch being taken, is cancelled, and cancelled again (a
    shutdown cancels its loop every 0.2 s) while the request is still being withdrawn. The
    batch ends only once the request has: its transaction must not roll back with a
    command of it still on its way to the store (``cancel_and_wait``)."""
    order: list[str] = []
    in_more, unwinding, let_go, withdrawn = (asyncio.Event() for _ in range(4))

    async def answer() -> None:
        try:
            await asyncio.Event().wait()  # the round never ends here
        except asyncio.CancelledError:
            unwinding.set()
            try:
                await let_go.wait()  # its withdrawal takes a few turns of the loop
            finally:
                order.append("request")
                withdrawn.set()
            raise

    monkeypatch.setattr(consumer, "answered", lambda sent: asyncio.gather(*sent))
    follower = consumer.IntakeFollower(_Feedback(  # type: ignore[arg-type]
        lambda case, consent=None, plan=None: answer()))

    async def more(waiting: Any) -> None:
        in_more.set()
        await asyncio.Event().wait()  # the next batch's events are still arriving

    async def batch() -> None:
        try:
            await follower.apply(object(), _opened_and_resolved(uuid.uuid4()),  # type: ignore[arg-type]
                                 more)
        finally:
            order.append("batch")

    applying = asyncio.create_task(batch())
    await asyncio.wait_for(in_more.wait(), timeout=5)
    applying.cancel()
    await asyncio.wait_for(unwinding.wait(), timeout=5)
    applying.cancel()  # again, while the request is withdrawn
    let_go.set()
    with pytest.raises(asyncio.CancelledError):
        await applying
    await asyncio.wait_for(withdrawn.wait(), timeout=5)
    assert order == ["request", "batch"]
