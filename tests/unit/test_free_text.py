"""Every free-text field of every contract is marked, and every marked field is scrubbed by the
one mechanism before an event exists: a new field cannot forget it."""

from __future__ import annotations

import importlib
import inspect
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel

from shared.contracts import REGISTRY, Envelope
from shared.contracts.fields import (
    Code,
    FreeText,
    free_text_fields,
    nested_free_text,
    unbounded_times,
    unmarked_text,
)
from shared.contracts.intake import CaseOpenedV1, ConcernsNotedV1
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.privacy import REDACTED_NAME, REDACTED_PHONE, KnownPerson
from shared.kernel.scrubbing import KNOWN_PERSON, ScrubsFreeText, scrub_fields

MODELS: list[type[BaseModel]] = [*(c.payload for c in REGISTRY), ConcernsNotedV1, CaseOpenedV1]
TYPED = "王秀英说电话13812345678"
STORED = f"{REDACTED_NAME}说电话{REDACTED_PHONE}"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_text_field_of_every_contract_says_whether_it_is_free_text_or_a_code(
        model: type[BaseModel]) -> None:
    assert unmarked_text(model) == [], (
        f"{model.__name__}: mark each str field FreeText (typed by a person: scrubbed) or Code "
        "(chosen from a list or minted by the system), see shared/contracts/fields.py")
    assert nested_free_text(model) == [], "free text is a payload's own field, never nested"


def test_the_envelope_holds_codes_only() -> None:
    assert [f for f in unmarked_text(Envelope) if f != "payload"] == []
    assert free_text_fields(Envelope) == ()


@pytest.mark.parametrize("model", [*MODELS, Envelope], ids=lambda m: m.__name__)
def test_every_moment_and_day_of_every_contract_is_bounded(model: type[BaseModel]) -> None:
    assert unbounded_times(model) == []


def test_the_fields_the_attack_found_are_free_text() -> None:
    marked = {c.type: free_text_fields(c.payload) for c in REGISTRY}
    assert {"policy_basis", "missing_documents"} <= set(marked["GuidanceGiven"])
    assert "referred_to" in marked["ActionTaken"]
    assert marked["CaseOpened"] == (), "ids and catalogue codes are codes"


def _example(model: type[BaseModel], name: str) -> Any:
    annotation = model.model_fields[name].annotation
    return [TYPED, "离职证明"] if "list" in str(annotation) else TYPED


@pytest.mark.parametrize("contract", [c for c in REGISTRY if free_text_fields(c.payload)],
                         ids=lambda c: c.type)
def test_every_marked_field_is_scrubbed_and_the_known_person_is_never_kept(contract: Any) -> None:
    fields = {name: _example(contract.payload, name)
              for name in free_text_fields(contract.payload)}
    meta = {"actor": "clerk-017", KNOWN_PERSON: KnownPerson(name="王秀英")}
    scrubbed = scrub_fields(contract.type, {**fields, "meta": meta})
    for name, value in fields.items():
        want = [STORED, "离职证明"] if isinstance(value, list) else STORED
        assert scrubbed[name] == want, name
    assert scrubbed["meta"] == {"actor": "clerk-017"}
    assert KNOWN_PERSON in meta, "the caller's meta is left as it was"


def _aggregates() -> list[type[Aggregate]]:
    found = []
    for service in ("intake", "followup", "feedback"):
        module = importlib.import_module(f"services.{service}.domain")
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, Aggregate) and cls.__module__ == module.__name__]
    return found


def test_every_aggregate_of_every_service_goes_through_the_scrubber() -> None:
    aggregates = _aggregates()
    assert {a.__name__ for a in aggregates} >= {"Case", "FollowUp", "Survey", "Rectification"}
    for aggregate in aggregates:
        assert issubclass(aggregate, ScrubsFreeText), aggregate.__name__


class Note(RemembersCommands):
    """A stand-in aggregate recording two contracts' events, as a domain would."""

    @event("RequestHeard")
    def __init__(self, words: str, meta: dict[str, Any]) -> None:
        self.words = words

    @event("GuidanceGiven")
    def guide(self, service_item: str, policy_basis: str, eligibility: str, promised: str,
              missing_documents: list[str], meta: dict[str, Any]) -> None:
        self.missing = missing_documents


def test_the_aggregate_sees_the_scrubbed_text_and_so_does_its_event() -> None:
    known = {"actor": "clerk-017", KNOWN_PERSON: KnownPerson(name="王秀英", phone="021-58881234")}
    note = Note(words="王阿姨家里5888 1234没人接", meta=known)
    assert note.words == f"{REDACTED_NAME}家里{REDACTED_PHONE}没人接"
    note.guide(service_item="SA-HARDSHIP-SUBSIDY", policy_basis="依据沪民规〔2024〕3号，秀英阿姨",
               eligibility="eligible", promised="", missing_documents=["身份证310115198503121234"],
               meta=known)
    created, guided = note.collect_events()
    assert created.words == note.words and created.meta == {"actor": "clerk-017"}
    assert guided.policy_basis == f"依据沪民规〔2024〕3号，{REDACTED_NAME}"
    assert guided.missing_documents == note.missing == ["身份证[身份证号已隐去]"]
    assert guided.service_item == "SA-HARDSHIP-SUBSIDY", "a code is never touched"


def test_bounds_accept_the_widest_window_the_api_can_have_and_nothing_beyond() -> None:
    base = dict(event_id=uuid4(), type="CaseReopened", version=1, service="intake",
                position=1, aggregate_id=uuid4(), aggregate_version=1, case_id=None,
                center_id="c", recorded_at=datetime.now(UTC), actor="clerk",
                payload={"reason": "x"})
    Envelope(**base, occurred_at=datetime(1970, 1, 1, tzinfo=UTC))
    Envelope(**base, occurred_at=datetime(2199, 12, 31, 23, 59, tzinfo=UTC))
    for bad in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                "2026-03-02T09:15:00"):
        with pytest.raises(ValueError):
            Envelope(**base, occurred_at=bad)
    deadline = REGISTRY.get("DeadlineNoted").payload
    deadline(deadline_id=uuid4(), due_on=date(2199, 12, 31), description="x")
    with pytest.raises(ValueError):
        deadline(deadline_id=uuid4(), due_on=date(9999, 12, 31), description="x")


def test_the_walk_looks_inside_a_nested_model_too() -> None:
    class Rule(BaseModel):
        day: date
        direction: str
        note: FreeText = ""

    class Planned(BaseModel):
        rule: Rule | None = None
        team: Code

    assert unmarked_text(Planned) == ["rule.direction"]
    assert unbounded_times(Planned) == ["rule.day"]
    assert nested_free_text(Planned) == ["rule.note"]
