"""Follow-up's rules send each case's commands to group commit together; when one case's
command fails the batch's transaction rolls back and the consumer applies it again one event
at a time. Every case's commands must have settled by then: a command still in flight would
run alongside (or after) the same event's command of the re-run."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.followup import consumer
from shared.contracts import Envelope


class _Refs:
    def remember(self, e: Envelope, close: Any) -> None:
        pass

    def now(self, case_id: Any) -> None:
        return None

    def note_staff(self, e: Envelope) -> None:
        pass

    async def save(self, conn: Any, tables: Any) -> None:
        pass


class _Known:
    def __init__(self) -> None:
        self.narrowed: dict[Any, Any] = {}

    def remember(self, e: Envelope) -> None:
        pass

    def consent(self, resident_id: Any) -> None:
        return None

    def more_care(self, resident_id: Any) -> bool:
        return False

    async def save(self, conn: Any) -> None:
        pass


def _resolved(case_id: uuid.UUID) -> Envelope:
    now = datetime(2026, 3, 6, 8, tzinfo=UTC)
    return Envelope(event_id=uuid.uuid4(), type="CaseResolved", version=1, service="intake",
                    position=1, aggregate_id=case_id, aggregate_version=5, case_id=case_id,
                    center_id="SH-PD-HUAMU", occurred_at=now, recorded_at=now,
                    actor="clerk-017", payload={})


async def test_a_failed_case_leaves_no_other_cases_command_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    failing, slow = uuid.uuid4(), uuid.uuid4()
    settled: list[uuid.UUID] = []

    async def read(conn: Any, events: Any) -> tuple[_Refs, _Known, None]:
        return _Refs(), _Known(), None

    async def nothing(conn: Any, events: Any) -> None:
        pass

    def effect_for(self: Any, planned: Any, e: Envelope, refs: Any, consent: Any,
                   care: Any = None) -> Any:
        async def fail(rows: list[Any]) -> None:
            raise RuntimeError("the store refused it")

        async def take_a_while(rows: list[Any]) -> None:
            for _ in range(10):  # group commit's rounds
                await asyncio.sleep(0)
            settled.append(e.partition_key)

        return fail if e.partition_key == failing else take_a_while

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer.residents, "remember_care_and_hints", nothing)
    monkeypatch.setattr(consumer.Rules, "_effect_for", effect_for)
    rules = consumer.Rules(SimpleNamespace(settings=None))  # type: ignore[arg-type]

    with pytest.raises(RuntimeError, match="refused"):
        await rules.apply(object(), [_resolved(failing), _resolved(slow)])  # type: ignore[arg-type]
    assert settled == [slow]  # settled before apply gave up the batch
