"""The rules read what a batch needs before they plan in one round trip: its cases, what was
planned for them, and what their residents agreed to (after the care lock's statement when the
batch resolves a case or changes a resident's need for care)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.followup import projections
from services.followup.consumer import DDL, _read
from shared.contracts import Envelope
from shared.settings import Settings
from tests.support import CountingConnection, bare_envelope, schema_pool

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _event(type_: str, service: str = "intake", case_id: uuid.UUID | None = None,
           payload: dict[str, Any] | None = None) -> Envelope:
    return bare_envelope(type_, NOW, service=service, case_id=case_id, payload=payload)


async def test_a_batch_of_rules_reads_its_cases_plans_and_consents_in_one_statement(
        settings: Settings) -> None:
    async with schema_pool(settings, "followup_reads", [*projections.DDL, *DDL]) as pool:
        resolved, stepped, untouched = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        sent_before, answered = uuid.uuid4(), uuid.uuid4()
        refused, erased, elsewhere, said, rectified = (uuid.uuid4() for _ in range(5))
        planned, other = uuid.uuid4(), uuid.uuid4()
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO case_refs (case_id, center_id, resident_id, clerk_id, counter_id,"
                " service_item, status, opened_at) VALUES ($1, 'SH-PD-HUAMU', $2, 'clerk-017',"
                " 'window-3', 'SA-HARDSHIP-SUBSIDY', 'open', $3)",
                [(resolved, refused, NOW), (stepped, erased, NOW), (untouched, elsewhere, NOW)])
            await conn.executemany(
                "INSERT INTO resident_consent (resident_id, contact, erased, changed_at)"
                " VALUES ($1, $2, $3, $4)",
                [(refused, False, False, NOW), (erased, False, True, NOW),
                 (elsewhere, False, False, NOW), (said, False, False, NOW),
                 (rectified, False, False, NOW)])
            await conn.executemany(
                "INSERT INTO rule_followups (case_id, follow_up_id, rule) VALUES ($1, $2, $3)",
                [(resolved, planned, "post_resolution_check"),
                 (untouched, other, "deadline_reminder")])
            # Referrals of the resolved case the rules never remembered (sent before they
            # did): one awaiting its reply is the rules' to close, one answered is not.
            await conn.executemany(
                "INSERT INTO referrals (referral_id, center_id, case_id, unit_kind, unit_name,"
                " unit_contact, referred_by, status, reply_due_at, basis, sent_at, updated_at,"
                " version, position) VALUES ($1, 'SH-PD-HUAMU', $2, 'other', '', '',"
                " 'clerk-017', $3, $4, 'official', $4, $4, 1, 1)",
                [(sent_before, resolved, "awaiting_reply", NOW),
                 (answered, resolved, "replied", NOW)])
            events = [
                _event("CaseResolved", case_id=resolved),
                _event("PlanStepAdded", payload={"case_id": str(stepped)}),
                _event("ConsentChanged", payload={"resident_id": str(said), "contact": True}),
                _event("RectificationOpened", "feedback", case_id=uuid.uuid4(),
                       payload={"resident_id": str(rectified)}),
            ]
            counting = CountingConnection(conn)
            refs, known, rules = await _read(counting, events)  # type: ignore[arg-type]
        # The batch resolves a case: its case's and its resident's locks first (``_meet``, so a
        # care flag applied by another worker at the same instant is seen), then one read.
        assert counting.statements == 2, "two round trips before the rules plan"
        assert set(refs.cases) == {resolved, stepped}, "the batch's cases and a step's case"
        assert refs.cases[resolved]["resident_id"] == refused
        assert refs.cases[stepped]["status"] == "open"
        assert rules.of(resolved, "post_resolution_check") == [planned]
        assert rules.of(resolved, "referral") == [sent_before] and rules.of(untouched) == []
        assert known.consent(refused).contact is False, "a case's resident"
        assert known.consent(erased).erased, "a plan step's case's resident"
        assert known.consent(said).contact is False, "named by a consent event: as stored"
        assert known.consent(rectified).contact is False, "named by a rectification"
        assert known.flags(elsewhere) is None, "no case of the batch is theirs"


async def test_a_batch_with_nothing_to_read_sends_nothing(settings: Settings) -> None:
    counting = CountingConnection(None)  # type: ignore[arg-type]
    refs, known, rules = await _read(
        counting, [_event("RectificationAppealDecided", "feedback")])  # type: ignore[arg-type]
    assert counting.statements == 0 and refs.cases == {} and rules.of(uuid.uuid4()) == []
    assert known.flags(uuid.uuid4()) is None


async def test_a_batch_that_resolves_nothing_takes_no_care_lock(settings: Settings) -> None:
    async with schema_pool(settings, "followup_reads", [*projections.DDL, *DDL]) as pool, \
            pool.acquire() as conn:
        counting = CountingConnection(conn)
        opened = _event("CaseOpened", case_id=uuid.uuid4(),
                        payload={"resident_id": str(uuid.uuid4())})
        await _read(counting, [opened])  # type: ignore[arg-type]
        assert counting.statements == 1
