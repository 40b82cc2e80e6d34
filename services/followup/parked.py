"""Parked rules: a rule whose date the working-day calendar cannot work out, kept and shown.

A rule from another service's event (a deadline reminder, a post-resolution check, a
rectification follow-up) needs a day the calendar does not cover: a year past the provisional
range (``calendar_provisional_years`` after the last official schedule). It is never run on a
guessed date and never lost: the event is kept in ``parked_rules`` and applied again when the
calendar grows (at start, and on ``POST /ops/calendar/reload``). Parked rules are visible:
``GET /parked-rules`` (a center's supervisor, or ops), a count on the supervisor's board, the
``sixstep_parked_rules`` gauge, and ``/ready`` answering ``degraded`` with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog
from pydantic import BaseModel, Field

from shared.contracts import Envelope

log = structlog.get_logger("sixstep.followup.parked")

DDL = [
    "CREATE TABLE IF NOT EXISTS parked_rules ("
    " event_id uuid PRIMARY KEY, type text NOT NULL, envelope jsonb NOT NULL,"
    " reason text NOT NULL, parked_at timestamptz NOT NULL DEFAULT now())",
    "ALTER TABLE parked_rules ADD COLUMN IF NOT EXISTS center_id text",
    "ALTER TABLE parked_rules ADD COLUMN IF NOT EXISTS case_id uuid",
    "ALTER TABLE parked_rules ADD COLUMN IF NOT EXISTS year int",
    "UPDATE parked_rules SET center_id = envelope->>'center_id' WHERE center_id IS NULL",
    "CREATE INDEX IF NOT EXISTS parked_rules_center ON parked_rules (center_id, parked_at)",
    # a plan step's link carries its case in its payload only (a plan's events name no
    # case): parked by a release before, it was listed with none until retried
    "UPDATE parked_rules SET case_id = (envelope->'payload'->>'case_id')::uuid"
    " WHERE case_id IS NULL AND type = 'PlanCaseLinked'"
    " AND envelope->'payload'->>'case_id' IS NOT NULL",
]


class ParkedRulePublic(BaseModel):
    event_id: UUID = Field(description="The upstream event whose rule waits")
    type: str
    center_id: str | None
    case_id: UUID | None
    year: int | None = Field(description="The year the calendar does not cover")
    reason: str
    parked_at: datetime


class ParkedRulesPublic(BaseModel):
    count: int
    items: list[ParkedRulePublic]


async def park(conn: asyncpg.Connection, e: Envelope, reason: str, year: int | None) -> None:
    log.error("rule.parked", event_id=str(e.event_id), type=e.type, center_id=e.center_id,
              year=year, reason=reason)
    await conn.execute(
        "INSERT INTO parked_rules (event_id, type, envelope, reason, center_id, case_id, year)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (event_id) DO UPDATE SET reason = EXCLUDED.reason, year = EXCLUDED.year",
        e.event_id, e.type, orjson.dumps(e.model_dump(mode="json")).decode(), reason,
        e.center_id, case_of(e), year)


def case_of(e: Envelope) -> UUID | None:
    """The case a parked rule is about: its envelope's, or the case a plan step's link
    (``PlanCaseLinked``, whose plan names none on its envelope) links it to."""
    if e.case_id is None and e.type == "PlanCaseLinked" and e.payload.get("case_id"):
        return UUID(str(e.payload["case_id"]))
    return e.case_id


async def unpark(conn: asyncpg.Connection, event_id: UUID) -> None:
    await conn.execute("DELETE FROM parked_rules WHERE event_id = $1", event_id)


async def parked_envelopes(conn: asyncpg.Connection) -> list[Envelope]:
    # A batch's rules are parked at one instant (its transaction's): in the log's order
    # among them (a plan step before the link parked behind it), not by event id.
    rows = await conn.fetch("SELECT envelope::text AS envelope FROM parked_rules"
                            " ORDER BY parked_at, envelope->>'service',"
                            " (envelope->>'position')::bigint, event_id")
    return [Envelope.model_validate(orjson.loads(r["envelope"])) for r in rows]


async def count(pool: asyncpg.Pool | asyncpg.Connection, center_id: str | None = None) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM parked_rules WHERE ($1::text IS NULL OR center_id = $1)",
        center_id)


async def listing(pool: asyncpg.Pool, center_id: str | None, limit: int) -> ParkedRulesPublic:
    rows = await pool.fetch(
        "SELECT event_id, type, center_id, case_id, year, reason, parked_at FROM parked_rules"
        " WHERE ($1::text IS NULL OR center_id = $1) ORDER BY parked_at, event_id LIMIT $2",
        center_id, limit)
    return ParkedRulesPublic(count=await count(pool, center_id),
                             items=[ParkedRulePublic(**dict(r)) for r in rows])


async def degradation(pool: asyncpg.Pool) -> list[str]:
    """What /ready says while rules are parked (the service still serves: 200 degraded)."""
    n = await count(pool)
    if not n:
        return []
    years: list[Any] = [r["year"] for r in await pool.fetch(
        "SELECT DISTINCT year FROM parked_rules WHERE year IS NOT NULL ORDER BY year")]
    return [f"{n} follow-up rule(s) parked: they need a day in "
            f"{', '.join(map(str, years)) or 'a year'} that the working-day calendar does not "
            "cover (GET /parked-rules); add the official schedules (holidays file) and "
            "`sixstep calendar reload`"]
