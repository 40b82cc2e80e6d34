"""Feedback's intake follower sends a batch's commands to group commit together: the lone
survey requests queued at once as one command, each case with several steps (resolved and
reopened in the batch) run in its order. When one of them fails, the batch's transaction
rolls back and the consumer applies it again one event at a time: by then nothing of the
first try may still be running or queued, or it would meet the same event's command of the
re-run."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.feedback import consumer
from shared.contracts import Envelope
from shared.kernel.errors import Unavailable

CENTER = "SH-PD-HUAMU"
# Sunday 20 December 2026, 10:00 in Shanghai: a Sunday window, and the year's last weeks.
NOW = datetime(2026, 12, 20, 2, tzinfo=UTC)


class _Known:
    def __init__(self) -> None:
        self.narrowed: dict[Any, Any] = {}

    def remember(self, e: Envelope) -> None:
        pass

    def consent(self, resident_id: Any) -> Any:
        return SimpleNamespace(erased=False)

    async def save(self, conn: Any) -> None:
        pass


class _Feedback:
    """The use cases the follower asks, without a store: the resolutions are fresh and asked
    on a text later (nothing put before the resident yet)."""

    def __init__(self, request: Any = None) -> None:
        self.request_survey = request

    def request_surveys(self, asked: list[tuple[Any, Any, Any]]) -> Any:
        """The batch's lone requests in one command, as ``Feedback.request_surveys``: here
        each asked of the test's ``request`` as it is queued, answered together."""
        sent = [self.request_survey(*ask) for ask in asked]
        return sent[0] if len(sent) == 1 else asyncio.gather(*sent)

    def local_day(self, at: datetime) -> date:
        return at.date()

    def plan(self, case: Any) -> None:
        return None

    def is_too_old(self, case: Any, plan: Any = None) -> bool:
        return False

    def asked_at(self, case: Any, consent: Any = None, plan: Any = None) -> None:
        return None


def _event(case_id: uuid.UUID, type_: str, version: int, **payload: Any) -> Envelope:
    return Envelope(event_id=uuid.uuid4(), type=type_, version=1, service="intake",
                    position=version, aggregate_id=case_id, aggregate_version=version,
                    case_id=case_id, center_id=CENTER, occurred_at=NOW, recorded_at=NOW,
                    actor="clerk-017", payload=payload)


def _opened_and_resolved(case_id: uuid.UUID) -> list[Envelope]:
    return [_event(case_id, "CaseOpened", 1, counter_id="C-03", clerk_id="clerk-017",
                   channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None),
            _event(case_id, "CaseResolved", 2, outcome="resolved")]


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    async def read(conn: Any, events: Any) -> tuple[dict[Any, Any], _Known]:
        return {}, _Known()

    async def nothing(*args: Any) -> None:
        pass

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer, "save_cases", nothing)


@pytest.mark.usefixtures("no_store")
async def test_a_failed_case_leaves_no_other_cases_commands_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cases resolved and reopened in one batch: the first one's withdrawal is refused
    at once, the other's takes a few rounds. Before, the follower gave the batch up at the
    first failure (a gather without return_exceptions), the other case's commands still on
    their way to the store while the batch was applied again."""
    failing, slow = uuid.uuid4(), uuid.uuid4()
    settled: list[uuid.UUID] = []

    async def run(self: Any, steps: list[tuple[str, Any]], known: Any, plans: Any) -> Any:
        case_id = steps[0][1].case_id
        if case_id == failing:
            raise RuntimeError("the store refused it")
        for _ in range(10):  # group commit's rounds
            await asyncio.sleep(0)
        settled.append(case_id)
        return consumer.Chain()

    monkeypatch.setattr(consumer.IntakeFollower, "_run", run)
    follower = consumer.IntakeFollower(_Feedback())  # type: ignore[arg-type]
    events = [e for case_id in (failing, slow) for e in (
        *_opened_and_resolved(case_id), _event(case_id, "CaseReopened", 3, reason="staff"))]
    with pytest.raises(RuntimeError, match="refused"):
        await follower.apply(object(), events)  # type: ignore[arg-type]
    assert settled == [slow], "settled before apply gave up the batch"


@pytest.mark.usefixtures("no_store")
async def test_requests_refused_as_they_are_queued_leave_no_case_run_behind() -> None:
    """The service shutting down as a batch's survey requests are queued (503): two lone
    requests (one command) and a case resolved, reopened and resolved again (its run of
    steps). The refusal ends the batch with nothing of it queued or running: the case's run
    never starts, to meet the re-run's commands."""
    lone, other, stepped = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    asked: list[list[uuid.UUID]] = []
    ran: list[uuid.UUID] = []

    class Refusing(_Feedback):
        def request_surveys(self, requests: list[tuple[Any, Any, Any]]) -> Any:
            asked.append([r[0].case_id for r in requests])
            raise Unavailable("the service is shutting down")

    async def run(self: Any, steps: list[tuple[str, Any]], known: Any, plans: Any) -> Any:
        ran.append(steps[0][1].case_id)
        return consumer.Chain()

    follower = consumer.IntakeFollower(Refusing())  # type: ignore[arg-type]
    follower._run = run.__get__(follower)  # type: ignore[method-assign]
    events = [*_opened_and_resolved(lone), *_opened_and_resolved(other),
              *_opened_and_resolved(stepped), _event(stepped, "CaseReopened", 3, reason="staff"),
              _event(stepped, "CaseResolved", 4, outcome="resolved")]
    with pytest.raises(Unavailable):
        await follower.apply(object(), events)  # type: ignore[arg-type]
    assert asked == [[lone, other]], "the lone requests went as one command"
    assert ran == [], "a case's run started after the batch was refused"
