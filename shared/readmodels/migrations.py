"""A service's read-model tables: idempotent DDL, applied once at start under an advisory lock
(replicas starting together take turns)."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import structlog

from shared.readmodels.bulk import q

log = structlog.get_logger("sixstep.migrations")

#: The client's wait for one migration statement (the pool's own is DB_STATEMENT_TIMEOUT_S).
MIGRATION_TIMEOUT_S = 3600.0


async def run_migrations(pool: asyncpg.Pool, schema: str, statements: list[str]) -> None:
    """Apply a service's read-model DDL under an advisory lock (idempotent statements only)."""
    async with pool.acquire() as conn:
        # Unbounded here (DB_STATEMENT_TIMEOUT_S is for the running service): a replica waits
        # its turn behind another's migration, and an index on a large table takes its time.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SET lock_timeout = 0")  # the pool's is just below the first
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"sixstep-migrate:{schema}",
                           timeout=MIGRATION_TIMEOUT_S)
        try:
            await _settle_concurrent_builds(conn, schema, statements)
            for statement in statements:
                await conn.execute(statement, timeout=MIGRATION_TIMEOUT_S)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))",
                               f"sixstep-migrate:{schema}")




#: ``CREATE [UNIQUE] INDEX IF NOT EXISTS <name>``: the indexes the DDL makes by name.
_CREATES_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s",
                            re.IGNORECASE)
_INVALID = ("SELECT c.relname AS index, i.indrelid AS table FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND NOT i.indisvalid")
_VALID = ("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
          " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
          " AND c.relname = $2")
_BUILDING = "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE relid = $1)"
#: How often a start looks again at a concurrent build it waits for.
BUILD_POLL_S = 1.0


async def _settle_concurrent_builds(conn: asyncpg.Connection, schema: str,
                                    statements: list[str]) -> None:
    """Before the DDL: every index of ``schema`` not valid is a concurrent build (ops' by
    hand, as the runbook says for a large table's new index), still running or failed. One
    running is waited for; one that failed is dropped if the DDL makes it, so that the DDL's
    ``CREATE INDEX IF NOT EXISTS`` builds it again (another is left to whoever made it).

    Until stop 50 neither: ``IF NOT EXISTS`` found a failed build's index and did nothing,
    an index PostgreSQL keeps up but never reads by, and the next statement dropped the one it
    replaced (``cases_resident``: a resident's cases were read with no index at all); and a
    start during a build deadlocked with it (the build waits for every older snapshot, the
    start's DDL, holding one, for the build's table lock), the start or the build failing.

    The wait is a look at ``pg_stat_progress_create_index`` every :data:`BUILD_POLL_S`, each
    its own statement: a transaction waiting on the table's lock would hold a snapshot the
    build waits for in turn."""
    ours = {m[1] for s in statements if (m := _CREATES_INDEX.match(s.strip()))}
    for row in await conn.fetch(_INVALID, schema):
        said = False
        while await conn.fetchval(_BUILDING, row["table"]):
            if not said:
                log.info("migrations.waiting_for_concurrent_build", schema=schema,
                         index=row["index"])
                said = True
            await asyncio.sleep(BUILD_POLL_S)
        if row["index"] in ours and await conn.fetchval(_VALID, schema, row["index"]) is False:
            log.warning("migrations.invalid_index_rebuilt", schema=schema, index=row["index"])
            await conn.execute(f"DROP INDEX IF EXISTS {q(schema)}.{q(row['index'])}",
                               timeout=MIGRATION_TIMEOUT_S)
