"""A follow-up cancelled through ``shared.kernel.creation.recording`` (the rules cancel every
lapsed follow-up they plan) is cancelled exactly as eventsourcing's own ``@event`` call cancels
it: the same aggregate state, the same event, the same bytes stored, the same refusal; and a
call that does not name each of the method's parameters goes through the library's call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing import domain as es

from services.followup.application import LAPSED
from services.followup.domain import FollowUp
from shared.eventstore.application import ServiceApplication
from shared.kernel.creation import recording

MAPPER = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
MOMENT = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 on New Year's Eve in Shanghai
RULES = {"actor": "system:rules", "occurred_at": MOMENT, "causation_id": "intake:41",
         "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.UUID(int=7)}


@pytest.fixture(autouse=True)
def _one_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es, "datetime_now_with_tzinfo", lambda: MOMENT)


def _planned() -> FollowUp:
    return FollowUp(id=uuid.UUID(int=42), reason="post_resolution_check",
                    resident_id=uuid.UUID(int=9), due_at=datetime(2028, 2, 29, 1, tzinfo=UTC),
                    assigned_clerk="clerk-017", assigned_team=None, priority="normal",
                    service_item=None, source="intake:CaseResolved", source_id=None,
                    meta=dict(RULES), basis="provisional", due_rule=None, contact=None)


def _cancelled(how: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    follow_up = _planned()
    try:
        how(follow_up, kwargs)
    except Exception as exc:  # the same refusal, worded the same
        return "error", type(exc), str(exc)
    state = {k: v for k, v in vars(follow_up).items() if k != "_pending_events"}
    events = follow_up.collect_events()
    return state, [(type(e), vars(e)) for e in events], [
        MAPPER.to_stored_event(e) for e in events]


def _library(follow_up: FollowUp, kwargs: dict[str, Any]) -> None:
    follow_up._cancelled(**kwargs)


LEAN = recording(FollowUp, "_cancelled")


@pytest.mark.parametrize("kwargs", [
    {"reason": LAPSED, "meta": dict(RULES)},
    {"reason": "the resident called: done at the counter", "meta": dict(RULES)},
    {"reason": "我的电话是13812345678", "meta": dict(RULES)},  # scrubbed on both paths
    {"meta": dict(RULES), "reason": LAPSED},  # another order of the same names
    {"reason": LAPSED},  # a parameter missing: the library's refusal
    {"reason": LAPSED, "meta": dict(RULES), "extra": 1},  # a name too many: the same
])
def test_a_lapsed_follow_up_is_cancelled_as_the_library_cancels_it(
        kwargs: dict[str, Any]) -> None:
    assert _cancelled(LEAN, dict(kwargs)) == _cancelled(_library, dict(kwargs))


def test_cancel_records_through_the_lean_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FollowUp.cancel`` never builds the library's bound decorator for its event."""
    def refused(*_: Any, **__: Any) -> None:
        raise AssertionError("the library's generic call")

    monkeypatch.setattr(es.BoundCommandMethodDecorator, "trigger", refused)
    follow_up = _planned()
    assert follow_up.cancel(LAPSED, dict(RULES)) is True
    assert follow_up.status == "cancelled"
    assert [type(e).__name__ for e in follow_up.collect_events()] == [
        "FollowUpScheduled", "FollowUpCancelled"]
