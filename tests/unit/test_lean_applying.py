"""A case, a resident's record and a follow-up loaded through ``shared.kernel.applying``
(every ``repository.get`` of the services' applications) are exactly what eventsourcing's own
``project_aggregate`` rebuilds from the same stored events: generated histories of the
center's day, each replayed both ways at every version, the aggregates compared attribute by
attribute; and a history out of order or of another aggregate is refused with the same
error both ways."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from eventsourcing import domain as es
from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate, OriginatorIDError, OriginatorVersionError, event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.followup.domain import FollowUp
from services.intake.domain import Case, Resident
from shared.eventstore.application import ProjectingRepository, ServiceApplication
from shared.kernel.applying import project
from shared.kernel.errors import CommandError
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.scrubbing import ScrubsFreeText, scrub_fields

# The calendar's edges: a Sunday before Christmas, 23:30 on New Year's Eve in Shanghai, a
# provisional year, a leap day.
MOMENTS = [datetime(2026, 12, 20, 2, tzinfo=UTC), datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
           datetime(2027, 2, 10, 1, tzinfo=UTC), datetime(2028, 2, 29, 8, tzinfo=UTC)]
DAYS = [date(2026, 12, 20), date(2027, 1, 1), date(2027, 10, 8), date(2028, 2, 29)]
CLERKS = ["clerk-017", "clerk-018", "sup-003"]
MAPPER = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def _app() -> ServiceApplication:
    return ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def _meta(draw: Any, n: int) -> dict[str, Any]:
    return {"actor": draw(st.sampled_from(CLERKS)), "occurred_at": draw(st.sampled_from(MOMENTS)),
            "causation_id": f"key-{n}" if draw(st.booleans()) else None,
            "correlation_id": None, "center_id": "SH-PD-HUAMU",
            "command_digest": draw(st.sampled_from([None, "d" * 43]))}


def _case_step(draw: Any, case: Case, n: int) -> None:
    meta = _meta(draw, n)
    step = draw(st.integers(0, 10))
    if step == 0:
        case.hear_request(draw(st.sampled_from(["想申请临时救助", "我的电话是13812345678"])), meta)
    elif step == 1:
        confirmed = draw(st.booleans())
        case.restate_request("申请临时救助", confirmed, None if confirmed else "是低保", meta)
    elif step == 2:
        case.note_concerns(["money"], ["rent"], draw(st.sampled_from(["calm", "angry"])),
                           draw(st.sampled_from(["normal", "critical", "low"])), meta,
                           supervisor=draw(st.booleans()))
    elif step == 3:
        case.give_guidance("SA-HARDSHIP-SUBSIDY", "办法第三条", "eligible", "五个工作日", [], meta)
    elif step == 4:
        kind = draw(st.sampled_from(["done_on_the_spot", "escalated"]))
        case.take_action(kind, "受理", None, meta,
                         owner_clerk="clerk-018" if kind == "escalated" else None)
    elif step == 5:
        case.hand_over(draw(st.sampled_from([*CLERKS, None])), None, "换人", meta)
    elif step == 6:
        case.note_deadline(draw(st.uuids()), draw(st.sampled_from(DAYS)), "补材料", meta)
    elif step == 7:
        case.resolve("resolved", "", None, meta, emotion_on_leaving="calm",
                     judged_at=draw(st.sampled_from([None, *MOMENTS])))
    elif step == 8:
        case.reopen("新材料", meta)
    elif step == 9:
        case.move_due_date(draw(st.sampled_from(DAYS)), "居民要求", "official",
                           meta["actor"], draw(st.booleans()), meta, today=DAYS[1])
    else:
        case.declare_obligation(draw(st.uuids()), "每月报销", "monthly",
                                draw(st.sampled_from(DAYS)), meta)


def _follow_up_step(draw: Any, follow_up: FollowUp, n: int) -> None:
    meta = _meta(draw, n)
    step = draw(st.integers(0, 3))
    if step == 0:
        now = draw(st.sampled_from(MOMENTS))
        follow_up.reschedule(now + timedelta(days=draw(st.integers(0, 9))), "居民要求改期",
                             draw(st.sampled_from([*CLERKS, None])), None, now, meta,
                             by_supervisor=draw(st.booleans()))
    elif step == 1:
        follow_up.reassign(draw(st.sampled_from(CLERKS)), None, "转办", meta)
    elif step == 2:
        follow_up.prioritise(meta)
    else:
        follow_up.cancel(draw(st.sampled_from(["lapsed", "done"])), meta,
                         by_supervisor=draw(st.booleans()))


def _resident_step(draw: Any, resident: Resident, n: int) -> None:
    meta = _meta(draw, n)
    step = draw(st.integers(0, 2))
    if step == 0:
        resident.change_consent(draw(st.booleans()), draw(st.booleans()), meta)
    elif step == 1:
        resident.note_care(draw(st.booleans()), meta)
    else:
        resident.erase(meta)


def _history(draw: Any) -> Any:
    """One aggregate of the three services, built by a generated run of its verbs (the
    refused ones dropped, as the command path would answer them)."""
    kind = draw(st.sampled_from(["case", "follow_up", "resident"]))
    meta = _meta(draw, 0)
    if kind == "case":
        aggregate: Any = Case(id=draw(st.uuids()), center_id="SH-PD-HUAMU", counter_id="w3",
                              clerk_id="clerk-017", channel="counter",
                              service_item="SA-HARDSHIP-SUBSIDY",
                              resident_id=draw(st.sampled_from([None, uuid.UUID(int=9)])),
                              meta=meta)
        if draw(st.booleans()):  # most of a case's steps come after hearing the request
            aggregate.hear_request("想申请临时救助", _meta(draw, 0))
        step = _case_step
    elif kind == "follow_up":
        aggregate = FollowUp(id=draw(st.uuids()), reason="post_resolution_check",
                             resident_id=uuid.UUID(int=9), due_at=draw(st.sampled_from(MOMENTS)),
                             assigned_clerk="clerk-017", assigned_team=None, priority="normal",
                             service_item=None, source="intake:CaseResolved", source_id=None,
                             meta=meta, basis="provisional", due_rule=None, contact=None)
        step = _follow_up_step
    else:
        resident_id = draw(st.uuids())
        aggregate = (Resident.registered(resident_id, True, True, meta) if draw(st.booleans())
                     else Resident.erased_before_recorded(resident_id, meta))
        step = _resident_step
    for n in range(1, draw(st.integers(0, 14)) + 1):
        try:
            step(draw, aggregate, n)
        except CommandError:
            pass
    return aggregate


histories = st.composite(_history)


def _state(aggregate: Any) -> tuple[type, dict[str, Any]]:
    return type(aggregate), {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_an_aggregate_loads_as_the_library_rebuilds_it_at_every_version(live: Any) -> None:
    app = _app()
    app.save(live)
    assert type(app.repository) is ProjectingRepository
    for version in range(1, live.version + 1):
        theirs = app.repository.get(live.id, version=version, projector_func=project_aggregate)
        ours = app.repository.get(live.id, version=version)
        assert _state(ours) == _state(theirs)
    assert _state(app.repository.get(live.id)) == _state(live)


@settings(max_examples=40, deadline=None)
@given(histories(), histories(), st.data())
def test_a_history_out_of_order_or_of_another_aggregate_is_refused_the_same_way(
        one: Any, other: Any, data: Any) -> None:
    app = _app()
    app.save(one, other)
    events = list(app.events.get(one.id))
    strangers = list(app.events.get(other.id))
    cut = data.draw(st.integers(1, len(events)))
    broken = data.draw(st.sampled_from([
        events[:cut] + events[cut - 1:],  # an event twice
        events[:1] + events[2:],  # one left out
        events[:cut] + strangers[cut:cut + 1]]))  # another aggregate's next event
    if [e.originator_version for e in broken] == list(range(1, len(broken) + 1)) and all(
            e.originator_id == one.id for e in broken):
        return  # nothing broken (a history of one event, another's history too short)

    def refusal(projector: Any) -> tuple[type, str]:
        with pytest.raises((OriginatorIDError, OriginatorVersionError, AssertionError)) as refused:
            projector(None, broken)
        return refused.type, str(refused.value)

    assert refusal(project) == refusal(project_aggregate)


def _library_trigger(self: Any, event_class: type, **kwargs: Any) -> None:
    """``ScrubsFreeText.trigger_event`` before ``shared.kernel.applying.trigger``."""
    Aggregate.trigger_event(self, event_class,
                            **scrub_fields(event_class.__name__, kwargs, self._holds))


def _recorded(aggregate: Any) -> tuple[Any, ...]:
    events = aggregate.collect_events()
    return (_state(aggregate), [(type(e), vars(e)) for e in events],
            [MAPPER.to_stored_event(e) for e in events])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_history_is_recorded_as_the_librarys_trigger_event_records_it(data: Any) -> None:
    """The same verbs with the same arguments, once through ``applying.trigger`` and once
    through the library's ``trigger_event``: the same aggregate, events and stored bytes."""
    drawn: list[Any] = []

    def drawing(strategy: Any) -> Any:
        drawn.append(data.draw(strategy))
        return drawn[-1]

    with patch.object(es, "datetime_now_with_tzinfo", lambda: MOMENTS[1]):
        ours = _recorded(_history(drawing))
        again = iter(drawn)
        with patch.object(ScrubsFreeText, "trigger_event", _library_trigger):
            theirs = _recorded(_history(lambda _: next(again)))
    assert ours == theirs


def test_an_event_of_an_at_event_method_skips_the_librarys_generic_apply(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The case's events after its opening never reach ``DecoratedFuncCaller.apply``, nor the
    runtime ``Protocol`` check ``project_aggregate`` makes of each event."""
    from eventsourcing import domain

    case = Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="w3",
                clerk_id="clerk-017", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=None, meta={"causation_id": "open-1"})
    case.hear_request("想申请临时救助", {"causation_id": "hear-1"})
    case.resolve("resolved", "", True, {"causation_id": "resolve-1"})
    app = _app()
    app.save(case)

    def refused(*_: Any, **__: Any) -> None:
        raise AssertionError("the library's generic path")

    monkeypatch.setattr(domain.DecoratedFuncCaller, "apply", refused)
    monkeypatch.setattr(domain.CanMutateProtocol, "__instancecheck__", refused, raising=False)
    assert _state(app.repository.get(case.id)) == _state(case)


class _Stamped(Aggregate):
    """A mixin of the library's kind with a ``trigger_event`` of its own: each event the
    aggregate records is counted on it (as an audit mixin would)."""

    def trigger_event(self, event_class: type, **kwargs: Any) -> None:
        self.__dict__["recorded_here"] = self.__dict__.get("recorded_here", 0) + 1
        super().trigger_event(event_class, **kwargs)


class _StampedNote(RemembersCommands, _Stamped):
    """An aggregate whose ``trigger_event`` after ``ScrubsFreeText``'s is the mixin's."""

    def __init__(self, center_id: str) -> None:
        self.center_id = center_id

    @event("NoteTaken")
    def take_note(self, text: str) -> None:
        self.text = text


def test_a_mixins_trigger_event_after_the_scrubbers_runs_as_the_librarys_path_runs_it() -> None:
    """The clerk's note on an aggregate that mixes in a ``trigger_event`` of its own: the
    mixin sees the event, as ``super().trigger_event`` reaches it on the library's path;
    ``applying.trigger`` (which stands for the library's ``trigger_event`` alone) skipped it."""
    note = _StampedNote(center_id="SH-PD-HUAMU")
    note.take_note("居民下周三再来")
    assert note.recorded_here == 1
    assert note.text == "居民下周三再来" and note.version == 2
