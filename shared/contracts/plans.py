"""Contracts of intake's linked plans: one beneficiary's cases across service items, as dated,
ordered steps (the seed's cancer case: suspend contributions, last month of unemployment
benefit with its medical cover, the family applies for the resident medical subsidy).

A plan's events carry no ``case_id`` in the envelope (a plan links several cases): their
partition is the plan's id, so one plan's events stay in order."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.fields import Code, Day, FreeText, Moment
from shared.contracts.registry import REGISTRY, EventContract
from shared.contracts.vocabulary import StepTiming

SERVICE = "intake"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanDrawnUp(_Payload):
    """A clerk drew up a plan for one beneficiary (an opaque resident id)."""

    plan_id: UUID
    center_id: Code
    resident_id: UUID = Field(description="The beneficiary every step is for.")
    counter_id: Code
    title: FreeText = Field(description="What the plan is for, in plain words (scrubbed).")


class PlanStepAdded(_Payload):
    """One dated step of a plan: the item, when it takes effect, what it waits for, and the
    case that carries it (when it is open already). Follow-up reminds ahead of
    ``effective_on`` on the working-day calendar."""

    step_id: UUID
    seq: int = Field(ge=1, description="The step's place in the plan, 1 first.")
    service_item: Code = Field(description="Catalogue code.")
    effective_on: Day = Field(description="The day it takes effect; for a month step, the "
                                          "month's first day.")
    timing: StepTiming
    depends_on: UUID | None = Field(None, description="The step that must come first.")
    case_id: UUID | None = Field(None, description="The case that carries the step.")
    resident_id: UUID = Field(description="The plan's beneficiary (for follow-up's consent).")
    what: FreeText = Field(description="What happens at this step, in plain words.")
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before "
                          "intake's clock (a step typed in today from last month's paper "
                          "slip): the moment follow-up takes it as added, so its reminder is "
                          "planned from then, not lapsed as old work. None: occurred_at "
                          "stands (and on every step recorded before it existed).")


class PlanCaseLinked(_Payload):
    """A case opened after its step was planned now carries it."""

    step_id: UUID
    case_id: UUID


CONTRACTS = [
    REGISTRY.add(EventContract("PlanDrawnUp", SERVICE, PlanDrawnUp,
                               summary="A plan for one beneficiary across items")),
    REGISTRY.add(EventContract("PlanStepAdded", SERVICE, PlanStepAdded,
                               summary="A dated step of a plan")),
    REGISTRY.add(EventContract("PlanCaseLinked", SERVICE, PlanCaseLinked,
                               summary="A case now carries a plan's step")),
]
