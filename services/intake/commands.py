"""What a counter app can ask of intake: one typed command per step of the method."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import Field, model_validator

from shared.contracts.fields import CODE_PATTERN
from shared.contracts.vocabulary import (
    ActionKind,
    Cadence,
    Channel,
    Eligibility,
    Emotion,
    EmployerType,
    GuidanceTopic,
    Outcome,
    ProofSeen,
    ReferralKind,
    Relation,
    StepTiming,
    Urgency,
)
from shared.kernel.typed import Command, Typed

#: One need, worry or document of a list: stripped like every text, and then not empty (a
#: blank line was kept as "", printed as an empty bullet on the one-time notice) nor a page.
Item = Annotated[str, Field(min_length=1, max_length=500)]


class OpenCase(Command):
    center_id: str = Field(pattern=CODE_PATTERN, examples=["SH-PD-HUAMU"])
    counter_id: str = Field(pattern=CODE_PATTERN, examples=["window-3"])
    clerk_id: str | None = Field(
        None, pattern=CODE_PATTERN, examples=["clerk-017"], description=(
        "The clerk who serves; default (and for a clerk's token, only) the token's subject. "
        "A supervisor may record an opening on a clerk's behalf."))
    channel: Channel = Channel.COUNTER
    service_item: str = Field(pattern=CODE_PATTERN, examples=["SA-HARDSHIP-SUBSIDY"])
    resident_id: UUID | None = Field(None, description=(
        "Opaque id from the resident vault: registered at this center, or looked up here by "
        "the full ID number moments ago (a presence grant). The case's beneficiary."))
    applicant_id: UUID | None = Field(None, description=(
        "Acting for someone (代办): the resident who applies for the beneficiary "
        "(``resident_id``), with the same standing at the vault. Default: the beneficiary."))
    relation: Relation = Field(Relation.SELF, description=(
        "What the applicant is to the beneficiary (the applicant is the beneficiary's ...)."))
    proof_seen: ProofSeen = Field(ProofSeen.NONE, description=(
        "The document the clerk saw that lets the applicant act for the beneficiary; "
        "required unless the relation is self. Kept in the vault, never on the bus."))

    @model_validator(mode="after")
    def _acting_for(self) -> OpenCase:
        if self.relation is Relation.SELF:
            if self.applicant_id is not None and self.applicant_id != self.resident_id:
                raise ValueError("relation 'self': the applicant is the beneficiary "
                                 "(applicant_id is resident_id, or left out)")
            if self.proof_seen is not ProofSeen.NONE:
                raise ValueError("relation 'self' needs no proof_seen")
            return self
        if self.resident_id is None or self.applicant_id is None:
            raise ValueError(f"relation {self.relation.value!r}: both the beneficiary "
                             "(resident_id) and the applicant (applicant_id) are named")
        if self.applicant_id == self.resident_id:
            raise ValueError("an applicant acting for someone is another resident than the "
                             "beneficiary")
        if self.proof_seen is ProofSeen.NONE:
            raise ValueError("acting for someone needs the proof the clerk saw (proof_seen)")
        return self


class HearRequest(Command):
    words: str = Field(min_length=1, max_length=4000,
                       description="The request in the resident's own words.")


class RestateRequest(Command):
    restatement: str = Field(min_length=1, max_length=4000)
    confirmed: bool = Field(description="True when the resident confirmed the restatement.")
    correction: str | None = Field(None, max_length=4000,
                                   description="The resident's correction when not confirmed.")


class NoteConcerns(Command):
    needs: list[Item] = Field(default_factory=list, max_length=50)
    worries: list[Item] = Field(default_factory=list, max_length=50)
    emotion: Emotion
    urgency: Urgency = Urgency.NORMAL


class GiveGuidance(Command):
    service_item: str | None = Field(None, pattern=CODE_PATTERN,
                                     description="Catalogue code; default the case's own item.")
    policy_basis: str = Field(min_length=1, max_length=2000)
    eligibility: Eligibility
    promised: str = Field("", max_length=2000)
    promised_on: date | None = Field(None, description=(
        "The day promised to the resident: the case's due date when it is the earliest "
        "(beside the item's usual working days and a noted deadline)."))
    missing_documents: list[Item] = Field(default_factory=list, max_length=50, description=(
        "The documents the resident still has to bring (printed on the one-time notice)."))
    plain_words: str = Field("", max_length=2000, description=(
        "The policy explained in the resident's own language, beside the formal citation; "
        "the counter page prefills it from the catalogue item's plain-language summary."))


class TakeAction(Command):
    kind: ActionKind
    description: str = Field(min_length=1, max_length=2000)
    referred_to: str | None = Field(None, max_length=200, description=(
        "referred: the unit's name (a window, a street office, the social insurance bureau, "
        "an employer)."))
    owner_clerk: str | None = Field(None, pattern=CODE_PATTERN, description=(
        "escalated: the colleague who is to help (帮办); default the supervisor team."))
    unit_kind: ReferralKind | None = Field(None, description="referred: what the unit is.")
    unit_contact: str | None = Field(None, max_length=200, description=(
        "referred: the unit's contact (a desk, a hotline), never the resident's."))
    within_working_days: int | None = Field(None, ge=1, le=60, description=(
        "escalated: help within; referred: reply within (working days); default the "
        "service's setting."))


class HandOverCase(Command):
    """转办: hand the case to another clerk or team; the first clerk stays accountable."""

    to_clerk: str | None = Field(None, pattern=CODE_PATTERN)
    to_team: str | None = Field(None, pattern=CODE_PATTERN)
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one(self) -> HandOverCase:
        if (self.to_clerk is None) == (self.to_team is None):
            raise ValueError("give exactly one of to_clerk and to_team")
        return self


class NoteDeadline(Command):
    due_on: date
    description: str = Field(min_length=1, max_length=1000)


class MoveDueDate(Command):
    due_on: date = Field(description="The new due date (earlier or later).")
    note: str = Field(min_length=1, max_length=1000,
                      description="Why it moves (kept on the case's timeline, scrubbed).")


class DeclareObligation(Command):
    description: str = Field(min_length=1, max_length=1000)
    cadence: Cadence = Cadence.MONTHLY
    next_due_on: date = Field(description=(
        "A day the periods fall on (moved by whole cadence months): the next due day, or a "
        "day already past where they began. Periods already missed when declared are not "
        "watched, unless tracked_from says from when."))
    tracked_from: date | None = Field(None, description=(
        "Watch periods missed since this day too: the resident says an earlier period did "
        "not come and wants it followed up. With a next_due_on still to come, the periods "
        "before it since this day (the counter page's way). Default: from the declaration."))


class ResolveCase(Command):
    outcome: Outcome
    explanation: str = Field("", max_length=4000)
    emotion_defused: bool | None = Field(None, description=(
        "Whether the resident left calmer than they came; default: from emotion_on_leaving "
        "(no emotion that needs defusing, and no worse than on arrival)."))
    emotion_on_leaving: Emotion | None = Field(None, description=(
        "The emotion the resident left with (one of these or emotion_defused is needed)."))


class ReopenCase(Command):
    reason: str = Field(min_length=1, max_length=2000)


class RecordVisit(Command):
    """A resident sat down at the window: one trip (一人次)."""

    center_id: str = Field(pattern=CODE_PATTERN, examples=["SH-PD-HUAMU"])
    counter_id: str = Field(pattern=CODE_PATTERN, examples=["window-3"])
    channel: Channel = Channel.COUNTER
    case_id: UUID | None = Field(None, description=(
        "The case this trip is for, when the resident came back about one (a return trip)."))
    ticket: str | None = Field(None, pattern=CODE_PATTERN, examples=["A017"],
                               description="The queue ticket's number.")
    wait_minutes: int | None = Field(None, ge=0, le=1440,
                                     description="Minutes waited before being called.")


class TakeHint(Command):
    """The resident takes up a suggested item (usually a case is opened for it)."""

    case_id: UUID | None = Field(None, description="The case opened for the item, if any.")


class DismissHint(Command):
    """The resident does not want, or is not entitled to, a suggested item."""

class HoldGuidanceSession(Command):
    """Employment aid: a guidance session (职业指导) with the case's beneficiary."""

    held_on: date
    topic: GuidanceTopic = GuidanceTopic.CAREER_GUIDANCE
    counter_id: str | None = Field(None, pattern=CODE_PATTERN, description=(
        "The studio or counter that held it; default the case's counter."))
    note: str | None = Field(None, max_length=1000)


class RecordPlacement(Command):
    """Employment aid: the beneficiary is in work (the employer's kind, never its name)."""

    employed_on: date
    employer_type: EmployerType
    counter_id: str | None = Field(None, pattern=CODE_PATTERN, description=(
        "The studio or counter credited; default the case's counter."))


class PlanStep(Typed):
    """One step of a plan as the clerk writes it down."""


    service_item: str = Field(pattern=CODE_PATTERN,
                              examples=["SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"])
    effective_on: date = Field(description="The day it takes effect (a month step: any day "
                                           "of the month; its first day stands for it).")
    timing: StepTiming = StepTiming.DAY
    depends_on: int | None = Field(None, ge=1, description=(
        "The place (1 first) of the step that must come first."))
    case_id: UUID | None = Field(None, description="The case that carries it, once open.")
    what: str = Field(min_length=1, max_length=1000,
                      description="What happens at this step, in plain words.")


class DrawUpPlan(Command):
    """A plan for one beneficiary, with its steps in order."""

    center_id: str = Field(pattern=CODE_PATTERN)
    counter_id: str = Field(pattern=CODE_PATTERN)
    resident_id: UUID = Field(description="The beneficiary: registered here or present.")
    title: str = Field(min_length=1, max_length=500)
    steps: list[PlanStep] = Field(min_length=1, max_length=30)


class AddPlanStep(Command, PlanStep):
    """One more step at the end of a plan."""


class LinkCase(Command):
    """A case opened after its step was planned now carries it."""

    step: int = Field(ge=1, description="The step's place in the plan (1 first).")
    case_id: UUID
