"""``make_tables``: a read model's tables in a schema of one's own, and nowhere else."""

from __future__ import annotations

import asyncpg
import pytest

from shared.readmodels.readmodel import load_read_model, make_tables
from shared.settings import Settings


async def test_tables_for_the_transaction_only_are_refused_outside_one_not_made_in_public(
        settings: Settings) -> None:
    """An analyst's script makes intake's tables for its transaction only (``local=True``,
    as the time travel does) but forgot to start one. PostgreSQL answers ``SET LOCAL`` with
    a warning and keeps the search path: the cases table was made in ``public``, beside
    whatever lives there. Now it is refused and nothing is made."""
    schema = f"{settings.schema_prefix}asof_forgot"
    conn = await asyncpg.connect(settings.database_url)
    try:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await make_tables(conn, schema, load_read_model("intake").ddl, local=True)
        assert await conn.fetchval("SELECT to_regclass('public.cases')") is None
    finally:
        await conn.execute("DROP TABLE IF EXISTS public.cases, public.case_timeline,"
                           " public.resident_hints CASCADE")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
