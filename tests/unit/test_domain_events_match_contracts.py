"""Every event a service's domain records matches its contract in the registry, field by field.

The relay maps a stored event to its contract's payload (``shared/eventstore/outbox.py``); a
mismatch used to be found only there, when the relay met the event and could not publish it.
Here it is found before anything runs: an ``@event`` method (or an event class) whose name has
no contract of its service, a payload field the event does not carry, a field added to the
event without the contract, or a type the contract would refuse.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import sys
import types
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from pydantic import BaseModel

from shared.contracts import REGISTRY

SERVICES = ("intake", "followup", "feedback")
#: The modules holding each service's aggregates (feedback's reported months: ``periods``).
DOMAINS = {"intake": ("domain", "plan"), "followup": ("domain",),
           "feedback": ("domain", "periods")}

#: Attributes an event keeps in the service's own store that are deliberately not on the bus.
STORE_ONLY = {
    # The revisit survey is asked on the first survey's channel, at its counter and clerk,
    # about its service item: the rectification keeps them, the contract does not carry them.
    ("RectificationOpened", "channel"), ("RectificationOpened", "counter_id"),
    ("RectificationOpened", "clerk_id"), ("RectificationOpened", "service_item"),
    # Who opened or served the case: no 代评 (checked when staff record the answer).
    ("SurveyRequested", "served_by"), ("RectificationOpened", "served_by"),
    # The day feedback recorded a bad review: its appeal window counts from it when the
    # answer gives an earlier day (a paper form typed in later).
    ("RectificationOpened", "recorded_on"),
    # How a deadline was counted (None: from the day after the day, before stop 51), so a
    # re-planning counts it again on its own rule.
    ("HelpTaskOpened", "counted_as"), ("ReferralSent", "counted_as"),
    ("ReferralReopened", "counted_as"),
}

#: Payload fields the contract works out from the event's other fields.
DERIVED = {
    ("ConcernsNoted", "needs_defusing"),  # from the emotion on arrival (a model validator)
}

#: Contracts defined before the event that records them exists.
AHEAD_OF_THEIR_EVENT: set[str] = set()  # none now: CaseDueDateSet is recorded (issue 19)


def domain_events(module: ModuleType) -> Iterator[tuple[str, type, dict[str, Any]]]:
    """(aggregate, event class, {field: type}) for every event an aggregate of ``module``
    records: the classes ``@event`` makes and the event classes written by hand."""
    names = dict(vars(module))  # eval adds __builtins__ to what it is given
    for name, aggregate in list(vars(module).items()):
        if not (inspect.isclass(aggregate) and issubclass(aggregate, Aggregate)
                and aggregate.__module__ == module.__name__):
            continue
        nested = [c for c in vars(aggregate).values()
                  if inspect.isclass(c) and issubclass(c, CanMutateAggregate)
                  and c not in (aggregate.Created, aggregate.Event)]
        for event_class in nested:
            if any(other is not event_class and issubclass(other, event_class)
                   for other in nested):
                continue  # a base of the aggregate's own events (Resident.Fact)
            fields: dict[str, Any] = {}
            for klass in reversed(event_class.__mro__):
                if klass.__module__ != module.__name__:
                    continue  # eventsourcing's originator_id, timestamp, ...
                for field, annotation in vars(klass).get("__annotations__", {}).items():
                    fields[field] = (eval(annotation, names)
                                     if isinstance(annotation, str) else annotation)
            fields.pop("meta", None)  # the envelope's parts, not the payload
            yield name, event_class, fields


def kinds(annotation: Any) -> set[Any]:
    """What values a type admits, coarsely: an enum of strings is a str, a model a dict."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(kinds(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return set().union(*(kinds(type(value)) for value in get_args(annotation)))
    if origin in (list, tuple, set, frozenset):
        args = get_args(annotation)
        return {("list", frozenset(kinds(args[0]) if args else {"any"}))}
    if origin is dict or annotation is dict:
        return {"dict"}
    if annotation is type(None):
        return {"none"}
    if annotation is Any:
        return {"any"}
    if inspect.isclass(annotation):
        if issubclass(annotation, BaseModel):
            return {"dict"}
        for kind in (bool, int, float, str, uuid.UUID, dt.datetime, dt.date):
            if issubclass(annotation, kind):
                return {kind.__name__}
        if issubclass(annotation, enum.Enum):
            return {"enum"}
    return {repr(annotation)}


def admits(contract: set[Any], event: set[Any]) -> bool:
    if "any" in contract:
        return True
    return all(kind in contract or (kind == "int" and "float" in contract) for kind in event)


def every_event() -> list[tuple[str, str, type, dict[str, Any]]]:
    return [(service, aggregate, event_class, fields)
            for service in SERVICES
            for module in DOMAINS[service]
            for aggregate, event_class, fields in domain_events(
                importlib.import_module(f"services.{service}.{module}"))]


EVENTS = every_event()


def test_the_domains_are_read_whole() -> None:
    """The walk finds the events it must (so the checks below cannot pass on nothing)."""
    found = {event_class.__name__ for _, _, event_class, _ in EVENTS}
    assert {"CaseOpened", "ConsentChanged", "ResidentErased", "FollowUpScheduled",
            "ObligationMissed", "PolicyChangeFannedOut", "RatingGiven",
            "RevisitRequested"} <= found
    assert len(found) == len(EVENTS), "one event class per type"


@pytest.mark.parametrize(("service", "aggregate", "event_class", "fields"), EVENTS,
                         ids=[event_class.__name__ for _, _, event_class, _ in EVENTS])
def test_each_event_matches_its_contract(service: str, aggregate: str, event_class: type,
                                         fields: dict[str, Any]) -> None:
    name = event_class.__name__
    assert name in REGISTRY, f"{aggregate}.{name} has no contract in shared/contracts/"
    contract = REGISTRY.get(name)
    assert contract.service == service, f"{name} is {contract.service}'s, recorded by {service}"
    payload = contract.payload.model_fields
    unlisted = {f for f in fields if f not in payload and (name, f) not in STORE_ONLY}
    assert not unlisted, (f"{aggregate}.{name} records {sorted(unlisted)}, which its contract "
                          f"lacks: add them to shared/contracts/{service}.py (a new version)")
    lacking = {f for f in payload if f not in fields and (name, f) not in DERIVED}
    assert not lacking, f"{aggregate}.{name} lacks the contract's {sorted(lacking)}"
    for field, annotation in fields.items():
        if field in payload:
            recorded, accepted = kinds(annotation), kinds(payload[field].annotation)
            assert admits(accepted, recorded), (
                f"{name}.{field}: the event records {recorded}, the contract takes {accepted}")


def test_every_contract_is_recorded_by_its_service() -> None:
    recorded = {event_class.__name__ for _, _, event_class, _ in EVENTS}
    unrecorded = {c.type for c in REGISTRY} - recorded - AHEAD_OF_THEIR_EVENT
    assert not unrecorded, f"contracts no domain records: {sorted(unrecorded)}"


PROBE = """
from __future__ import annotations
from datetime import datetime
from typing import Any
from uuid import UUID
from eventsourcing.domain import Aggregate, event

class Probe(Aggregate):
    @event("SurveySent")
    def _sent(self, survey_id: UUID, channel: str, expires_at: datetime, phone: str,
              meta: dict[str, Any]) -> None: ...
"""


def test_a_field_added_to_an_event_without_its_contract_is_found(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: an @event method with a field the contract lacks fails it."""
    module = ModuleType("probe_domain")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # eventsourcing imports it
    exec(PROBE, vars(module))
    [(aggregate, event_class, fields)] = domain_events(module)
    assert (aggregate, event_class.__name__) == ("Probe", "SurveySent")
    with pytest.raises(AssertionError, match="phone"):
        test_each_event_matches_its_contract("feedback", aggregate, event_class, fields)
