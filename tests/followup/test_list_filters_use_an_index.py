"""The clerk opens a returning resident's follow-ups (``GET /followups?resident_id=``, no
status): the worklist's table is read through an index, not from end to end. Before, the
resident's index held open follow-ups only, and the list read all 100,000 rows of a busy
center's table to find a resident's few (58-73 ms a call, ``benchmarks/README.md``).

The plan is asked with sequential scans priced out (``enable_seqscan = off``): a query that
can use an index then does, one that cannot still scans, whatever the table's size."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from services.followup import queries
from services.followup.projections import DDL
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings


class _Explained:
    """Stands where ``queries`` expects a pool: keeps the plan of the query it is given."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        plan = json.loads(await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
        self.plans.append(json.dumps(plan))
        return []


async def test_a_residents_follow_ups_of_every_status_are_found_through_an_index(
        settings: Settings) -> None:
    schema = settings.schema_for("followup")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, DDL)
        await conn.execute("SET enable_seqscan = off")
        explained = _Explained(conn)
        resident = uuid.uuid4()
        for given in ({"resident_id": resident}, {"resident_id": resident, "status": "done"},
                      {"case_id": uuid.uuid4()}, {"source_id": uuid.uuid4()}):
            await queries.follow_ups(explained, {"case_id": None, "resident_id": None,  # type: ignore[arg-type]
                                                 "source_id": None, "status": None, **given},
                                     "SH-PD-HUAMU", 100)
        for given, plan in zip(("resident", "resident and status", "case", "source"),
                               explained.plans, strict=True):
            assert "Seq Scan" not in plan, (given, plan)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
