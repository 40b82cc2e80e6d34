"""Contracts of the feedback service's reported months: what a center's figures were when a
month was closed (``PeriodClosed``), and every later change to them (``PeriodRevised``), with
the events that arrived late and changed them. Figures only: counts and rates, no personal
data, no free text."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.fields import CODE, Code, Day, Moment
from shared.contracts.registry import REGISTRY, EventContract

SERVICE = "feedback"

LATE_EVENTS_KEPT = 200
"""A revision names at most this many late events (``late_events_total`` counts them all)."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReportedFigure(BaseModel):
    """One figure as reported: a count (``count``) or a rate (the other three)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Code
    count: int | None = None
    numerator: int | None = None
    denominator: int | None = None
    rate: float | None = None


class LateEvent(BaseModel):
    """An event recorded after the month was closed (or last revised) that changed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    type: Code
    recorded_at: Moment


class PeriodClosed(_Payload):
    """A center's month closed: these figures are what was reported (公示, 上报)."""

    center_id: Code
    month: Day = Field(description="The month's first day.")
    closed_by: Annotated[Literal["supervisor", "automatic"], CODE]
    as_of: Day = Field(description="The day deadlines were judged on for these figures.")
    figures: list[ReportedFigure]


class PeriodRevised(_Payload):
    """A closed month's figures changed: events arrived late (a late answer, a reopening).
    Never silent: the new figures, which of them changed, and the events that changed them."""

    center_id: Code
    month: Day
    revision: int = Field(ge=1, description="1 for the first revision after closing.")
    figures: list[ReportedFigure]
    changed: list[Code] = Field(description="The names of the figures that changed.")
    late_events: list[LateEvent]
    late_events_total: int = Field(ge=0)


CONTRACTS = [
    REGISTRY.add(EventContract("PeriodClosed", SERVICE, PeriodClosed,
                               summary=PeriodClosed.__doc__ or "")),
    REGISTRY.add(EventContract("PeriodRevised", SERVICE, PeriodRevised,
                               summary=PeriodRevised.__doc__ or "")),
]
