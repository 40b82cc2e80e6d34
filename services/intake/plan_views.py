"""Intake's plans as read: the ``plans`` and ``plan_steps`` tables, built from the plan events
on the stream (asyncpg), and the reads the routes and the case page make of them.

A plan's events carry no case id (a plan links several cases); their partition key is the
plan's id, which is the key of both tables for a comparison or a time travel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic
from pydantic import Field

from services.intake.plan import Plan
from shared.contracts import Envelope
from shared.readmodels.positions import SomeEvents
from shared.readmodels.public import Elsewhere, Moment, Public, elsewhere, in_reach
from shared.readmodels.readmodel import ReadModel
from shared.settings import Settings

CONSUMER = "intake-plans"
TYPES = ("PlanDrawnUp", "PlanStepAdded", "PlanCaseLinked")

PLAN_EVENTS = SomeEvents("intake", "plans", tuple(get_topic(getattr(Plan, t)) for t in TYPES))
"""The plan events in intake's log: what ``?after=`` waits for on the plans (this consumer
takes only them), found by a partial index (``PLAN_EVENTS.ddl()``, intake's migrations)."""


def subjects(settings: Settings) -> list[str]:
    """The plan events' subjects: the consumer takes nothing else (a tracking row and an
    ack for each of intake's case events, which changed nothing here, were half the work
    of intake's workers' consumers)."""
    return [f"{settings.subject_prefix}.intake.{t}.*" for t in TYPES]

DDL = [
    "CREATE TABLE IF NOT EXISTS plans ("
    " plan_id uuid PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " resident_id uuid NOT NULL, title text NOT NULL, drawn_up_at timestamptz NOT NULL,"
    " drawn_up_by text NOT NULL, version int NOT NULL, position bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS plan_steps ("
    " step_id uuid PRIMARY KEY, plan_id uuid NOT NULL, seq int NOT NULL,"
    " service_item text NOT NULL, effective_on date NOT NULL, timing text NOT NULL,"
    " depends_on uuid, case_id uuid, what text NOT NULL, position bigint NOT NULL)",
    "CREATE INDEX IF NOT EXISTS plan_steps_plan ON plan_steps (plan_id, seq)",
    "CREATE INDEX IF NOT EXISTS plan_steps_case ON plan_steps (case_id)",
    "CREATE INDEX IF NOT EXISTS plans_resident ON plans (resident_id)",
]


class PlanProjection:
    """Applies plan events to ``plans`` and ``plan_steps`` in the consumer's transaction.

    ``copy_apply`` (a rebuild) runs the same statements: plans are a handful per resident,
    never the bulk of a log, so the bulk path is the live one and leaves the same rows."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            if e.service != "intake" or e.type not in TYPES:
                continue
            p = e.payload
            if e.type == "PlanDrawnUp":
                await conn.execute(
                    "INSERT INTO plans (plan_id, center_id, counter_id, resident_id, title,"
                    " drawn_up_at, drawn_up_by, version, position) VALUES ($1, $2, $3, $4, $5,"
                    " $6, $7, $8, $9) ON CONFLICT (plan_id) DO NOTHING",
                    e.aggregate_id, e.center_id, p["counter_id"], UUID(p["resident_id"]),
                    p["title"], e.occurred_at, e.actor, e.aggregate_version, e.position)
                continue
            if e.type == "PlanStepAdded":
                await conn.execute(
                    "INSERT INTO plan_steps (step_id, plan_id, seq, service_item, effective_on,"
                    " timing, depends_on, case_id, what, position) VALUES ($1, $2, $3, $4, $5,"
                    " $6, $7, $8, $9, $10) ON CONFLICT (step_id) DO NOTHING",
                    UUID(p["step_id"]), e.aggregate_id, p["seq"], p["service_item"],
                    date.fromisoformat(p["effective_on"]), p["timing"],
                    UUID(p["depends_on"]) if p.get("depends_on") else None,
                    UUID(p["case_id"]) if p.get("case_id") else None, p["what"], e.position)
            else:  # PlanCaseLinked
                await conn.execute(
                    "UPDATE plan_steps SET case_id = $2, position = $3 WHERE step_id = $1",
                    UUID(p["step_id"]), UUID(p["case_id"]), e.position)
            await conn.execute(
                "UPDATE plans SET version = $2, position = $3 WHERE plan_id = $1"
                " AND version < $2", e.aggregate_id, e.aggregate_version, e.position)

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        await self.apply(conn, events)


READ_MODEL = ReadModel(
    service="intake", consumer=CONSUMER, handler=lambda _settings: PlanProjection(), ddl=DDL,
    subjects=subjects,
    keys={"plans": "plan_id", "plan_steps": "plan_id"},
)
"""What ``sixstep rebuild intake-plans`` folds the log with."""


# -- reads --------------------------------------------------------------------------------------


class PlanStepPublic(Public):
    """One step of a plan, as the resident's timeline lists it."""

    step_id: UUID
    seq: int
    service_item: str
    name_zh: str | None = None
    name_en: str | None = None
    effective_on: date
    timing: str
    depends_on: int | None = None
    case_id: UUID | None
    case_status: str | None = Field(None, description=(
        "The carrying case's status (open, resolved); null while no case carries the step."))
    what: str


class PlanPublic(Public):
    """A plan with its steps in order: what the counter page and the one-time notice list."""

    plan_id: UUID
    center_id: str
    counter_id: str
    resident_id: UUID
    title: str
    drawn_up_at: Moment
    drawn_up_by: str
    version: int
    position: int
    steps: list[PlanStepPublic]


PLAN_COLUMNS = ("plan_id, center_id, counter_id, resident_id, title, drawn_up_at, drawn_up_by,"
                " version, position")
PLAN_IN_REACH = in_reach(PLAN_COLUMNS, "$2")
"""A plan by id: its columns only in the caller's reach (``public.in_reach``)."""


async def _with_steps(pool: asyncpg.Pool, rows: Sequence[asyncpg.Record]) -> list[PlanPublic]:
    if not rows:
        return []
    steps = await pool.fetch(
        "SELECT s.step_id, s.plan_id, s.seq, s.service_item, s.effective_on, s.timing,"
        " d.seq AS depends_on, s.case_id, c.status AS case_status, s.what FROM plan_steps s"
        " LEFT JOIN plan_steps d ON d.step_id = s.depends_on"
        " LEFT JOIN cases c ON c.case_id = s.case_id"
        " WHERE s.plan_id = ANY($1::uuid[]) ORDER BY s.plan_id, s.seq",
        [r["plan_id"] for r in rows])
    out = []
    for r in rows:
        mine = [PlanStepPublic.of({k: v for k, v in s.items() if k != "plan_id"})
                for s in steps if s["plan_id"] == r["plan_id"]]
        out.append(PlanPublic.of(r, steps=mine))
    return out


async def plan(pool: asyncpg.Pool, plan_id: UUID, reach: str | None = None
               ) -> PlanPublic | Elsewhere | None:
    """The plan with its steps, or None. ``reach``: the caller's center (None: every
    center's). Another center's plan comes back as its center alone (``Elsewhere``), for
    the route to refuse as for none: its steps are not read first, nor its row decoded
    (one query more than for a plan nobody has, which timed the answer apart; a plan's id
    is worked out from its center and key)."""
    rows = await pool.fetch(f"SELECT {PLAN_IN_REACH} FROM plans WHERE plan_id = $1",
                            plan_id, reach)
    if rows and (away := elsewhere(rows[0], reach)):
        return away  # its center alone, the row not decoded
    found = await _with_steps(pool, rows)
    return found[0] if found else None


async def plans_of_case(pool: asyncpg.Pool, case_id: UUID) -> list[PlanPublic]:
    """The plans one of whose steps the case carries, oldest first."""
    rows = await pool.fetch(
        f"SELECT {PLAN_COLUMNS} FROM plans WHERE plan_id IN"
        " (SELECT plan_id FROM plan_steps WHERE case_id = $1) ORDER BY drawn_up_at, plan_id",
        case_id)
    return await _with_steps(pool, rows)


async def plans_of_resident(pool: asyncpg.Pool, center_id: str | None,
                            resident_id: UUID) -> list[PlanPublic]:
    """A beneficiary's plans at a center (every center's when ``center_id`` is None)."""
    rows = await pool.fetch(
        f"SELECT {PLAN_COLUMNS} FROM plans WHERE resident_id = $1"
        " AND ($2::text IS NULL OR center_id = $2) ORDER BY drawn_up_at, plan_id",
        resident_id, center_id)
    return await _with_steps(pool, rows)
