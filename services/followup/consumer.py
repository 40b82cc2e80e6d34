"""What follow-up does with other services' events: the rules of step 5.

From intake (consumed from the stream, in each case's order):

* ``CaseOpened`` / ``GuidanceGiven``: remember the case (center, resident, clerk, service items)
  in ``case_refs`` and ``resident_items``, the read model the policy fan-out walks.
* ``ConcernsNoted`` / ``DeadlineNoted`` / ``CaseDueDateSet``: remember the case's urgency, its
  due date, and whether it is *urgent*: urgency ``high`` or ``critical``, or a deadline noted
  ``urgent_deadline_working_days`` working days ahead or closer. Every follow-up planned for an
  urgent case is high priority; when a case turns urgent, its open follow-ups planned before
  become so (``FollowUpPrioritised``); its open cases head the worklists (``queries.py``).
* ``DeadlineNoted``: a *deadline reminder* at office opening N working days before the deadline
  (``followup_deadline_reminder_working_days``), or at once when the deadline is closer.
* ``CaseResolved``: the case's help tasks still open are closed as no longer needed
  (``HelpTaskClosed``, reason ``case_resolved``: off every worklist, never escalated; a
  reopening does not bring them back), and so are its referrals still awaiting a reply
  (``ReferralClosed``: never chased after; those the rules remembered, and the case's
  others in ``referrals``, sent before they were remembered), a 督办 already planned for
  one cancelled; a
  *post-resolution check* M working days later (``followup_post_resolution_working_days``);
  an *early check* (``followup_early_check_working_days``, priority high) when the outcome
  is ``cannot_be_resolved``, the emotion was not defused, or the case's resident needs more
  care (``resident_care``, from intake's ``CareNeedChanged``, as the batch knows it).
* ``CareNeedChanged`` (the resident needs more care, learnt after a resolution): the resident's
  post-resolution checks still open are brought forward to the early check (its working
  days from the resolution's day, never earlier than now: ``FollowUpRescheduled`` cause
  ``more_care``) and made high priority (``FollowUpPrioritised`` reason ``more_care``).
  The flag travels on the resident's partition, the resolution on the case's: applied at the
  same instant by two workers, the later of the two waits for the earlier to commit before
  it reads (``_meet``), so one of them always sees the other.
* ``CaseReopened``: the open post-resolution checks of the case are cancelled (the counter is
  handling it again; resolving it again schedules a new check). Its referrals the resolution
  closed unanswered, or left awaiting their first deadline (resolved before the rules closed
  referrals), are chased again (``ReferralReopened``): a new reply deadline, the
  referral's own number of working days from the reopening's day, and a 督办 of their own
  when missed again (its help tasks come back on the asker's worklist: ``queries.py``).
  Reopened because the resident said it was not solved (reason ``resident_says_unsolved``):
  a follow-up of that reason, due at once, high priority, for the case's clerk (their
  worklist and the center's board), cancelled when the case is resolved again (unless the
  clerk completed it first).
* ``ObligationDeclared``: the obligation is watched (see ``domain.Obligation``).
* ``ActionTaken`` of kind ``escalated`` (帮办): a *help task* for the named colleague or the
  supervisor team (``domain.HelpTask``); of kind ``referred`` (派单): a *referral* awaiting
  the unit's reply (``domain.Referral``), whose missing reply becomes a 督办 follow-up.
* ``CaseHandedOver`` (转办): the case's open follow-ups go to the new owner
  (``FollowUpReassigned``), and so does every follow-up planned for the case from then on;
  the first clerk stays in ``case_refs.clerk_id``.
* ``PlanStepAdded`` (a linked plan's step, on the plan's partition): a *plan step* reminder at
  office opening N working days before the step takes effect
  (``followup_deadline_reminder_working_days``), or at once when it is closer; on the step's
  case when it names one, for the plan's beneficiary, with whoever has that case now (its
  new owner after a handover) and high priority when the case is urgent.
* ``PlanCaseLinked`` (a case opened later carries a planned step): the step's reminder goes
  to whoever has that case now, high priority when it is urgent, and is the case's from then
  on (a later handover moves it, an urgency prioritises it).
  Both travel on the plan's partition, the case's handover and urgency on the case's: applied
  at the same instant by two workers, the later waits for the earlier to commit before it
  reads (``_meet``), so the reminder is planned for the new owner, or the handover moves it.

From feedback: ``RectificationOpened`` -> a *verification* contact (回访核实) due at office
opening on the first working day after the day of the bad review
(``followup_verification_working_days``), and a *rectification* follow-up due at office
opening on the deadline (on the last working day before it when the deadline is a day off);
``RectificationTriaged`` (a supervisor put it on a track) and ``RectificationDeadlineRevised``
(the deadline worked out again once an official schedule replaced a provisional year) move
that follow-up with the deadline; ``RectificationAppealDecided`` upheld (the review no longer
counts) cancels both while they are open; ``RectificationCompleted`` (the supervisor recorded
the outcome) completes the rectification follow-up and cancels an open verification.

From intake, about a resident (``residents.py``): ``ConsentChanged`` and ``ResidentErased``
are remembered, and every rule plans with what the resident agreed to
(``domain.consent_allows``): nothing for an erased resident, no outreach without consent to
contact, and a task without contact for the work owed anyway. A refusal or erasure arriving
after something was planned brings what is still open in line (cancelled, obligations ended,
or made a task: ``FollowUps.respect``).

Each effect is a command with a deterministic id, so re-applying an event after a crash finds
the follow-up already there and writes nothing. Each due moment keeps the rule it came from
and its basis (official, or provisional on a year without a published schedule), so it can be
re-planned. A rule whose dates fall outside the working-day calendar is *parked*
(``services/followup/parked.py``: visible, counted, retried when the calendar grows): never a
guessed date, never a lost follow-up.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.followup import commands as c
from services.followup import parked as parking
from services.followup import residents
from services.followup.application import (
    SYSTEM_RULES,
    Escalation,
    FollowUps,
    Plan,
    Referring,
    Watch,
)
from services.followup.domain import (
    TEAMS_OWN,
    Consent,
    consent_allows,
    counted_from,
    follow_up_id_for,
    help_task_id_for,
    obligation_aggregate_id,
    referral_id_for,
    referral_overdue_follow_up_id,
)
from shared.bus.consumer import Meanwhile, More
from shared.contracts import Envelope
from shared.contracts.followup import (
    ContactChannel,
    FollowUpOutcome,
    Priority,
    Reason,
    RescheduleCause,
)
from shared.contracts.vocabulary import RESIDENT_SAYS_UNSOLVED, Urgency
from shared.eventstore.group_commit import Sent, answered
from shared.kernel.calendar import (
    Basis,
    CalendarNotCovered,
    CalendarOutOfRange,
    DueRule,
    WorkingCalendar,
)
from shared.kernel.errors import AlreadyDoneError, InvalidCommand, NotFound, RuleViolated
from shared.kernel.moments import judged_by
from shared.kernel.serving import NAMING, SERVING, staff_of_step
from shared.kernel.tasks import cancel_and_wait
from shared.readmodels import bulk

log = structlog.get_logger("sixstep.followup.rules")

CONSUMER = "followup-rules"

#: A case as ``_CaseRefs.save`` writes it: one element of the INSERT's one array parameter
#: (``bulk.RowType``). As one array a column, asyncpg asked each of a row's 16 values whether
#: it is an array (an ``isinstance`` against ``collections.abc`` each): ~9 % of the rules'
#: handler in py-spy (perfrules48).
CASE_REF_ROW = bulk.RowType("case_ref", (
    ("case_id", "uuid"), ("center_id", "text"), ("resident_id", "uuid"), ("clerk_id", "text"),
    ("counter_id", "text"), ("service_item", "text"), ("status", "text"),
    ("opened_at", "timestamptz"), ("urgency", "text"), ("deadline_close", "boolean"),
    ("due_on", "date"), ("due_basis", "text"), ("owner_clerk", "text"), ("owner_team", "text"),
    ("turned_by", "uuid"), ("due_source", "text")))
#: A resident's item (``resident_items``) as ``_CaseRefs.save`` writes it, likewise.
RESIDENT_ITEM_ROW = bulk.RowType("resident_item", (
    ("resident_id", "uuid"), ("service_item", "text"), ("case_id", "uuid"),
    ("center_id", "text"), ("opened_at", "timestamptz")))

DDL = [
    "CREATE TABLE IF NOT EXISTS case_refs ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, resident_id uuid,"
    " clerk_id text NOT NULL, counter_id text NOT NULL, service_item text NOT NULL,"
    " status text NOT NULL, opened_at timestamptz NOT NULL)",
    # The case's urgency and due date (issue 19): urgent cases' follow-ups are high priority,
    # and the worklists show cases due soon and overdue, urgent ones first.
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS urgency text",
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS deadline_close boolean NOT NULL"
    " DEFAULT false",
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS due_on date",
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS due_basis text",
    "CREATE INDEX IF NOT EXISTS case_refs_due ON case_refs (center_id, status, due_on)",
    "CREATE TABLE IF NOT EXISTS resident_items ("
    " resident_id uuid NOT NULL, service_item text NOT NULL, case_id uuid NOT NULL,"
    " center_id text NOT NULL, opened_at timestamptz NOT NULL,"
    " PRIMARY KEY (resident_id, service_item, case_id))",
    "CREATE INDEX IF NOT EXISTS resident_items_item ON resident_items (service_item)",
    "CREATE TABLE IF NOT EXISTS rule_followups ("
    " case_id uuid NOT NULL, follow_up_id uuid NOT NULL, rule text NOT NULL,"
    " PRIMARY KEY (case_id, follow_up_id))",
    *parking.DDL,
    "CREATE INDEX IF NOT EXISTS case_refs_resident ON case_refs (resident_id)",
    *residents.DDL,
    # CaseHandedOver: the case's current owner (both null: the first clerk, clerk_id).
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS owner_clerk text",
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS owner_team text",
    # The event id of the case's latest resolution or reopening: a parked one applied again
    # (``retry_parked``) only while no later one has turned the case since (``_turned_since``).
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS turned_by uuid",
    # Where the due date came from (CaseDueDateSet.source): only one counted from the item's
    # days is counted again when its year is published; a typed one (promised, a deadline,
    # moved by hand) keeps its day, provisional or not (the board's 暂定). Rows kept before
    # this column have none until the case's due date is set again: read as the item's days,
    # as they were shown (``queries.DUE_MAY_MOVE``).
    "ALTER TABLE case_refs ADD COLUMN IF NOT EXISTS due_source text",
    # Who served the case besides its first clerk (``shared.kernel.serving``): they may not
    # record the resident's favourable verdict at its post-resolution check (代评).
    "CREATE TABLE IF NOT EXISTS case_staff ("
    " case_id uuid NOT NULL, staff text NOT NULL, PRIMARY KEY (case_id, staff))",
    # A batch's cases and their items, each row as one composite (``bulk.RowType``: never
    # altered, a new shape is a new name).
    CASE_REF_ROW.ddl,
    RESIDENT_ITEM_ROW.ddl,
]

#: What ``_CaseRefs.remember`` folds into a case (intake's events).
FOLDED = frozenset({"CaseOpened", "GuidanceGiven", "CaseResolved", "CaseReopened",
                    "ConcernsNoted", "DeadlineNoted", "CaseDueDateSet", "CaseHandedOver"})
#: What ``Rules._effect_for`` may plan from.
RULED = frozenset({"RectificationOpened", "RectificationDeadlineRevised",
                   "RectificationTriaged", "RectificationAppealDecided",
                   "RectificationCompleted", "PlanStepAdded", "PlanCaseLinked",
                   "DeadlineNoted", "CaseResolved", "CaseReopened", "ObligationDeclared",
                   "ActionTaken", "CaseHandedOver"})
#: The event types the rules do anything with, bar the residents' (read apart): a batch's
#: other events (visits, hints, plans: ``IGNORED``) are only tracked.
SEEN = FOLDED | RULED
#: What ``residents.Residents.remember`` folds (intake's word about a resident: consent,
#: erasure, care): asked of these alone, not of every event of a batch (a call each).
RESIDENTS_WORD = frozenset({*residents.TYPES, "CareNeedChanged"})
#: The two that can turn a case urgent (``is_urgent``: urgency, a deadline noted close).
MAY_TURN_URGENT = frozenset({"ConcernsNoted", "DeadlineNoted"})
#: What the rules read nothing of, of the events on their subjects (visits, hints taken or
#: dismissed, plans): only tracked, by their head alone, never handed to ``Rules.apply``
#: (``shared.bus.consumer.Handler.ignores``). A type must be named here to be ignored: a new
#: one is handed to the rules until it is. Not the steps of serving a case (``SERVING``:
#: requests heard and restated, sessions, placements): ``Refs.note_staff`` reads their actor
#: into ``case_staff``, which refuses a colleague who served the case its favourable verdict
#: at the post-resolution check (代评, ``served_case``).
IGNORED = frozenset({"VisitRecorded", "HintTaken", "HintDismissed", "PlanDrawnUp"})

#: The rule an escalation's help task is remembered under (``rule_followups``): a handover
#: leaves it with its owner, a resolution closes it.
HELP_TASK = "help_task"
#: The rule a referral (派单) is remembered under (``rule_followups``, the referral's own id,
#: beside its 督办's): a resolution closes it (``ReferralClosed``), never chased after.
REFERRAL = "referral"
#: Rules whose remembered id is no follow-up: an obligation, a help task, a referral. A
#: handover leaves them with whom they were given to (a referral's 督办 goes to the owner when
#: it is planned), and a case turning urgent does not prioritise them (no follow-up to load).
NOT_FOLLOW_UPS = ("obligation", HELP_TASK, REFERRAL)
#: ``TEAMS_OWN``: rules whose follow-ups are the team's, not the case owner's (a bad review's
#: verification and rectification). A handover of the reopened case leaves them with the
#: team: the clerk it goes to (the reviewed clerk, handed it back) is no verifier of a review
#: of the service, as 回访 is not the 承办人's (nor works them: ``check_not_own_review``).
#: What a handover moves to the case's new owner: every rule's follow-up but these.
NOT_THE_OWNERS = (*NOT_FOLLOW_UPS, *TEAMS_OWN)
#: Rules a case turning urgent leaves alone (``_turned_urgent``): those with no follow-up,
#: and a referral's 督办, remembered when the referral is sent but planned only once the reply
#: is overdue, high priority from its start.
NOT_MADE_URGENT = (*NOT_FOLLOW_UPS, Reason.REFERRAL_OVERDUE.value)

Row = tuple[UUID, UUID, str]
"""(case id, follow-up id, rule): what a rule scheduled for a case, kept in rule_followups."""
RULE_FOLLOWUP_COLUMNS = ("case_id", "follow_up_id", "rule")
RESIDENT_ITEM_COLUMNS = RESIDENT_ITEM_ROW.columns


async def _on_each(ids: Iterable[UUID], act: Callable[[UUID, str, datetime], Awaitable[Any]],
                   e: Envelope, unknown: str, field: str) -> None:
    """``act`` on each of ``ids`` once, in order, caused by ``e``: one a rule planned but
    whose aggregate was never written is logged as ``unknown`` (its id under ``field``)."""
    for id_ in dict.fromkeys(ids):
        try:
            await act(id_, str(e.event_id), e.occurred_at)
        except NotFound:
            log.warning(unknown, **{field: str(id_)})


def verification_rule(calendar: WorkingCalendar, reviewed_at: datetime,
                      working_days: int, counted_from: date | None = None) -> DueRule:
    """回访核实: office opening on the ``working_days``-th working day after the day of the
    bad review (1: the next working morning, whatever hour the review came; a Friday
    evening's is Monday's); 0: at once. ``counted_from``: the day feedback counts the
    rectification from (``RectificationOpened.counted_from``), when later than the review's:
    the day it recorded a review dated earlier (a paper form typed in three weeks after its
    date), counted from its first moment. Until calendar53 such a verification was due
    weeks back, overdue as it was planned."""
    day = calendar.local_day(reviewed_at)
    if counted_from is not None and counted_from > day:
        day, reviewed_at = counted_from, calendar.start_of_day(counted_from)
    if working_days == 0:
        return DueRule("on_or_after", day, 0, not_before=reviewed_at)
    return DueRule("on_or_after", day + timedelta(days=1), working_days - 1,
                   not_before=reviewed_at)


def _day(value: str | None) -> date | None:
    """A payload's ``Day`` (ISO text on the bus), or None."""
    return date.fromisoformat(value) if value else None


def plain(value: Any) -> UUID | None:
    """asyncpg's UUID as the standard library's (the event store transcodes only that)."""
    if value is None or type(value) is UUID:  # a case this batch opened holds its own
        return value
    return UUID(str(value))


class _Deferred:
    """The follow-ups the last steps of a batch's cases plan (``Rules._schedule``), sent in
    one command as soon as the last of those cases has run its last step (``passed``): in
    the same round as the commands sent before it, when every case got there without
    waiting for an answer.

    Also what the cases' steps came to (``rows`` for ``rule_followups``, ``parked``), noted
    as each case passes its last step: once every case has (``all_passed``), every command
    of the batch is sent and what it planned is known, before any answer is in. The batch
    writes those rows then, and may take the next batch meanwhile (``Rules.apply``)."""

    __slots__ = ("all_passed", "cases", "parked", "plans", "rows", "sent")

    def __init__(self, cases: int) -> None:
        self.cases = cases  # the batch's cases still before their last step
        self.plans: list[Plan] = []
        self.sent: Sent | None = None
        self.rows: list[Row] = []
        self.parked: list[tuple[Envelope, str, int | None]] = []
        self.all_passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if cases == 0:
            self.all_passed.set_result(None)

    def passed(self, followups: FollowUps, rows: list[Row],
               parked: list[tuple[Envelope, str, int | None]]) -> None:
        """A case ran its last step (what its steps planned: ``rows``, ``parked``): the plans
        go once every case has."""
        self.rows.extend(rows)
        self.parked.extend(parked)
        self.cases -= 1
        if self.cases == 0:
            if self.plans:
                self.sent = followups.schedule_each(self.plans)
            self.all_passed.set_result(None)


class _Before:
    """The batch a merged batch is applied in (``Merging``): the cases whose steps it ran
    (``cases``: the keys its steps were run under) and its answers (``answers``: what it
    waits on, every command of it sent)."""

    __slots__ = ("answers", "cases", "refused")

    def __init__(self, cases: frozenset[UUID], answers: asyncio.Future[Any]) -> None:
        self.cases = cases
        self.answers = answers
        #: Why it did not stand, once its answers are in and looked at ("" : it stood; None:
        #: not looked at yet). Each merged case asks (``stood``): the answers were walked
        #: once a case, every outcome of the batch each time (~220 a case, 75,000 walks in a
        #: 16,000-event drain of ``benchmarks/consumers.py``), and each ask waited a turn of
        #: the loop on answers already in.
        self.refused: str | None = None

    async def stood(self) -> None:
        """Once its answers are in: raised if any was a refusal. A merged batch's steps of a
        case the batch before ran, and its residents' refusals and care, act only once that
        batch's commands stand: a follow-up it planned whose command was refused (the store
        away past its due time) is in ``rule_followups`` already, and a reopening merged
        behind it would cancel a check never stored, a handover move it, and so on. Refused,
        the merged batch is handed back (nothing of it stands) and applied after the batch
        before again."""
        if not self.answers.done():
            await asyncio.wait((self.answers,))
        if self.refused is None:
            self.refused = _refusal(self.answers)
        if self.refused:
            raise _BeforeRefused(self.refused)


def _refusal(answers: asyncio.Future[Any]) -> str:
    """Why a batch's settled ``answers`` do not stand (its first refusal), or "" when they do."""
    if answers.cancelled():
        return "the batch before was stopped"
    for outcome in _outcomes(answers.result()):
        if isinstance(outcome, BaseException):
            return f"the batch before was refused: {outcome!r}"[:300]
    return ""


def _outcomes(settled: Any) -> Iterable[Any]:
    """Every outcome in a gather's results (``return_exceptions``), nested ones too."""
    for outcome in settled:
        if isinstance(outcome, list):
            yield from _outcomes(outcome)
        else:
            yield outcome


def _waits_on(before: _Before | None, key: UUID, steps: list[tuple[Envelope, Effect]]
              ) -> _Before | None:
    """The batch before, when a merged batch's steps under ``key`` act on what it planned:
    steps of a case it ran steps of, and a plan's steps (a link reaches a step's reminder
    planned under the plan's key, or another case's)."""
    if before is None:
        return None
    if key in before.cases or any(e.type in PLAN_STEPS for e, _ in steps):
        return before
    return None


class _WouldWait(Exception):
    """A merged batch's ``MEETS`` lock was not free at once (``MEETS_AT_ONCE``)."""


class _BeforeRefused(Exception):
    """A merged batch's step waited on the batch before, and that was refused."""


_BEFORE: ContextVar[_Before | None] = ContextVar("followup_rules_before", default=None)
"""Set while a batch applies the next one in its transaction (``Rules.apply``)."""


_DEFERRED: ContextVar[_Deferred | None] = ContextVar("followup_rules_deferred", default=None)
"""Where ``Rules._schedule`` puts a plan instead of submitting it: the batch's, while the last
step of a case runs (``Rules._run_in_order``); None otherwise."""

_SENT: ContextVar[list[Sent] | None] = ContextVar("followup_rules_sent", default=None)
"""Where ``Rules._send`` puts a command it does not wait for: the case's list, while a batch's
case runs its steps (``Rules._run_in_order``); None otherwise (it is awaited at once)."""

Effect = Callable[[list[Row]], Awaitable[Row | list[Row] | None]]
"""Runs one rule; gets what earlier rules of the same case scheduled in this batch."""
ConsentOf = Callable[[UUID | None], Consent]
"""What a resident agreed to, as of the end of the batch being applied."""


class _Planned:
    """What rules of earlier batches scheduled for the batch's cases (``rule_followups``),
    read in one query at the start of the batch: the batch's own rows are written only once
    every case of it has run its steps (each rule of the batch gets what its case's earlier
    steps planned as ``earlier``), so every rule sees what it would have read on its own. A
    batch merged behind it (``Rules.merges``) reads them."""

    def __init__(self, rows: Sequence[asyncpg.Record]) -> None:
        self.by_case: dict[UUID, list[tuple[UUID, str]]] = defaultdict(list)
        for r in rows:
            self.by_case[r["case_id"]].append((r["follow_up_id"], r["rule"]))

    def of(self, case_id: UUID, rule: str | None = None, *, but: Sequence[str] = ()
           ) -> list[UUID]:
        """The follow-ups scheduled for ``case_id`` by ``rule`` (any rule but ``but``)."""
        return [f for f, r in self.by_case.get(case_id, ())
                if (rule is None or r == rule) and r not in but]


class Rules:
    """The consumer handler: read models first (in the consumer's transaction), then effects."""

    #: Batches of four times CONSUMER_BATCH: the commands of a batch go to group commit
    #: together, so a larger batch fills its rounds rather than adding rounds.
    batch_scale = 4
    #: The consumer's tracking write runs while the batch's commands are in group commit
    #: (``shared.bus.consumer.Waiting``): a batch waited for its commands after its own
    #: writes for longer than that statement takes.
    waits = True
    #: While a batch's commands wait for their group-commit rounds, the next batch read ahead
    #: is applied in its transaction (``shared.bus.consumer.Merging``): read, folded, its
    #: cases written and its steps run, its commands queued behind this batch's. Its steps of
    #: a case this batch ran steps of act once this batch's answers stand (``_Before``).
    merges = True
    #: Events the rules read nothing of: tracked without being decoded whole or handed here.
    ignores = IGNORED

    def __init__(self, followups: FollowUps,
                 on_parked: Callable[[int], None] | None = None) -> None:
        self.followups = followups
        self.settings = followups.settings
        self.on_parked = on_parked  # told how many rules are parked after each change
        self._tables = bulk.Tables()

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    meanwhile: Meanwhile | None = None, *, more: More | None = None
                    ) -> None:
        # Applied merged into the batch before (``more``): its cases' steps and its residents'
        # wait for that batch's answers (``_Before.stood``).
        before = _BEFORE.get()
        refs, known, planned = await _read(conn, events)
        for e in events:
            if e.type in RESIDENTS_WORD:
                known.remember(e)  # the whole batch: a rule plans with the latest word
        per_case: dict[UUID, list[tuple[Envelope, Effect]]] = defaultdict(list)
        linked: dict[UUID, UUID] | None = None  # the batch's links of steps to cases
        for e in events:
            if e.type in SERVING:
                refs.note_staff(e)
            if e.type not in SEEN:  # a request heard or restated: nothing to fold or plan
                continue
            # Only a concern or a deadline noted can make a case urgent (is_urgent).
            turns = e.type in MAY_TURN_URGENT and e.service == "intake"
            was_urgent = turns and is_urgent(refs.now(e.case_id))
            refs.remember(e, self._deadline_close)
            effect = self._effect_for(planned, e, refs, known.consent, known.more_care)
            if effect is not None:
                # A plan step naming a case (added on it, or linked to it) runs in that
                # case's order (its event is on the plan's partition): a handover or an
                # urgency later in the batch then finds its reminder among what the case's
                # steps planned (``earlier``); run apart, it kept the owner and priority of
                # its snapshot, and neither moved it.
                # A step drawn up without a case and linked to one later in the batch runs
                # in that case's order too, before its link: the link then finds the
                # reminder it hands to the case's owner (planned apart, at the batch's end,
                # it was not there yet).
                key = e.partition_key
                if e.type in PLAN_STEPS:
                    carried = _step_case(e)
                    if carried is None:
                        linked = _links(events) if linked is None else linked
                        carried = linked.get(UUID(e.payload["step_id"]))
                    key = carried or key
                per_case[key].append((e, effect))
            if turns and not was_urgent and is_urgent(refs.now(e.case_id)):
                per_case[e.partition_key].append((e, self._turned_urgent(planned, e)))
        # The cases' commands go to group commit first: their rounds (on the writer's own
        # connection; no command reads what this transaction writes) overlap the writes
        # below instead of waiting behind them. A case's commands still run in its order.
        # return_exceptions: one case's failure must not leave the other cases' commands
        # running past this transaction (gather answers at the first failure and lets the
        # rest go on): the batch is re-run one event at a time after the rollback, and its
        # commands would meet the ones still in flight.
        deferred = _Deferred(len(per_case))
        commands = asyncio.gather(*(
            self._run_in_order(conn, steps, deferred, _waits_on(before, key, steps))
            for key, steps in per_case.items()), return_exceptions=True)
        failure: BaseException | None = None
        noted = False
        parked: list[tuple[Envelope, str, int | None]] = []
        try:
            await refs.save(conn, self._tables)
            await known.save(conn)
            await residents.remember_care_and_hints(conn, events)
            if meanwhile is not None:
                await meanwhile()  # the consumer's tracking, while the commands run
            latest = {UUID(e.payload["resident_id"]): e for e in events
                      if e.service == "intake" and e.type in residents.TYPES}
            cared = _cared_now(events, known)
            if before is not None and (known.narrowed or cared):
                # What may still reach them includes what the batch before planned: acted on
                # once it stands.
                await before.stood()
            respecting: list[list[tuple[Envelope, Effect]]] = []
            for resident_id, cause in known.narrowed.items():
                # What may still reach them, read after this batch's cases are written.
                found = await residents.pending(conn, resident_id)
                respecting.append([(latest[resident_id], self._respect(
                    found, known.consent(resident_id), cause))])
            # A resident found to need more care after a resolution: its check comes early.
            for resident_id, e in cared.items():
                if (early := await self._checks_early(conn, resident_id, e)) is not None:
                    respecting.append([(e, early)])
            respected = await asyncio.gather(*(self._run_in_order(conn, steps)
                                               for steps in respecting),
                                             return_exceptions=True)
            # Every case past its last step: every command of the batch sent, and what its
            # steps planned known (``_Deferred``). Its rows are written now, while the
            # answers come: a batch merged next (below) reads them, and a failure still rolls
            # them back with the transaction. Before, written only after the answers.
            await asyncio.wait((deferred.all_passed, commands),
                               return_when=asyncio.FIRST_COMPLETED)
            noted = deferred.all_passed.done() and not any(
                isinstance(r, BaseException) for r in respected)
            if noted:
                parked = await self._note(conn, deferred, respected)
        except BaseException as exc:  # cancelled too: the cases' commands settle first
            failure = exc
        plans: asyncio.Future[None] | None = None  # the last follow-ups' answer, if awaited
        if failure is None and noted and more is not None and (
                not commands.done() or deferred.sent is not None):
            # The next batch while this one's answers come: nothing of this batch is left to
            # do after them but raise a refusal, and nothing of it is sent later. The next
            # batch reads this one's rows (same transaction), and its steps of this batch's
            # cases act once this batch's answers stand (``_Before.stood``).
            if deferred.sent is not None:
                plans = asyncio.ensure_future(answered([deferred.sent]))
            settling = asyncio.gather(commands, *(() if plans is None else (plans,)),
                                      return_exceptions=True)
            merging = _BEFORE.set(_Before(frozenset(per_case), settling))
            try:
                await more(settling)
            except BaseException as exc:  # cancelled: as a batch cancelled in its writes
                failure = exc
            finally:
                _BEFORE.reset(merging)
        try:
            ran = await commands  # settled before the transaction ends, whatever happened
        except asyncio.CancelledError as exc:
            failure = exc
        if isinstance(failure, asyncio.CancelledError):
            # The batch goes back: the last follow-ups' command, sent by the last case to
            # pass its last step, is withdrawn (not sent if not yet sent), as the cases'
            # queued ones are; left alone, it went on to the store past this transaction.
            if plans is not None:
                await cancel_and_wait(plans)
            if deferred.sent is not None:
                deferred.sent.withdraw()
            raise failure
        if deferred.sent is not None and plans is None:
            plans = asyncio.ensure_future(answered([deferred.sent]))
        if failure is not None:
            if plans is not None:  # answered before the transaction ends
                await asyncio.gather(plans, return_exceptions=True)
            raise failure
        ran = [*ran, *respected]
        failed = [r for r in ran if isinstance(r, BaseException)]
        if plans is not None:  # the cases' last follow-ups planned, in one command
            # Answered before anything else happens, also when a case failed (nothing left
            # running past this transaction; the batch is then applied again one event at a
            # time, and these plans are found there).
            answers = await asyncio.gather(plans, return_exceptions=True)
            failed += [r for r in answers if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        if not noted:  # never, with nothing failed: every case passed its last step
            parked = await self._note(conn, deferred, respected)
        if parked and self.on_parked is not None:
            self.on_parked(await parking.count(conn))

    async def _note(self, conn: asyncpg.Connection, deferred: _Deferred,
                    respected: Sequence[Any]) -> list[tuple[Envelope, str, int | None]]:
        """What a batch's steps planned (``rule_followups``) and the rules it parked: its
        cases' (``deferred``) and its residents' (``respected``: each a ``_run_in_order``'s
        result). Returns what was parked."""
        rows = [*deferred.rows, *(row for r in respected for row in r[0])]
        parked = [*deferred.parked, *(p for r in respected for p in r[1])]
        if rows:
            await bulk.insert_rows(conn, self._tables, "rule_followups", RULE_FOLLOWUP_COLUMNS,
                                   bulk.first_of_each(rows, 2))
        if parked:
            parked = await _behind_steps(conn, parked)
        for e, reason, year in parked:
            await parking.park(conn, e, reason, year)
        return parked

    async def _run_in_order(self, conn: asyncpg.Connection, steps: list[tuple[Envelope, Effect]],
                            deferred: _Deferred | None = None, before: _Before | None = None
                            ) -> tuple[list[Row], list[tuple[Envelope, str, int | None]]]:
        """A case's steps, one after the other. ``deferred``: the batch's, where the last
        step's follow-ups to plan go (``_schedule``) instead of a command each: nothing after
        it in this batch acts on them, so they are created together once every case's steps
        have run, in one command (``FollowUps.schedule_each``: one already there is left as it
        is, as ``schedule`` leaves it), before the batch's transaction ends.

        In a batch (``deferred`` given), a step's command that nothing after it waits on
        (``_send``: a follow-up planned, an obligation watched, a help task opened, a
        referral sent) is queued and the next step runs at once: the case's commands reach the
        group commit in the case's order, most of a batch's in one round, each with its own
        answer, every answer awaited (the first failure raised) before the case is done.

        ``before``: the batch this one is merged into, when it ran steps of the case: the
        case's steps run once its answers stand (``_Before.stood``)."""
        rows: list[Row] = []
        parked: list[tuple[Envelope, str, int | None]] = []
        last = len(steps) - 1
        sent: list[Sent] = []
        queued = _SENT.set(sent) if deferred is not None else None
        try:
            if before is not None:
                await before.stood()
            for i, (e, effect) in enumerate(steps):
                token = _DEFERRED.set(deferred) if deferred is not None and i == last else None
                try:
                    result = await effect(rows)
                except (CalendarOutOfRange, CalendarNotCovered) as exc:
                    year = exc.year if isinstance(exc, CalendarOutOfRange) else \
                        exc.details.get("year")
                    parked.append((e, str(exc) if isinstance(exc, CalendarOutOfRange)
                                   else exc.message, year))
                    result = None
                except _StepUnplanned:  # parked behind its step if it is (``_behind_steps``)
                    parked.append((e, WAITS_FOR_STEP, None))
                    result = None
                finally:
                    if token is not None:
                        _DEFERRED.reset(token)
                if isinstance(result, list):
                    rows.extend(result)
                elif result is not None:
                    rows.append(result)
                if token is not None:  # not when it failed: then the batch plans nothing
                    deferred.passed(self.followups, rows, parked)  # type: ignore[union-attr]
        except asyncio.CancelledError:
            for one in sent:  # nobody will await them: not sent if not yet sent
                one.withdraw()
            raise
        except BaseException:
            await asyncio.gather(answered(sent), return_exceptions=True)
            raise
        finally:
            if queued is not None:
                _SENT.reset(queued)
        await answered(sent)
        return rows, parked

    async def retry_parked(self, pool: asyncpg.Pool) -> int:
        """Apply parked rules again (the calendar grew: a holidays file, a package upgrade);
        returns how many went through. Rules that still cannot be applied stay parked."""
        done = 0
        async with pool.acquire() as conn:
            tried: set[UUID] = set()
            fresh = await parking.parked_envelopes(conn)
            while fresh:
                done += await self._retry(conn, fresh)
                tried.update(e.event_id for e in fresh)
                # Parked while this ran behind a step it applied (a link: ``_meet``), once;
                # not whatever the live rules parked meanwhile (on the calendar now in
                # force: parked again if tried): taking it, the loop ran as long as they
                # parked one rule a round. A link is no step, so two rounds at most.
                steps = {e.payload.get("step_id") for e in fresh
                         if e.service == "intake" and e.type == "PlanStepAdded"}
                fresh = [e for e in await parking.parked_envelopes(conn)
                         if e.event_id not in tried and e.type == "PlanCaseLinked"
                         and e.payload.get("step_id") in steps] if steps else []
            if self.on_parked is not None:
                self.on_parked(await parking.count(conn))
        return done

    async def _retry(self, conn: asyncpg.Connection, events: list[Envelope]) -> int:
        """``retry_parked`` on ``events``, each in a transaction of its own, in their order
        (``parking.parked_envelopes``: a plan step before the link parked behind it)."""
        done = 0
        for e in events:
            async with conn.transaction():
                # Alone with its case, read and recorded apart from a live resolution or
                # reopening of it: a referral or escalation (closed at once on a resolved
                # case), and a resolution or reopening itself (dropped if turned since).
                # A plan step alone with its id: the live rule of a link to it meets it
                # (``_meet``), so the link finds its reminder or is parked behind it.
                alone = (e.case_id if _turns(e) or (
                    e.service == "intake" and e.type == "ActionTaken"
                    and e.payload.get("kind") in CLOSED_IF_RESOLVED) else
                    UUID(e.payload["step_id"]) if e.service == "intake"
                    and e.type == "PlanStepAdded" else None)
                refs, known, planned = await _read(conn, [e], alone)
                if _turns(e) and _turned_since(e, refs.now(e.case_id)):
                    # Reopened (or resolved again) since: what this resolution closed and
                    # would plan, the reopening undid (its check cancelled, its referrals
                    # chased again, its "not solved" follow-up planned); applied now, it
                    # closed what the reopened case needs. So for a reopening overtaken
                    # by a resolution. Dropped, as the later turn's own rule stands.
                    log.info("rule.parked_turn_overtaken", event_id=str(e.event_id),
                             type=e.type, case_id=str(e.case_id))
                    await parking.unpark(conn, e.event_id)
                    continue
                effect = self._effect_for(planned, e, refs, known.consent,
                                          known.more_care)
                if e.service == "intake" and e.type == "CareNeedChanged":
                    # Parked by its check-early rule (a check whose early day the
                    # calendar no longer covered): that rule, again, if the resident
                    # still needs more care (``resident_care``: intake's last word).
                    resident_id = UUID(e.payload["resident_id"])
                    if await conn.fetchval(STILL_CARED, resident_id):
                        effect = await self._checks_early(conn, resident_id, e)
                if effect is None:
                    await parking.unpark(conn, e.event_id)
                    continue
                created, parked = await self._run_in_order(conn, [(e, effect)])
                if parked:
                    if parked := await _behind_steps(conn, parked):
                        await parking.park(conn, *parked[0])
                    else:  # a link whose step planned nothing: dropped, as live
                        await parking.unpark(conn, e.event_id)
                    continue
                if created:
                    await conn.executemany(
                        "INSERT INTO rule_followups (case_id, follow_up_id, rule)"
                        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", created)
                await parking.unpark(conn, e.event_id)
                done += 1
        return done

    async def _schedule(self, plan: Plan) -> None:
        """A rule's follow-up: planned now (``FollowUps.schedule``), or, while the last step
        of a case runs in a batch (``_run_in_order``), put on the batch's list, planned with
        the others in one command when every case's steps have run. The same follow-up
        either way (its meta is the plan's, its trace the causing message's span), a command
        less for each: in ``benchmarks/consumers.py``'s drain, 3,711 of the rules' 4,055
        plans were a case's last step, in 14 commands instead (~6,500 -> ~2,050 commands)."""
        plan = self.followups.on_a_day_to_come(plan)
        deferred = _DEFERRED.get()
        if deferred is None:
            await self._send(self.followups.schedule(plan))
        else:
            deferred.plans.append(plan)

    async def _send(self, command: Sent) -> None:
        """A rule's command whose answer nothing after it waits on (a new aggregate: a
        follow-up, an obligation, a help task, a referral), queued as it was called: in a
        batch, the case's list takes it and its answer is awaited with the others at the
        case's end (``_run_in_order``); else it is awaited now."""
        sent = _SENT.get()
        if sent is None:
            await command
        else:
            sent.append(command)

    def _deadline_close(self, e: Envelope) -> bool:
        """A deadline noted within ``urgent_deadline_working_days`` working days of its
        noting: of the moment it is judged by (a backdated post's ``judged_at``: last month's
        slip typed in today, its deadline close now, was weeks away from the slip's day) (a
        day the calendar does not cover is not close: that rule is parked)."""
        calendar = self.followups.calendar(e.center_id)
        try:
            return calendar.working_days_between(
                calendar.local_day(judged_by(e.occurred_at, e.payload)),
                date.fromisoformat(e.payload["due_on"])
            ) <= self.settings.urgent_deadline_working_days
        except CalendarOutOfRange:
            return False

    # -- effects ----------------------------------------------------------------------------

    def _effect_for(self, planned: _Planned, e: Envelope, refs: _CaseRefs,
                    consent_of: ConsentOf | None = None,
                    care_of: Callable[[UUID | None], bool] | None = None) -> Effect | None:
        if e.type not in RULED:
            return None
        consent_of = consent_of or (lambda _: Consent())
        if e.type == "RectificationOpened":
            return self._rectification(e, refs.snapshot(e.case_id), consent_of)
        if e.type in ("RectificationDeadlineRevised", "RectificationTriaged"):
            return self._deadline_revised(e)
        if e.type == "RectificationAppealDecided":
            return self._appeal_upheld(e) if e.payload["decision"] == "upheld" else None
        if e.type == "RectificationCompleted":
            return self._rectification_completed(e)
        if e.type == "PlanStepAdded" and e.service == "intake":
            return self._plan_step(e, refs.snapshot(_step_case(e)), consent_of)
        if e.type == "PlanCaseLinked" and e.service == "intake":
            return self._step_linked(e, refs.snapshot(_step_case(e)))
        if e.service != "intake" or e.case_id is None:
            return None
        if e.type not in ("DeadlineNoted", "CaseResolved", "CaseReopened", "ObligationDeclared",
                          "ActionTaken", "CaseHandedOver"):
            return None
        case = refs.snapshot(e.case_id)
        if case is None:  # CaseOpened was dead-lettered or predates this consumer
            log.warning("rule.unknown_case", case_id=str(e.case_id), type=e.type)
            return None
        if e.type == "DeadlineNoted":
            return self._deadline(e, case, consent_of)
        if e.type == "CaseResolved":
            unsolved = planned.of(e.case_id, Reason.RESIDENT_SAYS_UNSOLVED.value)
            more_care = care_of is not None and care_of(plain(case["resident_id"]))
            return self._resolved(e, case, consent_of, unsolved, more_care,
                                  planned.of(e.case_id, HELP_TASK),
                                  planned.of(e.case_id, REFERRAL),
                                  planned.of(e.case_id, Reason.REFERRAL_OVERDUE.value))
        if e.type == "ObligationDeclared":
            return self._obligation(e, case, consent_of)
        if e.type == "ActionTaken":
            if e.payload["kind"] == "escalated":
                return self._escalated(e, case)
            if e.payload["kind"] == "referred":
                return self._referred(e, case)
            return None
        if e.type == "CaseHandedOver":
            open_ones = planned.of(e.case_id, but=NOT_THE_OWNERS)
            return self._handed_over(e, case, open_ones)
        open_checks = planned.of(e.case_id, Reason.POST_RESOLUTION_CHECK.value)
        return self._reopened(e, case, open_checks, consent_of, planned.of(e.case_id, REFERRAL))

    def _turned_urgent(self, before: _Planned, e: Envelope) -> Effect:
        """The case became urgent: every open follow-up planned for it before (earlier
        batches, and earlier events of this one) is high priority from now on. Not a
        referral's 督办: remembered when the referral is sent, it exists only once the reply is
        overdue, and is high priority from its start."""
        assert e.case_id is not None
        planned = before.of(e.case_id, but=NOT_MADE_URGENT)

        async def run(earlier: list[Row]) -> None:
            this_batch = [f for _, f, rule in earlier if rule not in NOT_MADE_URGENT]
            await _on_each([*planned, *this_batch], self.followups.prioritise, e,
                           "rule.prioritise_unknown", "follow_up_id")
            return None

        return run

    def _respect(self, found: list[tuple[UUID, str]], consent: Consent, cause: str) -> Effect:
        """A resident's refusal or erasure: what may still reach them, brought in line."""
        async def run(_: list[Row]) -> None:
            for aggregate_id, kind in found:
                try:
                    await self.followups.respect(aggregate_id, kind, consent, cause)
                except NotFound:  # a worklist row whose aggregate is not here: nothing to do
                    log.warning("rule.respect_unknown", aggregate_id=str(aggregate_id))
            return None

        return run

    async def _checks_early(self, conn: asyncpg.Connection, resident_id: UUID, e: Envelope
                            ) -> Effect | None:
        """The check-early rule of ``e`` (a ``CareNeedChanged``) for the resident's checks
        still open; None when there are none."""
        checks = [UUID(str(r["follow_up_id"]))
                  for r in await conn.fetch(CHECKS_PLANNED, resident_id)]
        return self._check_early(checks, e) if checks else None

    def _check_early(self, checks: list[UUID], e: Envelope) -> Effect:
        """The resident needs more care (``CareNeedChanged``), learnt after the resolutions
        whose post-resolution checks are still open: each is brought forward to the early
        check and made high priority (``FollowUp.check_early``)."""
        async def run(_: list[Row]) -> None:
            await _on_each(checks, self.followups.check_early, e, "rule.care_unknown_check",
                           "follow_up_id")
            return None

        return run

    def _plan(self, e: Envelope, case: CaseRef, follow_up_id: UUID, reason: Reason,
              due_at: datetime, **extra: Any) -> Plan:
        if is_urgent(case):
            extra["priority"] = Priority.HIGH
        clerk, team = owner_of(case)
        return Plan(follow_up_id=follow_up_id, center_id=e.center_id, case_id=e.case_id,
                    reason=reason, resident_id=plain(case["resident_id"]), due_at=due_at,
                    assigned_clerk=extra.pop("assigned_clerk", clerk),
                    assigned_team=extra.pop("assigned_team", team),
                    source=f"{e.service}:{e.type}", service_item=case["service_item"],
                    causation_id=str(e.event_id), correlation_id=e.correlation_id,
                    occurred_at=e.occurred_at, **extra)

    def _deadline(self, e: Envelope, case: CaseRef, consent_of: ConsentOf) -> Effect:
        calendar = self.followups.calendar(e.center_id)
        deadline_id = UUID(e.payload["deadline_id"])
        follow_up_id = follow_up_id_for("deadline", deadline_id)

        async def run(_: list[Row]) -> Row | None:
            contact = consent_allows(Reason.DEADLINE_REMINDER,
                                     consent_of(plain(case["resident_id"])))
            if contact is None:
                return None  # erased: nothing is planned for them
            rule = DueRule("on_or_before", date.fromisoformat(e.payload["due_on"]),
                           self.settings.followup_deadline_reminder_working_days,
                           # closer: at once; a backdated post's from its judged moment
                           not_before=judged_by(e.occurred_at, e.payload))
            planned = calendar.plan(rule)
            await self._schedule(self._plan(
                e, case, follow_up_id, Reason.DEADLINE_REMINDER, planned.at,
                source_id=deadline_id, basis=planned.basis, due_rule=rule, contact=contact))
            return (case["case_id"], follow_up_id, Reason.DEADLINE_REMINDER.value)

        return run

    def _plan_step(self, e: Envelope, case: CaseRef | None, consent_of: ConsentOf) -> Effect:
        """A reminder ahead of a plan step's date, on the working-day calendar."""
        p = e.payload
        calendar = self.followups.calendar(e.center_id)
        step_id = UUID(p["step_id"])
        follow_up_id = follow_up_id_for("plan-step", step_id)
        resident = UUID(p["resident_id"])
        case_id = _step_case(e)

        async def run(_: list[Row]) -> Row | None:
            contact = consent_allows(Reason.PLAN_STEP, consent_of(resident))
            if contact is None:
                return None  # erased: nothing is planned for them
            rule = DueRule("on_or_before", date.fromisoformat(p["effective_on"]),
                           self.settings.followup_deadline_reminder_working_days,
                           # a backdated post's from its judged moment (not lapsed)
                           not_before=judged_by(e.occurred_at, p))
            planned = calendar.plan(rule)
            # The step's case's owner now (handed to a team or a clerk: theirs, as every
            # follow-up planned after a handover; the first clerk's went on nobody's list who
            # did the work), high priority when it is urgent, as the case's other follow-ups.
            clerk, team = owner_of(case) if case else (e.actor, None)
            await self._schedule(Plan(
                follow_up_id=follow_up_id, center_id=e.center_id, case_id=case_id,
                reason=Reason.PLAN_STEP, resident_id=resident, due_at=planned.at,
                assigned_clerk=clerk, assigned_team=team,
                priority=Priority.HIGH if case and is_urgent(case) else Priority.NORMAL,
                source=f"{e.service}:{e.type}", source_id=step_id,
                service_item=p["service_item"], causation_id=str(e.event_id),
                correlation_id=e.correlation_id, occurred_at=e.occurred_at,
                basis=planned.basis, due_rule=rule, contact=contact))
            return (case_id, follow_up_id, Reason.PLAN_STEP.value) if case_id else None

        return run

    def _step_linked(self, e: Envelope, case: CaseRef | None) -> Effect:
        """A case opened after its plan step was drawn up now carries it: the step's reminder
        (the plan author's until now) goes to whoever has the case, high priority when it is
        urgent, and is remembered with the case, so a later handover or urgency reaches it
        (ignored, it stayed the author's, on no worklist of who does the case's work). Its
        worklist row names the case from then on (``FollowUpReassigned.case_id``: until
        rulesrace48 none, and the worklist did not link it to the case)."""
        follow_up_id = follow_up_id_for("plan-step", UUID(e.payload["step_id"]))

        async def run(_: list[Row]) -> Row | None:
            if case is None:
                log.warning("rule.unknown_case", case_id=e.payload["case_id"], type=e.type)
                return None
            clerk, team = owner_of(case)
            try:
                # staff who moved it by hand after the link keep it (the sweep of links
                # the old rules ignored, run long after): the link names its case only.
                # After in the log's order (recorded_at), not by the callers' clocks
                await self.followups.reassign(follow_up_id, clerk, team, f"linked:{e.event_id}",
                                              e.occurred_at, "the step's case carries it",
                                              plain(case["case_id"]),
                                              unless_moved_since=e.recorded_at)
                if is_urgent(case):
                    await self.followups.prioritise(follow_up_id, str(e.event_id),
                                                    e.occurred_at)
            except NotFound:  # none planned (an erased resident), or its step's rule parked
                raise _StepUnplanned from None  # parked behind its step, or dropped
            return (case["case_id"], follow_up_id, Reason.PLAN_STEP.value)

        return run

    def _resolved(self, e: Envelope, case: CaseRef, consent_of: ConsentOf,
                  unsolved: Sequence[UUID] = (), more_care: bool = False,
                  help_tasks: Sequence[UUID] = (), referrals: Sequence[UUID] = (),
                  chases: Sequence[UUID] = ()) -> Effect:
        calendar = self.followups.calendar(e.center_id)
        # A resident who needs more care (intake's CareNeedChanged: living alone, disabled,
        # chronically ill, 80+) is checked on early too, whatever the clerk noted.
        early = (e.payload["outcome"] == "cannot_be_resolved"
                 or e.payload["emotion_defused"] is False or more_care)
        days = (self.settings.followup_early_check_working_days if early
                else self.settings.followup_post_resolution_working_days)
        follow_up_id = follow_up_id_for("resolution", e.event_id)

        async def run(earlier: list[Row]) -> Row | None:
            # Resolved again: the "not solved" it was reopened for is taken up (done by the
            # resolution, which its own check and survey now ask about).
            this_batch = [f for _, f, rule in earlier if rule == Reason.RESIDENT_SAYS_UNSOLVED]
            for follow_up_id_ in dict.fromkeys([*unsolved, *this_batch]):
                try:
                    await self.followups.cancel(
                        follow_up_id_, c.CancelFollowUp(reason="case resolved again",
                                                        occurred_at=e.occurred_at),
                        SYSTEM_RULES, f"resolved:{e.event_id}")
                except (RuleViolated, NotFound):  # done by the clerk already
                    pass
                except InvalidCommand as exc:  # never at the cost of the check planned below
                    log.warning("rule.unsolved_not_closed", follow_up_id=str(follow_up_id_),
                                reason=exc.message)
            # Its help tasks still open are no longer needed: closed, off every worklist
            # (whatever the resident agreed to: they are staff's work).
            this_batch = [f for _, f, rule in earlier if rule == HELP_TASK]
            # One escalated, or overdue at the resolution's moment (a backdated one's judged
            # moment: intake's clock less the grace), stays open (escalated now if not yet):
            # resolving the case is not the supervisor's word on it.
            await _on_each([*help_tasks, *this_batch], partial(
                self.followups.close_help_task,
                resolved_at=judged_by(e.occurred_at, e.payload)), e,
                "rule.close_unknown_help_task", "task_id")
            # Its referrals still awaiting a reply are no longer chased, and a 督办 already
            # planned for one is cancelled: nobody chases a unit about a case that is done.
            this_batch = [f for _, f, rule in earlier if rule == REFERRAL]
            # The 督办 a closing left nothing to do for (never planned: most of them; or
            # ended by it): no cancel is sent for them, which would record nothing. Was a
            # command (and a group-commit round of the case's chain) per referral resolved.
            settled: set[UUID] = set()
            await _on_each([*referrals, *this_batch],
                           partial(self.followups.close_referral, settled=settled), e,
                           "rule.close_unknown_referral", "referral_id")
            this_batch = [f for _, f, rule in earlier if rule == Reason.REFERRAL_OVERDUE]
            for chase_id in dict.fromkeys([*chases, *this_batch]):
                if chase_id in settled:
                    continue
                try:
                    await self.followups.cancel(
                        chase_id, c.CancelFollowUp(reason="case resolved",
                                                   occurred_at=e.occurred_at),
                        SYSTEM_RULES, f"resolved:{e.event_id}")
                except (RuleViolated, NotFound, AlreadyDoneError):
                    pass  # never overdue (not planned), done or cancelled already
            if consent_allows(Reason.POST_RESOLUTION_CHECK,
                              consent_of(plain(case["resident_id"]))) is None:
                return None  # only outreach: not without consent, not for the erased
            # From the moment the resolution is judged by: a backdated one's check (posted
            # more than OCCURRED_AT_GRACE_S after the moment it gives) is planned from
            # intake's clock less the grace, not months back, where it was missed at once.
            start = judged_by(e.occurred_at, e.payload)
            rule = DueRule("on_or_after", calendar.local_day(start), days, not_before=start)
            planned = calendar.plan(rule)
            await self._schedule(self._plan(
                e, case, follow_up_id, Reason.POST_RESOLUTION_CHECK, planned.at,
                priority=Priority.HIGH if early else Priority.NORMAL, source_id=e.event_id,
                basis=planned.basis, due_rule=rule))
            return (case["case_id"], follow_up_id, Reason.POST_RESOLUTION_CHECK.value)

        return run

    def _reopened(self, e: Envelope, case: CaseRef, open_checks: list[UUID],
                  consent_of: ConsentOf, referrals: Sequence[UUID] = ()) -> Effect:
        unsolved = e.payload.get("reason") == RESIDENT_SAYS_UNSOLVED
        follow_up_id = follow_up_id_for("unsolved", e.event_id)

        async def run(earlier: list[Row]) -> list[Row]:
            # The referrals its resolution closed unanswered are chased again, from the
            # reopening, with a new reply deadline (first: a day past the calendar parks the
            # rule before anything else is done, and it is all done again when it returns);
            # the 督办 each will have if missed again is the case's, as the first one was.
            this_batch = [f for _, f, rule in earlier if rule == REFERRAL]
            rows: list[Row] = []
            # Counted from the day follow-up learnt of the reopening, as a referral posted
            # late is (``counted_from``): a "not solved" said a month back and recorded today
            # (``CaseReopened.judged_at``) chased the unit with a reply due weeks ago.
            day = self._counted_from(e)
            for referral_id in dict.fromkeys([*referrals, *this_batch]):
                try:
                    chase = await self.followups.chase_referral_again(
                        referral_id, str(e.event_id), e.occurred_at, day)
                except NotFound:
                    log.warning("rule.chase_unknown_referral", referral_id=str(referral_id))
                    continue
                if chase is not None:
                    rows.append((case["case_id"], chase, Reason.REFERRAL_OVERDUE.value))
            # Checks scheduled by this case's earlier events in the same batch count too.
            this_batch = [f for _, f, rule in earlier if rule == Reason.POST_RESOLUTION_CHECK]
            for follow_up_id_ in dict.fromkeys([*open_checks, *this_batch]):
                await self.followups.cancel(
                    follow_up_id_, c.CancelFollowUp(reason="case reopened",
                                                    occurred_at=e.occurred_at),
                    SYSTEM_RULES, f"reopen:{e.event_id}")
            if not unsolved:
                return rows
            # The resident said it was not solved: the case's clerk takes it up again at once
            # (high priority, on the clerk's worklist and the center's board).
            contact = consent_allows(Reason.RESIDENT_SAYS_UNSOLVED,
                                     consent_of(plain(case["resident_id"])))
            if contact is None:
                return rows  # erased: nobody to take it up with
            calendar = self.followups.calendar(e.center_id)
            # From the moment it is judged by: said a month back and recorded today (a
            # check's answer posted late), it is today's work, not a lapsed one.
            said = judged_by(e.occurred_at, e.payload)
            rule = DueRule("on_or_after", calendar.local_day(said), 0, not_before=said)
            planned = calendar.plan(rule)
            await self._schedule(self._plan(
                e, case, follow_up_id, Reason.RESIDENT_SAYS_UNSOLVED, planned.at,
                priority=Priority.HIGH, source_id=e.event_id, basis=planned.basis,
                due_rule=rule, contact=contact))
            return [*rows, (case["case_id"], follow_up_id, Reason.RESIDENT_SAYS_UNSOLVED.value)]

        return run

    def _obligation(self, e: Envelope, case: CaseRef, consent_of: ConsentOf) -> Effect:
        p = e.payload
        watch = Watch(obligation_id=UUID(p["obligation_id"]), center_id=e.center_id,
                      case_id=e.case_id,  # type: ignore[arg-type]
                      resident_id=plain(case["resident_id"]),  # type: ignore[arg-type]
                      cadence=p["cadence"],
                      next_due_on=date.fromisoformat(p["next_due_on"]),
                      tracked_from=(date.fromisoformat(p["tracked_from"])
                                    if p.get("tracked_from") else None),
                      assigned_clerk=owner_of(case)[0] or case["clerk_id"],
                      service_item=case["service_item"],
                      causation_id=str(e.event_id), correlation_id=e.correlation_id,
                      occurred_at=e.occurred_at,
                      judged_at=judged_by(e.occurred_at, e.payload))

        async def run(_: list[Row]) -> Row | None:
            if watch.resident_id is None:
                log.warning("rule.obligation_without_resident", case_id=str(e.case_id))
                return None
            if consent_of(watch.resident_id).erased:
                return None  # nobody to watch for; a missed period would plan a contact
            await self._send(self.followups.watch(watch))
            # Remembered with the case: an erasure finds it before the worklist shows it.
            return (watch.case_id, obligation_aggregate_id(watch.obligation_id), "obligation")

        return run

    def _counted_from(self, e: Envelope) -> date:
        """A help task's or a referral's first day (``counted_from``)."""
        # A post backdated past the grace from its judged moment (intake's clock less the
        # grace): from the day it was posted, not overdue on arrival.
        return counted_from(self.followups.calendar(e.center_id),
                            judged_by(e.occurred_at, e.payload), self.followups.clock.now(),
                            timedelta(days=self.settings.followup_lapse_after_days),
                            e.recorded_at)

    def _escalated(self, e: Envelope, case: CaseRef) -> Effect:
        p = e.payload
        escalation = Escalation(
            task_id=help_task_id_for(e.event_id), center_id=e.center_id,
            case_id=e.case_id,  # type: ignore[arg-type]
            owner_clerk=p.get("owner_clerk"), requested_by=e.actor,
            day=self._counted_from(e),
            within_working_days=p.get("within_working_days"), source_id=e.event_id,
            service_item=case["service_item"], causation_id=str(e.event_id),
            correlation_id=e.correlation_id, occurred_at=e.occurred_at)

        async def run(_: list[Row]) -> Row:
            await self._send(self.followups.open_help_task(escalation))
            if _resolved_already(case):
                await self.followups.close_help_task(escalation.task_id, str(e.event_id),
                                                     self._now_or(e))
            return (escalation.case_id, escalation.task_id, HELP_TASK)

        return run

    def _referred(self, e: Envelope, case: CaseRef) -> Effect:
        p = e.payload
        referring = Referring(
            referral_id=referral_id_for(e.event_id), center_id=e.center_id,
            case_id=e.case_id,  # type: ignore[arg-type]
            unit_kind=p.get("unit_kind") or "other", unit_name=p.get("referred_to") or "",
            unit_contact=p.get("unit_contact") or "", referred_by=e.actor,
            day=self._counted_from(e),
            within_working_days=p.get("within_working_days"), source_id=e.event_id,
            causation_id=str(e.event_id), correlation_id=e.correlation_id,
            occurred_at=e.occurred_at)

        async def run(_: list[Row]) -> list[Row]:
            await self._send(self.followups.send_referral(referring))
            if _resolved_already(case):
                await self.followups.close_referral(referring.referral_id, str(e.event_id),
                                                    self._now_or(e))
            # Its 督办, once planned, is the case's like any follow-up: a handover moves it;
            # the referral itself, for the resolution to close it.
            return [(referring.case_id, referral_overdue_follow_up_id(referring.referral_id),
                     Reason.REFERRAL_OVERDUE.value),
                    (referring.case_id, referring.referral_id, REFERRAL)]

        return run

    def _now_or(self, e: Envelope) -> datetime:
        """Follow-up's clock, never before ``e`` happened: when a rule records a step of its
        own (a referral closed as it is sent)."""
        return max(self.followups.clock.now(), e.occurred_at)

    def _handed_over(self, e: Envelope, case: CaseRef, open_ones: list[UUID]) -> Effect:
        clerk, team = owner_of(case)

        async def run(earlier: list[Row]) -> None:
            this_batch = [f for _, f, rule in earlier if rule not in NOT_THE_OWNERS]
            for follow_up_id in dict.fromkeys([*open_ones, *this_batch]):
                try:
                    await self.followups.reassign(follow_up_id, clerk, team,
                                                  f"handover:{e.event_id}", e.occurred_at)
                except NotFound:  # a 督办 not planned (yet): planned for the owner then
                    continue
            return None

        return run

    def _rectification(self, e: Envelope, case: CaseRef | None,
                       consent_of: ConsentOf) -> Effect:
        p = e.payload
        rectification_id = UUID(p["rectification_id"])
        follow_up_id = follow_up_id_for("rectification", rectification_id)
        verification_id = follow_up_id_for("verification", rectification_id)
        resident = (UUID(p["resident_id"]) if p.get("resident_id")
                    else plain(case["resident_id"]) if case else None)

        def plan(follow_up: UUID, reason: Reason, due_at: datetime, basis: Basis,
                 contact: bool, due_rule: DueRule | None = None) -> Plan:
            return Plan(
                follow_up_id=follow_up, center_id=e.center_id, case_id=e.case_id,
                reason=reason, resident_id=resident, due_at=due_at,
                assigned_clerk=None, assigned_team=self.settings.followup_team,
                source=f"{e.service}:{e.type}", source_id=rectification_id,
                priority=Priority.HIGH, service_item=case["service_item"] if case else None,
                causation_id=str(e.event_id), correlation_id=e.correlation_id,
                occurred_at=e.occurred_at, basis=basis, contact=contact, due_rule=due_rule)

        async def run(_: list[Row]) -> list[Row]:
            contact = consent_allows(Reason.RECTIFICATION, consent_of(resident))
            if contact is None:
                return []  # erased: nobody to verify with, no revisit to plan
            rule = verification_rule(self.followups.calendar(e.center_id), e.occurred_at,
                                     self.settings.followup_verification_working_days,
                                     _day(p.get("counted_from")))
            planned = self.followups.calendar(e.center_id).plan(rule)
            await self._schedule(plan(verification_id, Reason.VERIFICATION,
                                               planned.at, planned.basis, contact, rule))
            due_at, basis = self._at_deadline(e, date.fromisoformat(p["deadline_on"]))
            await self._schedule(plan(follow_up_id, Reason.RECTIFICATION, due_at,
                                               basis, contact))
            if e.case_id is None:
                return []
            return [(e.case_id, verification_id, Reason.VERIFICATION.value),
                    (e.case_id, follow_up_id, Reason.RECTIFICATION.value)]

        return run

    async def rectification_completed(self, e: Envelope) -> None:
        """The rule of a ``RectificationCompleted``, applied outside a batch (the completions
        recorded before the rules took that type: ``completed_before.py``)."""
        await self._rectification_completed(e)([])

    def _rectification_completed(self, e: Envelope) -> Effect:
        """The supervisor recorded the rectification's outcome: the rectification follow-up is
        done (by them, from the board), and a verification still open has nothing left to
        verify; else both would fall due, be missed and escalate a bad review already put
        right. The revisit survey asks the resident from here. Both at follow-up's own time
        (when it learned of it): feedback's, a few minutes ahead of it on another machine,
        would be refused as a counter's clock too far ahead and dead-letter the rule."""
        rectification_id = UUID(e.payload["rectification_id"])
        note = f"the rectification's outcome was recorded: {e.payload['outcome']}"

        async def run(_: list[Row]) -> None:
            for kind in ("rectification", "verification"):
                follow_up_id = follow_up_id_for(kind, rectification_id)
                effect_key = f"rectified:{e.event_id}:{kind}"
                try:
                    if kind == "rectification":
                        await self.followups.complete(
                            follow_up_id,
                            c.CompleteFollowUp(outcome=FollowUpOutcome.DONE,
                                               channel=ContactChannel.NONE, note=note),
                            SYSTEM_RULES, effect_key)
                    else:
                        await self.followups.cancel(
                            follow_up_id, c.CancelFollowUp(reason=note), SYSTEM_RULES,
                            effect_key)
                except (NotFound, RuleViolated, AlreadyDoneError):
                    # never planned (erased), done by staff or cancelled: nothing left open
                    log.info("rule.rectified_nothing_open", kind=kind,
                             rectification_id=str(rectification_id))
            return None

        return run

    def _appeal_upheld(self, e: Envelope) -> Effect:
        """The bad review was malicious or mistaken: nothing to verify or put right. At
        follow-up's own time, as ``_rectification_completed``: feedback's moment, from a
        clock a few minutes ahead on another machine, was refused (occurred_at too far ahead)
        and the rule dead-lettered, leaving both to fall due and escalate."""
        rectification_id = UUID(e.payload["rectification_id"])

        async def run(_: list[Row]) -> None:
            for kind in ("verification", "rectification"):
                try:
                    await self.followups.cancel(
                        follow_up_id_for(kind, rectification_id),
                        c.CancelFollowUp(reason="bad review appeal upheld"),
                        SYSTEM_RULES, f"appeal:{e.event_id}:{kind}")
                except (NotFound, RuleViolated, AlreadyDoneError):
                    # never planned (erased), already done or cancelled: nothing left to stop
                    log.info("rule.appeal_nothing_to_cancel", kind=kind,
                             rectification_id=str(rectification_id))
            return None

        return run

    def _at_deadline(self, e: Envelope, deadline: date, *, ever: bool = False
                     ) -> tuple[datetime, Basis]:
        """Office opening on a rectification's deadline (the last working day before it when
        it is a day off), never before the event (``ever``: whenever the event came);
        provisional when the deadline was."""
        calendar = self.followups.calendar(e.center_id)
        planned = calendar.plan(DueRule("on_or_before", deadline, 0,
                                        not_before=None if ever else e.occurred_at))
        provisional = Basis.PROVISIONAL in (planned.basis, e.payload.get("basis"))
        return planned.at, Basis.PROVISIONAL if provisional else Basis.OFFICIAL

    def _deadline_revised(self, e: Envelope) -> Effect:
        follow_up_id = follow_up_id_for("rectification", UUID(e.payload["rectification_id"]))
        why = (RescheduleCause.TRIAGED if e.type == "RectificationTriaged"
               else RescheduleCause.CALENDAR_PUBLISHED)

        async def run(_: list[Row]) -> None:
            deadline = date.fromisoformat(e.payload["deadline_on"])
            due_at, basis = self._at_deadline(e, deadline)
            at_deadline, _ = self._at_deadline(e, deadline, ever=True)
            published_at = None
            kept = e.payload.get("published_deadline_on")
            if kept:
                # Kept on the law's day, a day off by the published schedule (whose
                # "on or before" would be the working day before): its follow-up was due
                # at that day's opening; said once with the published day's.
                at_deadline = self.followups.calendar(e.center_id).opening_on(deadline)
                published_at, _ = self._at_deadline(e, date.fromisoformat(kept), ever=True)
            try:
                await self.followups.follow_deadline(follow_up_id, due_at, basis,
                                                     str(e.event_id), e.occurred_at, why,
                                                     at_deadline, published_at)
            except NotFound:  # its RectificationOpened was parked or dead-lettered
                log.warning("rule.revision_without_follow_up", follow_up_id=str(follow_up_id))
            return None

        return run


READ = (
    "SELECT ARRAY(SELECT r FROM case_refs r WHERE r.case_id = ANY($1::uuid[])) AS refs,"
    " ARRAY(SELECT p FROM rule_followups p WHERE p.case_id = ANY($2::uuid[])"
    "  UNION SELECT ROW(r.case_id, r.referral_id, 'referral')::rule_followups"
    "  FROM referrals r WHERE r.case_id = ANY($4::uuid[]) AND r.status <> 'replied')"
    " AS planned,"
    " ARRAY(SELECT c FROM resident_consent c WHERE c.resident_id = ANY($3::uuid[]"
    "  || ARRAY(SELECT resident_id FROM case_refs WHERE case_id = ANY($1::uuid[])"
    "  AND resident_id IS NOT NULL))) AS consents,"
    " ARRAY(SELECT rc.resident_id FROM resident_care rc WHERE rc.more_care"
    "  AND rc.resident_id IN (SELECT resident_id FROM case_refs"
    "  WHERE case_id = ANY($1::uuid[]))) AS cared")
"""What a batch of rules reads before it plans, in one round trip: the cases it touches
(``case_refs``: each event's case, and the case a plan step names), what rules of earlier
batches scheduled for them (``rule_followups``; for a case resolved or reopened, also its
referrals not yet answered, ``referrals``: one sent before the rules remembered referrals
is closed by the resolution and chased again by the reopening like the others, and a
reopening records itself on it before the scheduler's close of a case it may still read as
resolved: ``Referral.chase_again``) and what their residents agreed to
(``resident_consent``: the residents of those cases, those the batch's consent events name and
those an opening, a rectification or a plan step names), and which of those cases' residents
need more care (``resident_care``). Three statements one after the other were three of a
batch's ~10 round trips."""


CHECKS_PLANNED = (
    "SELECT r.follow_up_id FROM rule_followups r JOIN case_refs c USING (case_id)"
    " WHERE c.resident_id = $1 AND r.rule = 'post_resolution_check'"
    " AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.follow_up_id = r.follow_up_id"
    "  AND f.status NOT IN ('scheduled', 'due', 'missed', 'escalated'))")
"""The post-resolution checks the rules planned for a resident's cases, bar those the
worklist knows ended (a check planned a moment ago may not be in the worklist yet)."""


STILL_CARED = ("SELECT more_care FROM resident_care WHERE resident_id = $1")
"""Whether a resident needs more care, as intake last said (``CareNeedChanged``)."""


def _cared_now(events: Sequence[Envelope], known: residents.Residents
               ) -> dict[UUID, Envelope]:
    """The residents a batch's ``CareNeedChanged`` says need more care (its last word for
    each, as ``known`` folded it), with that event."""
    said = {UUID(e.payload["resident_id"]): e for e in events
            if e.service == "intake" and e.type == "CareNeedChanged"}
    return {r: e for r, e in said.items() if known.more_care(r)}


async def _read(conn: asyncpg.Connection, events: Sequence[Envelope],
                parked_case: UUID | None = None
                ) -> tuple[_CaseRefs, residents.Residents, _Planned]:
    """The batch's cases, the residents' consent and what was planned, read at once
    (``parked_case``: the case of a parked rule applied again, which must not meet its
    resolution or reopening: ``_meet``)."""
    ids = _BatchIds(events)
    await _meet(conn, events, parked_case, ids)  # before anything is read
    if not ids.cases and not ids.residents:
        return _CaseRefs({}), residents.Residents({}), _Planned([])
    row = await conn.fetchrow(READ, list(ids.cases), list(ids.planned), list(ids.residents),
                              list(set(ids.turned)))
    assert row is not None
    flag = residents.Residents.flag
    # Each case_refs row by the names it carries, zipped (a lookup per column was a third
    # dearer, and most events of a batch have a case of their own).
    refs = row["refs"]
    names = tuple(refs[0].keys()) if refs else ()
    cases = (dict(zip(names, r, strict=True)) for r in refs)
    return (_CaseRefs({case["case_id"]: case for case in cases}),
            residents.Residents({UUID(str(r["resident_id"])): (r[flag], r["erased"],
                                                               r["changed_at"])
                                 for r in row["consents"]},
                                {UUID(str(i)) for i in row["cared"]}),
            _Planned(row["planned"]))


MEETS = (
    "SELECT CASE WHEN s.alone THEN (SELECT 1 FROM pg_advisory_xact_lock(s.space, s.bucket))"
    " ELSE (SELECT 1 FROM pg_advisory_xact_lock_shared(s.space, s.bucket)) END"
    " FROM (SELECT rank, space, bucket, bool_or(alone) AS alone"
    "  FROM (SELECT 0 AS rank, hashtext('sixstep:case-meets') AS space,"
    "   hashtext(c::text) & $6 AS bucket, false AS alone FROM unnest($5::uuid[]) AS c"
    "   UNION ALL SELECT 0, hashtext('sixstep:case-meets'), hashtext(c::text) & $6, true"
    "   FROM unnest($7::uuid[]) AS c"
    "   UNION ALL SELECT 1, hashtext('sixstep:care-meets'), hashtext(r::text) & $4, true"
    "   FROM unnest($3::uuid[]) AS r"
    "   UNION ALL SELECT 1, hashtext('sixstep:care-meets'), hashtext(r::text) & $4, false"
    "   FROM unnest($2::uuid[]) AS r"
    "   UNION ALL SELECT 1, hashtext('sixstep:care-meets'), hashtext(resident_id::text) & $4,"
    "   false FROM case_refs"
    "   WHERE case_id = ANY($1::uuid[]) AND resident_id IS NOT NULL) AS wanted"
    "  GROUP BY rank, space, bucket ORDER BY rank, bucket) AS s")
"""Where two writers that would miss each other's write meet (``_meet``): transaction-scoped
advisory locks per bucket, taken in one statement in one order (the cases' buckets, then the
residents'; each in the buckets' order), so no two transactions wait for each other in a
circle. A resolution and a care flag of the same resident: shared for the residents of the
cases a batch resolves, exclusive for those a batch says changed their need for care. A
resolution or reopening and a parked referral, escalation, resolution or reopening of the
same case: shared for
the cases a batch resolves or reopens, exclusive for the case of the rule ``retry_parked``
applies again. A plan step and a handover or urgency of the case it names: shared for the
cases a batch hands over or may make urgent, exclusive for those its plan steps name (plan
steps are few: two of them in one bucket wait for each other, nothing else does)."""
MEETS_AT_ONCE = MEETS.replace("SELECT 1 FROM pg_advisory_xact_lock",
                              "SELECT pg_try_advisory_xact_lock")
"""``MEETS`` for a batch merged into the one in hand (``Rules.merges``): each lock taken only
if it is free at once (``pg_try_advisory_xact_lock``), a row each saying whether it was. The
merged batch asks after the batch in hand took its own, out of the one statement's order: two
replicas merging each other's resident's care flag (or plan step) waited for each other in a
circle until PostgreSQL's deadlock detection refused one (``deadlock_timeout`` on both).
Not free, the merged batch is handed back (``_WouldWait``: its savepoint rolled back, what
it took released), to be applied as the next batch, holding nothing while it waits."""
#: Buckets of residents (a power of two, less one): a batch takes at most this many locks
#: plus one, whatever its size (PostgreSQL's lock table is shared and bounded), and a care
#: flag waits only for the batches resolving a case of a resident in its bucket.
CARE_BUCKETS = 1023
#: Buckets of cases: only a parked rule applied again and a plan step take one alone (rare),
#: so few buckets keep a batch's locks few; a batch resolving, handing over or making urgent
#: a case of the same bucket at that moment waits for that one rule.
CASE_BUCKETS = 255
#: The rules whose effect depends on whether the case is resolved as they run
#: (``_resolved_already``): a referral (派单) and an escalation (帮办).
CLOSED_IF_RESOLVED = frozenset({"referred", "escalated"})


class _BatchIds:
    """The ids a batch's events name, for ``_read`` and ``_meet``, taken in one pass over the
    events (nine passes before, a set or list each: ~6 % of the rules' main thread).

    ``cases``: each event's case and the case a plan step names; ``planned``: each event's
    case; ``turned``: the cases intake resolved or reopened, in order (``referring``: their
    referrals not yet answered are read too); ``resolved``: those resolved; ``residents``:
    those intake's consent and erasure events name, and those an opening, a rectification or
    a plan step names; ``cared``: those intake's ``CareNeedChanged`` names, in order;
    ``opened``: the residents of the cases the batch opens and resolves; ``steps``: the cases
    a plan step names (added on it, or linked to it); ``links``: the steps linked to a
    case; ``owned``: the cases handed over or that may turn urgent (an urgency high or
    critical, a deadline noted), in order."""

    __slots__ = ("cared", "cases", "links", "opened", "owned", "planned", "residents",
                 "resolved", "steps", "turned")

    def __init__(self, events: Sequence[Envelope]) -> None:
        planned: set[UUID] = set()
        steps: set[UUID] = set()
        links: list[UUID] = []
        turned: list[UUID] = []
        owned: list[UUID] = []
        resolved: set[UUID] = set()
        resident_ids: set[UUID] = set()
        cared: list[UUID] = []
        opening: list[tuple[UUID | None, Any]] = []
        consents = residents.TYPES
        for e in events:
            t, case_id = e.type, e.case_id
            if case_id is not None:
                planned.add(case_id)
            intake = e.service == "intake"
            if t in PLAN_STEPS:
                if (step := _step_case(e)) is not None:
                    steps.add(step)
                if t == "PlanCaseLinked":
                    links.append(UUID(e.payload["step_id"]))
            elif intake and case_id is not None and t in ("CaseResolved", "CaseReopened"):
                turned.append(case_id)
                if t == "CaseResolved":
                    resolved.add(case_id)
            elif intake and case_id is not None and (
                    t in ("CaseHandedOver", "DeadlineNoted")
                    or (t == "ConcernsNoted" and e.payload.get("urgency") in URGENT)):
                owned.append(case_id)
            elif intake and t == "CareNeedChanged":
                cared.append(UUID(e.payload["resident_id"]))
            elif intake and t in consents:
                resident_ids.add(UUID(e.payload["resident_id"]))
            if t in ("CaseOpened", "RectificationOpened", "PlanStepAdded") \
                    and (named := e.payload.get("resident_id")):
                resident_ids.add(UUID(str(named)))
                if intake and t == "CaseOpened":
                    opening.append((case_id, named))
        self.planned = planned
        self.cases = planned | steps
        self.steps = steps
        self.links = links
        self.owned = owned
        self.turned = turned
        self.resolved = resolved
        self.residents = resident_ids
        self.cared = cared
        self.opened = [UUID(named) for case_id, named in opening if case_id in self.resolved]


async def _meet(conn: asyncpg.Connection, events: Sequence[Envelope],
                parked_case: UUID | None = None, ids: _BatchIds | None = None) -> None:
    """Wait, before anything is read, for a transaction whose writes this batch must see.

    A resolution and a care flag of one resident, applied at the same instant by two
    workers (``CONSUMER_PARTITIONS``: the flag travels on the resident's partition, the
    resolution on the case's), each missed the other's write: the resolution read no flag
    and planned the usual check, the flag read no check to bring forward, and the check
    stayed late. A parked referral or escalation applied again (``retry_parked``, the
    calendar grew; ``parked_case``) while the live consumer resolved or reopened its case
    did the same: the retry read the case resolved and closed the referral as it sent it,
    the reopening read no referral to chase again, and the reopened case's referral was
    never chased; or the retry read it open, the resolution read no referral or help task
    to close, and both waited on a resolved case. A plan step naming a case (added on it,
    or linked to it: on the plan's partition) and that case's handover or urgency (on the
    case's) did the same: the step read the old owner and priority and planned its reminder
    for them, the handover or urgency read no reminder to move or prioritise, and it stayed
    with the plan's author at normal priority. Now the later of the two waits for the
    earlier to commit before it reads (``MEETS``, the batch's first statement, before
    ``READ``). A batch with none of these takes no lock; resolutions, handovers and
    urgencies never wait for each other."""
    ids = ids or _BatchIds(events)
    if not ids.resolved and not ids.cared and not ids.turned and not ids.owned \
            and not ids.steps and parked_case is None:
        return
    # A link meets a parked rule of its step applied again (``retry_parked``: its step id).
    alone = [*ids.steps, *ids.links]
    if parked_case is not None:
        alone.append(parked_case)
    # A case opened in the batch has no case_refs row yet: its resident from the opening.
    merged = _BEFORE.get() is not None
    taken = await conn.fetch(MEETS_AT_ONCE if merged else MEETS, list(ids.resolved),
                             ids.opened, ids.cared, CARE_BUCKETS, [*ids.turned, *ids.owned],
                             CASE_BUCKETS, alone)
    if merged and not all(row[0] for row in taken):
        raise _WouldWait("a merged batch's lock is held by another transaction: handed back")


def _turns(e: Envelope) -> bool:
    """Whether ``e`` turns its case: a resolution or a reopening (``turned_by``)."""
    return (e.service == "intake" and e.type in ("CaseResolved", "CaseReopened")
            and e.case_id is not None)


def _turned_since(e: Envelope, case: CaseRef) -> bool:
    """Whether a resolution or reopening ``e``, parked, was overtaken by a later turn of its
    case: the case's latest is another (``turned_by``); for a case last turned before
    ``turned_by`` was kept, the case is no longer as ``e`` left it (reopened since a
    resolution, resolved since a reopening). The status is asked also when ``turned_by``
    names ``e``: a replica still on the code before ``turned_by`` (a rolling upgrade) applies
    a later turn's status and leaves ``turned_by`` as it was."""
    if not case:
        return False  # the case unknown: its rule says so itself (rule.unknown_case)
    latest = plain(case.get("turned_by"))
    if latest is not None and latest != e.event_id:
        return True
    return case.get("status") != ("resolved" if e.type == "CaseResolved" else "open")


def _resolved_already(case: CaseRef) -> bool:
    """Whether a help task or referral of ``case`` is opened after its resolution: a rule
    parked until the calendar grew (``retry_parked`` reads the case as it is now), whose
    resolution found nothing to close. Opened, it is closed at once, as the resolution closes
    the others: left waiting, the referral was closed only at the scheduler's page of those
    awaiting a reply, the task at its deadline, both on the worklists meanwhile."""
    return case.get("status") == "resolved"


#: A plan's events that name a case in their payload (on the plan's partition).
PLAN_STEPS = frozenset({"PlanStepAdded", "PlanCaseLinked"})
#: What ``_run_in_order`` notes for a link that found no reminder to hand over, until
#: ``_behind_steps`` parks it behind its step or drops it.
WAITS_FOR_STEP = "waits for its plan step's rule"


class _StepUnplanned(Exception):
    """A link found no reminder of its step (``Rules._step_linked``)."""


async def _behind_steps(conn: asyncpg.Connection,
                        parked: list[tuple[Envelope, str, int | None]]
                        ) -> list[tuple[Envelope, str, int | None]]:
    """``parked`` with each link that found no reminder (``WAITS_FOR_STEP``) parked behind its
    step when the step's rule is parked (in this batch, or before), with its year; dropped
    otherwise (``rule.linked_step_without_reminder``: an erased resident's step plans none).

    A step past the calendar (a 2029 step, the calendar knowing up to 2028) is parked; its
    link, arriving meanwhile, found nothing to hand over and was dropped, and the step's rule,
    applied again once the year was known, planned the reminder for the plan's author with no
    case. Parked behind it, the link is applied again after it (``parking.parked_envelopes``
    orders a batch's parked rules as the log does), and the reminder is the case's."""
    steps = {e.payload["step_id"]: (reason, year) for e, reason, year in parked
             if e.type == "PlanStepAdded" and e.service == "intake"}
    kept: list[tuple[Envelope, str, int | None]] = []
    for e, reason, year in parked:
        if reason != WAITS_FOR_STEP:
            kept.append((e, reason, year))
            continue
        step = steps.get(e.payload["step_id"]) or await conn.fetchrow(
            PARKED_STEP, e.payload["step_id"])
        if step is None:
            log.info("rule.linked_step_without_reminder", step_id=e.payload["step_id"])
            continue
        kept.append((e, f"{WAITS_FOR_STEP}: {step[0]}", step[1]))
    return kept


PARKED_STEP = ("SELECT reason, year FROM parked_rules WHERE type = 'PlanStepAdded'"
               " AND envelope->'payload'->>'step_id' = $1")
"""A plan step's parked rule (its reason and year), if it is: parked rules are few, rare."""


def _links(events: Sequence[Envelope]) -> dict[UUID, UUID]:
    """The case each step a batch links (``PlanCaseLinked``) is linked to, by step id."""
    return {UUID(e.payload["step_id"]): UUID(e.payload["case_id"]) for e in events
            if e.type == "PlanCaseLinked" and e.service == "intake"}


def _step_case(e: Envelope) -> UUID | None:
    """The case a plan step names, or the case it is linked to (plan events carry none in
    the envelope)."""
    case_id = e.payload.get("case_id")
    return UUID(case_id) if case_id else None


#: ``sixstep ops backfill``: each case's last ``CaseDueDateSet`` source read from the log
#: (``$1`` cases, ``$2`` sources, ``$3`` stream sequences), kept until the whole log is read.
#: The run's own staging table (TEMP: its connection's, dropped with it): two runs at once
#: (two operators, a Job's retried pod) shared one table of the schema, and the second's
#: CREATE failed on PostgreSQL's unique type name, or a finished run dropped the table
#: under the other; one killed left it behind.
DUE_SOURCES_DDL = ("CREATE TEMP TABLE IF NOT EXISTS due_sources_backfill"
                   " (case_id uuid PRIMARY KEY, source text NOT NULL, seq bigint NOT NULL)")
DUE_SOURCES_READ = (
    "INSERT INTO due_sources_backfill AS b (case_id, source, seq)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])"
    " ON CONFLICT (case_id) DO UPDATE SET source = EXCLUDED.source, seq = EXCLUDED.seq"
    " WHERE b.seq < EXCLUDED.seq")


async def backfill_due_sources(conn: asyncpg.Connection, events: Sequence[Envelope],
                               seqs: Sequence[int]) -> None:
    """``case_refs.due_source`` is NULL for a case whose last due date was read before the
    column was (read as ``item_days``: ``queries.DUE_MAY_MOVE``). Every ``CaseDueDateSet``
    ever recorded names its source (a required field since the contract's first version): the
    log's last one of each case is kept here, in stream order, and :func:`due_sources_filled`
    writes them once the whole log is read."""
    last: dict[UUID, tuple[str, int]] = {}
    for e, seq in zip(events, seqs, strict=True):
        if e.service == "intake" and e.type == "CaseDueDateSet" and e.case_id is not None:
            last[e.case_id] = (e.payload["source"], seq)
    await conn.execute(DUE_SOURCES_DDL)
    if last:
        await conn.execute(DUE_SOURCES_READ, list(last), [v[0] for v in last.values()],
                           [v[1] for v in last.values()])


async def due_sources_filled(conn: asyncpg.Connection) -> int:
    """The rows still without a due source given the log's last one (a case whose due date
    was set since has its own, from its newer event: left alone; ``_CaseRefs.save`` keeps
    a filled one when it writes a row read before). Returns how many were filled."""
    await conn.execute(DUE_SOURCES_DDL)
    done = await conn.execute(
        "UPDATE case_refs c SET due_source = b.source FROM due_sources_backfill b"
        " WHERE c.case_id = b.case_id AND c.due_source IS NULL")
    await conn.execute("DROP TABLE pg_temp.due_sources_backfill")
    return int(done.split()[-1])


CaseRef = dict[str, Any]
"""A row of ``case_refs`` (case_id, center_id, resident_id, clerk_id, counter_id,
service_item, status, opened_at, urgency, deadline_close, due_on, due_basis, owner_clerk,
owner_team, turned_by: the event id of its latest resolution or reopening, due_source)."""
CASE_REF_COLUMNS = CASE_REF_ROW.columns
#: A case as its ``case_refs`` row (the tuple ``insert_rows`` takes), in one C call: a
#: generator per case was about a quarter of ``_CaseRefs.save``'s time (py-spy).
_CASE_REF_ROW = itemgetter(*CASE_REF_COLUMNS)
URGENT = (Urgency.HIGH.value, Urgency.CRITICAL.value)


def is_urgent(case: CaseRef) -> bool:
    """Urgency high or critical, or a deadline noted close (``urgent_deadline_working_days``):
    the case's follow-ups are high priority."""
    return case.get("urgency") in URGENT or bool(case.get("deadline_close"))


def owner_of(case: CaseRef) -> tuple[str | None, str | None]:
    """Who has the case now (clerk, team): the new owner after a handover, else its first
    clerk."""
    if case.get("owner_clerk") or case.get("owner_team"):
        return case.get("owner_clerk"), case.get("owner_team")
    return case["clerk_id"], None


_NO_CASE: CaseRef = {}


class _CaseRefs:
    """``case_refs`` and ``resident_items`` for one batch: the cases its events touch are read
    in one query, folded in memory event by event (so each rule sees its case as of its own
    event), and written back in two statements."""

    def __init__(self, cases: dict[UUID, CaseRef]) -> None:
        self.cases = cases
        self.dirty: set[UUID] = set()
        self.touched: list[tuple[UUID, str, UUID, str, datetime]] = []
        self.staff: dict[tuple[UUID, str], None] = {}  # (case, staff) who served it

    def note_staff(self, e: Envelope) -> None:
        """The staff an intake step makes ones who served its case, but its first clerk
        (``case_refs.clerk_id`` says so already: most steps add nothing)."""
        if e.service != "intake" or e.case_id is None:
            return
        first = (e.payload.get("clerk_id") if e.type == "CaseOpened"
                 else self.cases.get(e.case_id, _NO_CASE).get("clerk_id"))
        if e.actor == first and e.type not in NAMING:
            return  # the first clerk's own step: most of them
        for who in staff_of_step(e.type, e.actor, e.payload):
            if who != first:
                self.staff[(e.case_id, who)] = None

    def snapshot(self, case_id: UUID | None) -> CaseRef | None:
        """The case as of now, kept as it is (a copy): for a rule that runs later."""
        case = self.cases.get(case_id) if case_id is not None else None
        return dict(case) if case is not None else None

    def now(self, case_id: UUID | None) -> CaseRef:
        """The case as of now, to read at once (not a copy; {} for none)."""
        return self.cases.get(case_id, _NO_CASE) if case_id is not None else _NO_CASE

    def remember(self, e: Envelope, deadline_close: Callable[[Envelope], bool]) -> None:
        if e.type not in FOLDED or e.service != "intake" or e.case_id is None:
            return
        p = e.payload
        case = self.cases.get(e.case_id)
        if e.type == "CaseOpened":
            if case is not None:  # seen already (a replay of the same opening)
                return
            resident = UUID(p["resident_id"]) if p["resident_id"] else None
            self.cases[e.case_id] = {
                "case_id": e.case_id, "center_id": e.center_id, "resident_id": resident,
                "clerk_id": p["clerk_id"], "counter_id": p["counter_id"],
                "service_item": p["service_item"], "status": "open",
                "opened_at": e.occurred_at, "urgency": None, "deadline_close": False,
                "due_on": None, "due_basis": None, "owner_clerk": None, "owner_team": None,
                "turned_by": None, "due_source": None}
            self.dirty.add(e.case_id)
            if resident is not None:
                self.touched.append((resident, p["service_item"], e.case_id, e.center_id,
                                     e.occurred_at))
        elif case is None:
            return
        elif e.type == "GuidanceGiven":
            case["service_item"] = p["service_item"]
            self.dirty.add(e.case_id)
            if case["resident_id"] is not None:
                self.touched.append((case["resident_id"], p["service_item"], e.case_id,
                                     case["center_id"], case["opened_at"]))
        elif e.type in ("CaseResolved", "CaseReopened"):
            case["status"] = "resolved" if e.type == "CaseResolved" else "open"
            case["turned_by"] = e.event_id
            self.dirty.add(e.case_id)
        elif e.type == "ConcernsNoted":
            case["urgency"] = p["urgency"]
            self.dirty.add(e.case_id)
        elif e.type == "DeadlineNoted":
            if not case["deadline_close"] and deadline_close(e):
                case["deadline_close"] = True
                self.dirty.add(e.case_id)
        elif e.type == "CaseDueDateSet":
            case["due_on"] = date.fromisoformat(p["due_on"])
            case["due_basis"] = p["basis"]
            case["due_source"] = p.get("source")
            self.dirty.add(e.case_id)
        elif e.type == "CaseHandedOver":
            case["owner_clerk"], case["owner_team"] = p["to_clerk"], p["to_team"]
            self.dirty.add(e.case_id)

    async def save(self, conn: asyncpg.Connection, tables: bulk.Tables) -> None:
        """The batch's cases and their items, one statement each (``INSERT ... SELECT FROM
        unnest``): each case once (``dirty`` is a set), each item the first time seen."""
        if self.dirty:
            await bulk.insert_rows(
                conn, tables, "case_refs", CASE_REF_COLUMNS,
                [_CASE_REF_ROW(self.cases[i]) for i in self.dirty],
                conflict="(case_id) DO UPDATE"
                " SET service_item = EXCLUDED.service_item, status = EXCLUDED.status,"
                " urgency = EXCLUDED.urgency, deadline_close = EXCLUDED.deadline_close,"
                " due_on = EXCLUDED.due_on, due_basis = EXCLUDED.due_basis,"
                " due_source = coalesce(EXCLUDED.due_source, case_refs.due_source),"
                " owner_clerk = EXCLUDED.owner_clerk, owner_team = EXCLUDED.owner_team,"
                " turned_by = EXCLUDED.turned_by", row_type=CASE_REF_ROW)
        if self.staff:
            await bulk.insert_rows(conn, tables, "case_staff", ("case_id", "staff"),
                                   list(self.staff))
        if self.touched:
            await bulk.insert_rows(conn, tables, "resident_items", RESIDENT_ITEM_COLUMNS,
                                   bulk.first_of_each(self.touched, 3),
                                   row_type=RESIDENT_ITEM_ROW)
