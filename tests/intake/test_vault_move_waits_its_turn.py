"""The start-up move of the first vault's keys into buckets is not bounded by the pool's
DB_STATEMENT_TIMEOUT_S: its statements that wait for a table (the column drop, the VACUUM FULL
that takes the old keys' file away) wait as long as they must, rather than being given up on
by the client half-way, after which the next start would never take the old file away."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

import shared.readmodels.pool
from services.intake import vault_migration
from services.intake.sealing import Sealer
from services.intake.vault import DDL as VAULT_DDL
from services.intake.vault import Vault
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.intake.test_resident_events import FIRST_VAULT_DDL, first_vault_row
from tests.support import TEST_CENTER, id_number, schema_pool, wait_until


async def test_the_vaults_move_into_buckets_waits_for_a_reader_of_the_residents_table(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pool that gives up on a statement quickly: PostgreSQL after 0.2 s, the client 0.1 s later.
    monkeypatch.setattr(shared.readmodels.pool, "CLIENT_GRACE_S", 0.1)
    hurried = settings.model_copy(update={"db_statement_timeout_s": 0.2})
    schema = f"{settings.schema_prefix}vault_move"
    conn = await asyncpg.connect(settings.database_url)
    reader = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, [FIRST_VAULT_DDL])
        rid, id_hash, wrapped, fields = first_vault_row(settings, id_number(), {
            "contact": True, "surveys": True})
        await conn.execute(
            "INSERT INTO residents VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'clerk-1')",
            rid, TEST_CENTER, id_hash, wrapped, *fields)
        async with schema_pool(hurried, "vault_move", VAULT_DDL) as pool:
            # An analyst's long read of the residents table, open while the service starts.
            await reader.execute("BEGIN")
            await reader.execute(f'LOCK TABLE "{schema}".residents IN ACCESS SHARE MODE')
            moving = asyncio.ensure_future(vault_migration.prepare(
                Vault(pool, Sealer.from_settings(settings)), 16))

            async def dropping_waited_long() -> bool:
                """The column drop has waited for the reader three times as long as the
                pool's client gives a statement, and the move is still on."""
                assert not moving.done(), moving  # it gave up (the old pool's client wait)
                return bool(await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'ALTER TABLE residents DROP COLUMN data_key%'"
                    " AND clock_timestamp() - query_start > interval '900 milliseconds'"))

            await wait_until(dropping_waited_long, timeout=10, what="the drop waiting long")
            await reader.execute("COMMIT")
            await asyncio.wait_for(moving, 10)
        assert not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1"
            " AND table_name = 'residents' AND column_name = 'data_key')", schema)
        assert await conn.fetchval("SELECT key_bucket IS NOT NULL FROM residents") is True
    finally:
        await reader.close()
        await conn.close()
