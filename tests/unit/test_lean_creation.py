"""Every aggregate the three services open is built by ``shared.kernel.creation`` exactly as
eventsourcing's own ``_create`` builds it: the same aggregate state, the same event, the same
bytes stored, the same error when its arguments are refused. Each created event of every
aggregate (a case, a visit, a resident's facts, a follow-up, a help task, a referral, a
survey, a rectification, a reported month ...) is built both ways from the same arguments at
the same moment."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing import domain as es
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services
from shared.eventstore.application import ServiceApplication
from shared.kernel.creation import creator
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.scrubbing import ScrubsFreeText, scrub_fields

for _module in pkgutil.walk_packages(services.__path__, "services."):
    if _module.name.rsplit(".", 1)[-1] in {"domain", "plan", "periods"}:
        importlib.import_module(_module.name)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_BASE = {f.name for f in dataclasses.fields(es.Aggregate.Created)}
CREATIONS = sorted(
    ((cls, event) for cls in set(_subclasses(ScrubsFreeText))
     if cls.__module__.startswith("services.")  # not another test module's aggregates
     for event in vars(cls).values()
     if isinstance(event, type) and issubclass(event, es.CanInitAggregate)
     and event is not es.Aggregate.Created and [f for f in dataclasses.fields(event)
                                                 if f.name not in _BASE]),
    key=lambda pair: f"{pair[0].__module__}.{pair[1].__qualname__}")

MAPPER = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
MOMENT = datetime(2026, 12, 20, 15, 30, 0, 123456, tzinfo=UTC)  # a Sunday, 23:30 in Shanghai

words = st.one_of(st.sampled_from(
    ["", "counter", "phone", "clerk-017", "team-a", "normal", "high", "critical", "monthly",
     "deadline_reminder", "very_dissatisfied", "registration", "presence_grant", "working_days",
     "statutory", "SH-PD-HUAMU", "unemployment-registration", "我的电话是13812345678"]),
    st.text(max_size=6))
metas = st.fixed_dictionaries({
    "actor": st.sampled_from(["clerk-017", "system:rules", "13812345678"]),
    "occurred_at": st.just(MOMENT), "causation_id": st.one_of(st.none(), words),
    "correlation_id": st.none(), "center_id": st.just("SH-PD-HUAMU"),
    "case_id": st.one_of(st.none(), st.uuids())})


def _values(name: str, hint: Any) -> st.SearchStrategy[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return words
    if name == "meta":
        return metas
    if origin is dict:
        return st.dictionaries(words, st.one_of(st.none(), st.integers(), words), max_size=3)
    if origin is list:
        return st.lists(_values(name, args[0]), max_size=3)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_values(name, a) for a in args))
    return st.from_type(hint)


def _arguments(event: type) -> st.SearchStrategy[dict[str, Any]]:
    hints = typing.get_type_hints(event)
    return st.fixed_dictionaries({f.name: _values(f.name, hints[f.name])
                                  for f in dataclasses.fields(event) if f.name not in _BASE})


def _built(cls: type, event: type, aggregate_id: uuid.UUID, kwargs: dict[str, Any],
           lean: bool) -> tuple[Any, ...]:
    try:
        if lean:  # as the services build it: ScrubsFreeText._create
            agg = cls._create(event, id=aggregate_id, **kwargs)
        else:  # the library's own, of the scrubbed arguments
            agg = es.BaseAggregate._create.__func__(
                cls, event, id=aggregate_id, **scrub_fields(event.__name__, kwargs))
    except Exception as exc:  # the same refusal, worded the same
        return "error", type(exc), str(exc)
    state = {k: v for k, v in vars(agg).items() if k != "_pending_events"}
    stored = [MAPPER.to_stored_event(e) for e in agg.pending_events]
    return type(agg), state, [(type(e), vars(e)) for e in agg.pending_events], stored


@pytest.fixture(autouse=True)
def _one_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es, "datetime_now_with_tzinfo", lambda: MOMENT)


def test_every_opening_takes_the_lean_path_but_the_residents_facts() -> None:
    """A resident's facts create the record or follow it (``Resident.Fact.mutate``): the
    library builds those; every other created event of the services is built here."""
    lean = {event.__qualname__ for cls, event in CREATIONS if creator(cls, event) is not None}
    library = {event.__qualname__ for cls, event in CREATIONS} - lean
    assert {"Case.CaseOpened", "Visit.VisitRecorded", "FollowUp.FollowUpScheduled",
            "Survey.SurveyRequested", "Rectification.RectificationOpened",
            "ReportedMonth.PeriodClosed", "Plan.PlanDrawnUp"} <= lean
    assert library == {"Resident.ConsentChanged", "Resident.ResidentErased",
                       "Resident.CareNeedChanged", "Resident.Fact"}


@pytest.mark.parametrize(("cls", "event"), CREATIONS,
                         ids=[event.__qualname__ for _, event in CREATIONS])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_new_aggregate_is_built_and_stored_as_the_library_builds_it(
        cls: type, event: type, data: st.DataObject) -> None:
    aggregate_id = data.draw(st.uuids())
    kwargs = data.draw(_arguments(event))
    assert _built(cls, event, aggregate_id, kwargs, lean=True) == _built(
        cls, event, aggregate_id, kwargs, lean=False)


def test_a_case_opened_at_the_counter_takes_the_lean_path_with_the_same_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from services.intake.domain import Case

    def not_the_library(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a case is built by shared.kernel.creation, not the library")

    monkeypatch.setattr(es.BaseAggregate, "_create", classmethod(not_the_library))
    case_id = uuid.uuid4()
    meta = {"actor": "clerk-017", "occurred_at": MOMENT, "causation_id": "k-1",
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": case_id}
    case = Case(id=case_id, center_id="SH-PD-HUAMU", counter_id="c-01", clerk_id="clerk-017",
                channel="counter", service_item="unemployment-registration",
                resident_id=None, meta=meta)
    assert creator(Case, type(case.pending_events[0])) is not None
    assert MAPPER.to_stored_event(case.pending_events[0]).state == (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-20T15:30:00.123456+00:00"},'
        b'"originator_topic":"services.intake.domain:Case","center_id":"SH-PD-HUAMU",'
        b'"counter_id":"c-01","clerk_id":"clerk-017","channel":"counter",'
        b'"service_item":"unemployment-registration","resident_id":null,'
        b'"meta":{"actor":"clerk-017","occurred_at":{"_type_":"datetime_iso",'
        b'"_data_":"2026-12-20T15:30:00.123456+00:00"},"causation_id":"k-1",'
        b'"correlation_id":null,"center_id":"SH-PD-HUAMU","case_id":{"_type_":"uuid_hex",'
        b'"_data_":"' + case_id.hex.encode() + b'"}},"resident_basis":null,'
        b'"applicant_id":null,"applicant_basis":null}')


class _Stamped(es.Aggregate):
    """A mixin of the library's kind with a ``_create`` of its own: each aggregate it builds
    is marked (as an audit mixin would)."""

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None, **kwargs: Any) -> Any:
        aggregate = super()._create(event_class, id=id, **kwargs)
        aggregate.__dict__["built_here"] = True
        return aggregate


class _StampedNote(RemembersCommands, _Stamped):
    """An aggregate whose ``_create`` after ``ScrubsFreeText``'s is the mixin's."""

    def __init__(self, center_id: str) -> None:
        self.center_id = center_id


def test_a_mixins_create_after_the_scrubbers_runs_as_the_librarys_path_runs_it() -> None:
    """A note opened with its id (as every service opens its aggregates): the mixin's
    ``_create`` builds it, as ``super()._create`` reaches it on the library's path;
    ``shared.kernel.creation`` (which stands for the library's ``_create`` alone) skipped it."""
    note = _StampedNote._create(_StampedNote.Created, id=uuid.uuid4(), center_id="SH-PD-HUAMU")
    assert note.built_here is True
    assert note.center_id == "SH-PD-HUAMU" and note.version == 1
