"""Contracts of the feedback service's events: step 6, the resident's verdict."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contracts.registry import REGISTRY, EventContract

SERVICE = "feedback"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RectificationOpened(_Payload):
    """A bad review opened a rectification; the follow-up service schedules the revisit."""

    rectification_id: UUID
    resident_id: UUID | None
    rating: str
    deadline_on: date
    summary: str = ""


CONTRACTS = [
    REGISTRY.add(EventContract("RectificationOpened", SERVICE, RectificationOpened,
                               summary=RectificationOpened.__doc__ or "")),
]
