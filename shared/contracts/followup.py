"""Contracts of the follow-up service's events: step 5 of the method, reaching out again.

A follow-up is one planned contact with a resident (a call, a visit, a message) for a reason;
the scheduler moves it along (due, missed, escalated) on the center's working-day calendar and
staff complete, reschedule, escalate or cancel it. Each event that leaves a timer running says
when it fires (``due_at``, ``overdue_at``, ``escalate_at``, ``missed_at``), so a read model
knows the next moment without a calendar. No personal data: residents are opaque ids, free
text is redacted before it is recorded.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.fields import (
    Code,
    CodeList,
    Day,
    FreeText,
    Moment,
    OptionalCode,
)
from shared.contracts.registry import REGISTRY, EventContract
from shared.contracts.vocabulary import Cadence

SERVICE = "followup"


class Reason(StrEnum):
    """Why the center reaches out again."""

    DEADLINE_REMINDER = "deadline_reminder"
    POST_RESOLUTION_CHECK = "post_resolution_check"
    OBLIGATION_MISSED = "obligation_missed"
    POLICY_CHANGE = "policy_change"
    RECTIFICATION = "rectification"
    HOME_VISIT = "home_visit"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"


class ContactChannel(StrEnum):
    """How the resident was (or was tried to be) reached."""

    PHONE = "phone"
    SMS = "sms"
    WECHAT = "wechat"
    HOME_VISIT = "home_visit"
    COUNTER = "counter"
    LETTER = "letter"


class FollowUpOutcome(StrEnum):
    DONE = "done"  # reached; nothing more is needed
    NEEDS_ACTION = "needs_action"  # reached; the resident needs more help (open a case)
    UNREACHABLE = "unreachable"  # could not be reached after trying
    DECLINED = "declined"  # reached; the resident declined


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FollowUpScheduled(_Payload):
    """A contact is planned: for whom, why, when, and who is to make it."""

    reason: Reason
    resident_id: UUID | None = Field(description="Opaque id; None when the case had none.")
    due_at: Moment = Field(description="When it becomes due (office opening, center zone).")
    assigned_clerk: OptionalCode
    assigned_team: OptionalCode
    priority: Priority = Priority.NORMAL
    service_item: OptionalCode = None
    source: Code = Field(description="What caused it, e.g. 'intake:DeadlineNoted', 'api'.")
    source_id: UUID | None = Field(None, description="Deadline, obligation, policy, rectification"
                                   " or upstream event id.")


class FollowUpDue(_Payload):
    """The scheduler found the follow-up due; it is missed if not done by ``overdue_at``."""

    due_at: Moment
    overdue_at: Moment


class FollowUpMissed(_Payload):
    """The due working day closed without the follow-up done; escalated at ``escalate_at``."""

    due_at: Moment
    escalate_at: Moment


class FollowUpEscalated(_Payload):
    """Handed to the center's supervisor: overdue too long, or escalated by staff."""

    escalated_to: Code
    overdue_working_days: int = Field(ge=0)
    by_scheduler: bool
    reason: FreeText = ""


class FollowUpCompleted(_Payload):
    outcome: FollowUpOutcome
    channel: ContactChannel
    note: FreeText = ""


class FollowUpRescheduled(_Payload):
    due_at: Moment
    assigned_clerk: OptionalCode
    assigned_team: OptionalCode
    reason: FreeText = ""


class FollowUpCancelled(_Payload):
    """No longer needed, e.g. the case was reopened and is being handled at the counter."""

    reason: FreeText


class PolicyChangePublished(_Payload):
    """A policy change that may help residents with past cases on these service items."""

    service_items: CodeList
    summary: FreeText
    effective_on: Day
    all_centers: bool = Field(description="Reach residents of every center, not only this one.")
    outreach_due_at: Moment = Field(description="When the outreach follow-ups fall due.")


class PolicyChangeFannedOut(_Payload):
    """Every affected resident has an outreach follow-up (counted once each)."""

    residents: int = Field(ge=0)


class ObligationWatched(_Payload):
    """Follow-up watches a recurring obligation declared at intake."""

    obligation_id: UUID
    resident_id: UUID
    cadence: Cadence
    next_due_on: Day
    missed_at: Moment = Field(description="When the current period counts as missed.")
    assigned_clerk: OptionalCode = Field(None, description="Who calls when a period is missed.")
    service_item: OptionalCode = None


class ObligationFulfilled(_Payload):
    period_due_on: Day
    fulfilled_on: Day
    late: bool = Field(description="The period had already been counted as missed.")
    next_due_on: Day
    missed_at: Moment


class ObligationMissed(_Payload):
    """No fulfilment was recorded for a period by the end of its grace working days."""

    period_due_on: Day
    follow_up_id: UUID
    next_due_on: Day
    missed_at: Moment


class ObligationEnded(_Payload):
    reason: FreeText


CONTRACTS = [
    REGISTRY.add(EventContract("FollowUpScheduled", SERVICE, FollowUpScheduled,
                               summary=FollowUpScheduled.__doc__ or "")),
    REGISTRY.add(EventContract("FollowUpDue", SERVICE, FollowUpDue,
                               summary=FollowUpDue.__doc__ or "")),
    REGISTRY.add(EventContract("FollowUpMissed", SERVICE, FollowUpMissed,
                               summary=FollowUpMissed.__doc__ or "")),
    REGISTRY.add(EventContract("FollowUpEscalated", SERVICE, FollowUpEscalated,
                               summary=FollowUpEscalated.__doc__ or "")),
    REGISTRY.add(EventContract("FollowUpCompleted", SERVICE, FollowUpCompleted,
                               summary="Done: outcome, channel used, note")),
    REGISTRY.add(EventContract("FollowUpRescheduled", SERVICE, FollowUpRescheduled,
                               summary="Moved to another time or assignee")),
    REGISTRY.add(EventContract("FollowUpCancelled", SERVICE, FollowUpCancelled,
                               summary=FollowUpCancelled.__doc__ or "")),
    REGISTRY.add(EventContract("PolicyChangePublished", SERVICE, PolicyChangePublished,
                               summary=PolicyChangePublished.__doc__ or "")),
    REGISTRY.add(EventContract("PolicyChangeFannedOut", SERVICE, PolicyChangeFannedOut,
                               summary=PolicyChangeFannedOut.__doc__ or "")),
    REGISTRY.add(EventContract("ObligationWatched", SERVICE, ObligationWatched,
                               summary=ObligationWatched.__doc__ or "")),
    REGISTRY.add(EventContract("ObligationFulfilled", SERVICE, ObligationFulfilled,
                               summary="A period of a recurring obligation was fulfilled")),
    REGISTRY.add(EventContract("ObligationMissed", SERVICE, ObligationMissed,
                               summary=ObligationMissed.__doc__ or "")),
    REGISTRY.add(EventContract("ObligationEnded", SERVICE, ObligationEnded,
                               summary="The center stops watching the obligation")),
]
