"""A batch merged behind another (``Rules.merges``) asks the batch before whether its commands
stood, once for each of its cases that waits on it (``_Before.stood``): the answer is worked
out once, and told at once when the answers are in. And the rules fold intake's word about a
resident (consent, erasure, care) from those events alone, not from every event of a batch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.followup import consumer
from shared.contracts import Envelope
from shared.kernel.errors import NotFound


def _stood_at_once(before: consumer._Before) -> None:
    """``before.stood()`` answered without waiting for the loop: returns, or raises."""
    step = before.stood()
    try:
        step.send(None)
    except StopIteration:
        return
    finally:
        step.close()
    raise AssertionError("stood() waited for the loop on answers already in")


async def test_a_batch_that_stood_says_so_at_once_and_looks_at_its_answers_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[object] = []
    outcomes = consumer._outcomes

    def counted(settled: Any) -> Any:
        walked.append(settled)
        return outcomes(settled)

    monkeypatch.setattr(consumer, "_outcomes", counted)
    answers = asyncio.get_running_loop().create_future()
    answers.set_result([[None, (uuid.uuid4(), uuid.uuid4(), "post_resolution_check")], None])
    before = consumer._Before(frozenset({uuid.uuid4()}), answers)
    for _ in range(3):  # three merged cases of its own cases ask
        _stood_at_once(before)
    # Before: walked once a case, each after a turn of the loop.
    assert [w for w in walked if w is answers.result()] == [answers.result()]


async def test_a_refused_batch_refuses_every_case_that_waits_on_it() -> None:
    answers = asyncio.get_running_loop().create_future()
    answers.set_result([[None, NotFound("follow-up")], None])
    before = consumer._Before(frozenset({uuid.uuid4()}), answers)
    for _ in range(2):
        with pytest.raises(consumer._BeforeRefused, match="refused: NotFound"):
            await before.stood()


async def test_a_case_waits_for_answers_still_to_come() -> None:
    answers = asyncio.get_running_loop().create_future()
    before = consumer._Before(frozenset(), answers)
    waiting = asyncio.ensure_future(before.stood())
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiting.done()
    answers.cancel()  # the batch before was stopped
    with pytest.raises(consumer._BeforeRefused, match="stopped"):
        await waiting


def _event(type_: str, payload: dict[str, Any], case_id: uuid.UUID | None = None) -> Envelope:
    """At 23:30 on New Year's Eve in Shanghai."""
    now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    aggregate = case_id or uuid.uuid4()
    return Envelope(event_id=uuid.uuid4(), type=type_, version=1, service="intake",
                    position=1, aggregate_id=aggregate, aggregate_version=2, case_id=case_id,
                    center_id="SH-PD-HUAMU", occurred_at=now, recorded_at=now,
                    actor="clerk-017", payload=payload)


async def test_the_rules_fold_a_residents_word_from_its_own_events_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    resident, case = uuid.uuid4(), uuid.uuid4()
    folded: list[str] = []

    class Refs:
        def remember(self, e: Envelope, close: Any) -> None:
            pass

        def now(self, case_id: Any) -> dict[str, Any]:
            return {}

        def note_staff(self, e: Envelope) -> None:
            pass

        async def save(self, conn: Any, tables: Any) -> None:
            pass

    class Known:
        def __init__(self) -> None:
            self.narrowed: dict[Any, Any] = {}

        def remember(self, e: Envelope) -> None:
            folded.append(e.type)

        def consent(self, resident_id: Any) -> None:
            return None

        def more_care(self, resident_id: Any) -> bool:
            return False

        async def save(self, conn: Any) -> None:
            pass

    async def read(conn: Any, events: Any) -> tuple[Any, Known, Any]:
        return Refs(), Known(), consumer._Planned([])

    async def nothing(conn: Any, events: Any) -> None:
        pass

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer.residents, "remember_care_and_hints", nothing)
    monkeypatch.setattr(consumer.Rules, "_effect_for", lambda *args, **kwargs: None)
    rules = consumer.Rules(SimpleNamespace(settings=None))  # type: ignore[arg-type]
    events = [
        _event("RequestHeard", {"words": "想问低保"}, case),
        _event("ConsentChanged", {"resident_id": str(resident), "contact": False}),
        _event("CareNeedChanged", {"resident_id": str(resident), "more_care": False}),
        _event("GuidanceGiven", {"service_item": "SA-MINIMUM-LIVING"}, case),
        _event("ResidentErased", {"resident_id": str(resident)}),
    ]
    await rules.apply(object(), events)  # type: ignore[arg-type]
    assert folded == ["ConsentChanged", "CareNeedChanged", "ResidentErased"]


def test_no_event_type_outside_the_residents_word_changes_what_the_rules_know_of_one() -> None:
    """Every event type of every service, each read as if it carried a resident's flags
    (``contact`` refused, ``more_care`` said): only those ``RESIDENTS_WORD`` names change
    consent, erasure or care. A type taught to ``Residents.remember`` later (a renamed or
    new word about a resident) and not named there would be skipped by the batch silently."""
    from shared.contracts.registry import REGISTRY

    resident = uuid.uuid4()
    changed: set[str] = set()
    for contract in REGISTRY:
        known = consumer.residents.Residents({})
        e = _event(contract.type, {"resident_id": str(resident), "contact": False,
                                   "surveys": False, "more_care": True})
        known.remember(e.model_copy(update={"service": contract.service}))
        if known.flags(resident) is not None or known.more_care(resident) or known.narrowed:
            changed.add(contract.type)
    assert changed == set(consumer.RESIDENTS_WORD)
