"""An export writes a field an old event does not hold as the contract reads it, not null."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.analytics.export import row_of, type_columns, wide_columns
from shared.contracts.envelope import Envelope
from shared.contracts.registry import REGISTRY

AT = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)


def _old_redial() -> Envelope:
    """A FollowUpRescheduled stored before ``counted`` and ``basis`` existed."""
    case = uuid.uuid4()
    return Envelope.model_validate({
        "event_id": str(uuid.uuid4()), "type": "FollowUpRescheduled", "version": 1,
        "service": "followup", "position": 7, "aggregate_id": str(uuid.uuid4()),
        "aggregate_version": 3, "case_id": str(case), "center_id": "huamu",
        "occurred_at": AT.isoformat(), "recorded_at": AT.isoformat(),
        "causation_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4()),
        "actor": "clerk-1",
        "payload": {"previous_due_at": AT.isoformat(), "due_at": AT.isoformat(),
                    "cause": "unreachable", "reason": "停机"}})


def _cells(columns: list[Any], e: Envelope) -> dict[str, Any]:
    contract = next(c for c in REGISTRY if c.type == e.type)
    return dict(zip([c.name for c in columns], row_of(columns, e, 1, 1, contract),
                    strict=True))


def test_an_old_redial_is_exported_as_counted_and_official() -> None:
    e = _old_redial()
    contract = next(c for c in REGISTRY if c.type == e.type)
    for columns in (type_columns(contract), wide_columns(REGISTRY)):
        cells = _cells(columns, e)
        assert cells["counted"] is True and cells["basis"] == "official"
        assert cells["not_counted_because"] is None and cells["stays"] is None


def test_a_field_of_another_event_type_stays_null_in_the_wide_table() -> None:
    cells = _cells(wide_columns(REGISTRY), _old_redial())
    assert cells["priority"] is None  # FollowUpScheduled's, not this event's


def test_a_field_made_by_a_factory_is_exported_as_the_contract_makes_it() -> None:
    """A rating stored without its aspect marks (``default_factory=dict``), as an event of a
    version before an optional list or dict was added holds none: exported with the empty
    marks the contract reads, not the factory's 'undefined' marker (which no JSON cell
    takes: the rating was left out of the export as unreadable)."""
    rating = _old_redial().model_copy(update={
        "type": "RatingGiven", "version": 2, "service": "feedback",
        "payload": {"survey_id": str(uuid.uuid4()), "purpose": "service",
                    "level": "satisfied", "via": "self"}})
    contract = next(c for c in REGISTRY if c.type == "RatingGiven")
    for columns in (type_columns(contract), wide_columns(REGISTRY)):
        cells = _cells(columns, rating)
        assert cells["aspects"] in ("{}", {}) and cells["reason_tags"] == []
        assert cells["verdict"] is None and cells["comment"] == ""
