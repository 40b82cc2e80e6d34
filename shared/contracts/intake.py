"""Contracts of the intake service's events: steps 1-4 of the method at the counter."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.fields import (
    CODE,
    Code,
    Day,
    FreeText,
    FreeTextList,
    OptionalCode,
    OptionalFreeText,
)
from shared.contracts.registry import REGISTRY, EventContract
from shared.contracts.vocabulary import (
    ActionKind,
    Basis,
    Cadence,
    Channel,
    DueCause,
    DueSource,
    Eligibility,
    Emotion,
    Outcome,
    Urgency,
)

SERVICE = "intake"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseOpened(_Payload):
    """A resident came to a window (or called, or was visited) about one service item.

    v2 (current) says on which standing the case names its resident (``resident_basis``):
    the resident was registered at the case's center, or the clerk held a presence grant
    (the full ID number typed at a lookup). ``clerk_id`` is the clerk who served: the
    envelope's ``actor`` unless a supervisor recorded the opening on the clerk's behalf (then
    the actor is the supervisor). v1 events are read through :func:`case_opened_v1_to_v2`.
    """

    center_id: Code
    counter_id: Code = Field(description="The window, phone line or visiting team.")
    clerk_id: Code = Field(description="The clerk who served; the actor, or whom a "
                                       "supervisor recorded the opening for.")
    channel: Channel
    service_item: Code = Field(description="Catalogue code.")
    resident_id: UUID | None = Field(
        None, description="Opaque id; personal data stays in the vault.")
    resident_basis: Annotated[Literal["registration", "presence_grant"] | None, CODE] = Field(
        None, description="Why this center may name the resident: registered here, or "
                          "present at the window (a presence grant). None without a "
                          "resident, and for cases opened before the vault checked it.")


class CaseOpenedV1(_Payload):
    """CaseOpened as recorded before v2: the same, without ``resident_basis``."""

    center_id: Code
    counter_id: Code
    clerk_id: Code
    channel: Channel
    service_item: Code
    resident_id: UUID | None = None


def case_opened_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: the resident was never checked, so the case has no basis for naming them."""
    v1 = CaseOpenedV1.model_validate(payload)
    return {**v1.model_dump(mode="json"), "resident_basis": None}


class RequestHeard(_Payload):
    """Step 1: the request in the resident's own words."""

    words: FreeText


class RequestRestated(_Payload):
    """Step 1: the clerk's restatement, confirmed by the resident or corrected."""

    restatement: FreeText
    confirmed: bool
    correction: OptionalFreeText = None


class ConcernsNoted(_Payload):
    """Step 2: needs, worries, the emotion the resident arrived with, and how urgent it is.

    v2 (current) also says whether that emotion is one the center must defuse (upset, angry,
    distressed), so every reader counts the emotion-defused rate on the same arrivals; the
    relay fills it in from ``emotion``. v1 events are read through
    :func:`concerns_noted_v1_to_v2`.
    """

    needs: FreeTextList = []
    worries: FreeTextList = []
    emotion: Emotion
    urgency: Urgency
    needs_defusing: bool = Field(description="The emotion on arrival must be defused.")

    @model_validator(mode="before")
    @classmethod
    def _derive_needs_defusing(cls, data: Any) -> Any:
        if isinstance(data, dict) and "needs_defusing" not in data and "emotion" in data:
            data = {**data, "needs_defusing": Emotion(data["emotion"]).needs_defusing}
        return data


class ConcernsNotedV1(_Payload):
    """ConcernsNoted as recorded before v2: the same, without ``needs_defusing``."""

    needs: FreeTextList = []
    worries: FreeTextList = []
    emotion: Emotion
    urgency: Urgency


def concerns_noted_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: ``needs_defusing`` from the emotion on arrival (upset, angry, distressed)."""
    v1 = ConcernsNotedV1.model_validate(payload)
    return {**v1.model_dump(mode="json"), "needs_defusing": v1.emotion.needs_defusing}


class GuidanceGiven(_Payload):
    """Step 3: the policy explained, eligibility, and what was promised."""

    service_item: Code
    policy_basis: FreeText
    eligibility: Eligibility
    promised: FreeText = ""
    missing_documents: FreeTextList = []


class ActionTaken(_Payload):
    """Step 4: something done for the resident, or a referral."""

    kind: ActionKind
    description: FreeText
    referred_to: OptionalFreeText = None


class DeadlineNoted(_Payload):
    """Step 4: a date that must not be missed (e.g. an application window closing)."""

    deadline_id: UUID
    due_on: Day
    description: FreeText


class ObligationDeclared(_Payload):
    """Step 4: a recurring obligation (e.g. monthly reimbursement) the center will watch."""

    obligation_id: UUID
    description: FreeText
    cadence: Cadence
    next_due_on: Day


class CaseResolved(_Payload):
    """Step 4: the outcome, the explanation given, the emotion the resident left with, and
    whether it was defused.

    v2 (current) keeps the emotion on leaving (``emotion_on_leaving``), so the
    emotion-defused rate is counted on what the resident left with, for whichever arrivals a
    center counts (``EMOTION_DEFUSING_ARRIVALS``). v1 events are read through
    :func:`case_resolved_v1_to_v2`: their emotion on leaving is unknown (None) and the
    clerk's ``emotion_defused`` stands for it.
    """

    outcome: Outcome
    explanation: FreeText
    emotion_defused: bool
    emotion_on_leaving: Emotion | None = Field(
        None, description="The emotion the resident left with; None on cases resolved before "
                          "it was recorded.")


class CaseResolvedV1(_Payload):
    """CaseResolved as recorded before v2: the same, without ``emotion_on_leaving``."""

    outcome: Outcome
    explanation: FreeText
    emotion_defused: bool


def case_resolved_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: the emotion on leaving was not recorded; ``emotion_defused`` stands."""
    v1 = CaseResolvedV1.model_validate(payload)
    return {**v1.model_dump(mode="json"), "emotion_on_leaving": None}


class CaseReopened(_Payload):
    reason: FreeText


class CaseDueDateSet(_Payload):
    """The day the case must be finished by (办结时限), on the center's working-day calendar:
    the earliest of the item's usual working days counted from guidance, the date promised to
    the resident, and a deadline noted on the case. A due date moves only by another
    ``CaseDueDateSet`` saying why (``cause``; ``note`` when a person gave a reason). The
    figures' on-time completion rate (按时办结率) is measured against the latest one recorded
    before the resolution."""

    due_on: Day
    source: DueSource
    cause: DueCause
    basis: Basis = Field(Basis.OFFICIAL, description=(
        "provisional: worked out on a year whose official schedule is not published yet"))
    previous_due_on: Day | None = None
    note: OptionalFreeText = None


class VisitRecorded(_Payload):
    """A resident sat down at a window (or was called, or visited): one trip, one visit
    (人次), whatever number of affairs it was about. ``case_id`` names the case the trip was
    for when it was one the resident had opened before (a return trip); a first trip is the
    case's opening. No personal data: the ticket is the queue machine's number."""

    visit_id: UUID
    center_id: Code
    counter_id: Code
    clerk_id: Code = Field(description="The clerk who received the resident: the actor.")
    channel: Channel
    case_id: UUID | None = Field(None, description="The case the trip was for, if known.")
    ticket: OptionalCode = Field(None, description="The queue ticket's number (叫号).")
    wait_minutes: int | None = Field(None, ge=0, le=1440,
                                     description="Minutes waited before being called.")


class ConsentChanged(_Payload):
    """A resident's consent as the center now holds it: recorded at registration and at every
    change. No personal data: the vault keeps who the resident is; this says only what they
    agreed to. Follow-up contacts only residents with ``contact``; feedback asks for a survey
    by SMS or phone only with ``surveys``."""

    resident_id: UUID
    contact: bool = Field(description="Agrees to be contacted for follow-ups.")
    surveys: bool = Field(description="Agrees to be asked for feedback.")
    reason: Code = Field("changed", description="'registration' or 'changed'.")


class ResidentErased(_Payload):
    """A resident's personal data was erased (PIPL art. 47) at the registering center (the
    envelope's ``center_id``). Every service stops contacting the resident; the log stays
    replayable, since events only ever carried the opaque id."""

    resident_id: UUID


CONTRACTS = [
    REGISTRY.add(EventContract("CaseOpened", SERVICE, CaseOpened, version=2,
                               upcasters={1: case_opened_v1_to_v2},
                               summary="A resident came about one service item")),
    REGISTRY.add(EventContract("RequestHeard", SERVICE, RequestHeard, summary="Step 1: own words")),
    REGISTRY.add(EventContract("RequestRestated", SERVICE, RequestRestated,
                               summary="Step 1: restated, confirmed or corrected")),
    REGISTRY.add(EventContract("ConcernsNoted", SERVICE, ConcernsNoted, version=2,
                               upcasters={1: concerns_noted_v1_to_v2}, summary="Step 2")),
    REGISTRY.add(EventContract("GuidanceGiven", SERVICE, GuidanceGiven, summary="Step 3")),
    REGISTRY.add(EventContract("ActionTaken", SERVICE, ActionTaken, summary="Step 4: action")),
    REGISTRY.add(EventContract("DeadlineNoted", SERVICE, DeadlineNoted,
                               summary="Step 4: deadline")),
    REGISTRY.add(EventContract("ObligationDeclared", SERVICE, ObligationDeclared,
                               summary="Step 4: recurring obligation")),
    REGISTRY.add(EventContract("CaseResolved", SERVICE, CaseResolved, version=2,
                               upcasters={1: case_resolved_v1_to_v2},
                               summary="Step 4: resolved")),
    REGISTRY.add(EventContract("CaseReopened", SERVICE, CaseReopened, summary="Case reopened")),
    REGISTRY.add(EventContract("CaseDueDateSet", SERVICE, CaseDueDateSet,
                               summary="Step 4: the day the case must be finished by")),
    REGISTRY.add(EventContract("VisitRecorded", SERVICE, VisitRecorded,
                               summary="A resident sat down: one trip (人次)")),
    REGISTRY.add(EventContract("ConsentChanged", SERVICE, ConsentChanged,
                               summary=ConsentChanged.__doc__ or "")),
    REGISTRY.add(EventContract("ResidentErased", SERVICE, ResidentErased,
                               summary=ResidentErased.__doc__ or "")),
]
