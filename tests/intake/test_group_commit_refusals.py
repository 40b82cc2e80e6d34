"""The group commit's refusal that waits for the key's look-up (``refused_unless_replayed``: a
``sent_at`` far off the clock under an Idempotency-Key), among many ordinary writes of one
round: the refused ones record nothing, a retry replays, and every other write of the round is
stored once and answered with its own position."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from services.intake.domain import Case
from shared.eventstore.group_commit import (
    KeyedRefusal,
    Unit,
    Written,
    refused_unless_replayed,
)
from shared.kernel.errors import AlreadyDoneError, InvalidCommand
from shared.kernel.meta import Meta
from shared.settings import Settings
from tests.intake.test_group_commit import committing, opening


def meta(key: str) -> Meta:
    return {"actor": "clerk-001", "occurred_at": datetime.now(UTC), "causation_id": key,
            "correlation_id": None}


def hearing(case_id: uuid.UUID, key: str) -> Any:
    """A hearing under ``key``, checked as the command path checks one."""
    def run(unit: Unit) -> Aggregate:
        case: Case = unit.get(case_id)
        case.check_new_command(key, "RequestHeard", "clerk-001")
        case.hear_request("想问补贴怎么申请", meta(key))
        return case
    return run


def opening_beside(case_id: uuid.UUID, beside: uuid.UUID, key: str) -> Any:
    """A new case opened under ``key``, loading ``beside`` with it (a visit naming a case)."""
    def run(unit: Unit) -> Aggregate:
        unit.get(beside)
        case = Case(id=case_id, center_id="SH-PD-HUAMU", counter_id="window-1",
                    clerk_id="clerk-001", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                    resident_id=None, meta=meta(key))
        unit.add(case)
        return case
    return run


async def test_fifty_writes_in_one_round_with_stale_clocks_among_them_each_answered_once(
        settings: Settings) -> None:
    """Fifty clerks' writes reach the writer in one round; three of them were sent from
    tablets whose clocks are ten minutes off, under keys: a new hearing (its key nowhere:
    refused before it runs), an opening under the key of a hearing on the case it loads (the
    key is that case's: refused after it ran, the round re-run one by one) and the very
    hearing sent again (its case holds the key: the first answer). Every other write is
    stored once, each at its own position; nothing is stored for the refused."""
    batches: list[int] = []
    off = InvalidCommand("sent_at must lie within 300 s of the service's clock",
                         field="sent_at")
    async with committing(settings, batches) as (app, committer):
        cases = [uuid.uuid4() for _ in range(50)]
        for written in [committer.send(opening(i), [i]) for i in cases]:
            assert isinstance(await written, Written)
        held = await committer.submit(hearing(cases[0], "hear-held"), [cases[0]])
        round_before = len(batches)

        def under_refusal(command: Any, ids: list[uuid.UUID]) -> Any:
            token = refused_unless_replayed.set(KeyedRefusal(
                "hear-held" if ids[0] == cases[0] or len(ids) == 2 else "hear-new", off))
            try:
                return committer.send(command, ids)
            finally:
                refused_unless_replayed.reset(token)

        stray = uuid.uuid4()
        sent: list[Any] = []
        for n, case_id in enumerate(cases[1:], start=1):
            sent.append(committer.send(hearing(case_id, f"hear-{n}"), [case_id]))
            if n == 10:
                sent.append(under_refusal(hearing(cases[5], "hear-new"), [cases[5]]))
            if n == 20:
                sent.append(under_refusal(opening_beside(stray, cases[0], "hear-held"),
                                          [cases[0], stray]))
            if n == 30:
                sent.append(under_refusal(hearing(cases[0], "hear-held"), [cases[0]]))
        answers: list[Any] = []
        for s in sent:
            try:
                answers.append(await s)
            except (InvalidCommand, AlreadyDoneError) as refused:
                answers.append(refused)
        assert len(batches) > round_before
        refusals = [a for a in answers if isinstance(a, InvalidCommand)]
        assert len(refusals) == 2 and all(a.details["field"] == "sent_at" for a in refusals)
        replays = [a for a in answers if isinstance(a, Written) and a.replayed]
        assert [(r.aggregate_id, r.version, r.position) for r in replays] == [
            (held.aggregate_id, held.version, held.position)]
        fresh = [a for a in answers if isinstance(a, Written) and not a.replayed]
        assert len(fresh) == 49
        assert len({w.position for w in fresh}) == 49 and min(
            w.position for w in fresh) > held.position
        assert all(w.version == 2 for w in fresh)
        assert [w.position for w in fresh] == sorted(w.position for w in fresh), \
            "stored in the order sent"
        for case_id in cases[1:]:
            assert app.repository.get(case_id).version == 2, "each heard once"
        assert app.repository.get(cases[0]).version == 2
        assert not any(True for _ in app.events.get(stray)), "the refused opening: nothing"
        # And the round after it: no refusal left behind in the writer.
        after = await committer.submit(hearing(cases[7], "hear-after"), [cases[7]])
        assert isinstance(after, Written) and after.version == 3
