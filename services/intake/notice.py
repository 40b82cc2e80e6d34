"""The one-time notice (一次性告知) the resident takes home from the counter.

Everything the resident needs so as not to come back twice for something the clerk could have
said: what was agreed (the item, the eligibility, the explanation in plain words, what was
promised), the documents still to bring, the case's due date and the deadlines noted, the
obligations the center will watch, who served them (the clerk's name from the staff directory,
``STAFF_NAMES``) and how to reach the center (``CENTER_NAMES``, ``CENTER_PHONES``).

It holds no personal data of the resident: the case names them only by an opaque id, which is
not printed either. The counter page adds the surname it already shows (from the masked name)
when it prints, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.intake.queries import CasePublic
from shared.catalogue import Catalogue
from shared.kernel.periods import next_period_on_or_after
from shared.settings import Settings


def for_center(values: Mapping[str, str], center_id: str) -> str | None:
    """A per-center setting's value: the center's own, else ``*``'s, else None."""
    return values.get(center_id) or values.get("*")


class NoticeDeadline(BaseModel):
    due_on: date
    description: str


class NoticeObligation(BaseModel):
    description: str
    cadence: str
    next_due_on: date = Field(description=(
        "The next period due on or after the notice's day (the center's): declared in "
        "December for a reimbursement due on the 1st since September, January's."))
    tracked_from: date | None = Field(None, description=(
        "The periods missed since this day are followed up too (the resident said an "
        "earlier one did not come)."))


class NoticePlanStep(BaseModel):
    seq: int
    item_name_zh: str
    effective_on: date
    timing: str = Field(description="day, or month: the step takes effect in that month")
    what: str
    this_case: bool = Field(description="The step this case carries.")


class NoticePlan(BaseModel):
    """A linked plan the case carries a step of: the resident's timeline, in order."""

    title: str
    steps: list[NoticePlanStep]


class NoticePublic(BaseModel):
    """The one-time notice of a case, as the counter page prints it."""

    case_id: UUID
    center_id: str
    center_name: str
    center_phone: str | None
    clerk_id: str
    clerk_name: str | None
    service_item: str
    item_name_zh: str
    item_name_en: str
    eligibility: str | None
    plain_words: str
    policy_basis: str
    promised: str
    missing_documents: list[str]
    typical_days: int | None
    due_on: date | None
    due_basis: str | None = Field(None, description=(
        "official, or provisional: the due date was counted on a year whose holiday schedule "
        "is not published yet (weekends and statutory holidays only) and may move when it "
        "is (docs/calendar.md)"))
    due_may_move: bool = Field(False, description=(
        "The due date is provisional and a published schedule would count it again: counted "
        "from the item's working days (a day typed, promised or a deadline, is never counted "
        "again), on an open case, not yet past (overdue, it keeps its day); the notice says "
        "so beside the date (docs/calendar.md, \"What keeps its day\")"))
    deadlines: list[NoticeDeadline]
    obligations: list[NoticeObligation]
    plans: list[NoticePlan] = Field(default_factory=list)
    status: str
    outcome: str | None
    issued_at: datetime


def _name(catalogue: Catalogue, code: str) -> str:
    item = catalogue.get(code)
    return item.name_zh if item else code


def _last(timeline: list[Any], event_type: str) -> dict[str, Any] | None:
    found = [e.payload for e in timeline if e.type == event_type]
    return found[-1] if found else None


def may_move(case: CasePublic, today: date) -> bool:
    """Whether the case's due date may still move when its year's schedule is published: a
    provisional day counted from the item's days (intake re-plans only those), on an open case,
    not past (a day past did its work and keeps it: docs/calendar.md, "What keeps its day")."""
    return (case.due_on is not None and case.due_basis == "provisional"
            and case.due_source == "item_days" and case.status != "resolved"
            and case.due_on >= today)


def notice_of(case: CasePublic, catalogue: Catalogue, settings: Settings, clerk_id: str,
              now: datetime) -> NoticePublic:
    """The notice of ``case`` handed over by ``clerk_id`` (the caller: who is at the window)."""
    guidance = _last(case.timeline, "GuidanceGiven") or {}
    code = guidance.get("service_item") or case.service_item
    item = catalogue.get(code)
    deadlines = [NoticeDeadline(due_on=e.payload["due_on"], description=e.payload["description"])
                 for e in case.timeline if e.type == "DeadlineNoted"]
    today = now.astimezone(settings.tz).date()
    obligations = [NoticeObligation(
        description=e.payload["description"], cadence=e.payload["cadence"],
        next_due_on=next_period_on_or_after(date.fromisoformat(str(e.payload["next_due_on"])),
                                            e.payload["cadence"], today),
        tracked_from=e.payload.get("tracked_from"))
        for e in case.timeline if e.type == "ObligationDeclared"]
    return NoticePublic(
        case_id=case.case_id, center_id=case.center_id,
        center_name=for_center(settings.center_names, case.center_id) or case.center_id,
        center_phone=for_center(settings.center_phones, case.center_id),
        clerk_id=clerk_id, clerk_name=settings.staff_names.get(clerk_id),
        service_item=code, item_name_zh=item.name_zh if item else code,
        item_name_en=item.name_en if item else code,
        eligibility=guidance.get("eligibility"),
        plain_words=guidance.get("plain_words") or "",
        policy_basis=guidance.get("policy_basis") or "",
        promised=guidance.get("promised") or "",
        # A blank item was refused from 645b57e on; one stored before is not printed.
        missing_documents=[d for d in guidance.get("missing_documents") or [] if d.strip()],
        typical_days=item.typical_days if item else None,
        due_on=case.due_on, due_basis=case.due_basis if case.due_on else None,
        due_may_move=may_move(case, today),
        deadlines=sorted(deadlines, key=lambda d: d.due_on),
        obligations=obligations, plans=[NoticePlan(title=plan.title, steps=[NoticePlanStep(
            seq=step.seq, item_name_zh=step.name_zh or _name(catalogue, step.service_item),
            effective_on=step.effective_on, timing=step.timing, what=step.what,
            this_case=step.case_id == case.case_id) for step in plan.steps])
            for plan in case.plans],
        status=case.status, outcome=case.outcome,
        issued_at=now.astimezone(settings.tz))
