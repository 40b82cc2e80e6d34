"""Follow-up's use cases: each turns one command (from staff, a rule, or the scheduler) into
events on one aggregate, committed in batches through the GroupCommitter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.followup import commands as c
from services.followup.domain import (
    COUNTED_AS,
    OPEN,
    CaseNotFound,
    Consent,
    FollowUp,
    Handover,
    HelpTask,
    NoConsent,
    Obligation,
    PolicyChange,
    Referral,
    ResidentErasedError,
    ResidentNotFound,
    ResidentNotOfCase,
    Uncounted,
    check_verdict_recorder,
    consent_allows,
    end_of_due_day,
    first_morning_to_come,
    first_watched_period,
    follow_up_id_for,
    obligation_aggregate_id,
    policy_scope,
    referral_overdue_follow_up_id,
    retry_rule,
    working_deadline,
)
from shared.catalogue import Catalogue
from shared.contracts.followup import FollowUpOutcome, Priority, Reason, RescheduleCause
from shared.eventstore.application import ServiceApplication
from shared.eventstore.command_path import CommandPath, check_version
from shared.eventstore.group_commit import GroupCommitter, Sent, Unit, Written
from shared.kernel.calendar import (
    Basis,
    CalendarOutOfRange,
    DueRule,
    Planned,
    WorkingCalendar,
    covered,
)
from shared.kernel.clock import Clock
from shared.kernel.errors import InvalidCommand, VersionConflict
from shared.kernel.meta import COMMAND_DIGEST, Meta, by_a_worker, meta_for
from shared.kernel.moments import Moments
from shared.kernel.scrubbing import CaseTexts, said_in
from shared.kernel.typed import Command
from shared.runtime.calendars import Calendars
from shared.security.principals import Principal, Role
from shared.settings import Settings


class _OtherChase(VersionConflict):
    """The referral is in another round of chasing than the 督办 loaded with it (chased
    again since: ``Referral.chase_id``): the command is run again with that one."""

    def __init__(self, chase: UUID) -> None:
        super().__init__("the referral's 督办 is another one: loaded again")
        self.chase = chase


def check_chase(referral: Referral, chase: UUID) -> None:
    """Refuse (before anything is recorded) a command that loaded another round's 督办."""
    if referral.chase_id != chase:
        raise _OtherChase(referral.chase_id)


class FollowUpApplication(ServiceApplication):
    name = "followup"


@dataclass(frozen=True)
class Plan:
    """A follow-up a rule (or the fan-out) wants to exist; scheduling it twice is a no-op."""

    follow_up_id: UUID
    center_id: str
    case_id: UUID | None
    reason: Reason
    resident_id: UUID | None
    due_at: datetime
    assigned_clerk: str | None
    assigned_team: str | None
    source: str
    source_id: UUID | None = None
    priority: Priority = Priority.NORMAL
    service_item: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    occurred_at: datetime | None = None
    basis: Basis = Basis.OFFICIAL
    due_rule: DueRule | None = None
    contact: bool = True
    #: Its working day long over when the rule was applied (``FollowUps.on_a_day_to_come``):
    #: recorded as planned on its day and cancelled at once (``LAPSED``), nobody's work.
    lapsed: bool = False


def _changed(plan: Plan, **changes: Any) -> Plan:
    """``dataclasses.replace(plan, **changes)`` without its walk over the 19 fields and the
    frozen ``__init__``'s ``object.__setattr__`` a field (a rule's plan moved to a day to come,
    or lapsed: ~1 in 3 of the rules' events in ``consumers.py``'s drain; ``replace`` was 2 %
    of the rules' CPU): the same fields, the same values, no ``__post_init__`` to run."""
    unknown = changes.keys() - plan.__dict__.keys()
    if unknown:
        raise TypeError(f"Plan has no field {sorted(unknown)}")
    made = object.__new__(Plan)
    made.__dict__.update(plan.__dict__)
    made.__dict__.update(changes)
    return made


LAPSED = "lapsed: its working day was long over when the rule was applied"
"""The reason of a lapsed rule's follow-up's ``FollowUpCancelled`` (actor ``system:rules``)."""


@dataclass(frozen=True)
class Watch:
    """An obligation declared at intake, to be watched from now on."""

    obligation_id: UUID
    center_id: str
    case_id: UUID
    resident_id: UUID
    cadence: str
    next_due_on: date
    assigned_clerk: str | None
    service_item: str | None
    causation_id: str | None = None
    correlation_id: str | None = None
    occurred_at: datetime | None = None
    tracked_from: date | None = None  # watch periods missed since then too
    #: ``ObligationDeclared.judged_at``: posted more than the grace after the moment it gives,
    #: the declaration is taken as made on intake's clock less the grace.
    judged_at: datetime | None = None


@dataclass(frozen=True)
class Escalation:
    """An escalation at the counter (intake's ``ActionTaken``, kind ``escalated``): a help
    task to open, once."""

    task_id: UUID
    center_id: str
    case_id: UUID
    owner_clerk: str | None
    requested_by: str
    day: date
    within_working_days: int | None
    source_id: UUID
    service_item: str | None
    causation_id: str | None = None
    correlation_id: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Referring:
    """A referral at the counter (intake's ``ActionTaken``, kind ``referred``): a referral to
    track, once."""

    referral_id: UUID
    center_id: str
    case_id: UUID
    unit_kind: str
    unit_name: str
    unit_contact: str
    referred_by: str
    day: date
    within_working_days: int | None
    source_id: UUID
    causation_id: str | None = None
    correlation_id: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Advanced:
    """What one scheduler attempt did to one aggregate; ``waiting``: the year the working-day
    calendar does not cover that its next step needs (the steps before it are recorded)."""

    fired: list[str]
    version: int
    next_fire_at: datetime | None
    waiting: int | None = None


SYSTEM_RULES = "system:rules"
SYSTEM_SCHEDULER = "system:scheduler"
SYSTEM_CALENDAR = "system:calendar"


class Consents(Protocol):
    """Port: what follow-up knows of a resident's consent (``residents.py``), at which
    centers intake has recorded them (``known_residents.py``), and of which center a case is
    (``case_refs``): what a follow-up planned by hand may name."""

    def of(self, resident_id: UUID) -> Awaitable[Consent]: ...

    def known_at(self, resident_id: UUID, center_id: str) -> Awaitable[bool]: ...

    def case_at(self, case_id: UUID, center_id: str) -> Awaitable[bool]: ...

    def resident_of_case(self, case_id: UUID) -> Awaitable[UUID | None]: ...

    def applicant_of_case(self, case_id: UUID) -> Awaitable[UUID | None]: ...

    def needs_more_care(self, follow_up_id: UUID) -> Awaitable[bool]: ...

    def served_case(self, case_id: UUID, staff: str) -> Awaitable[bool]: ...


class AllConsent:
    """Every resident may be contacted, anywhere: for tools and tests that have no consent to
    read."""

    async def of(self, resident_id: UUID) -> Consent:
        return Consent()

    async def known_at(self, resident_id: UUID, center_id: str) -> bool:
        return True

    async def case_at(self, case_id: UUID, center_id: str) -> bool:
        return True

    async def resident_of_case(self, case_id: UUID) -> UUID | None:
        return None

    async def applicant_of_case(self, case_id: UUID) -> UUID | None:
        return None

    async def needs_more_care(self, follow_up_id: UUID) -> bool:
        return False

    async def served_case(self, case_id: UUID, staff: str) -> bool:
        return False


class FollowUps:
    """The follow-up use cases, shared by the HTTP API, the rules, the fan-out and the scheduler."""

    def __init__(self, committer: GroupCommitter, calendars: Calendars, settings: Settings,
                 clock: Clock, catalogue: Catalogue, consents: Consents | None = None,
                 case_texts: CaseTexts | None = None) -> None:
        self.path = CommandPath(committer, clock, Moments.from_settings(settings), case_texts)
        self.committer = committer
        self.calendars = calendars
        self.settings = settings
        self.clock = clock
        self.catalogue = catalogue
        self.consents: Consents = consents or AllConsent()

    # -- helpers ----------------------------------------------------------------------------

    def calendar(self, center_id: str) -> WorkingCalendar:
        return self.calendars.for_center(center_id)

    def _when(self, center_id: str, cmd: c._When) -> tuple[Planned, DueRule | None]:
        """An exact ``due_at`` as given; a ``due_on`` worked out on the center's calendar
        (opening on it, or on the next working day), with the rule kept for re-planning.
        Either beyond the calendar is a 422 ``calendar_out_of_range``: the scheduler could
        never work out the working day it is missed on."""
        calendar = self.calendar(center_id)
        if cmd.due_at is not None:
            due_at = cmd.due_at
            covered(lambda: end_of_due_day(calendar, due_at))
            return Planned(due_at, Basis.OFFICIAL), None
        assert cmd.due_on is not None
        rule = DueRule("on_or_after", cmd.due_on, 0)
        return covered(lambda: calendar.plan(rule)), rule

    async def _on(self, aggregate_id: UUID, what: str, kind: str, cmd: Command,
                  actor: str, key: str | None, expected_version: int | None,
                  act: Callable[[Any, Meta], Any]) -> Written:
        """A staff command on a follow-up, an obligation or a help task, through the command
        path; its free text scrubbed by intake of the case's resident first."""
        meta = self.path.meta(actor, key, cmd)
        await self.path.scrubbing(meta, aggregate_id, *said_in(cmd))
        return await self.path.on(aggregate_id, what, kind, act, meta, key, expected_version)

    # -- scheduling -------------------------------------------------------------------------

    def on_a_day_to_come(self, plan: Plan) -> Plan:
        """The one rule for a follow-up planned from an event's moment: when the working day
        it would be done on (``end_of_due_day``) is over now, the moment it is planned, it is
        due on the first working morning to come (``first_morning_to_come``). Planned on a day
        gone (an event posted offline and sent the next day, a rule applied late, a period
        missed before anyone knew), a follow-up was missed the moment it was planned and
        counted late on that day, in a month perhaps closed: a deadline posted offline on
        Thursday and sent on Friday got a reminder due on Thursday, missed at Friday's first
        tick. Kept in its rule (``not_before``), so re-planning keeps it; provisional when
        that morning is. Long gone, it is lapsed instead (below)."""
        calendar = self.calendar(plan.center_id)
        now = self.clock.now()
        end = end_of_due_day(calendar, plan.due_at)  # once, for both questions
        if end > now:
            return plan
        if end < now - timedelta(days=self.settings.followup_lapse_after_days):
            # Long gone (a follow-up service reading years of history from scratch, or back
            # after weeks away): every old reminder and check became due on one clerk's next
            # morning, thousands at once, work that lapsed long ago. Recorded as it was
            # planned then, and lapsed: on no worklist, in no rate. No morning to come is
            # worked out for it (it is due on none): two calendar walks of three a lapsed
            # plan took (rules55), and at 23:30 on the calendar's last New Year's Eve that
            # morning, in a year not covered, parked a plan that needs no day of it.
            return _changed(plan, lapsed=True)
        floor = first_morning_to_come(calendar, now)
        rule = (replace(plan.due_rule, not_before=max(floor, plan.due_rule.not_before or floor))
                if plan.due_rule is not None else None)
        basis = (Basis.PROVISIONAL if Basis.PROVISIONAL in (plan.basis, calendar.basis_of(floor))
                 else Basis.OFFICIAL)
        return _changed(plan, due_at=floor, due_rule=rule, basis=basis)

    def schedule(self, plan: Plan) -> Sent:
        """Create the planned follow-up unless it exists (then: ``replayed``, nothing written).
        Queued as it is called (``GroupCommitter.send``): await the answer."""
        return self.path.create(plan.follow_up_id, "FollowUpScheduled", None,
                                self._planned(plan))

    def schedule_each(self, plans: Sequence[Plan]) -> Sent:
        """``schedule`` for a batch job's plans (the policy fan-out, the rules' batch), in one
        command: each follow-up already there is left as it is, and of two plans of one
        follow-up the first is the one planned (as two ``schedule`` calls would leave it)."""
        builds: dict[UUID, Callable[[], FollowUp]] = {}
        for p in plans:
            if p.follow_up_id not in builds:
                builds[p.follow_up_id] = self._planned(p)
        return self.path.create_each(builds)

    def _planned(self, plan: Plan) -> Callable[[], FollowUp]:
        """Builds the planned follow-up (the meta's moment: now)."""
        meta = meta_for(SYSTEM_RULES, plan.causation_id, self.clock.now(), plan,
                        center_id=plan.center_id, case_id=plan.case_id)

        def build() -> FollowUp:
            follow_up = FollowUp(
                id=plan.follow_up_id, reason=plan.reason.value, resident_id=plan.resident_id,
                due_at=plan.due_at, assigned_clerk=plan.assigned_clerk,
                assigned_team=plan.assigned_team, priority=plan.priority.value,
                service_item=plan.service_item, source=plan.source, source_id=plan.source_id,
                meta=meta, basis=plan.basis.value,
                due_rule=plan.due_rule.as_dict() if plan.due_rule is not None else None,
                contact=plan.contact)
            if plan.lapsed:
                follow_up.cancel(LAPSED, meta)
            return follow_up

        return build

    async def schedule_by_hand(self, cmd: c.ScheduleFollowUp, actor: str, key: str) -> Written:
        if cmd.service_item is not None and self.catalogue.get(cmd.service_item) is None:
            raise InvalidCommand(f"service item {cmd.service_item!r} is not in the catalogue",
                                 field="service_item")
        follow_up_id = follow_up_id_for("api", f"{cmd.center_id}\x1f{key}")
        # The command's moments first (422), then whether the center knows the resident (404:
        # the same for another center's resident as for no one's, so that what another
        # center's resident agreed to cannot be learnt by trying ids), then what the resident
        # agreed to (409), then the calendar.
        meta = self.path.meta(actor, key, cmd, center_id=cmd.center_id, case_id=cmd.case_id)
        contact = True
        # A case named is one of the body's center (404 alike for another center's case and
        # for none): the follow-up carries its case id on the log, and a post-resolution
        # check's "not solved" reopens that case (intake's verdicts).
        if cmd.case_id is not None and not await self.consents.case_at(cmd.case_id,
                                                                       cmd.center_id):
            raise CaseNotFound(
                f"no case {cmd.case_id} is known at center {cmd.center_id}: one opened a "
                "moment ago is known a moment later", case_id=str(cmd.case_id),
                center_id=cmd.center_id)
        if cmd.resident_id is not None and not await self.consents.known_at(
                cmd.resident_id, cmd.center_id):
            raise ResidentNotFound(
                f"no resident {cmd.resident_id} is known at center {cmd.center_id}: a "
                "center knows a resident registered there, with a case opened there or "
                "shown a hint there; one recorded a moment ago is known a moment later",
                resident_id=str(cmd.resident_id), center_id=cmd.center_id)
        # A follow-up about a case reaches the case's resident: named by the case alone, it
        # is theirs (what they agreed to holds for it, and their erasure cancels it), as a
        # rule's follow-up of the case is. Before, it skipped both: outreach to a resident
        # who refused contact, and new contacts about an erased resident's case.
        # Named with the case, the resident must be the case's (intake's CaseOpened, as the
        # rules read it into ``case_refs``; a case not read yet was a 404 above, and a case's
        # resident never changes after it is opened): another resident would be cross-linked
        # to it (the call to the wrong person, the notes scrubbed of the wrong name, the
        # figures per resident counted on the wrong one). The one who applied for the case on
        # its resident's behalf (代办, CaseOpened's applicant_id) is the case's too: the call
        # about the case's papers goes to them. Both were found known at this center above
        # (404 first), so another center's resident is never compared here.
        resident_id = cmd.resident_id
        if cmd.case_id is not None:
            of_case = await self.consents.resident_of_case(cmd.case_id)
            if resident_id is None:
                resident_id = of_case
            elif resident_id != of_case and (
                    resident_id != await self.consents.applicant_of_case(cmd.case_id)):
                raise ResidentNotOfCase(
                    f"resident {resident_id} is not the resident of case {cmd.case_id}: "
                    "name the case alone (its resident is taken) or the resident alone",
                    case_id=str(cmd.case_id), resident_id=str(resident_id))
        if resident_id is not None:
            consent = await self.consents.of(resident_id)
            allowed = consent_allows(cmd.reason, consent)
            if allowed is None and consent.erased:
                raise ResidentErasedError("the resident's personal data was erased: nothing is "
                                          "planned for them", resident_id=str(resident_id))
            if allowed is None:
                raise NoConsent(f"the resident has not agreed to be contacted, and a "
                                f"{cmd.reason.value} only reaches out to them",
                                resident_id=str(resident_id), reason=cmd.reason.value)
            contact = allowed
        planned, rule = self._when(cmd.center_id, cmd)

        return await self.path.create(follow_up_id, "FollowUpScheduled", key, lambda: FollowUp(
            id=follow_up_id, reason=cmd.reason.value, resident_id=resident_id,
            due_at=planned.at, assigned_clerk=cmd.assigned_clerk,
            assigned_team=cmd.assigned_team, priority=cmd.priority.value,
            service_item=cmd.service_item, source="api", source_id=None, meta=meta,
            basis=planned.basis.value, due_rule=rule.as_dict() if rule else None,
            contact=contact), actor=actor, meta=meta)

    # -- staff ------------------------------------------------------------------------------

    async def complete(self, follow_up_id: UUID, cmd: c.CompleteFollowUp, actor: str,
                       key: str | None, expected_version: int | None = None) -> Written:
        return (await self.complete_counted(follow_up_id, cmd, actor, key,
                                            expected_version))[0]

    async def complete_counted(self, follow_up_id: UUID, cmd: c.CompleteFollowUp, actor: str,
                               key: str | None, expected_version: int | None = None,
                               ) -> tuple[Written, Uncounted | None]:
        """``complete``, and why an unanswered call was recorded but not counted as an
        attempt (``FollowUp.check_attempt_day``), when it was not: what its
        ``FollowUpRescheduled`` says. A replay answers as the first: the event its first write
        left at the version it answered."""
        now = self.clock.now()
        uncounted: list[Uncounted] = []

        unreachable = cmd.outcome is FollowUpOutcome.UNREACHABLE
        # A resident who needs more care is visited at home when the last attempt fails too
        # (read before the command: intake's CareNeedChanged, as the rules last read it).
        more_care = unreachable and await self.consents.needs_more_care(follow_up_id)
        # Whether the caller served the follow-up's case (read before the command, as the
        # rules last read intake's steps): no favourable verdict of theirs (代评,
        # ``check_verdict_recorder``), nor a bad review's follow-up (``check_not_own_review``).
        served = await self._served(follow_up_id, actor)
        settings = self.settings

        def act(f: FollowUp, meta: Meta) -> FollowUp | None:
            uncounted.clear()  # a command run again (a conflict) answers as its last run
            calendar = self.calendar(f.center_id)
            retry = None
            if unreachable:
                # Tried again the next working morning (after today's: the day's calls are
                # made), on the center's calendar; after the last attempt, the team takes it
                # up then (``FollowUp.hand_over``).
                rule = retry_rule(calendar.local_day(now))
                planned = covered(lambda: calendar.plan(rule))
                retry = (planned.at, planned.basis, rule)
            check_verdict_recorder(cmd.verdict.value if cmd.verdict else None, actor,
                                   served)
            f.check_not_own_review("complete", meta, served)
            before = len(f.pending_events)  # a batch's earlier commands' are there too
            f.complete(cmd.outcome.value, cmd.channel.value, cmd.note, meta,
                       cmd.verdict.value if cmd.verdict else None, retry,
                       calendar=calendar,
                       judged_at=self.path.moments.judged_at(meta["occurred_at"], now),
                       skew=self.path.moments.max_future,
                       min_gap=timedelta(hours=settings.followup_attempt_min_gap_hours),
                       due_by=f.working_day_due(calendar))
            said = [u for e in f.pending_events[before:] if (u := Uncounted.recorded(e))]
            if said:
                uncounted.append(said[-1])
                return None
            if retry is None:
                return None
            return f.hand_over(Handover(
                due_at=retry[0], basis=retry[1], team=settings.followup_team,
                leader=settings.followup_supervisor_team, more_care=more_care,
                due_rule=retry[2]), meta)

        written = await self._on(follow_up_id, "follow-up", "FollowUpCompleted", cmd, actor,
                                 key, expected_version, act)
        if written.replayed and unreachable:
            # A retry answers as the first: the event its first write left says.
            uncounted.clear()
            events = self.path.committer.app.events
            first = await asyncio.to_thread(lambda: list(events.get(
                follow_up_id, gt=written.version - 1, lte=written.version)))
            uncounted += [u for e in first if e.meta.get("causation_id") == key
                          and (u := Uncounted.recorded(e))]
        return written, (uncounted[-1] if uncounted else None)

    async def reschedule(self, follow_up_id: UUID, cmd: c.RescheduleFollowUp, actor: str,
                         key: str | None, expected_version: int | None = None, *,
                         by_supervisor: bool = False) -> Written:
        """Staff move a follow-up; a missed or escalated one not by whoever let it go unless
        ``by_supervisor`` (403 ``own_missed_followup``: ``FollowUp.check_not_own_missed``)."""
        now = self.clock.now()
        served = await self._served(follow_up_id, actor)

        def act(f: FollowUp, meta: Meta) -> None:
            f.check_not_own_review("reschedule", meta, served)
            planned, rule = self._when(f.center_id, cmd)
            f.reschedule(planned.at, cmd.reason, cmd.assigned_clerk, cmd.assigned_team, now,
                         meta, planned.basis, rule, by_supervisor=by_supervisor,
                         calendar=self.calendar(f.center_id))

        return await self._on(follow_up_id, "follow-up", "FollowUpRescheduled", cmd, actor,
                              key, expected_version, act)

    async def escalate(self, follow_up_id: UUID, cmd: c.EscalateFollowUp, actor: str,
                       key: str | None, expected_version: int | None = None) -> Written:
        now = self.clock.now()
        supervisor = self.settings.followup_supervisor_team

        def act(f: FollowUp, meta: Meta) -> None:
            covered(lambda: f.escalate(cmd.reason, supervisor, self.calendar(f.center_id), now,
                                       meta))

        return await self._on(follow_up_id, "follow-up", "FollowUpEscalated", cmd, actor, key,
                              expected_version, act)

    async def cancel(self, follow_up_id: UUID, cmd: c.CancelFollowUp, actor: str,
                     key: str | None, expected_version: int | None = None, *,
                     by_supervisor: bool = False) -> Written:
        """As ``reschedule``: a missed or escalated one not by its own clerk, a bad review's
        not by staff who served its case."""
        served = await self._served(follow_up_id, actor)

        def act(f: FollowUp, meta: Meta) -> None:
            f.check_not_own_review("cancel", meta, served)
            f.cancel(cmd.reason, meta, by_supervisor)

        return await self._on(follow_up_id, "follow-up", "FollowUpCancelled", cmd, actor, key,
                              expected_version, act)

    async def _served(self, follow_up_id: UUID, actor: str) -> bool:
        """Whether staff ``actor`` opened or served the follow-up's case (never a worker: the
        rules complete and cancel through these use cases too). The case is the one the
        follow-up's first event names (the store's, ``CommandPath.case_of``), not the
        worklist's row: a check planned by hand and completed at once, before the worklist
        had it, was served by nobody, and its own clerk's "solved" was recorded."""
        if by_a_worker(actor):
            return False
        case_id = await self.path.case_of(follow_up_id)
        return case_id is not None and await self.consents.served_case(case_id, actor)

    async def prioritise(self, follow_up_id: UUID, cause: str, occurred_at: datetime) -> bool:
        """Make an open follow-up high priority, its case having become urgent (``cause``:
        the upstream event). Idempotent by nature: once high, it records nothing more."""
        done: list[bool] = []
        await self.path.on(follow_up_id, "follow-up", "", lambda f, meta: done.append(
            f.prioritise(meta)), meta_for(SYSTEM_RULES, cause, occurred_at), None)
        return bool(done and done[0])

    async def check_early(self, follow_up_id: UUID, cause: str, occurred_at: datetime
                          ) -> list[str]:
        """The resident needs more care, learnt after the resolution this post-resolution
        check follows (``cause``: the ``CareNeedChanged``): brought forward to the early check
        and made high priority (``FollowUp.check_early``); returns the events recorded."""
        now = self.clock.now()
        recorded: list[str] = []

        def run(unit: Unit) -> Aggregate:
            follow_up: FollowUp = unit.get(follow_up_id, "follow-up")
            meta = follow_up.meta_for(meta_for(SYSTEM_RULES, cause, occurred_at))
            recorded.extend(follow_up.check_early(
                self.calendar(follow_up.center_id),
                self.settings.followup_early_check_working_days, max(now, occurred_at), meta))
            return follow_up

        await self.committer.submit(run, [follow_up_id])
        return recorded

    async def respect(self, aggregate_id: UUID, kind: str, consent: Consent,
                      cause: str | None) -> list[str]:
        """Bring one open follow-up or obligation of a resident in line with their consent
        (``FollowUp.respect``, ``Obligation.respect``); returns the events recorded."""
        recorded: list[str] = []

        def act(aggregate: FollowUp | Obligation, meta: Meta) -> None:
            # Idempotent by nature: once in line with ``consent``, it records nothing more.
            if done := aggregate.respect(consent, meta):
                recorded.append(done)

        await self.path.on(aggregate_id, kind, "", act, self.path.meta(SYSTEM_RULES, cause),
                           None)
        return recorded

    # -- 帮办: help tasks -----------------------------------------------------------------------

    def open_help_task(self, e: Escalation) -> Sent:
        """The help task of an escalation: owned by the named colleague, else the supervisor
        team; due at closing on the ``within_working_days``-th working day after the action."""
        calendar = self.calendar(e.center_id)
        days = e.within_working_days or self.settings.followup_help_task_working_days
        deadline_at, basis = working_deadline(calendar, e.day, days)
        meta = meta_for(SYSTEM_RULES, e.causation_id, self.clock.now(), e,
                        center_id=e.center_id, case_id=e.case_id)
        team = None if e.owner_clerk else self.settings.followup_supervisor_team
        return self.path.create(e.task_id, "HelpTaskOpened", None, lambda: HelpTask(
            id=e.task_id, owner_clerk=e.owner_clerk, owner_team=team,
            requested_by=e.requested_by, deadline_at=deadline_at, source_id=e.source_id,
            service_item=e.service_item, meta=meta, basis=basis.value, counted_from=e.day,
            working_days=days, counted_as=COUNTED_AS))

    async def close_help_task(self, task_id: UUID, cause: str, occurred_at: datetime,
                              resolved_at: datetime | None = None) -> bool:
        """The task's case was resolved (``cause``: the ``CaseResolved`` event): closed as no
        longer needed when still open (True); not when escalated or past its deadline at
        ``resolved_at`` (the resolution's moment, as judged): then escalated, if not yet,
        and left open (``HelpTask.close_as_not_needed``). Idempotent by nature: a
        redelivered resolution finds it closed (or done, or handed back, or escalated) and
        records nothing."""
        closed: list[bool] = []
        supervisor = self.settings.followup_supervisor_team

        def act(task: HelpTask, meta: Meta) -> None:
            closed.append(task.close_as_not_needed(
                meta, resolved_at, self.calendar(task.center_id), supervisor))

        await self.path.on(task_id, "help task", "", act,
                           meta_for(SYSTEM_RULES, cause, occurred_at), None)
        return bool(closed and closed[0])

    async def close_referral(self, referral_id: UUID, cause: str, occurred_at: datetime,
                             settled: set[UUID] | None = None) -> bool:
        """The referral's case was resolved (``cause``: the ``CaseResolved`` event): no longer
        chased when still awaiting its reply or overdue (True), and its 督办 still open
        cancelled (the first round's is the rules' too; one of a round chased again after a
        reopening only the referral knows). Idempotent by nature: a redelivered resolution
        finds it closed (or replied) and records nothing.

        ``settled``: given, the id of the referral's current 督办 is added to it when the
        command left nothing for a cancel of it to do: never planned (most referrals are
        answered in time), or not open once the command is recorded. The referral is then
        closed or replied, so the scheduler plans no 督办 for it any more
        (``Referral.advance``): a cancel of that id sent after this command records nothing
        (404, or a no-op on an ended one), and the rules need not send it."""
        closed: list[bool] = []
        ended: list[UUID | None] = []

        def run(unit: Unit, chase: UUID) -> Aggregate:
            referral: Referral = unit.get(referral_id, "referral")
            check_chase(referral, chase)
            meta = referral.meta_for(meta_for(SYSTEM_RULES, cause, occurred_at))
            closed.append(referral.close_as_not_needed(meta))
            follow_up: FollowUp | None = unit.find(chase)
            if closed[-1] and follow_up is not None:
                follow_up.cancel("case resolved", follow_up.meta_for(meta))
            # What this run leaves of the 督办 (the last run's is the one recorded).
            ended.append(chase if follow_up is None or follow_up.status not in OPEN else None)
            return referral

        await self._with_chase(referral_id, run)
        if settled is not None and ended and ended[-1] is not None:
            settled.add(ended[-1])
        return bool(closed and closed[-1])

    async def chase_referral_again(self, referral_id: UUID, cause: str, occurred_at: datetime,
                                   day: date | None = None) -> UUID | None:
        """The referral's case was reopened (``cause``: the ``CaseReopened`` event at
        ``occurred_at``): one its resolution closed, never answered (or left awaiting its
        first deadline: ``Referral.chased_on_reopening``), is awaited again, its
        reply due at office closing on the same number of working days after ``day`` (the
        rules': the day they learnt of the reopening, ``counted_from``; else the reopening's
        day) as it was given when sent (``working_deadline``, the center's calendar;
        ``CalendarOutOfRange`` past it: the rule is parked). Returns the id of the 督办 this
        round will have if missed (for the rules to remember with the case: a handover moves
        it, a resolution cancels it), or None when it is not chased again. Idempotent by
        nature: the reopening delivered again (``Referral.chased_by``), even once the round
        it started is overdue, records nothing and cancels nothing; the round's 督办 is
        answered all the same."""
        again: list[UUID | None] = []

        def run(unit: Unit, chase: UUID) -> Aggregate:
            referral: Referral = unit.get(referral_id, "referral")
            check_chase(referral, chase)
            meta = referral.meta_for(meta_for(SYSTEM_RULES, cause, occurred_at))
            overdue = referral.status == "overdue"
            chased_now = act(referral, meta)
            follow_up: FollowUp | None = unit.find(chase)
            if overdue and chased_now and follow_up is not None:
                # Left overdue by a resolution before the rules closed referrals: its 督办
                # ends here, as the close would have ended it; the new round has its own.
                follow_up.cancel("case reopened", follow_up.meta_for(meta))
            return referral

        def act(referral: Referral, meta: Meta) -> bool:
            if referral.chased_by(cause) or not referral.chased_on_reopening:
                # Chased again already (a reopening delivered again): its 督办 all the same.
                chased = referral.status in ("awaiting_reply", "overdue")
                again.append(referral.chase_id if chased and getattr(referral, "round", 0)
                             else None)
                return False
            calendar = self.calendar(referral.center_id)
            days = referral.reply_working_days(
                calendar, self.settings.followup_referral_reply_working_days)
            start = day or calendar.local_day(occurred_at)
            reply_due_at, basis = working_deadline(calendar, start, days)
            referral.chase_again(reply_due_at, basis, meta, counted_from=start,
                                working_days=days)
            again.append(referral.chase_id)
            return True

        await self._with_chase(referral_id, run)
        return again[-1] if again else None

    async def _with_chase(self, referral_id: UUID,
                          command: Callable[[Unit, UUID], Aggregate]) -> Written:
        """Run ``command`` on the referral with its current 督办 loaded beside it: the first
        round's, else (``_OtherChase``) the one the referral names, at the second try."""
        chase = referral_overdue_follow_up_id(referral_id)
        for _ in range(3):
            try:
                return await self.committer.submit(
                    lambda unit, c=chase: command(unit, c), [referral_id, chase])
            except _OtherChase as other:
                chase = other.chase
        raise VersionConflict("the referral kept changing its 督办", referral_id=str(referral_id))

    async def move_help_task(self, task_id: UUID, step: str, cmd: Command,
                             caller: Principal, key: str | None,
                             expected_version: int | None = None) -> Written:
        """accept, start, finish or hand_back: by the task's owner or a supervisor."""
        kinds = {"accept": "HelpTaskAccepted", "start": "HelpTaskStarted",
                 "finish": "HelpTaskDone", "hand_back": "HelpTaskHandedBack"}

        def act(task: HelpTask, meta: Meta) -> None:
            task.check_owner(caller.sub, caller.role is Role.SUPERVISOR)
            if step == "finish":
                task.finish(cmd.note, meta)  # type: ignore[attr-defined]
            elif step == "hand_back":
                task.hand_back(cmd.reason, meta)  # type: ignore[attr-defined]
            else:
                getattr(task, step)(meta)

        return await self._on(task_id, "help task", kinds[step], cmd, caller.actor, key,
                              expected_version, act)

    # -- 派单 / 回复 / 督办: referrals ------------------------------------------------------------

    def send_referral(self, r: Referring) -> Sent:
        calendar = self.calendar(r.center_id)
        days = r.within_working_days or self.settings.followup_referral_reply_working_days
        reply_due_at, basis = working_deadline(calendar, r.day, days)
        meta = meta_for(SYSTEM_RULES, r.causation_id, self.clock.now(), r,
                        center_id=r.center_id, case_id=r.case_id)
        return self.path.create(r.referral_id, "ReferralSent", None, lambda: Referral(
            id=r.referral_id, unit_kind=r.unit_kind, unit_name=r.unit_name,
            unit_contact=r.unit_contact, referred_by=r.referred_by, reply_due_at=reply_due_at,
            source_id=r.source_id, meta=meta, basis=basis.value, counted_from=r.day,
            working_days=days, counted_as=COUNTED_AS))

    async def reply_to_referral(self, referral_id: UUID, reply: str, by_recipient: bool,
                                actor: str, key: str | None, cmd: Command | None = None,
                                expected_version: int | None = None) -> Written:
        """回复: recorded once; a 督办 follow-up still open is completed with it (the unit
        answered). The caller's center is checked as the referral is loaded (a staff caller);
        a unit's reply link was checked against this referral before."""
        meta = self.path.meta(actor, key, cmd)
        await self.path.in_reach_first(referral_id, "referral")  # before its 督办 is loaded
        await self.path.scrubbing(meta, referral_id, reply)

        def run(unit: Unit, chase: UUID) -> Aggregate:
            referral: Referral = unit.get(referral_id, "referral")
            referral.check_new_command(key, "ReferralReplied", digest=meta.get(COMMAND_DIGEST))
            check_chase(referral, chase)
            meta.update(referral.meta_for(meta))
            check_version(referral, "referral", expected_version)
            referral.reply(reply, by_recipient, meta)
            follow_up: FollowUp | None = unit.find(chase)
            if follow_up is not None and follow_up.status in ("scheduled", "due", "missed",
                                                              "escalated"):
                follow_up.complete("done", "none", "the unit replied",
                                   follow_up.meta_for(meta))
            return referral

        return await self._with_chase(referral_id, run)

    # -- 转办: a handed-over case's follow-ups go to its new owner ------------------------------

    async def reassign(self, follow_up_id: UUID, clerk: str | None, team: str | None,
                       cause: str, occurred_at: datetime,
                       reason: str = "the case was handed over",
                       case_id: UUID | None = None,
                       unless_moved_since: datetime | None = None) -> bool:
        """To ``clerk`` / ``team``; ``case_id``: its plan step was linked to that case, whose
        follow-up it is from now on; ``unless_moved_since``: staff's move by hand since then
        wins (``FollowUp.reassign``)."""
        moved: dict[str, bool] = {}

        def run(unit: Unit) -> Aggregate:
            follow_up: FollowUp = unit.get(follow_up_id, "follow-up")
            meta = follow_up.meta_for(meta_for(SYSTEM_RULES, cause, occurred_at))
            moved["yes"] = follow_up.reassign(clerk, team, reason, meta, case_id,
                                              unless_moved_since)
            return follow_up

        await self.committer.submit(run, [follow_up_id])  # a replay answers, moves nothing
        return moved.get("yes", False)

    # -- policy changes ---------------------------------------------------------------------

    async def publish_policy(self, cmd: c.PublishPolicyChange, publisher: Principal,
                             key: str) -> Written:
        """A policy change, published within the publisher's reach (``policy_scope``): a
        center's supervisor to their own center's residents, the city to every center's."""
        scope = policy_scope(publisher.role.value, publisher.center_id, cmd.center_id,
                             cmd.all_centers)
        actor = publisher.actor
        unknown = [code for code in cmd.service_items if self.catalogue.get(code) is None]
        if unknown:
            raise InvalidCommand(f"service items not in the catalogue: {', '.join(unknown)}",
                                 field="service_items", codes=unknown)
        policy_id = follow_up_id_for("policy", f"{cmd.center_id}\x1f{key}")
        meta = self.path.meta(actor, key, cmd, center_id=cmd.center_id, case_id=None)
        calendar = self.calendar(cmd.center_id)
        rule = DueRule("on_or_after", calendar.local_day(meta["occurred_at"]),
                       self.settings.followup_policy_outreach_working_days)
        outreach: Planned = covered(lambda: calendar.plan(rule))

        return await self.path.create(policy_id, "PolicyChangePublished", key, lambda: PolicyChange(
            id=policy_id, service_items=sorted(set(cmd.service_items)), summary=cmd.summary,
            effective_on=cmd.effective_on, all_centers=cmd.all_centers,
            outreach_due_at=outreach.at, meta=meta, basis=outreach.basis.value,
            due_rule=rule.as_dict(), scope=scope.value), actor=actor, meta=meta)

    async def finish_fan_out(self, policy_id: UUID, residents: int) -> Written:
        meta = self.path.meta("system:fan-out", None) | {"correlation_id": str(policy_id)}
        return await self.path.on(policy_id, "policy change", "PolicyChangeFannedOut",
                                  lambda p, m: p.finish_fan_out(residents, m), meta, None)

    # -- obligations ------------------------------------------------------------------------

    def watch(self, watch: Watch) -> Sent:
        aggregate_id = obligation_aggregate_id(watch.obligation_id)
        calendar = self.calendar(watch.center_id)
        grace = self.settings.followup_obligation_grace_working_days
        now = self.clock.now()
        # Periods already missed when the clerk declared it were never tracked: not "missed",
        # unless the declaration asks for them (tracked_from). Declared when it says, unless
        # posted more than the grace later (a tablet's clock reset, a date typed wrong): then
        # on intake's clock less the grace, or every period since the day typed was missed at
        # the next tick, a high-priority call each (and home visits).
        since = watch.judged_at or watch.occurred_at or now
        # A due day not past when declared is the *next* one (the counter page's): the
        # periods the resident says were missed since tracked_from lie before it. A past one
        # is where the periods began (none before it to reach back to).
        back = (watch.tracked_from is not None
                and watch.next_due_on >= calendar.local_day(since))
        if watch.tracked_from is not None:
            since = datetime.combine(watch.tracked_from, time(), calendar.tz)
        period, due, missed_at, basis = covered(lambda: first_watched_period(
            calendar, watch.next_due_on, watch.cadence, grace, since, back=back))
        meta = meta_for(SYSTEM_RULES, watch.causation_id, now, watch,
                        center_id=watch.center_id, case_id=watch.case_id)

        return self.path.create(aggregate_id, "ObligationWatched", None, lambda: Obligation(
            id=aggregate_id, obligation_id=watch.obligation_id, resident_id=watch.resident_id,
            cadence=watch.cadence, next_due_on=due, missed_at=missed_at,
            assigned_clerk=watch.assigned_clerk, service_item=watch.service_item, meta=meta,
            basis=basis.value, first_due_on=watch.next_due_on, period=period))

    async def fulfil(self, obligation_id: UUID, cmd: c.FulfilObligation, actor: str,
                     key: str | None, expected_version: int | None = None) -> Written:
        grace = self.settings.followup_obligation_grace_working_days
        now = self.clock.now()

        def act(o: Obligation, meta: Meta) -> None:
            calendar = self.calendar(o.center_id)
            fulfilled_on = cmd.fulfilled_on or calendar.local_day(meta["occurred_at"])
            judged_at = self.path.moments.judged_at(meta["occurred_at"], now)
            covered(lambda: o.fulfil(cmd.period_due_on, fulfilled_on, calendar, grace, meta,
                                     judged_at))

        return await self._on(obligation_aggregate_id(obligation_id), "obligation",
                              "ObligationFulfilled", cmd, actor, key, expected_version, act)

    async def end_obligation(self, obligation_id: UUID, cmd: c.EndObligation, actor: str,
                             key: str | None, expected_version: int | None = None) -> Written:
        return await self._on(obligation_aggregate_id(obligation_id), "obligation",
                              "ObligationEnded", cmd, actor, key, expected_version,
                              lambda o, meta: o.end(cmd.reason, meta))

    # -- re-planning when an official schedule arrives ---------------------------------------

    async def replan(self, follow_up_id: UUID, now: datetime) -> bool:
        """Work a follow-up's due moment out again on the calendar in force (True: moved)."""
        return await self._replan(follow_up_id, "follow-up", lambda f, calendar, meta:
                                  f.replan(calendar, now, meta), now)

    async def replan_obligation(self, aggregate_id: UUID, now: datetime) -> bool:
        """Work an obligation's "missed at" moment out again on the calendar in force (True:
        moved)."""
        grace = self.settings.followup_obligation_grace_working_days
        return await self._replan(aggregate_id, "obligation", lambda o, calendar, meta:
                                  o.replan(calendar, grace, now, meta), now)

    async def replan_help_task(self, task_id: UUID, now: datetime) -> bool:
        """Count a help task's deadline again on the calendar in force (True: moved)."""
        return await self._replan(task_id, "help task", lambda t, calendar, meta:
                                  t.replan(calendar, now, meta), now)

    async def replan_referral(self, referral_id: UUID, now: datetime) -> bool:
        """Count a referral's reply deadline again on the calendar in force (True: moved)."""
        return await self._replan(referral_id, "referral", lambda r, calendar, meta:
                                  r.replan(calendar, now, meta), now)

    async def _replan(self, aggregate_id: UUID, kind: str,
                      act: Callable[[Any, WorkingCalendar, Meta], bool], now: datetime) -> bool:
        """Exactly once across replicas: the command's key names the official schedules it
        was worked out on and the state it started from (``WorkingCalendar.replanning_key``),
        so the same re-planning on another replica is a replay; two at the same moment meet
        the store's optimistic concurrency.
        """
        moved: dict[str, bool] = {}

        def run(unit: Unit) -> Aggregate:
            moved["yes"] = False  # a batch re-run after a conflict starts again
            aggregate = unit.get(aggregate_id, kind)
            calendar = self.calendar(aggregate.center_id)
            meta = aggregate.meta_for(meta_for(
                SYSTEM_CALENDAR, calendar.replanning_key(aggregate.version), now))
            moved["yes"] = covered(lambda: act(aggregate, calendar, meta))
            return aggregate

        await self.committer.submit(run, [aggregate_id])  # a replay answers, moves nothing
        return moved.get("yes", False)

    async def follow_deadline(self, follow_up_id: UUID, due_at: datetime, basis: Basis,
                              cause: str, occurred_at: datetime,
                              why: RescheduleCause = RescheduleCause.CALENDAR_PUBLISHED,
                              at_deadline: datetime | None = None,
                              published_at: datetime | None = None) -> Written | None:
        """A rectification's revised deadline (re-planned, or triaged: ``why``) moves its
        follow-up (once per revision); ``at_deadline``: office opening on the deadline
        itself, whatever the revision's moment (a missed one's basis confirmed);
        ``published_at``: on the published day, of a deadline kept on its own."""
        now = self.clock.now()

        def run(unit: Unit) -> Aggregate:
            follow_up: FollowUp = unit.get(follow_up_id, "follow-up")
            meta = follow_up.meta_for(meta_for(SYSTEM_RULES, cause, occurred_at))
            follow_up.follow_deadline(due_at, basis, max(now, occurred_at), meta, why,
                                      at_deadline, published_at)
            return follow_up

        return await self.committer.submit(run, [follow_up_id])

    # -- the scheduler's step ---------------------------------------------------------------

    async def advance(self, aggregate_id: UUID, kind: str, now: datetime,
                      consent: Consent | None = None,
                      owner: tuple[str | None, str | None] | None = None,
                      more_care: bool = False, case_resolved: bool = False) -> Advanced:
        """Record whatever has come due on one aggregate by ``now``; nothing early, once.

        Two replicas may try the same aggregate at once: the store's optimistic concurrency
        lets one write, and the other either sees the new state (nothing to do) or gets a
        VersionConflict and leaves it.

        ``consent`` is the resident's, as the scheduler read it: the aggregate is first brought
        in line with it (an erased resident's follow-up is cancelled rather than falling due,
        an obligation ended; without consent to contact, outreach is cancelled and other
        work becomes a task), so nothing reaches a resident who said no, whichever event
        came first.

        ``owner``: the case's current owner (clerk, team), who gets a referral's 督办 and a
        missed obligation's follow-up.

        ``more_care``: intake said the resident needs more care; a run of missed periods of
        an obligation then calls for a home visit after one period instead of two.

        ``case_resolved``: follow-up knows the aggregate's case resolved (``case_refs``); a
        help task still open at its deadline is then closed, never escalated, and a referral
        still awaiting its reply closed, never chased (no 督办).
        """
        consent = consent or Consent()
        outcome: dict[str, Advanced] = {}

        def run(unit: Unit, chase: UUID | None = None) -> Aggregate:
            aggregate = unit.get(aggregate_id, kind)
            if isinstance(aggregate, Referral) and chase is not None:
                check_chase(aggregate, chase)
            meta = aggregate.meta_for(meta_for(SYSTEM_SCHEDULER, None, now))
            respected = aggregate.respect(consent, meta) if isinstance(
                aggregate, FollowUp | Obligation) else None
            fired = [respected] if respected else []
            try:
                fired += self._advance(unit, aggregate, now, consent, owner, more_care, meta,
                                       case_resolved)
            except CalendarOutOfRange as exc:
                # A step whose moment (or the next one's) lies past the calendar waits for it
                # to grow; what came before it is recorded (a follow-up's FollowUpDue).
                fired = [type(e).__name__ for e in aggregate.pending_events]
                outcome["result"] = Advanced(fired, aggregate.version, aggregate.next_fire_at,
                                             waiting=exc.year)
                return aggregate
            outcome["result"] = Advanced(fired, aggregate.version, aggregate.next_fire_at)
            return aggregate

        if kind == "referral":
            await self._with_chase(aggregate_id, run)
        else:
            await self.committer.submit(run, [aggregate_id])
        return outcome["result"]

    def _advance(self, unit: Unit, aggregate: Aggregate, now: datetime, consent: Consent,
                 owner: tuple[str | None, str | None] | None, more_care: bool,
                 meta: Meta, case_resolved: bool = False) -> list[str]:
        """The scheduler's step on one aggregate (``advance``): the event types recorded.
        ``CalendarOutOfRange`` when the aggregate's own next step lies past the calendar."""
        settings = self.settings
        calendar = self.calendar(aggregate.center_id)  # type: ignore[attr-defined]
        fired: list[str] = []
        if isinstance(aggregate, FollowUp):
            fired += aggregate.advance(
                now, calendar, settings.followup_escalate_after_working_days,
                settings.followup_supervisor_team, meta)
        elif isinstance(aggregate, Obligation):
            missed = aggregate.miss(
                now, calendar, settings.followup_obligation_grace_working_days, meta)
            fired += ["ObligationMissed"] * len(missed)
            contact = consent_allows(Reason.OBLIGATION_MISSED, consent)
            # The case's owner now (handed over since it was declared), else whom the
            # obligation was declared for.
            clerk, team = owner if owner and (owner[0] or owner[1]) else (
                aggregate.assigned_clerk, None)
            if clerk is None and team is None:
                team = settings.followup_team
            # The next working morning after the grace ended (at closing), or the first
            # working morning to come when that one is gone (``first_morning_to_come``: today's
            # before closing, else the next working day's): periods missed before anyone could
            # know (declared late, 'missed since' a day months back, waiting for the calendar,
            # a scheduler behind) were planned on days already past, missed the moment they
            # were planned and counted late in months long closed, calls nobody could have
            # made on time. Today's morning after closing was one too: a declaration posted at
            # 18:00 with 'missed since' got calls missed at the next tick.
            def morning_after(missed_at: datetime) -> date:
                to_come = covered(lambda: first_morning_to_come(calendar, now))
                return max(calendar.local_day(missed_at) + timedelta(days=1),
                           calendar.local_day(to_come))

            for period, follow_up_id, missed_at in missed:
                if unit.find(follow_up_id) is None and contact is not None:
                    rule = DueRule("on_or_after", morning_after(missed_at), 0)
                    planned: Planned = covered(lambda r=rule: calendar.plan(r))
                    unit.add(FollowUp(
                        id=follow_up_id, reason=Reason.OBLIGATION_MISSED.value,
                        resident_id=aggregate.resident_id,
                        due_at=planned.at, basis=planned.basis.value,
                        due_rule=rule.as_dict(),
                        assigned_clerk=clerk, assigned_team=team,
                        priority=Priority.HIGH.value, service_item=aggregate.service_item,
                        source="followup:ObligationMissed",
                        source_id=aggregate.obligation_id,
                        meta=meta | {"causation_id": f"obligation:{period}"},
                        contact=contact))
                    fired.append("FollowUpScheduled")
            visit_id = aggregate.home_visit_id(more_care)
            visit_contact = consent_allows(Reason.HOME_VISIT, consent)
            if (missed and visit_id is not None and visit_contact is not None
                    and unit.find(visit_id) is None):
                rule = DueRule("on_or_after", morning_after(missed[-1][2]), 0)
                visit: Planned = covered(lambda r=rule: calendar.plan(r))
                unit.add(FollowUp(
                    id=visit_id, reason=Reason.HOME_VISIT.value,
                    resident_id=aggregate.resident_id, due_at=visit.at,
                    basis=visit.basis.value, due_rule=rule.as_dict(),
                    assigned_clerk=None, assigned_team=settings.followup_team,
                    priority=Priority.HIGH.value, service_item=aggregate.service_item,
                    source="followup:ObligationMissed", source_id=aggregate.obligation_id,
                    meta=meta | {"causation_id": f"home-visit:{missed[-1][0]}"},
                    contact=visit_contact))
                fired.append("FollowUpScheduled")
        elif isinstance(aggregate, HelpTask):
            fired += aggregate.advance(now, calendar, settings.followup_supervisor_team,
                                       meta, case_resolved)
        elif isinstance(aggregate, Referral):
            fired += self._chase(unit, aggregate, calendar, now, owner, meta, case_resolved)
        return fired

    def _chase(self, unit: Unit, referral: Referral, calendar: WorkingCalendar,
               now: datetime, owner: tuple[str | None, str | None] | None,
               meta: Meta, case_resolved: bool = False) -> list[str]:
        """督办: no reply by the deadline, a high-priority task (no contact with the resident:
        it chases the unit) for the case's owner, else the referring clerk, at once; its
        case known resolved (``case_resolved``), the referral is closed instead."""
        clerk, team = owner if owner and (owner[0] or owner[1]) else (referral.referred_by,
                                                                       None)
        was = referral.status
        follow_up_id = referral.advance(now, clerk, team, meta, case_resolved)
        if follow_up_id is None:
            if referral.status == was or referral.status != "closed":
                return []
            # Closed overdue: its 督办 still open chases nobody any more.
            chase = unit.find(referral.chase_id)
            cancelled = chase is not None and chase.cancel(
                "case resolved", chase.meta_for(meta_for(SYSTEM_SCHEDULER, None, now)))
            return ["ReferralClosed", *(["FollowUpCancelled"] if cancelled else [])]
        fired = ["ReferralOverdue"]
        if unit.find(follow_up_id) is None:
            unit.add(FollowUp(
                id=follow_up_id, reason=Reason.REFERRAL_OVERDUE.value, resident_id=None,
                due_at=max(now, referral.reply_due_at), assigned_clerk=clerk,
                assigned_team=team, priority=Priority.HIGH.value, service_item=None,
                source="followup:ReferralOverdue", source_id=referral.id,
                meta=meta | {"causation_id": f"referral-overdue:{referral.id}"},
                basis=calendar.basis_of(now).value, contact=False))
            fired.append("FollowUpScheduled")
        return fired
