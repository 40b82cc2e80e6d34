"""The hints read model (``resident_hints``, part of intake's read model): one row per hint
(an item an eligibility rule suggested to a resident at a center), its status and when.

Every hint event carries the hint's identity (resident, rule and version, item), so whichever
of its events arrives first makes the row; the one with the highest aggregate version decides
the status, and the showing's moment is kept whenever it arrives. The live handler and the
rebuild's copy path fold a batch the same way and write it with the same upsert, so both leave
the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from shared.contracts import Envelope

TYPES = {"HintShown": "shown", "HintTaken": "taken", "HintDismissed": "dismissed"}

DDL = [
    "CREATE TABLE IF NOT EXISTS resident_hints ("
    " hint_id uuid PRIMARY KEY, center_id text NOT NULL, resident_id uuid NOT NULL,"
    " rule_id text NOT NULL, rule_version int NOT NULL, service_item text NOT NULL,"
    " status text NOT NULL, shown_at timestamptz, decided_at timestamptz, case_id uuid,"
    " version int NOT NULL)",
    "CREATE INDEX IF NOT EXISTS resident_hints_resident ON resident_hints (resident_id)",
    "CREATE INDEX IF NOT EXISTS resident_hints_item ON resident_hints (service_item)",
]

COLUMNS = ("hint_id", "center_id", "resident_id", "rule_id", "rule_version", "service_item",
           "status", "shown_at", "decided_at", "case_id", "version")

UPSERT = (
    f"INSERT INTO resident_hints AS t ({', '.join(COLUMNS)}) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (hint_id) DO UPDATE SET"
    " shown_at = COALESCE(t.shown_at, EXCLUDED.shown_at),"
    " status = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.status ELSE t.status END,"
    " decided_at = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.decided_at"
    " ELSE t.decided_at END,"
    " case_id = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.case_id ELSE t.case_id END,"
    " version = GREATEST(t.version, EXCLUDED.version)")


def _row(e: Envelope) -> dict[str, Any]:
    p = e.payload
    shown = e.type == "HintShown"
    return {"hint_id": e.aggregate_id, "center_id": e.center_id,
            "resident_id": UUID(p["resident_id"]), "rule_id": p["rule_id"],
            "rule_version": p["rule_version"], "service_item": p["service_item"],
            "status": TYPES[e.type], "shown_at": e.occurred_at if shown else None,
            "decided_at": None if shown else e.occurred_at,
            "case_id": UUID(p["case_id"]) if p.get("case_id") else None,
            "version": e.aggregate_version}


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What the upsert does, in memory."""
    out = dict(new) if new["version"] > old["version"] else dict(old)
    out["shown_at"] = old["shown_at"] or new["shown_at"]
    out["version"] = max(old["version"], new["version"])
    return out


async def upsert(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Fold a batch's hint events and write them (live and rebuild alike)."""
    rows: dict[UUID, dict[str, Any]] = {}
    for e in events:
        if e.service != "intake" or e.type not in TYPES:
            continue
        row = _row(e)
        rows[row["hint_id"]] = _merge(rows[row["hint_id"]], row) if row["hint_id"] in rows \
            else row
    if rows:
        await conn.executemany(UPSERT, [tuple(r[c] for c in COLUMNS) for r in rows.values()])
