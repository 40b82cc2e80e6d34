"""Who served a case may not record its answer (代评): every staff member who took a step of
serving is remembered, whatever their id looks like; only the services' own workers
(``system``, ``system:<worker>``) are no one who served."""

from __future__ import annotations

from datetime import UTC, datetime

from services.feedback.consumer import _served
from tests.support import bare_envelope

AT = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def test_a_clerk_whose_id_begins_with_system_is_remembered_as_serving() -> None:
    for actor in ("systemadmin", "system-ops-07"):
        assert _served(["clerk-017"], bare_envelope("RequestHeard", AT, actor=actor)) == [
            "clerk-017", actor]
    for worker in ("system", "system:verdicts", "system:calendar"):
        assert _served(["clerk-017"], bare_envelope("DeadlineNoted", AT, actor=worker)) == [
            "clerk-017"]


def test_the_supervisor_who_hands_a_case_on_did_not_serve_it_the_clerk_given_it_did() -> None:
    # A small center, one supervisor: director-01 hands clerk-017's case to clerk-021, who
    # resolves it. The bad review is of the two clerks' work; director-01, who only handed it
    # out, is the one left to decide the appeal (served_by bars whoever it names: 403
    # self_decision, with no other supervisor there to decide it).
    served = ["clerk-017"]
    for e in (bare_envelope("CaseHandedOver", AT, actor="director-01",
                            payload={"to_clerk": "clerk-021"}),
              bare_envelope("CaseResolved", AT, actor="clerk-021"),
              bare_envelope("CaseHandedOver", AT, actor="clerk-021",
                            payload={"to_clerk": "clerk-030"})):
        served = _served(served, e)
    assert served == ["clerk-017", "clerk-021", "clerk-030"]
