"""The people behind the figures: beneficiaries (a case is counted for the resident it is for,
not for the relative who applied: 代办), and employment aid's guidance visits and placements
per studio or counter, counted as the seed counts them (5,600 guidance visits, 126 placed).

    fig_people_cases       one row per case with a resident (intake: CaseOpened)
    fig_guidance_sessions  one row per guidance session     (intake: GuidanceSessionHeld)
    fig_placements         one row per placement            (intake: PlacementRecorded)

A guidance visit (人次) is one session: the same resident seen five times is five visits.
People placed are residents: one placed twice in a period (two employment-aid cases) is one
person, and a counter is credited with the residents whose placement it recorded. Only opaque
resident ids are kept. Days are the center's calendar days of the session or the employment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from shared.contracts import Envelope
from shared.readmodels.bulk import copy_records
from shared.readmodels.public import Public
from shared.readmodels.readmodel import ReadModel

CONSUMER = "feedback-people"
TYPES = ("CaseOpened", "GuidanceSessionHeld", "PlacementRecorded")

DDL = [
    "CREATE TABLE IF NOT EXISTS fig_people_cases ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " service_item text NOT NULL, opened_on date NOT NULL, beneficiary_id uuid NOT NULL,"
    " applicant_id uuid NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fig_people_cases_opened ON fig_people_cases"
    " (center_id, opened_on)",
    "CREATE TABLE IF NOT EXISTS fig_guidance_sessions ("
    " session_id uuid PRIMARY KEY, case_id uuid NOT NULL, center_id text NOT NULL,"
    " counter_id text NOT NULL, held_on date NOT NULL, beneficiary_id uuid)",
    "CREATE INDEX IF NOT EXISTS fig_guidance_held ON fig_guidance_sessions (center_id, held_on)",
    "CREATE TABLE IF NOT EXISTS fig_placements ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " placed_on date NOT NULL, employer_type text NOT NULL, beneficiary_id uuid)",
    "CREATE INDEX IF NOT EXISTS fig_placements_on ON fig_placements (center_id, placed_on)",
]


def subjects(prefix: str) -> list[str]:
    return [f"{prefix}.intake.{t}.*" for t in TYPES]


OPENED = ("INSERT INTO fig_people_cases (case_id, center_id, counter_id, service_item,"
          " opened_on, beneficiary_id, applicant_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
          " ON CONFLICT (case_id) DO NOTHING")
CASE_COLUMNS = ("case_id", "center_id", "counter_id", "service_item", "opened_on",
                "beneficiary_id", "applicant_id")
SESSION = ("INSERT INTO fig_guidance_sessions (session_id, case_id, center_id, counter_id,"
           " held_on, beneficiary_id) SELECT $1, $2, $3, $4, $5,"
           " (SELECT beneficiary_id FROM fig_people_cases WHERE case_id = $2)"
           " ON CONFLICT (session_id) DO NOTHING")
PLACED = ("INSERT INTO fig_placements (case_id, center_id, counter_id, placed_on, employer_type,"
          " beneficiary_id) SELECT $1, $2, $3, $4, $5,"
          " (SELECT beneficiary_id FROM fig_people_cases WHERE case_id = $1)"
          " ON CONFLICT (case_id) DO NOTHING")


class PeopleProjection:
    """Applies the three intake events, each in stream order, in the consumer's transaction
    (a session or a placement takes its beneficiary from the case's row, written by its
    ``CaseOpened`` earlier in the same order). ``copy_apply`` runs the same statements."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _row(self, e: Envelope) -> tuple[str, tuple[Any, ...]] | None:
        """The statement (``OPENED``, ``SESSION`` or ``PLACED``) ``e`` is applied with and its
        row; None for an event this model leaves out."""
        if e.service != "intake" or e.type not in TYPES or e.case_id is None:
            return None
        p = e.payload
        if e.type == "CaseOpened":
            if not p.get("resident_id"):
                return None
            beneficiary = UUID(p["resident_id"])
            return OPENED, (e.case_id, e.center_id, p["counter_id"], p["service_item"],
                            self.day(e.occurred_at), beneficiary,
                            UUID(p["applicant_id"]) if p.get("applicant_id") else beneficiary)
        if e.type == "GuidanceSessionHeld":
            return SESSION, (UUID(p["session_id"]), e.case_id, e.center_id, p["counter_id"],
                             date.fromisoformat(p["held_on"]))
        return PLACED, (e.case_id, e.center_id, p["counter_id"],
                        date.fromisoformat(p["employed_on"]), p["employer_type"])

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        # Stream order kept: consecutive events of one statement go in one executemany (one
        # round trip), a change of statement starts the next run.
        runs: list[tuple[str, list[tuple[Any, ...]]]] = []
        for e in events:
            if (applied := self._row(e)) is None:
                continue
            sql, row = applied
            if runs and runs[-1][0] == sql:
                runs[-1][1].append(row)
            else:
                runs.append((sql, [row]))
        for sql, rows in runs:
            await conn.executemany(sql, rows)

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        """The batch in three statements, in stream order within each (the first of two
        rows with one key is kept, as ``ON CONFLICT DO NOTHING`` row by row keeps it): cases
        first, by COPY (a case an earlier batch opened fails it, and the rebuild gives the
        batch to ``apply``), then sessions and placements, which read the beneficiary from
        the cases' table as the live path does. Gives the batch back to ``apply`` where that
        order would differ: a session or placement before its case's ``CaseOpened`` in the
        same batch.

        The cases went as seven column arrays through ``unnest``: asyncpg asks each element
        of an array parameter whether it is an array itself (``isinstance`` against
        ``collections.abc``, a Python call each, two for a text): ten calls a case, where
        COPY sends each field straight through its codec."""
        rows: dict[str, list[tuple[Any, ...]]] = {OPENED: [], SESSION: [], PLACED: []}
        opened: set[UUID] = set()
        waiting: set[UUID] = set()  # cases a session or placement read before any opening
        for e in events:
            if (applied := self._row(e)) is None:
                continue
            sql, row = applied
            assert e.case_id is not None
            if sql == OPENED:
                if e.case_id in waiting:
                    raise LaterInBatch(e.case_id)
                if e.case_id in opened:
                    continue  # opened twice in the batch (a duplicate): the first is kept
                opened.add(e.case_id)
            elif e.case_id not in opened:
                waiting.add(e.case_id)
            rows[sql].append(row)
        cases, sessions, placements = rows[OPENED], rows[SESSION], rows[PLACED]
        await copy_records(conn, "fig_people_cases", CASE_COLUMNS, cases)
        if sessions:
            await conn.execute(
                "INSERT INTO fig_guidance_sessions (session_id, case_id, center_id,"
                " counter_id, held_on, beneficiary_id) SELECT s, c, ce, co, h,"
                " (SELECT beneficiary_id FROM fig_people_cases WHERE case_id = t.c) FROM"
                " unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::date[])"
                " WITH ORDINALITY AS t(s, c, ce, co, h, n) ORDER BY n"
                " ON CONFLICT (session_id) DO NOTHING", *zip(*sessions, strict=True))
        if placements:
            await conn.execute(
                "INSERT INTO fig_placements (case_id, center_id, counter_id, placed_on,"
                " employer_type, beneficiary_id) SELECT c, ce, co, o, et,"
                " (SELECT beneficiary_id FROM fig_people_cases WHERE case_id = t.c) FROM"
                " unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[])"
                " WITH ORDINALITY AS t(c, ce, co, o, et, n) ORDER BY n"
                " ON CONFLICT (case_id) DO NOTHING", *zip(*placements, strict=True))


class LaterInBatch(Exception):
    """A session or placement came before its case's ``CaseOpened`` in one batch."""


READ_MODEL = ReadModel(
    service="feedback", consumer=CONSUMER,
    handler=lambda settings: PeopleProjection(settings.tz), ddl=DDL,
    subjects=lambda settings: subjects(settings.subject_prefix),
    keys={"fig_people_cases": "case_id", "fig_guidance_sessions": "case_id",
          "fig_placements": "case_id"},
    # Rows are found by case or session only: a rebuild makes the day indexes last.
    built_after=frozenset({"fig_people_cases_opened", "fig_guidance_held",
                           "fig_placements_on"}),
)
"""What ``sixstep rebuild feedback.people`` folds the log with."""


# -- the figures --------------------------------------------------------------------------------


class CounterPeople(Public):
    """One studio or counter's employment aid in the period."""

    counter_id: str
    guidance_visits: int
    people_placed: int


class PeopleFigures(Public):
    """Beneficiaries and employment aid at one center (or all), days ``date_from`` to
    ``date_to`` inclusive (either open)."""

    center_id: str | None
    date_from: date | None
    date_to: date | None
    beneficiaries: int
    cases: int
    cases_acting_for: int
    guidance_visits: int
    people_placed: int
    counters: list[CounterPeople]


@dataclass(frozen=True)
class PeopleQuery:
    center_id: str | None
    date_from: date | None
    date_to: date | None


def _where(column: str, q: PeopleQuery) -> tuple[str, list[object]]:
    return (f"($1::text IS NULL OR center_id = $1) AND ($2::date IS NULL OR {column} >= $2)"
            f" AND ($3::date IS NULL OR {column} <= $3)",
            [q.center_id, q.date_from, q.date_to])


async def people_figures(pool: asyncpg.Pool, q: PeopleQuery) -> PeopleFigures:
    """``beneficiaries``: residents a case was opened for (distinct; 代办 counts the
    beneficiary, never the applicant); ``cases_acting_for``: cases applied for by another
    resident; ``guidance_visits``: sessions held (人次); ``people_placed``: residents placed
    (distinct, also across counters in the total)."""
    where, args = _where("opened_on", q)
    cases = await pool.fetchrow(
        "SELECT count(*) AS cases, count(DISTINCT beneficiary_id) AS beneficiaries,"
        " count(*) FILTER (WHERE applicant_id <> beneficiary_id) AS acting_for"
        f" FROM fig_people_cases WHERE {where}", *args)
    where_s, args_s = _where("held_on", q)
    visits = {r["counter_id"]: r["n"] for r in await pool.fetch(
        f"SELECT counter_id, count(*) AS n FROM fig_guidance_sessions WHERE {where_s}"
        " GROUP BY counter_id", *args_s)}
    where_p, args_p = _where("placed_on", q)
    placed = {r["counter_id"]: r["n"] for r in await pool.fetch(
        f"SELECT counter_id, count(DISTINCT beneficiary_id) AS n FROM fig_placements"
        f" WHERE {where_p} GROUP BY counter_id", *args_p)}
    total_placed = await pool.fetchval(
        f"SELECT count(DISTINCT beneficiary_id) FROM fig_placements WHERE {where_p}", *args_p)
    counters = [CounterPeople(counter_id=c, guidance_visits=visits.get(c, 0),
                              people_placed=placed.get(c, 0))
                for c in sorted({*visits, *placed})]
    return PeopleFigures(center_id=q.center_id, date_from=q.date_from, date_to=q.date_to,
                         beneficiaries=cases["beneficiaries"], cases=cases["cases"],
                         cases_acting_for=cases["acting_for"],
                         guidance_visits=sum(visits.values()), people_placed=total_placed,
                         counters=counters)
