"""A connection to the test's PostgreSQL with a read model's tables made by its own DDL in a
schema of the test's (its search path), for tests that drive a projection by hand, and the
counts PostgreSQL keeps of the rows a transaction inserted and updated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from shared.readmodels.readmodel import make_tables
from shared.settings import Settings


async def with_tables(settings: Settings, schema: str, ddl: Sequence[str]
                      ) -> asyncpg.Connection:
    """Connected, the tables made in ``schema`` (the caller closes it)."""
    conn = await asyncpg.connect(settings.database_url)
    await make_tables(conn, schema, ddl)
    return conn


async def written(conn: asyncpg.Connection, table: str) -> tuple[int, int]:
    """(rows inserted, rows updated) in ``table`` by this session's transactions whose counts
    PostgreSQL has not yet flushed to its statistics (the one under way included)."""
    row = await conn.fetchrow("SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables"
                              " WHERE relid = $1::text::regclass", table)
    return (row["n_tup_ins"], row["n_tup_upd"]) if row else (0, 0)


async def rows(conn: asyncpg.Connection, table: str, key: str,
               volatile: Sequence[str] = ("projected_at",)) -> list[dict[str, object]]:
    """Every row of ``table`` but its ``volatile`` columns, by ``key``."""
    found = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
    return [{c: v for c, v in r.items() if c not in volatile} for r in found]


async def column_types(conn: asyncpg.Connection, relation: str) -> dict[str, str]:
    """Each column (field) of a table (composite type) on the search path, its SQL type."""
    return {r["attname"]: r["type"] for r in await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
        " WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum", f'"{relation}"')}


class ParamsSent:
    """A connection that notes how many parameters each statement it runs was given."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.sent: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, statement: str, *args: Any, **kw: Any) -> Any:
        self.sent.append((statement, len(args)))
        return await self._conn.execute(statement, *args, **kw)

    async def fetch(self, statement: str, *args: Any, **kw: Any) -> Any:
        self.sent.append((statement, len(args)))
        return await self._conn.fetch(statement, *args, **kw)
