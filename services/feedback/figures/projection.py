"""The center's figures, the read model: one fact row per thing an analyst counts.

The projection keeps one *fact row* per thing an analyst counts, each built only from events:

    fig_cases          one row per case            (intake: CaseOpened, ConcernsNoted,
                                                     GuidanceGiven, CaseDueDateSet,
                                                     CaseResolved, CaseReopened, CaseHandedOver;
                                                     the resident's latest verdict: RatingGiven,
                                                     FollowUpCompleted with a verdict)
    fig_surveys        one row per survey          (feedback: SurveyRequested, SurveySent,
                                                     RatingGiven, SurveyExpired, SurveyWithdrawn,
                                                     SurveyDeclined)
    fig_rectifications one row per rectification  (feedback: RectificationOpened,
                                                     RectificationDeadlineRevised,
                                                     RectificationCompleted,
                                                     RectificationTriaged,
                                                     RectificationAppealed,
                                                     RectificationAppealDecided)
    fig_followups      one row per follow-up       (followup: FollowUpScheduled,
                                                     FollowUpRescheduled, FollowUpCompleted,
                                                     FollowUpMissed, FollowUpCancelled,
                                                     FollowUpReassigned, FollowUpDue)
    fig_visits         one row per trip (人次)      (intake: VisitRecorded; a visit naming a
                                                     case opened on an earlier day also counts
                                                     a return trip on the case's row)
    fig_late_events    one row per event that changed a row dated in an earlier month than
                       the one it was recorded in, or in a month closed before the event was
                       applied, whenever recorded (what a closed month's revision names)
    fig_closed_marks   one row per closed month (or one being closed): where in the notes
                       (``noted_seq``) its last count and its last record stand
    fig_day_totals     one row per center and day: the counts the figures by center are
                       made of, moved by each batch as its fact rows change (``totals.py``)

A batch of events is applied read-modify-write: the rows it touches are read once, the events
applied in stream order in memory, and the changed rows written back with one statement per
table. Days are the center's calendar days (``settings.tz``) of the event's ``occurred_at``,
so the tables are rebuilt from the log whenever the zone changes. The figures themselves are
counted over these rows in ``queries.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from operator import itemgetter
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from services.feedback.figures import totals
from shared.contracts import Envelope
from shared.readmodels import bulk
from shared.readmodels.readmodel import ReadModel

CONSUMER = "feedback-figures"

INTAKE_TYPES = ("CaseOpened", "ConcernsNoted", "GuidanceGiven", "CaseDueDateSet", "CaseResolved",
                "CaseReopened", "CaseHandedOver", "VisitRecorded")
FEEDBACK_TYPES = ("SurveyRequested", "SurveySent", "RatingGiven", "SurveyExpired",
                  "SurveyWithdrawn", "SurveyDeclined", "RectificationOpened",
                  "RectificationDeadlineRevised",
                  "RectificationCompleted", "RectificationTriaged", "RectificationAppealed",
                  "RectificationAppealDecided")
PERIOD_TYPES = ("PeriodClosed", "PeriodRevised")
FOLLOWUP_TYPES = ("FollowUpScheduled", "FollowUpRescheduled", "FollowUpCompleted",
                  "FollowUpMissed", "FollowUpCancelled", "FollowUpReassigned", "FollowUpDue")

#: The answers that may carry the resident's verdict (was it solved?).
VERDICT_TYPES = ("RatingGiven", "FollowUpCompleted")


def subjects(prefix: str) -> list[str]:
    """What the figures consumer reads: only the event types it counts."""
    return [f"{prefix}.{service}.{t}.*"
            for service, types in (("intake", INTAKE_TYPES),
                                   ("feedback", FEEDBACK_TYPES + PERIOD_TYPES),
                                   ("followup", FOLLOWUP_TYPES))
            for t in types]


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type), key first

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The column names, key first (made once: ``_empty`` and the bulk path ask for them
        for every row)."""
        return tuple(c for c, _ in self.columns)

    @cached_property
    def blank(self) -> dict[str, Any]:
        """A row with every column None (``_empty`` copies it: cheaper than
        ``dict.fromkeys`` over the names)."""
        return dict.fromkeys(self.names)

    @cached_property
    def days(self) -> tuple[str, ...]:
        """The columns holding a day a count is kept on (``date``; not ``judged_on``, which
        only judges a resolution counted on ``resolved_on``, nor a follow-up's ``due_by``,
        which only judges one counted on ``due_on``)."""
        return tuple(c for c, t in self.columns
                     if t == "date"
                     and c not in ("judged_on", "due_by", "on_time_by", "overdue_on",
                                   "last_due_on"))

    def ddl(self) -> str:
        cols = ", ".join(f"{c} {t}" + (" PRIMARY KEY" if c == self.key else "")
                         for c, t in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"

    @cached_property
    def row(self) -> bulk.RowType:
        """The composite type a batch's rows go as, one array of it a statement: as one
        array a column, asyncpg asked each of a row's values (19 of a case) whether it is
        itself an array, a Python ``isinstance`` each; a composite is asked 4 times."""
        return bulk.RowType(f"{self.name}_row", self.columns)

    @cached_property
    def values(self) -> Callable[[Row], tuple[Any, ...]]:
        """A row's values in the order of ``row``'s fields (at C speed)."""
        return itemgetter(*self.names)

    @cached_property
    def upsert(self) -> str:
        """The live batch's changed rows, new or not: one array of ``row``."""
        names = self.names
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != self.key)
        return (f"INSERT INTO {self.name} ({', '.join(names)})"
                f" SELECT {', '.join(f's.{c}' for c in names)}"
                f" FROM unnest($1::{self.row.name}[]) AS s"
                f" ON CONFLICT ({self.key}) DO UPDATE SET {sets}")

    @cached_property
    def update(self) -> str:
        """A rebuild's batch's rows of earlier batches, every column: one array of ``row``
        (what ``bulk.update_rows`` did with a patch of every column, one array a column)."""
        sets = ", ".join(f"{c} = s.{c}" for c in self.names if c != self.key)
        return (f"UPDATE {self.name} AS t SET {sets} FROM unnest($1::{self.row.name}[]) AS s"
                f" WHERE t.{self.key} = s.{self.key}")


CASES = Table("fig_cases", "case_id", (
    ("case_id", "uuid"), ("center_id", "text"), ("counter_id", "text"), ("clerk_id", "text"),
    ("service_item", "text"), ("opened_on", "date"), ("emotion", "text"),
    ("resolved", "boolean"), ("resolved_on", "date"), ("outcome", "text"),
    ("defused", "boolean"), ("due_on", "date"), ("owner_clerk", "text"),
    # The resident's own verdict (was it solved?): the latest said, from a survey or a check.
    ("verdict", "text"), ("verdict_on", "date"), ("verdict_at", "timestamptz"),
    # issue 18 (visits as 人次, the emotion on leaving): trips after the opening day, and
    # the emotion the resident left with (None before CaseResolved v2)
    ("return_trips", "integer"), ("leaving", "text"),
    # The day a backdated resolution is judged on for 按时办结率 (CaseResolved.judged_at):
    # null when judged on resolved_on (and for every resolution recorded before it existed).
    ("judged_on", "date")))
SURVEYS = Table("fig_surveys", "survey_id", (
    ("survey_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"), ("purpose", "text"),
    ("requested_on", "date"), ("was_sent", "boolean"), ("result", "text"),
    ("closed_on", "date"), ("level", "text"),
    # 好差评 (issue 18): the rectification a revisit survey follows.
    ("rectification_id", "uuid"),
    # Who answered: 'token' (the resident's own link or pad) or 'clerk' (recorded by staff,
    # with staff_channel: phone_callback, paper_form; null before RatingGiven v2).
    ("via", "text"), ("staff_channel", "text")))
RECTIFICATIONS = Table("fig_rectifications", "rectification_id", (
    ("rectification_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"),
    ("opened_on", "date"), ("deadline_on", "date"), ("completed_on", "date"),
    # 好差评 (issue 18): the bad review's survey, 实名 (the resident known), the triage track
    # and the appeal (pending / upheld / rejected).
    ("survey_id", "uuid"), ("named", "boolean"), ("track", "text"), ("appeal", "text")))
FOLLOWUPS = Table("fig_followups", "follow_up_id", (
    ("follow_up_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"), ("reason", "text"),
    ("due_on", "date"), ("completed_on", "date"), ("missed", "boolean"),
    ("cancelled", "boolean"),
    # How it ended (FollowUpCompleted's outcome): 'unreachable' is not done on time, and is
    # counted apart (the team took it up); null before this column (rebuild to fill it).
    ("outcome", "text"),
    # The day a backdated completion is judged on (FollowUpCompleted.judged_at), else null.
    ("judged_on", "date"),
    # The working day it was to be done on (FollowUpCompleted.due_by: a Sunday's due moment
    # is Monday's); null before the field existed: judged on due_on, as then.
    ("due_by", "date"),
    # The clerk it is assigned to (the last FollowUpScheduled / FollowUpRescheduled /
    # FollowUpReassigned's: a handover's new owner), and
    # whether that clerk cancelled it (FollowUpCancelled's actor): counted apart, as a
    # cancelled follow-up is in no rate. Null before these columns (rebuild to fill them).
    ("assignee", "text"), ("cancelled_by_assignee", "boolean"),
    # While open, the working day it is to be done on, as followup's working_day_due has
    # it (the completion's due_by to come): the day a clerk's own move kept
    # (FollowUpRescheduled.on_time_by; a supervisor's move clears it), or, when earlier, the
    # day of the closing the scheduler misses its due moment at (FollowUpDue.overdue_at:
    # Friday 18:00's or Sunday's is Monday's; due_on until it fell due, cleared by a move).
    # followups_open_past_due counts the open ones whose open_by is before as_of, on
    # open_by: pushed every day, never completed, cancelled or missed, it still counts. Null
    # before these columns (rebuild to fill them).
    ("on_time_by", "date"), ("overdue_on", "date"), ("open_by", "date"),
    # Missed, then moved to a new due moment (a supervisor's or a colleague's move): open
    # again in followup (scheduled, on its clerk's worklist) until completed, cancelled or
    # missed again, so counted in followups_open_past_due as well (the on-time rate counted
    # the miss on its latest due day, which its clerk's pushes carried on into the next month
    # at every month's end; on due_on, the day it was missed, now). Null before this column
    # (rebuild to fill it): not counted.
    ("reopened", "boolean"),
    # The day of its latest due moment (FollowUpScheduled / FollowUpRescheduled), which the
    # open day follows: due_on stays the due day it was first missed on (FollowUpMissed), so
    # a miss counts in the on-time rate on the day it was missed and a move after it (into
    # the next month) takes it out of no closed month. Null before this column: due_on.
    ("last_due_on", "date")))
VISITS = Table("fig_visits", "visit_id", (
    ("visit_id", "uuid"), ("key_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"),
    ("counter_id", "text"), ("clerk_id", "text"), ("channel", "text"), ("day", "date"),
    ("wait_minutes", "integer")))
REPORTED = Table("fig_reported", "period_id", (
    ("period_id", "uuid"), ("center_id", "text"), ("month", "date"), ("revision", "integer"),
    ("closed_by", "text"), ("as_of", "date"), ("closed_at", "timestamptz"),
    ("recorded_at", "timestamptz"), ("figures", "text"), ("changed", "text"),
    ("late_events", "text")))
"""A center's month as reported (PeriodClosed, then each PeriodRevised): ``figures`` and
``late_events`` as JSON text; ``recorded_at`` is the last record's."""
TABLES = (CASES, SURVEYS, RECTIFICATIONS, FOLLOWUPS, VISITS, REPORTED)
FACTS = (CASES, SURVEYS, RECTIFICATIONS, FOLLOWUPS, VISITS)
#: FACTS by name: a string's hash is kept, a frozen dataclass's is made from every field.
_FACT_NAMES = frozenset(t.name for t in FACTS)

LATE = "fig_late_events"
LATE_COLUMNS = ("event_id", "month", "key_id", "center_id", "type", "recorded_at")
"""Events that changed a fact row dated in a month before the month they were recorded in
(any of its days, before or after the event), or dated in a month closed (``MARKS``) before
the event was applied, whenever it was recorded (intake's relay behind over the month's end):
a closed month's revision names them. Each has a ``noted_seq`` (``NOTED_SEQ``) too: where it
stands against the counts of the month (``MARKS``); null for the rows noted before it was
kept (compared by ``recorded_at`` with the month's last record, as they were)."""
NOTED_SEQ = "fig_noted_seq"
MARKS = "fig_closed_marks"
"""A closed month (or one being closed: the close marks it before counting) of a center:
``counted_through``, the ``noted_seq`` its last count stood at (the notes after it may be
missing from what was counted: the scheduler counts the month again), ``recorded_through``
the one its last record (``PeriodClosed`` / ``PeriodRevised``) stood at (the notes after it
are the late events the next revision names). Every event that changes a fact row of a
marked month is noted, whatever its ``recorded_at``. ``pending``: the records being made, each
Idempotency-Key with the mark it counted at (set before the record, removed once the marks
moved): a record made and the process gone before the marks moved is found by the next
revision, which names the late events from there (not again from the record before);
``pending_through`` and ``pending_key``, one such record, are what a release before wrote.
``revised_at``: when its last revision was recorded (the scheduler's window)."""


def month_lock(month: str) -> str:
    """The advisory lock of one month of the figures, in this schema (SQL over ``month``, a
    date): each batch holds it shared while it notes its events, a close or a count of a
    closed month takes it alone to mark where it counts from. A batch that took it before
    has committed (its changes are counted); one that takes it after sees the mark (its
    events are noted). Per month, not per center: a batch touches few months."""
    return (f"hashtextextended(current_schema() || ':fig-month:' || to_char({month},"
            " 'YYYY-MM'), 0)")

DDL = [
    *(t.ddl() for t in TABLES),
    # The types the live batches' rows go as (``Table.row``; a new shape is a new type).
    *(t.row.ddl for t in TABLES),
    # Columns added since a table was first created (rebuild to fill them for old events).
    *(f"ALTER TABLE {t.name} ADD COLUMN IF NOT EXISTS {c} {type_}"
      for t in TABLES for c, type_ in t.columns[1:]),
    "CREATE INDEX IF NOT EXISTS fig_cases_opened ON fig_cases (center_id, opened_on)",
    "CREATE INDEX IF NOT EXISTS fig_cases_resolved ON fig_cases (center_id, resolved_on)",
    "CREATE INDEX IF NOT EXISTS fig_surveys_closed ON fig_surveys (center_id, closed_on)",
    "CREATE INDEX IF NOT EXISTS fig_rect_opened ON fig_rectifications (center_id, opened_on)",
    "CREATE INDEX IF NOT EXISTS fig_followups_due ON fig_followups (center_id, due_on)",
    "CREATE INDEX IF NOT EXISTS fig_cases_verdict ON fig_cases (center_id, verdict_on)",
    "ALTER TABLE fig_cases ADD COLUMN IF NOT EXISTS return_trips integer",
    "ALTER TABLE fig_cases ADD COLUMN IF NOT EXISTS leaving text",
    "CREATE INDEX IF NOT EXISTS fig_visits_day ON fig_visits (center_id, day)",
    # The revisit a rectification led to (named_revisit_rate's EXISTS, once per rectification)
    # and the upheld appeal of a survey (KEPT): looked up by key, not by scanning the table
    # once per row (a city's month: ~7,000 rectifications x ~1.4 M surveys).
    "CREATE INDEX IF NOT EXISTS fig_surveys_rectification ON fig_surveys (rectification_id)"
    " WHERE rectification_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS fig_rect_survey ON fig_rectifications (survey_id)",
    f"CREATE TABLE IF NOT EXISTS {LATE} (event_id uuid NOT NULL, month date NOT NULL,"
    " key_id uuid NOT NULL, center_id text NOT NULL, type text NOT NULL,"
    " recorded_at timestamptz NOT NULL, PRIMARY KEY (event_id, month))",
    f"CREATE INDEX IF NOT EXISTS fig_late_recorded ON {LATE} (center_id, month, recorded_at)",
    f"CREATE SEQUENCE IF NOT EXISTS {NOTED_SEQ}",
    f"ALTER TABLE {LATE} ADD COLUMN IF NOT EXISTS noted_seq bigint",
    f"CREATE INDEX IF NOT EXISTS fig_late_noted ON {LATE} (center_id, month, noted_seq)",
    f"CREATE TABLE IF NOT EXISTS {MARKS} (center_id text NOT NULL, month date NOT NULL,"
    " counted_through bigint NOT NULL, recorded_through bigint NOT NULL,"
    " PRIMARY KEY (center_id, month))",
    # The record a close or a revision is about to make, and the mark it counted at: a crash
    # between the record and the marks' move (``closing.Periods._counted``) is found by the
    # next revision (the key is on the month's aggregate: recorded) and moved then.
    f"ALTER TABLE {MARKS} ADD COLUMN IF NOT EXISTS pending_through bigint",
    f"ALTER TABLE {MARKS} ADD COLUMN IF NOT EXISTS pending_key text",
    # Each record under way by its key (key -> the mark it counted at): two closes racing
    # (two workers), or a close and a revision, each keep theirs; the one slot above held
    # the last one's only. The slot is still read (a record a release before left pending).
    f"ALTER TABLE {MARKS} ADD COLUMN IF NOT EXISTS pending jsonb",
    # When the month's last revision was recorded (the service's clock): the scheduler revises
    # a month at most once per ``PERIOD_REVISE_EVERY_MINUTES``.
    f"ALTER TABLE {MARKS} ADD COLUMN IF NOT EXISTS revised_at timestamptz",
    # The months closed before the marks were kept: noted from now on, counted again at the
    # first note (their notes of before are compared by recorded_at, as they were).
    f"INSERT INTO {MARKS} SELECT center_id, month, 0, 0 FROM fig_reported"
    " WHERE month IS NOT NULL AND center_id IS NOT NULL ON CONFLICT DO NOTHING",
    # A database the redteam67 release ran kept, instead, when a late event was seen after
    # its month's last record (``seen_at``): such a note whose revision is still owed is
    # numbered (after every mark above, so counted again), then the column and its index go.
    f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
    f" current_schema() AND table_name = '{LATE}' AND column_name = 'seen_at') THEN"
    f" UPDATE {LATE} l SET noted_seq = nextval('{NOTED_SEQ}') FROM fig_reported r"
    " WHERE r.center_id = l.center_id AND r.month = l.month AND l.noted_seq IS NULL"
    f" AND l.seen_at > r.recorded_at; ALTER TABLE {LATE} DROP COLUMN seen_at; END IF; END $$",
    # A quarter of each page kept free where rows of earlier batches are updated most (a
    # case resolved, a survey answered, a follow-up done): an update that moves no indexed
    # day is then HOT, written beside the row with no new entry in any index (fig_cases
    # 342 -> 2,202 of 7,436 updates at 37,764 events). Set once, the lookup first (ALTER
    # TABLE would take its lock, and make every session plan again, at each start).
    *(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = '{t}'::regclass AND"
      " reloptions @> ARRAY['fillfactor=75']) THEN"
      f" ALTER TABLE {t} SET (fillfactor = 75); END IF; END $$"
      for t in ("fig_cases", "fig_surveys", "fig_followups")),
    # The counts per center and day (totals.py), after the fact tables it may be filled from.
    *totals.DDL,
]

Row = dict[str, Any]
Apply = Callable[["FiguresProjection", Row, Envelope], None]


def _empty(table: Table, key: UUID, e: Envelope) -> Row:
    row: Row = table.blank.copy()
    row[table.key] = key
    row["center_id"] = e.center_id
    if "case_id" in row and table is not CASES:
        row["case_id"] = e.case_id
    return row


class FiguresProjection:
    """Applies intake, feedback and follow-up events to the fact rows (one transaction).

    ``copy_apply`` leaves the same rows in a rebuild's staging tables: read without locks,
    new rows COPied, the rows of earlier batches updated with one statement per table.
    """

    #: Read by key each batch (``_fold``'s ``= ANY($1) FOR UPDATE``): planned while they were
    #: empty, those reads scanned every row; the consumer analyzes them as they grow.
    analyzed = tuple(t.name for t in TABLES)

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        #: The batch's notes: (event_id, month) -> (its place in the batch, the event, month).
        self.late: dict[tuple[UUID, date], tuple[int, Envelope, date]] = {}
        #: The batch's events by the (center, month) of a fact row they changed, where not
        #: noted already: noted if that month is marked closed (``_note_after_close``).
        self.touched: dict[tuple[str, date], list[tuple[int, Envelope]]] = {}
        #: The months the batch closed or revised, in order: (place, center, month, type).
        self.marks: list[tuple[int, str, date, str]] = []
        #: What a batch moved in the counts per center and day: its fact rows' counts after
        #: it (``_counted``) less before it (``_count_before``, in ``_fold``).
        self.counted = totals.Counted()

    def day(self, at: datetime | str) -> date:
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return at.astimezone(self.tz).date()

    @staticmethod
    def _route(e: Envelope) -> list[tuple[Table, UUID, Apply]]:
        """The rows an event changes, and how: its own row; for an answer with a verdict (a
        survey's, a post-resolution check's) also its case's row; for a trip naming a case,
        also the case's row (a return trip). Which of these an event can take is its
        service's and type's alone (:func:`_way`, kept per pair): here only its ids and
        its verdict are looked at."""
        way = _WAYS.get((e.service, e.type))
        if way is None:
            way = _way(e.service, e.type)
            if len(_WAYS) < _WAYS_KEPT:
                _WAYS[(e.service, e.type)] = way
        how, table, fn, verdict = way
        if how is _CASE:
            return [(CASES, e.case_id, fn)] if e.case_id is not None else []
        if how is _TRIP:
            if e.case_id is not None:
                return [(VISITS, e.aggregate_id, fn),
                        (CASES, e.case_id, FiguresProjection._trip_on_case)]
            return [(VISITS, e.aggregate_id, fn)]
        routes: list[tuple[Table, UUID, Apply]] = []
        if table is not None:
            routes.append((table, e.aggregate_id, fn))
        if verdict and e.case_id is not None and e.payload.get("verdict") is not None:
            routes.append((CASES, e.case_id, FiguresProjection._verdict))
        return routes

    async def _fold(self, conn: asyncpg.Connection, events: Sequence[Envelope], *,
                    lock: bool) -> list[tuple[Table, list[Row], set[UUID]]]:
        """Per table: the rows the batch changed, after its events, and which of them were
        in the table before it. The batch's late events are left in ``self.late``."""
        routed: list[tuple[int, Envelope, Table, UUID, Apply]] = []
        keys: dict[str, set[UUID]] = {t.name: set() for t in TABLES}
        self.late, self.touched, self.marks = {}, {}, []
        for i, e in enumerate(events):
            for table, key, fn in self._route(e):
                routed.append((i, e, table, key, fn))
                keys[table.name].add(key)
        if not routed:
            return []
        rows: dict[str, dict[UUID, Row]] = {}
        for table in TABLES:
            wanted = keys[table.name]
            rows[table.name] = {}
            if wanted:
                found = await conn.fetch(
                    f"SELECT {', '.join(table.names)} FROM {table.name}"
                    f" WHERE {table.key} = ANY($1::uuid[]){' FOR UPDATE' if lock else ''}",
                    list(wanted))
                rows[table.name] = {r[table.key]: dict(r) for r in found}
        self._count_before(rows)
        stored = {name: set(found) for name, found in rows.items()}
        dirty: dict[str, set[UUID]] = {t.name: set() for t in TABLES}
        closed: set[tuple[str, date]] = set()  # closed by this batch, so far
        # A fact row's months as its last event left them, by the row's identity (its dict
        # lives in ``rows`` to the end): the next event's "before", as only the fold changes
        # a row. A row the batch creates has none: every date column of ``_empty`` is None.
        months: dict[int, set[date]] = {}
        for i, e, table, key, fn in routed:
            current = rows[table.name]
            row = current.get(key)
            if row is None:
                row = current[key] = _empty(table, key, e)
                before: set[date] | None = set()
            else:
                before = months.get(id(row))
            if table.name in _FACT_NAMES:
                if before is None:
                    before = _months(row, table.days)
                fn(self, row, e)
                after = months[id(row)] = _months(row, table.days)
                self._note_late(i, e, before | after if before else after, closed)
            else:
                fn(self, row, e)
                if table is REPORTED and row["month"] is not None:
                    closed.add((row["center_id"], row["month"]))
                    self.marks.append((i, row["center_id"], row["month"], e.type))
            dirty[table.name].add(key)
        return [(table, [rows[table.name][k] for k in dirty[table.name]], stored[table.name])
                for table in TABLES if dirty[table.name]]

    def _note_late(self, i: int, e: Envelope, months: set[date],
                   closed: set[tuple[str, date]]) -> None:
        """Note ``e`` (the ``i``th of its batch) for each month of ``months`` recorded before
        it, or closed earlier in the batch; leave the others to ``_note_after_close``."""
        if not months:  # a row with no day yet: nothing to note, no moment to convert
            return
        day = self.day(e.recorded_at)
        recorded = date(day.year, day.month, 1)  # day.replace(day=1): 1.3 us more an event
        for month in months:
            if month < recorded or (e.center_id, month) in closed:
                self.late.setdefault((e.event_id, month), (i, e, month))
            else:
                self.touched.setdefault((e.center_id, month), []).append((i, e))

    async def _note_after_close(self, conn: asyncpg.Connection) -> None:
        """Note the batch's events that changed a month closed before it (``MARKS``), whatever
        their ``recorded_at``: an event recorded within the month and relayed after the close
        (intake's relay behind, NATS down across the month's end) changes what was reported
        as much as a late one. The months' locks first (``month_lock``), held to the commit:
        a close marks its month under the lock before it counts, so this batch either
        committed before the mark (counted) or reads it now (noted)."""
        months = sorted({m for _, m in self.touched} | {m for _, m in self.late})
        if not months:
            return
        await conn.execute(f"SELECT pg_advisory_xact_lock_shared({month_lock('m')})"
                           " FROM unnest($1::date[]) AS m", months)
        if not self.touched:
            return
        centers, firsts = zip(*self.touched, strict=True)
        marked = await conn.fetch(
            f"SELECT m.center_id, m.month FROM {MARKS} m JOIN unnest($1::text[], $2::date[])"
            " AS t(center_id, month) ON t.center_id = m.center_id AND t.month = m.month",
            list(centers), list(firsts))
        for r in marked:
            for i, e in self.touched[(r["center_id"], r["month"])]:
                self.late.setdefault((e.event_id, r["month"]), (i, e, r["month"]))

    async def _write_notes(self, conn: asyncpg.Connection, *, rebuilding: bool) -> None:
        """The batch's notes and marks, each with the next ``noted_seq`` in the batch's order.
        A month this batch closed is marked unless its close marked it already (before
        counting: ``closing.Periods``); a revision moves the mark only in a rebuild, where
        the log's order is all there is to go by (live, the count marked where it stood)."""
        if not self.late and not self.marks:
            return
        late = list(self.late.values())
        seqs = sorted(await conn.fetchval(
            f"SELECT array_agg(nextval('{NOTED_SEQ}')) FROM generate_series(1, $1)",
            len(late) + len(self.marks)))
        ordered = sorted([(i, 0, n) for n, (i, _, _) in enumerate(late)]
                         + [(i, 1, n) for n, (i, _, _, _) in enumerate(self.marks)])
        notes = []
        marks: dict[tuple[str, date], tuple[int, bool]] = {}  # (center, month) -> (seq, moved)
        for seq, (_, kind, n) in zip(seqs, ordered, strict=True):
            if kind == 0:
                _, e, month = late[n]
                notes.append((e.event_id, month, e.partition_key, e.center_id, e.type,
                              e.recorded_at, seq))
                continue
            _, center, month, type_ = self.marks[n]
            if rebuilding and type_ == "PeriodRevised":
                marks[(center, month)] = (seq, True)
            else:
                marks.setdefault((center, month), (seq, False))
        if notes:
            await conn.execute(
                f"INSERT INTO {LATE} ({', '.join(LATE_COLUMNS)}, noted_seq) SELECT * FROM"
                " unnest($1::uuid[], $2::date[], $3::uuid[], $4::text[], $5::text[],"
                " $6::timestamptz[], $7::bigint[]) ON CONFLICT DO NOTHING",
                *(list(c) for c in zip(*notes, strict=True)))
        for moved in (False, True):
            pairs = [(c, m, seq) for (c, m), (seq, x) in marks.items() if x is moved]
            if pairs:
                await conn.execute(
                    f"INSERT INTO {MARKS} AS k SELECT c, m, s, s FROM unnest($1::text[],"
                    " $2::date[], $3::bigint[]) AS t(c, m, s) ON CONFLICT (center_id, month) "
                    + ("DO UPDATE SET counted_through = EXCLUDED.counted_through,"
                       " recorded_through = EXCLUDED.recorded_through" if moved
                       else "DO NOTHING"),
                    *(list(c) for c in zip(*pairs, strict=True)))

    def _count_before(self, rows: dict[str, dict[UUID, Row]]) -> None:
        """The per-day counts of the rows a batch is about to change, as they stand."""
        for table in FACTS:
            for row in rows[table.name].values():
                self.counted.add(table.name, row, -1)

    def _counted(self, folded: list[tuple[Table, list[Row], set[UUID]]]) -> totals.Counted:
        """What the batch moved in the per-day counts: its changed rows' counts now, less
        their counts before it (``_count_before``)."""
        for table, changed, _ in folded:
            if table in FACTS:
                for row in changed:
                    self.counted.add(table.name, row, +1)
        return self.counted

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.counted = totals.Counted()
        folded = await self._fold(conn, events, lock=True)
        await self._note_after_close(conn)
        for table, changed, _ in folded:
            if changed:
                await bulk.send_rows(conn, table.upsert, list(map(table.values, changed)))
        await self._write_notes(conn, rebuilding=False)
        # last, so that the days' rows (shared by every replica) are locked for the shortest
        await totals.write(conn, self._counted(folded))

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        """The same rows as ``apply``, for a rebuild's staging tables: nobody else writes
        them, so nothing is locked; new rows are COPied, the others updated in one
        statement per table."""
        self.counted = totals.Counted()
        folded = await self._fold(conn, events, lock=False)
        await self._note_after_close(conn)
        for table, changed, stored in folded:
            await bulk.copy_rows(conn, table.name, table.names,
                                 [r for r in changed if r[table.key] not in stored])
            earlier = [table.values(r) for r in changed if r[table.key] in stored]
            if earlier:
                await bulk.send_rows(conn, table.update, earlier)
        await self._write_notes(conn, rebuilding=True)
        await totals.write(conn, self._counted(folded))

    # -- intake ------------------------------------------------------------------------------

    def _case_opened(self, row: Row, e: Envelope) -> None:
        p = e.payload
        row.update(center_id=e.center_id, counter_id=p["counter_id"], clerk_id=p["clerk_id"],
                   opened_on=self.day(e.occurred_at))
        if row["owner_clerk"] is None:  # not handed over (before its opening arrived)
            row["owner_clerk"] = p["clerk_id"]
        if row["service_item"] is None:
            row["service_item"] = p["service_item"]
        if row["resolved"] is None:
            row["resolved"] = False
        if row["return_trips"] is None:
            row["return_trips"] = 0

    def _concerns(self, row: Row, e: Envelope) -> None:
        if row["emotion"] is None:  # the emotion on arrival: the first one noted
            row["emotion"] = e.payload["emotion"]

    def _guided(self, row: Row, e: Envelope) -> None:
        row["service_item"] = e.payload["service_item"]

    def _due_date_set(self, row: Row, e: Envelope) -> None:
        """The latest due date (a resolved case's cannot move: the one it was judged by)."""
        row["due_on"] = date.fromisoformat(e.payload["due_on"])

    def _resolved(self, row: Row, e: Envelope) -> None:
        p = e.payload
        judged = p.get("judged_at")
        row.update(resolved=True, resolved_on=self.day(e.occurred_at), outcome=p["outcome"],
                   defused=p["emotion_defused"], leaving=p.get("emotion_on_leaving"),
                   judged_on=self.day(judged) if judged else None)

    def _reopened(self, row: Row, e: Envelope) -> None:
        row.update(resolved=False, resolved_on=None, outcome=None, defused=None, leaving=None,
                   judged_on=None)

    def _visit(self, row: Row, e: Envelope) -> None:
        p = e.payload
        row.update(key_id=e.partition_key, case_id=e.case_id, counter_id=p["counter_id"],
                   clerk_id=p["clerk_id"], channel=p["channel"], day=self.day(e.occurred_at),
                   wait_minutes=p.get("wait_minutes"))

    def _trip_on_case(self, row: Row, e: Envelope) -> None:
        """A trip about a case opened on an earlier day is a return trip (跑了第二趟)."""
        opened = row["opened_on"]
        if opened is not None and self.day(e.occurred_at) > opened:
            row["return_trips"] = (row["return_trips"] or 0) + 1

    # -- feedback: the reported months -------------------------------------------------------

    def _period_closed(self, row: Row, e: Envelope) -> None:
        p = e.payload
        row.update(month=date.fromisoformat(p["month"]), revision=0, closed_by=p["closed_by"],
                   as_of=date.fromisoformat(p["as_of"]), closed_at=e.recorded_at,
                   recorded_at=e.recorded_at, figures=orjson.dumps(p["figures"]).decode(),
                   changed="[]", late_events="[]")

    def _period_revised(self, row: Row, e: Envelope) -> None:
        p = e.payload
        row.update(revision=p["revision"], recorded_at=e.recorded_at,
                   figures=orjson.dumps(p["figures"]).decode(),
                   changed=orjson.dumps(p["changed"]).decode(),
                   late_events=orjson.dumps(p["late_events"]).decode())

    def _handed_over(self, row: Row, e: Envelope) -> None:
        """The owner role: the clerk it was handed to (a team: the team's code)."""
        row["owner_clerk"] = e.payload["to_clerk"] or e.payload["to_team"]

    # -- feedback ----------------------------------------------------------------------------

    def _survey_requested(self, row: Row, e: Envelope) -> None:
        rectification_id = e.payload.get("rectification_id")
        row.update(case_id=e.case_id, purpose=e.payload["purpose"],
                   requested_on=self.day(e.occurred_at),
                   rectification_id=UUID(rectification_id) if rectification_id else None)
        if row["was_sent"] is None:
            row["was_sent"] = False

    def _survey_sent(self, row: Row, e: Envelope) -> None:
        row["was_sent"] = True

    def _rated(self, row: Row, e: Envelope) -> None:
        row.update(result="answered", closed_on=self.day(e.occurred_at),
                   level=e.payload["level"], purpose=e.payload["purpose"],
                   via=e.payload["via"], staff_channel=e.payload.get("staff_channel"))

    def _verdict(self, row: Row, e: Envelope) -> None:
        """The resident's word on whether it was solved: the latest said stands (a later
        answer, by survey or by check, replaces an earlier one; a reopening does not clear
        it). Counted on the day it was said."""
        if row["verdict_at"] is not None and e.occurred_at < row["verdict_at"]:
            return
        row.update(verdict=e.payload["verdict"], verdict_on=self.day(e.occurred_at),
                   verdict_at=e.occurred_at)

    def _expired(self, row: Row, e: Envelope) -> None:
        row.update(result="expired", closed_on=self.day(e.occurred_at),
                   purpose=e.payload["purpose"])

    def _declined(self, row: Row, e: Envelope) -> None:
        # The resident would rather not rate: its own count, never an answer nor no answer.
        row.update(result="declined", closed_on=self.day(e.occurred_at),
                   purpose=e.payload["purpose"])

    def _withdrawn(self, row: Row, e: Envelope) -> None:
        # Not asked for want of the resident's consent: its own count, never "no answer".
        no_consent = e.payload.get("because") == "no_consent"
        row.update(result="no_consent" if no_consent else "withdrawn",
                   closed_on=self.day(e.occurred_at))

    def _rectification_opened(self, row: Row, e: Envelope) -> None:
        survey_id = e.payload.get("survey_id")
        row.update(opened_on=self.day(e.occurred_at),
                   deadline_on=date.fromisoformat(e.payload["deadline_on"]),
                   survey_id=UUID(survey_id) if survey_id else None,
                   named=e.payload.get("resident_id") is not None)

    def _triaged(self, row: Row, e: Envelope) -> None:
        """The track's deadline is the one in force (on-time rate)."""
        row.update(track=e.payload["track"],
                   deadline_on=date.fromisoformat(e.payload["deadline_on"]))

    def _appealed(self, row: Row, e: Envelope) -> None:
        row["appeal"] = "pending"

    def _appeal_decided(self, row: Row, e: Envelope) -> None:
        """Upheld: the review leaves bad_reviews and the satisfaction figures (queries)."""
        row["appeal"] = e.payload["decision"]

    def _deadline_revised(self, row: Row, e: Envelope) -> None:
        """The on-time rate judges against the deadline in force (revised once the official
        schedule replaced the provisional year it was counted on)."""
        row["deadline_on"] = date.fromisoformat(e.payload["deadline_on"])

    def _rectification_completed(self, row: Row, e: Envelope) -> None:
        row["completed_on"] = date.fromisoformat(e.payload["completed_on"])

    # -- follow-up ---------------------------------------------------------------------------

    def _followup_scheduled(self, row: Row, e: Envelope) -> None:
        due_on = self.day(e.payload["due_at"])
        row.update(reason=e.payload["reason"], due_on=due_on, last_due_on=due_on,
                   assignee=e.payload.get("assigned_clerk"), on_time_by=None,
                   overdue_on=None, open_by=due_on)
        for flag in ("missed", "cancelled", "reopened"):
            if row[flag] is None:
                row[flag] = False

    def _followup_rescheduled(self, row: Row, e: Envelope) -> None:
        row["last_due_on"] = self.day(e.payload["due_at"])
        if row["missed"] is not True:  # a miss stays on the day it was missed (on-time rate)
            row["due_on"] = row["last_due_on"]
        row["assignee"] = e.payload.get("assigned_clerk")
        kept = e.payload.get("on_time_by")
        if kept:  # its clerk's (or a colleague's) own move: the day it had still judges it
            row["on_time_by"] = date.fromisoformat(kept)
        elif e.payload.get("cause", "staff") == "staff":  # a supervisor's: a new day
            row["on_time_by"] = None
        # (a re-planning or an attempt keeps a day already kept, as followup does)
        if e.payload.get("counted", True) and e.payload.get("stays") is None:
            row["overdue_on"] = None  # a new due moment: not due yet
            if row["missed"] is True:  # missed, moved: open again (an attempt leaves it)
                row["reopened"] = True
        _open_by(row)

    def _followup_due(self, row: Row, e: Envelope) -> None:
        """Fallen due: to be done by the closing the scheduler misses it at."""
        row["overdue_on"] = self.day(e.payload["overdue_at"])
        _open_by(row)

    def _followup_reassigned(self, row: Row, e: Envelope) -> None:
        # Its case handed over (转办): the new owner's to do, and to be counted cancelling it.
        row["assignee"] = e.payload.get("assigned_clerk")

    def _followup_completed(self, row: Row, e: Envelope) -> None:
        if row["completed_on"] is None:
            judged = e.payload.get("judged_at")
            row["completed_on"] = self.day(e.occurred_at)
            row["outcome"] = e.payload["outcome"]
            row["judged_on"] = self.day(judged) if judged else None
            due_by = e.payload.get("due_by")
            row["due_by"] = date.fromisoformat(due_by) if due_by else None

    def _followup_missed(self, row: Row, e: Envelope) -> None:
        row["missed"] = True
        row["reopened"] = False  # missed (again): counted so, no longer open

    def _followup_cancelled(self, row: Row, e: Envelope) -> None:
        if row["cancelled"] is not True:  # cancelled once; the first cancel says by whom
            row["cancelled_by_assignee"] = (row["assignee"] is not None
                                            and e.actor == row["assignee"])
        row["cancelled"] = True


def _open_by(row: Row) -> None:
    """The working day an open follow-up is to be done on (followup's ``working_day_due``):
    the earlier of the day kept and its due day (the scheduler's, else the date of its latest
    due_at: moved after a miss, not the day it was missed on)."""
    due = row["overdue_on"] or row.get("last_due_on") or row["due_on"]
    days = [d for d in (row["on_time_by"], due) if d is not None]
    row["open_by"] = min(days) if days else None


def _months(row: Row, days: tuple[str, ...]) -> set[date]:
    """The months of every day a fact row holds (what a change to it may move): its ``date``
    columns' (a value of any other column's type is no day: COPY would refuse it)."""
    # A loop, and a plain date told by its type first: half the cost of a set comprehension
    # asking isinstance twice of every value (None the most common).
    found: set[date] = set()
    for c in days:
        v = row.get(c)
        if v is not None and (type(v) is date
                              or (isinstance(v, date) and not isinstance(v, datetime))):
            found.add(date(v.year, v.month, 1))  # v.replace(day=1), at a third of its cost
    return found


APPLY: dict[str, Apply] = {
    "CaseOpened": FiguresProjection._case_opened,
    "ConcernsNoted": FiguresProjection._concerns,
    "GuidanceGiven": FiguresProjection._guided,
    "CaseDueDateSet": FiguresProjection._due_date_set,
    "CaseResolved": FiguresProjection._resolved,
    "CaseReopened": FiguresProjection._reopened,
    "CaseHandedOver": FiguresProjection._handed_over,
    "VisitRecorded": FiguresProjection._visit,
    "PeriodClosed": FiguresProjection._period_closed,
    "PeriodRevised": FiguresProjection._period_revised,
    "SurveyRequested": FiguresProjection._survey_requested,
    "SurveySent": FiguresProjection._survey_sent,
    "RatingGiven": FiguresProjection._rated,
    "SurveyExpired": FiguresProjection._expired,
    "SurveyWithdrawn": FiguresProjection._withdrawn,
    "SurveyDeclined": FiguresProjection._declined,
    "RectificationOpened": FiguresProjection._rectification_opened,
    "RectificationDeadlineRevised": FiguresProjection._deadline_revised,
    "RectificationCompleted": FiguresProjection._rectification_completed,
    "RectificationTriaged": FiguresProjection._triaged,
    "RectificationAppealed": FiguresProjection._appealed,
    "RectificationAppealDecided": FiguresProjection._appeal_decided,
    "FollowUpScheduled": FiguresProjection._followup_scheduled,
    "FollowUpRescheduled": FiguresProjection._followup_rescheduled,
    "FollowUpCompleted": FiguresProjection._followup_completed,
    "FollowUpMissed": FiguresProjection._followup_missed,
    "FollowUpCancelled": FiguresProjection._followup_cancelled,
    "FollowUpReassigned": FiguresProjection._followup_reassigned,
    "FollowUpDue": FiguresProjection._followup_due,
}


#: How ``_route`` sends an event: its own row (by its aggregate), a case's row only (intake's
#: case events, by the case), or a trip's row and its case's (a return trip).
_OWN, _CASE, _TRIP = "own", "case", "trip"
Way = tuple[str, Table | None, Apply | None, bool]
#: ``_way`` per (service, type) met; at most ``_WAYS_KEPT`` (a log of made-up types).
_WAYS: dict[tuple[str, str], Way] = {}
_WAYS_KEPT = 1000


def _way(service: str, type_: str) -> Way:
    """How an event of this service and type is routed (``FiguresProjection._route``): one of
    ``_OWN`` / ``_CASE`` / ``_TRIP``, its own table (None: no row of its own), the function
    applying it, and whether its verdict may also change its case's row. An unknown type
    where a function is wanted raises KeyError, as the lookup did event by event."""
    if type_ in PERIOD_TYPES and service == "feedback":
        return _OWN, REPORTED, APPLY[type_], False
    if type_ == "VisitRecorded" and service == "intake":
        return _TRIP, VISITS, APPLY[type_], False
    if service == "intake":
        if type_ in INTAKE_TYPES:
            return _CASE, CASES, APPLY[type_], False
        return _OWN, None, None, False
    table: Table | None = None
    fn: Apply | None = None
    if service == "feedback":
        if type_.startswith("Rectification"):
            table, fn = RECTIFICATIONS, APPLY[type_]
        elif type_ in FEEDBACK_TYPES:
            table, fn = SURVEYS, APPLY[type_]
    elif service == "followup" and type_ in FOLLOWUP_TYPES:
        table, fn = FOLLOWUPS, APPLY[type_]
    return _OWN, table, fn, type_ in VERDICT_TYPES


READ_MODEL = ReadModel(
    service="feedback", consumer=CONSUMER, handler=lambda s: FiguresProjection(s.tz), ddl=DDL,
    subjects=lambda settings: subjects(settings.subject_prefix),
    keys={**{t.name: "case_id" for t in FACTS}, VISITS.name: "key_id", LATE: "key_id",
          REPORTED.name: "period_id"},
    # a close's mark, taken before its count, is on no log until the close is recorded; nor
    # is a note of an event applied after that mark (on the log before the close, the
    # rebuild does not note it): a rebuild switched in before the close's record kept the
    # mark and lost the note, and the month stayed as reported, the visit counted live only
    kept_live=frozenset({MARKS, LATE}),
    # the rebuild numbers notes and marks anew from 1: a kept note after every rebuilt
    # mark, a kept mark (a close under way) before every rebuilt note, or either may stand
    # on the wrong side (the live numbering behind, or ahead of, the rebuild's), the note
    # never counted again
    kept_numbered={LATE: {"noted_seq": NOTED_SEQ},
                   MARKS: {"counted_through": None, "recorded_through": None,
                           "pending_through": None}},
    # a note applied live after a count's mark and on the log before that count's record
    # (a slip typed in while May was revised) was owed a count live; the rebuild, going by
    # the log, put the record's mark after it: May was never counted again. The month's
    # rebuilt marks go back to just before its first note owed live.
    at_switch=(
        f"UPDATE {{live}}.{MARKS} k SET counted_through = least(k.counted_through,"
        " o.first - 1), recorded_through = least(k.recorded_through, o.first - 1) FROM"
        f" (SELECT l.center_id, l.month, min(n.noted_seq) AS first FROM {{retired}}.{LATE} l"
        f" JOIN {{retired}}.{MARKS} m ON m.center_id = l.center_id AND m.month = l.month"
        f" JOIN {{live}}.{LATE} n ON n.event_id = l.event_id AND n.month = l.month"
        " WHERE l.noted_seq > m.counted_through GROUP BY l.center_id, l.month) o"
        " WHERE k.center_id = o.center_id AND k.month = o.month",
        # when a month was last revised is on no log (the service's clock): the rebuilt
        # marks had none, and the slips typed in after a switch were each a revision of
        # their own within the window (PERIOD_REVISE_EVERY_MINUTES)
        f"UPDATE {{live}}.{MARKS} k SET revised_at = o.revised_at FROM {{retired}}.{MARKS} o"
        " WHERE o.center_id = k.center_id AND o.month = k.month AND k.revised_at IS NULL"
        " AND o.revised_at IS NOT NULL",
        # a kept record under way counted on the retired numbering: pending at 0, as
        # ``pending_through`` (``kept_numbered``): it moves no mark
        f"UPDATE {{live}}.{MARKS} SET pending = (SELECT jsonb_object_agg(e.key, 0) FROM"
        " jsonb_each(pending) e) WHERE pending IS NOT NULL AND pending <> '{{}}'::jsonb"),
    # where a note or a count stands: a rebuild numbers its notes anew
    volatile=frozenset({"noted_seq", "counted_through", "recorded_through",
                        "pending_through", "pending", "revised_at"}),
    # A batch reads fact rows by their keys only (``_fold``), the day totals by (day,
    # center), the notes and marks by their keys: the figures' day and lookup indexes serve
    # the queries (fig_late_noted the period scheduler's), made last by a rebuild.
    built_after=frozenset({"fig_cases_opened", "fig_cases_resolved", "fig_surveys_closed",
                           "fig_rect_opened", "fig_followups_due", "fig_cases_verdict",
                           "fig_visits_day", "fig_surveys_rectification", "fig_rect_survey",
                           "fig_late_recorded", "fig_late_noted"}),
)
"""What ``sixstep rebuild feedback.figures`` folds the log with: after a change of the center's
time zone, for one. ``keys`` name the case column (the events' partition key), not the rows'
primary keys (``survey_id``, ``rectification_id``, ``follow_up_id``: found by the rebuild)."""
