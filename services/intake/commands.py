"""What a counter app can ask of intake: one typed command per step of the method."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.vocabulary import (
    ActionKind,
    Cadence,
    Channel,
    Eligibility,
    Emotion,
    Outcome,
    Urgency,
)

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    occurred_at: datetime | None = Field(
        None, description="When it happened at the counter (ISO 8601 with offset); default now.")
    correlation_id: str | None = Field(None, max_length=128)

    @model_validator(mode="after")
    def _aware(self) -> _Command:
        if self.occurred_at is not None and self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at needs a time zone offset, e.g. 2026-03-02T09:15:00+08:00")
        return self


class OpenCase(_Command):
    center_id: str = Field(pattern=CODE, examples=["SH-PD-HUAMU"])
    counter_id: str = Field(pattern=CODE, examples=["window-3"])
    clerk_id: str | None = Field(None, pattern=CODE, examples=["clerk-017"], description=(
        "The clerk who serves; default (and for a clerk's token, only) the token's subject. "
        "A supervisor may record an opening on a clerk's behalf."))
    channel: Channel = Channel.COUNTER
    service_item: str = Field(pattern=CODE, examples=["SA-HARDSHIP-SUBSIDY"])
    resident_id: UUID | None = Field(None, description=(
        "Opaque id from the resident vault: registered at this center, or looked up here by "
        "the full ID number moments ago (a presence grant)."))


class HearRequest(_Command):
    words: str = Field(min_length=1, max_length=4000,
                       description="The request in the resident's own words.")


class RestateRequest(_Command):
    restatement: str = Field(min_length=1, max_length=4000)
    confirmed: bool = Field(description="True when the resident confirmed the restatement.")
    correction: str | None = Field(None, max_length=4000,
                                   description="The resident's correction when not confirmed.")


class NoteConcerns(_Command):
    needs: list[str] = Field(default_factory=list, max_length=50)
    worries: list[str] = Field(default_factory=list, max_length=50)
    emotion: Emotion
    urgency: Urgency = Urgency.NORMAL


class GiveGuidance(_Command):
    service_item: str | None = Field(None, pattern=CODE,
                                     description="Catalogue code; default the case's own item.")
    policy_basis: str = Field(min_length=1, max_length=2000)
    eligibility: Eligibility
    promised: str = Field("", max_length=2000)
    missing_documents: list[str] = Field(default_factory=list, max_length=50)


class TakeAction(_Command):
    kind: ActionKind
    description: str = Field(min_length=1, max_length=2000)
    referred_to: str | None = Field(None, max_length=200)


class NoteDeadline(_Command):
    due_on: date
    description: str = Field(min_length=1, max_length=1000)


class DeclareObligation(_Command):
    description: str = Field(min_length=1, max_length=1000)
    cadence: Cadence = Cadence.MONTHLY
    next_due_on: date


class ResolveCase(_Command):
    outcome: Outcome
    explanation: str = Field("", max_length=4000)
    emotion_defused: bool | None = Field(None, description=(
        "Whether the resident left calmer than they came; default: from emotion_on_leaving "
        "(no emotion that needs defusing, and no worse than on arrival)."))
    emotion_on_leaving: Emotion | None = Field(None, description=(
        "The emotion the resident left with (one of these or emotion_defused is needed)."))


class ReopenCase(_Command):
    reason: str = Field(min_length=1, max_length=2000)


class RecordVisit(_Command):
    """A resident sat down at the window: one trip (一人次)."""

    center_id: str = Field(pattern=CODE, examples=["SH-PD-HUAMU"])
    counter_id: str = Field(pattern=CODE, examples=["window-3"])
    channel: Channel = Channel.COUNTER
    case_id: UUID | None = Field(None, description=(
        "The case this trip is for, when the resident came back about one (a return trip)."))
    ticket: str | None = Field(None, pattern=CODE, examples=["A017"],
                               description="The queue ticket's number.")
    wait_minutes: int | None = Field(None, ge=0, le=1440,
                                     description="Minutes waited before being called.")
