"""Intake's use cases: each turns one command into events on one aggregate (a case, or a
resident's record on the log), committed in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

import structlog
from eventsourcing.domain import Aggregate

from services.intake import commands as c
from services.intake.domain import (
    Case,
    DueCandidate,
    Resident,
    Visit,
    case_id_for,
    visit_id_for,
)
from services.intake.presence import Standing
from services.intake.vault import Access, Fact, Registered, ResidentData, Vault
from shared.catalogue import Catalogue
from shared.contracts.vocabulary import DueCause, DueSource
from shared.eventstore.application import ServiceApplication
from shared.eventstore.command_path import CommandPath
from shared.eventstore.group_commit import GroupCommitter, Unit, Written
from shared.kernel.calendar import CalendarNotCovered, WorkingCalendar, covered
from shared.kernel.clock import Clock
from shared.kernel.errors import (
    AlreadyDoneError,
    CommandError,
    Forbidden,
    InvalidCommand,
    NotFound,
)
from shared.kernel.meta import COMMAND_DIGEST, Meta, meta_for
from shared.kernel.moments import Moments
from shared.kernel.privacy import KnownPerson
from shared.kernel.scrubbing import KNOWN_PERSON
from shared.kernel.typed import Command
from shared.runtime.calendars import Calendars
from shared.security.principals import Principal, Role, current_caller

if TYPE_CHECKING:
    from services.intake.known_people import KnownPeople

log = structlog.get_logger("sixstep.intake")

CHILD_NAMESPACE = UUID("8d3f2e61-4b7a-4c0e-9f15-2a6b7c8d9e0f")
EMPLOYMENT_CATEGORY = "employment"
"""The catalogue category whose cases are employment aid (guidance sessions, placements)."""


VERDICTS_ACTOR = "system:verdicts"
"""The actor of a reopening on the resident's word (never a person's name)."""


@dataclass(frozen=True)
class Verdict:
    """A resident's "not solved", as it came from feedback (a survey answer) or follow-up
    (a post-resolution check): the upstream event, when the resident said it, and the center
    whose staff or survey heard it (the envelope's ``center_id``): only a case of that center
    is reopened by it."""

    event_id: UUID
    said_at: datetime
    correlation_id: str | None = None
    center_id: str | None = None
    heard_by: str | None = None
    """The envelope's actor: the staff who recorded the answer (a clerk's post-resolution
    check, a colleague's call), ``resident`` or a system part (``Case.hear_unsolved``)."""
    recorded_at: datetime | None = None
    """The envelope's ``recorded_at``: when the answering service stored it, on its clock.
    The day a clerk's own "not solved" is judged overdue on, as their reopening is on the
    service's clock when they ask: not the moment this consumer applies it (behind by
    minutes at midnight, or by hours after an outage, the clerk's check made on the due day
    kept an overdue due date). Never later than intake's clock (``hear_unsolved``)."""


#: How far back a declaration may ask for missed periods (``tracked_from``): a resident's
#: "last month's did not come", not a history.
TRACKED_FROM_DAYS = 366

#: Who worked a case's help tasks as intake has read them (``services.intake.helpers``).
HelpedBy = Callable[[UUID], Awaitable[tuple[str, ...]]]


class IntakeApplication(ServiceApplication):
    name = "intake"


class ClerkMismatch(CommandError):
    status = 403
    code = "forbidden_clerk"


def clerk_for(asked: str | None, principal: Principal | None) -> str:
    """The clerk a case is opened for: the caller; another clerk only when a supervisor
    records the opening on that clerk's behalf (the envelope's actor stays the supervisor)."""
    if principal is None:
        if asked is None:
            raise InvalidCommand("clerk_id is needed", field="clerk_id")
        return asked
    if asked is None or asked == principal.sub:
        return principal.sub
    if principal.role is Role.SUPERVISOR:
        return asked
    raise ClerkMismatch("clerk_id must be your own (the token's subject); only a supervisor "
                        "records an opening on another clerk's behalf",
                        clerk_id=asked, token_subject=principal.sub)


class Intake:
    """The intake use cases, one method each, shared by the HTTP API and the demo; each goes
    through the one command path (``shared.eventstore.command_path``).

    ``vault``: where a case's resident is checked (``presence.py``); without one (benchmarks
    of the write path alone) a case cannot name a resident. ``known``: who a case is about,
    from the vault, so that a command's free text is scrubbed of that resident's own name,
    phone, ID number and address (``known_people.py``); without it the scrubber's patterns
    still apply. ``moments``: the window a command's ``occurred_at`` and days must lie in;
    ``clock``: the service's now. ``calendars``: the process's working-day calendars, on
    which a case's due date (办结时限) is worked out; without them (benchmarks of the write
    path alone) cases get no due date."""

    def __init__(self, committer: GroupCommitter, catalogue: Catalogue,
                 vault: Vault | None = None, *, known: KnownPeople | None = None,
                 moments: Moments | None = None, clock: Clock | None = None,
                 calendars: Calendars | None = None,
                 helped_by: HelpedBy | None = None) -> None:
        self.path = CommandPath(committer, clock, moments)
        self.helped_by = helped_by
        self.catalogue = catalogue
        self.vault = vault
        self.known = known
        self.calendars = calendars

    # -- the due date: candidates worked out on the center's calendar -----------------------

    def _calendar(self, case: Case) -> WorkingCalendar | None:
        return self.calendars.for_center(case.center_id) if self.calendars else None

    def _today(self, case: Case, at: datetime) -> date:
        """``at``'s day on the case's center's calendar; without calendars (benchmarks of the
        write path alone), its UTC date."""
        calendar = self._calendar(case)
        return calendar.local_day(at) if calendar is not None else at.astimezone(UTC).date()

    def _item_due(self, case: Case, service_item: str, meta: Meta) -> DueCandidate | None:
        """The item's usual working days counted from the day of guidance (0: that day, or
        the next working day when guidance falls on a day off)."""
        calendar, item = self._calendar(case), self.catalogue.get(service_item)
        if calendar is None or item is None:
            return None
        start = calendar.local_day(meta["occurred_at"])
        due_on: date = covered(lambda: calendar.deadline_day(start, item.typical_days))
        return DueCandidate(due_on, DueSource.ITEM_DAYS, DueCause.GUIDANCE,
                            calendar.basis_of(start, due_on), counted_from=start,
                            working_days=item.typical_days)

    def _reopened_due(self, case: Case, meta: Meta) -> DueCandidate | None:
        """The item's usual working days counted from the reopening day (``Case.renew_due``).
        None when the calendar does not cover it: the reopening is never refused for that
        (a resident's "not solved" included); the due date stays as it was. None too for a
        case resolved after its due date (``Case.resolved_late``, on the center's day): its
        lateness stands."""
        calendar = self._calendar(case)
        resolved_at = (getattr(case, "resolution_judged_at", None)
                       or getattr(case, "resolved_at", None))
        if calendar is not None and resolved_at is not None \
                and case.resolved_late(calendar.local_day(resolved_at)):
            return None
        try:
            due = self._item_due(case, case.service_item, meta)
        except CalendarNotCovered:
            return None
        return None if due is None else replace(due, cause=DueCause.REOPENED)

    def _day_due(self, case: Case, day: date, source: DueSource,
                 cause: DueCause) -> DueCandidate | None:
        """A given day (promised, a deadline) as a due date: 422 ``calendar_out_of_range``
        when the calendar does not cover it."""
        calendar = self._calendar(case)
        if calendar is None:
            return None
        covered(lambda: calendar.is_working_day(day))
        return DueCandidate(day, source, cause, calendar.basis_of(day))

    def _known_item(self, code: str) -> None:
        if self.catalogue.get(code) is None:
            raise InvalidCommand(
                f"service item {code!r} is not in the catalogue",
                field="service_item",
                service_item=code,
            )

    async def open_case(self, cmd: c.OpenCase, actor: str, key: str,
                        principal: Principal | None = None,
                        purpose: str = "case opened") -> Written:
        """Open a case. ``principal``: the authenticated caller (the clerk is theirs, and a
        resident they name needs a standing at the vault); None for Open311, whose
        credential names its own clerk and never a resident."""
        self._known_item(cmd.service_item)
        clerk_id = clerk_for(cmd.clerk_id, principal)
        case_id = case_id_for(cmd.center_id, key)
        meta = self.path.meta(actor, key, cmd, center_id=cmd.center_id, case_id=case_id)
        basis: Standing | None = None
        applicant_basis: Standing | None = None
        applicant_id = cmd.applicant_id or cmd.resident_id
        if cmd.resident_id is not None and (
                done := await self.path.created(case_id, "CaseOpened", key, actor, meta)):
            # Opened already under this key (a retry), or the key was another opening's
            # (422): the vault is not asked again, so its audit trail holds no admission and
            # no relation that no opening recorded.
            return done
        if cmd.resident_id is not None:
            basis = await self._admit(cmd, cmd.resident_id, case_id, principal, purpose)
            applicant_basis = basis
        if applicant_id is not None and applicant_id != cmd.resident_id:
            # Acting for someone (代办): the applicant is present (or registered here) too,
            # and the vault keeps how they are related and the proof seen.
            applicant_basis = await self._admit(cmd, applicant_id, case_id, principal,
                                                "applicant acting for a resident")
            assert self.vault is not None and principal is not None
            assert cmd.resident_id is not None
            await self.vault.record_relation(
                case_id, cmd.center_id, applicant_id, cmd.resident_id, cmd.relation.value,
                cmd.proof_seen.value, Access(principal, purpose, cmd.correlation_id))
        return await self.path.create(case_id, "CaseOpened", key, lambda: Case(
            id=case_id, center_id=cmd.center_id, counter_id=cmd.counter_id, clerk_id=clerk_id,
            channel=cmd.channel.value, service_item=cmd.service_item,
            resident_id=cmd.resident_id, resident_basis=basis.value if basis else None,
            applicant_id=applicant_id,
            applicant_basis=applicant_basis.value if applicant_basis else None, meta=meta),
            actor=actor, meta=meta)

    async def record_visit(self, cmd: c.RecordVisit, actor: str, key: str) -> Written:
        """A trip to the center, once per key; the case it names must be one of the visit's
        center: another center's is a 404 worded as for a case nobody has (``Unit.get``; a 403
        told another center's clerk that the id is a case)."""
        visit_id = visit_id_for(cmd.center_id, key)
        meta = self.path.meta(actor, key, cmd, center_id=cmd.center_id, case_id=cmd.case_id)

        def run(unit: Unit) -> Aggregate:
            existing = unit.find(visit_id)
            if existing is not None:
                existing.check_new_command(key, "VisitRecorded", actor, meta.get(COMMAND_DIGEST))
                raise AlreadyDoneError(visit_id, 1)
            if cmd.case_id is not None:
                case: Case = unit.get(cmd.case_id, "case")
                if case.center_id != cmd.center_id:  # a caller of no one center: worded as
                    raise NotFound(f"case {cmd.case_id} not found",  # for a case nobody has
                                   id=str(cmd.case_id))
            visit = Visit(id=visit_id, visit_id=visit_id, center_id=cmd.center_id,
                          counter_id=cmd.counter_id, clerk_id=actor, channel=cmd.channel.value,
                          case_id=cmd.case_id, ticket=cmd.ticket,
                          wait_minutes=cmd.wait_minutes, meta=meta)
            unit.add(visit)
            return visit

        if cmd.case_id is not None:  # another center's: refused before it is loaded whole
            await self.path.in_reach_first(cmd.case_id, "case")
        return await self.path.committer.submit(
            run, [visit_id] if cmd.case_id is None else [visit_id, cmd.case_id])

    async def _admit(self, cmd: c.OpenCase, resident_id: UUID, case_id: UUID,
                     principal: Principal | None, purpose: str) -> Standing:
        """The standing on which the case names ``resident_id`` (its beneficiary or its
        applicant: the vault's rule), or the vault's refusal. A retried opening whose case
        already names the resident is let through, whatever has expired since: the first
        attempt was admitted."""
        if self.vault is None or principal is None:
            raise InvalidCommand("a case opened here cannot name a resident",
                                 field="resident_id")
        try:
            return await self.vault.admit_case(resident_id, Access(
                principal, purpose, cmd.correlation_id))
        except CommandError:
            basis = await self.vault.case_basis(case_id, resident_id)
            if basis is None:
                raise
            return basis

    async def _on_case(self, case_id: UUID, kind: str, cmd: Command, actor: str,
                       key: str | None, expected_version: int | None,
                       act: Callable[[Case, Meta], None],
                       sender: KnownPerson | None = None) -> Written:
        meta = self.path.meta(actor, key, cmd)
        # Every command on a case carries free text: the resident the case names is
        # scrubbed from it (shared.kernel.scrubbing), in memory, never stored; so is
        # ``sender``, who the request says sent it (an Open311 form's own name fields).
        person = await self.known.of_case(case_id, current_caller()) \
            if self.known is not None else None
        if sender:
            person = person.also(sender) if person else sender
        if person:
            meta[KNOWN_PERSON] = person
        return await self.path.on(case_id, "case", kind, act, meta, key, expected_version)

    async def hear_request(self, case_id: UUID, cmd: c.HearRequest, actor: str,
                           key: str | None, expected_version: int | None = None,
                           sender: KnownPerson | None = None) -> Written:
        """``sender``: who the words are from, as the request itself says (an Open311 form's
        name, phone and address fields, which are not kept): scrubbed from the words too."""
        return await self._on_case(case_id, "RequestHeard", cmd, actor, key, expected_version,
                                   lambda case, meta: case.hear_request(cmd.words, meta),
                                   sender)

    async def restate_request(self, case_id: UUID, cmd: c.RestateRequest, actor: str,
                              key: str | None, expected_version: int | None = None) -> Written:
        return await self._on_case(
            case_id, "RequestRestated", cmd, actor, key, expected_version,
            lambda case, meta: case.restate_request(cmd.restatement, cmd.confirmed,
                                                    cmd.correction, meta))

    async def note_concerns(self, case_id: UUID, cmd: c.NoteConcerns, actor: str,
                            key: str | None, expected_version: int | None = None, *,
                            supervisor: bool = False) -> Written:
        """Urgency lowered only by a ``supervisor`` (403 ``urgency_needs_supervisor``), not
        one whose own case it is, its help tasks' work included (``_helped``)."""
        helped = await self._helped(case_id, supervisor)
        return await self._on_case(
            case_id, "ConcernsNoted", cmd, actor, key, expected_version,
            lambda case, meta: case.note_concerns(cmd.needs, cmd.worries, cmd.emotion.value,
                                                  cmd.urgency.value, meta, supervisor, helped))

    async def _helped(self, case_id: UUID, supervisor: bool) -> tuple[str, ...]:
        """Who worked the case's help tasks (帮办, ``services.intake.helpers``): staff of the
        case, whom the escalation may name nobody of (the supervisor team's task). Read only
        for a ``supervisor``'s command, the one an own case refuses."""
        if not supervisor or self.helped_by is None:
            return ()
        return await self.helped_by(case_id)

    async def give_guidance(self, case_id: UUID, cmd: c.GiveGuidance, actor: str,
                            key: str | None, expected_version: int | None = None) -> Written:
        if cmd.service_item:
            self._known_item(cmd.service_item)
        return await self._on_case(
            case_id, "GuidanceGiven", cmd, actor, key, expected_version,
            lambda case, meta: self._guide(case, cmd, meta))

    def _guide(self, case: Case, cmd: c.GiveGuidance, meta: Meta) -> None:
        item = cmd.service_item or case.service_item
        due = [self._item_due(case, item, meta)]
        if cmd.promised_on is not None:
            due.append(self._day_due(case, cmd.promised_on, DueSource.PROMISED,
                                     DueCause.PROMISED))
        case.give_guidance(item, cmd.policy_basis, cmd.eligibility.value, cmd.promised,
                           cmd.missing_documents, meta, [d for d in due if d is not None],
                           plain_words=cmd.plain_words)

    async def take_action(self, case_id: UUID, cmd: c.TakeAction, actor: str,
                          key: str | None, expected_version: int | None = None) -> Written:
        return await self._on_case(
            case_id, "ActionTaken", cmd, actor, key, expected_version,
            lambda case, meta: case.take_action(
                cmd.kind.value, cmd.description, cmd.referred_to, meta,
                owner_clerk=cmd.owner_clerk,
                unit_kind=cmd.unit_kind.value if cmd.unit_kind else None,
                unit_contact=cmd.unit_contact, within_working_days=cmd.within_working_days,
                judged_at=self.path.judged_at(meta)))

    async def hand_over(self, case_id: UUID, cmd: c.HandOverCase, actor: str,
                        key: str | None, expected_version: int | None = None) -> Written:
        """转办: the command path checks the case is of the caller's center (403)."""
        return await self._on_case(
            case_id, "CaseHandedOver", cmd, actor, key, expected_version,
            lambda case, meta: case.hand_over(cmd.to_clerk, cmd.to_team, cmd.reason, meta))

    async def note_deadline(self, case_id: UUID, cmd: c.NoteDeadline, actor: str,
                            key: str | None, expected_version: int | None = None) -> Written:
        deadline_id = child_id(case_id, "deadline", key)
        return await self._on_case(
            case_id, "DeadlineNoted", cmd, actor, key, expected_version,
            lambda case, meta: case.note_deadline(
                deadline_id, cmd.due_on, cmd.description, meta,
                self._day_due(case, cmd.due_on, DueSource.DEADLINE, DueCause.DEADLINE_NOTED),
                self.path.judged_at(meta)))

    async def replan_due_date(self, case_id: UUID) -> bool:
        """Count an open case's provisional due date (its item's days) again on the calendar
        in force (True: recorded), never to a day before today. Exactly once over replicas
        and reloads: the key names the official schedules and the case's version
        (``WorkingCalendar.replanning_key``), and optimistic concurrency settles a race."""
        if self.calendars is None:
            return False
        calendars, now = self.calendars, self.path.now()
        moved: dict[str, bool] = {}

        def run(unit: Unit) -> Aggregate:
            moved["yes"] = False  # a batch re-run after a conflict starts again
            case: Case = unit.get(case_id, "case")
            due = case.__dict__.get("due", {})
            if due.get("counted_from") is None or due.get("working_days") is None:
                return case
            calendar = calendars.for_center(case.center_id)
            meta = case.meta_for(meta_for("system:calendar",
                                          calendar.replanning_key(case.version), now))
            start, days = due["counted_from"], due["working_days"]
            counted: date = covered(lambda: calendar.deadline_day(start, days))
            today = calendar.local_day(now)
            if case.overdue_on(today):
                # Overdue on its day in force, provisional or not, whatever the new count: a
                # past day is not moved to today (re-planning runs at every start: the case
                # came off the overdue list and, resolved that day, counted on time), nor to
                # a later day the published schedule gives (an extension by another door:
                # a later day for an overdue case needs a supervisor not its clerk); as a
                # missed rectification or an escalated task keeps its day (docs/calendar.md,
                # "What keeps its day"). On the same day by both counts, only its basis is
                # news: confirmed official, as one to come.
                if counted != case.due_on:
                    return case
                due_on = counted
            else:
                due_on = max(counted, today)
            moved["yes"] = case.replan_due(due_on, calendar.basis_of(start, due_on).value,
                                           meta)
            return case

        await self.path.committer.submit(run, [case_id])
        return moved.get("yes", False)

    async def move_due_date(self, case_id: UUID, cmd: c.MoveDueDate, principal: Principal,
                            key: str | None, expected_version: int | None = None) -> Written:
        """Move a case's due date by hand, with the reason: the case's clerk or a
        supervisor (403 ``forbidden_case_owner`` for anyone else); once the case is overdue
        on the service's clock, later only by a supervisor (403
        ``extension_needs_supervisor``) who is not its clerk (403 ``self_approval``), nor
        worked one of its help tasks (``_helped``)."""
        helped = await self._helped(case_id, principal.role is Role.SUPERVISOR)

        def move(case: Case, meta: Meta) -> None:
            case.check_may_move_due(principal.sub, principal.role is Role.SUPERVISOR)
            due = self._day_due(case, cmd.due_on, DueSource.MOVED, DueCause.MOVED)
            today = self._today(case, self.path.now())
            case.move_due_date(cmd.due_on, cmd.note, due.basis.value if due else "official",
                               principal.sub, principal.role is Role.SUPERVISOR, meta, today,
                               helped)

        return await self._on_case(case_id, "CaseDueDateSet", cmd, principal.sub, key,
                                   expected_version, move)

    async def declare_obligation(self, case_id: UUID, cmd: c.DeclareObligation, actor: str,
                                 key: str | None, expected_version: int | None = None
                                 ) -> Written:
        obligation_id = child_id(case_id, "obligation", key)

        def declare(case: Case, meta: Meta) -> None:
            judged = self.path.judged_at(meta)
            if cmd.tracked_from is not None:
                self._tracked_from(case, cmd.tracked_from, judged or meta["occurred_at"])
            case.declare_obligation(obligation_id, cmd.description, cmd.cadence.value,
                                    cmd.next_due_on, meta, cmd.tracked_from, judged)

        return await self._on_case(case_id, "ObligationDeclared", cmd, actor, key,
                                   expected_version, declare)

    def _tracked_from(self, case: Case, day: date, declared_at: datetime) -> None:
        """Earlier periods are watched from a day already come (the resident says a payment
        did not come), at most ``TRACKED_FROM_DAYS`` back; 422 otherwise (a day before the
        calendar's first year also parked the obligation in follow-up for good).
        ``declared_at``: the declaration's moment as judged (``Moments.judged_at``): dated more
        than the grace back, the year counted from the day it said reached as far back as the
        date typed."""
        today = self._today(case, declared_at)
        if not today - timedelta(days=TRACKED_FROM_DAYS) <= day <= today:
            # A year typed wrong (2006 for 2026) would plan some 240 missed periods, each a
            # high-priority call to one resident.
            raise InvalidCommand(
                f"tracked_from is a day already come, at most {TRACKED_FROM_DAYS} days back: "
                "the periods missed since then are watched too", field="tracked_from",
                max_days_back=TRACKED_FROM_DAYS)

    async def resolve_case(self, case_id: UUID, cmd: c.ResolveCase, actor: str,
                           key: str | None, expected_version: int | None = None) -> Written:
        return await self._on_case(
            case_id, "CaseResolved", cmd, actor, key, expected_version,
            lambda case, meta: case.resolve(
                cmd.outcome.value, cmd.explanation, cmd.emotion_defused, meta,
                cmd.emotion_on_leaving.value if cmd.emotion_on_leaving else None,
                self.path.judged_at(meta)))

    async def reopen_case(self, case_id: UUID, cmd: c.ReopenCase, actor: str,
                          key: str | None, expected_version: int | None = None, *,
                          supervisor: bool = False) -> Written:
        """Staff reopen a resolved case; past its due date on the service's clock, it gets
        its item's days again only from a ``supervisor`` not its clerk, nor one who worked
        its help tasks (``Case.reopen``, ``_helped``)."""
        helped = await self._helped(case_id, supervisor)
        return await self._on_case(case_id, "CaseReopened", cmd, actor, key, expected_version,
                                   lambda case, meta: case.reopen(
                                       cmd.reason, meta, self._reopened_due(case, meta),
                                       self._today(case, self.path.now()), supervisor,
                                       helped, self.path.judged_at(meta)))

    async def hear_unsolved(self, case_id: UUID, verdict: Verdict) -> bool:
        """A resident's "not solved" (``verdicts.py``): the case reopened once per verdict,
        whatever the redeliveries (the verdict's event id is the command's key); True when
        this call reopened it. A verdict heard at another center than the case's is refused
        (``Forbidden``): another center's follow-up naming this case (a case id typed into a
        hand-made post-resolution check) must not reopen it."""
        key = f"verdict:{verdict.event_id}"
        # Judged on the day it was stored upstream, but never on a day ahead of intake's own
        # clock: no message is stored after it is applied, so a later recorded_at is the
        # upstream clock running ahead (a day ahead kept a clerk's on-time check's due date).
        now = self.path.now()
        stored_at = min(verdict.recorded_at, now) if verdict.recorded_at else now
        meta = meta_for(VERDICTS_ACTOR, key, verdict.said_at,
                        case_id=case_id) | {"correlation_id": verdict.correlation_id}
        reopened: dict[str, bool] = {}

        def act(case: Case, meta: Meta) -> None:
            if case.center_id != verdict.center_id:
                raise Forbidden("a verdict heard at another center than the case's",
                                case_center=case.center_id, verdict_center=verdict.center_id)
            reopened["yes"] = case.hear_unsolved(verdict.said_at, meta,
                                                 self._reopened_due(case, meta),
                                                 self._today(case, stored_at),
                                                 verdict.heard_by,
                                                 self.path.moments.judged_at(verdict.said_at,
                                                                             now))

        await self.path.on(case_id, "case", "CaseReopened", act, meta, key)  # again: replayed
        return reopened.get("yes", False)
    # -- employment aid (就业援助) ---------------------------------------------------------------

    def is_employment_aid(self, service_item: str) -> bool:
        """An employment-aid case: its item is of the catalogue's employment category."""
        item = self.catalogue.get(service_item)
        return item is not None and item.category == EMPLOYMENT_CATEGORY

    async def hold_guidance_session(self, case_id: UUID, cmd: c.HoldGuidanceSession,
                                    actor: str, key: str | None,
                                    expected_version: int | None = None) -> Written:
        session_id = child_id(case_id, "guidance-session", key)
        return await self._on_case(
            case_id, "GuidanceSessionHeld", cmd, actor, key, expected_version,
            lambda case, meta: case.hold_guidance_session(
                session_id, cmd.held_on, cmd.counter_id or case.counter_id, cmd.topic.value,
                cmd.note, self.is_employment_aid(case.service_item), meta))

    async def record_placement(self, case_id: UUID, cmd: c.RecordPlacement, actor: str,
                               key: str | None, expected_version: int | None = None
                               ) -> Written:
        return await self._on_case(
            case_id, "PlacementRecorded", cmd, actor, key, expected_version,
            lambda case, meta: case.record_placement(
                cmd.employed_on, cmd.employer_type.value, cmd.counter_id or case.counter_id,
                self.is_employment_aid(case.service_item), meta))


def child_id(case_id: UUID, kind: str, key: str | None) -> UUID:
    """A deadline's or an obligation's id: the same for a retried command (its key)."""
    return uuid5(CHILD_NAMESPACE, f"{case_id}:{kind}:{key or datetime.now(UTC)}")


class Residents:
    """The residents' use cases: the vault's acts, and what the log learns of them
    (``ConsentChanged``, ``CareNeedChanged``, ``ResidentErased``; no personal data)."""

    def __init__(self, committer: GroupCommitter, vault: Vault) -> None:
        self.committer = committer
        self.vault = vault

    async def register(self, data: ResidentData, access: Access) -> Registered:
        registered = await self.vault.register(data, access)
        await self._publish_now(registered.resident_id)
        return registered

    async def change(self, resident_id: UUID, changes: dict[str, Any], access: Access,
                     key: str) -> None:
        if await self.vault.change(resident_id, changes, access, key):
            await self._publish_now(resident_id)

    async def declare_facts(self, resident_id: UUID, facts: list[str], access: Access,
                            key: str) -> None:
        """Keep what the resident declared (with their consent); the log learns whether
        they need more care."""
        await self.vault.declare_facts(resident_id, facts, access, key)
        await self._publish_now(resident_id)

    async def retell_care(self, resident_id: UUID, actor: str) -> None:
        """The resident's need for care changed with time (80 reached): tell the log."""
        if await self.vault.retell_care(resident_id, actor):
            await self._publish_now(resident_id)

    async def erase(self, resident_id: UUID, access: Access) -> datetime:
        """Erase, then put the erasure on the log. A retried request finishes a job a crash
        interrupted (the event is recorded once: the record knows it is erased).

        A refused erasure publishes nothing: until stop 50 the publish ran whatever the vault
        answered, so another center's supervisor refused as for an id nobody has still took
        the resident's row lock (waiting behind their center's writer) and, for a resident
        with a change not on the log yet, opened their data and recorded the change: work an
        id nobody has does not cost (``tests/security/test_vault_locks_in_reach_only.py``)."""
        erased_at = await self.vault.erase(resident_id, access)
        await self._publish_now(resident_id)
        return erased_at

    async def publish(self, resident_id: UUID) -> Written | None:
        """What the vault marked for the log, as an event on the resident's record."""
        return await self.vault.publish(resident_id, self._record)

    async def _publish_now(self, resident_id: UUID) -> None:
        """Publish what the request marked; when the event store is down, the mark stays
        and the workers' sweep publishes it (the vault's change is already committed)."""
        try:
            await self.publish(resident_id)
        except Exception as exc:
            log.warning("residents.publish_deferred", resident_id=str(resident_id),
                        error=f"{type(exc).__name__}: {exc}")

    async def publish_pending(self, batch: int = 64) -> int:
        """Everything still marked (a crash between the vault and the log, or residents
        registered before consent went on the log): at start, in the workers. Returns how
        many residents were published."""
        done, after = 0, None
        while ids := await self.vault.pending(batch, after):
            results = await asyncio.gather(*(self.publish(i) for i in ids),
                                           return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            done += len(results) - len(failed)
            if failed:  # left marked for the next pass; the others go on
                log.warning("residents.publish_failed", failed=len(failed), error=str(failed[0]))
            after = ids[-1]
        return done

    async def keep_up(self, every_s: float = 60.0) -> None:
        """The workers' loop, at start and then every ``every_s``: ``publish_pending``, and
        presence grants long over forgotten."""
        while True:
            if published := await self.publish_pending():
                log.info("residents.published", residents=published)
            await self.vault.forget_expired_grants()
            await asyncio.sleep(every_s)

    async def _record(self, fact: Fact) -> Written:
        meta = meta_for(fact.actor, None, fact.occurred_at, center_id=fact.home_center)

        def run(unit: Unit) -> Aggregate:
            resident: Resident | None = unit.find(fact.resident_id)
            if resident is None:
                resident = (Resident.erased_before_recorded(fact.resident_id, meta)
                            if fact.erased else
                            Resident.registered(fact.resident_id, fact.contact, fact.surveys,
                                                meta))
                unit.add(resident)
            elif fact.erased:
                resident.erase(meta)
            else:
                resident.change_consent(fact.contact, fact.surveys, meta)
            if not fact.erased:
                resident.note_care(fact.more_care, meta)
            return resident

        return await self.committer.submit(run, [fact.resident_id])
