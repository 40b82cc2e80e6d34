"""A service's read-model tables: idempotent DDL, applied once at start under an advisory lock
(replicas starting together take turns)."""

from __future__ import annotations

import asyncpg

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
            for statement in statements:
                await conn.execute(statement, timeout=MIGRATION_TIMEOUT_S)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))",
                               f"sixstep-migrate:{schema}")
