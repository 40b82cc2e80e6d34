"""Contracts of the follow-up service's events: step 5 of the method, reaching out again.

A follow-up is one planned contact with a resident (a call, a visit, a message) for a reason;
the scheduler moves it along (due, missed, escalated) on the center's working-day calendar and
staff complete, reschedule, escalate or cancel it. Each event that leaves a timer running says
when it fires (``due_at``, ``overdue_at``, ``escalate_at``, ``missed_at``), so a read model
knows the next moment without a calendar, and its ``basis``: ``official`` when the dates were
worked out on published holiday schedules, ``provisional`` when on a year planned from the
statutory holidays alone (v2 of those events; v1 events are upcast as ``official``). No personal
data: residents are opaque ids, free text is redacted before it is recorded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
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
from shared.contracts.vocabulary import Basis, Cadence, with_official_basis

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


class RescheduleCause(StrEnum):
    """Who moved a follow-up: staff, or re-planning when an official schedule was published."""

    STAFF = "staff"
    CALENDAR_PUBLISHED = "calendar_published"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


BASIS = Field(Basis.OFFICIAL, description=(
    "official: worked out on published holiday schedules; provisional: on a year planned "
    "from the statutory holidays alone, re-planned when its schedule is published."))


class DueRule(_Payload):
    """How ``due_at`` was worked out on the working-day calendar, so that it can be worked
    out again when an official schedule replaces a provisional year: office opening on the
    ``working_days``-th working day on or after (or on or before) ``day``, and never before
    ``not_before``."""

    direction: Literal["on_or_after", "on_or_before"]
    day: Day
    working_days: int = Field(ge=0)
    not_before: Moment | None = None


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
    basis: Basis = BASIS
    due_rule: DueRule | None = Field(None, description=(
        "How due_at was worked out (None: given exactly, or following a rectification's "
        "deadline)."))


class FollowUpDue(_Payload):
    """The scheduler found the follow-up due; it is missed if not done by ``overdue_at``."""

    due_at: Moment
    overdue_at: Moment
    basis: Basis = BASIS


class FollowUpMissed(_Payload):
    """The due working day closed without the follow-up done; escalated at ``escalate_at``."""

    due_at: Moment
    escalate_at: Moment
    basis: Basis = BASIS


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
    """Moved to another time or assignee: by staff, or re-planned (``cause``
    ``calendar_published``) when the official schedule replaced the provisional year its date
    was worked out on."""

    due_at: Moment
    assigned_clerk: OptionalCode
    assigned_team: OptionalCode
    reason: FreeText = ""
    cause: RescheduleCause = RescheduleCause.STAFF
    previous_due_at: Moment | None = None
    basis: Basis = BASIS
    due_rule: DueRule | None = None


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
    basis: Basis = BASIS
    due_rule: DueRule | None = Field(None, description="How outreach_due_at was worked out.")


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
    basis: Basis = BASIS


class ObligationFulfilled(_Payload):
    period_due_on: Day
    fulfilled_on: Day
    late: bool = Field(description="The period had already been counted as missed.")
    next_due_on: Day
    missed_at: Moment
    basis: Basis = BASIS


class ObligationMissed(_Payload):
    """No fulfilment was recorded for a period by the end of its grace working days."""

    period_due_on: Day
    follow_up_id: UUID
    next_due_on: Day
    missed_at: Moment
    basis: Basis = BASIS


class ObligationEnded(_Payload):
    reason: FreeText


V2 = {"version": 2, "upcasters": {1: with_official_basis}}
"""The events whose dates say their basis since v2; a v1 event's dates were all official."""


def _add(model: type[_Payload], summary: str = "", dated: bool = False) -> EventContract:
    return REGISTRY.add(EventContract(model.__name__, SERVICE, model,
                                      summary=summary or (model.__doc__ or ""),
                                      **(V2 if dated else {})))  # type: ignore[arg-type]


CONTRACTS = [
    _add(FollowUpScheduled, dated=True),
    _add(FollowUpDue, dated=True),
    _add(FollowUpMissed, dated=True),
    _add(FollowUpEscalated),
    _add(FollowUpCompleted, "Done: outcome, channel used, note"),
    _add(FollowUpRescheduled, dated=True),
    _add(FollowUpCancelled),
    _add(PolicyChangePublished, dated=True),
    _add(PolicyChangeFannedOut),
    _add(ObligationWatched, dated=True),
    _add(ObligationFulfilled, "A period of a recurring obligation was fulfilled", dated=True),
    _add(ObligationMissed, dated=True),
    _add(ObligationEnded, "The center stops watching the obligation"),
]
