"""The release after stop 52 starts on a center's database of the release before: the
clerks' and teams' worklist indexes are replaced (``followups_clerk`` and
``followups_team`` dropped, ``followups_of_clerk`` and ``followups_of_team`` built), with
two replicas starting at the same moment, and a clerk's worklist is still read through
an index. The old release's DDL is today's with its two indexes as they stood at 8022fffe^1."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.followup import queries
from services.followup.domain import WorkDay
from services.followup.projections import DDL
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.settings import Settings

#: The release before's clerk and team indexes, as its DDL made them.
OLD_INDEXES = [
    "CREATE INDEX IF NOT EXISTS followups_clerk ON followups (center_id, assigned_clerk, due_on)"
    " WHERE status IN ('scheduled', 'due', 'missed', 'escalated')",
    "CREATE INDEX IF NOT EXISTS followups_team ON followups (center_id, assigned_team, due_on)"
    " WHERE status IN ('scheduled', 'due', 'missed', 'escalated')"]


def _old_ddl() -> list[str]:
    """The release before's worklist DDL: today's without the new indexes and the drops of
    the old ones, with the old ones instead."""
    kept = [s for s in DDL if not any(n in s for n in (
        "followups_of_clerk", "followups_of_team", "followups_clerk", "followups_team"))]
    return [*kept, *OLD_INDEXES]


class _Explained:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.indexes: list[set[str]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        plan = json.loads(await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
        found, nodes = set(), [plan[0]["Plan"]]
        while nodes:
            node = nodes.pop()
            nodes.extend(node.get("Plans", []))
            found.add(node.get("Index Name") or node["Node Type"])
        self.indexes.append(found)
        return []


async def test_two_replicas_of_the_new_release_start_on_the_old_indexes_at_once(
        settings: Settings) -> None:
    schema = f"{settings.schema_prefix}upgrade_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    pools = [await create_pool(settings, schema, min_size=1, max_size=2) for _ in range(3)]
    try:
        await run_migrations(pools[0], schema, _old_ddl())
        await conn.execute(f'SET search_path TO "{schema}", public')
        await conn.execute(
            "INSERT INTO followups (follow_up_id, center_id, reason, priority, status, due_at,"
            " due_on, assigned_clerk, assigned_team, source, scheduled_at, updated_at,"
            " version, position) SELECT gen_random_uuid(), 'C' || (i % 20), 'x', 'normal',"
            " (ARRAY['scheduled', 'due', 'missed', 'completed'])[1 + i % 4],"
            " timestamptz '2026-12-20 02:00Z' + (i % 60) * interval '1 day',"
            " date '2026-12-20' + (i % 60), CASE WHEN i % 5 <> 0 THEN 'clerk-' || (i % 97) END,"
            " CASE WHEN i % 5 = 0 THEN 'team-' || (i % 3) END, 's', now(), now(), 1, i"
            " FROM generate_series(1, 20000) i")
        before = {r[0] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}
        assert {"followups_clerk", "followups_team"} <= before
        await asyncio.gather(*(run_migrations(p, schema, DDL) for p in pools[1:]))
        after = {r["indexname"]: r["indisvalid"] for r in await conn.fetch(
            "SELECT c.relname AS indexname, i.indisvalid FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = $1", schema)}
        assert "followups_clerk" not in after and "followups_team" not in after, after
        assert after["followups_of_clerk"] and after["followups_of_team"], after
        await conn.execute("ANALYZE followups")
        explained = _Explained(conn)
        # Sun 20 Dec 2026 in Shanghai, the worklist's day.
        day = WorkDay(date(2026, 12, 20), datetime(2026, 12, 18, 10, tzinfo=UTC),
                      datetime(2026, 12, 21, 10, tzinfo=UTC))
        await queries.worklist(explained, day, "C3", "assigned_clerk = $2", "clerk-3", 14, 200)
        for found in explained.indexes:
            assert "followups_of_clerk" in found and "Seq Scan" not in found, found
    finally:
        for pool in pools:
            await pool.close()
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
