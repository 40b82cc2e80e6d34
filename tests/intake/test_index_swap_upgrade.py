"""The upgrade that swaps intake's ``cases_resident`` for ``cases_resident_center``, as the
runbook has ops do it on a large table: the new index built by hand ``CONCURRENTLY`` first.
A concurrent build that fails (cancelled, the connection lost) leaves its index behind,
INVALID: PostgreSQL keeps it up to date but never reads by it. The start's ``CREATE INDEX IF
NOT EXISTS`` found the name and did nothing, then dropped ``cases_resident``: every read of a
resident's cases (the vault's reach probe among them) was left with no index at all. The
start now builds an invalid index of its DDL again; one still being built is waited for."""

from __future__ import annotations

import asyncio

import asyncpg

from services.intake.projections import DDL
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.support import schema_pool

VALID = ("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
         " WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace")


async def _before_the_upgrade(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """The release before: cases by resident alone, a resident with two cases."""
    await conn.execute("DROP INDEX cases_resident_center")
    await conn.execute("CREATE INDEX cases_resident ON cases (resident_id)")
    await conn.execute(
        "INSERT INTO cases (case_id, center_id, counter_id, clerk_id, channel, service_item,"
        " resident_id, resident_basis, status, stage, opened_at, updated_at, version, position)"
        " SELECT gen_random_uuid(), 'SH-HP-JIAXING', 'window-1', 'clerk-1', 'counter',"
        " 'SA-HARDSHIP-SUBSIDY', '00000000-0000-0000-0000-000000000001', 'registration',"
        " 'resolved', 'feedback', now(), now(), 1, g FROM generate_series(1, 2) g")


async def test_a_failed_concurrent_build_of_the_new_index_is_built_again_at_the_start(
        settings: Settings) -> None:
    async with schema_pool(settings, "swap_failed", DDL) as pool:
        await _before_the_upgrade(pool)
        # Ops' build by hand, failed half way: here a unique one, that the resident's two
        # cases fail, as a cancelled or cut build would leave it.
        try:
            await pool.execute("CREATE UNIQUE INDEX CONCURRENTLY cases_resident_center"
                               " ON cases (resident_id, center_id)")
        except asyncpg.UniqueViolationError:
            pass
        assert await pool.fetchval(VALID, "cases_resident_center") is False

        schema = await pool.fetchval("SELECT current_schema()")
        await run_migrations(pool, schema, DDL)  # the new release's start

        assert await pool.fetchval(VALID, "cases_resident_center") is True
        assert await pool.fetchval(VALID, "cases_resident") is None, "the old one is gone"
        definition = await pool.fetchval(
            "SELECT pg_get_indexdef(to_regclass('cases_resident_center'))")
        assert "UNIQUE" not in definition and "(resident_id, center_id)" in definition


async def test_a_concurrent_build_still_running_at_the_start_is_waited_for_not_dropped(
        settings: Settings) -> None:
    async with schema_pool(settings, "swap_running", DDL) as pool:
        await _before_the_upgrade(pool)
        schema = await pool.fetchval("SELECT current_schema()")
        connect = {"server_settings": {"search_path": schema}}
        writer = await asyncpg.connect(settings.database_url, **connect)
        builder = await asyncpg.connect(settings.database_url, **connect)
        try:
            # An old replica's write in flight holds the concurrent build at its first wait,
            # its index already in the catalog and not valid yet.
            await writer.execute("BEGIN")
            await writer.execute("UPDATE cases SET version = version + 1")
            build = asyncio.ensure_future(builder.execute(
                "CREATE INDEX CONCURRENTLY cases_resident_center"
                " ON cases (resident_id, center_id)"))

            async def blocked_by(pid: int) -> bool:
                return bool(await pool.fetchval(
                    "SELECT count(*) > 0 FROM pg_stat_activity"
                    " WHERE $1 = ANY(pg_blocking_pids(pid))", pid))

            while not await blocked_by(writer.get_server_pid()):
                await asyncio.sleep(0.02)
            assert await pool.fetchval(VALID, "cases_resident_center") is False
            built = await pool.fetchval("SELECT to_regclass('cases_resident_center')::oid")

            async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=1,
                                           server_settings={"search_path": schema}) as own:
                start = asyncio.ensure_future(run_migrations(own, schema, DDL))
                # The start is under way: it waits for the build (the old code: is stuck
                # behind it, or done).
                while not start.done() and not await pool.fetchval(
                        "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid <> ALL($1)"
                        " AND pid <> pg_backend_pid()"
                        " AND datname = current_database() AND (query LIKE"
                        " '%pg_stat_progress_create_index%' OR wait_event_type = 'Lock')",
                        [writer.get_server_pid(), builder.get_server_pid()]):
                    await asyncio.sleep(0.02)
                await writer.execute("COMMIT")
                await build
                await start

            assert await pool.fetchval(VALID, "cases_resident_center") is True
            assert await pool.fetchval(
                "SELECT to_regclass('cases_resident_center')::oid") == built, \
                "ops' build was kept, not dropped and made again"
        finally:
            await writer.close()
            await builder.close()
