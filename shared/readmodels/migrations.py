"""A service's read-model tables: idempotent DDL, applied once at start under an advisory lock
(replicas starting together take turns)."""

from __future__ import annotations

import asyncpg


async def run_migrations(pool: asyncpg.Pool, schema: str, statements: list[str]) -> None:
    """Apply a service's read-model DDL under an advisory lock (idempotent statements only)."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"sixstep-migrate:{schema}")
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))",
                               f"sixstep-migrate:{schema}")
