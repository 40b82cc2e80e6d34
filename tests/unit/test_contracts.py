"""Event contracts: one definition per type, JSON Schemas, and upcasting of old versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import BaseModel

from shared.contracts import REGISTRY, Envelope, EventContract
from shared.contracts.registry import Registry, UnsupportedVersion
from shared.kernel.privacy import redact


def test_every_contract_exports_a_json_schema_with_the_envelope() -> None:
    schemas = REGISTRY.json_schemas()
    assert len(schemas) == len(list(REGISTRY))
    opened = next(v for k, v in schemas.items() if k.startswith("CaseOpened.v"))
    assert opened["properties"]["type"] == {"const": "CaseOpened"}
    for field in ("event_id", "case_id", "center_id", "occurred_at", "recorded_at",
                  "causation_id", "correlation_id", "actor"):
        assert field in opened["properties"]
    assert "service_item" in opened["properties"]["payload"]["properties"]
    json.dumps(schemas)  # serialisable as files


def test_event_types_are_unique_across_services() -> None:
    registry = Registry()

    class P(BaseModel):
        x: int

    registry.add(EventContract("Thing", "a", P))
    with pytest.raises(ValueError, match="defined twice"):
        registry.add(EventContract("Thing", "b", P))


def test_an_old_version_is_upcast_through_the_chain_and_never_guessed() -> None:
    class V3(BaseModel):
        words: str
        language: str
        length: int

    registry = Registry()
    registry.add(EventContract("Said", "intake", V3, version=3, upcasters={
        1: lambda p: {**p, "language": "zh"},
        2: lambda p: {**p, "length": len(p["words"])},
    }))
    envelope = Envelope(event_id=uuid4(), type="Said", version=1, service="intake", position=1,
                        aggregate_id=uuid4(), aggregate_version=1, case_id=None, center_id="c",
                        occurred_at=datetime.now(UTC), recorded_at=datetime.now(UTC),
                        actor="clerk", payload={"words": "你好"})
    current = registry.current(envelope)
    assert current.version == 3
    assert current.payload == {"words": "你好", "language": "zh", "length": 2}
    with pytest.raises(UnsupportedVersion):
        registry.current(envelope.model_copy(update={"version": 4}))


@pytest.mark.parametrize(("text", "hidden"), [
    ("电话13812345678找我", "13812345678"),
    ("手机 +86 138-1234-5678", "138-1234-5678"),
    ("身份证11010519491231002X", "11010519491231002X"),
    ("座机021-62345678", "021-62345678"),
])
def test_free_text_loses_phone_and_id_numbers(text: str, hidden: str) -> None:
    assert hidden not in redact(text)


def test_ordinary_numbers_stay() -> None:
    assert redact("报销了3200元，住院12天") == "报销了3200元，住院12天"


def test_a_case_opened_before_the_vault_checked_residents_is_read_without_a_basis() -> None:
    resident = uuid4()
    envelope = Envelope(event_id=uuid4(), type="CaseOpened", version=1, service="intake",
                        position=1, aggregate_id=uuid4(), aggregate_version=1, case_id=uuid4(),
                        center_id="SH-PD-HUAMU", occurred_at=datetime.now(UTC),
                        recorded_at=datetime.now(UTC), actor="clerk-017", payload={
                            "center_id": "SH-PD-HUAMU", "counter_id": "window-3",
                            "clerk_id": "clerk-017", "channel": "counter",
                            "service_item": "SA-HARDSHIP-SUBSIDY",
                            "resident_id": str(resident)})
    current = REGISTRY.current(envelope)
    assert current.version == 3
    assert current.payload["resident_basis"] is None
    assert current.payload["resident_id"] == str(resident)
    # ... and, from before applicants were recorded, as the resident coming for themselves.
    assert current.payload["applicant_id"] == str(resident)
    assert current.payload["applicant_basis"] is None


def test_a_v2_case_opening_reads_as_the_beneficiary_applying_for_themselves() -> None:
    resident = uuid4()
    envelope = Envelope(event_id=uuid4(), type="CaseOpened", version=2, service="intake",
                        position=1, aggregate_id=uuid4(), aggregate_version=1, case_id=uuid4(),
                        center_id="SH-PD-HUAMU", occurred_at=datetime.now(UTC),
                        recorded_at=datetime.now(UTC), actor="clerk-017", payload={
                            "center_id": "SH-PD-HUAMU", "counter_id": "window-3",
                            "clerk_id": "clerk-017", "channel": "counter",
                            "service_item": "SA-HARDSHIP-SUBSIDY",
                            "resident_id": str(resident), "resident_basis": "presence_grant"})
    current = REGISTRY.current(envelope)
    assert current.payload["applicant_id"] == str(resident)
    assert current.payload["applicant_basis"] == "presence_grant"
    without = envelope.model_copy(update={"payload": {**envelope.payload, "resident_id": None,
                                                      "resident_basis": None}})
    assert REGISTRY.current(without).payload["applicant_id"] is None


@pytest.mark.parametrize("type_name", [
    "FollowUpScheduled", "FollowUpRescheduled", "FollowUpDue", "FollowUpMissed",
    "PolicyChangePublished", "ObligationWatched", "ObligationFulfilled", "ObligationMissed",
    "RectificationOpened", "RectificationCompleted"])
def test_dates_recorded_before_they_said_their_basis_read_as_official(type_name: str) -> None:
    """v1 of every dated event was recorded when a year without a schedule was refused, never
    guessed: its dates were all official."""
    contract = REGISTRY.get(type_name)
    assert contract.version >= 2  # RectificationOpened v3 also says the reasons picked
    assert contract.upcast({"due_at": "2026-03-02T09:00:00+08:00"}, 1)["basis"] == "official"
    assert contract.payload.model_fields["basis"].default == "official"


def test_answers_from_before_the_verdict_read_as_saying_nothing_about_it() -> None:
    """RatingGiven v1 and FollowUpCompleted v1 asked no "was it solved?"; a v1 staff answer
    does not say how it came; a v2 RectificationOpened had no reason tags."""
    def read(type_name: str, version: int, payload: dict[str, object]) -> dict[str, object]:
        return REGISTRY.current(Envelope(
            event_id=uuid4(), type=type_name, version=version, service="feedback",
            position=1, aggregate_id=uuid4(), aggregate_version=2, case_id=uuid4(),
            center_id="c", occurred_at=datetime.now(UTC), recorded_at=datetime.now(UTC),
            actor="clerk-017", payload=payload)).payload

    rated = read("RatingGiven", 1, {
        "survey_id": str(uuid4()), "purpose": "resolution", "level": "satisfied",
        "via": "clerk", "clerk_id": "clerk-017"})
    assert (rated["verdict"], rated["reason_tags"], rated["staff_channel"]) == (None, [], None)
    done = read("FollowUpCompleted", 1, {"outcome": "done", "channel": "phone"})
    assert done["verdict"] is None
    opened = read("RectificationOpened", 2, {
        "rectification_id": str(uuid4()), "resident_id": None, "rating": "dissatisfied",
        "deadline_on": "2026-03-20", "basis": "provisional"})
    assert (opened["reason_tags"], opened["basis"]) == ([], "provisional")


def test_a_rescheduled_v1_reads_as_moved_by_staff() -> None:
    envelope = Envelope(
        event_id=uuid4(), type="FollowUpRescheduled", version=1, service="followup",
        position=1, aggregate_id=uuid4(), aggregate_version=2, case_id=None, center_id="c",
        occurred_at=datetime.now(UTC), recorded_at=datetime.now(UTC), actor="clerk-017",
        payload={"due_at": "2026-03-02T09:00:00+08:00", "assigned_clerk": "clerk-017",
                 "assigned_team": None, "reason": "居民改约"})
    current = REGISTRY.current(envelope)
    assert current.version == 2
    assert current.payload["basis"] == "official" and current.payload["cause"] == "staff"
    assert current.payload["due_rule"] is None and current.payload["previous_due_at"] is None


def test_guidance_given_before_plain_words_is_read_with_none() -> None:
    """GuidanceGiven v1 (before the explanation in the resident's language) reads as v2 with
    empty plain words; the rest is as recorded."""
    from shared.contracts import REGISTRY

    contract = REGISTRY.get("GuidanceGiven")
    assert contract.version == 2
    v1 = {"service_item": "SA-HARDSHIP-SUBSIDY", "policy_basis": "《社会救助暂行办法》",
          "eligibility": "eligible", "promised": "", "missing_documents": ["户口簿"]}
    assert contract.upcast(v1, 1) == {**v1, "plain_words": ""}
