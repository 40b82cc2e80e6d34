"""Contracts of the follow-up service's events: step 5 of the method, reaching out again.

A follow-up is one planned contact with a resident (a call, a visit, a message) for a reason;
the scheduler moves it along (due, missed, escalated) on the center's working-day calendar and
staff complete, reschedule, escalate or cancel it. Each event that leaves a timer running says
when it fires (``due_at``, ``overdue_at``, ``escalate_at``, ``missed_at``), so a read model
knows the next moment without a calendar, and its ``basis``: ``official`` when the dates were
worked out on published holiday schedules, ``provisional`` when on a year planned from the
statutory holidays alone (v2 of those events; v1 events are upcast as ``official``). No personal
data: residents are opaque ids, free text is redacted before it is recorded.

A follow-up either contacts the resident (``contact``) or, for a resident who has not agreed
to be contacted, is a task for staff done from the case file without reaching them; a
resident's refusal arriving later turns an open one into such a task
(``FollowUpContactWithdrawn``) or cancels it when it was only outreach.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
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
from shared.contracts.registry import REGISTRY, EventContract, Upcaster
from shared.contracts.vocabulary import Basis, Cadence, ReferralKind, Verdict, with_official_basis

SERVICE = "followup"


class Reason(StrEnum):
    """Why the center reaches out again."""

    DEADLINE_REMINDER = "deadline_reminder"
    POST_RESOLUTION_CHECK = "post_resolution_check"
    OBLIGATION_MISSED = "obligation_missed"
    POLICY_CHANGE = "policy_change"
    RECTIFICATION = "rectification"
    HOME_VISIT = "home_visit"
    REFERRAL_OVERDUE = "referral_overdue"  # 督办: a referred unit did not reply in time
    VERIFICATION = "verification"  # 回访核实: call the resident about a bad review, first
    PLAN_STEP = "plan_step"  # a linked plan's step is about to take effect
    RESIDENT_SAYS_UNSOLVED = "resident_says_unsolved"  # the case was reopened on their word
    # Not reached in three attempts: the team leader takes it up (a resident who needs more
    # care gets a home visit instead). Its source_id is the follow-up that was not answered.
    RESIDENT_UNREACHABLE = "resident_unreachable"


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
    NONE = "none"  # not reached: a task done from the case file (no consent to contact)


#: The channels that reach the resident where they are: only with their consent to contact.
REACHING = frozenset({ContactChannel.PHONE, ContactChannel.SMS, ContactChannel.WECHAT,
                      ContactChannel.HOME_VISIT, ContactChannel.LETTER})


class PublisherScope(StrEnum):
    """Whose residents a policy change may reach: the publishing center's, or the city's."""

    CENTER = "center"  # a center's supervisor: that center's residents only
    CITY = "city"  # the city's role: every center's residents (with ``all_centers``)


class FollowUpOutcome(StrEnum):
    DONE = "done"  # reached; nothing more is needed
    NEEDS_ACTION = "needs_action"  # reached; the resident needs more help (open a case)
    UNREACHABLE = "unreachable"  # could not be reached after trying
    DECLINED = "declined"  # reached; the resident declined


class RescheduleCause(StrEnum):
    """Who moved a follow-up: staff, re-planning when an official schedule was published, a
    triage, or an attempt that did not reach the resident (the next working morning)."""

    STAFF = "staff"
    CALENDAR_PUBLISHED = "calendar_published"
    TRIAGED = "triaged"  # a bad review's triage gave its rectification another deadline
    UNREACHABLE = "unreachable"  # a call that did not reach the resident: tried again
    #: The resident turned out to need more care (intake's ``CareNeedChanged``) after the
    #: resolution: its post-resolution check is brought forward to the early check.
    MORE_CARE = "more_care"


NotCountedBecause = Literal["tried_today", "tried_too_soon"]
"""Why an unanswered call was recorded but not counted as an attempt: another the same center
day, or within ``FOLLOWUP_ATTEMPT_MIN_GAP_HOURS`` of one counted (``FollowUpRescheduled``'s
``not_counted_because``, the completion's answer)."""


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
        "deadline; a team's task for an unreached resident: the first working day after "
        "the last attempt's)."))
    contact: bool = Field(True, description=(
        "The resident may be contacted about it; false: a task for staff, done without "
        "reaching the resident (who has not agreed to be contacted)."))


def follow_up_scheduled_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 follow-ups were all contacts on official dates: consent was not known downstream
    yet, and a year without a published schedule was refused, never guessed."""
    return {**with_official_basis(payload), "contact": True}


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
    """Done: the outcome, the channel used, a note; since v2, at a post-resolution check,
    the resident's own answer to "was your matter solved?" (``verdict``: not_solved reopens
    the case)."""

    outcome: FollowUpOutcome
    channel: ContactChannel
    note: FreeText = ""
    verdict: Verdict | None = None
    judged_at: Moment | None = Field(
        None, description="Set when occurred_at lies more than OCCURRED_AT_GRACE_S before "
                          "follow-up's clock (a backdated post): the moment its due day judges "
                          "it by (that clock less the grace). None: occurred_at stands (and on "
                          "every completion recorded before it existed).")
    due_by: Day | None = Field(
        None, description="The working day it was to be done on: its due day, or the next "
                          "working day when due_at falls on a day off or at or after closing "
                          "(a Sunday, Friday 18:00), as the scheduler misses it (once due: "
                          "the day of the closing it falls overdue at, worked out when it "
                          "fell due, whatever schedule came since). The on-time "
                          "rule compares the completion's day with it. None (every completion "
                          "recorded before it existed): the day of due_at, as before.")


def follow_up_completed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 checks did not ask the resident whether the matter was solved."""
    return {**payload, "verdict": None}


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
    judged_at: Moment | None = Field(
        None, description="An unanswered attempt (cause unreachable) posted more than "
                          "OCCURRED_AT_GRACE_S after its occurred_at: the moment it counts on "
                          "(follow-up's clock less the grace), once a day. None: occurred_at "
                          "stands.")
    stays: Literal["missed", "escalated"] | None = Field(
        None, description="An unanswered attempt (cause unreachable) on a follow-up already "
                          "missed or escalated: the call and its note are recorded, but the "
                          "follow-up keeps this status, its due moment (due_at equal to "
                          "previous_due_at) and its escalation, on the supervisors' worklist "
                          "until completed or moved by a supervisor. None: it is scheduled "
                          "again at due_at (every other move, and every event before it "
                          "existed).")
    counted: bool = Field(
        True, description="An unanswered call (cause unreachable) that is not an attempt: "
                          "another the same center day, or within "
                          "FOLLOWUP_ATTEMPT_MIN_GAP_HOURS of one counted. False: recorded for "
                          "its note (in reason) only; the follow-up keeps its status, due "
                          "moment (due_at equal to previous_due_at) and attempt count. True: "
                          "every other move, and every event before it existed.")
    not_counted_because: NotCountedBecause | None = Field(
        None, description="Why a call was not counted (counted false), else None.")
    next_attempt_at: Moment | None = Field(
        None, description="Counted false: the moment the next unanswered attempt counts "
                          "from. Else None.")
    on_time_by: Day | None = Field(
        None, description="A staff move (cause staff) by anyone but a supervisor: the working "
                          "day the follow-up is still judged on time against (its "
                          "completion's due_by, whatever due_at says; an earlier one if "
                          "moved earlier). None: a supervisor's move, or a re-planning, or "
                          "an event before it existed: due_at's working day judges it, as "
                          "before (a re-planning or an attempt keeps a day already kept).")


class FollowUpDueConfirmed(_Payload):
    """The due moment of a follow-up already due, missed or escalated, worked out on a
    provisional year, is the one the published schedule gives too (``cause``
    ``calendar_published``): the same ``due_at``, now on ``basis`` official; once. Or the
    published schedule gives another moment (``published_due_at``): the follow-up keeps
    ``due_at`` and its provisional basis, said once. Nothing else changes: its status, the
    scheduler's next step (closing of its due day, the escalation), the figures (no moment
    moves)."""

    due_at: Moment
    basis: Basis = BASIS
    cause: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED
    published_due_at: Moment | None = Field(
        None, description="Kept, not confirmed: the published schedule gives this other "
                          "moment. The follow-up did its work on the law's day (due, missed, "
                          "escalated on it) and keeps that day and its basis (provisional); "
                          "said once, so no reload reads it again. None: the published "
                          "schedule gives due_at too (basis official).")


class FollowUpCancelled(_Payload):
    """No longer needed, e.g. the case was reopened and is being handled at the counter, or
    the resident's data was erased, or it was only outreach and they refused contact."""

    reason: FreeText


class FollowUpContactWithdrawn(_Payload):
    """The resident no longer agrees to be contacted: the follow-up stays, as a task for staff
    done from the case file without reaching them (``contact`` false from now on)."""

    reason: Code = Field(description=(
        "The system's words ('the resident has not agreed to be contacted'), never typed by a "
        "person."))


class FollowUpPrioritised(_Payload):
    """The case became urgent after the follow-up was planned (urgency high or critical noted,
    or a close deadline: issue 19; ``reason`` ``case_urgent``), or the resident turned out to
    need more care after the resolution its post-resolution check follows (``more_care``),
    so the open follow-up is now high priority."""

    priority: Priority = Priority.HIGH
    reason: Code = Field("case_urgent", description=(
        "The system's words (``case_urgent``, ``more_care``), never typed by a person."))
class FollowUpReassigned(_Payload):
    """The follow-up goes to another clerk or team, its time and state unchanged: its case was
    handed over (``CaseHandedOver``), and follow-ups go to the case's current owner; or its
    plan step was linked to a case (``PlanCaseLinked``), and it is that case's from now on."""

    assigned_clerk: OptionalCode
    assigned_team: OptionalCode
    reason: FreeText = ""
    case_id: UUID | None = Field(
        None, description="The case the follow-up is the case's of from now on: a plan step's "
                          "reminder planned before its step was linked to a case (the event's "
                          "envelope keeps the follow-up's first case, none, so its events stay "
                          "on one partition). None: its case is unchanged (every handover, and "
                          "every event recorded before it existed).")


class HelpTaskOpened(_Payload):
    """帮办: an escalation at the counter (intake's ``ActionTaken`` of kind ``escalated``) is a
    task for a named colleague (``owner_clerk``) or the supervisor team (``owner_team``), to be
    done by ``deadline_at`` (office closing on the deadline's working day); escalated to the
    supervisor team when it is not done or handed back by then."""

    owner_clerk: OptionalCode
    owner_team: OptionalCode
    requested_by: Code = Field(description="The clerk who escalated (the action's actor).")
    deadline_at: Moment
    basis: Basis = BASIS
    source_id: UUID = Field(description="The ActionTaken event's id.")
    service_item: OptionalCode = None
    counted_from: Day | None = Field(None, description=(
        "The day its working days are counted from (the next day is the first); None in events "
        "from before re-planning: such a deadline is left as it is."))
    working_days: int | None = Field(None, ge=1, description="How many working days it was given.")


class HelpTaskReplanned(_Payload):
    """The deadline worked out again (``cause`` ``calendar_published``): its working days
    counted again from ``counted_from`` on the calendar in force, an official schedule having
    replaced the provisional year they were counted on, or changed days they ran over. A new
    moment is never earlier than the re-planning; the same moment with a new basis is a
    confirmation (once), also of a deadline already missed on both counts."""

    deadline_at: Moment
    previous_deadline_at: Moment
    cause: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED
    basis: Basis = BASIS
    published_deadline_at: Moment | None = Field(
        None, description="Kept, not confirmed: the task was escalated on its provisional "
                          "deadline and the published schedule gives this other moment. It "
                          "keeps deadline_at (= previous_deadline_at) and its basis "
                          "(provisional), said once, so no reload reads it again. None: moved "
                          "or confirmed.")


class HelpTaskAccepted(_Payload):
    """The owner took the task on (the envelope's actor)."""


class HelpTaskStarted(_Payload):
    """Work on the task has begun."""


class HelpTaskDone(_Payload):
    """The help was given."""

    note: FreeText = ""


class HelpTaskHandedBack(_Payload):
    """The owner cannot help, and says why: the task goes back to the clerk who asked."""

    reason: FreeText


class HelpTaskEscalated(_Payload):
    """Not done nor handed back by its deadline: on the supervisor team's worklist."""

    escalated_to: Code
    overdue_working_days: int = Field(ge=0)


class HelpTaskClosed(_Payload):
    """No longer needed: the task's case was resolved (intake's ``CaseResolved``) while the
    task was still open, accepted or in progress. Off every worklist, never escalated after;
    reopening the case does not bring it back (help needed again is a new escalation). The
    actor: ``system:rules`` (the rule on the resolution), or ``system:scheduler`` when the
    scheduler, at the task's deadline, finds its case resolved and the task still open."""

    reason: Code = Field("case_resolved", description=(
        "The system's words (``case_resolved``), never typed by a person."))


class ReferralSent(_Payload):
    """派单: the case was referred (intake's ``ActionTaken`` of kind ``referred``) to a unit
    (``unit_kind``, ``unit_name``) whose contact is ``unit_contact`` (the unit's, never the
    resident's); its reply is expected by ``reply_due_at``. No personal data: free text is
    scrubbed, the resident is the case's opaque id."""

    unit_kind: ReferralKind
    unit_name: FreeText
    unit_contact: FreeText = ""
    referred_by: Code
    reply_due_at: Moment
    basis: Basis = BASIS
    source_id: UUID = Field(description="The ActionTaken event's id.")
    counted_from: Day | None = Field(None, description=(
        "The day its working days are counted from (the next day is the first); None in events "
        "from before re-planning: such a deadline is left as it is."))
    working_days: int | None = Field(None, ge=1, description="How many working days it was given.")


class ReferralReplanned(_Payload):
    """The reply deadline worked out again (``cause`` ``calendar_published``), as
    ``HelpTaskReplanned``: the sending's (or the reopening's) working days counted again on the
    calendar in force. A new moment is never earlier than the re-planning; a deadline missed
    on both counts is left to the scheduler (督办), only its basis confirmed (the same moment,
    ``official``) when the published count gives that moment too."""

    reply_due_at: Moment
    previous_reply_due_at: Moment
    cause: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED
    basis: Basis = BASIS
    published_reply_due_at: Moment | None = Field(
        None, description="Kept, not confirmed: the referral went overdue (督办) on its "
                          "provisional deadline and the published schedule gives this other "
                          "moment. It keeps reply_due_at (= previous_reply_due_at) and its "
                          "basis (provisional), said once, so no reload reads it again (until "
                          "chased anew, ReferralReopened). None: moved or confirmed.")


class ReferralReplied(_Payload):
    """回复: the unit's reply, recorded by the clerk or by the unit itself with the referral's
    reply link (``by_recipient``)."""

    reply: FreeText
    by_recipient: bool


class ReferralOverdue(_Payload):
    """督办: no reply by ``reply_due_at``: a high-priority follow-up (``follow_up_id``, reason
    ``referral_overdue``) for the case's owner to chase the unit."""

    follow_up_id: UUID
    assigned_clerk: OptionalCode
    assigned_team: OptionalCode


class ReferralClosed(_Payload):
    """No longer chased: the referral's case was resolved (intake's ``CaseResolved``) while
    its reply was still awaited or overdue. Off the referrals waiting, no 督办 after it (an
    open ``referral_overdue`` follow-up is cancelled with it); a reply the unit still sends
    is taken. The actor: ``system:rules`` (the rule on the resolution), or
    ``system:scheduler`` when the scheduler, at the reply deadline, finds its case resolved
    and the referral still awaiting a reply."""

    reason: Code = Field("case_resolved", description=(
        "The system's words (``case_resolved``), never typed by a person."))


class ReferralReopened(_Payload):
    """Chased again: the referral was closed by its case's resolution (``ReferralClosed``,
    never answered) and the case was reopened (intake's ``CaseReopened``). The unit's reply is
    awaited again by ``reply_due_at``, worked out from the reopening's day on the center's
    working-day calendar with the referral's own number of working days; a 督办 follows when
    it is missed again (``round``: how many times it was chased again, which names that
    督办). A referral answered stays answered."""

    reply_due_at: Moment
    basis: Basis = BASIS
    round: int = Field(1, ge=1, description="1 the first time it is chased again, and so on.")
    reason: Code = Field("case_reopened", description=(
        "The system's words (``case_reopened``), never typed by a person."))
    counted_from: Day | None = Field(None, description=(
        "The day its working days are counted from (the next day is the first); None in events "
        "from before re-planning: such a deadline is left as it is."))
    working_days: int | None = Field(None, ge=1, description="How many working days it was given.")


class PolicyChangePublished(_Payload):
    """A policy change that may help residents with past cases on these service items."""

    service_items: CodeList
    summary: FreeText
    effective_on: Day
    all_centers: bool = Field(description="Reach residents of every center, not only this one.")
    outreach_due_at: Moment = Field(description="When the outreach follow-ups fall due.")
    basis: Basis = BASIS
    due_rule: DueRule | None = Field(None, description="How outreach_due_at was worked out.")
    scope: PublisherScope = Field(PublisherScope.CENTER, description=(
        "The publisher's reach: 'center' (a center's supervisor: its own residents, whatever "
        "all_centers says) or 'city' (the city role: every center's, with all_centers)."))


def policy_change_published_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 recorded neither the basis of its date nor the publisher's reach: the date was
    official (a year without a schedule was refused), and the reach is taken as the publishing
    center's own (a policy published to all centers before the city role existed reaches only
    that center's residents, as its publisher's scope allowed)."""
    return {**with_official_basis(payload), "scope": PublisherScope.CENTER.value}


class PolicyChangeFannedOut(_Payload):
    """Every affected resident has an outreach follow-up (counted once each)."""

    residents: int = Field(ge=0)


class ObligationWatched(_Payload):
    """Follow-up watches a recurring obligation declared at intake.

    v3 says where its periods fall (``first_due_on``, as declared) and which of them is the
    first watched (``next_due_on``, index ``period``): periods already missed when the clerk
    declared it are not watched. A v2 event watched from its first period."""

    obligation_id: UUID
    resident_id: UUID
    cadence: Cadence
    next_due_on: Day = Field(description="The first period watched.")
    missed_at: Moment = Field(description="When the current period counts as missed.")
    assigned_clerk: OptionalCode = Field(None, description="Who calls when a period is missed.")
    service_item: OptionalCode = None
    basis: Basis = BASIS
    first_due_on: Day | None = Field(None, description=(
        "The day the periods fall on, as declared (moved by whole cadence months)."))
    period: int = Field(0, description=(
        "The index of next_due_on among the periods; below 0 for a period before "
        "first_due_on (the declaration's tracked_from reaches back before its due day)."))


def obligation_watched_v2_to_v3(payload: dict[str, object]) -> dict[str, object]:
    """A v2 obligation was watched from the period it was declared with."""
    return {**payload, "first_due_on": payload.get("next_due_on"), "period": 0}


class ObligationFulfilled(_Payload):
    period_due_on: Day
    fulfilled_on: Day
    late: bool = Field(description=(
        "Fulfilled after its grace ended: a period already counted as missed, or the current "
        "one fulfilled past its missed_at (judged on the post's occurred_at, or follow-up's "
        "clock less the grace when backdated) while the scheduler had not recorded it missed "
        "(since December 2026; it was false then)."))
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


class ObligationReplanned(_Payload):
    """The current period's "missed at" moment worked out again (``cause``
    ``calendar_published``): the official schedule replaced the provisional year its grace was
    counted on, or changed days its grace ran over. Never earlier than the re-planning."""

    next_due_on: Day
    missed_at: Moment
    previous_missed_at: Moment
    cause: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED
    basis: Basis = BASIS


class ObligationEnded(_Payload):
    reason: FreeText


def _add(model: type[_Payload], summary: str = "",
         upcaster: Upcaster | None = None) -> EventContract:
    """Register a v1 contract, or a v2 one read from v1 through ``upcaster``. Every v2 here is
    the one v2 of its type: the dated events say their ``basis`` since v2 (a v1 event's dates
    were all official); FollowUpScheduled also says ``contact`` and PolicyChangePublished its
    publisher's ``scope``, both filled by the same v1 -> v2 upcaster."""
    versions: dict[str, Any] = {} if upcaster is None else {
        "version": 2, "upcasters": {1: upcaster}}
    return REGISTRY.add(EventContract(model.__name__, SERVICE, model,
                                      summary=summary or (model.__doc__ or ""), **versions))


CONTRACTS = [
    _add(FollowUpScheduled, upcaster=follow_up_scheduled_v1_to_v2),
    _add(FollowUpDue, upcaster=with_official_basis),
    _add(FollowUpMissed, upcaster=with_official_basis),
    _add(FollowUpEscalated),
    _add(FollowUpCompleted, upcaster=follow_up_completed_v1_to_v2),
    _add(FollowUpRescheduled, upcaster=with_official_basis),
    _add(FollowUpDueConfirmed),
    _add(FollowUpCancelled),
    _add(FollowUpContactWithdrawn),
    _add(FollowUpPrioritised),
    _add(FollowUpReassigned),
    _add(HelpTaskOpened),
    _add(HelpTaskAccepted),
    _add(HelpTaskStarted),
    _add(HelpTaskDone),
    _add(HelpTaskHandedBack),
    _add(HelpTaskEscalated),
    _add(HelpTaskClosed),
    _add(HelpTaskReplanned),
    _add(ReferralSent),
    _add(ReferralReplied),
    _add(ReferralOverdue),
    _add(ReferralClosed),
    _add(ReferralReopened),
    _add(ReferralReplanned),
    _add(PolicyChangePublished, upcaster=policy_change_published_v1_to_v2),
    _add(PolicyChangeFannedOut),
    REGISTRY.add(EventContract("ObligationWatched", SERVICE, ObligationWatched,
                               summary=ObligationWatched.__doc__ or "", version=3,
                               upcasters={1: with_official_basis,
                                          2: obligation_watched_v2_to_v3})),
    _add(ObligationFulfilled, "A period of a recurring obligation was fulfilled",
         upcaster=with_official_basis),
    _add(ObligationMissed, upcaster=with_official_basis),
    _add(ObligationReplanned),
    _add(ObligationEnded, "The center stops watching the obligation"),
]
