"""Intake's read model, built from the stream: cases and their timelines, and the eligibility
hints shown to residents (``hint_rows.py``) (asyncpg)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog

from services.intake import hint_rows
from shared.contracts import Envelope
from shared.readmodels import bulk
from shared.readmodels.readmodel import ReadModel

CONSUMER = "intake-cases"
log = structlog.get_logger("sixstep.intake.cases")

#: A ``cases`` row as the live INSERT sends it: one element of its one array parameter
#: (``bulk.RowType``). As one array a column, asyncpg asked each of a row's 28 values
#: whether it is itself an array (an ``isinstance`` against ``collections.abc`` each): 4.2 %
#: of intake's one-process loop with the timeline's 11 (stop 49's profile).
CASE_ROW = bulk.RowType("case_row", (
    ("case_id", "uuid"), ("center_id", "text"), ("counter_id", "text"), ("clerk_id", "text"),
    ("channel", "text"), ("service_item", "text"), ("resident_id", "uuid"),
    ("resident_basis", "text"), ("applicant_id", "uuid"), ("status", "text"),
    ("stage", "text"), ("emotion_on_arrival", "text"), ("urgency", "text"),
    ("eligibility", "text"), ("outcome", "text"), ("emotion_defused", "boolean"),
    ("opened_at", "timestamptz"), ("updated_at", "timestamptz"),
    ("resolved_at", "timestamptz"), ("next_deadline", "date"), ("reopen_count", "integer"),
    ("version", "integer"), ("position", "bigint"), ("due_on", "date"),
    ("due_basis", "text"), ("due_source", "text"), ("owner_clerk", "text"),
    ("owner_team", "text")))
#: A ``case_timeline`` row likewise (its payload as text, cast to jsonb in the SELECT).
TIMELINE_ROW = bulk.RowType("case_step", (
    ("case_id", "uuid"), ("version", "integer"), ("position", "bigint"), ("type", "text"),
    ("schema_version", "integer"), ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"), ("actor", "text"), ("causation_id", "text"),
    ("correlation_id", "text"), ("payload", "text")))
#: A case's changes in a batch (``_update``), one element of its UPDATE's one array
#: parameter, with the mask saying which of these it has (``bulk.patch_type``): ~20 values a
#: case were each checked by asyncpg as column arrays.
CASE_CHANGE = bulk.patch_type("case_change", ("case_id", "uuid"), (
    ("stage", "text"), ("emotion_on_arrival", "text"), ("urgency", "text"),
    ("eligibility", "text"), ("service_item", "text"), ("next_deadline", "date"),
    ("due_on", "date"), ("due_basis", "text"), ("due_source", "text"),
    ("owner_clerk", "text"), ("owner_team", "text"), ("status", "text"), ("outcome", "text"),
    ("emotion_defused", "boolean"), ("resolved_at", "timestamptz"),
    ("reopen_count", "integer"), ("updated_at", "timestamptz"), ("version", "integer"),
    ("position", "bigint")))

DDL = [
    "CREATE TABLE IF NOT EXISTS cases ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " clerk_id text NOT NULL, channel text NOT NULL, service_item text NOT NULL,"
    " resident_id uuid, status text NOT NULL, stage text NOT NULL,"
    " emotion_on_arrival text, urgency text, eligibility text, outcome text,"
    " emotion_defused boolean, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
    " resolved_at timestamptz, next_deadline date, reopen_count int NOT NULL DEFAULT 0,"
    " version int NOT NULL, position bigint NOT NULL,"
    " projected_at timestamptz NOT NULL DEFAULT clock_timestamp(), resident_basis text)",
    # CaseOpened v2: on which standing the case names its resident (the vault's rule).
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS resident_basis text",
    # CaseDueDateSet: the due date (办结时限) in force, what it rests on, and where it came from.
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS due_on date",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS due_basis text",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS due_source text",
    "CREATE INDEX IF NOT EXISTS cases_center_due ON cases (center_id, status, due_on)",
    # CaseHandedOver: who does the work now (null: the first clerk, clerk_id).
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS owner_clerk text",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS owner_team text",
    "CREATE INDEX IF NOT EXISTS cases_owner_status ON cases (center_id, owner_clerk, status)"
    " WHERE owner_clerk IS NOT NULL",
    # CaseOpened v3: the applicant, when another resident acts for the beneficiary (代办).
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS applicant_id uuid",
    "CREATE INDEX IF NOT EXISTS cases_center_opened ON cases (center_id, opened_at DESC)",
    # (center_id, status) is cases_center_due's first two columns: that index serves it, and
    # a second one cost every case opened or resolved an index entry more.
    "DROP INDEX IF EXISTS cases_center_status",
    "CREATE INDEX IF NOT EXISTS cases_item ON cases (service_item)",
    # A resident's cases by center: the vault's probe for a case of the caller's center
    # naming the resident (``_SELECT_IN_REACH``) is one look-up. On the resident alone (until
    # stop 50) it walked every case of the resident at their own center and threw them away:
    # another center's regular answered later than an id nobody has, the more cases the
    # later. Its first column serves what the resident-only index served.
    "CREATE INDEX IF NOT EXISTS cases_resident_center ON cases (resident_id, center_id)",
    "DROP INDEX IF EXISTS cases_resident",
    # The counter page's "my open cases" (GET /cases?clerk_id=&status=open).
    "CREATE INDEX IF NOT EXISTS cases_clerk_status ON cases (center_id, clerk_id, status)",
    "CREATE TABLE IF NOT EXISTS case_timeline ("
    " case_id uuid NOT NULL, version int NOT NULL, position bigint NOT NULL,"
    " type text NOT NULL, schema_version int NOT NULL, occurred_at timestamptz NOT NULL,"
    " recorded_at timestamptz NOT NULL, actor text NOT NULL, causation_id text,"
    " correlation_id text, payload jsonb NOT NULL, PRIMARY KEY (case_id, version))",
    *hint_rows.DDL,
    # A quarter of each page kept free, so that a step that changes no indexed column (most:
    # a stage, an urgency, an eligibility) is a HOT update, written beside the row with no
    # new entry in any of the table's indexes. Set once (the lookup first: ALTER TABLE
    # would take its lock, and make every session plan its statements again, at each start);
    # rows written before keep their pages until rewritten.
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = 'cases'::regclass AND"
    " reloptions @> ARRAY['fillfactor=75']) THEN ALTER TABLE cases SET (fillfactor = 75);"
    " END IF; END $$",
    # A live batch's rows, each as one composite (``bulk.RowType``: never altered, a new
    # shape is a new name; a rebuild's switch leaves them in the live schema).
    CASE_ROW.ddl,
    TIMELINE_ROW.ddl,
    CASE_CHANGE.ddl,
]

STAGES = {
    "RequestHeard": "heard", "RequestRestated": "restated", "ConcernsNoted": "concerns_noted",
    "GuidanceGiven": "guided", "ActionTaken": "served", "DeadlineNoted": None,
    "ObligationDeclared": None, "CaseDueDateSet": None, "CaseResolved": "resolved",
    "CaseReopened": "reopened", "CaseHandedOver": None,
}


def _patch(patch: dict[str, Any], e: Envelope) -> None:
    p = e.payload
    stage = STAGES.get(e.type)
    if stage:
        patch["stage"] = stage
    if e.type == "ConcernsNoted":
        patch.setdefault("emotion_on_arrival", p["emotion"])
        patch["urgency"] = p["urgency"]
    elif e.type == "GuidanceGiven":
        patch["eligibility"] = p["eligibility"]
        patch["service_item"] = p["service_item"]
    elif e.type == "DeadlineNoted":
        due = date.fromisoformat(p["due_on"])
        if patch.get("next_deadline") is None or due < patch["next_deadline"]:
            patch["next_deadline"] = due
    elif e.type == "CaseDueDateSet":
        patch.update(due_on=date.fromisoformat(p["due_on"]), due_basis=p["basis"],
                     due_source=p["source"])
    elif e.type == "CaseHandedOver":
        patch.update(owner_clerk=p["to_clerk"], owner_team=p["to_team"])
    elif e.type == "CaseResolved":
        patch.update(status="resolved", outcome=p["outcome"],
                     emotion_defused=p["emotion_defused"], resolved_at=e.occurred_at)
    elif e.type == "CaseReopened":
        patch.update(status="open", outcome=None, emotion_defused=None, resolved_at=None)
        patch["reopen_count"] = patch.get("reopen_count", 0) + 1
    patch["updated_at"] = e.occurred_at
    patch["version"] = e.aggregate_version
    patch["position"] = e.position


CASE_COLUMNS = CASE_ROW.columns
TIMELINE_COLUMNS = TIMELINE_ROW.columns
#: How the live UPDATE treats these columns (the rest are plain assignments).
CASE_EXPRESSIONS = {"reopen_count": "t.reopen_count + s.reopen_count",
                    "emotion_on_arrival": "COALESCE(t.emotion_on_arrival, s.emotion_on_arrival)",
                    # The earliest deadline noted, whichever batch noted it (LEAST skips NULL).
                    "next_deadline": "LEAST(t.next_deadline, s.next_deadline)"}


@dataclass
class _Plan:
    """What a batch does: cases opened (in order), one patch per case, timeline rows.

    ``early`` holds the patches of the steps a batch has ahead of their case's opening (on
    the stream before it): applied before the opening's INSERT, as one event at a time
    applies them, so they change a row only if the case was opened already (a second
    opening), and none otherwise, wherever the batches end."""

    opened: list[tuple[Any, ...]] = field(default_factory=list)
    patches: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    early: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))


@dataclass(slots=True)
class _Prepared:
    """A live batch's work that needs no database (``CaseProjection.prepare``)."""

    own: list[Envelope]
    steps: list[tuple[Any, ...]]
    plan: _Plan
    #: The plan folded (:func:`_fold`): rows of the cases it opens, patches of the others.
    folded: tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]]]
    #: What the statements send when every step is new: the steps ahead of their case's
    #: opening (``CASE_CHANGE``), the opened cases' rows (``CASE_ROW``), the other cases'
    #: patches (``CASE_CHANGE``).
    early_rows: list[tuple[Any, ...]]
    opened_rows: list[tuple[Any, ...]]
    patch_rows: list[tuple[Any, ...]]


def _own(events: Sequence[Envelope]) -> list[Envelope]:
    """The cases' own events (not a visit naming a case: the figures count those), each
    (case, version) once: the first copy, should the log hold one twice."""
    seen: set[tuple[UUID, int]] = set()
    own = []
    for e in events:
        if e.service != "intake" or e.case_id is None or e.aggregate_id != e.case_id:
            continue
        step = (e.case_id, e.aggregate_version)
        if step not in seen:
            seen.add(step)
            own.append(e)
    return own


def _step(e: Envelope) -> tuple[Any, ...]:
    """The event's ``case_timeline`` row."""
    return (e.case_id, e.aggregate_version, e.position, e.type, e.version, e.occurred_at,
            e.recorded_at, e.actor, e.causation_id, e.correlation_id,
            orjson.dumps(e.payload).decode())


def _plan(events: Sequence[Envelope], timeline: bool = True) -> _Plan:
    """What the events do; ``events`` are the cases' own, each step once (:func:`_own`).
    Without ``timeline`` the plan leaves its timeline rows out (the live path builds them
    first, to learn which steps are new)."""
    plan = _Plan()
    opened: set[UUID] = set()
    for e in events:
        if timeline:
            plan.timeline.append(_step(e))
        if e.type == "CaseOpened":
            if e.case_id not in opened:
                opened.add(e.case_id)
                # The steps the batch had of it so far were ahead of its opening.
                early = plan.patches.pop(e.case_id, None)
                if early is not None:
                    plan.early[e.case_id] = early
            p = e.payload
            plan.opened.append((e.case_id, e.center_id, p["counter_id"], p["clerk_id"],
                                p["channel"], p["service_item"],
                                UUID(p["resident_id"]) if p["resident_id"] else None,
                                p.get("resident_basis"), e.occurred_at, e.aggregate_version,
                                e.position,
                                UUID(p["applicant_id"]) if p.get("applicant_id") else None))
        else:
            _patch(plan.patches[e.case_id], e)
    return plan


def _counted(patches: dict[UUID, dict[str, Any]]) -> dict[UUID, dict[str, Any]]:
    """Patches as the UPDATE takes them (``reopen_count`` is added, so always there)."""
    return {case_id: {**patch, "reopen_count": patch.get("reopen_count", 0)}
            for case_id, patch in patches.items()}


async def _update(conn: asyncpg.Connection, patches: dict[UUID, dict[str, Any]],
                  rows: list[tuple[Any, ...]] | None = None) -> set[UUID]:
    """The patches applied to ``cases`` (sent as ``rows``, :func:`bulk.patch_rows` of them,
    when built ahead); the cases that had no row (looked up only when fewer rows changed
    than there were patches)."""
    if not patches:
        return set()
    changed = await bulk.update_patched(
        conn, "cases", "case_id", CASE_CHANGE,
        bulk.patch_rows(CASE_CHANGE, patches) if rows is None else rows, CASE_EXPRESSIONS,
        also="projected_at = clock_timestamp()")
    if changed == len(patches):
        return set()
    there = await conn.fetch("SELECT case_id FROM cases WHERE case_id = ANY($1::uuid[])",
                             list(patches))
    return set(patches) - {r["case_id"] for r in there}


def _note_ignored(cases: set[UUID]) -> None:
    """Steps of cases not opened (yet) when they came: kept in the timeline, no row changed
    (a step ahead of its opening, or of a case whose opening the stream no longer has)."""
    if cases:
        log.warning("cases.steps_without_opening", cases=len(cases),
                    case_ids=[str(c) for c in sorted(cases)[:50]])


def _opened_row(opened: tuple[Any, ...]) -> dict[str, Any]:
    """A ``cases`` row as the live INSERT writes it."""
    (case_id, center_id, counter_id, clerk_id, channel, service_item, resident_id,
     resident_basis, opened_at, version, position, applicant_id) = opened
    row: dict[str, Any] = dict.fromkeys(CASE_COLUMNS)
    row.update(case_id=case_id, center_id=center_id, counter_id=counter_id, clerk_id=clerk_id,
               channel=channel, service_item=service_item, resident_id=resident_id,
               resident_basis=resident_basis, applicant_id=applicant_id, status="open",
               stage="opened",
               opened_at=opened_at, updated_at=opened_at, reopen_count=0, version=version,
               position=position)
    return row


def _case_rows(opened: dict[UUID, dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The opened cases' rows (:func:`_fold`) as the live INSERT sends them (``CASE_ROW``)."""
    get = itemgetter(*CASE_COLUMNS)
    return [get(row) for row in opened.values()]


def _fold(plan: _Plan) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]]]:
    """The plan as rows and patches: each case it opens as one ``cases`` row with the batch's
    later steps folded in (the row its INSERT and then its UPDATE would leave: what
    ``CASE_EXPRESSIONS`` do to a new row's values), and a patch for each case opened before.
    A second CaseOpened of a case changes nothing."""
    new: dict[UUID, dict[str, Any]] = {}
    for opened in plan.opened:
        if opened[0] not in new:
            new[opened[0]] = _opened_row(opened)
    earlier: dict[UUID, dict[str, Any]] = {}
    for case_id, patch in plan.patches.items():
        row = new.get(case_id)
        if row is None:
            earlier[case_id] = {"reopen_count": 0, **patch}
            continue
        for column, value in patch.items():
            if column == "reopen_count":
                row[column] += value
            elif column != "emotion_on_arrival" or row[column] is None:
                row[column] = value
    return new, earlier


class CaseProjection:
    """Applies intake events to ``cases`` and ``case_timeline`` in the consumer's transaction.

    ``copy_apply`` (a rebuild's staging tables) leaves the same rows: the cases a batch opens
    are folded with the batch's later steps and COPied, the cases of earlier batches get one
    UPDATE per shape of change, the timeline is COPied.
    """

    def __init__(self) -> None:
        self._tables = bulk.Tables()

    def prepare(self, events: Sequence[Envelope]) -> _Prepared:
        """The batch's timeline rows and its plan, folded, as if every step is new (the
        consumer makes it while the batch before is applied; no database)."""
        own = _own(events)
        plan = _plan(own, timeline=False)
        opened, patches = folded = _fold(plan)
        return _Prepared(own, [_step(e) for e in own], plan, folded,
                         bulk.patch_rows(CASE_CHANGE, _counted(plan.early)),
                         _case_rows(opened), bulk.patch_rows(CASE_CHANGE, patches))

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        # The timeline first: the steps it did not have yet are the ones to apply. A step it
        # has (the same case and version: a republish the stream's duplicate window no longer
        # caught, under another stream sequence) changes nothing, so a stale copy of a
        # reopening cannot reopen a case resolved since, nor count a reopening twice.
        ready = prepared if isinstance(prepared, _Prepared) else self.prepare(events)
        own = ready.own
        new = {(r["case_id"], r["version"]) for r in await bulk.insert_rows(
            conn, self._tables, "case_timeline", TIMELINE_COLUMNS, ready.steps,
            returning=("case_id", "version"), row_type=TIMELINE_ROW)}
        # Every step new (own holds each once): the plan made ahead stands, and the rows
        # built with it.
        early_rows: list[tuple[Any, ...]] | None = None
        opened_rows: list[tuple[Any, ...]] | None = None
        patch_rows: list[tuple[Any, ...]] | None = None
        if len(new) == len(own):
            plan, (opened, patches) = ready.plan, ready.folded
            early_rows, opened_rows, patch_rows = (ready.early_rows, ready.opened_rows,
                                                   ready.patch_rows)
        else:
            plan = _plan([e for e in own if (e.case_id, e.aggregate_version) in new],
                         timeline=False)
            opened, patches = _fold(plan)
        # Steps ahead of their case's opening: on the row only if it is there already.
        ignored = await _update(conn, _counted(plan.early), early_rows)
        # The cases this batch opens, each with its later steps of the batch folded in: one
        # row written once, not inserted and then updated. A case already there (its
        # CaseOpened new to the timeline, its row not) keeps its row, as the INSERT's
        # ON CONFLICT DO NOTHING kept it, and gets the batch's steps as a patch.
        if opened:
            written = {r["case_id"] for r in await bulk.insert_rows(
                conn, self._tables, "cases", CASE_COLUMNS,
                _case_rows(opened) if opened_rows is None else opened_rows,
                conflict="(case_id) DO NOTHING", returning=("case_id",), row_type=CASE_ROW)}
            if len(written) < len(opened):
                patches, patch_rows = {**patches, **{
                    case_id: {"reopen_count": 0, **plan.patches[case_id]}
                    for case_id in opened if case_id not in written
                    and plan.patches.get(case_id)}}, None
        # One UPDATE ... FROM unnest for the cases of earlier batches, whatever their
        # shapes of change (``bulk.update_patched``).
        ignored |= await _update(conn, patches, patch_rows)
        _note_ignored(ignored)
        await hint_rows.upsert(conn, events)

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        # A step twice in the batch is applied once; one an earlier batch had makes the
        # timeline's COPY fail, and the rebuild applies this batch with ``apply``.
        plan = _plan(_own(events))
        new, earlier = _fold(plan)
        await bulk.copy_rows(conn, "cases", CASE_COLUMNS, new.values())
        # The steps ahead of an opening here change nothing: were the case opened in an
        # earlier batch, the COPY above failed and the live handler applies the batch.
        ignored = set(plan.early) | await _update(conn, earlier)
        await bulk.copy_records(conn, "case_timeline", TIMELINE_COLUMNS, plan.timeline)
        _note_ignored(ignored)
        await hint_rows.upsert(conn, events)  # a few rows a day: the live upsert will do


READ_MODEL = ReadModel(
    service="intake", consumer=CONSUMER, handler=lambda _settings: CaseProjection(), ddl=DDL,
    subjects=lambda settings: [f"{settings.subject_prefix}.intake.*.*"],
    keys={"cases": "case_id", "case_timeline": "case_id", "resident_hints": "hint_id"},
    volatile=frozenset({"projected_at"}),
    # Rows are found by their keys only (cases, hints): a rebuild makes these at the end.
    built_after=frozenset({"cases_center_due", "cases_owner_status", "cases_center_opened",
                           "cases_item", "cases_resident_center", "cases_clerk_status",
                           "resident_hints_resident", "resident_hints_item"}),
)
"""What ``sixstep rebuild intake`` and ``sixstep as-of`` fold the log with."""
