"""The clerk opens a returning resident's follow-ups (``GET /followups?resident_id=``, no
status): the worklist's table is read through an index, not from end to end. Before, the
resident's index held open follow-ups only, and the list read all 100,000 rows of a busy
center's table to find a resident's few (58-73 ms a call, ``benchmarks/README.md``).

The plan is asked with sequential scans priced out (``enable_seqscan = off``): a query that
can use an index then does, one that cannot still scans, whatever the table's size."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
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


class _Analyzed:
    """Stands where ``queries`` expects a pool: runs the query it is given with EXPLAIN
    ANALYZE and counts the rows read from ``followups`` (returned or filtered out)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.rows_read = 0
        self.plan: Any = None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.plan = json.loads(await self.conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args))
        nodes = [self.plan[0]["Plan"]]
        while nodes:
            node = nodes.pop()
            nodes.extend(node.get("Plans", []))
            if node.get("Relation Name") == "followups":
                self.rows_read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                                   + node.get("Rows Removed by Index Recheck", 0)) \
                    * node["Actual Loops"]
        return []


@contextlib.asynccontextmanager
async def _tables(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The worklist's tables in the test's schema, on a connection that prices sequential
    scans out (``enable_seqscan = off``)."""
    schema = settings.schema_for("followup")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, DDL)
        await conn.execute("SET enable_seqscan = off")
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_a_residents_follow_ups_of_every_status_are_found_through_an_index(
        settings: Settings) -> None:
    async with _tables(settings) as conn:
        explained = _Explained(conn)
        resident = uuid.uuid4()
        for given in ({"resident_id": resident}, {"resident_id": resident, "status": "done"},
                      {"case_id": uuid.uuid4()}, {"source_id": uuid.uuid4()},
                      {"status": "missed"}):
            await queries.follow_ups(explained, {"case_id": None, "resident_id": None,  # type: ignore[arg-type]
                                                 "source_id": None, "status": None, **given},
                                     "SH-PD-HUAMU", 100)
        for given, plan in zip(("resident", "resident and status", "case", "source",
                                "status alone"),
                               explained.plans, strict=True):
            assert "Seq Scan" not in plan, (given, plan)
        # A center's missed follow-ups alone (no resident, no clerk), newest due first: read
        # in that order off an index, the first page without sorting every missed one. It
        # read the table, or the clerks' index, and sorted it all (~70 ms at 100k rows).
        assert '"Sort"' not in explained.plans[-1], explained.plans[-1]



async def test_every_centers_missed_follow_ups_are_read_through_an_index(
        settings: Settings) -> None:
    """Every center's missed follow-ups (the list with no center; no staff token reaches it
    over HTTP today, staff being of one center): each center's newest off the (center,
    status, due) index, not the whole table read and sorted, as it was until stop 49.
    Answered the same as a scan would: three centers' rows, newest due first, at most
    ``limit``."""
    async with _tables(settings) as conn:
        explained = _Explained(conn)
        await queries.follow_ups(explained, {"case_id": None, "resident_id": None,  # type: ignore[arg-type]
                                             "source_id": None, "status": "missed"}, None, 100)
        [plan] = explained.plans
        assert "Seq Scan" not in plan, plan

        await conn.execute("SET enable_seqscan = on")
        await conn.executemany(
            "INSERT INTO followups (follow_up_id, center_id, reason, priority, status, due_at,"
            " due_on, basis, source, scheduled_at, updated_at, version, position)"
            " VALUES ($1, $2, 'deadline_reminder', 'normal', $3, $4, $5, 'official',"
            " 'rule', $4, $4, 1, 1)",
            [(uuid.uuid4(), center, status, datetime(2026, 12, day, 2, tzinfo=UTC),
              date(2026, 12, day))
             for center in ("SH-PD-HUAMU", "SH-PD-ZHANGJIANG", "SH-PD-LUJIAZUI")
             for day in range(1, 21) for status in ("missed", "scheduled")])
        given = {"case_id": None, "resident_id": None, "source_id": None, "status": "missed"}
        page = await queries.follow_ups(conn, given, None, 5)  # type: ignore[arg-type]
        dues = [(f.due_at, f.center_id) for f in page.items]
        assert [d.day for d, _ in dues] == [20, 20, 20, 19, 19]
        assert all(f.status == "missed" for f in page.items)
        assert dues == sorted(dues, key=lambda d: d[0], reverse=True)
        # What it read of the table: each center's first page and the skip to the next
        # center, not the 60 missed rows (nor the 120 rows) of the table.
        analyzed = _Analyzed(conn)
        await queries.follow_ups(analyzed, given, None, 5)  # type: ignore[arg-type]
        assert analyzed.rows_read <= 3 * 5 + 4 + 4, analyzed.plan

