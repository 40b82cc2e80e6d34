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
    Moment,
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
    EmployerType,
    GuidanceTopic,
    Outcome,
    ReferralKind,
    Urgency,
)

SERVICE = "intake"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseOpened(_Payload):
    """A resident came to a window (or called, or was visited) about one service item.

    v3 (current) records who came apart from whom the case is for (代办): ``resident_id`` is
    the beneficiary, ``applicant_id`` the resident who applied for them (the same id when they
    came for themselves). How the two are related, and the proof the clerk saw, stay in the
    vault (``case_relations``). v2 events are read through :func:`case_opened_v2_to_v3`.

    v2 says on which standing the case names its resident (``resident_basis``):
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


    applicant_id: UUID | None = Field(
        None, description="Opaque id of the resident who applied: the beneficiary "
                          "(``resident_id``) when they came for themselves, another resident "
                          "acting for them (代办), None without a resident.")
    applicant_basis: Annotated[Literal["registration", "presence_grant"] | None, CODE] = Field(
        None, description="Why this center may name the applicant (as ``resident_basis``).")


class CaseOpenedV2(_Payload):
    """CaseOpened as recorded before v3: one resident, both applicant and beneficiary."""

    center_id: Code
    counter_id: Code
    clerk_id: Code
    channel: Channel
    service_item: Code
    resident_id: UUID | None = None
    resident_basis: Annotated[Literal["registration", "presence_grant"] | None, CODE] = None


def case_opened_v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3: the resident came for themselves (applicant and beneficiary are one)."""
    v2 = CaseOpenedV2.model_validate(payload)
    return {**v2.model_dump(mode="json"), "applicant_id": v2.model_dump(mode="json")["resident_id"],
            "applicant_basis": v2.resident_basis}


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
    lowered_from: Urgency | None = Field(
        None, description="Noted again with a lower urgency than the last (by a supervisor "
                          "only, the envelope's actor): the urgency it was lowered from. "
                          "None: the first, the same or a higher urgency, and every event "
                          "before it existed (December 2026).")

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
    """Step 3: the policy explained, eligibility, and what was promised.

    v2 (current) also holds, beside the formal citation (``policy_basis``), the explanation
    given in the resident's own language (``plain_words``, prefilled at the counter from the
    catalogue's plain-language summary): the one-time notice (一次性告知) prints it with the
    documents still needed (``missing_documents``). v1 events are read through
    :func:`guidance_given_v1_to_v2`.
    """

    service_item: Code
    policy_basis: FreeText
    eligibility: Eligibility
    promised: FreeText = ""
    missing_documents: FreeTextList = []
    plain_words: FreeText = Field("", description=(
        "The policy as explained to the resident, in their language."))


class GuidanceGivenV1(_Payload):
    """GuidanceGiven as recorded before v2: the same, without ``plain_words``."""

    service_item: Code
    policy_basis: FreeText
    eligibility: Eligibility
    promised: FreeText = ""
    missing_documents: FreeTextList = []


def guidance_given_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: no plain words were recorded; the formal citation was all there was."""
    v1 = GuidanceGivenV1.model_validate(payload)
    return {**v1.model_dump(mode="json"), "plain_words": ""}


class ActionTaken(_Payload):
    """Step 4: something done for the resident, an escalation, or a referral.

    v2 (current) says what follow-up needs to track an escalation (帮办: a help task owned by
    ``owner_clerk``, a named colleague, or the supervisor team when None) and a referral
    (派单: ``referred_to`` is the unit's name, ``unit_kind`` what it is, ``unit_contact`` the
    unit's contact, never the resident's); ``within_working_days`` is the help task's deadline
    or the referral's reply deadline, counted on the center's working-day calendar (None:
    the service's default). v1 events are read through :func:`action_taken_v1_to_v2`.
    """

    kind: ActionKind
    description: FreeText
    referred_to: OptionalFreeText = None
    owner_clerk: OptionalCode = Field(None, description=(
        "escalated: the colleague who is to help (None: the supervisor team)."))
    unit_kind: ReferralKind | None = Field(None, description="referred: what the unit is.")
    unit_contact: OptionalFreeText = Field(None, description=(
        "referred: the unit's contact (a desk, a hotline), never the resident's."))
    within_working_days: int | None = Field(None, ge=1, le=60, description=(
        "escalated: help within; referred: reply within (working days)."))
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before the "
                          "service's clock (a backdated post): the moment follow-up takes the "
                          "escalation or the referral as made (that clock less the grace), so "
                          "its working days count from the day it was posted, not from a day "
                          "weeks back (overdue on arrival). None: occurred_at stands.")


class ActionTakenV1(_Payload):
    """ActionTaken as recorded before v2: kind, description, where it was referred to."""

    kind: ActionKind
    description: FreeText
    referred_to: OptionalFreeText = None


def action_taken_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: no owner, unit kind, contact or deadline was said; an old referral is of an
    unknown kind (``other``) and both take the service's default deadline."""
    v1 = ActionTakenV1.model_validate(payload)
    kind = ReferralKind.OTHER.value if v1.kind == ActionKind.REFERRED else None
    return {**v1.model_dump(mode="json"), "owner_clerk": None, "unit_kind": kind,
            "unit_contact": None, "within_working_days": None}


class DeadlineNoted(_Payload):
    """Step 4: a date that must not be missed (e.g. an application window closing)."""

    deadline_id: UUID
    due_on: Day
    description: FreeText
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before the "
                          "service's clock (a backdated post: last month's paper slip typed "
                          "in today): the moment follow-up takes the deadline as noted (that "
                          "clock less the grace), so its reminder is planned from then, not "
                          "lapsed as old work. None: occurred_at stands (and on every deadline "
                          "recorded before it existed).")


class ObligationDeclared(_Payload):
    """Step 4: a recurring obligation (e.g. monthly reimbursement) the center will watch.

    v2 says ``tracked_from``: periods missed since that day are watched too (by default,
    periods already missed when declared are not)."""

    obligation_id: UUID
    description: FreeText
    cadence: Cadence
    next_due_on: Day
    tracked_from: Day | None = None
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before the "
                          "service's clock (a backdated post): the moment follow-up takes the "
                          "declaration as made (that clock less the grace), so the periods "
                          "missed before it are not watched. None: occurred_at stands (and on "
                          "every declaration recorded before it existed).")


def obligation_declared_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """A v1 declaration said nothing of earlier periods."""
    return {**payload, "tracked_from": None}


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
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before the "
                          "service's clock (a backdated post): the moment the due date judges "
                          "the resolution by (that clock less the grace), so 按时办结率 counts "
                          "it on its day. None: judged on occurred_at (and on every resolution "
                          "recorded before it existed).")


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
    judged_at: Moment | None = Field(
        None, description="Set when the reopening lies more than OCCURRED_AT_GRACE_S before "
                          "intake's clock (a resident's \"not solved\" recorded late, a staff "
                          "reopening typed in from last month's slip): the moment follow-up "
                          "plans from (that clock less the grace): the clerk's \"not solved\" "
                          "follow-up, not lapsed as old work, and the working days of the "
                          "referrals chased again. None: occurred_at stands.")


class CaseDueDateSet(_Payload):
    """The day the case must be finished by (办结时限), on the center's working-day calendar.

    Set automatically to the earliest of: the service item's usual working days
    (``typical_days``) counted from the day of guidance (``source: item_days``, with
    ``counted_from`` and ``working_days``), the date promised to the resident at guidance
    (``promised``), a deadline noted on the case (``deadline``); an automatic source only ever
    sets it or brings it forward. Otherwise it moves only by hand (``source`` and ``cause``
    ``moved``): a supervisor or the case's clerk, with the reason in ``note``; or when the
    case is reopened (``cause`` ``reopened``: the item's days counted again from the
    reopening day, when the due date was earlier). The figures' on-time completion rate
    (按时办结率) is measured against the latest one recorded (a resolved case's due date
    cannot move: reopen it first)."""

    due_on: Day
    source: DueSource
    cause: DueCause
    basis: Basis = Field(Basis.OFFICIAL, description=(
        "provisional: on a year whose official schedule is not published yet"))
    previous_due_on: Day | None = None
    counted_from: Day | None = Field(None, description=(
        "source item_days: the day of guidance the working days are counted from"))
    working_days: int | None = Field(None, ge=0, description=(
        "source item_days: the item's usual working days (0: on the spot)"))
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


class CaseHandedOver(_Payload):
    """The case was handed to another clerk or team (转办, 首问负责制): the first clerk
    (``first_clerk``, who opened it) stays accountable and keeps seeing it until it is
    resolved; the new owner does the work and gets its follow-ups. Exactly one of
    ``to_clerk`` and ``to_team``; ``from_clerk`` / ``from_team`` is the owner before."""

    to_clerk: OptionalCode = None
    to_team: OptionalCode = None
    from_clerk: OptionalCode = None
    from_team: OptionalCode = None
    first_clerk: Code
    reason: FreeText


class GuidanceSessionHeld(_Payload):
    """Employment aid: one guidance session (职业指导) with the case's beneficiary; each counts
    as one guidance visit (人次) for the studio or counter that held it."""

    session_id: UUID
    held_on: Day
    counter_id: Code = Field(description="The studio or counter that held the session.")
    topic: GuidanceTopic
    note: OptionalFreeText = None


class PlacementRecorded(_Payload):
    """Employment aid: the beneficiary is in work. The employer's kind only, never its name;
    the studio or counter credited with the placement."""

    employed_on: Day
    employer_type: EmployerType
    counter_id: Code = Field(description="The studio or counter credited with the placement.")


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


class CareNeedChanged(_Payload):
    """Whether the resident needs more care, as the vault now works it out: they live alone,
    are 80 or over, have a disability or a chronic illness (declared with their consent).
    One bit, never which: follow-up plans a home visit sooner for such a resident when an
    obligation is missed. No personal data."""

    resident_id: UUID
    more_care: bool


class HintShown(_Payload):
    """An eligibility rule suggested an item for the resident and the counter showed it.
    Opaque ids only: never the age or the facts that made the rule fire. A policy change on
    the item reaches the residents it was shown to (follow-up's fan-out)."""

    resident_id: UUID
    rule_id: Code = Field(description="The eligibility rule's id (the rules file).")
    rule_version: int = Field(ge=1)
    service_item: Code = Field(description="Catalogue code suggested.")


class HintTaken(HintShown):
    """The resident took up a suggested item (``case_id``: the case opened for it, if any)."""

    case_id: UUID | None = None


class HintDismissed(HintShown):
    """The resident or clerk dismissed a suggested item."""


CONTRACTS = [
    REGISTRY.add(EventContract("CaseOpened", SERVICE, CaseOpened, version=3,
                               upcasters={1: case_opened_v1_to_v2, 2: case_opened_v2_to_v3},
                               summary="A resident came about one service item")),
    REGISTRY.add(EventContract("RequestHeard", SERVICE, RequestHeard, summary="Step 1: own words")),
    REGISTRY.add(EventContract("RequestRestated", SERVICE, RequestRestated,
                               summary="Step 1: restated, confirmed or corrected")),
    REGISTRY.add(EventContract("ConcernsNoted", SERVICE, ConcernsNoted, version=2,
                               upcasters={1: concerns_noted_v1_to_v2}, summary="Step 2")),
    REGISTRY.add(EventContract("GuidanceGiven", SERVICE, GuidanceGiven, version=2,
                               upcasters={1: guidance_given_v1_to_v2}, summary="Step 3")),
    REGISTRY.add(EventContract("ActionTaken", SERVICE, ActionTaken, version=2,
                               upcasters={1: action_taken_v1_to_v2},
                               summary="Step 4: action, escalation or referral")),
    REGISTRY.add(EventContract("DeadlineNoted", SERVICE, DeadlineNoted,
                               summary="Step 4: deadline")),
    REGISTRY.add(EventContract("ObligationDeclared", SERVICE, ObligationDeclared,
                               summary="Step 4: recurring obligation", version=2,
                               upcasters={1: obligation_declared_v1_to_v2})),
    REGISTRY.add(EventContract("CaseResolved", SERVICE, CaseResolved, version=2,
                               upcasters={1: case_resolved_v1_to_v2},
                               summary="Step 4: resolved")),
    REGISTRY.add(EventContract("CaseReopened", SERVICE, CaseReopened, summary="Case reopened")),
    REGISTRY.add(EventContract("CaseDueDateSet", SERVICE, CaseDueDateSet,
                               summary="Step 4: the day the case must be finished by")),
    REGISTRY.add(EventContract("VisitRecorded", SERVICE, VisitRecorded,
                               summary="A resident sat down: one trip (人次)")),
    REGISTRY.add(EventContract("CaseHandedOver", SERVICE, CaseHandedOver,
                               summary="Handed to another clerk or team; the first stays "
                                       "accountable")),
    REGISTRY.add(EventContract("GuidanceSessionHeld", SERVICE, GuidanceSessionHeld,
                               summary="Employment aid: one guidance visit")),
    REGISTRY.add(EventContract("PlacementRecorded", SERVICE, PlacementRecorded,
                               summary="Employment aid: the beneficiary is in work")),
    REGISTRY.add(EventContract("ConsentChanged", SERVICE, ConsentChanged,
                               summary=ConsentChanged.__doc__ or "")),
    REGISTRY.add(EventContract("ResidentErased", SERVICE, ResidentErased,
                               summary=ResidentErased.__doc__ or "")),
    REGISTRY.add(EventContract("CareNeedChanged", SERVICE, CareNeedChanged,
                               summary="Whether a resident needs more care (one bit)")),
    REGISTRY.add(EventContract("HintShown", SERVICE, HintShown,
                               summary="An eligibility hint shown at the counter")),
    REGISTRY.add(EventContract("HintTaken", SERVICE, HintTaken,
                               summary="An eligibility hint taken up")),
    REGISTRY.add(EventContract("HintDismissed", SERVICE, HintDismissed,
                               summary="An eligibility hint dismissed")),
]
