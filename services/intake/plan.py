"""The Plan aggregate, no I/O here: one beneficiary's cases across service items, as dated,
ordered steps (the seed's cancer case: suspend his flexible-employment contributions, draw his
last month of unemployment benefit with its medical cover, his family applies for the resident
medical subsidy from the second month).

Each step names its item, the day or month it takes effect, the step it waits for and, once
it is open, the case that carries it. Follow-up reminds ahead of each step's date; the plan
shows on every case it links and on the counter page as the resident's timeline."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid5

from eventsourcing.domain import event

from shared.contracts.vocabulary import StepTiming
from shared.kernel.errors import InvalidCommand, RuleViolated
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.meta import Meta

PLAN_NAMESPACE = UUID("3b9e6c1a-5d2f-4e8a-9c07-1f4b2a6d8e35")


CaseRef = tuple[UUID, str, UUID | None, str]
"""A case as a plan sees it: its id, center, beneficiary and service item."""


def plan_id_for(center_id: str, idempotency_key: str) -> UUID:
    """Drawing up a plan twice with one Idempotency-Key draws it up once."""
    return uuid5(PLAN_NAMESPACE, f"{center_id}\x1f{idempotency_key}")


def step_id_for(plan_id: UUID, seq: int) -> UUID:
    """A step's id: its plan and its place (a retried step finds itself)."""
    return uuid5(PLAN_NAMESPACE, f"{plan_id}:step:{seq}")


def effective_day(on: date, timing: str) -> date:
    """The day a step takes effect: a month step on its month's first day."""
    return on.replace(day=1) if timing == StepTiming.MONTH else on


class Plan(RemembersCommands):
    """A plan for one beneficiary at one center."""

    where = "on this plan"

    @event("PlanDrawnUp")
    def __init__(self, id: UUID, plan_id: UUID, center_id: str, counter_id: str,
                 resident_id: UUID, title: str, meta: Meta) -> None:
        self.center_id = center_id
        self.counter_id = counter_id
        self.resident_id = resident_id
        self.steps: dict[UUID, dict[str, object]] = {}
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "PlanDrawnUp", created=True)

    # -- rules ------------------------------------------------------------------------------

    def check_case(self, case_center: str, beneficiary: UUID | None) -> None:
        """A case carries a step only when it is this center's and for this beneficiary."""
        if case_center != self.center_id:
            raise RuleViolated("the case is another center's", rule="plan_center")
        if beneficiary != self.resident_id:
            raise RuleViolated("the case is for another beneficiary than the plan's",
                               rule="plan_beneficiary")

    @staticmethod
    def check_item(step_item: str, case_item: str) -> None:
        if step_item != case_item:
            raise RuleViolated("the case is about another item than the step",
                               rule="plan_item", step_item=step_item, case_item=case_item)

    def check_linked_once(self, case_id: UUID) -> None:
        if any(s["case_id"] == case_id for s in self.steps.values()):
            raise RuleViolated("the case carries a step of this plan already",
                               rule="plan_case_linked", case_id=str(case_id))

    # -- steps ------------------------------------------------------------------------------

    def add_step(self, service_item: str, effective_on: date, timing: str,
                 depends_on: UUID | None, case: CaseRef | None, what: str,
                 meta: Meta, judged_at: datetime | None = None) -> UUID:
        """Add the next step; ``case``: the case carrying it, when it is open already.
        ``judged_at``: the moment follow-up takes the step as added when ``occurred_at`` lies
        more than the grace back (``Moments.judged_at``); None when it stands."""
        seq = len(self.steps) + 1
        step_id = step_id_for(self.id, seq)
        on = effective_day(effective_on, timing)
        if depends_on is not None:
            before = self.steps.get(depends_on)
            if before is None:
                raise InvalidCommand("depends_on names no step of this plan",
                                     field="depends_on")
            if on < before["effective_on"]:  # type: ignore[operator]
                raise InvalidCommand("a step cannot take effect before the step it depends on",
                                     field="effective_on", depends_on_effective=str(
                                         before["effective_on"]))
        case_id = None
        if case is not None:
            case_id, center, beneficiary, item = case
            self.check_case(center, beneficiary)
            self.check_item(service_item, item)
            self.check_linked_once(case_id)
        self._step_added(step_id=step_id, seq=seq, service_item=service_item, effective_on=on,
                         timing=timing, depends_on=depends_on, case_id=case_id,
                         resident_id=self.resident_id, what=what, meta=meta,
                         judged_at=judged_at)
        return step_id

    @event("PlanStepAdded")
    def _step_added(self, step_id: UUID, seq: int, service_item: str, effective_on: date,
                    timing: str, depends_on: UUID | None, case_id: UUID | None,
                    resident_id: UUID, what: str, meta: Meta,
                    judged_at: datetime | None = None) -> None:
        self.steps[step_id] = {"seq": seq, "service_item": service_item,
                               "effective_on": effective_on, "case_id": case_id}
        self._remember(meta, "PlanStepAdded")

    def link_case(self, step_id: UUID, case: CaseRef, meta: Meta) -> None:
        """A case opened after its step was planned now carries it (same item, center and
        beneficiary)."""
        step = self.steps.get(step_id)
        if step is None:
            raise InvalidCommand("no such step in this plan", field="step_id")
        if step["case_id"] is not None:
            raise RuleViolated("the step is carried by a case already", rule="step_linked")
        case_id, center, beneficiary, item = case
        self.check_case(center, beneficiary)
        self.check_item(str(step["service_item"]), item)
        self.check_linked_once(case_id)
        self._case_linked(step_id=step_id, case_id=case_id, meta=meta)

    @event("PlanCaseLinked")
    def _case_linked(self, step_id: UUID, case_id: UUID, meta: Meta) -> None:
        self.steps[step_id]["case_id"] = case_id
        self._remember(meta, "PlanCaseLinked")
