"""Intake's aggregates, no I/O here: the Case (steps 1-4 of the six-step method at the counter),
the Resident (what the log knows of a resident of the vault: consent, whether they need more
care, erasure) and the Hint (an item an eligibility rule suggested: shown, taken, dismissed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate, event
from eventsourcing.utils import get_topic

from shared.contracts.vocabulary import (
    RESIDENT_SAYS_UNSOLVED,
    ActionKind,
    Basis,
    DueCause,
    DueSource,
    Emotion,
    Outcome,
    ReferralKind,
)
from shared.kernel.errors import CommandError, InvalidCommand, RuleViolated
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.ids import uuid5
from shared.kernel.meta import Meta
from shared.kernel.serving import is_own_case, staff_of_step

CASE_NAMESPACE = UUID("0f7c8a52-2a8e-4d55-b0a4-6c3e1f8b9d10")


def case_id_for(center_id: str, idempotency_key: str) -> UUID:
    """Opening a case twice with one Idempotency-Key opens it once."""
    return uuid5(CASE_NAMESPACE, f"{center_id}\x1f{idempotency_key}")


@dataclass(frozen=True)
class DueCandidate:
    """A day the case could be due by, from one source, worked out on the calendar by the use
    case (``application.py``): the domain keeps the earliest (``Case.consider_due``)."""

    due_on: date
    source: DueSource
    cause: DueCause
    basis: Basis
    counted_from: date | None = None
    working_days: int | None = None


class NotCaseOwner(CommandError):
    """Only the case's clerk or a supervisor moves a case's due date."""

    status = 403
    code = "forbidden_case_owner"


class ExtensionNeedsSupervisor(CommandError):
    """A case already overdue is given a later due date (延期) only by a supervisor."""

    status = 403
    code = "extension_needs_supervisor"


class UrgencyNeedsSupervisor(CommandError):
    """A case's urgency is lowered only by a supervisor: the latest ``ConcernsNoted`` is the
    urgency the worklists read, so a clerk noting "normal" took a critical case off the
    board's "critical whatever its due date" list."""

    status = 403
    code = "urgency_needs_supervisor"


#: Urgency from least to most: raising it is anyone's, lowering it a supervisor's.
URGENCY_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}


class SelfApproval(CommandError):
    """A supervisor who is an overdue case's own clerk (first or current) does not approve its
    extension (延期审批): another supervisor does, as an appeal is decided by someone other than
    the clerk (``self_decision``)."""

    status = 403
    code = "self_approval"


class Case(RemembersCommands):
    """One resident's affair at one center, from the first word to the resolution."""

    where = "on this case"

    @event("CaseOpened")
    def __init__(self, id: UUID, center_id: str, counter_id: str, clerk_id: str,
                 channel: str, service_item: str, resident_id: UUID | None, meta: Meta,
                 resident_basis: str | None = None, applicant_id: UUID | None = None,
                 applicant_basis: str | None = None) -> None:
        """``resident_basis``: the vault's standing for naming the resident (registration or
        presence_grant); None for a case without a resident, and for cases opened before the
        vault checked it (their events have no such attribute). ``resident_id`` is the
        beneficiary; ``applicant_id`` who applied for them (代办), the beneficiary when they
        came for themselves (and for cases opened before v3, None here)."""
        self.center_id = center_id
        self.counter_id = counter_id
        self.clerk_id = clerk_id
        self.channel = channel
        self.service_item = service_item
        self.resident_id = resident_id
        self.applicant_id = applicant_id or resident_id
        self.guidance_sessions: set[UUID] = set()
        self.placed = False
        self.status = "open"
        self.owner_clerk: str | None = clerk_id  # who does the work now (首问: clerk_id)
        self.owner_team: str | None = None
        self.heard = False
        self.understood = False
        self.emotion: str | None = None
        self.deadlines: set[UUID] = set()
        self.obligations: set[UUID] = set()
        self.due_on: date | None = None
        self.due: dict[str, Any] = {}  # the latest CaseDueDateSet: source, basis, counting
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "CaseOpened", created=True)

    def meta_for(self, meta: Meta) -> Meta:
        """A case is its own case: its events carry its id as ``case_id``."""
        return {**meta, "center_id": self.center_id, "case_id": self.id}

    def _remember(self, meta: dict[str, Any], kind: str, created: bool = False,
                  named: Mapping[str, Any] | None = None) -> None:
        """Also folds the step's staff (``shared.kernel.serving.staff_of_step``: its actor when
        it serves the resident, hearing them included, and the colleague it names in
        ``named``) into ``staff``, the case's side of :meth:`is_own_case`."""
        super()._remember(meta, kind, created)
        if who := staff_of_step(kind, meta.get("actor"), named or {}):
            staff = self.__dict__.get("staff")
            if staff is None:  # a case rebuilt from a snapshot taken before staff was kept
                staff = {self.clerk_id, *self.__dict__.get("owners", ())}
            self.staff = staff | set(who)

    # -- rules ------------------------------------------------------------------------------

    def check_open(self) -> None:
        if self.status != "open":
            raise RuleViolated("the case is resolved; reopen it first", status=self.status,
                               rule="case_resolved")

    def check_heard(self, what: str) -> None:
        if not self.heard:
            raise RuleViolated(f"cannot {what} a case whose request was never heard "
                               "(step 1 comes first)", rule="heard_first")

    # -- step 1: listen ---------------------------------------------------------------------

    def hear_request(self, words: str, meta: Meta) -> None:
        self.check_open()
        self._heard(words=words, meta=meta)

    @event("RequestHeard")
    def _heard(self, words: str, meta: Meta) -> None:
        self.heard = True
        self._remember(meta, "RequestHeard")

    def restate_request(self, restatement: str, confirmed: bool, correction: str | None,
                        meta: Meta) -> None:
        self.check_open()
        self.check_heard("restate")
        if confirmed and correction:
            raise InvalidCommand("a confirmed restatement has no correction",
                                 field="correction")
        if not confirmed and not (correction and correction.strip()):
            raise InvalidCommand("a restatement must be confirmed by the resident, or corrected "
                                 "with the resident's correction", field="correction")
        self._restated(restatement=restatement, confirmed=confirmed,
                       correction=correction or None, meta=meta)

    @event("RequestRestated")
    def _restated(self, restatement: str, confirmed: bool, correction: str | None,
                  meta: Meta) -> None:
        self.understood = confirmed
        self._remember(meta, "RequestRestated")

    # -- step 2: empathize ------------------------------------------------------------------

    def note_concerns(self, needs: list[str], worries: list[str], emotion: str, urgency: str,
                      meta: Meta, supervisor: bool = False, helped: Iterable[str] = ()) -> None:
        """Noted again, urgency may rise by anyone; lowered (below the urgency noted last) only
        by a ``supervisor`` who is not the case's clerk (first, current, or one who handed it
        on: ``is_own_case``; 403 ``urgency_needs_supervisor``: nobody lowers the urgency of
        their own case, a supervisor serving cases included, as nobody approves their own
        extension), recorded with the urgency it was lowered from (``lowered_from``) and, as
        every event, its actor."""
        self.check_open()
        was = self.__dict__.get("urgency")  # none before it was kept: nothing to lower
        lowered = was is not None and URGENCY_RANK[urgency] < URGENCY_RANK[was]
        if lowered and not supervisor:
            raise UrgencyNeedsSupervisor(
                f"the case's urgency is {was}: only a supervisor lowers it",
                urgency=was, field="urgency")
        if lowered and self.is_own_case(meta.get("actor"), helped):
            raise UrgencyNeedsSupervisor(
                f"the case's urgency is {was} and the case is yours (its clerk now or "
                "before): another supervisor lowers it", urgency=was, field="urgency",
                own_case=True)
        self._concerns_noted(needs=list(needs),
                             worries=list(worries),
                             emotion=emotion, urgency=urgency, meta=meta,
                             lowered_from=was if lowered else None)

    @event("ConcernsNoted")
    def _concerns_noted(self, needs: list[str], worries: list[str], emotion: str, urgency: str,
                        meta: Meta, lowered_from: str | None = None) -> None:
        if self.emotion is None:
            self.emotion = emotion
        self.urgency = urgency
        self._remember(meta, "ConcernsNoted",
                       named={"lowered_from": lowered_from} if lowered_from else None)

    # -- step 3: guide ----------------------------------------------------------------------

    def give_guidance(self, service_item: str, policy_basis: str, eligibility: str,
                      promised: str, missing_documents: list[str], meta: Meta,
                      due: list[DueCandidate] | None = None, plain_words: str = "") -> None:
        """``due``: the item's usual working days counted from today, and the date promised
        to the resident when one was: the earliest becomes the due date unless it is
        already earlier. ``policy_basis``: the formal citation; ``plain_words``: the same
        explained in the resident's language (what the one-time notice prints)."""
        self.check_open()
        self.check_heard("guide")
        self._guided(service_item=service_item, policy_basis=policy_basis,
                     eligibility=eligibility, promised=promised,
                     missing_documents=missing_documents, plain_words=plain_words, meta=meta)
        self.consider_due(due or [], meta)

    @event("GuidanceGiven")
    def _guided(self, service_item: str, policy_basis: str, eligibility: str, promised: str,
                missing_documents: list[str], meta: Meta, plain_words: str = "") -> None:
        self.service_item = service_item
        self._remember(meta, "GuidanceGiven")

    # -- step 4: serve ----------------------------------------------------------------------

    def take_action(self, kind: str, description: str, referred_to: str | None,
                    meta: Meta, owner_clerk: str | None = None, unit_kind: str | None = None,
                    unit_contact: str | None = None,
                    within_working_days: int | None = None,
                    judged_at: datetime | None = None) -> None:
        """An action; an escalation (帮办) may name the colleague who is to help
        (``owner_clerk``, else the supervisor team); a referral (派单) names the unit
        (``referred_to``, ``unit_kind``) and may give its contact. ``within_working_days``:
        the help task's or the reply's deadline. ``judged_at``: as ``note_deadline``'s."""
        self.check_open()
        self.check_heard("serve")
        if kind == ActionKind.REFERRED and not referred_to:
            raise InvalidCommand("a referral names where the resident was referred to",
                                 field="referred_to")
        if owner_clerk is not None and kind != ActionKind.ESCALATED:
            raise InvalidCommand("only an escalation names a colleague to help",
                                 field="owner_clerk")
        if kind != ActionKind.REFERRED and (unit_kind or unit_contact):
            raise InvalidCommand("only a referral names a unit's kind and contact",
                                 field="unit_kind" if unit_kind else "unit_contact")
        if within_working_days is not None and kind not in (ActionKind.ESCALATED,
                                                            ActionKind.REFERRED):
            raise InvalidCommand("only an escalation or a referral has a deadline",
                                 field="within_working_days")
        if kind == ActionKind.REFERRED and unit_kind is None:
            unit_kind = ReferralKind.OTHER.value
        self._acted(kind=kind, description=description, referred_to=referred_to,
                    owner_clerk=owner_clerk, unit_kind=unit_kind, unit_contact=unit_contact,
                    within_working_days=within_working_days, meta=meta, judged_at=judged_at)

    @event("ActionTaken")
    def _acted(self, kind: str, description: str, referred_to: str | None, meta: Meta,
               owner_clerk: str | None = None, unit_kind: str | None = None,
               unit_contact: str | None = None, within_working_days: int | None = None,
               judged_at: datetime | None = None) -> None:
        self._remember(meta, "ActionTaken", named={"owner_clerk": owner_clerk})

    def hand_over(self, to_clerk: str | None, to_team: str | None, reason: str,
                  meta: Meta) -> None:
        """转办 under 首问负责制: the work goes to another clerk or team; the first clerk
        (``clerk_id``) stays accountable."""
        self.check_open()
        if (to_clerk is None) == (to_team is None):
            raise InvalidCommand("hand the case to exactly one clerk or one team",
                                 field="to_clerk")
        if (to_clerk, to_team) == (self.owner_clerk, self.owner_team):
            raise RuleViolated("the case is already theirs", rule="same_owner",
                               owner=to_clerk or to_team)
        self._handed_over(to_clerk=to_clerk, to_team=to_team, from_clerk=self.owner_clerk,
                          from_team=self.owner_team, first_clerk=self.clerk_id, reason=reason,
                          meta=meta)

    @event("CaseHandedOver")
    def _handed_over(self, to_clerk: str | None, to_team: str | None, from_clerk: str | None,
                     from_team: str | None, first_clerk: str, reason: str,
                     meta: Meta) -> None:
        self.owner_clerk, self.owner_team = to_clerk, to_team
        if to_clerk is not None:  # every clerk who has had it (a set per case: a few names)
            self.__dict__.setdefault("owners", set()).add(to_clerk)
        self._remember(meta, "CaseHandedOver", named={"to_clerk": to_clerk})

    def note_deadline(self, deadline_id: UUID, due_on: date, description: str,
                      meta: Meta, due: DueCandidate | None = None,
                      judged_at: datetime | None = None) -> None:
        """``due``: the deadline as a due date (it wins when it is the earliest).
        ``judged_at``: the moment follow-up takes the deadline as noted when ``occurred_at``
        lies more than the grace back (``Moments.judged_at``); None when it stands."""
        self.check_open()
        self._deadline_noted(deadline_id=deadline_id, due_on=due_on,
                             description=description, meta=meta, judged_at=judged_at)
        self.consider_due([due] if due is not None else [], meta)

    # -- the due date (办结时限) -------------------------------------------------------------

    def consider_due(self, candidates: list[DueCandidate], meta: Meta) -> bool:
        """The earliest candidate becomes the due date when there is none yet or it is
        earlier: an automatic source never puts a due date later (only a person does, with
        a reason: ``move_due_date``). True when a ``CaseDueDateSet`` was recorded."""
        if not candidates:
            return False
        best = min(candidates, key=lambda c: c.due_on)  # ties: the first given
        if self.due_on is not None and best.due_on >= self.due_on:
            return False
        self._due_date_set(due_on=best.due_on, source=best.source.value,
                           cause=best.cause.value, basis=best.basis.value,
                           previous_due_on=self.due_on, counted_from=best.counted_from,
                           working_days=best.working_days, note=None, meta=meta)
        return True

    def check_may_move_due(self, actor: str, supervisor: bool) -> None:
        # 首问负责制: the first clerk stays accountable, the one it was handed to does the work.
        if not supervisor and actor not in (self.clerk_id, self.owner_clerk):
            raise NotCaseOwner("only the case's clerk (first or current) or a supervisor moves "
                               "its due date", clerk_id=self.clerk_id,
                               owner_clerk=self.owner_clerk, actor=actor)

    def is_own_case(self, actor: str | None, helped: Iterable[str] = ()) -> bool:
        """Whether the case is ``actor``'s (``shared.kernel.serving.is_own_case``, the one
        definition feedback's ``self_decision`` and follow-up's 代评 read too): its first
        clerk, or staff who served it (heard it, noted its concerns, guided, acted, had it
        handed to them, were asked to help, resolved it; the clerk now, and one who handed it
        on, included). Not the one to approve its extension (延期审批) nor to lower its
        urgency. A case rebuilt from a snapshot taken before its staff were kept knows its
        clerks (first, current, those it was handed to) and the steps since. ``helped``: who
        worked its help tasks (follow-up's, ``services.intake.helpers``), its staff too."""
        staff = self.__dict__.get("staff")
        if staff is None:
            staff = {self.owner_clerk, *self.__dict__.get("owners", ())}
        return is_own_case(actor, self.clerk_id, staff | {self.owner_clerk, *helped})

    def overdue_on(self, today: date | None) -> bool:
        """Whether the due date has passed by ``today`` (the center's day on the service's
        clock; None: not known, not overdue)."""
        return today is not None and self.due_on is not None and self.due_on < today

    def approves_extension(self, actor: str | None, supervisor: bool,
                           helped: Iterable[str] = ()) -> bool:
        """A later due date for an overdue case comes from a supervisor not its clerk (nor
        one of its staff, ``helped`` included: ``is_own_case``)."""
        return supervisor and actor is not None and not self.is_own_case(actor, helped)

    def move_due_date(self, due_on: date, note: str, basis: str, actor: str, supervisor: bool,
                      meta: Meta, today: date | None = None, helped: Iterable[str] = ()
                      ) -> None:
        """``helped``: who worked the case's help tasks (follow-up's: the case's steps do not
        name them when the escalation named nobody). ``today``: the center's day on the
        service's clock (never the command's
        ``occurred_at``, which the caller chooses). A case already overdue by then gets a
        later due date only from a supervisor (延期审批): its clerk moving it would take it off
        the overdue list and, resolved, count it on time in 按时办结率. Not from a supervisor
        who is its clerk (first or current, a case handed to them included): that would be
        approving their own extension (``SelfApproval``); nor from one who had it before and
        handed it on: handing it to a team or a colleague, approving, and taking it back would
        be the same self-approval by a second route."""
        self.check_open()
        self.check_may_move_due(actor, supervisor)
        if self.overdue_on(today) and due_on > self.due_on:
            if not supervisor:
                raise ExtensionNeedsSupervisor(
                    "the case is overdue: a later due date (延期) needs a supervisor",
                    due_on=self.due_on.isoformat(), today=today.isoformat())
            if self.is_own_case(actor, helped):
                raise SelfApproval(
                    "the case is overdue and yours (its clerk now or before): another "
                    "supervisor approves its extension (延期审批)", due_on=self.due_on.isoformat(),
                    today=today.isoformat())
        if not note.strip():
            raise InvalidCommand("moving a due date needs the reason", field="note")
        if due_on == self.due_on:
            raise InvalidCommand("the case is already due on that day", field="due_on",
                                 due_on=due_on.isoformat())
        self._due_date_set(due_on=due_on, source=DueSource.MOVED.value,
                           cause=DueCause.MOVED.value, basis=basis,
                           previous_due_on=self.due_on, counted_from=None, working_days=None,
                           note=note, meta=meta)

    def replan_due(self, due_on: date, basis: str, meta: Meta) -> bool:
        """The item's usual working days counted again on the calendar in force, once an
        official schedule replaced the provisional year they were counted on, or changed
        official days they ran over: recorded (``cause: calendar_published``) when the day or
        its basis changes. Only an open case's due date from its item's days is re-planned; a
        promised day, a deadline or a day set by hand is a day, whatever the calendar."""
        due = self.__dict__.get("due", {})
        if (self.status != "open" or due.get("source") != DueSource.ITEM_DAYS
                or (due_on, basis) == (self.due_on, due.get("basis"))):
            return False
        self._due_date_set(due_on=due_on, source=DueSource.ITEM_DAYS.value,
                           cause=DueCause.CALENDAR_PUBLISHED.value, basis=basis,
                           previous_due_on=self.due_on, counted_from=due["counted_from"],
                           working_days=due["working_days"], note=None, meta=meta)
        return True

    @event("CaseDueDateSet")
    def _due_date_set(self, due_on: date, source: str, cause: str, basis: str,
                      previous_due_on: date | None, counted_from: date | None,
                      working_days: int | None, note: str | None, meta: Meta) -> None:
        self.due_on = due_on
        self.due = {"source": source, "basis": basis, "counted_from": counted_from,
                    "working_days": working_days}
        self._remember(meta, "CaseDueDateSet")

    @event("DeadlineNoted")
    def _deadline_noted(self, deadline_id: UUID, due_on: date, description: str,
                        meta: Meta, judged_at: datetime | None = None) -> None:
        self.deadlines.add(deadline_id)
        self._remember(meta, "DeadlineNoted")

    def declare_obligation(self, obligation_id: UUID, description: str, cadence: str,
                           next_due_on: date, meta: Meta, tracked_from: date | None = None,
                           judged_at: datetime | None = None) -> None:
        """``judged_at``: the moment follow-up takes the declaration as made when it lies more
        than the grace back (the service's clock less the grace, ``Moments.judged_at``); None
        when ``occurred_at`` stands."""
        if self.resident_id is None:
            raise RuleViolated("a recurring obligation needs a resident to contact; "
                               "the case was opened without a resident id",
                               rule="resident_needed")
        self._obligation_declared(obligation_id=obligation_id, description=description,
                                  cadence=cadence, next_due_on=next_due_on, meta=meta,
                                  tracked_from=tracked_from, judged_at=judged_at)

    @event("ObligationDeclared")
    def _obligation_declared(self, obligation_id: UUID, description: str, cadence: str,
                             next_due_on: date, meta: Meta, tracked_from: date | None = None,
                             judged_at: datetime | None = None) -> None:
        self.obligations.add(obligation_id)
        self._remember(meta, "ObligationDeclared")

    # -- employment aid (就业援助): guidance sessions and the placement ---------------------------

    @staticmethod
    def check_employment_aid(is_employment_aid: bool) -> None:
        if not is_employment_aid:
            raise RuleViolated("guidance sessions and placements are recorded on an "
                               "employment-aid case (an item of the employment category)",
                               rule="employment_aid_only")

    def hold_guidance_session(self, session_id: UUID, held_on: date, counter_id: str,
                              topic: str, note: str | None, is_employment_aid: bool,
                              meta: Meta) -> None:
        self.check_employment_aid(is_employment_aid)
        if self.resident_id is None:
            raise RuleViolated("a guidance session is held with a resident; the case names "
                               "none", rule="resident_needed")
        self._guidance_session_held(session_id=session_id, held_on=held_on,
                                    counter_id=counter_id, topic=topic, note=note, meta=meta)

    @event("GuidanceSessionHeld")
    def _guidance_session_held(self, session_id: UUID, held_on: date, counter_id: str,
                               topic: str, note: str | None, meta: Meta) -> None:
        self.guidance_sessions.add(session_id)
        self._remember(meta, "GuidanceSessionHeld")

    def record_placement(self, employed_on: date, employer_type: str, counter_id: str,
                         is_employment_aid: bool, meta: Meta) -> None:
        self.check_employment_aid(is_employment_aid)
        if self.resident_id is None:
            raise RuleViolated("a placement is a resident's; the case names none",
                               rule="resident_needed")
        if self.placed:
            raise RuleViolated("the placement of this case is recorded already",
                               rule="placed_once")
        self._placement_recorded(employed_on=employed_on, employer_type=employer_type,
                                 counter_id=counter_id, meta=meta)

    @event("PlacementRecorded")
    def _placement_recorded(self, employed_on: date, employer_type: str, counter_id: str,
                            meta: Meta) -> None:
        self.placed = True
        self._remember(meta, "PlacementRecorded")

    def resolve(self, outcome: str, explanation: str, emotion_defused: bool | None,
                meta: Meta, emotion_on_leaving: str | None = None,
                judged_at: datetime | None = None) -> None:
        """``emotion_on_leaving``: what the resident left with; ``emotion_defused`` the
        clerk's word, derived from it when not given (see :func:`defused_on_leaving`).
        ``judged_at``: the moment the due date judges a backdated resolution by (the service's
        clock less the grace, ``Moments.judged_at``), None when ``occurred_at`` stands."""
        self.check_open()
        self.check_heard("resolve")
        if outcome != Outcome.RESOLVED and not explanation.strip():
            raise InvalidCommand("an outcome other than 'resolved' needs the explanation given "
                                 "to the resident", field="explanation")
        if emotion_defused is None:
            if emotion_on_leaving is None:
                raise InvalidCommand("say the emotion the resident left with "
                                     "(emotion_on_leaving) or whether it was defused",
                                     field="emotion_on_leaving")
            emotion_defused = defused_on_leaving(self.emotion, emotion_on_leaving)
        self._resolved(outcome=outcome, explanation=explanation,
                       emotion_defused=emotion_defused, emotion_on_leaving=emotion_on_leaving,
                       meta=meta, judged_at=judged_at)

    @event("CaseResolved")
    def _resolved(self, outcome: str, explanation: str, emotion_defused: bool,
                  meta: Meta, emotion_on_leaving: str | None = None,
                  judged_at: datetime | None = None) -> None:
        self.status = "resolved"
        at = meta.get("occurred_at")
        self.resolved_at = datetime.fromisoformat(at) if isinstance(at, str) else at
        self.resolution_judged_at = judged_at
        self._remember(meta, "CaseResolved")

    def reopen(self, reason: str, meta: Meta, due: DueCandidate | None = None,
               today: date | None = None, supervisor: bool = False,
               helped: Iterable[str] = (), judged_at: datetime | None = None) -> None:
        """``due``: the item's usual working days counted from the reopening day
        (``renew_due``). ``today``: the center's day on the service's clock (never the
        command's ``occurred_at``). A case whose due date has passed by then is reopened by
        staff with that due date, overdue, unless a supervisor who is not its clerk reopens
        it (``approves_extension``): renewed, a reopening is an extension (延期) without
        approval. Resolved (or dated, within the grace) on its due day and reopened by its
        clerk the next morning, an overdue case got the item's days again; resolved again,
        on time in 按时办结率. Its extension is the supervisor's (``move_due_date``). The
        resident's word renews it (``hear_unsolved``). ``judged_at``: the moment follow-up
        takes the reopening as made when ``occurred_at`` lies more than the grace back (last
        month's slip typed in today: ``Moments.judged_at``); None when it stands."""
        if self.status != "resolved":
            raise RuleViolated("only a resolved case can be reopened", status=self.status,
                               rule="reopen_resolved_only")
        self._reopened(reason=reason, meta=meta, judged_at=judged_at)
        if self.overdue_on(today) and not self.approves_extension(meta.get("actor"), supervisor,
                                                                  helped):
            return
        self.renew_due(due, meta)

    def hear_unsolved(self, said_at: datetime, meta: Meta,
                      due: DueCandidate | None = None, today: date | None = None,
                      heard_by: str | None = None, judged_at: datetime | None = None) -> bool:
        """The resident said the matter was not solved (at the survey or the post-resolution
        check): the case is reopened, with the reason ``resident_says_unsolved``. Nothing
        when the case is open already (a clerk reopened it) or when the word was said before
        the case's latest resolution (it speaks of an earlier one); True when reopened.
        ``due``: as for ``reopen``. ``heard_by``: who recorded the answer (the upstream
        actor); ``today``: the center's day the answer was stored upstream (its
        ``recorded_at``), as ``reopen``'s is the day on the service's clock when asked.
        Past its due date, a case whose own clerk recorded the "not solved" (``is_own_case``:
        their post-resolution check) is reopened keeping that due date, as if they had
        reopened it (``reopen``): else the clerk's
        check was the extension (延期) without approval a reopening by hand is refused. Heard
        by the survey or by another colleague, the resident's word renews it. ``judged_at``:
        the moment follow-up plans the clerk's "not solved" from when ``said_at`` lies more
        than the grace back (``Moments.judged_at``); None when it stands."""
        resolved_at = getattr(self, "resolved_at", None)
        if self.status != "resolved" or (resolved_at is not None and said_at < resolved_at):
            return False
        self._reopened(reason=RESIDENT_SAYS_UNSOLVED, meta=meta, judged_at=judged_at)
        if not (self.overdue_on(today) and heard_by is not None
                and self.is_own_case(heard_by)):
            self.renew_due(due, meta)
        return True

    def resolved_late(self, resolved_on: date) -> bool:
        """Whether the latest resolution, on ``resolved_on`` (the center's day), came after
        the due date in force. Then a reopening renews nothing (the caller gives
        ``renew_due`` no ``due``): 按时办结率 judges a case by its latest due date, and days
        counted again from the reopening would have a case resolved late, reopened and
        resolved again counted on time."""
        return self.due_on is not None and resolved_on > self.due_on

    def renew_due(self, due: DueCandidate | None, meta: Meta) -> bool:
        """Just reopened: a case with a due date gets its item's usual working days again,
        counted from the reopening day (``due``, cause ``reopened``), when its due date is
        earlier. The one the resolution was judged by is past or close, and a reopened case
        is not overdue the moment it is taken up again. A later due date (a day promised, one
        moved by hand) stays; a case never given one gets none; a case resolved late gets
        none (``resolved_late``: the caller gives no ``due``). True when recorded."""
        if due is None or self.due_on is None or self.due_on >= due.due_on:
            return False
        self._due_date_set(due_on=due.due_on, source=due.source.value,
                           cause=due.cause.value, basis=due.basis.value,
                           previous_due_on=self.due_on, counted_from=due.counted_from,
                           working_days=due.working_days, note=None, meta=meta)
        return True

    @event("CaseReopened")
    def _reopened(self, reason: str, meta: Meta, judged_at: datetime | None = None) -> None:
        self.status = "open"
        self._remember(meta, "CaseReopened")


def defused_on_leaving(arrival: str | None, leaving: str) -> bool:
    """The resident left in no emotion that needs defusing, and no worse than they came (the
    order calm < anxious < upset < angry < distressed), as the counter page proposes it."""
    rank = [e.value for e in Emotion]
    if Emotion(leaving).needs_defusing:
        return False
    return arrival is None or rank.index(leaving) <= rank.index(arrival)


VISIT_NAMESPACE = UUID("5b1d7c3e-9a24-4f6b-8e0d-3c2a1f4e5d60")


def visit_id_for(center_id: str, idempotency_key: str) -> UUID:
    """Recording a visit twice with one Idempotency-Key records it once."""
    return uuid5(VISIT_NAMESPACE, f"{center_id}\x1f{idempotency_key}")


class Visit(RemembersCommands):
    """One trip of a resident to the center (一人次): recorded when they sit down, whatever
    number of affairs it is about; it names the case when it is a return trip for one."""

    where = "on this visit"

    @event("VisitRecorded")
    def __init__(self, id: UUID, visit_id: UUID, center_id: str, counter_id: str,
                 clerk_id: str, channel: str, case_id: UUID | None, ticket: str | None,
                 wait_minutes: int | None, meta: Meta) -> None:
        self.center_id = center_id
        self.case_id = case_id
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "VisitRecorded", created=True)


class Resident(RemembersCommands):
    """A resident as the log knows them: an opaque id, the center that registered them, what
    they agreed to, and whether they were erased. No personal data: that stays in the vault.

    The record starts with whichever fact the vault has to tell first (a consent at
    registration, or an erasure for a resident registered before consent went on the log), so
    its two events can each create it or follow: see :class:`Resident.Fact`. The registering
    center is ``home_center``, not ``center_id``: another center serving the resident under a
    presence grant changes their consent too (the vault checks that standing first).
    """

    where = "on this resident"

    class Fact(Aggregate.Created):
        """An event that creates the record when it is the first, and changes it after."""

        meta: Meta
        resident_id: UUID

        def mutate(self, aggregate: Any) -> Any:
            if aggregate is None:
                return super().mutate(None)
            return CanMutateAggregate.mutate(self, aggregate)

        def apply(self, aggregate: Any) -> None:
            if self.originator_version == Resident.INITIAL_VERSION:
                aggregate.home_center = self.meta["center_id"]
                aggregate.contact = aggregate.surveys = aggregate.erased = False
                aggregate.more_care = False
                aggregate.commands = {}

    class ConsentChanged(Fact):
        contact: bool
        surveys: bool
        reason: str

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.contact, aggregate.surveys = self.contact, self.surveys
            aggregate._remember(self.meta, "ConsentChanged",
                                created=self.originator_version == Resident.INITIAL_VERSION)

    class ResidentErased(Fact):
        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.erased = True
            aggregate.contact = aggregate.surveys = False
            aggregate._remember(self.meta, "ResidentErased",
                                created=self.originator_version == Resident.INITIAL_VERSION)

    class CareNeedChanged(Fact):
        """Whether the resident needs more care (lives alone, 80 or over, disability, chronic
        illness): one bit, never which of them."""

        more_care: bool

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.more_care = self.more_care
            aggregate._remember(self.meta, "CareNeedChanged",
                                created=self.originator_version == Resident.INITIAL_VERSION)

    # -- the first fact -------------------------------------------------------------------------

    @classmethod
    def registered(cls, resident_id: UUID, contact: bool, surveys: bool,
                   meta: Meta) -> Resident:
        """A resident's record starts with the consent given at registration."""
        return cls._create(cls.ConsentChanged, id=resident_id, resident_id=resident_id,
                           contact=contact, surveys=surveys, reason="registration", meta=meta)

    @classmethod
    def erased_before_recorded(cls, resident_id: UUID, meta: Meta) -> Resident:
        """A resident erased before their consent ever reached the log."""
        return cls._create(cls.ResidentErased, id=resident_id, resident_id=resident_id,
                           meta=meta)

    # -- what follows ---------------------------------------------------------------------------

    def change_consent(self, contact: bool, surveys: bool, meta: Meta) -> bool:
        """Record a changed consent; False (nothing recorded) when it is the same, or the
        resident was erased."""
        if self.erased or (contact, surveys) == (self.contact, self.surveys):
            return False
        self._follow(self.ConsentChanged, contact=contact, surveys=surveys, reason="changed",
                     meta=meta)
        return True

    def note_care(self, more_care: bool, meta: Meta) -> bool:
        """Record whether the resident needs more care; False (nothing recorded) when the
        log already says so, or the resident was erased."""
        if self.erased or more_care == getattr(self, "more_care", False):
            return False
        self._follow(self.CareNeedChanged, more_care=more_care, meta=meta)
        return True

    def erase(self, meta: Meta) -> bool:
        """Record the erasure, once: False when it is already recorded."""
        if self.erased:
            return False
        self._follow(self.ResidentErased, meta=meta)
        return True

    def _follow(self, event_class: type[Fact], **kwargs: Any) -> None:
        self.trigger_event(event_class, originator_topic=get_topic(type(self)),
                           resident_id=self.id, **kwargs)


HINT_NAMESPACE = UUID("5d0b8e3c-7a41-4f6e-b2c9-0e8f1a3d6c27")


def hint_id_for(center_id: str, resident_id: UUID, rule_id: str, rule_version: int,
                service_item: str) -> UUID:
    """One hint per center, resident, rule version and item: shown again, it is the same."""
    return uuid5(HINT_NAMESPACE,
                 f"{center_id}\x1f{resident_id}\x1f{rule_id}\x1f{rule_version}\x1f{service_item}")


class Hint(RemembersCommands):
    """An item an eligibility rule suggested for a resident at a center: shown, then taken
    (the resident applies) or dismissed. Opaque ids only: the resident, the rule and its
    version, the item; never the age or the facts that made the rule fire."""

    where = "on this hint"

    @event("HintShown")
    def __init__(self, id: UUID, resident_id: UUID, rule_id: str, rule_version: int,
                 service_item: str, meta: Meta) -> None:
        self.center_id: str = meta["center_id"]
        self.case_id: UUID | None = None
        self.resident_id = resident_id
        self.rule_id = rule_id
        self.rule_version = rule_version
        self.service_item = service_item
        self.status = "shown"
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "HintShown", created=True)

    def check_shown(self, what: str) -> None:
        if self.status != "shown":
            raise RuleViolated(f"cannot {what} a hint that was {self.status}",
                               status=self.status, rule="hint_decided")

    def take(self, case_id: UUID | None, meta: Meta) -> None:
        self.check_shown("take")
        self._taken(resident_id=self.resident_id, rule_id=self.rule_id,
                    rule_version=self.rule_version, service_item=self.service_item,
                    case_id=case_id, meta=meta)

    @event("HintTaken")
    def _taken(self, resident_id: UUID, rule_id: str, rule_version: int, service_item: str,
               case_id: UUID | None, meta: Meta) -> None:
        self.status = "taken"
        self._remember(meta, "HintTaken")

    def dismiss(self, meta: Meta) -> None:
        self.check_shown("dismiss")
        self._dismissed(resident_id=self.resident_id, rule_id=self.rule_id,
                        rule_version=self.rule_version, service_item=self.service_item,
                        meta=meta)

    @event("HintDismissed")
    def _dismissed(self, resident_id: UUID, rule_id: str, rule_version: int,
                   service_item: str, meta: Meta) -> None:
        self.status = "dismissed"
        self._remember(meta, "HintDismissed")
