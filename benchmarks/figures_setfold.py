"""The figures' rebuild folded in PostgreSQL, set-based, against the Python fold: paired CPU.

    .venv/bin/python benchmarks/figures_setfold.py --events 100000 [--pairs 4]

A measurement of issue 23 target 4's "fold in PostgreSQL" (stop 55, rebuild57), not a
read model: ``SetFold`` is ``FiguresProjection`` whose ``copy_apply`` sends each routed event
as one *fact* (its row's key, its type, the few payload fields the row takes) by COPY into a
temporary table (``ON COMMIT DELETE ROWS``: no WAL, emptied by the batch's commit) and folds
the facts into the fact tables with one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO
UPDATE`` per table, every aggregate ordered by the facts' place in the batch (PostgreSQL 16
sorts the input once for all of them), rows of earlier batches merged column by column.

It is a *lower bound* of the set-based fold's cost, deliberately: it leaves out what the
Python fold also does and SQL would have to do too (the late notes of closed or earlier
months, ``_note_late``; the counts per center and day, ``totals``; the reported months,
``fig_reported``), and the merge with a row of an earlier batch is column-wise (the latest
value the batch gives, else the row's), not the state machine the handlers run (a follow-up
rescheduled after a miss keeps its due day, ``open_by`` from the final columns). If even
this costs more CPU than the Python fold, everything counted (this process, its reader,
PostgreSQL, nats-server), the full set-based fold does too.

The log is published once; then ``--pairs`` rounds of ``sixstep rebuild feedback.figures`` up
to the diff (``rebuild_all.rebuild``), one run of each of ``--variants`` a round (the Python
fold as it is; ``facts-only``, the Python fold without the notes and counts ``SetFold``
leaves out; ``SetFold``), each first in turn, each run's CPU an event applied printed per
process. ``--check figures
intake`` compares the two staging schemas' tables first (row counts, and the cases' columns
that the bound folds as the handlers do). ``IntakeSetFold`` is the same bound for intake's
``cases`` (variants ``intake`` and ``intake-set``), folded from the batch's timeline rows.
Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from benchmarks.common import bench_settings, like_main, machine, servers
from benchmarks.rebuild_all import Measured, measured, rebuild
from benchmarks.synthetic import publish_year, visits_for
from services.feedback.figures import projection as fp
from services.intake import hint_rows
from services.intake import projections as ip
from services.intake.projections import TIMELINE_COLUMNS, CaseProjection, _own, _step
from shared.contracts import Envelope
from shared.readmodels import bulk
from shared.readmodels.readmodel import REBUILD_BATCH

FACTS = "fig_facts"
FACT_COLUMNS = ("n", "tbl", "k", "typ", "center", "case_id", "at", "a", "b", "c", "d", "f")
TEMP = (f"CREATE TEMP TABLE IF NOT EXISTS {FACTS} (n int, tbl int2, k uuid, typ text,"
        " center text, case_id uuid, at timestamptz, a text, b text, c text, d text,"
        " f boolean) ON COMMIT DELETE ROWS")
CASES, SURVEYS, RECTS, FOLLOWUPS, VISITS = 1, 2, 3, 4, 5
TABLE_NO = {fp.CASES.name: CASES, fp.SURVEYS.name: SURVEYS, fp.RECTIFICATIONS.name: RECTS,
            fp.FOLLOWUPS.name: FOLLOWUPS, fp.VISITS.name: VISITS}


def _last(expr: str, where: str) -> str:
    """The last of ``expr`` over the facts matching ``where``, in the batch's order."""
    return f"(array_agg({expr} ORDER BY n) FILTER (WHERE {where}))"


def _day(expr: str) -> str:
    return f"(({expr}) AT TIME ZONE $1)::date"


def _merge(table: fp.Table, keep_old: Sequence[str] = (), add: Sequence[str] = ()) -> str:
    """ON CONFLICT: the batch's value where it gives one, else the row's (``keep_old``: the
    row's where it has one; ``add``: summed)."""
    sets = []
    for c in table.names[1:]:
        if c in keep_old:
            sets.append(f"{c} = coalesce(t.{c}, EXCLUDED.{c})")
        elif c in add:
            sets.append(f"{c} = coalesce(t.{c}, 0) + coalesce(EXCLUDED.{c}, 0)")
        else:
            sets.append(f"{c} = coalesce(EXCLUDED.{c}, t.{c})")
    return f"ON CONFLICT ({table.key}) DO UPDATE SET {', '.join(sets)}"


def _fold(table: fp.Table, no: int, aggregates: dict[str, str], outer: dict[str, str],
          merge: str) -> str:
    """INSERT the batch's rows of ``table``: ``aggregates`` over its facts grouped by key
    (arrays in the batch's order), ``outer`` each column from them (default: the last)."""
    inner = ", ".join(f"{expr} AS {name}" for name, expr in aggregates.items())
    cols = ", ".join(outer.get(c, f"g.{c}[cardinality(g.{c})]") for c in table.names[1:])
    return (f"INSERT INTO {table.name} AS t ({', '.join(table.names)})"
            f" SELECT g.k, {cols} FROM (SELECT k, {inner} FROM pg_temp.{FACTS}"
            f" WHERE tbl = {no} GROUP BY k) g {merge}")


T = "typ = "
CASES_SQL = _fold(fp.CASES, CASES, {
    "center_id": "max(center)",
    "counter_id": _last("a", f"{T}'CaseOpened'"),
    "clerk_id": _last("b", f"{T}'CaseOpened'"),
    "service_item": _last("c", f"{T} ANY('{{CaseOpened,GuidanceGiven}}')"),
    "opened_on": f"min({_day('at')}) FILTER (WHERE {T}'CaseOpened')",
    "emotion": _last("a", f"{T}'ConcernsNoted'"),
    "state": _last("typ", f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "resolved_on": _last(f"CASE WHEN typ = 'CaseResolved' THEN {_day('at')} END",
                         f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "outcome": _last("a", f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "defused": _last("f", f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "leaving": _last("b", f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "judged_on": _last(_day("c::timestamptz"), f"{T} ANY('{{CaseResolved,CaseReopened}}')"),
    "due_on": _last("a::date", f"{T}'CaseDueDateSet'"),
    "owner_clerk": _last("CASE typ WHEN 'CaseOpened' THEN b ELSE coalesce(a, b) END",
                         f"{T} ANY('{{CaseOpened,CaseHandedOver}}')"),
    "verdict": f"(array_agg(a ORDER BY at) FILTER (WHERE {T}'verdict'))",
    "verdict_at": "max(at) FILTER (WHERE typ = 'verdict')",
    "trips": f"array_agg({_day('at')}) FILTER (WHERE {T}'trip')",
}, {
    "center_id": "g.center_id",
    "emotion": "g.emotion[1]",
    "opened_on": "g.opened_on",
    "resolved": "CASE g.state[cardinality(g.state)] WHEN 'CaseResolved' THEN true"
                " WHEN 'CaseReopened' THEN false ELSE (CASE WHEN g.opened_on IS NOT NULL"
                " THEN false END) END",
    "verdict_on": f"{_day('g.verdict_at')}",
    "verdict_at": "g.verdict_at",
    "return_trips": "(SELECT count(*) FROM unnest(g.trips) d WHERE d > g.opened_on)",
}, _merge(fp.CASES, keep_old=("emotion", "counter_id", "clerk_id", "opened_on"),
          add=("return_trips",)))

#: The cases another way, for its cost alone: the last fact of each type per case (one sort,
#: ``DISTINCT ON``), pivoted with plain aggregates (no array a column and a case). Its
#: rows differ where ``CASES_SQL``'s keep a first value (emotion, opening), a verdict's moment
#: or a return trip (none in the synthetic year) decide: a probe of the statement's price.
CASES_PIVOT_SQL = (
    f"INSERT INTO {fp.CASES.name} AS t ({', '.join(fp.CASES.names)})"
    " SELECT k, center_id, counter_id, clerk_id, service_item, opened_on, emotion,"
    " CASE WHEN rs > ro THEN true WHEN ro > -1 OR opened_on IS NOT NULL THEN false END,"
    " CASE WHEN rs > ro THEN resolved_on END, CASE WHEN rs > ro THEN outcome END,"
    " CASE WHEN rs > ro THEN defused END, due_on, owner_clerk, verdict,"
    f" {_day('verdict_at')}, verdict_at, 0, CASE WHEN rs > ro THEN leaving END,"
    " CASE WHEN rs > ro THEN judged_on END FROM (SELECT k, max(center) AS center_id,"
    " max(a) FILTER (WHERE typ = 'CaseOpened') AS counter_id,"
    " max(b) FILTER (WHERE typ = 'CaseOpened') AS clerk_id,"
    " coalesce(max(c) FILTER (WHERE typ = 'GuidanceGiven'),"
    "  max(c) FILTER (WHERE typ = 'CaseOpened')) AS service_item,"
    f" max({_day('at')}) FILTER (WHERE typ = 'CaseOpened') AS opened_on,"
    " max(a) FILTER (WHERE typ = 'ConcernsNoted') AS emotion,"
    " coalesce(max(n) FILTER (WHERE typ = 'CaseResolved'), -1) AS rs,"
    " coalesce(max(n) FILTER (WHERE typ = 'CaseReopened'), -1) AS ro,"
    f" max({_day('at')}) FILTER (WHERE typ = 'CaseResolved') AS resolved_on,"
    " max(a) FILTER (WHERE typ = 'CaseResolved') AS outcome,"
    " bool_or(f) FILTER (WHERE typ = 'CaseResolved') AS defused,"
    " max(b) FILTER (WHERE typ = 'CaseResolved') AS leaving,"
    f" max({_day('c::timestamptz')}) FILTER (WHERE typ = 'CaseResolved') AS judged_on,"
    " max(a::date) FILTER (WHERE typ = 'CaseDueDateSet') AS due_on,"
    " coalesce(max(coalesce(a, b)) FILTER (WHERE typ = 'CaseHandedOver'),"
    "  max(b) FILTER (WHERE typ = 'CaseOpened')) AS owner_clerk,"
    " max(a) FILTER (WHERE typ = 'verdict') AS verdict,"
    " max(at) FILTER (WHERE typ = 'verdict') AS verdict_at"
    f" FROM (SELECT DISTINCT ON (k, typ) * FROM pg_temp.{FACTS} WHERE tbl = {CASES}"
    " ORDER BY k, typ, n DESC) l GROUP BY k) g "
    + _merge(fp.CASES, keep_old=("emotion", "counter_id", "clerk_id", "opened_on"),
             add=("return_trips",)))

SURVEYS_SQL = _fold(fp.SURVEYS, SURVEYS, {
    "case_id": "max(case_id::text)::uuid",
    "center_id": "max(center)",
    "purpose": _last("a", f"{T} ANY('{{SurveyRequested,RatingGiven,SurveyExpired,"
                     "SurveyDeclined}')"),
    "requested_on": f"min({_day('at')}) FILTER (WHERE {T}'SurveyRequested')",
    "was_sent": "bool_or(typ = 'SurveySent')",
    "result": _last("d", f"{T} ANY('{{RatingGiven,SurveyExpired,SurveyDeclined,"
                    "SurveyWithdrawn}')"),
    "closed_on": _last(_day("at"), f"{T} ANY('{{RatingGiven,SurveyExpired,SurveyDeclined,"
                       "SurveyWithdrawn}')"),
    "level": _last("b", f"{T}'RatingGiven'"),
    "rectification_id": _last("b::uuid", f"{T}'SurveyRequested'"),
    "via": _last("c", f"{T}'RatingGiven'"),
}, {
    "case_id": "g.case_id", "center_id": "g.center_id", "requested_on": "g.requested_on",
    "was_sent": "g.was_sent", "staff_channel": "NULL::text",
}, _merge(fp.SURVEYS))

RECTS_SQL = _fold(fp.RECTIFICATIONS, RECTS, {
    "case_id": "max(case_id::text)::uuid",
    "center_id": "max(center)",
    "opened_on": f"min({_day('at')}) FILTER (WHERE {T}'RectificationOpened')",
    "deadline_on": _last("a::date", f"{T} ANY('{{RectificationOpened,RectificationTriaged,"
                         "RectificationDeadlineRevised}')"),
    "completed_on": _last("d::date", f"{T}'RectificationCompleted'"),
    "survey_id": _last("b::uuid", f"{T}'RectificationOpened'"),
    "named": _last("f", f"{T}'RectificationOpened'"),
    "track": _last("c", f"{T}'RectificationTriaged'"),
    "appeal": _last("coalesce(c, 'pending')", f"{T} ANY('{{RectificationAppealed,"
                    "RectificationAppealDecided}')"),
}, {"case_id": "g.case_id", "center_id": "g.center_id", "opened_on": "g.opened_on"},
    _merge(fp.RECTIFICATIONS))

FOLLOWUPS_SQL = _fold(fp.FOLLOWUPS, FOLLOWUPS, {
    "case_id": "max(case_id::text)::uuid",
    "center_id": "max(center)",
    "reason": _last("a", f"{T}'FollowUpScheduled'"),
    "due_on": _last(_day("c::timestamptz"), f"{T} ANY('{{FollowUpScheduled,"
                    "FollowUpRescheduled}')"),
    "completed_on": f"min({_day('at')}) FILTER (WHERE {T}'FollowUpCompleted')",
    "missed": "bool_or(typ = 'FollowUpMissed')",
    "cancelled": "bool_or(typ = 'FollowUpCancelled')",
    "outcome": _last("a", f"{T}'FollowUpCompleted'"),
    "judged_on": _last(_day("c::timestamptz"), f"{T}'FollowUpCompleted'"),
    "due_by": _last("d::date", f"{T}'FollowUpCompleted'"),
    "assignee": _last("b", f"{T} ANY('{{FollowUpScheduled,FollowUpRescheduled,"
                      "FollowUpReassigned}')"),
    "cancelled_by_assignee": _last("b", f"{T}'FollowUpCancelled'"),
    "on_time_by": _last("d::date", f"{T}'FollowUpRescheduled'"),
    "overdue_on": _last(f"CASE typ WHEN 'FollowUpDue' THEN {_day('c::timestamptz')} END",
                        f"{T} ANY('{{FollowUpDue,FollowUpRescheduled}}')"),
    "reopened": _last("typ = 'FollowUpRescheduled'", f"{T} ANY('{{FollowUpMissed,"
                      "FollowUpRescheduled}')"),
    "last_due_on": _last(_day("c::timestamptz"), f"{T} ANY('{{FollowUpScheduled,"
                         "FollowUpRescheduled}')"),
}, {
    "case_id": "g.case_id", "center_id": "g.center_id", "completed_on": "g.completed_on",
    "missed": "g.missed", "cancelled": "g.cancelled",
    "cancelled_by_assignee": "g.cancelled_by_assignee[1] IS NOT NULL AND"
                             " g.cancelled_by_assignee[1] = g.assignee[cardinality(g.assignee)]",
    "open_by": "least(g.on_time_by[cardinality(g.on_time_by)],"
               " coalesce(g.overdue_on[cardinality(g.overdue_on)],"
               " g.last_due_on[cardinality(g.last_due_on)]))",
}, _merge(fp.FOLLOWUPS, keep_old=("completed_on",)))

VISITS_SQL = (f"INSERT INTO {fp.VISITS.name} ({', '.join(fp.VISITS.names)}) SELECT DISTINCT"
              f" ON (k) k, case_id, case_id, center, a, b, c, {_day('at')}, d::int FROM"
              f" pg_temp.{FACTS} WHERE tbl = {VISITS} ORDER BY k, n"
              " ON CONFLICT (visit_id) DO NOTHING")
SQL = {CASES: CASES_SQL, SURVEYS: SURVEYS_SQL, RECTS: RECTS_SQL, FOLLOWUPS: FOLLOWUPS_SQL,
       VISITS: VISITS_SQL}


def _fields(typ: str, p: dict[str, Any], e: Envelope) -> tuple[Any, Any, Any, Any, Any]:
    """The payload fields a fact carries (a, b, c, d, f), by type."""
    g = p.get
    if typ == "CaseOpened":
        return p["counter_id"], p["clerk_id"], p["service_item"], None, None
    if typ == "ConcernsNoted":
        return p["emotion"], None, None, None, None
    if typ == "GuidanceGiven":
        return None, None, p["service_item"], None, None
    if typ == "CaseDueDateSet":
        return p["due_on"], None, None, None, None
    if typ == "CaseResolved":
        return p["outcome"], g("emotion_on_leaving"), g("judged_at"), None, p["emotion_defused"]
    if typ == "CaseHandedOver":
        return p["to_clerk"], p["to_team"], None, None, None
    if typ == "SurveyRequested":
        return p["purpose"], g("rectification_id"), None, None, None
    if typ == "RatingGiven":
        return p["purpose"], p["level"], p["via"], "answered", None
    if typ in ("SurveyExpired", "SurveyDeclined"):
        return p["purpose"], None, None, "expired" if typ == "SurveyExpired" else "declined", None
    if typ == "SurveyWithdrawn":
        return (None, None, None,
                "no_consent" if g("because") == "no_consent" else "withdrawn", None)
    if typ == "RectificationOpened":
        return (p["deadline_on"], g("survey_id"), None, None,
                g("resident_id") is not None)
    if typ in ("RectificationTriaged", "RectificationDeadlineRevised"):
        return p["deadline_on"], None, g("track"), None, None
    if typ == "RectificationAppealDecided":
        return None, None, p["decision"], None, None
    if typ == "RectificationCompleted":
        return None, None, None, p["completed_on"], None
    if typ == "FollowUpScheduled":
        return p["reason"], g("assigned_clerk"), p["due_at"], None, None
    if typ == "FollowUpRescheduled":
        return g("cause"), g("assigned_clerk"), p["due_at"], g("on_time_by"), None
    if typ == "FollowUpDue":
        return None, None, p["overdue_at"], None, None
    if typ == "FollowUpReassigned":
        return None, g("assigned_clerk"), None, None, None
    if typ == "FollowUpCompleted":
        return p["outcome"], None, g("judged_at"), g("due_by"), None
    if typ == "FollowUpCancelled":
        return None, e.actor, None, None, None
    if typ == "VisitRecorded":
        w = g("wait_minutes")
        return p["counter_id"], p["clerk_id"], p["channel"], None if w is None else str(w), None
    return None, None, None, None, None


class SetFold(fp.FiguresProjection):
    """``copy_apply``: the batch's facts by COPY, folded by PostgreSQL (see the module)."""

    def __init__(self, tz: Any) -> None:
        super().__init__(tz)
        self._ready: set[int] = set()

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if id(conn) not in self._ready:
            await conn.execute(TEMP)
            self._ready.add(id(conn))
        facts = []
        tables: set[int] = set()
        verdict, trip = fp.FiguresProjection._verdict, fp.FiguresProjection._trip_on_case
        for n, e in enumerate(events):
            for table, key, fn in self._route(e):
                no = TABLE_NO.get(table.name)
                if no is None:
                    continue  # the reported months: left out of this bound
                typ = "verdict" if fn is verdict else "trip" if fn is trip else e.type
                if typ == "verdict":
                    fields = (e.payload["verdict"], None, None, None, None)
                elif typ == "trip":
                    fields = (None, None, None, None, None)
                else:
                    fields = _fields(typ, e.payload, e)
                facts.append((n, no, key, typ, e.center_id, e.case_id, e.occurred_at, *fields))
                tables.add(no)
        if not facts:
            return
        await conn.copy_records_to_table(FACTS, records=facts, columns=list(FACT_COLUMNS),
                                         schema_name="pg_temp")
        for no in sorted(tables):
            await conn.execute(SQL[no], self.tz.key)
        FOLDED[0] += 1  # the facts go with the batch's commit (ON COMMIT DELETE ROWS)


class CopyOnly(SetFold):
    """``SetFold``'s facts COPied and nothing folded: what PostgreSQL spends taking them in."""

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        saved = dict(SQL)
        SQL.update(dict.fromkeys(SQL, "SELECT $1::text"))
        try:
            await super().copy_apply(conn, events)
        finally:
            SQL.update(saved)


class CasesPivoted(SetFold):
    """``SetFold`` with the cases folded by ``CASES_PIVOT_SQL``."""

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        SQL[CASES] = CASES_PIVOT_SQL
        try:
            await super().copy_apply(conn, events)
        finally:
            SQL[CASES] = CASES_SQL


class FactsOnly(fp.FiguresProjection):
    """The Python fold with what ``SetFold`` leaves out left out too (the late notes, the
    counts per center and day): the like-for-like baseline of the bound."""

    def _note_late(self, *args: Any) -> None:
        return None

    def _count_before(self, rows: Any) -> None:
        return None

    def _counted(self, folded: Any) -> fp.totals.Counted:
        return self.counted

    async def _note_after_close(self, conn: asyncpg.Connection) -> None:
        return None

    async def _write_notes(self, conn: asyncpg.Connection, *, rebuilding: bool) -> None:
        return None


#: Intake's cases folded from the batch's timeline rows (COPied as before, the facts already
#: in PostgreSQL): ``$1`` the batch's cases, ``$2`` their centers, ``$3`` its first position.
#: A bound as ``SetFold`` is: no steps ahead of an opening, a row of an earlier batch merged
#: column by column.
_STAGED = ("RequestHeard", "RequestRestated", "ConcernsNoted", "GuidanceGiven", "ActionTaken",
           "CaseResolved", "CaseReopened")
INTAKE_SQL = (
    "INSERT INTO cases AS t (case_id, center_id, counter_id, clerk_id, channel, service_item,"
    " resident_id, resident_basis, applicant_id, status, stage, emotion_on_arrival, urgency,"
    " eligibility, outcome, emotion_defused, opened_at, updated_at, resolved_at, next_deadline,"
    " reopen_count, version, position, due_on, due_basis, due_source, owner_clerk, owner_team)"
    " SELECT g.case_id, c.center_id, coalesce(o->>'counter_id', ''), coalesce(o->>'clerk_id', ''),"
    " coalesce(o->>'channel', ''), coalesce(gg[cardinality(gg)]->>'service_item',"
    " o->>'service_item', ''), (o->>'resident_id')::uuid, o->>'resident_basis',"
    " (o->>'applicant_id')::uuid, CASE rs[cardinality(rs)] WHEN 'CaseResolved' THEN 'resolved'"
    " ELSE 'open' END, coalesce(CASE st[cardinality(st)] WHEN 'RequestHeard' THEN 'heard'"
    " WHEN 'RequestRestated' THEN 'restated' WHEN 'ConcernsNoted' THEN 'concerns_noted'"
    " WHEN 'GuidanceGiven' THEN 'guided' WHEN 'ActionTaken' THEN 'served' WHEN 'CaseResolved'"
    " THEN 'resolved' WHEN 'CaseReopened' THEN 'reopened' END, 'opened'), emotion[1],"
    " urgency[cardinality(urgency)], gg[cardinality(gg)]->>'eligibility',"
    " CASE WHEN rs[cardinality(rs)] = 'CaseResolved' THEN res[cardinality(res)]->>'outcome' END,"
    " CASE WHEN rs[cardinality(rs)] = 'CaseResolved' THEN"
    " (res[cardinality(res)]->>'emotion_defused')::boolean END, coalesce(opened_at, updated_at),"
    " updated_at, CASE WHEN rs[cardinality(rs)] = 'CaseResolved' THEN resolved_at END,"
    " next_deadline, reopens, version, position, (dd[cardinality(dd)]->>'due_on')::date,"
    " dd[cardinality(dd)]->>'basis', dd[cardinality(dd)]->>'source',"
    " ho[cardinality(ho)]->>'to_clerk', ho[cardinality(ho)]->>'to_team'"
    " FROM (SELECT case_id,"
    " (array_agg(payload ORDER BY version) FILTER (WHERE type = 'CaseOpened'))[1] AS o,"
    " array_agg(type ORDER BY version) FILTER (WHERE type = ANY($4::text[])) AS st,"
    " array_agg(payload->>'emotion' ORDER BY version) FILTER (WHERE type = 'ConcernsNoted')"
    " AS emotion,"
    " array_agg(payload->>'urgency' ORDER BY version) FILTER (WHERE type = 'ConcernsNoted')"
    " AS urgency,"
    " array_agg(payload ORDER BY version) FILTER (WHERE type = 'GuidanceGiven') AS gg,"
    " min((payload->>'due_on')::date) FILTER (WHERE type = 'DeadlineNoted') AS next_deadline,"
    " array_agg(payload ORDER BY version) FILTER (WHERE type = 'CaseDueDateSet') AS dd,"
    " array_agg(payload ORDER BY version) FILTER (WHERE type = 'CaseHandedOver') AS ho,"
    " array_agg(type ORDER BY version) FILTER (WHERE type IN ('CaseResolved', 'CaseReopened'))"
    " AS rs,"
    " array_agg(payload ORDER BY version) FILTER (WHERE type = 'CaseResolved') AS res,"
    " max(occurred_at) FILTER (WHERE type = 'CaseResolved') AS resolved_at,"
    " count(*) FILTER (WHERE type = 'CaseReopened') AS reopens,"
    " min(occurred_at) FILTER (WHERE type = 'CaseOpened') AS opened_at,"
    " max(occurred_at) AS updated_at, max(version) AS version, max(position) AS position"
    " FROM case_timeline WHERE case_id = ANY($1::uuid[]) AND position >= $3 GROUP BY case_id) g"
    " JOIN unnest($1::uuid[], $2::text[]) AS c(case_id, center_id) ON c.case_id = g.case_id"
    " ON CONFLICT (case_id) DO UPDATE SET"
    " stage = EXCLUDED.stage, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,"
    " position = EXCLUDED.position, reopen_count = t.reopen_count + EXCLUDED.reopen_count,"
    " emotion_on_arrival = coalesce(t.emotion_on_arrival, EXCLUDED.emotion_on_arrival),"
    " next_deadline = least(t.next_deadline, EXCLUDED.next_deadline),"
    + ", ".join(f"{c} = coalesce(EXCLUDED.{c}, t.{c})" for c in (
        "urgency", "eligibility", "outcome", "emotion_defused", "resolved_at", "due_on",
        "due_basis", "due_source", "owner_clerk", "owner_team"))
    + ", status = CASE WHEN EXCLUDED.status = 'resolved' OR EXCLUDED.reopen_count > 0"
    " THEN EXCLUDED.status ELSE t.status END, projected_at = clock_timestamp()")


class IntakeSetFold(CaseProjection):
    """``copy_apply``: the timeline COPied as before, the cases folded from it by
    ``INTAKE_SQL`` (see the module)."""

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        own = _own(events)
        if own:
            await bulk.copy_records(conn, "case_timeline", TIMELINE_COLUMNS,
                                    [_step(e) for e in own])
            centers: dict[Any, str | None] = {}
            for e in own:
                centers.setdefault(e.case_id, e.center_id)
            await conn.execute(INTAKE_SQL, list(centers), list(centers.values()),
                               min(e.position for e in own), list(_STAGED))
            FOLDED[0] += 1
        await hint_rows.upsert(conn, events)


#: Batches this process folded set-based (a batch that failed went to the live handler).
FOLDED = [0]
SET_MODEL = dataclasses.replace(fp.READ_MODEL, handler=lambda s: SetFold(s.tz))
MODELS = {"python": fp.READ_MODEL, "facts-only": dataclasses.replace(
    fp.READ_MODEL, handler=lambda s: FactsOnly(s.tz)), "set": SET_MODEL,
          "cases-pivoted": dataclasses.replace(
              fp.READ_MODEL, handler=lambda s: CasesPivoted(s.tz)),
          "intake": ip.READ_MODEL,
          "intake-set": dataclasses.replace(ip.READ_MODEL, handler=lambda s: IntakeSetFold()),
          "copy-only": dataclasses.replace(fp.READ_MODEL, handler=lambda s: CopyOnly(s.tz))}


def per_event(m: Measured) -> dict[str, float]:
    ev = max(m.events, 1)
    return {"here": m.own_cpu_s / ev * 1e6, "reader": (m.cpu_s - m.own_cpu_s) / ev * 1e6,
            "pg": m.pg_cpu_s / ev * 1e6, "nats": m.nats_cpu_s / ev * 1e6,
            "all": (m.cpu_s + m.pg_cpu_s + m.nats_cpu_s) / ev * 1e6, "wall": m.seconds}


CHECKS = {
    "figures": (("python", "set"), [t.name for t in fp.FACTS], "fig_cases",
                "case_id, center_id, counter_id, clerk_id, service_item, opened_on, emotion,"
                " resolved, resolved_on, outcome, defused, due_on, owner_clerk, verdict,"
                " verdict_on, leaving"),
    "intake": (("intake", "intake-set"), ["cases", "case_timeline"], "cases",
               "case_id, center_id, counter_id, clerk_id, channel, service_item, resident_id,"
               " status, stage, emotion_on_arrival, urgency, eligibility, outcome,"
               " emotion_defused, opened_at, updated_at, resolved_at, next_deadline,"
               " reopen_count, version, position, due_on, owner_clerk, owner_team"),
}


async def check(settings: Any, batch: int, which: str) -> None:
    """Row counts of both folds' tables, and one table's columns compared."""
    from shared.analytics.rebuild import Rebuild
    names, tables, compared, columns = CHECKS[which]
    kept: dict[str, dict[str, Any]] = {}
    for name in names:
        async with Rebuild(settings, MODELS[name], batch_size=batch) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            conn = rb.conn
            kept[name] = {"fallbacks": rb.fallbacks}
            for t in tables:
                kept[name][t] = await conn.fetchval(f"SELECT count(*) FROM {t}")
            await conn.execute(f'DROP TABLE IF EXISTS public."chk_{name}"')
            await conn.execute(f'CREATE TABLE public."chk_{name}" AS SELECT {columns}'
                               f" FROM {compared}")
            await rb.discard()
    conn = await asyncpg.connect(settings.database_url)
    try:
        differ = await conn.fetchval(f'SELECT count(*) FROM (SELECT * FROM public."chk_{names[0]}"'
                                     f' EXCEPT SELECT * FROM public."chk_{names[1]}") d')
        for name in names:
            await conn.execute(f'DROP TABLE public."chk_{name}"')
    finally:
        await conn.close()
    print(f"check: {kept}; {compared} rows differing in the columns compared: {differ:,}",
          flush=True)


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", partitions=16)
        like_main(settings)
        log = await publish_year(settings, visits_for(args.events))
        print(f"synthetic year: {log.events:,} events; batch {args.batch}; reader"
              f" {args.reader}; load {os.getloadavg()[0]:.1f}", flush=True)
        for which in args.check:
            await check(settings, args.batch, which)
        names = args.variants
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for pair in range(args.pairs):  # each variant first in turn
            for name in names[pair % len(names):] + names[:pair % len(names)]:
                model = MODELS[name]
                folded = FOLDED[0]
                m = await measured(rebuild(settings, model, f"figures {name}", args.batch,
                                           reader=args.reader))
                folded = FOLDED[0] - folded
                r = per_event(m)
                runs[name].append(r)
                print(f"pair {pair + 1} {name:<6} {m.events:,} ev {r['wall']:.1f} s; CPU us/ev"
                      f" here {r['here']:.1f}, reader {r['reader']:.1f}, PostgreSQL"
                      f" {r['pg']:.1f}, nats-server {r['nats']:.1f}, all {r['all']:.1f};"
                      f" peak RSS {m.peak_rss_mb:.0f} MB; load {os.getloadavg()[0]:.1f}"
                      + (f"; {folded} batches folded set-based" if folded else ""),
                      flush=True)
        base = names[0]  # every other variant against the first
        for other in names[1:]:
            for key in ("here", "pg", "all", "wall"):
                old = statistics.median(r[key] for r in runs[base])
                new = statistics.median(r[key] for r in runs[other])
                lower = sum(n[key] < o[key] for o, n in zip(runs[base], runs[other],
                                                            strict=True))
                print(f"median {key}: {base} {old:.1f} -> {other} {new:.1f}"
                      f" ({new / old:.2f} x; lower in {lower} of {args.pairs} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=REBUILD_BATCH)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--reader", default="auto", choices=["inline", "process", "auto"])
    parser.add_argument("--check", nargs="*", default=[], choices=list(CHECKS))
    parser.add_argument("--variants", nargs="+", default=["python", "set"],
                        choices=list(MODELS), help="alternated; each compared with the first")
    asyncio.run(main(parser.parse_args()))
