"""Which residents each center knows, so that a follow-up planned by hand names only those.

A center knows a resident once intake recorded one of these at it (opaque ids only):

* ``ConsentChanged`` (the envelope's center): the resident registered there, or changed their
  consent at its window, which needs registration there or a presence grant;
* ``CaseOpened``: a case opened there for the resident, or applied for by them (代办);
* ``HintShown``: the counter showed the resident an eligibility hint.

``POST /followups`` with a ``resident_id`` this table does not pair with the body's center is a
404 ``resident_not_found``, the same for an id no center knows: before, it answered a 409 saying
whether another center's resident had been erased or had refused contact, so that a clerk
could learn it by trying ids. An erased resident stays known where they were known (their own
center is told ``resident_erased``, as before): the rows are opaque ids, no personal data.

A case applied for by someone else (代办: ``CaseOpened``'s ``applicant_id`` not its
``resident_id``) also keeps who applied, in ``case_applicants``: a follow-up planned by hand for
that case may name them as well as the resident it is about (``FollowUps.schedule_by_hand``).

Its own consumer reads only those three event types; a new durable starts at the stream's
beginning, so an upgrade from a release without it fills the table by itself (``sixstep
rebuild followup.residents`` builds it again from the log).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from shared.contracts import Envelope
from shared.readmodels.readmodel import ReadModel

CONSUMER = "followup-residents"
TYPES = ("ConsentChanged", "CaseOpened", "HintShown")

DDL = [
    "CREATE TABLE IF NOT EXISTS resident_centers ("
    " resident_id uuid NOT NULL, center_id text NOT NULL,"
    " PRIMARY KEY (resident_id, center_id))",
    # Who applied for a case on its resident's behalf (代办), when another did: opaque ids.
    "CREATE TABLE IF NOT EXISTS case_applicants ("
    " case_id uuid PRIMARY KEY, applicant_id uuid NOT NULL)",
]


def subjects(prefix: str) -> list[str]:
    """Only the events that make a resident known at a center."""
    return [f"{prefix}.intake.{t}.*" for t in TYPES]


def pairs(events: Sequence[Envelope]) -> list[tuple[UUID, str]]:
    """(resident, center) pairs the events make known, first seen first, each once."""
    found: dict[tuple[UUID, str], None] = {}
    for e in events:
        if e.service != "intake" or e.type not in TYPES or e.center_id is None:
            continue
        p = e.payload
        for key in ("resident_id", "applicant_id") if e.type == "CaseOpened" else (
                "resident_id",):
            if p.get(key):
                found.setdefault((UUID(str(p[key])), e.center_id), None)
    return list(found)


def applicants(events: Sequence[Envelope]) -> list[tuple[UUID, UUID]]:
    """(case, applicant) of each case opened by someone for another (代办), once each."""
    found: dict[UUID, UUID] = {}
    for e in events:
        if e.service != "intake" or e.type != "CaseOpened" or e.case_id is None:
            continue
        applicant = e.payload.get("applicant_id")
        if applicant and applicant != e.payload.get("resident_id"):
            found.setdefault(e.case_id, UUID(str(applicant)))
    return list(found.items())


async def _insert_new(conn: asyncpg.Connection, table: str, first: str, second: str,
                      rows: Sequence[tuple[object, object]]) -> None:
    """The pairs ``table`` (its two columns named) does not hold yet, in one statement."""
    if rows:
        ones, others = zip(*rows, strict=True)
        await conn.execute(
            f"INSERT INTO {table} SELECT * FROM unnest($1::{first}[], $2::{second}[])"
            " ON CONFLICT DO NOTHING", list(ones), list(others))


class KnownResidents:
    """Folds the three event types into ``resident_centers`` (an insert of what is new), and
    the cases applied for by another into ``case_applicants``."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        await _insert_new(conn, "resident_centers (resident_id, center_id)", "uuid", "text",
                          pairs(events))
        await _insert_new(conn, "case_applicants (case_id, applicant_id)", "uuid", "uuid",
                          applicants(events))

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        await self.apply(conn, events)  # a row per resident and center: set-based already


async def known_at(pool: asyncpg.Pool, resident_id: UUID, center_id: str) -> bool:
    """Whether intake has recorded the resident at the center (as far as we have read)."""
    return bool(await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM resident_centers WHERE resident_id = $1"
        " AND center_id = $2)", resident_id, center_id))


async def applicant_of_case(pool: asyncpg.Pool, case_id: UUID) -> UUID | None:
    """Who applied for the case on its resident's behalf (None: the resident themselves, no
    one, or not read yet)."""
    found = await pool.fetchval(
        "SELECT applicant_id FROM case_applicants WHERE case_id = $1", case_id)
    return found if found is None else UUID(str(found))


READ_MODEL = ReadModel(
    service="followup", consumer=CONSUMER, handler=lambda _settings: KnownResidents(),
    ddl=DDL, subjects=lambda settings: subjects(settings.subject_prefix),
    # No key columns: its events are partitioned by case and by resident alike, so no one
    # column is the partition key a comparison could pick its rows by.
)
"""What ``sixstep rebuild followup.residents`` folds the log with."""
