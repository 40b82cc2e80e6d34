"""What feedback does with intake's events: a resolution asks for a survey, a reopening
withdraws the survey still waiting for an answer, and a resident's refusal or erasure
withdraws what may no longer ask them (``residents.py``). Follow-up's steps of a case's help
tasks (``HELP_WORK``) only add their staff to those who served the case (no 代评).

Feedback keeps the little it needs to know about each case (``intake_cases``: counter,
clerk, service item, channel, opaque resident id, when and at which window the resident was
last there about it) in the consumer's transaction: the counter's tablet asks only a resident
resolved on the day of that trip, at its window (``SurveyPolicy.channel_for``). The survey
commands are idempotent (the survey's id comes from the CaseResolved event's id; the upstream
event id is the command's causation id), so a redelivered batch asks nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.feedback import residents
from services.feedback.application import Feedback, Plan, ResolvedCase
from services.feedback.domain import Consent, survey_id_for_resolution
from shared.bus.consumer import More, partitions_named, wait_for_position
from shared.bus.jetstream import partition_of
from shared.contracts import Envelope
from shared.contracts.vocabulary import RESIDENT_SAYS_UNSOLVED, Channel
from shared.eventstore.group_commit import Sent, answered
from shared.kernel.errors import NotFound, RuleViolated
from shared.kernel.meta import by_a_worker
from shared.kernel.moments import judged_by
from shared.kernel.serving import HELP_WORK, help_task_id_for, staff_of_step
from shared.kernel.tasks import cancel_and_wait, gather_all
from shared.readmodels.positions import ReadModelBehind
from shared.settings import Settings

log = structlog.get_logger("sixstep.feedback.consumer")

CONSUMER = "feedback-intake"
TYPES = ("CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted", "GuidanceGiven",
         "ActionTaken", "CaseHandedOver", "DeadlineNoted", "ObligationDeclared",
         "GuidanceSessionHeld", "PlacementRecorded", "CaseResolved", "CaseReopened",
         "VisitRecorded")

DDL = [
    "CREATE TABLE IF NOT EXISTS intake_cases ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " clerk_id text NOT NULL, channel text NOT NULL, service_item text NOT NULL,"
    " resident_id uuid, last_survey_id uuid)",
    "CREATE INDEX IF NOT EXISTS intake_cases_resident ON intake_cases (resident_id)",
    # Who opened or served the case (the actors of its steps): none of them records its
    # survey's answer (no 代评).
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS served_by text[] NOT NULL DEFAULT '{}'",
    # When the case was opened at its window: the rating pad there shows the clerk who opened
    # the last one (the one sitting there now, also after a shift change), not only the clerk
    # of the window's last survey. Cases kept before this column have none: not looked at.
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS opened_at timestamptz",
    "CREATE INDEX IF NOT EXISTS intake_cases_window ON intake_cases"
    " (center_id, counter_id, opened_at DESC) WHERE opened_at IS NOT NULL",
    # When and at which window the resident was last there about the case (its opening, a
    # later trip naming it): the counter's tablet asks only a resident resolved that day.
    # Cases kept before these columns fall back on opened_at (none: as at the window).
    # present_at without a present_counter: the last contact was a call or a home visit.
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS present_at timestamptz",
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS present_counter text",
    # Who received them there (the trip's clerk): the rating pad at that window shows them.
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS present_clerk text",
    "CREATE INDEX IF NOT EXISTS intake_cases_present ON intake_cases"
    " (center_id, present_counter, present_at DESC) WHERE present_at IS NOT NULL",
    # When the case's last resolution survey is put before the resident: at the window (the
    # tablet showing it), or, by text or a clerk's call, at its send moment (since December
    # 2026; before, none): one a case a center day, and a reopening that day, once it was put
    # before them, leaves it open (``IntakeFollower``); none once the resident's own "not
    # solved" reopened the case, or a reopening withdrew it before it was sent (by the
    # survey's own sent state, not this planned moment), or when it never can be (no
    # consent to a text or a call, or erased). Cases kept before this column have none:
    # asked anew and withdrawn as before.
    "ALTER TABLE intake_cases ADD COLUMN IF NOT EXISTS last_survey_at timestamptz",
    # When a resident last sat down at each window (a trip, 一人次: the counter app records
    # one as each resident sits down, first or return): a resident whose case was opened or
    # taken up there before it is no longer there (the rating pad, ``pads.next_survey``).
    # One row per window and partition of the trips: each partition's worker writes its own,
    # so split workers never wait on each other's row (the pad reads the latest of them).
    "CREATE TABLE IF NOT EXISTS window_trips ("
    " center_id text NOT NULL, counter_id text NOT NULL, part int NOT NULL,"
    " at timestamptz NOT NULL, PRIMARY KEY (center_id, counter_id, part))",
    # The help tasks (帮办) the case's escalations opened (``help_task_id_for``): an answer
    # or a bad review's decision by staff waits until this consumer has read what follow-up
    # stored of their work (``served_now``). Cases kept before this table have none: not
    # waited for, as before.
    "CREATE TABLE IF NOT EXISTS case_help_tasks ("
    " case_id uuid NOT NULL, task_id uuid NOT NULL, PRIMARY KEY (case_id, task_id))",
    # How far this consumer has read the task's work in follow-up's log (its last
    # ``HELP_WORK`` event's position): what ``served_now`` waits for, whichever durable
    # (partitioned or not) applied it.
    "ALTER TABLE case_help_tasks ADD COLUMN IF NOT EXISTS read_up_to bigint",
    *residents.DDL,
]

COLUMNS = ("case_id", "center_id", "counter_id", "clerk_id", "channel", "service_item",
           "resident_id", "last_survey_id", "served_by", "opened_at", "present_at",
           "present_counter", "present_clerk", "last_survey_at")


def subjects(prefix: str) -> list[str]:
    return [*(f"{prefix}.intake.{t}.*" for t in (*TYPES, *residents.TYPES)),
            *(f"{prefix}.followup.{t}.*" for t in HELP_WORK)]


def _plain(row: asyncpg.Record) -> dict[str, Any]:
    """asyncpg's UUIDs as the standard library's (the event store transcodes only those)."""
    return {k: UUID(bytes=v.bytes) if isinstance(v, UUID) else v for k, v in row.items()}


def _case_of(e: Envelope) -> UUID | None:
    """The case an event is about: a trip names it in its payload (a first trip names none,
    its envelope's case id being the visit's own)."""
    if e.type == "VisitRecorded":
        named = e.payload.get("case_id")
        return UUID(str(named)) if named else None
    return e.case_id


def _served(served_by: list[str], e: Envelope) -> list[str]:
    """The staff who opened or served the case, with those this event makes so
    (``shared.kernel.serving``: the same for follow-up's favourable verdicts)."""
    staff = staff_of_step(e.type, e.actor, e.payload)
    return list(dict.fromkeys([*served_by, *staff])) if staff else list(served_by)


#: The last of follow-up's stored events of the given help tasks (``$1``) that are their work
#: (``$2``: ``HELP_WORK``'s topics), from follow-up's store: what this consumer must have read.
HELP_WORK_STORED = ("SELECT max(notification_id) FROM \"{schema}\".followup_events"
                    " WHERE originator_id = ANY($1::uuid[]) AND topic LIKE ANY($2::text[])")
#: ``HELP_WORK``'s stored topics (``services.followup.domain:HelpTask.HelpTaskDone``).
HELP_WORK_TOPICS = [f"%.{t}" for t in HELP_WORK]


async def served_now(pool: asyncpg.Pool, settings: Settings, case_id: UUID
                     ) -> tuple[str, ...]:
    """Who served the case as feedback has read it so far (``intake_cases.served_by``,
    ``HELP_WORK`` included): an answer staff record is refused to them (代评), also those
    who served it after its survey was asked (``Feedback.served_now``).

    Read once this consumer has applied the work of the case's help tasks that follow-up
    has stored (504 ``read_model_behind`` past ``read_wait_timeout_s``): a supervisor who
    marked the help task done and recorded the answer, or decided the bad review, a moment
    later was not among them yet (follow-up's events reach feedback on their own path). The
    reply link waits for its referral's last event the same way. Intake's steps need no
    wait: a survey is asked only once its case's resolution was read, and every earlier
    step of the case with it."""
    row = await pool.fetchrow(
        "SELECT served_by, ARRAY(SELECT task_id FROM case_help_tasks WHERE case_id = $1)"
        " AS tasks FROM intake_cases WHERE case_id = $1", case_id)
    if row is None:
        return ()
    if row["tasks"] and (last := await _help_work_stored(pool, settings, row["tasks"])):
        if not await _help_work_read(pool, case_id, last, settings):
            raise ReadModelBehind(
                "feedback has not read who worked the case's help tasks yet; retry shortly",
                position=last, service="followup")
        return tuple(await pool.fetchval(
            "SELECT served_by FROM intake_cases WHERE case_id = $1", case_id) or ())
    return tuple(row["served_by"])


#: Whether the case's help tasks' work was read up to ``$2`` (``case_help_tasks.read_up_to``).
HELP_WORK_READ = ("SELECT coalesce(max(read_up_to), 0) >= $2 FROM case_help_tasks"
                  " WHERE case_id = $1")


#: The durables of this consumer, its plain name's and its partitioned workers'
#: (``feedback-intake-p0_1``), that have applied follow-up's events.
DURABLES = ("SELECT consumer FROM consumer_progress WHERE service = 'followup'"
            " AND (consumer = $1 OR starts_with(consumer, $1 || '-p'))")


async def _help_work_read(pool: asyncpg.Pool, case_id: UUID, last: int,
                          settings: Settings) -> bool:
    """Wait (bounded) until this consumer has read the case's help-task work up to follow-up's
    ``last``: the case's own row says so (the events of a case are applied in order), or the
    progress of a durable that takes the case's partition (an event dead-lettered counts as
    passed; a task whose work was read before its row kept ``read_up_to``). The progress of
    the consumer's plain name alone never moves when its workers run partitioned (504 for
    ever: the k8s manifests run feedback's workers so)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.read_wait_timeout_s
    delay = 0.005
    while True:
        if await pool.fetchval(HELP_WORK_READ, case_id, last) or await _partition_read(
                pool, case_id, last, settings.partitions):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _partition_read(pool: asyncpg.Pool, case_id: UUID, last: int,
                          partitions: int) -> bool:
    """Whether a durable of this consumer whose name says it takes the case's partition
    (``partitions_named``) has applied follow-up's ``last`` (``APPLIED_POSITION``)."""
    part = partition_of(case_id, partitions)
    for name in [r["consumer"] for r in await pool.fetch(DURABLES, CONSUMER)]:
        if part in partitions_named(name, partitions) and await wait_for_position(
                pool, name, "followup", last, 0):
            return True
    return False


async def _help_work_stored(pool: asyncpg.Pool, settings: Settings,
                            tasks: list[UUID]) -> int | None:
    """The position of the last of the tasks' work in follow-up's store (None: none, or
    that store out of this service's sight: not waited for, as ``log_head``)."""
    try:
        found = await pool.fetchval(
            HELP_WORK_STORED.format(schema=settings.schema_for("followup")), tasks,
            HELP_WORK_TOPICS)
    except (asyncpg.UndefinedTableError, asyncpg.InsufficientPrivilegeError):
        return None
    return int(found) if found else None


READ = (
    "SELECT ARRAY(SELECT c FROM intake_cases c WHERE c.case_id = ANY($1::uuid[])"
    "  FOR UPDATE) AS cases,"
    " ARRAY(SELECT r FROM residents r WHERE r.resident_id = ANY($2::uuid[]"
    "  || ARRAY(SELECT resident_id FROM intake_cases WHERE case_id = ANY($3::uuid[])"
    "  AND resident_id IS NOT NULL)) FOR UPDATE) AS residents")
"""What a batch reads before it decides, in one round trip (two statements one after the
other before): the rows of its cases (``intake_cases``), and, locked as well, the residents
it may ask or must respect (``residents``): those its consent events name, and those of the
cases it resolves (already known, or opened in the batch)."""


async def _read(conn: asyncpg.Connection, events: Sequence[Envelope]
                ) -> tuple[dict[UUID, dict[str, Any]], residents.Residents]:
    case_ids = {c for e in events if (c := _case_of(e)) is not None}
    resolved = {e.case_id for e in events if e.type == "CaseResolved" and e.case_id is not None}
    named = residents.Residents.ids_in(events) | {
        UUID(e.payload["resident_id"]) for e in events
        if e.type == "CaseOpened" and e.case_id in resolved and e.payload.get("resident_id")}
    if not case_ids and not named:
        return {}, residents.Residents({})
    row = await conn.fetchrow(READ, list(case_ids), list(named), list(resolved))
    assert row is not None
    flag = residents.Residents.flag
    return ({r["case_id"]: _plain(r) for r in row["cases"]},
            residents.Residents({UUID(str(r["resident_id"])): (r[flag], r["erased"],
                                                               r["changed_at"])
                                 for r in row["residents"]}))


_TYPES = {"case_id": "uuid", "resident_id": "uuid", "last_survey_id": "uuid",
          "opened_at": "timestamptz", "present_at": "timestamptz",
          "last_survey_at": "timestamptz"}
#: Every column but ``served_by``, one array each in ``SAVE_CASES``.
_FLAT = tuple(c for c in COLUMNS if c != "served_by")
_ARRAYS = ", ".join(f"${i}::{_TYPES.get(c, 'text')}[]" for i, c in enumerate(_FLAT, start=2))
_VALUES = ", ".join("($1::text[])[r.s:r.e]" if c == "served_by" else f"r.{c}" for c in COLUMNS)
SAVE_CASES = (
    f"INSERT INTO intake_cases ({', '.join(COLUMNS)}) SELECT {_VALUES}"
    f" FROM unnest({_ARRAYS}, ${len(_FLAT) + 2}::int[], ${len(_FLAT) + 3}::int[])"
    f" AS r({', '.join(_FLAT)}, s, e)"
    " ON CONFLICT (case_id) DO UPDATE SET service_item = EXCLUDED.service_item,"
    " last_survey_id = EXCLUDED.last_survey_id,"
    " served_by = intake_cases.served_by || ARRAY(SELECT s FROM unnest(EXCLUDED.served_by) s"
    "  WHERE s <> ALL(intake_cases.served_by)),"
    " present_at = EXCLUDED.present_at, present_counter = EXCLUDED.present_counter,"
    " present_clerk = EXCLUDED.present_clerk, last_survey_at = EXCLUDED.last_survey_at")
"""A batch's cases (each once) in one statement, as one INSERT ... ON CONFLICT per case left
them. ``served_by`` is an array per case, which ``unnest`` would flatten: the cases' lists go
as one array ($1), each case taking its slice of it (``s`` to ``e``; an empty slice is
``{}``). It only grows, and is merged with the row's rather than put over it: who ``sixstep
ops backfill`` added (:func:`backfill_help_work`) while this consumer held the
row as read before is kept."""
_FLAT_ROW = itemgetter(*_FLAT)


async def save_cases(conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """The batch's ``intake_cases`` rows (one per case), in one round trip (``SAVE_CASES``)
    instead of an ``executemany`` (one execution per case)."""
    served: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for row in rows:
        starts.append(len(served) + 1)
        served += row["served_by"]
        ends.append(len(served))
    columns = zip(*map(_FLAT_ROW, rows), strict=True)
    await conn.execute(SAVE_CASES, served, *map(list, columns), starts, ends)


SAT_DOWN = (
    "INSERT INTO window_trips AS w (center_id, counter_id, part, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[])"
    " ON CONFLICT (center_id, counter_id, part) DO UPDATE SET at = GREATEST(w.at, EXCLUDED.at)")


#: How far each help task's work was read (``$1`` cases, ``$2`` tasks, ``$3`` positions): a
#: task of an escalation read before ``case_help_tasks`` was kept gets its row here.
HELP_WORK_APPLIED = (
    "INSERT INTO case_help_tasks AS t (case_id, task_id, read_up_to)"
    " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])"
    " ON CONFLICT (case_id, task_id) DO UPDATE"
    " SET read_up_to = GREATEST(t.read_up_to, EXCLUDED.read_up_to)")


#: Who worked a case's help tasks (``$1`` cases, ``$2`` staff), added to its ``served_by``.
HELPED_BY = (
    "UPDATE intake_cases c SET served_by = c.served_by || w.actor"
    " FROM unnest($1::uuid[], $2::text[]) AS w(case_id, actor)"
    " WHERE c.case_id = w.case_id AND w.actor <> ALL(c.served_by)")


async def backfill_help_work(conn: asyncpg.Connection, events: Sequence[Envelope],
                             seqs: Sequence[int] = ()) -> None:
    """Follow-up's ``HELP_WORK`` of the log read again (``sixstep ops backfill``):
    what this consumer applied of them after the upgrade that taught it to read them
    (``_helped``, ``HELP_WORK_APPLIED``), for those stored before it, which its durable
    never delivers (it goes on from where it was). Idempotent: a staff member already among
    the case's ``served_by`` is not added twice, and ``read_up_to`` only rises."""
    staff = sorted({(e.case_id, e.actor) for e in events
                    if e.service == "followup" and e.type in HELP_WORK and e.case_id is not None
                    and e.actor and not by_a_worker(e.actor)})
    worked: dict[tuple[UUID, UUID], int] = {}
    for e in events:
        if e.service == "followup" and e.type in HELP_WORK and e.case_id is not None:
            worked[(e.case_id, e.aggregate_id)] = max(
                worked.get((e.case_id, e.aggregate_id), 0), e.position)
    for case_id, actor in staff:  # one case may have several: one statement each
        await conn.execute(HELPED_BY, [case_id], [actor])
    if worked:
        await conn.execute(HELP_WORK_APPLIED, [w[0] for w in worked], [w[1] for w in worked],
                           list(worked.values()))


@dataclass
class Chain:
    """What one case's commands of a batch came to, for a day's survey a staff reopening found
    perhaps unsent (``IntakeFollower.unsent``): reopened, resolved and reopened again within
    one batch's read, each reopening withdraws the survey asked last while it is unsent."""

    withdrew: bool = False  # the day's survey was withdrawn unsent: it holds no day
    asked: ResolvedCase | None = None  # the batch's last resolution that asked anew since
    stands: bool = False  # its survey stands (no later reopening of the batch withdrew it)


@dataclass(frozen=True, slots=True)
class _Before:
    """The batch a merged batch is applied in (``Merging``): the cases it asked surveys for,
    and its answers (what it waits on)."""

    cases: frozenset[UUID]
    answers: asyncio.Future[Any]

    async def stood(self) -> None:
        """Once its answers are in: raised if any was a refusal (the merged batch is then
        handed back with nothing of it sent, to be applied after the batch before again)."""
        await asyncio.wait((self.answers,))
        if self.answers.cancelled():
            raise _BeforeRefused("the batch before was stopped")
        if (refused := _refusal(*self.answers.result())) is not None:
            raise _BeforeRefused(f"the batch before was refused: {refused!r}"[:300])


def _refusal(ran: Any, requested: Any) -> BaseException | None:
    """The first failure among a batch's settled answers: its runs' gather (itself failed,
    or one of its runs) and its requests' answers."""
    for outcome in (ran, requested, *(() if isinstance(ran, BaseException) else ran)):
        if isinstance(outcome, BaseException):
            return outcome
    return None


class _BeforeRefused(Exception):
    """A merged batch's case had its survey asked by the batch before, and that was refused."""


#: Set while a batch applies the next one in its transaction (``IntakeFollower.apply``).
_BEFORE: ContextVar[_Before | None] = ContextVar("feedback_follower_before", default=None)


class IntakeFollower:
    """Turns intake's resolutions and reopenings into survey commands."""

    #: Batches of four times CONSUMER_BATCH: the commands of a batch go to group commit
    #: together, so a larger batch fills its rounds rather than adding rounds.
    batch_scale = 4
    #: Read by key each batch (``READ``): the consumer analyzes them as they grow, or the
    #: plan made while they were empty scans every row.
    analyzed = ("intake_cases", "residents")
    #: While a batch's survey requests wait for their group-commit round, the next batch
    #: read ahead is applied in its transaction (``shared.bus.consumer.Merging``): decided,
    #: its cases written and its commands queued behind this batch's, instead of waiting
    #: for this round, this commit and its own tracking write (end_to_end.py: the round was
    #: half of a batch's time, the follower's tail).
    merges = True

    def __init__(self, feedback: Feedback, partitions: int = 1) -> None:
        self.feedback = feedback
        self.partitions = partitions  # of the stream's subjects (``window_trips.part``)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    more: More | None = None) -> None:
        cases, known = await _read(conn, events)
        dirty: set[UUID] = set()
        work: dict[UUID, list[tuple[str, Any]]] = {}
        # Cases whose day's survey a staff reopening withdraws only if it has not really gone
        # yet (``withdraw_unless_sent``): decided by the survey, after this loop; with the
        # resolution that asks anew in that case, if one follows in this batch.
        unsent: dict[UUID, tuple[UUID, ResolvedCase | None]] = {}
        sittings: dict[tuple[str, str, int], datetime] = {}  # each window's latest trip
        helped: list[tuple[UUID, UUID]] = []  # (case, help task) of escalations
        worked: dict[tuple[UUID, UUID], int] = {}  # (case, help task): its work read up to
        plans: dict[UUID, Plan] = {}  # each resolution's survey's channel and timing, by its id
        # What each resident agreed to, as of the end of this batch: a resolution decides with
        # it (whether its survey can ever be put before them: ``asked_at``), and a refusal or
        # erasure withdraws what is open (whatever came first).
        for e in events:
            if e.service == "intake" and e.type in residents.TYPES:
                known.remember(e)
        for e in events:
            if e.service == "followup" and e.type in HELP_WORK:
                self._helped(cases.get(e.case_id) if e.case_id else None, e, dirty)
                if e.case_id is not None:
                    worked[(e.case_id, e.aggregate_id)] = e.position
                continue
            if e.service != "intake" or e.case_id is None or e.type not in TYPES:
                continue  # a resident's consent or erasure: folded below
            p = e.payload
            if e.type == "VisitRecorded":  # a trip naming a case: the resident is there
                # At a window only when they sat down at one: a call about the case (the
                # phone line's "counter") or a clerk's home visit leaves no one before any
                # tablet, and a resolution that day asks them where they are.
                at_window = p.get("channel", Channel.COUNTER) == Channel.COUNTER
                if at_window:
                    window = (e.center_id, p["counter_id"],
                              partition_of(e.partition_key, self.partitions))
                    sittings[window] = max(sittings.get(window, e.occurred_at), e.occurred_at)
                named = _case_of(e)
                trip = cases.get(named) if named is not None else None
                if trip is not None and e.occurred_at >= (trip.get("present_at")
                                                          or e.occurred_at):
                    trip.update(present_at=e.occurred_at,
                                present_counter=p["counter_id"] if at_window else None,
                                present_clerk=p["clerk_id"] if at_window else None)
                    dirty.add(trip["case_id"])
                continue
            case = cases.get(e.case_id)
            if e.type == "CaseOpened":
                cases[e.case_id] = {
                    "case_id": e.case_id, "center_id": e.center_id,
                    "counter_id": p["counter_id"], "clerk_id": p["clerk_id"],
                    "channel": p["channel"], "service_item": p["service_item"],
                    "resident_id": UUID(p["resident_id"]) if p["resident_id"] else None,
                    "last_survey_id": None, "served_by": _served([], e),
                    "opened_at": e.occurred_at, "present_at": e.occurred_at,
                    "present_counter": p["counter_id"], "present_clerk": p["clerk_id"],
                    "last_survey_at": None}
                dirty.add(e.case_id)
                continue
            if case is None:
                log.warning("feedback.unknown_case", case_id=str(e.case_id), type=e.type)
                continue
            if (served := _served(case["served_by"], e)) != case["served_by"]:
                case["served_by"] = served
                dirty.add(e.case_id)
            if e.type == "ActionTaken" and p.get("kind") == "escalated":
                helped.append((e.case_id, help_task_id_for(e.event_id)))
            if e.type == "GuidanceGiven":
                case["service_item"] = p["service_item"]
                dirty.add(e.case_id)
            elif e.type == "CaseResolved":
                # A backdated resolution (``CaseResolved.judged_at``: posted more than
                # OCCURRED_AT_GRACE_S after the moment it gives) is surveyed from intake's
                # clock less the grace: timed from weeks back, its survey was born expired
                # (``is_too_old``), and a clerk dated a resolution back never to be rated.
                resolved_at = judged_by(e.occurred_at, e.payload)
                at_window = self._at_window(case, resolved_at)
                resolved = ResolvedCase(
                    case_id=e.case_id, center_id=case["center_id"],
                    counter_id=(case.get("present_counter") or case["counter_id"]
                                if at_window else case["counter_id"]),
                    clerk_id=case["clerk_id"],
                    service_item=case["service_item"], intake_channel=case["channel"],
                    resident_id=case["resident_id"], resolved_event_id=e.event_id,
                    resolved_at=resolved_at, correlation_id=e.correlation_id,
                    served_by=tuple(case["served_by"]), at_window=at_window)
                plan = plans[e.event_id] = self.feedback.plan(resolved)
                if self.feedback.is_too_old(resolved, plan):
                    continue
                if self._asked_on(case, resolved_at) and e.case_id in unsent:
                    # The day's survey may not have gone (see the reopening below): this
                    # resolution asks anew only if it had not, and was withdrawn.
                    if unsent[e.case_id][1] is None:
                        unsent[e.case_id] = (unsent[e.case_id][0], resolved)
                        work[e.case_id].append(("request_if_withdrawn", resolved))
                    continue
                if self._asked_on(case, resolved_at):
                    # One resolution survey a case a center day: resolved again the day one
                    # was put before the resident (at the window, or sent by text or a call:
                    # reopened and resolved to put a fresh survey over the answer coming, or
                    # given), the day's survey stands, still open or answered, and nothing
                    # new is asked.
                    log.info("feedback.survey_not_asked_again", case_id=str(e.case_id))
                    continue
                case["last_survey_id"] = survey_id_for_resolution(e.event_id)
                # None when the survey can never be put before the resident (no consent to a
                # text or a call, or erased: withdrawn at once, or never requested): it holds
                # no day, and a reopening and resolution that day (at the window, or once
                # they agreed) asks them.
                case["last_survey_at"] = self.feedback.asked_at(
                    resolved, known.consent(case["resident_id"]), plan)
                dirty.add(e.case_id)
                work.setdefault(e.case_id, []).append(("request", resolved))
            elif e.type == "CaseReopened" and case["last_survey_id"] is not None:
                if (p.get("reason") == RESIDENT_SAYS_UNSOLVED and by_a_worker(e.actor)):
                    # The resident's own "not solved" (an answer: nothing to withdraw): the
                    # next resolution asks them anew, that day too.
                    case["last_survey_at"] = None
                    dirty.add(e.case_id)
                elif self._asked_on(case, e.occurred_at):
                    # Reopened by staff the day its survey was put before the resident (at
                    # the window, or sent by text or a call since): it stays open (rated, or
                    # expired: counted), not withdrawn to count nowhere before a bad answer
                    # came. ``last_survey_at`` is when it was to go; whether it really went
                    # (the scheduler down, or the resolution read late just before the quiet
                    # hours: the text goes next morning) the survey itself says, at once
                    # with the scheduler's send: withdrawn if it still waits, as before it
                    # was due. Reopened again in the same batch after a resolution here
                    # asked anew (reopened, resolved and reopened within one batch's read):
                    # that new survey is the one this reopening withdraws while unsent.
                    # The day is the reopening's own (``occurred_at``): a slip typed in past
                    # the grace has ``CaseReopened.judged_at``, a later day, for follow-up's
                    # planning; judged by it, the survey put before the resident the day the
                    # slip says was withdrawn, counted nowhere (redteam70).
                    if e.case_id not in unsent:
                        unsent[e.case_id] = (case["last_survey_id"], None)
                        work.setdefault(e.case_id, []).append(
                            ("withdraw_unless_sent",
                             (case["last_survey_id"], str(e.event_id))))
                    elif unsent[e.case_id][1] is not None:
                        unsent[e.case_id] = (unsent[e.case_id][0], None)
                        work[e.case_id].append(("withdraw_asked", (str(e.event_id), True)))
                    continue
                else:
                    # Withdrawn (not yet sent, or asked on an earlier day): nothing stands
                    # to keep the next resolution from asking, that day too.
                    case["last_survey_at"] = None
                    dirty.add(e.case_id)
                    if unsent.get(e.case_id, (None, None))[1] is not None:
                        # The day's survey went unsent and a resolution here asked anew,
                        # then reopened on the next day (past midnight): that one too.
                        unsent[e.case_id] = (unsent[e.case_id][0], None)
                        work[e.case_id].append(("withdraw_asked", (str(e.event_id), False)))
                work.setdefault(e.case_id, []).append(
                    ("withdraw", (case["last_survey_id"], str(e.event_id))))
        # The commands go to group commit now: their commit (on the writer's own connection)
        # overlaps this transaction's writes instead of waiting behind them. One case's
        # commands in order; different cases together (one group commit). A case whose one
        # command is its survey's request (most) sends it here, with no task of its own: the
        # batch's requests queue at once as one command, in one round, answered once.
        if (before := _BEFORE.get()) is not None and (
                known.narrowed or not before.cases.isdisjoint(work)):
            # Merged into a batch that asked this batch's cases' surveys (or its resident's):
            # queued behind those requests is not enough. One refused (the store away past
            # its due time, which this batch's later commands outlive) would let this
            # batch's commands for the case go on alone: a reopening finding no survey to
            # withdraw ("none was made") and the resolution after it asking anew, a survey
            # that outlives both batches' rollback. So they go once those answers stand.
            await before.stood()
        sent: list[Sent] = []
        runs: dict[UUID, Coroutine[Any, Any, Chain]] = {}
        asks: list[tuple[ResolvedCase, Consent, Plan | None]] = []
        try:
            for case_id, steps in work.items():
                if len(steps) == 1 and steps[0][0] == "request":
                    if (ask := self._asked(steps[0][1], known, plans)) is not None:
                        asks.append(ask)
                else:
                    runs[case_id] = self._run(steps, known, plans)
            if asks:
                # The cases whose one command is their survey's request (most): asked in one
                # command (``Feedback.request_surveys``), queued before any case's run starts.
                sent.append(self.feedback.request_surveys(asks))
        except BaseException:
            # A request refused as it was queued (the service shutting down): the ones queued
            # before it are withdrawn, not left to run past this transaction (the batch is
            # applied again), and the cases' runs, not started, are dropped.
            for one in sent:
                one.withdraw()
            for run in runs.values():
                run.close()
            raise
        # return_exceptions: one case's failure must not leave the other cases' commands
        # running past this transaction (gather answers at the first failure and lets the
        # rest go on): the batch is applied again one event at a time after the rollback.
        commands = asyncio.gather(*runs.values(), return_exceptions=True)
        # The next batch while this one's requests wait, only when nothing of this batch is
        # left to do after their answers, and nothing of it is sent later: then the next
        # batch reads this one's rows (same transaction) and its commands queue behind all
        # of this one's, in order. Not with a case's run of steps (each step is sent once
        # the one before is answered: the next batch's command for the case could go
        # first), a reopening's withdrawal decided by its survey (``unsent``: the case's row
        # is fixed after the answer), nor a resident's narrowed consent (its surveys are
        # withdrawn after the answers).
        mergeable = bool(sent) and not runs and not unsent and not known.narrowed
        written = False
        try:
            if dirty:
                await save_cases(conn, [cases[i] for i in dirty])
            if sittings:
                windows = sorted(sittings)
                await conn.execute(SAT_DOWN, [w[0] for w in windows], [w[1] for w in windows],
                                   [w[2] for w in windows], [sittings[w] for w in windows])
            if helped:
                await conn.execute(
                    "INSERT INTO case_help_tasks (case_id, task_id) SELECT * FROM"
                    " unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
                    [h[0] for h in helped], [h[1] for h in helped])
            if worked:
                await conn.execute(HELP_WORK_APPLIED, [w[0] for w in worked],
                                   [w[1] for w in worked], list(worked.values()))
            await known.save(conn)
            written = True
        finally:
            # settled before the transaction ends, whatever happened here
            settling = asyncio.gather(commands, answered(sent), return_exceptions=True)
            if more is not None and mergeable and written:
                merging = _BEFORE.set(_Before(frozenset(work), settling))
                try:
                    await more(settling)
                except BaseException:  # cancelled: what was sent is withdrawn, as below,
                    # and waited for even when cancelled again (a shutdown's repeated cancels:
                    # a plain asyncio.wait gave up at the second, the withdrawal still running)
                    await cancel_and_wait(settling)
                    raise
                finally:
                    _BEFORE.reset(merging)
            ran, requested = await settling
        if (refused := _refusal(ran, requested)) is not None:
            raise refused
        settled = dict(zip(runs, ran, strict=True))
        # The days' surveys a reopening withdrew unsent hold no day: the next resolution that
        # day asks (or the one in this batch did).
        if fixed := [self._unsent_withdrawn(cases[i], settled[i], known, plans)
                     for i, (survey_id, _) in unsent.items()
                     if i in settled and settled[i].withdrew
                     and cases[i]["last_survey_id"] == survey_id]:
            await save_cases(conn, fixed)
        withdrawals = [(survey_id, known.consent(resident_id), cause)
                       for resident_id, cause in known.narrowed.items()
                       for survey_id in await residents.open_surveys(conn, resident_id)]
        if withdrawals:
            await gather_all(*(self._respect(*w) for w in withdrawals))

    @staticmethod
    def _helped(case: dict[str, Any] | None, e: Envelope, dirty: set[UUID]) -> None:
        """A help task of the case moved along by staff: they served it (``HELP_WORK``)."""
        if case is None or not e.actor or by_a_worker(e.actor) or e.actor in case["served_by"]:
            return
        case["served_by"] = [*case["served_by"], e.actor]
        dirty.add(case["case_id"])

    def _asked_on(self, case: dict[str, Any], at: datetime) -> bool:
        """Whether the case's last resolution survey was put before the resident by ``at`` on
        the center's day of ``at`` (never, for a case kept before it was remembered): a text
        still waiting for its send moment was asked nothing yet."""
        asked = case.get("last_survey_at")
        return asked is not None and asked <= at and (self.feedback.local_day(asked)
                                                      == self.feedback.local_day(at))

    def _at_window(self, case: dict[str, Any], resolved_at: datetime) -> bool:
        """Whether the resident is there as the case is resolved: resolved on the center's day
        of their last trip about it (its opening, or a return trip naming it)."""
        present = case.get("present_at") or case.get("opened_at")
        if present is None:  # kept before trips were: as it always was, at the window
            return True
        if case.get("present_at") is not None and case.get("present_counter") is None:
            return False  # their last contact about it was a call or a home visit
        return self.feedback.local_day(present) == self.feedback.local_day(resolved_at)

    async def _respect(self, survey_id: UUID, consent: Consent, cause: str) -> None:
        """Withdraw a survey that may no longer ask its resident (a no-op if it may)."""
        try:
            because = await self.feedback.respect_consent(survey_id, consent, cause)
        except NotFound:  # in the view, not in the store: nothing to withdraw
            return
        if because is not None:
            log.info("feedback.survey_withdrawn", survey_id=str(survey_id),
                     because=because.value)

    def _unsent_withdrawn(self, case: dict[str, Any], chain: Chain,
                          known: residents.Residents, plans: dict[UUID, Plan]
                          ) -> dict[str, Any]:
        """The case's row once its day's survey was withdrawn unsent: none put before the
        resident, or the one the batch's resolution asked anew (none either once a later
        reopening of the batch withdrew that one too)."""
        asked = chain.asked
        if asked is None:
            case["last_survey_at"] = None
        else:
            case["last_survey_id"] = survey_id_for_resolution(asked.resolved_event_id)
            case["last_survey_at"] = self.feedback.asked_at(
                asked, known.consent(asked.resident_id),
                plans.get(asked.resolved_event_id)) if chain.stands else None
        return case

    def _request(self, resolved: ResolvedCase, known: residents.Residents,
                 plans: dict[UUID, Plan]) -> Sent | None:
        """The resolution's survey asked (queued now: await the answer); None for an erased
        resident, nobody to ask (no survey, nothing counted)."""
        if (ask := self._asked(resolved, known, plans)) is None:
            return None
        return self.feedback.request_survey(*ask)

    @staticmethod
    def _asked(resolved: ResolvedCase, known: residents.Residents, plans: dict[UUID, Plan]
               ) -> tuple[ResolvedCase, Consent, Plan | None] | None:
        """What the resolution's survey is asked with (``Feedback.request_survey``): the
        resident's consent and ``plans``' (the batch's resolutions', ``Feedback.plan``, worked
        out once as they were read); None for an erased resident, nobody to ask (no survey,
        nothing counted)."""
        consent = known.consent(resolved.resident_id)
        if consent.erased:
            log.info("feedback.no_survey_for_erased_resident", case_id=str(resolved.case_id))
            return None
        return resolved, consent, plans.get(resolved.resolved_event_id)

    async def _run(self, steps: list[tuple[str, Any]], known: residents.Residents,
                   plans: dict[UUID, Plan]) -> Chain:
        """One case's commands in order; what came of the day's survey a staff reopening
        found perhaps unsent (``Chain``)."""
        chain = Chain()
        free = False  # the survey asked last was withdrawn unsent: the next resolution asks
        for kind, arg in steps:
            if kind == "withdraw_unless_sent":
                survey_id, cause = arg
                free = chain.withdrew = await self._withdraw_unless_sent(survey_id, cause)
                continue
            if kind == "withdraw_asked":  # reopened again after a resolution here asked anew
                cause, unless_sent = arg
                if chain.asked is not None and chain.stands:
                    survey_id = survey_id_for_resolution(chain.asked.resolved_event_id)
                    if unless_sent:
                        free = await self._withdraw_unless_sent(survey_id, cause)
                    else:
                        await self._withdraw(survey_id, cause)
                        free = True
                    chain.stands = not free
                continue
            again = kind == "request_if_withdrawn"
            if again:
                if not free:
                    log.info("feedback.survey_not_asked_again", case_id=str(arg.case_id))
                    continue
                kind = "request"
            if kind == "request":
                if (request := self._request(arg, known, plans)) is None:
                    continue
                await request
                if again:
                    chain.asked, chain.stands = arg, True
                continue
            survey_id, cause = arg
            await self._withdraw(survey_id, cause)
        return chain

    async def _withdraw_unless_sent(self, survey_id: UUID, cause: str) -> bool:
        """``Feedback.withdraw_unless_sent``: whether it holds no day (withdrawn unsent)."""
        try:
            withdrew = await self.feedback.withdraw_unless_sent(
                survey_id, "the case was reopened", cause)
        except NotFound:  # none was made: nothing stands
            return True
        if not withdrew:
            log.info("feedback.survey_not_withdrawn", survey_id=str(survey_id),
                     reason="put before the resident")
        return withdrew

    async def _withdraw(self, survey_id: UUID, cause: str) -> None:
        try:
            await self.feedback.withdraw_survey(survey_id, "the case was reopened", cause)
        except (RuleViolated, NotFound) as exc:  # answered or expired already: it stands
            log.info("feedback.survey_not_withdrawn", survey_id=str(survey_id),
                     reason=exc.message)
