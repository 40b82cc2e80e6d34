"""What a batch of follow-up's rules reads and locks is named by its events' ids, taken in one
pass (``consumer._BatchIds``): the same ids as one set or list per question, as ``_read`` and
``_meet`` asked before, on a batch of every kind the rules see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.followup.consumer import _BatchIds, _step_case
from shared.contracts import Envelope
from tests.support import bare_envelope

NOW = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai, New Year's Eve


def _e(type_: str, service: str = "intake", case_id: uuid.UUID | None = None,
       **payload: Any) -> Envelope:
    return bare_envelope(type_, NOW, service=service, case_id=case_id, payload=payload)


def _one_question_at_a_time(events: list[Envelope]) -> dict[str, Any]:
    """The ids as ``_read`` and ``_meet`` took them before: a pass over the batch each."""
    resolved = {e.case_id for e in events if e.service == "intake"
                and e.type == "CaseResolved" and e.case_id is not None}
    residents = {uuid.UUID(e.payload["resident_id"]) for e in events
                 if e.service == "intake" and e.type in ("ConsentChanged", "ResidentErased")}
    for e in events:
        if e.type in ("CaseOpened", "RectificationOpened", "PlanStepAdded") \
                and e.payload.get("resident_id"):
            residents.add(uuid.UUID(str(e.payload["resident_id"])))
    return {
        "cases": {i for e in events
                  for i in (e.case_id, _step_case(e) if e.type == "PlanStepAdded" else None)
                  if i is not None},
        "planned": {e.case_id for e in events if e.case_id is not None},
        "turned": [e.case_id for e in events if e.service == "intake"
                   and e.type in ("CaseResolved", "CaseReopened") and e.case_id is not None],
        "resolved": resolved,
        "residents": residents,
        "cared": [uuid.UUID(e.payload["resident_id"]) for e in events
                  if e.service == "intake" and e.type == "CareNeedChanged"],
        "opened": [uuid.UUID(e.payload["resident_id"]) for e in events
                   if e.type == "CaseOpened" and e.service == "intake"
                   and e.case_id in resolved and e.payload.get("resident_id")],
    }


def test_a_batchs_ids_are_read_in_one_pass_as_one_question_at_a_time() -> None:
    a, b, c, d, step_case = (uuid.uuid4() for _ in range(5))
    alone, cared, erased, reviewed, planned_for = (str(uuid.uuid4()) for _ in range(5))
    events = [
        _e("CaseOpened", case_id=a, resident_id=alone),
        _e("RequestHeard", case_id=a),
        _e("CaseOpened", case_id=b, resident_id=None),  # no resident on file
        _e("CaseOpened", case_id=c, resident_id=cared),
        _e("CaseResolved", case_id=a),
        _e("CaseResolved", case_id=b),
        _e("CaseReopened", case_id=a),
        _e("CaseResolved", case_id=a),  # resolved again in the same batch
        _e("CareNeedChanged", resident_id=cared, more_care=True),
        _e("CareNeedChanged", resident_id=cared, more_care=False),
        _e("ConsentChanged", resident_id=alone, contact=False),
        _e("ResidentErased", resident_id=erased),
        bare_envelope("PlanStepAdded", NOW, payload={"resident_id": planned_for,
                                                     "case_id": str(step_case)}),
        _e("PlanStepAdded", resident_id=planned_for),  # a step of no case
        _e("RectificationOpened", "feedback", case_id=d, resident_id=reviewed),
        _e("CaseResolved", "feedback", case_id=d),  # not intake's: turns nothing
        _e("VisitRecorded"),
    ]
    ids = _BatchIds(events)
    expected = _one_question_at_a_time(events)
    assert {name: getattr(ids, name) for name in expected} == expected
    assert ids.turned == [a, b, a, a] and ids.opened == [uuid.UUID(alone)]
    assert step_case in ids.cases and step_case not in ids.planned
