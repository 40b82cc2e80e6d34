"""Erasure cannot be undone from the database files: after it, nothing left in any file of the
database (live or dead tuples, indexes, the planner's statistics) opens the erased resident's
data, even for someone holding every secret the service holds.

The attacker here has read the vault's code (both the key formats it has ever used) and holds
``VAULT_MASTER_KEY``: they take every key the vault stored before the erasure that can still be
found in the files, unwrap what the master key unwraps, and try each result on the erased
resident's sealed name, directly and as the secret of a key-encrypting key.
"""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.intake.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import register_resident, running

VAULT_TABLES = ("residents", "vault_key_buckets")


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes | None:
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except (InvalidTag, ValueError):
        return None


def opens(settings: Settings, resident_id: UUID, sealed_name: bytes, found: list[bytes],
          buckets: int) -> str | None:
    """The erased resident's name, if anything ``found`` opens it with the service's secrets."""
    master = _hkdf(settings.vault_master_key.get_secret_value().encode(),
                   b"sixstep-vault-master-v1")
    kid = hashlib.sha256(b"sixstep-vault-kid\x00" + master).digest()[:8]
    rid, name_aad = resident_id.bytes, resident_id.bytes + b"name"
    unwrapped: list[bytes] = []
    for blob in found:
        if blob[:8] != kid:
            continue
        aads = [b"dek\x00" + rid]  # the first vault: data keys under the master key
        aads += [b"sixstep-bucket-secret-v2\x00" + b.to_bytes(4, "big") for b in range(buckets)]
        unwrapped += [k for aad in aads if (k := _decrypt(master, blob[8:], aad)) is not None]
    for key in unwrapped:
        if (name := _decrypt(key, sealed_name, name_aad)) is not None:
            return str(json.loads(name))
        kek = _hkdf(key, b"sixstep-vault-kek-v2")
        for blob in found:
            for b in range(buckets):
                data_key = _decrypt(kek, blob, b"sixstep-dek-v2\x00" + b.to_bytes(4, "big") + rid)
                if data_key and (name := _decrypt(data_key, sealed_name, name_aad)):
                    return str(json.loads(name))
    return None


async def stored_blobs(conn: asyncpg.Connection, schema: str) -> dict[str, bytes]:
    """Every bytea value in the vault's tables: ``"<table>.<column>:<row>" -> bytes``."""
    out: dict[str, bytes] = {}
    for table in VAULT_TABLES:
        columns = [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1"
            " AND table_name = $2 AND data_type = 'bytea'", schema, table)]
        if not columns:
            continue  # a table this vault does not have
        for n, row in enumerate(await conn.fetch(f'SELECT * FROM "{schema}"."{table}"')):
            for column in columns:
                if row[column] is not None:
                    out[f"{table}.{column}:{n}"] = bytes(row[column])
    return out


async def database_files(conn: asyncpg.Connection) -> bytes:
    """Every file of the database's directory, as written to disk (after a checkpoint)."""
    await conn.execute("CHECKPOINT")
    folder = await conn.fetchval(
        "SELECT 'base/' || oid FROM pg_database WHERE datname = current_database()")
    files = await conn.fetch(
        "SELECT path, (pg_stat_file(path, true)).size FROM (SELECT $1 || '/' || name AS path"
        " FROM pg_ls_dir($1) AS name) f", folder)
    parts = []
    for row in files:
        data = row["size"] and await conn.fetchval(
            "SELECT pg_read_binary_file($1, 0, $2, true)", row["path"], row["size"])
        if data:
            parts.append(bytes(data))
    return b"\x00".join(parts)


async def test_nothing_in_the_database_files_opens_an_erased_residents_data(
        settings: Settings) -> None:
    # One bucket: the erased resident shares their bucket secret with every neighbour.
    settings = settings.model_copy(update={"vault_key_buckets": 1})
    schema = settings.schema_for("intake")
    async with running(create_app(settings), role=Role.SUPERVISOR) as desk:
        erased = await register_resident(desk, name="王秀英")
        neighbours = [await register_resident(desk, name=n) for n in ("李建国", "张桂兰")]
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'ANALYZE "{schema}".residents')  # if it can, it samples
            before = await stored_blobs(conn, schema)
            sealed_name = await conn.fetchval(
                f'SELECT name FROM "{schema}".residents WHERE resident_id = $1', UUID(erased))
            assert opens(settings, UUID(erased), sealed_name, list(before.values()),
                         1) == "王秀英", "the attacker's method opens a live resident"

            assert (await desk.delete(f"/residents/{erased}")).status_code == 200
            files = await database_files(conn)
        finally:
            await conn.close()
        left = {where: blob for where, blob in before.items() if blob in files}
        assert opens(settings, UUID(erased), sealed_name, list(left.values()), 1) is None, \
            f"an erased resident's data opens with what is left: {sorted(left)}"

        # The neighbours sharing the bucket lost nothing.
        for resident in neighbours:
            read = await desk.get(f"/residents/{resident}", params={"purpose": "check"})
            assert read.status_code == 200 and read.json()["name"] in ("李建国", "张桂兰")
        gone = await desk.get(f"/residents/{erased}", params={"purpose": "check"})
        assert gone.json()["status"] == "erased"


async def test_the_vaults_keys_never_reach_the_planners_statistics(settings: Settings) -> None:
    settings = settings.model_copy(update={"vault_key_buckets": 64})
    schema = settings.schema_for("intake")
    async with running(create_app(settings), role=Role.CLERK) as desk:
        for _ in range(4):
            await register_resident(desk)
        conn = await asyncpg.connect(settings.database_url)
        try:
            for table in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
                    " AND table_name = ANY($2)", schema, list(VAULT_TABLES)):
                await conn.execute(f'ANALYZE "{schema}"."{table["table_name"]}"')
            sampled = await conn.fetch(
                "SELECT tablename, attname FROM pg_stats WHERE schemaname = $1"
                " AND tablename = ANY($2) AND (most_common_vals IS NOT NULL"
                " OR histogram_bounds IS NOT NULL) AND attname IN (SELECT column_name FROM"
                " information_schema.columns WHERE table_schema = $1 AND data_type = 'bytea')",
                schema, list(VAULT_TABLES))
        finally:
            await conn.close()
        assert [tuple(r) for r in sampled] == []
