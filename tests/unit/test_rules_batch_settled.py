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
from services.followup.domain import Consent
from shared.contracts import Envelope
from shared.kernel.calendar import WorkingCalendar
from shared.settings import Settings


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



def _deadline(case_id: uuid.UUID, deadline_id: uuid.UUID) -> Envelope:
    """A deadline noted on Sunday 20 December for the last working day of the year."""
    now = datetime(2026, 12, 20, 2, tzinfo=UTC)
    return Envelope(event_id=uuid.uuid4(), type="DeadlineNoted", version=1, service="intake",
                    position=1, aggregate_id=case_id, aggregate_version=3, case_id=case_id,
                    center_id="SH-PD-HUAMU", occurred_at=now, recorded_at=now,
                    actor="clerk-017", payload={"deadline_id": str(deadline_id),
                                                "due_on": "2026-12-31"})


async def test_each_cases_last_follow_ups_are_planned_together_in_one_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A case with two deadlines noted in one batch plans its first reminder at once (a later
    step of the case could act on it), its last with the other cases' last ones, in one
    command once every case's steps have run (before: a command each); none of them when a
    case fails (the batch is applied again one event at a time, and plans them then)."""
    busy, quiet, failing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, last, only = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sent: list[tuple[str, list[uuid.UUID]]] = []

    class FollowUps:
        settings = Settings()

        def calendar(self, center_id: str) -> WorkingCalendar:
            return WorkingCalendar()

        def on_a_day_to_come(self, plan: Any) -> Any:
            return plan  # planned on the day's clock: no day gone

        async def schedule(self, plan: Any) -> None:
            sent.append(("one", [plan.source_id]))

        async def schedule_each(self, plans: list[Any]) -> None:
            sent.append(("each", sorted(p.source_id for p in plans)))

    async def read(conn: Any, events: Any) -> tuple[Any, _Known, None]:
        return consumer._CaseRefs({}), _Known(), None  # cases unknown: none urgent

    async def nothing(conn: Any, events: Any) -> None:
        pass

    async def nothing_more(*args: Any, **kwargs: Any) -> None:
        pass

    def effect_for(self: Any, planned: Any, e: Envelope, refs: Any, consent: Any,
                   care: Any = None) -> Any:
        if e.partition_key == failing:
            async def fail(rows: list[Any]) -> None:
                raise RuntimeError("the store refused it")
            return fail
        case = {"case_id": e.case_id, "resident_id": None, "clerk_id": "clerk-017",
                "service_item": "SA-HARDSHIP-SUBSIDY"}
        return self._deadline(e, case, lambda _: Consent())

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer.residents, "remember_care_and_hints", nothing)
    monkeypatch.setattr(consumer.Rules, "_effect_for", effect_for)
    monkeypatch.setattr(consumer.bulk, "insert_rows", nothing_more)  # rule_followups' rows
    rules = consumer.Rules(FollowUps())  # type: ignore[arg-type]
    await rules.apply(object(), [_deadline(busy, first), _deadline(quiet, only),  # type: ignore[arg-type]
                                 _deadline(busy, last)])
    assert sent == [("one", [first]), ("each", sorted([last, only]))]

    sent.clear()
    with pytest.raises(RuntimeError, match="refused"):
        await rules.apply(object(), [_deadline(quiet, only),  # type: ignore[arg-type]
                                     _deadline(failing, uuid.uuid4())])
    assert sent == [], "nothing planned in one command for a batch that failed"


@pytest.mark.parametrize(("stop", "fate_of_plans"), [
    ("cancelled", "withdrawn"), ("refused", "awaited")])
async def test_a_batch_given_up_settles_its_last_follow_ups_command(
        monkeypatch: pytest.MonkeyPatch, stop: str, fate_of_plans: str) -> None:
    """A batch given up after every case passed its last step, while its own writes run:
    the consumer stops (or its connection to the bus breaks: cancelled), or a write of its
    transaction fails (refused). The last follow-ups' command, queued by then, is withdrawn
    with a cancelled batch (not sent if not yet sent), as each case's queued commands are,
    and answered before a failed batch's transaction ends. Before, nothing awaited or
    withdrew it: it went on to the store past the rolled-back transaction, meeting the
    batch applied again one event at a time."""
    queued = asyncio.Event()
    fate: list[str] = []

    class Queued:
        def withdraw(self) -> None:
            fate.append("withdrawn")

        def __await__(self) -> Any:
            fate.append("awaited")
            return asyncio.sleep(0).__await__()

    class FollowUps:
        settings = Settings()

        def calendar(self, center_id: str) -> WorkingCalendar:
            return WorkingCalendar()

        def on_a_day_to_come(self, plan: Any) -> Any:
            return plan

        def schedule_each(self, plans: list[Any]) -> Queued:
            queued.set()
            return Queued()

    async def read(conn: Any, events: Any) -> tuple[Any, _Known, None]:
        return consumer._CaseRefs({}), _Known(), None

    async def still_writing(conn: Any, events: Any) -> None:
        await queued.wait()  # the batch's own writes, when the stop comes
        if stop == "refused":
            raise RuntimeError("the store refused it")
        await asyncio.Event().wait()

    def effect_for(self: Any, planned: Any, e: Envelope, refs: Any, consent: Any,
                   care: Any = None) -> Any:
        case = {"case_id": e.case_id, "resident_id": None, "clerk_id": "clerk-017",
                "service_item": "SA-HARDSHIP-SUBSIDY"}
        return self._deadline(e, case, lambda _: Consent())

    async def written(*args: Any, **kwargs: Any) -> None:
        pass

    monkeypatch.setattr(consumer, "_read", read)
    monkeypatch.setattr(consumer.bulk, "insert_rows", written)  # the batch's case rows
    monkeypatch.setattr(consumer.residents, "remember_care_and_hints", still_writing)
    monkeypatch.setattr(consumer.Rules, "_effect_for", effect_for)
    rules = consumer.Rules(FollowUps())  # type: ignore[arg-type]
    applying = asyncio.ensure_future(rules.apply(
        object(), [_deadline(uuid.uuid4(), uuid.uuid4())]))  # type: ignore[arg-type]
    await queued.wait()
    if stop == "cancelled":
        applying.cancel()
    with pytest.raises(asyncio.CancelledError if stop == "cancelled" else RuntimeError):
        await applying
    assert fate == [fate_of_plans]
