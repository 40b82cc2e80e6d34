"""Step 5 of the method: follow-ups, watched obligations and policy changes. No I/O here.

A ``FollowUp`` moves  scheduled -> due -> missed -> escalated  as time passes (the scheduler
calls ``advance(now)``), and ends completed or cancelled by staff. Staff may also reschedule it
(back to scheduled) or escalate it by hand. An ``Obligation`` watches a recurring obligation
declared at intake and counts a period as missed when no fulfilment was recorded by the end of
its grace working days; two periods missed in a row (one, for a resident who needs more care)
call for a home visit by the team. A ``PolicyChange`` is published once and fanned out to
residents.

Every moment is computed on the center's ``WorkingCalendar`` (pure, passed in) and recorded in
the event with its ``basis`` (official, or provisional when a year without a published schedule
was counted), so replaying the log never depends on today's calendar settings. A scheduled
follow-up keeps the rule its due moment came from (``DueRule``): when the official schedule of
a provisional year arrives, ``replan`` works it out again (``FollowUpRescheduled``, cause
``calendar_published``), never earlier than now and never for anything already done.

What the resident agreed to (``Consent``: intake's ``ConsentChanged`` and ``ResidentErased``)
decides what may be planned for them (``consent_allows``). Nothing is planned for an erased
resident, and what was open is cancelled (obligations ended). For a resident who has not
agreed to be contacted, outreach (a post-resolution check, a policy change, a home visit) is
not planned and an open one is cancelled; work the center owes them anyway (a deadline
reminder, a missed obligation, a rectification) becomes a task for staff done from the case
file, without reaching the resident (``contact`` false; completed with the channel ``none``
or ``counter`` when they come in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple
from uuid import UUID

from eventsourcing.domain import event

from shared.contracts.followup import (
    REACHING,
    ContactChannel,
    NotCountedBecause,
    Priority,
    PublisherScope,
    Reason,
    RescheduleCause,
)
from shared.contracts.vocabulary import Verdict
from shared.kernel.calendar import Basis, CalendarOutOfRange, DueRule, WorkingCalendar
from shared.kernel.creation import recording
from shared.kernel.errors import CommandError, InvalidCommand, RuleViolated
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.ids import uuid5
from shared.kernel.meta import Meta, by_a_worker
from shared.kernel.periods import CADENCE_MONTHS, add_months

# One help task per escalation, its id kept beside who serves a case (feedback finds a case's
# help tasks by it), in the namespace of every id follow-up derives.
from shared.kernel.serving import FOLLOWUP_NAMESPACE as FOLLOWUP_NAMESPACE
from shared.kernel.serving import help_task_id_for as help_task_id_for

OPEN = ("scheduled", "due", "missed", "escalated")
FollowUpStatus = Literal["scheduled", "due", "missed", "escalated", "completed", "cancelled"]
"""Every status a follow-up takes (``GET /followups?status=`` names one of them)."""

#: Periods of one obligation missed in a row before the team visits the resident at home;
#: for a resident who needs more care (intake's ``CareNeedChanged``), the first is enough.
HOME_VISIT_AFTER = 2
HOME_VISIT_AFTER_FOR_CARE = 1


def home_visit_after(more_care: bool) -> int:
    """How many periods in a row a resident may miss before a home visit is planned."""
    return HOME_VISIT_AFTER_FOR_CARE if more_care else HOME_VISIT_AFTER


@dataclass(frozen=True)
class Uncounted:
    """An unanswered call recorded with its note but not counted as an attempt
    (``FollowUp.check_attempt_day``): why, and when the next one counts from. Until December
    2026 it was a 409 (``TriedToday``, ``TriedTooSoon``) and the note was lost."""

    because: NotCountedBecause
    next_attempt_at: datetime

    @classmethod
    def recorded(cls, e: object) -> Uncounted | None:
        """What a recorded event says, when it is an uncounted call (``FollowUpRescheduled``,
        ``counted`` false; one recorded before ``counted`` existed was counted)."""
        if type(e).__name__ != "FollowUpRescheduled" or getattr(e, "counted", True):
            return None
        return cls(because=e.not_counted_because,  # type: ignore[attr-defined]
                   next_attempt_at=e.next_attempt_at)  # type: ignore[attr-defined]


class ResidentErasedError(CommandError):
    """The resident's data was erased: nothing is planned for them any more."""

    status = 409
    code = "resident_erased"


class ReferralClosedError(CommandError):
    """The referral's case was resolved and the referral closed (``ReferralClosed``): the
    unit's reply link takes no reply until the case is reopened."""

    status = 409
    code = "referral_closed"


class ResidentNotFound(CommandError):
    """No resident by that id is known at the center (perhaps at another: not said)."""

    status = 404
    code = "resident_not_found"


class CaseNotFound(CommandError):
    """No case by that id is known at the center (perhaps at another: not said)."""

    status = 404
    code = "case_not_found"


class ResidentNotOfCase(CommandError):
    """A follow-up planned by hand names a case and a resident who is not the case's (or a
    case opened without a resident): the call would go to one resident about another's case,
    its notes scrubbed of the wrong resident's name and the figures per resident counted on
    the wrong one. Name the case alone (its resident is taken) or the resident alone."""

    status = 422
    code = "resident_not_of_case"


class NoConsent(CommandError):
    """The resident has not agreed to be contacted, and this follow-up is only outreach."""

    status = 409
    code = "no_consent"


class NotTheAssignee(CommandError):
    """A follow-up assigned to a clerk is cancelled by that clerk or a supervisor, not by a
    colleague: cancelled, it is in no rate, and a colleague's cancelling was counted nowhere
    (``followups_cancelled_by_assignee`` counts the assignee's, a supervisor's is the
    decision the figures leave out). A colleague covering for them completes it. One
    assigned to a team is cancelled by a supervisor: its members complete it."""

    status = 403
    code = "forbidden_assignee"


class OwnMissedFollowUp(CommandError):
    """A missed or escalated follow-up is not moved nor cancelled by the clerk it was missed
    by, nor, one a team let go, by anyone but a supervisor: that took it off the supervisor's
    escalation worklist (督办). A supervisor may, unless it was their own."""

    status = 403
    code = "own_missed_followup"


class SelfRating(CommandError):
    """代评: staff who opened or served the case record the resident's favourable verdict at
    its post-resolution check (as a survey's answer: feedback's ``self_rating``)."""

    status = 403
    code = "self_rating"


#: What staff who served the case may still record of the resident's word: against their
#: own figures (it reopens the case, as they could themselves).
OWN_STAFF_MAY_HEAR = frozenset({Verdict.NOT_SOLVED.value})


def check_verdict_recorder(verdict: str | None, recorder: str | None, served: bool) -> None:
    """No 代评 at the post-resolution check: a verdict of ``solved`` or ``partly`` (kept as
    the resident's word: the residents' resolution_rate counts the case's latest) is recorded
    by a colleague who did not serve the case (``served``: the recorder opened it, took a
    step of it or had it handed to them). The case's own clerk completes the check without
    a verdict, or records a "not solved" they heard (it reopens the case)."""
    if verdict is None or verdict in OWN_STAFF_MAY_HEAR or not served:
        return
    raise SelfRating("staff who opened or served the case do not record the resident's "
                     "verdict that it was solved (代评): complete the check without a "
                     "verdict, or a colleague who did not serve the resident calls back",
                     staff=recorder, verdict=verdict, field="verdict")


class OwnBadReview(CommandError):
    """回访 is not the 承办人's: a bad review's verification (回访核实) and rectification
    follow-ups are the team's, not completed, cancelled or moved by the staff who served the
    case the review is about."""

    status = 403
    code = "own_bad_review"


#: A bad review's follow-ups: the verification (回访核实) and the rectification's, the team's
#: (``FOLLOWUP_TEAM``) whoever has the case; not worked by the staff the review is about.
TEAMS_OWN = (Reason.VERIFICATION.value, Reason.RECTIFICATION.value)


class CityRoleRequired(CommandError):
    """A policy change for every center's residents is the city's to publish."""

    status = 403
    code = "forbidden_role"


# -- what the resident agreed to ---------------------------------------------------------------

#: Reasons that are only outreach: without consent to contact there is nothing left to do.
#: Every other reason is work the center owes the resident anyway (a deadline reminder, a
#: missed obligation, a rectification): without consent, a task without contact.
OUTREACH = frozenset({Reason.POST_RESOLUTION_CHECK, Reason.POLICY_CHANGE, Reason.HOME_VISIT})

ERASED_REASON = "the resident's personal data was erased"
NO_CONTACT_REASON = "the resident has not agreed to be contacted"


@dataclass(frozen=True)
class Consent:
    """What follow-up knows of a resident. Unknown (registered before consent was recorded,
    or their ``ConsentChanged`` not here yet): contact allowed; a refusal arriving later
    withdraws what is open."""

    contact: bool = True
    erased: bool = False


def consent_allows(reason: Reason | str, consent: Consent) -> bool | None:
    """Whether a follow-up for ``reason`` may be planned, and how: True (a contact), False (a
    task without contact), None (not at all)."""
    if consent.erased:
        return None
    if consent.contact:
        return True
    return None if Reason(reason) in OUTREACH else False


def policy_scope(role: str, token_center: str | None, center_id: str,
                 all_centers: bool) -> PublisherScope:
    """The reach a publisher gets: a center's supervisor its own center (``all_centers`` is a
    403), the city role every center. ``role`` is the caller's
    (``shared.security.principals.Role``)."""
    if role == PublisherScope.CITY.value:
        return PublisherScope.CITY
    if all_centers:
        raise CityRoleRequired("a policy change for every center's residents needs the city "
                               "role; a center's supervisor publishes to their own center",
                               role=role, allowed=[PublisherScope.CITY.value])
    if token_center is not None and token_center != center_id:
        raise CityRoleRequired("a center's supervisor publishes only to their own center",
                               role=role, token_center=token_center)
    return PublisherScope.CENTER


def fan_out_center(center_id: str, all_centers: bool, scope: str) -> str | None:
    """Whose residents a policy change reaches: None (every center) only when it was published
    to all centers by the city; otherwise the publishing center's, whatever else it says."""
    return None if all_centers and scope == PublisherScope.CITY.value else center_id


def follow_up_id_for(kind: str, key: object) -> UUID:
    """Deterministic ids: the same upstream fact always names the same follow-up."""
    return uuid5(FOLLOWUP_NAMESPACE, f"{kind}:{key}")


def policy_follow_up_id(policy_id: UUID, resident_id: UUID) -> UUID:
    """One outreach per resident per policy change, however often the fan-out runs."""
    return uuid5(policy_id, str(resident_id))


POLICY_OUTREACH = "followup:PolicyChangePublished"
"""The ``source`` of a policy change's outreach (``fanout.py``). Its id is worked out from the
policy's, which a city-wide policy's readers at every center know, and a resident's: another
center's staff are answered as for an outreach nobody planned (404), never 403, which told
them whom the policy reached here (``Unit.get``: out of reach is a 404)."""


def obligation_aggregate_id(obligation_id: UUID) -> UUID:
    return follow_up_id_for("obligation", obligation_id)


def end_of_due_day(calendar: WorkingCalendar, due_at: datetime) -> datetime:
    """Office closing on the working day a follow-up due at ``due_at`` is to be done."""
    local = due_at.astimezone(calendar.tz)
    day = local.date()
    if calendar.is_working_day(day) and local.time() < calendar.office_hours.close:
        return calendar.closing_on(day)
    return calendar.closing_on(calendar.add_working_days(day + timedelta(days=1), 0))


def first_morning_to_come(calendar: WorkingCalendar, now: datetime) -> datetime:
    """Office opening on the first working day whose office hours are not over at ``now``:
    today's on a working day before closing (a follow-up due then is still today's work),
    else the next working day's (after closing, on a day off)."""
    return calendar.opening_on(calendar.local_day(end_of_due_day(calendar, now)))


def due_working_day(calendar: WorkingCalendar, due_at: datetime) -> date | None:
    """The day a follow-up due at ``due_at`` is to be done on, as the scheduler misses it
    (``end_of_due_day``): a Sunday's or a Friday 18:00's is Monday's. The on-time rule judges
    its completion by this day (``FollowUpCompleted.due_by``), not by the date of ``due_at``:
    hand-set to a Sunday and done on Monday, it was counted late, on a day nobody works.
    None past the calendar (judged on ``due_at``'s day, as before)."""
    try:
        return calendar.local_day(end_of_due_day(calendar, due_at))
    except CalendarOutOfRange:
        return None


@dataclass(frozen=True)
class WorkDay:
    """A worklist's day at ``now``, on the scheduler's rule (``end_of_due_day``): a follow-up
    is overdue once the office has closed on the working day it is to be done, so on a
    Saturday a Friday-evening or weekend one is not overdue yet (it is Monday's), and one
    due on a working day is overdue from that day's closing, whatever the date says.

    ``overdue_before``: ``due_at`` before it is overdue (``end_of_due_day(due_at) <= now``);
    ``due_today_before``: ``due_at`` from ``overdue_before`` up to it is to be done today
    (empty on a day off and after closing); later ones are upcoming."""

    today: date
    overdue_before: datetime
    due_today_before: datetime


def work_day(calendar: WorkingCalendar, now: datetime) -> WorkDay:
    """The worklist's day at ``now``: see ``WorkDay`` (CalendarOutOfRange past the calendar)."""
    local = now.astimezone(calendar.tz)
    today = local.date()
    working = calendar.is_working_day(today)
    if working and local.time() >= calendar.office_hours.close:
        closed = today
    else:
        closed = calendar.subtract_working_days(today - timedelta(days=1), 0)
    overdue_before = calendar.closing_on(closed)
    return WorkDay(today, overdue_before,
                   calendar.closing_on(today) if working else overdue_before)


def obligation_missed_at(calendar: WorkingCalendar, due_on: date, grace: int
                         ) -> tuple[datetime, Basis]:
    """A period due on ``due_on`` is missed at office closing of the ``grace``-th working day
    after it (``due_on`` itself is day 0 when it is a working day, else the next working day)."""
    day = calendar.add_working_days(due_on, grace)
    return calendar.closing_on(day), calendar.basis_of(due_on, day)


def first_watched_period(calendar: WorkingCalendar, first_due_on: date, cadence: str,
                         grace: int, declared_at: datetime, *, back: bool = False
                         ) -> tuple[int, date, datetime, Basis]:
    """The first period follow-up watches of an obligation whose periods fall on
    ``first_due_on`` (moved by whole cadence months), declared at ``declared_at``: (its index,
    its due day, when it is missed, the basis). A period already missed when the obligation
    was declared (its grace over) was never expected to be tracked: a clerk recording in
    December a reimbursement that began in September plans no contact for September to
    November. A period still in its grace, or due later, is watched; nothing is skipped
    after the declaration (a consumer behind by days still fires what fell due meanwhile).

    ``back``: the series reaches back before ``first_due_on`` too (negative indices), as far
    as ``declared_at``'s periods go: the counter names the next due day and, apart, since when
    the resident says the payments did not come (``tracked_from``); the periods between are
    the ones asked for."""
    months = CADENCE_MONTHS[cadence]
    # Cheap jump over periods long before the declaration (no calendar for those years
    # needed), then the calendar decides on the last few. A period due before ``floor`` had
    # its grace (``grace`` working days after its due day) end before the declaration's day,
    # whatever the grace: counted on the calendar, not guessed in calendar days.
    declared_on = declared_at.astimezone(calendar.tz).date()
    try:
        floor = calendar.subtract_working_days(declared_on, grace + 1)
    except CalendarOutOfRange:  # a declaration at the calendar's first days: no jump
        if back:  # how far back is the calendar's to say: waits for it (parked), as the
            raise  # periods' grace would (from date.min the series ran to year 0)
        floor = date.min
    index = 0
    while back and add_months(first_due_on, (index - 1) * months) >= floor:
        index -= 1
    while add_months(first_due_on, (index + 1) * months) < floor:
        index += 1
    while True:
        due = add_months(first_due_on, index * months)
        missed_at, basis = obligation_missed_at(calendar, due, grace)
        if missed_at > declared_at:
            return index, due, missed_at, basis
        index += 1


#: Attempts to reach a resident before a follow-up is closed as unreachable: an attempt that
#: does not reach them (no answer, switched off) is tried again the next working morning, and
#: only the last one completes the follow-up (a revisit is a task until done, not one call).
UNREACHABLE_ATTEMPTS = 3
#: The least time between two unanswered attempts that count, besides their being on two center
#: days (``FOLLOWUP_ATTEMPT_MIN_GAP_HOURS`` sets it; this is its default): a call at 23:59 and
#: a redial at 00:01 were two days tried, two of the three attempts within two minutes.
ATTEMPT_MIN_GAP = timedelta(hours=8)


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _apart(a: datetime, b: datetime) -> timedelta:
    """How much real time lies between two moments: in UTC, since the difference of two
    moments in one ``ZoneInfo`` is wall-clock (an hour off across a daylight saving change)."""
    return abs(_utc(a) - _utc(b))


def unreached_reason(attempt: int, note: str) -> str:
    """Why an attempt that did not reach the resident moved its follow-up, with what the
    clerk noted of it (``停机``, ``家属说住院了``, ``邻居说出差一周``): the note was dropped, and
    what the next caller needs to know of the last attempt was nowhere in the log."""
    said = f"unreachable: attempt {attempt} of {UNREACHABLE_ATTEMPTS}"
    return f"{said}: {note}" if note.strip() else said


#: Follow-ups the center owes an answer on: when the last attempt does not reach the resident
#: either, the team takes them up (``FollowUp.hand_over``) rather than letting them end there.
HANDED_OVER_WHEN_UNREACHABLE = frozenset({
    Reason.POST_RESOLUTION_CHECK, Reason.VERIFICATION, Reason.RECTIFICATION,
    Reason.RESIDENT_SAYS_UNSOLVED})


def handover_id(follow_up_id: UUID) -> UUID:
    """The one follow-up the team takes an unreachable resident's follow-up up with."""
    return follow_up_id_for("unreachable", follow_up_id)


@dataclass(frozen=True)
class Handover:
    """Who takes up a follow-up whose resident was not reached at the last attempt, and when:
    a home visit by ``team`` for a resident who needs more care (``more_care``), else a task
    for the team leader (``leader``), due at ``due_at`` (the next working morning)."""

    due_at: datetime
    basis: Basis
    team: str
    leader: str
    more_care: bool
    due_rule: DueRule | None = None  # how ``due_at`` was worked out (``retry_rule``)


def retry_rule(day: date) -> DueRule:
    """When an unreached resident is tried again after an attempt on ``day``: office opening
    on the first working day after it (the next working morning, the day's calls made). Kept
    with the retry as its rule, so a retry planned on a provisional year is re-planned when
    the year is published (``FollowUp.replan``): given as a bare moment, it was never looked at
    again, 'provisional' for ever, and on a day the published schedule makes a holiday."""
    return DueRule("on_or_after", day + timedelta(days=1))


class FollowUp(RemembersCommands):
    """One planned contact with a resident, for one reason, by a clerk or a team."""

    @event("FollowUpScheduled")
    def __init__(self, id: UUID, reason: str, resident_id: UUID | None, due_at: datetime,
                 assigned_clerk: str | None, assigned_team: str | None, priority: str,
                 service_item: str | None, source: str, source_id: UUID | None,
                 meta: Meta, basis: str = Basis.OFFICIAL.value,
                 due_rule: dict[str, Any] | None = None, contact: bool = True) -> None:
        self.center_id: str = meta["center_id"]
        self.case_id: UUID | None = meta.get("case_id")
        self.reason = reason
        self.resident_id = resident_id
        self.service_item = service_item
        self.source = source
        self.contact = contact
        self.due_at = due_at
        self.assigned_clerk = assigned_clerk
        self.assigned_team = assigned_team
        # Every clerk it has been assigned to (``held``): a supervisor among them moving it
        # moves their own follow-up, which keeps its day (``reschedule``).
        self.held_by: list[str] = [assigned_clerk] if assigned_clerk is not None else []
        self.priority = priority
        self.status = "scheduled"
        self.overdue_at: datetime | None = None
        self.escalate_at: datetime | None = None
        self.escalated_to: str | None = None
        self.basis = basis
        self.due_rule = due_rule
        at = meta["occurred_at"]  # every command's meta has it (``meta_for``)
        self.planned_at: datetime = datetime.fromisoformat(at) if isinstance(at, str) else at
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "FollowUpScheduled", created=True)

    @property
    def next_fire_at(self) -> datetime | None:
        """When the scheduler next has something to do with this follow-up."""
        return {"scheduled": self.due_at, "due": self.overdue_at,
                "missed": self.escalate_at}.get(self.status)

    def check_open(self, what: str) -> None:
        if self.status not in OPEN:
            raise RuleViolated(f"cannot {what} a follow-up that is {self.status}",
                               status=self.status, rule="follow_up_status")

    # -- time passes ------------------------------------------------------------------------

    def advance(self, now: datetime, calendar: WorkingCalendar, escalate_after: int,
                supervisor: str, meta: Meta) -> list[str]:
        """Record every step whose moment has come (none early); returns the event types.

        Steps are recorded in order: one whose consequence lies past the calendar (the working
        day a FollowUpMissed escalates on, in a year it does not cover) raises
        ``CalendarOutOfRange`` with the steps before it recorded, to be kept."""
        fired: list[str] = []
        for _ in range(3):
            if self.status == "scheduled" and self.due_at <= now:
                overdue_at = end_of_due_day(calendar, self.due_at)
                self._due(due_at=self.due_at, overdue_at=overdue_at, meta=meta,
                          basis=calendar.basis_of(overdue_at).value)
                fired.append("FollowUpDue")
            elif self.status == "due" and self.overdue_at and self.overdue_at <= now:
                due_day = calendar.local_day(self.overdue_at)
                escalate_on = calendar.add_working_days(due_day, escalate_after)
                self._missed(due_at=self.due_at, escalate_at=calendar.opening_on(escalate_on),
                             meta=meta, basis=calendar.basis_of(escalate_on).value)
                fired.append("FollowUpMissed")
            elif self.status == "missed" and self.escalate_at and self.escalate_at <= now:
                self._escalated(escalated_to=supervisor,
                                overdue_working_days=self._overdue_days(calendar, now),
                                by_scheduler=True, reason="", meta=meta)
                fired.append("FollowUpEscalated")
            else:
                break
        return fired

    def _overdue_days(self, calendar: WorkingCalendar, now: datetime) -> int:
        due_day = calendar.local_day(self.overdue_at or self.due_at)
        return max(0, calendar.working_days_between(due_day, calendar.local_day(now)))

    @event("FollowUpDue")
    def _due(self, due_at: datetime, overdue_at: datetime, meta: Meta,
             basis: str = Basis.OFFICIAL.value) -> None:
        self.status = "due"
        self.overdue_at = overdue_at

    @event("FollowUpMissed")
    def _missed(self, due_at: datetime, escalate_at: datetime, meta: Meta,
                basis: str = Basis.OFFICIAL.value) -> None:
        self.status = "missed"
        self.escalate_at = escalate_at
        self.missed_by = self.assigned_clerk  # barred from moving it, even once handed on

    # -- staff ------------------------------------------------------------------------------

    @property
    def unreached_at(self) -> tuple[datetime, ...]:
        """When each attempt that did not reach the resident was made (as typed in; one typed
        in past the grace, the moment it is judged on)."""
        return getattr(self, "_unreached_at", ())

    @property
    def unreached(self) -> int:
        """Attempts so far that did not reach the resident (each tried again)."""
        return len(self.unreached_at)

    def working_day_due(self, calendar: WorkingCalendar) -> date | None:
        """The working day it is to be done on (``FollowUpCompleted.due_by``, the on-time
        rule's): once due, the day of the moment the scheduler misses it (``overdue_at``,
        worked out when it fell due, on the calendar then in force); before, as the scheduler
        will (``due_working_day``). Counted again at the completion on a calendar changed
        since it fell due (a Saturday due the law's Monday, a notice's make-up day), the
        completion was judged late on a day the scheduler never missed it."""
        overdue_at = self.__dict__.get("overdue_at")
        day = (calendar.local_day(overdue_at) if overdue_at is not None
               else due_working_day(calendar, self.due_at))
        kept = self.__dict__.get("on_time_by")  # staff's own move kept it (``reschedule``)
        if kept is None or day is None:
            return day
        try:
            # On the calendar in force: a kept day a notice since made a holiday (a
            # provisional year published) is judged by the next working day, as its due
            # moment would have been moved to had the clerk not moved it.
            kept = calendar.add_working_days(kept, 0)
        except CalendarOutOfRange:
            pass
        return min(day, kept)

    def check_attempt_day(self, calendar: WorkingCalendar, now: datetime,
                          min_gap: timedelta = ATTEMPT_MIN_GAP) -> Uncounted | None:
        """Why an unanswered attempt does not count, or None when it does. It counts once a
        day (``tried_today``): three calls in
        one morning (a clerk redialling, a double entry with a new key) used up every
        attempt, and the team took up a resident never tried on another day. Every day
        tried counts once, not only the last one typed in: an earlier day's call typed in
        late came between Tuesday's call and Tuesday's redial, and the redial counted.
        And at least ``min_gap`` from every attempt counted, before or after it
        (``tried_too_soon``): a call at 23:59 and a redial at 00:01 are on two days, and
        were two of the three attempts, two minutes apart. Such a call is recorded, not
        counted (``complete``): refused, the note typed with it was lost."""
        day_of = calendar.local_day
        day = day_of(now)
        if any(day_of(tried) == day for tried in self.unreached_at):
            return Uncounted("tried_today",
                             next_attempt_at=self.next_attempt_counts_at(calendar, now, min_gap))
        near = [tried for tried in self.unreached_at if _apart(now, tried) < min_gap]
        if near:
            return Uncounted("tried_too_soon",
                             next_attempt_at=self.next_attempt_counts_at(calendar, now, min_gap))
        return None

    def next_attempt_counts_at(self, calendar: WorkingCalendar, now: datetime,
                               min_gap: timedelta = ATTEMPT_MIN_GAP) -> datetime:
        """The first moment from ``now`` an unanswered attempt counts at
        (``check_attempt_day``): on a center day none was counted on, at least ``min_gap``
        from each one counted; never before the follow-up's own moment (a call made ahead
        of it). Not the due moment alone: a missed or escalated follow-up keeps its moment,
        days back, and a redial there was told the next call counted from it. The next
        center day starts at the calendar's midnight (``WorkingCalendar.next_day_start``;
        until December 2026 found by halving 26 hours down to the microsecond). The gap is
        real time, counted in UTC: two moments in one zone with daylight saving (Python's
        arithmetic on one ``ZoneInfo`` is wall-clock) made it an hour long or short across
        the change (New York on 1 November 2026, Santiago on 6 September 2026)."""
        day_of = calendar.local_day
        at = now
        while True:
            if any(day_of(tried) == day_of(at) for tried in self.unreached_at):
                at = calendar.next_day_start(at)
            elif near := [tried for tried in self.unreached_at if _apart(at, tried) < min_gap]:
                at = (max(map(_utc, near)) + min_gap).astimezone(now.tzinfo)
            else:
                return max(at, self.due_at, key=_utc)

    def attempt_counted_at(self, tried: datetime) -> datetime:
        """The moment an unanswered attempt counts on for the once-a-day rule: the moment it
        gives, never before the follow-up was planned. One dated a little before the planning
        (a counter's clock behind the planner's, ``check_attempt_moment``'s ``skew``) was made
        after it: counted on the counter's day, before midnight, a redial a minute later, past
        midnight on the same counter, was a second day tried, two of the three attempts made
        within a minute of each other."""
        planned_at = getattr(self, "planned_at", None)  # a snapshot from before it was kept
        return max(tried, planned_at) if planned_at is not None else tried

    def check_attempt_moment(self, calendar: WorkingCalendar, tried: datetime,
                             skew: timedelta = timedelta(0)) -> None:
        """An unanswered attempt made on a day before this follow-up was planned is no
        attempt at it (422 on ``occurred_at``): three calls typed in with last month's dates
        (another resident's log, a counter's clock gone wrong) handed a resident planned
        today to the team as unreachable at once, never called about it. By the center's
        day, not the moment: a planning moment from a counter whose clock runs a few minutes
        ahead does not refuse the call made right after it. Nor does a counter's clock a
        little behind the planner's across midnight (``skew``: the drift a counter's clock
        is allowed, ``OCCURRED_AT_MAX_FUTURE_S``): planned by the server at 00:00:10 on 1
        January, a call typed in at once by a counter reading 23:59:30 on 31 December was
        refused; it is a real call, counted on the planning's day (``attempt_counted_at``)."""
        planned_at = getattr(self, "planned_at", None)  # a snapshot from before it was kept
        day_of = calendar.local_day
        if (planned_at is not None and day_of(tried) < day_of(planned_at)
                and tried < planned_at - skew):
            raise InvalidCommand(
                "an unanswered attempt is made after its follow-up was planned: check the "
                "call's date", field="occurred_at", planned_at=planned_at.isoformat())

    def complete(self, outcome: str, channel: str, note: str, meta: Meta,
                 verdict: str | None = None,
                 retry: tuple[datetime, Basis] | tuple[datetime, Basis, DueRule] | None = None,
                 calendar: WorkingCalendar | None = None,
                 judged_at: datetime | None = None, skew: timedelta = timedelta(0),
                 min_gap: timedelta = ATTEMPT_MIN_GAP, due_by: date | None = None) -> None:
        """``retry``: when an unreachable resident is tried again (the next working morning,
        with the rule it was worked out by, ``retry_rule``, when given);
        before the last of ``UNREACHABLE_ATTEMPTS`` the follow-up is rescheduled there, not
        completed, when the attempt was by a channel that reaches them (``REACHING``); one
        already missed or escalated is not rescheduled: the attempt is recorded
        (``FollowUpRescheduled.stays``) and it stays missed or escalated, where it was.
        ``calendar``: the center's days (of a moment, and where the next one starts); such
        an attempt counts once a day
        (``check_attempt_day``). ``judged_at``: the moment its due day judges a backdated
        completion by (the service's clock less the grace, ``Moments.judged_at``), and the
        moment a backdated attempt counts on: calls typed in a week late, dated on three days,
        counted three days tried and handed the resident to the team at once. ``skew``:
        how far behind the planning moment a counter's clock may put an attempt
        (``check_attempt_moment``). ``min_gap``: the least time between two attempts that
        count (``check_attempt_day``). ``due_by``: the working day it was to be done on
        (``due_working_day``), recorded for the on-time rule."""
        self.check_open("complete")
        uncounted = None
        if outcome == "unreachable" and channel in REACHING and calendar is not None:
            self.check_attempt_moment(calendar, meta["occurred_at"], skew)
            uncounted = self.check_attempt_day(calendar, self.attempt_counted_at(
                judged_at or meta["occurred_at"]), min_gap)
        if verdict is not None and self.reason != Reason.POST_RESOLUTION_CHECK:
            raise InvalidCommand("the verdict is the resident's answer at a post-resolution "
                                 "check", field="verdict", reason=self.reason)
        if verdict is not None and outcome == "unreachable":
            raise InvalidCommand("an unreachable resident gave no verdict", field="verdict")
        if not self.contact and channel in REACHING:
            raise RuleViolated(
                f"{NO_CONTACT_REASON}: record the task as done with the channel "
                f"'{ContactChannel.NONE}' (or '{ContactChannel.COUNTER}' when they came in)",
                channel=channel, rule="no_contact")
        attempt = self.unreached + 1
        if uncounted is not None:
            # Another call the same day or within the gap: recorded with its note (``停机``,
            # ``空号``), not counted; the follow-up keeps its status, moment and attempts.
            said = f"unreachable: not counted ({uncounted.because})"
            self._rescheduled(due_at=self.due_at, assigned_clerk=self.assigned_clerk,
                              assigned_team=self.assigned_team,
                              reason=f"{said}: {note}" if note.strip() else said, meta=meta,
                              cause=RescheduleCause.UNREACHABLE.value,
                              previous_due_at=self.due_at, basis=self.basis,
                              due_rule=self.due_rule, judged_at=judged_at,
                              stays=self.status if self.status in ("missed", "escalated")
                              else None, counted=False,
                              not_counted_because=uncounted.because,
                              next_attempt_at=uncounted.next_attempt_at)
            return
        # Only an attempt to reach the resident where they are is tried again: a task done
        # from the case file (channel none) or a resident who came in (counter) is not an
        # unanswered call, and a second round would find no more than the first.
        if (outcome == "unreachable" and retry is not None and channel in REACHING
                and attempt < UNREACHABLE_ATTEMPTS):
            if self.status in ("missed", "escalated"):
                # Let go missed (or escalated): the call and its note are recorded, but the
                # follow-up stays where it is, on the supervisors' escalation worklist, with
                # its due moment and escalation; an unanswered call by whoever (its clerk, who
                # may not move it, included) is not the supervisor's decision to move it
                # (``check_not_own_missed``). Completed, or moved by a supervisor, it leaves.
                self._rescheduled(due_at=self.due_at, assigned_clerk=self.assigned_clerk,
                                  assigned_team=self.assigned_team,
                                  reason=unreached_reason(attempt, note), meta=meta,
                                  cause=RescheduleCause.UNREACHABLE.value,
                                  previous_due_at=self.due_at, basis=self.basis,
                                  due_rule=self.due_rule, judged_at=judged_at,
                                  stays=self.status)
                return
            due_at, basis, *rule = retry
            due_rule = rule[0].as_dict() if rule else None
            if due_at < self.due_at:
                # Called ahead of its moment: tried again at that moment, not made due (and
                # missed, escalated) earlier than planned for having been tried early.
                due_at, basis, due_rule = self.due_at, Basis(self.basis), self.due_rule
            self._rescheduled(due_at=due_at, assigned_clerk=self.assigned_clerk,
                              assigned_team=self.assigned_team,
                              reason=unreached_reason(attempt, note),
                              meta=meta, cause=RescheduleCause.UNREACHABLE.value,
                              previous_due_at=self.due_at, basis=basis.value,
                              due_rule=due_rule, judged_at=judged_at)
            return
        self._completed(outcome=outcome, channel=channel, note=note, meta=meta,
                        verdict=verdict, judged_at=judged_at, due_by=due_by)

    @event("FollowUpCompleted")
    def _completed(self, outcome: str, channel: str, note: str, meta: Meta,
                   verdict: str | None = None, judged_at: datetime | None = None,
                   due_by: date | None = None) -> None:
        self.status = "completed"
        self.outcome, self.channel = outcome, channel
        self._remember(meta, "FollowUpCompleted")

    def hand_over(self, handover: Handover, meta: Meta) -> FollowUp | None:
        """The follow-up the team takes up when this one just ended with the resident not
        reached at the last attempt (``UNREACHABLE_ATTEMPTS`` by a channel that reaches
        them), for a reason the center owes an answer on (``HANDED_OVER_WHEN_UNREACHABLE``);
        else None. A home visit (``Reason.HOME_VISIT``) for a resident who needs more care,
        else a task for the team leader (``Reason.RESIDENT_UNREACHABLE``); high priority,
        on the same case, for the same resident, from this follow-up (``source_id``)."""
        if (self.status != "completed" or getattr(self, "outcome", None) != "unreachable"
                or getattr(self, "channel", None) not in REACHING
                or self.unreached + 1 < UNREACHABLE_ATTEMPTS or not self.contact
                or self.resident_id is None
                or self.reason not in HANDED_OVER_WHEN_UNREACHABLE):
            return None
        visit = handover.more_care
        return FollowUp(
            id=handover_id(self.id),
            reason=(Reason.HOME_VISIT if visit else Reason.RESIDENT_UNREACHABLE).value,
            resident_id=self.resident_id, due_at=handover.due_at, assigned_clerk=None,
            assigned_team=handover.team if visit else handover.leader,
            priority=Priority.HIGH.value, service_item=self.service_item,
            source="followup:FollowUpCompleted", source_id=self.id,
            meta=meta, basis=handover.basis.value,
            due_rule=handover.due_rule.as_dict() if handover.due_rule else None, contact=True)

    def check_not_own_review(self, what: str, meta: Meta, served: bool) -> None:
        """403 ``own_bad_review``: a bad review's verification or rectification follow-up
        (``TEAMS_OWN``) worked by staff who served its case (``served``: opened it, took a
        step of it, had it handed to them). Any clerk of the center may complete a team's
        follow-up (no token names a team), so the clerk the review is about marked its
        verification done, or cancelled or moved it off the team's worklist, before anyone
        called the resident: the handover rule keeping them the team's held only the
        assignment."""
        if served and self.reason in TEAMS_OWN:
            raise OwnBadReview(
                f"a bad review's {self.reason} follow-up is not {what}d by staff who served "
                "the case (回访 is not the 承办人's): a colleague of the team does it",
                actor=meta.get("actor"), reason=self.reason)

    def check_not_own_missed(self, what: str, meta: Meta, by_supervisor: bool) -> None:
        """A follow-up let go missed (or escalated past) is not moved or cancelled by whoever
        let it go (403 ``own_missed_followup``): rescheduled or cancelled, it left the
        escalation worklist (the figures still count it missed). Done late, it is completed;
        a supervisor moves or cancels it.

        Who let it go is whom it was assigned to when it went missed or was escalated
        (``missed_by``), not its assignee now: the clerk it was missed by stays barred once
        the case is handed on to a team or a colleague (``reassign``), and the colleague it
        was handed to, who did not miss it, may move it. Nor a supervisor who is that clerk
        (``by_supervisor``: a supervisor also serves cases): their own missed follow-up moved
        off the supervisors' worklist by themselves was the self-approval another supervisor
        is there for (as ``Case.approves_extension``, feedback's ``self_decision``). One
        missed while a team had it (``missed_by`` None) is the supervisor's alone: a caller
        carries no team (neither sixstep's tokens nor the identity provider's claims name
        one), so the team's members cannot be told from the rest of the center, any of whom
        could otherwise take the team's miss off the list. A follow-up rebuilt without
        ``missed_by`` (none recorded: a snapshot taken before it was kept) is judged by its
        assignee now."""
        actor = meta.get("actor")
        if (self.status not in ("missed", "escalated") or actor is None
                or by_a_worker(actor)):  # the rules' own cancels (a resolution, an appeal)
            return
        missed_by = self.__dict__.get("missed_by", self.assigned_clerk)
        if actor == missed_by:
            decides = "another supervisor" if by_supervisor else "a supervisor"
            raise OwnMissedFollowUp(
                f"a {self.status} follow-up is not {what}d by the clerk it was missed by: "
                f"{decides} decides; done late, complete it", status=self.status, actor=actor)
        if missed_by is None and not by_supervisor:
            raise OwnMissedFollowUp(
                f"a {self.status} follow-up a team let go is not {what}d by a member of "
                "staff: a supervisor decides; done late, complete it", status=self.status,
                actor=actor)

    def is_own(self, actor: str | None) -> bool:
        """Whether ``actor`` is the clerk the follow-up is assigned to now."""
        return actor is not None and actor == self.assigned_clerk

    def was_held_by(self, actor: str | None) -> bool:
        """Whether ``actor`` is or was a clerk the follow-up was assigned to (first, now, or
        one who handed it on: as ``Case.is_own_case``). A follow-up rebuilt from a snapshot
        taken before it was kept knows its assignee now only."""
        return actor is not None and (actor == self.assigned_clerk
                                      or actor in self.__dict__.get("held_by", ()))

    def _hold(self, clerk: str | None) -> None:
        held = self.__dict__.get("held_by")
        if held is None:  # a snapshot taken before it was kept
            held = [self.assigned_clerk] if self.assigned_clerk is not None else []
        if clerk is not None and clerk not in held:
            held = [*held, clerk]
        self.held_by = held

    def reschedule(self, due_at: datetime, reason: str, assigned_clerk: str | None,
                   assigned_team: str | None, now: datetime, meta: Meta,
                   basis: Basis = Basis.OFFICIAL, due_rule: DueRule | None = None,
                   by_supervisor: bool = False,
                   calendar: WorkingCalendar | None = None) -> None:
        """Staff move it. Moved by anyone but a supervisor (its clerk pushing it to tomorrow
        on its due day, every day, so it is never missed), the working day it is judged on
        time against stays the one it had (``on_time_by``, the completion's ``due_by``:
        ``working_day_due`` on ``calendar``); a supervisor's move sets a new one, unless it
        is their own follow-up (assigned to them as it is moved: a supervisor serves cases
        too, and pushing their own check every day would otherwise never count late):
        another supervisor's move does. Moved earlier, the earlier day judges it."""
        self.check_open("reschedule")
        self.check_not_own_missed("reschedule", meta, by_supervisor)
        if due_at < now:
            raise InvalidCommand("a follow-up cannot be rescheduled into the past",
                                 field="due_at", now=now.isoformat())
        if assigned_clerk is None and assigned_team is None:
            assigned_clerk, assigned_team = self.assigned_clerk, self.assigned_team
        self.check_may_hand_on(assigned_clerk, assigned_team, meta, by_supervisor)
        sets_the_day = by_supervisor and not self.was_held_by(meta.get("actor"))
        on_time_by = (None if sets_the_day or calendar is None
                     else self.working_day_due(calendar))
        self._rescheduled(due_at=due_at, assigned_clerk=assigned_clerk,
                          assigned_team=assigned_team, reason=reason, meta=meta,
                          cause=RescheduleCause.STAFF.value, previous_due_at=self.due_at,
                          basis=basis.value,
                          due_rule=due_rule.as_dict() if due_rule is not None else None,
                          on_time_by=on_time_by)

    def replan(self, calendar: WorkingCalendar, now: datetime, meta: Meta) -> bool:
        """Work a due moment out again on the calendar in force; True when moved.

        Only a follow-up still waiting to fall due, whose moment was worked out (not given
        exactly) on a provisional year that is now official, or on official days that have
        since changed (a published day corrected, a year taken out of the holidays file).
        The new moment says its basis: one that still ends in a provisional year moves too
        when official days it counted over changed (a corrected 29 December under a count
        into the next, unpublished year), and a year withdrawn from the file is the law's
        again, provisional, not 'official' on days no schedule says any more (as
        ``Obligation.replan``). Never earlier than ``now``. A moment that does not move but
        whose year was published is confirmed: recorded once with the same moment and the new
        basis (``previous_due_at`` equal to ``due_at``), or the clerk and the resident would
        read "provisional" on a date no schedule can move any more; unchanged moment and
        basis record nothing (the timer stays as it is).
        """
        self.check_new_command(meta.get("causation_id"), "FollowUpRescheduled")
        if self.status in ("due", "missed", "escalated"):
            return self._confirm(calendar, meta)
        if self.status != "scheduled" or self.due_rule is None:
            return False
        planned = calendar.plan(DueRule.from_dict(self.due_rule))
        if planned.at <= now and self.due_at <= now:
            return False  # due either way: the scheduler fires it now
        due_at = max(planned.at, now)
        if due_at == self.due_at and planned.basis.value == self.basis:
            return False
        self._rescheduled(due_at=due_at, assigned_clerk=self.assigned_clerk,
                          assigned_team=self.assigned_team,
                          reason=RescheduleCause.CALENDAR_PUBLISHED.value, meta=meta,
                          cause=RescheduleCause.CALENDAR_PUBLISHED.value,
                          previous_due_at=self.due_at, basis=planned.basis.value,
                          due_rule=self.due_rule)
        return True

    def _confirm(self, calendar: WorkingCalendar, meta: Meta) -> bool:
        """Already due, missed or escalated: its moment did its work and never moves; when
        the calendar in force works its rule out to the same moment on another basis (a
        provisional day the published schedule keeps), that basis is recorded, once
        (``FollowUpDueConfirmed``), so the worklists and the board stop saying "provisional"
        on it. Another moment on the published schedule: judged on the day it had, it keeps
        its day and its basis, and says so once (``published_due_at``, the moment the
        schedule gives), so no reload reads it again; moving it would make a follow-up
        missed on the law's day due anew, and rewrite a closed month's figures. A notice that
        corrects the first is news again: giving the kept moment after all, its basis is
        confirmed official (nothing kept any more); another moment than the one said, that
        one is said."""
        if self.due_rule is None:
            return False
        said = self.__dict__.get("published_due_at")
        planned = calendar.plan(DueRule.from_dict(self.due_rule))
        if planned.at == self.due_at and planned.basis.value != self.basis:
            self._due_confirmed(due_at=self.due_at, basis=planned.basis.value,
                                cause=RescheduleCause.CALENDAR_PUBLISHED.value, meta=meta)
            return True
        if planned.at != self.due_at and planned.basis is Basis.OFFICIAL and planned.at != said:
            self._due_confirmed(due_at=self.due_at, basis=self.basis,
                                cause=RescheduleCause.CALENDAR_PUBLISHED.value, meta=meta,
                                published_due_at=planned.at)
            return True
        return False  # the same moment and basis; or a count still in an unpublished year

    @event("FollowUpDueConfirmed")
    def _due_confirmed(self, due_at: datetime, basis: str, cause: str, meta: Meta,
                       published_due_at: datetime | None = None) -> None:
        self.basis = basis
        self.published_due_at = published_due_at
        self._remember(meta, "FollowUpRescheduled")  # the re-planning's command

    def follow_deadline(self, due_at: datetime, basis: Basis, now: datetime,
                        meta: Meta,
                        cause: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED,
                        at_deadline: datetime | None = None,
                        published_at: datetime | None = None) -> bool:
        """A rectification's deadline was revised: this follow-up moves with it (never earlier
        than now); True when moved, or when only its basis changed (a deadline confirmed on
        its published year: the same moment, now official). Done follow-ups stay as they
        are. Already due, missed or escalated, it never moves: a deadline confirmed on the
        same moment (``at_deadline``) confirms its basis, once (``FollowUpDueConfirmed``),
        as ``replan`` does for a follow-up with a rule of its own; a deadline kept on its
        provisional day over the published schedule's (``published_at``: office opening on
        the published day) keeps it too, said once (``published_due_at``), as ``replan``'s."""
        self.check_new_command(meta.get("causation_id"), "FollowUpRescheduled")
        if self.status in ("due", "missed", "escalated"):
            said = self.__dict__.get("published_due_at")
            if at_deadline != self.due_at or (published_at is not None and published_at == said):
                return False
            if published_at is not None and published_at != self.due_at:
                self._due_confirmed(due_at=self.due_at, basis=self.basis, cause=cause.value,
                                    meta=meta, published_due_at=published_at)
                return True
            if basis.value == self.basis:
                return False
            self._due_confirmed(due_at=self.due_at, basis=basis.value, cause=cause.value,
                                meta=meta)
            return True
        due_at = max(due_at, now)
        if self.status != "scheduled" or (due_at == self.due_at
                                          and basis.value == self.basis):
            return False
        self._rescheduled(due_at=due_at, assigned_clerk=self.assigned_clerk,
                          assigned_team=self.assigned_team,
                          reason=cause.value, meta=meta, cause=cause.value,
                          previous_due_at=self.due_at, basis=basis.value, due_rule=None)
        return True

    @event("FollowUpRescheduled")
    def _rescheduled(self, due_at: datetime, assigned_clerk: str | None,
                     assigned_team: str | None, reason: str, meta: Meta,
                     cause: str = RescheduleCause.STAFF.value,
                     previous_due_at: datetime | None = None,
                     basis: str = Basis.OFFICIAL.value,
                     due_rule: dict[str, Any] | None = None,
                     judged_at: datetime | None = None, stays: str | None = None,
                     counted: bool = True, not_counted_because: str | None = None,
                     next_attempt_at: datetime | None = None,
                     on_time_by: date | None = None) -> None:
        if on_time_by is not None:  # staff's own move: judged on time against the day it had
            self.on_time_by = on_time_by
        elif cause == RescheduleCause.STAFF:  # a supervisor's (every move before it existed)
            self.on_time_by = None
        if not counted:  # an unanswered call recorded for its note, not an attempt
            self._remember(meta, "FollowUpCompleted")
            return
        if stays is None:  # else an unanswered attempt on a missed or escalated one: it stays
            self.status = "scheduled"
            self.due_at = due_at
            self.overdue_at = self.escalate_at = None
            self.basis, self.due_rule = basis, due_rule
            self.published_due_at = None  # a new moment: nothing kept any more
        if cause == RescheduleCause.STAFF and (assigned_clerk, assigned_team) != (
                self.assigned_clerk, self.assigned_team):  # moved by hand (``reassign``)
            self.moved_by_hand_at = meta["occurred_at"]  # the caller's clock: for display
            self._moving_by_hand = True  # its place in the log: ``modified_on`` below
        self._hold(assigned_clerk)
        self.assigned_clerk, self.assigned_team = assigned_clerk, assigned_team
        if cause == RescheduleCause.UNREACHABLE:
            # The staff's command was a completion: its key answers as one when retried.
            at = judged_at or meta["occurred_at"]  # every command's meta has it (``meta_for``)
            tried = datetime.fromisoformat(at) if isinstance(at, str) else at
            self._unreached_at = (*self.unreached_at, self.attempt_counted_at(tried))
            self._remember(meta, "FollowUpCompleted")
        else:
            self._remember(meta, "FollowUpRescheduled")

    def escalate(self, reason: str, supervisor: str, calendar: WorkingCalendar, now: datetime,
                 meta: Meta) -> None:
        self.check_open("escalate")
        if self.status == "escalated":
            raise RuleViolated("the follow-up is already escalated",
                               escalated_to=self.escalated_to, rule="escalated_once")
        self._escalated(escalated_to=supervisor,
                        overdue_working_days=self._overdue_days(calendar, now),
                        by_scheduler=False, reason=reason, meta=meta)

    @event("FollowUpEscalated")
    def _escalated(self, escalated_to: str, overdue_working_days: int, by_scheduler: bool,
                   reason: str, meta: Meta) -> None:
        if self.status != "missed":  # escalated before it was missed: its clerk passed it up
            self.missed_by = self.assigned_clerk
        self.status = "escalated"
        self.escalated_to = escalated_to
        self._remember(meta, "FollowUpEscalated")

    def cancel(self, reason: str, meta: Meta, by_supervisor: bool = False) -> bool:
        """Cancel while open; a no-op (False) when it already ended, so rules may re-run.
        Staff's: not a missed one by its own clerk (``check_not_own_missed``), and one
        assigned to a clerk only by that clerk or a supervisor (``check_may_cancel``)."""
        if self.status not in OPEN:
            return False
        self.check_not_own_missed("cancel", meta, by_supervisor)
        self.check_may_cancel(meta, by_supervisor)
        _record_cancelled(self, {"reason": reason, "meta": meta})  # self._cancelled(...)
        return True

    def check_may_hand_on(self, assigned_clerk: str | None, assigned_team: str | None,
                          meta: Meta, by_supervisor: bool) -> None:
        """403 ``forbidden_assignee``: a follow-up assigned to a clerk given to someone else
        (another clerk, a team) by a staff move not a supervisor's. Moved to a team, anyone
        cancelled it counted nowhere, its clerk included; taken by a colleague, the colleague
        cancelled it as theirs: the two steps around ``check_may_cancel``. Its case's
        handover (``reassign``) moves it to the case's new owner; a team's follow-up may be
        taken by a clerk."""
        if (by_supervisor or self.assigned_clerk is None
                or (assigned_clerk, assigned_team) == (self.assigned_clerk, self.assigned_team)):
            return
        raise NotTheAssignee(
            "a follow-up assigned to a clerk changes hands through its case's handover or a "
            "supervisor: covering for them, complete it", assigned_clerk=self.assigned_clerk,
            actor=meta.get("actor"))

    def check_may_cancel(self, meta: Meta, by_supervisor: bool) -> None:
        """403 ``forbidden_assignee``: a follow-up assigned to a clerk, cancelled by another
        clerk (since December 2026). The assignee's own cancelling is counted
        (``followups_cancelled_by_assignee``), a supervisor's is the center's decision; a
        colleague's counted nowhere, so a clerk could have a colleague cancel the check they
        were about to miss. One assigned to a team (or to nobody) is cancelled by a
        supervisor only (since a later December 2026 release): no token names a team, so
        its members cannot be told from the rest of the center, and the event says no role,
        so a clerk's cancelling could be counted neither as the assignee's nor apart from a
        supervisor's; any clerk of the center still completes it. The rules' own cancels (a
        resolution, an appeal, an erasure) are not staff's."""
        actor = meta.get("actor")
        if by_supervisor or actor is None or by_a_worker(actor) or self.is_own(actor):
            return
        if self.assigned_clerk is None:
            raise NotTheAssignee(
                "a follow-up assigned to a team is cancelled by a supervisor: a member of "
                "the team completes it", assigned_team=self.assigned_team, actor=actor)
        raise NotTheAssignee(
            "a follow-up assigned to a clerk is cancelled by that clerk or a supervisor: "
            "covering for them, complete it", assigned_clerk=self.assigned_clerk, actor=actor)

    @event("FollowUpCancelled")
    def _cancelled(self, reason: str, meta: Meta) -> None:
        self.status = "cancelled"
        self._remember(meta, "FollowUpCancelled")

    def respect(self, consent: Consent, meta: Meta) -> str | None:
        """Bring an open follow-up in line with what the resident agreed to: cancelled (erased;
        outreach without consent) or made a task without contact. Returns the event recorded,
        or None when it already conforms (or has ended). One that names no resident is no
        one's, unless planned by hand naming its case alone before the API took the case's
        resident for it (``source`` api): then ``consent`` is the case's resident's."""
        if self.status not in OPEN or (self.resident_id is None
                                       and getattr(self, "source", None) != "api"):
            return None
        allowed = consent_allows(self.reason, consent)
        if allowed is None:
            self._cancelled(reason=ERASED_REASON if consent.erased else NO_CONTACT_REASON,
                            meta=meta)
            return "FollowUpCancelled"
        if self.contact and not allowed:
            self._contact_withdrawn(reason=NO_CONTACT_REASON, meta=meta)
            return "FollowUpContactWithdrawn"
        return None

    @event("FollowUpContactWithdrawn")
    def _contact_withdrawn(self, reason: str, meta: Meta) -> None:
        self.contact = False
        self._remember(meta, "FollowUpContactWithdrawn")

    def prioritise(self, meta: Meta) -> bool:
        """High priority from now on, its case having become urgent; nothing (False) when it
        is high already or has ended, so a rule may run again."""
        if self.status not in OPEN or self.priority == "high":
            return False
        self._prioritised(priority="high", reason="case_urgent", meta=meta)
        return True

    def check_early(self, calendar: WorkingCalendar, working_days: int, now: datetime,
                    meta: Meta) -> list[str]:
        """The resident turned out to need more care (intake's ``CareNeedChanged``) after the
        resolution this post-resolution check follows: checked on early, as if it had been
        known then. Still waiting, its moment is worked out again ``working_days``
        (``followup_early_check_working_days``) from the resolution's day (its ``due_rule``),
        never earlier than ``now`` (past already: due at once), when that is earlier than
        planned; open, it is high priority. A check already as early, moved by staff (no
        rule kept), or ended stays as it is. Returns the events recorded (none: a rule may
        run again; nor again for the same ``CareNeedChanged``, the command's key)."""
        if meta.get("causation_id") in self.__dict__.get("commands", {}):
            return []  # this flag was applied here already (a re-run after a crash)
        if self.reason != Reason.POST_RESOLUTION_CHECK or self.status not in OPEN:
            return []
        recorded: list[str] = []
        if self.status == "scheduled" and self.due_rule is not None:
            rule = DueRule.from_dict(self.due_rule)
            if rule.direction == "on_or_after" and rule.working_days > working_days:
                early = DueRule(rule.direction, rule.day, working_days, rule.not_before)
                planned = calendar.plan(early)
                due_at = max(planned.at, now)
                if due_at < self.due_at:
                    self._rescheduled(due_at=due_at, assigned_clerk=self.assigned_clerk,
                                      assigned_team=self.assigned_team,
                                      reason=RescheduleCause.MORE_CARE.value, meta=meta,
                                      cause=RescheduleCause.MORE_CARE.value,
                                      previous_due_at=self.due_at, basis=planned.basis.value,
                                      due_rule=early.as_dict())
                    recorded.append("FollowUpRescheduled")
        if self.priority != Priority.HIGH:
            self._prioritised(priority=Priority.HIGH.value, reason="more_care", meta=meta)
            recorded.append("FollowUpPrioritised")
        return recorded

    @event("FollowUpPrioritised")
    def _prioritised(self, priority: str, reason: str, meta: Meta) -> None:
        self.priority = priority
        self._remember(meta, "FollowUpPrioritised")

    def reassign(self, assigned_clerk: str | None, assigned_team: str | None, reason: str,
                 meta: Meta, case_id: UUID | None = None,
                 unless_moved_since: datetime | None = None) -> bool:
        """Its case was handed over: an open follow-up goes to the new owner (its time and
        state unchanged). ``case_id``: its plan step was linked to that case, whose follow-up
        it is from now on (on the worklist's row), also when its owner stays. False (nothing
        recorded) when it ended, or is theirs already and of that case.
        ``unless_moved_since``: staff who moved it by hand (a reschedule to someone else)
        recorded at or after that moment (the link's ``recorded_at``) keep it where they put
        it: a link applied late (the upgrade sweep of links the old rules ignored, the rules
        behind) only names its case. Both in the log's order (when each was recorded), never
        by ``occurred_at``: a caller's clock behind or ahead (a move typed in with the
        moment it was decided, a link backdated from the paper register) reordered them."""
        self.check_new_command(meta.get("causation_id"), "FollowUpReassigned")
        by_hand = self.__dict__.get("moved_by_hand_recorded_at")
        if unless_moved_since is not None and by_hand is not None and (
                by_hand >= unless_moved_since):
            assigned_clerk, assigned_team = self.assigned_clerk, self.assigned_team
        linked = case_id is not None and case_id != self.case_of_now()
        if self.status not in OPEN or ((assigned_clerk, assigned_team) == (
                self.assigned_clerk, self.assigned_team) and not linked):
            return False
        self._reassigned(assigned_clerk=assigned_clerk, assigned_team=assigned_team,
                         reason=reason, case_id=case_id if linked else None, meta=meta)
        return True

    @property
    def modified_on(self) -> datetime:
        return self._modified_on

    @modified_on.setter
    def modified_on(self, modified_on: datetime) -> None:
        """Set by eventsourcing after each event is applied, to the event's ``timestamp`` (its
        ``recorded_at``): a move by hand (``_rescheduled``) keeps it as its place in the log
        (``moved_by_hand_recorded_at``, for ``reassign``), which the event's body, applied
        before, cannot see. Replayed from the store, it is the stored event's."""
        self._modified_on = modified_on
        if self.__dict__.pop("_moving_by_hand", False):
            self.moved_by_hand_recorded_at = modified_on

    def case_of_now(self) -> UUID | None:
        """Its case: the one a later link gave it (``FollowUpReassigned.case_id``), else the one
        it was planned for (the envelope's, which its events keep)."""
        return self.__dict__.get("linked_case_id") or getattr(self, "case_id", None)

    @event("FollowUpReassigned")
    def _reassigned(self, assigned_clerk: str | None, assigned_team: str | None, reason: str,
                    meta: Meta, case_id: UUID | None = None) -> None:
        self._hold(assigned_clerk)
        self.assigned_clerk, self.assigned_team = assigned_clerk, assigned_team
        if case_id is not None:
            self.linked_case_id = case_id
        self._remember(meta, "FollowUpReassigned")


_record_cancelled = recording(FollowUp, "_cancelled")
"""``follow_up._cancelled(reason=..., meta=...)``, the same event without the library's generic
call (``shared.kernel.creation.recording``): the rules cancel each lapsed follow-up they plan."""


class Obligation(RemembersCommands):
    """A recurring obligation (e.g. monthly reimbursement) that follow-up watches.

    Periods fall on ``first_due_on`` moved by whole cadence months (day clamped to month end,
    never drifting). The current period is ``next_due_on``; it is *missed* at ``missed_at``
    (see ``obligation_missed_at``) unless a fulfilment was recorded before. Watching starts
    at the first period not already missed when declared (``first_watched_period``).
    """

    @event("ObligationWatched")
    def __init__(self, id: UUID, obligation_id: UUID, resident_id: UUID, cadence: str,
                 next_due_on: date, missed_at: datetime, assigned_clerk: str | None,
                 service_item: str | None, meta: Meta,
                 basis: str = Basis.OFFICIAL.value, first_due_on: date | None = None,
                 period: int = 0) -> None:
        self.center_id: str = meta["center_id"]
        self.case_id: UUID | None = meta.get("case_id")
        self.obligation_id = obligation_id
        self.resident_id = resident_id
        self.cadence = cadence
        # The periods' anchor, as declared (``next_due_on`` is the first watched period: see
        # ``first_watched_period``); ``period``: its index.
        self.first_due_on = first_due_on or next_due_on
        self.period = period
        self.next_due_on = next_due_on
        self.missed_at: datetime | None = missed_at
        self.assigned_clerk = assigned_clerk
        self.service_item = service_item
        self.active = True
        self.missed: set[date] = set()
        self.run_missed = 0  # periods missed in a row (a period fulfilled in time ends a run)
        self.run_start: date | None = None  # the first period of the current run
        self.basis = basis
        self.commands = {}
        self._remember(meta, "ObligationWatched", created=True)

    @property
    def next_fire_at(self) -> datetime | None:
        return self.missed_at if self.active else None

    def _period_on(self, index: int) -> date:
        return add_months(self.first_due_on, index * CADENCE_MONTHS[self.cadence])

    def fulfil(self, period_due_on: date | None, fulfilled_on: date, calendar: WorkingCalendar,
               grace: int, meta: Meta, judged_at: datetime | None = None) -> None:
        """Record a period fulfilled. ``late`` is judged on the deadline (the current period's
        ``missed_at``) against the fulfilment: the moment the post is judged by (``judged_at``
        of a backdated one, ``Moments.judged_at``; else its ``occurred_at``) and the day it
        gives. Not on whether the scheduler saw the period missed: one fulfilled after its
        grace while the scheduler was down is late all the same (and is not missed after)."""
        if not self.active:
            raise RuleViolated("the obligation is no longer watched", rule="obligation_ended")
        period = period_due_on or self.next_due_on
        if period == self.next_due_on:
            following = self._period_on(self.period + 1)
            missed_at, basis = obligation_missed_at(calendar, following, grace)
            judged = judged_at or meta["occurred_at"]
            if isinstance(judged, str):
                judged = datetime.fromisoformat(judged)
            deadline = self.missed_at
            late = deadline is not None and (
                judged > deadline or fulfilled_on > calendar.local_day(deadline))
            self._fulfilled(period_due_on=period, fulfilled_on=fulfilled_on, late=late,
                            next_due_on=following, missed_at=missed_at, meta=meta,
                            basis=basis.value)
        elif period in self.missed:
            self._fulfilled(period_due_on=period, fulfilled_on=fulfilled_on, late=True,
                            next_due_on=self.next_due_on, missed_at=self.missed_at, meta=meta,
                            basis=self.basis)
        else:
            raise InvalidCommand(
                f"{period} is neither the current period ({self.next_due_on}) nor a missed one",
                field="period_due_on", current=self.next_due_on.isoformat())

    @event("ObligationFulfilled")
    def _fulfilled(self, period_due_on: date, fulfilled_on: date, late: bool, next_due_on: date,
                   missed_at: datetime, meta: Meta, basis: str = Basis.OFFICIAL.value) -> None:
        if period_due_on != self.next_due_on:  # a period missed before (late)
            self.missed.discard(period_due_on)
        else:  # the current one, in time, or late (its grace over, never seen missed)
            if late:  # in the run, as missed then paid late: not ended by it
                if not getattr(self, "run_missed", 0):
                    self.run_start = period_due_on
                self.run_missed = getattr(self, "run_missed", 0) + 1
            else:
                self.run_missed, self.run_start = 0, None
            self.period += 1
            self.next_due_on, self.missed_at, self.basis = next_due_on, missed_at, basis
        self._remember(meta, "ObligationFulfilled")

    def miss(self, now: datetime, calendar: WorkingCalendar, grace: int,
             meta: Meta) -> list[tuple[date, UUID, datetime]]:
        """Every period whose grace ended by ``now`` is missed: (period, follow-up id, when).

        A period whose following one's grace ends past the calendar is not recorded yet
        (``CalendarOutOfRange``, when it is the first); the periods before it are."""
        out: list[tuple[date, UUID, datetime]] = []
        for _ in range(60):  # five years of monthly periods per call at most
            if not (self.active and self.missed_at is not None and self.missed_at <= now):
                break
            period, when = self.next_due_on, self.missed_at
            follow_up_id = follow_up_id_for("obligation-missed", f"{self.obligation_id}:{period}")
            following = self._period_on(self.period + 1)
            try:
                missed_at, basis = obligation_missed_at(calendar, following, grace)
            except CalendarOutOfRange:
                if not out:
                    raise
                break  # the next call raises: the scheduler says what waits for the calendar
            self._missed(period_due_on=period, follow_up_id=follow_up_id, next_due_on=following,
                         missed_at=missed_at, meta=meta, basis=basis.value)
            out.append((period, follow_up_id, when))
        return out

    @event("ObligationMissed")
    def _missed(self, period_due_on: date, follow_up_id: UUID, next_due_on: date,
                missed_at: datetime, meta: Meta, basis: str = Basis.OFFICIAL.value) -> None:
        self.missed.add(period_due_on)
        if not getattr(self, "run_missed", 0):
            self.run_start = period_due_on
        self.run_missed = getattr(self, "run_missed", 0) + 1
        self.period += 1
        self.next_due_on, self.missed_at, self.basis = next_due_on, missed_at, basis

    def replan(self, calendar: WorkingCalendar, grace: int, now: datetime, meta: Meta) -> bool:
        """Work the current period's "missed at" moment out again on the calendar in force;
        True when it moved.

        Its grace was counted on the calendar of that time: a provisional year since published,
        or official days since changed. A moment that does not move records nothing; the new
        one is never earlier than ``now`` (a grace the new days end already is missed at the
        next tick), and a period already missed either way is left to the scheduler. A moment
        that stays while its basis changes (its year published with the same days) is
        recorded once, confirmed, with the new basis.
        """
        self.check_new_command(meta.get("causation_id"), "ObligationReplanned")
        if not self.active or self.missed_at is None:
            return False
        missed_at, basis = obligation_missed_at(calendar, self.next_due_on, grace)
        if missed_at <= now and self.missed_at <= now:
            return False  # missed either way: the scheduler records it now
        missed_at = max(missed_at, now)
        if missed_at == self.missed_at and basis.value == self.basis:
            return False
        self._replanned(next_due_on=self.next_due_on, missed_at=missed_at,
                        previous_missed_at=self.missed_at,
                        cause=RescheduleCause.CALENDAR_PUBLISHED.value, basis=basis.value,
                        meta=meta)
        return True

    @event("ObligationReplanned")
    def _replanned(self, next_due_on: date, missed_at: datetime, previous_missed_at: datetime,
                   cause: str, meta: Meta, basis: str = Basis.OFFICIAL.value) -> None:
        self.missed_at, self.basis = missed_at, basis
        self._remember(meta, "ObligationReplanned")

    def home_visit_id(self, more_care: bool) -> UUID | None:
        """The home visit the current run of missed periods calls for (one per run), or None
        while the run is shorter than ``home_visit_after``."""
        run = getattr(self, "run_missed", 0)
        if run == 0 or run < home_visit_after(more_care):
            return None
        return follow_up_id_for("home-visit", f"{self.obligation_id}:{self.run_start}")

    def end(self, reason: str, meta: Meta) -> None:
        if not self.active:
            raise RuleViolated("the obligation is no longer watched", rule="obligation_ended")
        self._ended(reason=reason, meta=meta)

    @event("ObligationEnded")
    def _ended(self, reason: str, meta: Meta) -> None:
        self.active = False
        self._remember(meta, "ObligationEnded")

    def respect(self, consent: Consent, meta: Meta) -> str | None:
        """An erased resident's obligation is no longer watched (a missed period would plan a
        contact); without consent to contact it is still watched, and a missed period becomes
        a task (``consent_allows``)."""
        if not (self.active and consent.erased):
            return None
        self._ended(reason=ERASED_REASON, meta=meta)
        return "ObligationEnded"


class PolicyChange(RemembersCommands):
    """A published policy change; its fan-out reaches each affected resident once."""

    @event("PolicyChangePublished")
    def __init__(self, id: UUID, service_items: list[str], summary: str, effective_on: date,
                 all_centers: bool, outreach_due_at: datetime, meta: Meta,
                 basis: str = Basis.OFFICIAL.value, due_rule: dict[str, Any] | None = None,
                 scope: str = PublisherScope.CENTER.value) -> None:
        self.center_id: str = meta["center_id"]
        self.service_items = service_items
        self.effective_on = effective_on
        self.all_centers = all_centers
        self.scope = scope
        self.outreach_due_at = outreach_due_at
        self.basis = basis
        self.due_rule = due_rule
        self.residents: int | None = None
        self.commands = {}
        self._remember(meta, "PolicyChangePublished", created=True)

    def finish_fan_out(self, residents: int, meta: Meta) -> None:
        if self.residents is None:
            self._fanned_out(residents=residents, meta=meta)

    @event("PolicyChangeFannedOut")
    def _fanned_out(self, residents: int, meta: Meta) -> None:
        self.residents = residents



# -- 帮办: help tasks; 派单 / 回复 / 督办: referrals ---------------------------------------------

HELP_ACTIVE = ("open", "accepted", "in_progress")
#: Why a help task is closed: its case was resolved (``HelpTaskClosed``).
CASE_RESOLVED = "case_resolved"
#: Every status a help task can have (the counter's page names each).
HELP_STATUSES = (*HELP_ACTIVE, "done", "handed_back", "closed")


class NotTheOwner(CommandError):
    """Only the help task's owner (or a supervisor) moves it along."""

    status = 403
    code = "forbidden_owner"


#: How a help task's or a referral's deadline was counted, kept in the store beside its
#: ``counted_from`` and ``working_days`` (``counted_as``): ``deadline_day``, a day off as the
#: next working day, since stop 51; None (an event from before): from the day after the day.
COUNTED_AS = "deadline_day"


def working_deadline(calendar: WorkingCalendar, day: date, working_days: int,
                     counted_as: str | None = COUNTED_AS) -> tuple[datetime, Basis]:
    """Office closing on the ``working_days``-th working day after ``day`` (a help task's
    deadline, a referral's reply deadline), and the basis it was worked out on: counted as
    every deadline is (``WorkingCalendar.deadline_day``), a day off as the next working day.
    Counted from the day after ``day`` until stop 51, a task raised on Sunday 20 December
    2026 with 3 days was due Wednesday 23 (the Sunday's day after, Monday, counted as the
    first of three), a rectification opened on the same Sunday Thursday 24. A deadline
    counted so before (``counted_as`` None) is counted again as it was counted then: a
    re-planning moves a deadline for the calendar's days, never for the rule's change (until
    redteam104 the first start after stop 51 moved such a provisional task raised on a day
    off a working day later, ``calendar_published`` with nothing published)."""
    due = (calendar.deadline_day(day, working_days) if counted_as == COUNTED_AS
           else calendar.add_working_days(day + timedelta(days=1), working_days - 1))
    return calendar.closing_on(due), calendar.basis_of(day, due)


def counted_from(calendar: WorkingCalendar, occurred_at: datetime, known_at: datetime,
                 lapse_after: timedelta, recorded_at: datetime | None = None) -> date:
    """The day a help task's or a referral's working days count from: the action's day, or
    the day the rule learnt of it (``known_at``: seconds after the post, live) when later:
    the counter page's offline queue sends a post within the 72 h grace that keeps the
    action's moment. Counted from the action's day, an escalation said on Thursday and sent
    on Sunday gave its colleague two working days of three (one of three, sent on Monday), and
    a referral's unit lost as many. Learnt of more than ``lapse_after`` later (a follow-up
    service reading a long history from scratch): the action's day, as the deadline was.
    Learnt late is measured from when the post was stored (``recorded_at``, when given): a
    slip typed in during a follow-up outage (``occurred_at`` its judged moment, the grace
    before the post) was measured 72 h longer than a post said at that moment, and past the
    window it was overdue on arrival while that one counted from today."""
    if known_at - max(occurred_at, recorded_at or occurred_at) > lapse_after:
        return calendar.local_day(occurred_at)
    return max(calendar.local_day(occurred_at), calendar.local_day(known_at))


@dataclass(frozen=True)
class Count:
    """How a ``working_deadline`` was counted (``working_days`` after ``counted_from``), kept
    so that it can be counted again when the calendar changes."""

    counted_from: date
    working_days: int
    counted_as: str | None = COUNTED_AS  # None: counted from the day after, before stop 51

    @classmethod
    def of(cls, counted_from: date | str | None, working_days: int | None,
           counted_as: str | None = COUNTED_AS) -> Count | None:
        """None for an event from before the count was kept."""
        if counted_from is None or working_days is None:
            return None
        day = (date.fromisoformat(counted_from) if isinstance(counted_from, str)
               else counted_from)
        return cls(day, int(working_days), counted_as)

    def again(self, calendar: WorkingCalendar, at: datetime, basis: str | None, now: datetime,
              settled: bool = False, said: datetime | None = None) -> Recounted | None:
        """The deadline counted again on ``calendar`` and its basis, when it differs from
        ``at`` (or only its basis from ``basis``); None when nothing is to be recorded: the
        same moment and basis, or missed on both counts at different moments (the
        scheduler's: the moment it was missed at stays, with its basis). Missed on both
        counts at the same moment, only its basis is news: a provisional deadline the
        published schedule gives too is confirmed official, as one still to come. Never
        earlier than ``now``. ``settled``: the deadline did its work (a referral chased, a
        task escalated): never moved; only its basis is confirmed when the count gives the
        same moment, so the board does not say "provisional" for ever on a day the published
        schedule keeps. Another moment on the published schedule: judged on the law's day, it
        keeps its moment and basis, and says so once (``Recounted.published_at``, the moment
        the published count gives), so no reload reads it again; None once said (``said``:
        that moment). A notice that corrects the first is news again: giving the law's day
        after all, the basis is confirmed official (nothing kept any more); another day than
        the one said, that day is said."""
        due_at, new_basis = working_deadline(calendar, self.counted_from, self.working_days,
                                             self.counted_as)
        if settled:
            if due_at == at and new_basis.value != basis:
                return Recounted(at, new_basis)
            if due_at != at and new_basis is Basis.OFFICIAL and due_at != said:
                return Recounted(at, Basis(basis or Basis.PROVISIONAL.value), due_at)
            return None  # the same moment and basis; or a count still in an unpublished year
        if due_at <= now and at <= now:
            if due_at != at:
                return None
        else:
            due_at = max(due_at, now)
        if due_at == at and new_basis.value == basis:
            return None
        return Recounted(due_at, new_basis)


class Recounted(NamedTuple):
    """What ``Count.again`` gives to record: the deadline (``at``) and its basis; and, for one
    kept on the law's day over the published schedule's (a task escalated, a referral chased
    on it), the moment the published count gives (``published_at``; None: moved or
    confirmed)."""

    at: datetime
    basis: Basis
    published_at: datetime | None = None


def recount(aggregate: RemembersCommands, kind: str, at: datetime, calendar: WorkingCalendar,
            now: datetime, meta: Meta, *, waiting: bool, settled: bool = False,
            kept: datetime | None = None) -> Recounted | None:
    """A help task's or a referral's deadline ``at`` counted again (``Count.again``) when
    it is still ``waiting`` (or only confirmed, when ``settled``: chased, escalated) and its
    count was kept; None: nothing to record, also for a settled one ``kept`` on its day over
    the published schedule's whose count still gives the moment said then (``kept``). A
    replay of the re-planning's key answers as the first time (``check_new_command``)."""
    aggregate.check_new_command(meta.get("causation_id"), kind)
    count = Count.of(getattr(aggregate, "counted_from", None),
                     getattr(aggregate, "working_days", None),
                     aggregate.__dict__.get("counted_as"))
    if not (waiting or settled) or count is None:
        return None
    return count.again(calendar, at, getattr(aggregate, "basis", None), now,
                       settled=settled and not waiting, said=kept)


def referral_id_for(action_event_id: UUID) -> UUID:
    """One referral per referral action, however often its event is applied."""
    return follow_up_id_for("referral", action_event_id)


def referral_overdue_follow_up_id(referral_id: UUID, round_: int = 0) -> UUID:
    """The 督办 follow-up of a referral: one per round of chasing (``round_`` 0: as sent;
    1, 2 ...: chased again after its case was reopened, ``ReferralReopened``)."""
    if round_ == 0:
        return follow_up_id_for("referral-overdue", referral_id)
    return follow_up_id_for("referral-overdue", f"{referral_id}:{round_}")


class HelpTask(RemembersCommands):
    """帮办: an escalation at the counter, as a task with an owner (a named colleague, or the
    supervisor team), a deadline and a status: open -> accepted -> in_progress -> done, or
    handed_back (with a reason) at any point before done, or closed (no longer needed) when
    its case is resolved first. When it is neither done nor handed back by its deadline the
    scheduler escalates it to the supervisor team (once), as overdue follow-ups are; its
    status stays what it was."""

    @event("HelpTaskOpened")
    def __init__(self, id: UUID, owner_clerk: str | None, owner_team: str | None,
                 requested_by: str, deadline_at: datetime, source_id: UUID,
                 service_item: str | None, meta: Meta,
                 basis: str = Basis.OFFICIAL.value, counted_from: date | None = None,
                 working_days: int | None = None, counted_as: str | None = None) -> None:
        self.center_id: str = meta["center_id"]
        self.case_id: UUID | None = meta.get("case_id")
        self.counted_as = counted_as  # store only; None: before stop 51 (``working_deadline``)
        self.owner_clerk = owner_clerk
        self.owner_team = owner_team
        self.requested_by = requested_by
        self.deadline_at = deadline_at
        self.basis = basis
        self.counted_from, self.working_days = counted_from, working_days
        self.status = "open"
        self.escalated_to: str | None = None
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "HelpTaskOpened", created=True)

    @property
    def next_fire_at(self) -> datetime | None:
        return (self.deadline_at if self.status in HELP_ACTIVE and self.escalated_to is None
                else None)

    def check_owner(self, caller: str, supervisor: bool) -> None:
        """The named colleague, or any supervisor (a task of the supervisor team is theirs)."""
        if supervisor or (self.owner_clerk is not None and caller == self.owner_clerk):
            return
        raise NotTheOwner("only the help task's owner or a supervisor moves it along",
                          owner_clerk=self.owner_clerk, owner_team=self.owner_team)

    def _check(self, what: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise RuleViolated(f"cannot {what} a help task that is {self.status}",
                               status=self.status, rule="help_task_status")

    def accept(self, meta: Meta) -> None:
        self._check("accept", ("open",))
        self._accepted(meta=meta)

    @event("HelpTaskAccepted")
    def _accepted(self, meta: Meta) -> None:
        self.status = "accepted"
        self._remember(meta, "HelpTaskAccepted")

    def start(self, meta: Meta) -> None:
        self._check("start", ("open", "accepted"))
        self._started(meta=meta)

    @event("HelpTaskStarted")
    def _started(self, meta: Meta) -> None:
        self.status = "in_progress"
        self._remember(meta, "HelpTaskStarted")

    def finish(self, note: str, meta: Meta) -> None:
        self._check("finish", HELP_ACTIVE)
        self._done(note=note, meta=meta)

    @event("HelpTaskDone")
    def _done(self, note: str, meta: Meta) -> None:
        self.status = "done"
        self._remember(meta, "HelpTaskDone")

    def hand_back(self, reason: str, meta: Meta) -> None:
        self._check("hand back", HELP_ACTIVE)
        if not reason.strip():
            raise InvalidCommand("say why the task is handed back", field="reason")
        self._handed_back(reason=reason, meta=meta)

    @event("HelpTaskHandedBack")
    def _handed_back(self, reason: str, meta: Meta) -> None:
        self.status = "handed_back"
        self._remember(meta, "HelpTaskHandedBack")

    def close_as_not_needed(self, meta: Meta, resolved_at: datetime | None = None,
                            calendar: WorkingCalendar | None = None,
                            supervisor: str | None = None) -> bool:
        """Its case was resolved: a task still open, accepted or in progress is closed (True);
        one done or handed back stays so. Idempotent by nature: once closed, nothing more.

        Not one escalated, or past its deadline at the resolution (``resolved_at``: its
        moment, a backdated one's judged moment): resolving the case took an overdue 帮办 off
        the board's count and the supervisors' list without them. It stays open, escalated
        to ``supervisor`` now when the scheduler has not yet (on ``calendar``), for its owner
        to finish (done late) or a supervisor to finish or hand back."""
        if self.status not in HELP_ACTIVE or self.escalated_to is not None:
            return False
        if resolved_at is not None and self.deadline_at <= resolved_at:
            if calendar is not None and supervisor is not None:
                self.advance(resolved_at, calendar, supervisor, meta)
            return False
        self._closed(reason=CASE_RESOLVED, meta=meta)
        return True

    @event("HelpTaskClosed")
    def _closed(self, reason: str, meta: Meta) -> None:
        self.status = "closed"

    def advance(self, now: datetime, calendar: WorkingCalendar, supervisor: str,
                meta: Meta, case_resolved: bool = False) -> list[str]:
        """Past its deadline and still not done: escalated to the supervisor team, once; or,
        its case known resolved (``case_resolved``: a task the rules left open), closed."""
        if self.status in HELP_ACTIVE and case_resolved and self.deadline_at <= now:
            self.close_as_not_needed(meta)
            return ["HelpTaskClosed"]
        if (self.status not in HELP_ACTIVE or self.escalated_to is not None
                or self.deadline_at > now):
            return []
        days = calendar.working_days_between(calendar.local_day(self.deadline_at),
                                             calendar.local_day(now))
        self._escalated(escalated_to=supervisor, overdue_working_days=max(0, days), meta=meta)
        return ["HelpTaskEscalated"]

    @event("HelpTaskEscalated")
    def _escalated(self, escalated_to: str, overdue_working_days: int, meta: Meta) -> None:
        self.escalated_to = escalated_to

    def replan(self, calendar: WorkingCalendar, now: datetime, meta: Meta) -> bool:
        """Count the deadline's working days again on the calendar in force (True: moved, or
        confirmed on its published year), as ``FollowUp.replan``: only a task still waiting
        for its deadline whose count is known (one opened before re-planning is left as it
        is); missed on both counts it is left to the scheduler (its basis confirmed when
        both give the same moment: ``Count.again``); never earlier than ``now``; the same
        moment and basis record nothing. Escalated, still open, its deadline is never moved,
        only confirmed (``settled``); or, the published count giving another moment, kept on
        the law's day and said once (``published_deadline_at``), then never read again."""
        active = self.status in HELP_ACTIVE
        moved = recount(self, "HelpTaskReplanned", self.deadline_at, calendar, now, meta,
                        waiting=active and self.escalated_to is None,
                        settled=active and self.escalated_to is not None,
                        kept=self.__dict__.get("published_deadline_at"))
        if moved is None:
            return False
        self._replanned(deadline_at=moved.at, previous_deadline_at=self.deadline_at,
                        cause=RescheduleCause.CALENDAR_PUBLISHED.value, basis=moved.basis.value,
                        meta=meta, published_deadline_at=moved.published_at)
        return True

    @event("HelpTaskReplanned")
    def _replanned(self, deadline_at: datetime, previous_deadline_at: datetime, cause: str,
                   meta: Meta, basis: str = Basis.OFFICIAL.value,
                   published_deadline_at: datetime | None = None) -> None:
        self.deadline_at, self.basis = deadline_at, basis
        self.published_deadline_at = published_deadline_at
        self._remember(meta, "HelpTaskReplanned")


class Referral(RemembersCommands):
    """派单 / 回复 / 督办: a case referred to a unit (another window, a street office, the
    social insurance bureau, an employer), awaiting its reply until ``reply_due_at``. The
    reply is recorded once, by the clerk or by the unit through its reply link; without a
    reply by the deadline the scheduler records ``ReferralOverdue`` and plans a high-priority
    follow-up (督办) for the case's owner. A reply after that is still taken. Its case resolved,
    a referral still awaiting its reply or overdue is closed (``ReferralClosed``): nobody
    chases the unit any more; the case reopened, one so closed (never answered) is chased
    again (``ReferralReopened``) with a new reply deadline and, missed again, a 督办 of its
    own (``chase_id``). No personal data: the unit's name and contact are scrubbed free
    text, the resident only the case's id."""

    @event("ReferralSent")
    def __init__(self, id: UUID, unit_kind: str, unit_name: str, unit_contact: str,
                 referred_by: str, reply_due_at: datetime, source_id: UUID, meta: Meta,
                 basis: str = Basis.OFFICIAL.value, counted_from: date | None = None,
                 working_days: int | None = None, counted_as: str | None = None) -> None:
        self.center_id: str = meta["center_id"]
        self.case_id: UUID | None = meta.get("case_id")
        self.counted_as = counted_as  # store only; None: before stop 51 (``working_deadline``)
        self.referred_by = referred_by
        self.reply_due_at = reply_due_at
        self.basis = basis
        self.counted_from, self.working_days = counted_from, working_days
        self.first_reply_due_at = reply_due_at
        at = meta["occurred_at"]  # every command's meta has it (``meta_for``)
        self.sent_at: datetime = datetime.fromisoformat(at) if isinstance(at, str) else at
        self.status = "awaiting_reply"
        self.overdue_follow_up: UUID | None = None
        self.round = 0
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "ReferralSent", created=True)

    @property
    def next_fire_at(self) -> datetime | None:
        return self.reply_due_at if self.status == "awaiting_reply" else None

    def reply(self, reply: str, by_recipient: bool, meta: Meta) -> None:
        if self.status == "replied":
            raise RuleViolated("the referral's reply is already recorded", status=self.status,
                               rule="replied_once")
        if by_recipient and self.status == "closed":
            # Nobody waits for it any more: taken through the link, a unit's word landed on a
            # case done with, where nobody reads it. A clerk who hears the unit some other way
            # may still record it; a reopening opens the link again.
            raise ReferralClosedError(
                "the referral was closed when its case was resolved; the reply link takes no "
                "reply until the case is reopened: tell the center", status=self.status)
        if not reply.strip():
            raise InvalidCommand("the reply says something", field="reply")
        self._replied(reply=reply, by_recipient=by_recipient, meta=meta)

    @event("ReferralReplied")
    def _replied(self, reply: str, by_recipient: bool, meta: Meta) -> None:
        self.status = "replied"
        self._remember(meta, "ReferralReplied")

    def advance(self, now: datetime, assigned_clerk: str | None, assigned_team: str | None,
                meta: Meta, case_resolved: bool = False) -> UUID | None:
        """No reply by the deadline: 督办 (the follow-up's id, to be planned with it); or,
        its case known resolved (``case_resolved``: a referral the rules left awaiting a
        reply or overdue, sent before the rules closed referrals, which the resolution did
        not close), closed at once, its deadline come or not: nobody chases a unit about a
        case that is done. One chased again after a reopening (``round``) is closed early
        only by the rules on the next resolution: the scheduler may read the case as still
        resolved for a moment after the reopening chased it again."""
        waiting = self.status == "awaiting_reply" and (
            self.reply_due_at <= now or getattr(self, "round", 0) == 0)
        if case_resolved and (self.status == "overdue" or waiting):
            self.close_as_not_needed(meta)
            return None
        if self.status != "awaiting_reply" or self.reply_due_at > now:
            return None
        follow_up_id = self.chase_id
        self._overdue(follow_up_id=follow_up_id, assigned_clerk=assigned_clerk,
                      assigned_team=assigned_team, meta=meta)
        return follow_up_id

    @event("ReferralOverdue")
    def _overdue(self, follow_up_id: UUID, assigned_clerk: str | None,
                 assigned_team: str | None, meta: Meta) -> None:
        self.status = "overdue"
        self.overdue_follow_up = follow_up_id

    def close_as_not_needed(self, meta: Meta) -> bool:
        """Its case was resolved: a referral still awaiting its reply, or overdue, is no
        longer chased (True); one replied stays so. Idempotent by nature: once closed,
        nothing more. A reply that comes after is refused through the unit's link (409
        ``referral_closed``), taken when a clerk records it (``reply``)."""
        if self.status not in ("awaiting_reply", "overdue"):
            return False
        self._closed(reason=CASE_RESOLVED, meta=meta)
        return True

    @event("ReferralClosed")
    def _closed(self, reason: str, meta: Meta) -> None:
        self.status = "closed"

    @property
    def chase_id(self) -> UUID:
        """The 督办 of the current round of chasing (planned when it is missed)."""
        return referral_overdue_follow_up_id(self.id, getattr(self, "round", 0))

    def reply_working_days(self, calendar: WorkingCalendar, default: int) -> int:
        """The working days the unit was given to reply: the count kept when it was sent (or
        chased again), so a reopening gives it as many as it had whatever the calendar has
        learnt since (a make-up working day published in between is not a day more). One
        sent before the count was kept: counted again from the day after the sending's day
        to the first reply deadline (``working_deadline``'s count then: such a referral
        predates stop 51, when the count began on the day after the sending's) on the
        calendar in force;
        ``default`` when they cannot be counted any more."""
        kept = getattr(self, "working_days", None)
        if kept is not None:
            return int(kept)
        sent_at = getattr(self, "sent_at", None)
        first = getattr(self, "first_reply_due_at", None)
        if sent_at is None or first is None:
            return default
        try:
            start = calendar.local_day(sent_at) + timedelta(days=1)
            return max(1, calendar.working_days_between(start, calendar.local_day(first)) + 1)
        except CalendarOutOfRange:
            return default

    def replan(self, calendar: WorkingCalendar, now: datetime, meta: Meta) -> bool:
        """Count the reply deadline's working days again on the calendar in force (True:
        moved, or confirmed on its published year), as ``HelpTask.replan``: only a referral
        awaiting its reply whose count is known (one sent or chased again before re-planning
        is left as it is); missed on both counts it is left to the scheduler (督办), its
        basis confirmed when both give the same moment (``Count.again``). Overdue (its 督办
        planned), its deadline is never moved, only confirmed (``settled``); or, the published
        count giving another moment, kept on the law's day and said once
        (``published_reply_due_at``), then never read again (until chased anew)."""
        moved = recount(self, "ReferralReplanned", self.reply_due_at, calendar, now, meta,
                        waiting=self.status == "awaiting_reply",
                        settled=self.status == "overdue",
                        kept=self.__dict__.get("published_reply_due_at"))
        if moved is None:
            return False
        self._replanned(reply_due_at=moved.at, previous_reply_due_at=self.reply_due_at,
                        cause=RescheduleCause.CALENDAR_PUBLISHED.value, basis=moved.basis.value,
                        meta=meta, published_reply_due_at=moved.published_at)
        return True

    @event("ReferralReplanned")
    def _replanned(self, reply_due_at: datetime, previous_reply_due_at: datetime, cause: str,
                   meta: Meta, basis: str = Basis.OFFICIAL.value,
                   published_reply_due_at: datetime | None = None) -> None:
        self.reply_due_at, self.basis = reply_due_at, basis
        self.published_reply_due_at = published_reply_due_at
        self._remember(meta, "ReferralReplanned")

    @property
    def chased_on_reopening(self) -> bool:
        """Whether its case's reopening chases it again (``chase_again``): closed by the
        resolution unanswered, or still awaiting its first reply deadline (sent before the
        rules closed a resolved case's referrals, its resolution left it awaiting, for the
        scheduler to close: ``advance``), or overdue (its 督办 running: a resolution from
        before then left it so, for the scheduler to close at any tick, ``LEFT_CHASED``; since
        then every resolution closes an overdue referral, so none is overdue at a reopening
        but those). Recorded on the referral, the reopening is what the scheduler's close of
        a case it read as resolved meets (or conflicts with), whatever the referral's state:
        left overdue, it was closed on a reopened case and nobody asked the unit again."""
        return self.status in ("closed", "overdue") or (
            self.status == "awaiting_reply" and getattr(self, "round", 0) == 0)

    def chase_again(self, reply_due_at: datetime, basis: Basis, meta: Meta,
                    counted_from: date | None = None, working_days: int | None = None,
                    counted_as: str | None = COUNTED_AS) -> bool:
        """Its case was reopened: a referral closed by the resolution (never answered) is
        awaited again until ``reply_due_at`` (True), and so is one the resolution left
        awaiting its first deadline (``chased_on_reopening``): recorded on the referral, the
        reopening is what the scheduler's close of a case it may still read as resolved
        meets, in the referral's own version: after it, a round chased again is not closed
        before its deadline (``advance``); before it, the close is the version this one
        conflicts with, and the reopening, tried again, chases the closed referral. So is
        one left overdue (its 督办 cancelled beside it: ``FollowUps.chase_referral_again``).
        One answered or chased again already stays as it is. Idempotent: the reopening
        that chased it, delivered again, records nothing (``chased_by``), also once that
        round is overdue or closed again (it is no new reopening: no second round, no
        second 督办)."""
        if self.chased_by(meta.get("causation_id")) or not self.chased_on_reopening:
            return False
        self._reopened(reply_due_at=reply_due_at, basis=basis.value,
                       round=getattr(self, "round", 0) + 1, reason="case_reopened", meta=meta,
                       counted_from=counted_from, working_days=working_days,
                       counted_as=counted_as)
        return True

    def chased_by(self, reopening: str | None) -> bool:
        """Whether the reopening ``reopening`` (its ``CaseReopened`` event's id, the key the
        rules chase under) chased this referral already (kept with the referral's commands,
        from its ``ReferralReopened`` events, the stored ones included)."""
        commands: dict[str, tuple[str, int]] = self.__dict__.get("commands", {})
        return bool(reopening) and commands.get(reopening, ("",))[0] == "ReferralReopened"

    @event("ReferralReopened")
    def _reopened(self, reply_due_at: datetime, basis: str, round: int, reason: str,
                  meta: Meta, counted_from: date | None = None,
                  working_days: int | None = None, counted_as: str | None = None) -> None:
        self._remember(meta, "ReferralReopened")
        self.counted_as = counted_as
        self.status = "awaiting_reply"
        self.reply_due_at = reply_due_at
        self.basis = basis
        self.counted_from, self.working_days = counted_from, working_days
        self.round = round
        self.overdue_follow_up = None
        self.published_reply_due_at = None  # a new deadline: nothing kept any more
