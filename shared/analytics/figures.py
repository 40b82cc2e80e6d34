"""The center's figures for a period, computed with DuckDB from an export's Parquet files.

One row per case (``case_facts``), survey (``survey_facts``), rectification
(``rectification_facts``) and follow-up (``followup_facts``), each folded from the exported
events exactly as the feedback service's figures projection folds them; every figure is a
count over those rows or a rate of two counts, by day, by service item (the case's), and in
total. The definitions are those of the feedback service's figures
(``services/feedback/figures/queries.py``: ``FIGURES``), restated over the exported events:

- visits: trips to the center, 人次 (``VisitRecorded``), on the day of the trip; cases: cases
  opened (``CaseOpened``), on the day they were opened;
- trips per resolved case: of the resolved cases (as for the declared resolution rate), the opening
  trip plus every trip naming the case on a later day than its opening, over the cases;
  first-trip rate (一次办成率): those with no such later trip;
- resolution rate: of the cases whose resident answered "was your matter solved?" (the
  ``verdict`` of a ``RatingGiven`` or of a post-resolution check's ``FollowUpCompleted``; a
  case's latest answer, by ``occurred_at`` then stream order), counted on the day of that
  answer, those answered ``solved``;
- declared resolution rate: of the cases whose last resolution event is ``CaseResolved`` (not
  reopened since), counted on the day of that resolution, those with outcome ``resolved``;
- emotion-defused rate: of those resolved cases whose emotion on arrival (the first
  ``ConcernsNoted``) is one to defuse (``arrivals``: upset, angry, distressed by default;
  ``EMOTION_DEFUSING_ARRIVALS``), those that left in none of them (``emotion_on_leaving``,
  CaseResolved v2), or, resolved before it was recorded, with ``emotion_defused``;
- on-time completion rate (按时办结率): of those resolved cases that have a due date (the last
  ``CaseDueDateSet``), those resolved on or before it (a backdated resolution: judged on the
  day of its ``judged_at``); backdated resolutions: those of the resolved cases that have a
  ``judged_at`` (posted more than ``OCCURRED_AT_GRACE_S`` after the ``occurred_at`` given);
- on-the-spot completion rate (当场办结率): of those resolved cases, those resolved on the
  day they were opened (a backdated one: judged on the day of its ``judged_at``);
- overdue open cases: cases not resolved (no resolution, or reopened since) whose latest due
  date is before the report's day, counted on the due day;
- satisfaction rate: of the residents' own answers (``RatingGiven`` with ``via = token``: the
  link or the counter pad) to resolution surveys, less bad reviews an upheld appeal took out,
  the satisfied levels; the answers staff recorded (``via = clerk``) are counted apart
  (staff-recorded satisfaction rate, staff-recorded answers); response rate: answers (either)
  over answers + no answers (``SurveyExpired``); all on the day the survey was closed (its
  last answer, expiry or withdrawal);
- no consent: surveys withdrawn because the resident has not agreed to be asked by text or
  phone (``SurveyWithdrawn`` with ``because = no_consent``), on the day withdrawn; never
  counted as no answer;
- bad reviews: answers dissatisfied or very dissatisfied, any survey; revisit satisfaction
  rate: satisfied answers over answers to revisit surveys; an answer whose bad review was
  appealed and the appeal upheld (``RectificationAppealDecided``) leaves bad reviews and the
  satisfaction rates, counted in appeals upheld (on the day of the review);
- 实名差评回访率 (named revisit rate): of the rectifications of named residents (less upheld
  appeals), on the day opened, those whose resident a revisit survey reached: answered, or
  declined to rate (``SurveyDeclined``: the center reached them);
- rectifications opened, on the day opened; rectification on-time rate: of those completed or
  past their deadline (before the ``as_of`` day, else today), those completed by the deadline
  in force (the last ``RectificationDeadlineRevised`` one, when a provisional deadline was
  revised);
- follow-ups on-time rate: of the follow-ups completed or missed, on their (last) due day (a
  missed one on the due day it was first missed on, however it is moved after),
  those completed by the working day they were to be done on and never missed (the
  completion's ``due_by``: a Sunday's or a Friday 18:00's due moment is Monday's; without
  it, in completions recorded before it existed, that due day) (judged on the day of the
  completion, a backdated one's ``judged_at``: one done later while the scheduler was down,
  never missed, is late all the same);
- follow-ups open past due: still open (never completed, missed or cancelled; or missed, then
  moved to a new due moment by a supervisor or a colleague: open again) past the working
  day they are to be done on (the day its clerk's own moves kept, ``on_time_by``, or the day
  of the scheduler's ``FollowUpDue.overdue_at``, the earlier), as of the report's day, on
  that day: a check pushed every day, never done, counts here;
- service item: the last ``GuidanceGiven`` item, else the one the case was opened for.

Days are the center's calendar days of ``occurred_at`` (a follow-up's due day: of ``due_at``).
``as_of`` leaves out every event recorded after that moment: the figures as they stood then. A
new figure is a column in one of the fact tables, a count in :data:`PARTS` and a :class:`Rate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from shared.analytics.export import (
    TIMESTAMP,
    WIDE_TABLE,
    quoted_before,
    read_manifest,
    type_columns,
)
from shared.contracts import REGISTRY, EventContract
from shared.contracts.feedback import REVISIT_REACHED, SATISFIED_LEVELS, RatingLevel
from shared.contracts.vocabulary import Emotion, Outcome

NEEDS_DEFUSING = tuple(e.value for e in Emotion if e.needs_defusing)
SATISFIED = tuple(level.value for level in RatingLevel if level in SATISFIED_LEVELS)
BAD = tuple(level.value for level in RatingLevel if level not in SATISFIED_LEVELS)


@dataclass(frozen=True)
class Rate:
    name: str
    label: str
    numerator: str
    denominator: str
    short: str = ""  # a narrow column heading
    ratio: bool = False  # a number per unit (trips per case), not a share

    def shown(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.2f}" if self.ratio else f"{value:.1%}"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_RESOLUTION_ANSWER = "purpose = 'resolution' AND result = 'answered'"
_KEPT_ANSWER = f"{_RESOLUTION_ANSWER} AND NOT struck"
_OWN_ANSWER = f"{_KEPT_ANSWER} AND via = 'token'"
_STAFF_ANSWER = f"{_KEPT_ANSWER} AND via = 'clerk'"
_REVISIT_ANSWER = "purpose = 'revisit' AND result = 'answered' AND NOT struck"
_NOT_UPHELD = "appeal IS DISTINCT FROM 'upheld'"

#: (fact table, the day it is counted on, {count: which of its rows}): a figure is counted on
#: the day (and under the service item) of its own rows, as the feedback service anchors it.
PARTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("visit_facts", "day", {"visits": "TRUE"}),
    ("case_facts", "opened_on", {"cases": "TRUE"}),
    ("case_facts", "resolved_on", {
        "resolved": "is_resolved", "resolved_as_resolved": "is_resolved AND as_resolved",
        "upset_resolved": "is_resolved AND upset",
        "defused": "is_resolved AND upset AND defused",
        "trips": "sum(CASE WHEN is_resolved THEN 1 + return_trips ELSE 0 END)",
        "first_trip": "is_resolved AND return_trips = 0",
        "resolved_with_due": "is_resolved AND due_on IS NOT NULL",
        "resolved_on_time": "is_resolved AND due_on IS NOT NULL AND judged_on <= due_on",
        "backdated_resolutions": "is_resolved AND backdated",
        "resolved_on_the_spot": "is_resolved AND judged_on = opened_on"}),
    ("case_facts", "due_on", {
        "overdue_open_cases": "NOT coalesce(is_resolved, false) AND due_on < $today"}),
    ("case_facts", "verdict_on", {
        "verdicts": "verdict IS NOT NULL", "said_solved": "verdict = 'solved'"}),
    ("survey_facts", "closed_on", {
        "survey_answers": _RESOLUTION_ANSWER,
        "kept_answers": _KEPT_ANSWER,
        "satisfied_answers": f"{_KEPT_ANSWER} AND level IN {_in(SATISFIED)}",
        "own_answers": _OWN_ANSWER,
        "satisfied_own_answers": f"{_OWN_ANSWER} AND level IN {_in(SATISFIED)}",
        "staff_answers": _STAFF_ANSWER,
        "satisfied_staff_answers": f"{_STAFF_ANSWER} AND level IN {_in(SATISFIED)}",
        "staff_recorded_answers": "result = 'answered' AND via = 'clerk'",
        "answers_or_expiries": "purpose = 'resolution' AND result IN ('answered', 'expired')",
        "no_consent": "result = 'no_consent'",
        "declined": "result = 'declined'",
        "bad_reviews": f"result = 'answered' AND level IN {_in(BAD)} AND NOT struck",
        "revisit_answers": _REVISIT_ANSWER,
        "satisfied_revisits": f"{_REVISIT_ANSWER} AND level IN {_in(SATISFIED)}"}),
    ("rectification_facts", "opened_on", {
        "rectifications_opened": "TRUE",
        "rectifications_due": f"(completed_on IS NOT NULL OR deadline_on < $today) AND"
                              f" {_NOT_UPHELD}",
        "rectified_on_time": f"completed_on IS NOT NULL AND completed_on <= deadline_on AND"
                             f" {_NOT_UPHELD}",
        "appeals_upheld": "appeal = 'upheld'",
        "named_bad_reviews": f"named AND {_NOT_UPHELD}",
        "named_revisited": f"named AND {_NOT_UPHELD} AND revisited"}),
    ("followup_facts", "due_on", {
        "followups_closed": "completed_on IS NOT NULL OR missed",
        "followups_on_time": "completed_on IS NOT NULL AND NOT missed"
                             " AND outcome IS DISTINCT FROM 'unreachable'"
                             " AND coalesce(judged_on, completed_on)"
                             " <= coalesce(due_by, due_on)",
        "followups_unreachable": "completed_on IS NOT NULL AND outcome = 'unreachable'",
        "followups_cancelled_by_assignee": "cancelled_by_assignee"}),
    ("followup_facts", "open_by", {
        "followups_open_past_due": "completed_on IS NULL AND (NOT missed OR reopened)"
                                   " AND NOT cancelled AND open_by < $today"}),
)
COUNTS = tuple(c for _, _, counts in PARTS for c in counts)


def cell(expression: str) -> str:
    """A count of ``PARTS``: the rows meeting ``expression``, or ``expression`` itself when it
    is a sum (trips)."""
    return expression if expression.startswith("sum(") else \
        f"count(*) FILTER (WHERE {expression})"

RATES: tuple[Rate, ...] = (
    Rate("resolution_rate", "Resolution rate (residents' word)", "said_solved", "verdicts",
         short="solved %"),
    Rate("declared_resolution_rate", "Declared resolution rate", "resolved_as_resolved",
         "resolved", short="declared resolved %"),
    Rate("emotion_defused_rate", "Emotion-defused rate", "defused", "upset_resolved",
         short="defused %"),
    Rate("trips_per_resolved_case", "Trips per resolved case", "trips", "resolved",
         short="trips/case", ratio=True),
    Rate("first_trip_rate", "Resolved on the first trip (一次办成率)", "first_trip", "resolved",
         short="first trip %"),
    Rate("on_time_rate", "On-time completion rate (按时办结率)", "resolved_on_time",
         "resolved_with_due", short="on time %"),
    Rate("on_the_spot_rate", "On-the-spot completion rate (当场办结率)", "resolved_on_the_spot",
         "resolved", short="on the spot %"),
    Rate("satisfaction_rate", "Satisfaction rate", "satisfied_own_answers", "own_answers",
         short="satisfied %"),
    Rate("staff_recorded_satisfaction_rate", "Staff-recorded satisfaction rate",
         "satisfied_staff_answers", "staff_answers", short="staff-recorded satisfied %"),
    Rate("response_rate", "Response rate", "survey_answers", "answers_or_expiries",
         short="response %"),
    Rate("revisit_satisfaction_rate", "Revisit satisfaction rate", "satisfied_revisits",
         "revisit_answers", short="revisit satisfied %"),
    Rate("rectification_on_time_rate", "Rectification on-time rate", "rectified_on_time",
         "rectifications_due", short="rectified on time %"),
    Rate("followups_on_time_rate", "Follow-ups on-time rate", "followups_on_time",
         "followups_closed", short="follow-ups on time %"),
    Rate("named_revisit_rate", "Named bad reviews revisited (实名差评回访率)", "named_revisited",
         "named_bad_reviews", short="revisited %"),
)
#: The counts the table and the page show beside the rates (every count is in ``Row.counts``).
#: Every count figure of ``GET /figures`` is one: a report that left out overdue_open_cases
#: showed a December's on-time rate of 100% with two cases open past their due day.
SHOWN = ("visits", "cases", "resolved", "overdue_open_cases", "verdicts", "bad_reviews",
         "staff_recorded_answers", "rectifications_opened", "appeals_upheld",
         "followups_unreachable", "followups_cancelled_by_assignee", "followups_open_past_due",
         "declined", "no_consent", "backdated_resolutions")
DEFINITIONS = {
    "visits": "trips to the center, 人次 (VisitRecorded), on the day of the trip",
    "cases": "cases opened (CaseOpened), on the day they were opened",
    "trips": "trips of the resolved cases: the opening one and each naming the case later",
    "first_trip": "resolved cases no trip named after their opening day (一次办成)",
    "resolved": "cases whose last resolution event is CaseResolved, on the day of it",
    "resolved_as_resolved": "of those, outcome 'resolved'",
    "upset_resolved": f"resolved cases that arrived {'/'.join(NEEDS_DEFUSING)} (by default)",
    "defused": "of those, left in none of those emotions (before CaseResolved v2: "
               "emotion_defused)",
    "resolved_with_due": "resolved cases with a due date (CaseDueDateSet), on the day resolved",
    "resolved_on_time": "of those, resolved on or before their latest due date",
    "resolved_on_the_spot": "resolved cases resolved on the day they were opened",
    "backdated_resolutions": "resolved cases whose resolution was posted more than "
                             "OCCURRED_AT_GRACE_S after the occurred_at it gives (judged_at):"
                             " judged on time on intake's clock less the grace",
    "overdue_open_cases": "cases still open whose latest due date is before the report's day,"
                          " on the due day",
    "survey_answers": "answers (RatingGiven) to resolution surveys, on the day answered",
    "kept_answers": "of those, all but bad reviews an upheld appeal took out",
    "satisfied_answers": f"of those, {'/'.join(SATISFIED)}",
    "verdicts": "cases whose resident answered 'was your matter solved?' (RatingGiven or "
                "FollowUpCompleted verdict; the case's latest answer), on the day answered",
    "said_solved": "of those, answered 'solved'",
    "own_answers": "of those, the residents' own (via token: the link or the counter pad)",
    "satisfied_own_answers": f"of those, {'/'.join(SATISFIED)}",
    "staff_answers": "answers to resolution surveys recorded by staff (via clerk: phone "
                     "callback, paper form)",
    "satisfied_staff_answers": f"of those, {'/'.join(SATISFIED)}",
    "staff_recorded_answers": "answers recorded by staff for the resident, any survey",
    "answers_or_expiries": "resolution surveys answered or expired (SurveyExpired), on the day"
                           " closed",
    "no_consent": "surveys not sent for want of the resident's consent (SurveyWithdrawn"
                  " because no_consent), on the day withdrawn; never counted as no answer",
    "declined": "surveys the resident declined to rate (SurveyDeclined: the pad or the link),"
                " on the day declined; neither an answer nor a no answer, never satisfied nor"
                " a bad review",
    "bad_reviews": f"answers {'/'.join(BAD)} to any survey, less those an upheld appeal took"
                   " out",
    "revisit_answers": "answers to revisit surveys (after a rectification)",
    "satisfied_revisits": f"of those, {'/'.join(SATISFIED)}",
    "rectifications_opened": "rectifications opened (RectificationOpened), on the day opened",
    "rectifications_due": "of those, completed or past their deadline (as of the report's day),"
                          " less upheld appeals",
    "rectified_on_time": "of those, completed on or before the deadline in force (the triage"
                         " track's; revised, when a provisional deadline was)",
    "appeals_upheld": "bad reviews an upheld appeal (malicious or mistaken) took out of the"
                      " figures, on the day of the review",
    "named_bad_reviews": "rectifications of named residents (实名差评), less upheld appeals, on"
                         " the day opened",
    "named_revisited": "of those, the resident was reached by a revisit survey: answered it"
                       " or declined to rate (SurveyDeclined)",
    "followups_closed": "follow-ups completed or missed, on their (last) due day (a missed"
                        " one on the due day it was first missed on)",
    "followups_on_time": "of those, completed and never missed, the resident reached (not"
                         " outcome unreachable)",
    "followups_cancelled_by_assignee": "follow-ups cancelled by the clerk they were assigned"
                                       " to (in no rate), on their (last) due day (a"
                                       " missed one's: the day it was missed on)",
    "followups_open_past_due": "follow-ups still open (never completed, missed or cancelled;"
                               " or missed, then moved to a new due moment: open again)"
                               " past the working day they are to be done on (the day a"
                               " clerk's own moves kept, FollowUpRescheduled.on_time_by, or"
                               " the scheduler's FollowUpDue.overdue_at, the earlier; due_at's"
                               " day before it fell due), as of the report's day, on that day",
    "followups_unreachable": "follow-ups ended with the resident not reached after every"
                             " attempt (outcome unreachable; the team takes a check or a"
                             " revisit up), on their (last) due day (a missed one's: the"
                             " day it was missed on)",
}


@dataclass
class Row:
    key: Any
    counts: dict[str, int]
    rates: dict[str, float | None]


@dataclass
class Figures:
    start: date
    end: date
    center: str | None
    as_of: datetime | None
    total: Row
    by_day: list[Row] = field(default_factory=list)
    by_item: list[Row] = field(default_factory=list)
    rates: tuple[Rate, ...] = RATES


#: The wide layout's one table, as a view (``events`` is the same rows with a JSON payload).
WIDE_VIEW = "events_wide"


#: How the views read an export's files: their own columns only. The folders' ``month=``
#: (the partition, the month of ``occurred_at``) is not one: DuckDB would add it, as text,
#: over a payload's own ``month`` (``PeriodClosed``, ``PeriodRevised``: a day), which then
#: failed to read as the day the contract says, and with it the ``events`` view.
_READ_OPTIONS = "union_by_name = true, hive_partitioning = false"


#: DuckDB's name for each column type an export writes: what ``DESCRIBE`` of every event
#: type's empty table answered at every open, 72 queries, a sixth of a second of each
#: ``sixstep sql`` (``tests/unit/test_export_columns.py`` holds the two to each other).
DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int32(): "INTEGER",
    pa.int64(): "BIGINT", pa.date32(): "DATE", TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    pa.list_(pa.string()): "VARCHAR[]"}


@cache
def contract_columns(type_name: str) -> tuple[tuple[str, str], ...]:
    """An event type's columns as its contract types them, (name, DuckDB type), in order."""
    return tuple((c.name, DUCKDB_TYPES[c.type])
                 for c in type_columns(REGISTRY.get(type_name)))


@cache
def _empty(type_name: str) -> pa.Table:
    """An event type's table without rows: the view of a type the export has no file for."""
    return pa.schema([pa.field(c.name, c.type)
                      for c in type_columns(REGISTRY.get(type_name))]).empty_table()


def connect_export(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with one view per event type over an export (either layout); an export written
    by a newer sixstep is refused (``ExportNotReadable``)."""
    manifest = read_manifest(root)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files: dict[str, list[str]] = {}
    for f in manifest["files"]:
        files.setdefault(f["table"], []).append(str(root / f["path"]))
    # A CSV's columns are read as text and cast to their contract's types (``_typed``): the
    # reader's guess took a column of codes or words that all look like numbers (counters
    # "1", "2"; a comment "5") for integers, which a comparison with text then failed on.
    reader, options = (("read_parquet", _READ_OPTIONS) if manifest["format"] == "parquet"
                       else ("read_csv", f"{_READ_OPTIONS}, all_varchar = true"))
    wide: dict[str, str] | None = None
    if manifest["layout"] == "wide" and files.get(WIDE_TABLE):
        con.execute(f"CREATE VIEW {WIDE_VIEW} AS SELECT * FROM "
                    f"{reader}({files[WIDE_TABLE]!r}, {options})")
        wide = _described(con, WIDE_VIEW)  # once, not once per event type
    for contract in REGISTRY:
        name = contract.type
        con.register(f"_empty_{name}", _empty(name))
        if wide is not None:
            source, where, have = WIDE_VIEW, f"WHERE type = '{name}'", wide
        elif files.get(name):
            source, where = f"{reader}({files[name]!r}, {options})", ""
            have = _described(con, source)
        else:
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_empty_{name}"')
            continue
        con.execute(f'CREATE VIEW "{name}" AS SELECT {_columns(contract, source, have)} '
                    f"FROM {source} {where}")
    return con


def _described(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """The columns the export's files hold, with the types DuckDB reads them as."""
    return {c: t for c, t, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _columns(contract: EventContract, source: str, have: dict[str, str]) -> str:
    """The select list of an event type's view: every column of its contract, as its
    contract types it. A column the export's files lack (written before the field existed:
    ``judged_at`` in an export made before December 2026) is a typed NULL; one they hold as
    text (a CSV export's empty column; an optional moment or day, a list of codes, a choice,
    which exports before typed columns wrote as JSON text) is cast to its type, so the
    figures' SQL and an analyst's query read old exports as new ones. The files' own columns
    are kept (a per-type file may hold more)."""
    quoted = quoted_before(contract)
    wanted = contract_columns(contract.type)
    missing = [f'CAST(NULL AS {t}) AS "{c}"' for c, t, *_ in wanted if c not in have]
    typed = {c: _typed(c, have[c], t, c in quoted) for c, t, *_ in wanted if c in have}
    if source == WIDE_VIEW:
        return ", ".join([typed[c] for c, *_ in wanted if c in have] + missing)
    replaced = [expression for c, expression in typed.items() if expression != f'"{c}"']
    star = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
    return ", ".join([star, *missing])


def _typed(column: str, have: str, want: str, quoted: bool) -> str:
    """``column`` read as ``want`` from files that hold it as ``have``."""
    text = have in ("VARCHAR", "JSON")
    if have == want and not (quoted and text):
        return f'"{column}"'
    if not text:
        return f'"{column}"'  # another number width a CSV reader guessed: kept as read
    if want.endswith("[]"):
        value = f'CAST(CAST("{column}" AS JSON) AS {want})'
    elif want in ("VARCHAR", "JSON"):  # a choice written as a JSON string
        value = (f'CASE WHEN starts_with(CAST("{column}" AS VARCHAR), \'"\') THEN '
                 f'CAST("{column}" AS JSON)->>\'$\' ELSE CAST("{column}" AS VARCHAR) END')
    else:  # a moment or a day: JSON text ('"2026-03-03T09:00:00+08:00"') or plain text
        value = f'CAST(trim(CAST("{column}" AS VARCHAR), \'"\') AS {want})'
    return f'{value} AS "{column}"'


def facts_sql(tz: str, arrivals: tuple[str, ...] = NEEDS_DEFUSING) -> str:
    defusing = ", ".join(f"'{Emotion(e).value}'" for e in arrivals)
    seen = "recorded_at <= $as_of"
    return f"""
    WITH opened AS (
        SELECT case_id, center_id, service_item AS opened_item, occurred_at AS opened_at,
               CAST(timezone('{tz}', occurred_at) AS DATE) AS day
        FROM "CaseOpened" WHERE {seen}),
    item AS (SELECT case_id, arg_max(service_item, aggregate_version) AS item
             FROM "GuidanceGiven" WHERE {seen} GROUP BY case_id),
    arrival AS (SELECT case_id, arg_min(emotion, aggregate_version) AS emotion
                FROM "ConcernsNoted" WHERE {seen} GROUP BY case_id),
    resolved AS (SELECT case_id, arg_max(outcome, aggregate_version) AS outcome,
                        arg_max(emotion_defused, aggregate_version) AS defused,
                        arg_max(emotion_on_leaving, aggregate_version) AS leaving,
                        arg_max(CAST(timezone('{tz}', occurred_at) AS DATE), aggregate_version)
                            AS day,
                        arg_max(CAST(timezone('{tz}', coalesce(judged_at, occurred_at))
                                     AS DATE), aggregate_version) AS judged_on,
                        arg_max(judged_at IS NOT NULL, aggregate_version) AS backdated
                 FROM "CaseResolved" WHERE {seen} GROUP BY case_id),
    due AS (SELECT case_id, arg_max(CAST(due_on AS DATE), aggregate_version) AS due_on
            FROM "CaseDueDateSet" WHERE {seen} GROUP BY case_id),
    ending AS (SELECT case_id, arg_max(type, aggregate_version) AS last_type FROM (
                   SELECT case_id, aggregate_version, type FROM "CaseResolved" WHERE {seen}
                   UNION ALL
                   SELECT case_id, aggregate_version, type FROM "CaseReopened" WHERE {seen})
               GROUP BY case_id),
    trips AS (SELECT v.case_id, count(*) AS return_trips FROM "VisitRecorded" v
              JOIN opened o USING (case_id)
              WHERE v.{seen} AND CAST(timezone('{tz}', v.occurred_at) AS DATE) > o.day
              GROUP BY v.case_id),
    said AS (SELECT case_id, verdict, occurred_at, stream_seq FROM (
                 SELECT case_id, CAST(verdict AS VARCHAR) AS verdict, occurred_at, stream_seq
                     FROM "RatingGiven" WHERE {seen} AND verdict IS NOT NULL
                 UNION ALL
                 SELECT case_id, CAST(verdict AS VARCHAR), occurred_at, stream_seq
                     FROM "FollowUpCompleted" WHERE {seen} AND verdict IS NOT NULL)),
    verdict AS (SELECT case_id, verdict,
                       CAST(timezone('{tz}', occurred_at) AS DATE) AS verdict_on
                FROM (SELECT *, row_number() OVER (PARTITION BY case_id
                                                   ORDER BY occurred_at DESC, stream_seq DESC)
                                AS n FROM said) WHERE n = 1)
    SELECT o.case_id, o.center_id, o.day AS opened_on,
           CASE WHEN e.last_type = 'CaseResolved' THEN r.day END AS resolved_on,
           CASE WHEN e.last_type = 'CaseResolved' THEN r.judged_on END AS judged_on,
           coalesce(r.backdated, false) AS backdated,
           coalesce(i.item, o.opened_item) AS service_item, a.emotion,
           e.last_type = 'CaseResolved' AS is_resolved,
           coalesce(r.outcome = '{Outcome.RESOLVED}', false) AS as_resolved,
           coalesce(a.emotion IN ({defusing}), false) AS upset,
           CASE WHEN r.leaving IS NOT NULL THEN r.leaving NOT IN ({defusing})
                ELSE coalesce(r.defused, false) END AS defused,
           coalesce(t.return_trips, 0) AS return_trips, d.due_on, v.verdict, v.verdict_on
    FROM opened o LEFT JOIN item i USING (case_id) LEFT JOIN arrival a USING (case_id)
         LEFT JOIN resolved r USING (case_id) LEFT JOIN ending e USING (case_id)
         LEFT JOIN trips t USING (case_id) LEFT JOIN due d USING (case_id)
         LEFT JOIN verdict v USING (case_id)
    """


def visits_sql(tz: str) -> str:
    """One row per trip (VisitRecorded), under the service item of the case it names."""
    return f"""
    SELECT v.aggregate_id AS visit_id, v.case_id, v.center_id,
           CAST(timezone('{tz}', v.occurred_at) AS DATE) AS day, c.service_item
    FROM "VisitRecorded" v LEFT JOIN case_facts c USING (case_id)
    WHERE v.recorded_at <= $as_of
    """


def aftercare_sql(tz: str) -> dict[str, str]:
    """Surveys, rectifications and follow-ups as the feedback service folds them (last event
    of each aggregate wins; a case's service item joined from ``case_facts``)."""
    seen = "recorded_at <= $as_of"
    day = f"CAST(timezone('{tz}', occurred_at) AS DATE)"
    cols = "aggregate_id, aggregate_version, case_id, center_id, type, occurred_at"
    surveys = f"""
    WITH ev AS (
        SELECT {cols}, CAST(purpose AS VARCHAR) AS purpose, NULL::VARCHAR AS level,
               NULL::VARCHAR AS because, CAST(rectification_id AS VARCHAR) AS rectification_id,
               NULL::VARCHAR AS via
            FROM "SurveyRequested" WHERE {seen}
        UNION ALL SELECT {cols}, CAST(purpose AS VARCHAR), CAST(level AS VARCHAR), NULL, NULL,
                         CAST(via AS VARCHAR)
            FROM "RatingGiven" WHERE {seen}
        UNION ALL SELECT {cols}, CAST(purpose AS VARCHAR), NULL, NULL, NULL, NULL
            FROM "SurveyExpired" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, CAST(because AS VARCHAR), NULL, NULL
            FROM "SurveyWithdrawn" WHERE {seen}
        UNION ALL SELECT {cols}, CAST(purpose AS VARCHAR), NULL, NULL, NULL, NULL
            FROM "SurveyDeclined" WHERE {seen}),
    upheld AS (SELECT DISTINCT CAST(survey_id AS VARCHAR) AS survey_id
               FROM "RectificationAppealDecided"
               WHERE {seen} AND CAST(decision AS VARCHAR) = 'upheld'),
    folded AS (
        SELECT aggregate_id, arg_min(case_id, aggregate_version) AS case_id,
               arg_min(center_id, aggregate_version) AS center_id,
               arg_max(purpose, aggregate_version) FILTER (WHERE purpose IS NOT NULL)
                   AS purpose,
               arg_max(type, aggregate_version) FILTER (WHERE type <> 'SurveyRequested')
                   AS closing,
               arg_max({day}, aggregate_version) FILTER (WHERE type <> 'SurveyRequested')
                   AS closed_on,
               arg_max(level, aggregate_version) FILTER (WHERE level IS NOT NULL) AS level,
               arg_max(because, aggregate_version) FILTER (WHERE because IS NOT NULL)
                   AS because,
               arg_min(rectification_id, aggregate_version) AS rectification_id,
               arg_max(via, aggregate_version) FILTER (WHERE via IS NOT NULL) AS via
        FROM ev GROUP BY aggregate_id)
    SELECT f.*, CASE f.closing WHEN 'RatingGiven' THEN 'answered'
                    WHEN 'SurveyExpired' THEN 'expired'
                    WHEN 'SurveyDeclined' THEN 'declined'
                    WHEN 'SurveyWithdrawn' THEN CASE f.because WHEN 'no_consent'
                                                THEN 'no_consent' ELSE 'withdrawn' END
                END AS result, c.service_item,
           CAST(f.aggregate_id AS VARCHAR) IN (SELECT survey_id FROM upheld) AS struck
    FROM folded f LEFT JOIN case_facts c USING (case_id)
    """
    rectifications = f"""
    WITH ev AS (
        SELECT {cols}, CAST(deadline_on AS DATE) AS deadline_on, NULL::DATE AS completed_on,
               coalesce(resident_id_known, false) AS named, NULL::VARCHAR AS appeal
            FROM "RectificationOpened" WHERE {seen}
        UNION ALL SELECT {cols}, CAST(deadline_on AS DATE), NULL, NULL, NULL
            FROM "RectificationDeadlineRevised" WHERE {seen}
        UNION ALL SELECT {cols}, CAST(deadline_on AS DATE), NULL, NULL, NULL
            FROM "RectificationTriaged" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, CAST(completed_on AS DATE), NULL, NULL
            FROM "RectificationCompleted" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, NULL, 'pending'
            FROM "RectificationAppealed" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, NULL, CAST(decision AS VARCHAR)
            FROM "RectificationAppealDecided" WHERE {seen}),
    folded AS (
        SELECT aggregate_id, arg_min(case_id, aggregate_version) AS case_id,
               arg_min(center_id, aggregate_version) AS center_id,
               arg_max({day}, aggregate_version) FILTER (WHERE type = 'RectificationOpened')
                   AS opened_on,
               arg_max(deadline_on, aggregate_version) FILTER (WHERE deadline_on IS NOT NULL)
                   AS deadline_on,
               arg_max(completed_on, aggregate_version) FILTER (WHERE completed_on IS NOT NULL)
                   AS completed_on,
               coalesce(bool_or(named), false) AS named,
               arg_max(appeal, aggregate_version) FILTER (WHERE appeal IS NOT NULL) AS appeal
        FROM ev GROUP BY aggregate_id)
    SELECT f.*, c.service_item,
           CAST(f.aggregate_id AS VARCHAR) IN (
               SELECT rectification_id FROM survey_facts WHERE rectification_id IS NOT NULL
               AND purpose = 'revisit' AND result IN {_in(REVISIT_REACHED)}) AS revisited
    FROM folded f LEFT JOIN case_facts c USING (case_id)
    """
    due = f"CAST(timezone('{tz}', CAST(due_at AS TIMESTAMPTZ)) AS DATE)"
    followups = f"""
    WITH ev AS (
        SELECT {cols}, {due} AS due_on, NULL AS outcome, NULL::TIMESTAMPTZ AS judged_at,
               NULL::DATE AS due_by,
               coalesce(CAST(assigned_clerk AS VARCHAR), '') AS assignee,
               CAST(actor AS VARCHAR) AS actor, NULL::DATE AS on_time_by,
               true AS sets_on_time_by, NULL::DATE AS overdue_on, true AS sets_overdue_on
            FROM "FollowUpScheduled" WHERE {seen}
        UNION ALL SELECT {cols}, {due}, NULL, NULL, NULL,
               coalesce(CAST(assigned_clerk AS VARCHAR), ''),
               CAST(actor AS VARCHAR), CAST(on_time_by AS DATE),
               -- a clerk's own move keeps a day, a supervisor's clears it, a re-planning
               -- or an attempt leaves the one kept (as the followup service does)
               on_time_by IS NOT NULL OR coalesce(CAST(cause AS VARCHAR), 'staff') = 'staff',
               -- a new due moment (not an uncounted call, nor one that stays missed): not
               -- due yet
               NULL, coalesce(counted, true) AND stays IS NULL
            FROM "FollowUpRescheduled" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, CAST(outcome AS VARCHAR), judged_at,
               CAST(due_by AS DATE), NULL, CAST(actor AS VARCHAR), NULL, false, NULL, false
            FROM "FollowUpCompleted" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, NULL, NULL, NULL, CAST(actor AS VARCHAR), NULL,
               false, NULL, false FROM "FollowUpMissed" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, NULL, NULL, NULL, CAST(actor AS VARCHAR), NULL,
               false, NULL, false FROM "FollowUpCancelled" WHERE {seen}
        UNION ALL SELECT {cols}, NULL, NULL, NULL, NULL,
               coalesce(CAST(assigned_clerk AS VARCHAR), ''),
               CAST(actor AS VARCHAR), NULL, false, NULL, false
            FROM "FollowUpReassigned" WHERE {seen}
        -- fallen due: to be done by the closing the scheduler misses it at
        UNION ALL SELECT {cols}, NULL, NULL, NULL, NULL, NULL, CAST(actor AS VARCHAR), NULL,
               false, CAST(timezone('{tz}', CAST(overdue_at AS TIMESTAMPTZ)) AS DATE), true
            FROM "FollowUpDue" WHERE {seen}),
    moves AS (
        -- The clerk it was assigned to before each event ('' a team's), and its due day.
        SELECT *, last_value(assignee IGNORE NULLS) OVER (
            PARTITION BY aggregate_id ORDER BY aggregate_version
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS assigned_then,
            last_value(due_on IGNORE NULLS) OVER (
            PARTITION BY aggregate_id ORDER BY aggregate_version
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS due_then
        FROM ev),
    folded AS (
        SELECT aggregate_id, arg_min(case_id, aggregate_version) AS case_id,
               arg_min(center_id, aggregate_version) AS center_id,
               -- a miss counts on the due day it was missed on, however it moves after
               coalesce(arg_min(due_then, aggregate_version)
                            FILTER (WHERE type = 'FollowUpMissed'),
                        arg_max(due_on, aggregate_version) FILTER (WHERE due_on IS NOT NULL))
                   AS due_on,
               arg_max(due_on, aggregate_version) FILTER (WHERE due_on IS NOT NULL)
                   AS last_due_on,
               arg_min({day}, aggregate_version) FILTER (WHERE type = 'FollowUpCompleted')
                   AS completed_on,
               coalesce(bool_or(type = 'FollowUpMissed'), false) AS missed,
               arg_min(outcome, aggregate_version) FILTER (WHERE type = 'FollowUpCompleted')
                   AS outcome,
               arg_min(CAST(timezone('{tz}', judged_at) AS DATE), aggregate_version)
                   FILTER (WHERE type = 'FollowUpCompleted') AS judged_on,
               arg_min(due_by, aggregate_version)
                   FILTER (WHERE type = 'FollowUpCompleted') AS due_by,
               arg_min(coalesce(assigned_then, '') <> '' AND actor = assigned_then,
                       aggregate_version)
                   FILTER (WHERE type = 'FollowUpCancelled') AS cancelled_by_assignee,
               coalesce(bool_or(type = 'FollowUpCancelled'), false) AS cancelled,
               -- the last move that set or cleared the kept day (a struct: arg_max skips
               -- a null value, and a supervisor's move clears it to null)
               (arg_max({{'d': on_time_by}}, aggregate_version)
                   FILTER (WHERE sets_on_time_by)).d AS on_time_by,
               (arg_max({{'d': overdue_on}}, aggregate_version)
                   FILTER (WHERE sets_overdue_on)).d AS overdue_on,
               -- missed, then moved to a new due moment (a supervisor's or a colleague's
               -- move): open again until completed, cancelled or missed again
               coalesce(arg_max(type = 'FollowUpRescheduled', aggregate_version) FILTER (
                   WHERE type = 'FollowUpMissed'
                   OR (type = 'FollowUpRescheduled' AND sets_overdue_on)), false)
                   AND coalesce(bool_or(type = 'FollowUpMissed'), false) AS reopened
        FROM moves GROUP BY aggregate_id)
    -- the working day it is to be done on while open (followup's working_day_due)
    SELECT f.*, least(f.on_time_by, coalesce(f.overdue_on, f.last_due_on)) AS open_by,
           c.service_item
    FROM folded f LEFT JOIN case_facts c USING (case_id)
    """
    return {"survey_facts": surveys, "rectification_facts": rectifications,
            "followup_facts": followups}


def _rows(con: duckdb.DuckDBPyConnection, group: str | None, params: dict[str, Any],
          where: str) -> list[Row]:
    """Each count on its own rows' day (visits on the opening day, resolutions on the
    resolution day, answers on the closing day...: as the feedback service's figures anchor
    them); one row per ``group`` value seen in any."""
    parts = []
    for table, anchor, counts in PARTS:
        key = {"day": anchor, "item": "service_item", None: "NULL"}[group]
        cells = ", ".join(cell(counts[c]) if c in counts else "0" for c in COUNTS)
        parts.append(f"SELECT {key} AS key, {cells} FROM {table}"
                     f" WHERE {anchor} BETWEEN $start AND $end {where} GROUP BY 1")
    names = ", ".join(f"c{i}" for i in range(len(COUNTS)))
    sums = ", ".join(f"sum(c{i})::BIGINT" for i in range(len(COUNTS)))
    result = con.execute(f"SELECT key, {sums} FROM ({' UNION ALL '.join(parts)}) AS t(key,"
                         f" {names}) GROUP BY key ORDER BY key", params)
    out = []
    for record in result.fetchall():
        counts = {c: int(record[i + 1] or 0) for i, c in enumerate(COUNTS)}
        if not any(counts.values()):
            continue  # only rows no figure counts (a cancelled follow-up's due day)
        out.append(Row(record[0], counts, {
            r.name: (counts[r.numerator] / counts[r.denominator]
                     if counts[r.denominator] else None) for r in RATES}))
    return out


def compute(root: Path, start: date, end: date, *, tz: str, center: str | None = None,
            as_of: datetime | None = None,
            arrivals: tuple[str, ...] = NEEDS_DEFUSING) -> Figures:
    """The center's figures for visits from ``start`` to ``end`` (inclusive); ``arrivals``:
    the emotions on arrival the emotion-defused rate counts."""
    con = connect_export(root)
    try:
        moment = as_of or datetime(9999, 12, 31, tzinfo=datetime.now().astimezone().tzinfo)
        con.execute(f"CREATE TEMP TABLE case_facts AS {facts_sql(tz, arrivals)}",
                    {"as_of": moment})
        con.execute(f"CREATE TEMP TABLE visit_facts AS {visits_sql(tz)}", {"as_of": moment})
        for name, sql in aftercare_sql(tz).items():
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}", {"as_of": moment})
        today = (as_of or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
        params: dict[str, Any] = {"start": start, "end": end, "today": today}
        where = ""
        if center:
            where = "AND center_id = $center"
            params["center"] = center
        total = _rows(con, None, params, where)
        empty = Row(None, dict.fromkeys(COUNTS, 0), dict.fromkeys(r.name for r in RATES))
        return Figures(start, end, center, as_of, total[0] if total else empty,
                       _rows(con, "day", params, where), _rows(con, "item", params, where))
    finally:
        con.close()
