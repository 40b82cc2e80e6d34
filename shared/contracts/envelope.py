"""The envelope every event wears on the bus, whatever service emitted it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.fields import Code, Moment, OptionalCode
from shared.contracts.ids import uuid5

EVENT_ID_NAMESPACE = UUID("6f1c2a64-93f5-4f0c-9a51-5e0b6a1c7d21")


def event_id_for(service: str, aggregate_id: UUID, aggregate_version: int) -> UUID:
    """A stable event id: the same stored event always gets the same id, on every re-publish."""
    return uuid5(EVENT_ID_NAMESPACE, f"{service}:{aggregate_id}:{aggregate_version}")


class Envelope(BaseModel):
    """What crosses the bus: who, what, when and why, around a typed payload.

    ``position`` is the event's place in its service's own log (the outbox notification id);
    ``aggregate_version`` orders the events of one aggregate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    type: Code = Field(description="Event type, past tense, unique across services.")
    version: int = Field(ge=1, description="Schema version of the payload.")
    service: Code = Field(description="The service whose log holds the event.")
    position: int = Field(ge=1, description="Notification id in the service's log.")
    aggregate_id: UUID
    aggregate_version: int = Field(ge=1)
    case_id: UUID | None = Field(description="The case the event is about, when there is one.")
    center_id: Code
    occurred_at: Moment = Field(description=(
        "When it happened, as reported by the counter: 1970 to 2199, with an offset (the API's "
        "own window, OCCURRED_AT_EARLIEST and OCCURRED_AT_MAX_FUTURE_S, lies inside it)."))
    recorded_at: Moment = Field(description="When the service stored it.")
    causation_id: OptionalCode = Field(None, description="The command (Idempotency-Key) behind it.")
    correlation_id: OptionalCode = Field(None, description="Shared by everything one visit caused.")
    actor: Code = Field(description="Who did it: a clerk id, 'resident', or 'system:<part>'.")
    payload: dict[str, Any]

    @property
    def partition_key(self) -> UUID:
        return self.case_id or self.aggregate_id
