"""The vault's keys at start: the bucket secrets created once, re-wrapped after a master key
rotation, and residents stored by the first vault moved into buckets (once).

The first vault wrapped each data key directly with the master key and found residents by an
HMAC of the ID number; an erased row's earlier version kept both in a dead tuple. Moving on:
each live row's data key is re-wrapped under its bucket's KEK and its lookup hash replaced by
an ID tag; the old columns are dropped and the table rewritten (``VACUUM FULL``), so the
master-wrapped keys of earlier versions are gone from its file. Each row moved is marked for
the log (``pending_event``): residents registered before consent and erasure went on the bus
get their ``ConsentChanged`` (or ``ResidentErased``) once, from the application's sweep.
"""

from __future__ import annotations

import asyncpg
import orjson
import structlog

from services.intake.sealing import Sealer
from services.intake.vault import Vault, rewrite_key_table
from shared.readmodels.migrations import MIGRATION_TIMEOUT_S

log = structlog.get_logger("sixstep.vault")

BATCH = 500

#: The client's wait for each statement of the move: a migration's, not the pool's
#: ``command_timeout`` (DB_STATEMENT_TIMEOUT_S and ``CLIENT_GRACE_S``).
WAIT_S = MIGRATION_TIMEOUT_S


async def prepare(vault: Vault, configured_buckets: int) -> None:
    """Run once per start, one replica at a time (an advisory lock)."""
    async with vault.pool.acquire() as conn:
        # A start-up migration, as shared.readmodels.migrations: no DB_STATEMENT_TIMEOUT_S
        # (a replica waits its turn behind another's move of a large vault), neither
        # PostgreSQL's nor the pool's client wait (its command_timeout) on any of its
        # statements (``timeout=WAIT_S`` on each): given up on
        # half-way, the column drop done and the VACUUM FULL not, no later start took the
        # old keys' file away.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SET lock_timeout = 0")  # the pool's is just below the first
        await conn.execute("SELECT pg_advisory_lock(hashtext('sixstep-vault-keys'))",
                           timeout=WAIT_S)
        try:
            vault.buckets = await _ensure_buckets(conn, vault.sealer, configured_buckets)
            await _rewrap_after_rotation(conn, vault.sealer)
            if await _has_column(conn, "residents", "data_key"):
                await _move_into_buckets(conn, vault)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('sixstep-vault-keys'))",
                               timeout=WAIT_S)


async def _ensure_buckets(conn: asyncpg.Connection, sealer: Sealer, configured: int) -> int:
    stored: int = await conn.fetchval("SELECT count(*) FROM vault_key_buckets", timeout=WAIT_S)
    if stored == 0:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "vault_key_buckets", columns=["bucket", "secret"],
                records=[(b, sealer.wrap_secret(b, sealer.new_secret()))
                         for b in range(configured)], timeout=WAIT_S)
        log.info("vault.buckets_created", buckets=configured)
        return configured
    if stored != configured:
        log.warning("vault.buckets_fixed", stored=stored, configured=configured,
                    hint="VAULT_KEY_BUCKETS only counts when the vault is created; "
                         "the stored number stays")
    return stored


async def _rewrap_after_rotation(conn: asyncpg.Connection, sealer: Sealer) -> None:
    """Bucket secrets wrapped by an older master key are wrapped by the current one, and the
    key table rewritten, so the old master key opens nothing left in the database."""
    rows = await conn.fetch("SELECT secret FROM vault_key_buckets", timeout=WAIT_S)
    if all(sealer.wrapped_by_current(r["secret"]) for r in rows):
        return  # the common start: no lock taken
    async with conn.transaction():
        await conn.execute("LOCK TABLE vault_key_buckets IN ACCESS EXCLUSIVE MODE", timeout=WAIT_S)
        keys = {r["bucket"]: r["secret"] for r in await conn.fetch(
            "SELECT bucket, secret FROM vault_key_buckets", timeout=WAIT_S)}
        stale = [b for b, wrapped in keys.items() if not sealer.wrapped_by_current(wrapped)]
        if not stale:
            return
        for bucket in stale:
            keys[bucket] = sealer.wrap_secret(bucket, sealer.unwrap_secret(bucket, keys[bucket]))
        await rewrite_key_table(conn, keys)
    log.info("vault.master_key_rotated", buckets=len(stale))


async def _has_column(conn: asyncpg.Connection, table: str, column: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = $1 AND column_name = $2)", table, column,
        timeout=WAIT_S))


async def _move_into_buckets(conn: asyncpg.Connection, vault: Vault) -> None:
    sealer = vault.sealer
    moved = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT resident_id, data_key, id_number FROM residents"
                " WHERE data_key IS NOT NULL AND erased_at IS NULL LIMIT $1 FOR UPDATE",
                BATCH, timeout=WAIT_S)
            if not rows:
                break
            secrets = {r["bucket"]: r["secret"] for r in await conn.fetch(
                "SELECT bucket, secret FROM vault_key_buckets", timeout=WAIT_S)}
            updates = []
            for row in rows:
                rid: bytes = row["resident_id"].bytes
                data_key = sealer.unwrap_legacy(rid, row["data_key"])
                id_number = orjson.loads(sealer.open(data_key, rid, "id_number",
                                                     row["id_number"]))
                bucket = sealer.bucket_of(id_number, vault.buckets)
                secret = sealer.unwrap_secret(bucket, secrets[bucket])
                updates.append((row["resident_id"], bucket, sealer.id_tag(secret, id_number),
                                sealer.wrap_data_key(secret, bucket, rid, data_key)))
            await conn.executemany(
                "UPDATE residents SET key_bucket = $2, id_tag = $3, wrapped_key = $4,"
                " data_key = NULL, id_hash = NULL, pending_event = coalesce(pending_event,"
                " 'consent'), pending_actor = coalesce(pending_actor, registered_by)"
                " WHERE resident_id = $1", updates, timeout=WAIT_S)
            moved += len(updates)
    async with conn.transaction():
        erased = await conn.execute(
            "UPDATE residents SET pending_event = 'erased',"
            " pending_actor = coalesce(erased_by, 'system')"
            " WHERE erased_at IS NOT NULL AND pending_event IS NULL", timeout=WAIT_S)
        await conn.execute("ALTER TABLE residents DROP COLUMN data_key, DROP COLUMN id_hash",
                           timeout=WAIT_S)
    # The rows' earlier versions (master-wrapped keys, lookup hashes) go with the old file.
    await conn.execute("VACUUM FULL residents", timeout=WAIT_S)
    # pg_statistic may hold sample values ANALYZE took from the old columns before their
    # statistics were turned off; their rows went with the columns, the dead tuples go here.
    if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                           timeout=WAIT_S):
        await conn.execute("VACUUM FULL pg_catalog.pg_statistic", timeout=WAIT_S)
    else:
        log.warning("vault.statistics_not_rewritten",
                    hint="a superuser should run VACUUM FULL pg_catalog.pg_statistic once")
    log.info("vault.moved_into_buckets", residents=moved, erased=erased)
