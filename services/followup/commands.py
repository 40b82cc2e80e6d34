"""What staff (and operators) can ask of follow-up: one typed command per use case."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field, model_validator

from shared.contracts.fields import CODE_PATTERN
from shared.contracts.followup import ContactChannel, FollowUpOutcome, Priority, Reason
from shared.contracts.vocabulary import Verdict
from shared.kernel.typed import Command, Typed

ITEM = r"^[A-Z]{2,4}(?:-[A-Z0-9]+)+$"


class _When(Command):
    due_at: datetime | None = Field(None, description="Exact moment (with offset).")
    due_on: date | None = Field(None, description="A day: office opening on it, or on the next "
                                                  "working day when it is a day off.")

    @model_validator(mode="after")
    def _one_of(self) -> _When:
        if (self.due_at is None) == (self.due_on is None):
            raise ValueError("give exactly one of due_at and due_on")
        return self


class ScheduleFollowUp(_When):
    """Plan a contact by hand, e.g. a home visit."""

    center_id: str = Field(pattern=CODE_PATTERN, examples=["SH-PD-HUAMU"])
    reason: Reason = Reason.HOME_VISIT
    case_id: UUID | None = None
    resident_id: UUID | None = Field(None, description="Opaque id from the resident vault.")
    assigned_clerk: str | None = Field(None, pattern=CODE_PATTERN)
    assigned_team: str | None = Field(None, pattern=CODE_PATTERN)
    priority: Priority = Priority.NORMAL
    service_item: str | None = Field(None, pattern=ITEM)

    @model_validator(mode="after")
    def _someone(self) -> ScheduleFollowUp:
        if self.assigned_clerk is None and self.assigned_team is None:
            raise ValueError("assign the follow-up to a clerk or a team")
        return self


class CompleteFollowUp(Command):
    outcome: FollowUpOutcome
    channel: ContactChannel
    note: str = Field("", max_length=2000)
    verdict: Verdict | None = Field(None, description=(
        "A post-resolution check only: the resident's answer to \"was your matter solved?\" "
        "(solved, partly, not_solved: the case is reopened)."))


class RescheduleFollowUp(_When):
    reason: str = Field(min_length=1, max_length=1000)
    assigned_clerk: str | None = Field(None, pattern=CODE_PATTERN)
    assigned_team: str | None = Field(None, pattern=CODE_PATTERN)


class EscalateFollowUp(Command):
    reason: str = Field(min_length=1, max_length=1000)


class CancelFollowUp(Command):
    reason: str = Field(min_length=1, max_length=1000)


class PublishPolicyChange(Command):
    center_id: str = Field(pattern=CODE_PATTERN, description="The publishing center.")
    service_items: list[str] = Field(min_length=1, max_length=50)
    summary: str = Field(min_length=1, max_length=2000)
    effective_on: date
    all_centers: bool = Field(False, description="Reach residents of every center.")


class FulfilObligation(Command):
    period_due_on: date | None = Field(None, description="Default: the current period.")
    fulfilled_on: date | None = Field(None, description="Default: today (center's zone).")


class EndObligation(Command):
    reason: str = Field(min_length=1, max_length=1000)


class MoveHelpTask(Command):
    """Accept a help task, or start work on it."""


class FinishHelpTask(Command):
    note: str = Field("", max_length=2000)


class HandBackHelpTask(Command):
    reason: str = Field(min_length=1, max_length=1000)


class ReplyToReferral(Command):
    """The unit's reply, as the clerk records it."""

    reply: str = Field(min_length=1, max_length=2000)


class ReplyWithLink(Typed):
    """The unit's reply, sent by the unit itself with the referral's reply link."""


    token: str = Field(min_length=1, max_length=200)
    reply: str = Field(min_length=1, max_length=2000)
