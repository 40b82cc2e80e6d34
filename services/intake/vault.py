"""The resident vault: personal data encrypted at rest, one data key per resident, crypto-erasure.

* Each resident gets a random 256-bit **data key**. Every field (name, ID number, phone,
  address, preferred contact channel, consent) is sealed on its own with AES-256-GCM under it,
  with the resident id and the field's name as associated data, so a sealed value cannot be
  moved to another row or field unnoticed.
* The data key is stored only **wrapped** by the master key (``settings.vault_master_key``,
  through HKDF), tagged with the master key's fingerprint; earlier master keys
  (``vault_old_master_keys``) still unwrap, so the master key can be rotated.
* A returning resident is found by a **keyed hash** of the ID number (HMAC-SHA256 under
  ``settings.vault_lookup_key``); the number itself is never stored in clear.
* **Erasure** destroys the wrapped data key and the lookup hash and clears the sealed fields;
  the row keeps only the resident id, its center and when it was erased. Events only ever
  carried the opaque resident id, so every replay and read model goes on working.
* **Audit**: every access to personal data (register, lookup, read, erase, and refusals) is
  recorded in the same transaction as the access: who, with which role and center, when,
  why (the stated purpose), which resident and what came of it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.intake.idnumber import normalize
from shared.auth import Principal
from shared.errors import CommandError, NotFound
from shared.privacy import KnownPerson, redact
from shared.settings import Settings

FIELDS = ("name", "id_number", "phone", "address", "contact_channel", "consent")

DDL = [
    "CREATE TABLE IF NOT EXISTS residents ("
    " resident_id uuid PRIMARY KEY, center_id text NOT NULL, id_hash bytea UNIQUE,"
    " data_key bytea, name bytea, id_number bytea, phone bytea, address bytea,"
    " contact_channel bytea, consent bytea, registered_by text NOT NULL,"
    " registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " erased_at timestamptz, erased_by text)",
    "CREATE TABLE IF NOT EXISTS personal_data_audit ("
    " audit_id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " actor text NOT NULL, role text NOT NULL, actor_center text, action text NOT NULL,"
    " resident_id uuid, resident_center text, purpose text NOT NULL, fields text[] NOT NULL,"
    " outcome text NOT NULL, correlation_id text)",
    "CREATE INDEX IF NOT EXISTS audit_actor_center ON personal_data_audit (actor_center, at)",
    "CREATE INDEX IF NOT EXISTS audit_resident_center"
    " ON personal_data_audit (resident_center, at)",
    "CREATE INDEX IF NOT EXISTS audit_resident ON personal_data_audit (resident_id)",
]


class ResidentErased(CommandError):
    status = 410
    code = "resident_erased"


class VaultForbidden(CommandError):
    status = 403
    code = "forbidden_center"


@dataclass(frozen=True)
class ResidentData:
    name: str
    id_number: str
    phone: str
    address: str
    contact_channel: str
    consent: dict[str, Any]

    def field(self, name: str) -> bytes:
        value = getattr(self, name)
        return orjson.dumps(value)


@dataclass(frozen=True)
class Resident:
    resident_id: UUID
    center_id: str
    registered_at: datetime
    erased_at: datetime | None
    data: ResidentData | None


def _derive(secret: str) -> tuple[bytes, AESGCM]:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"sixstep-vault-master-v1").derive(secret.encode())
    return hashlib.sha256(b"sixstep-vault-kid\x00" + key).digest()[:8], AESGCM(key)


class Sealer:
    """The vault's cryptography, apart from storage (unit-testable, no I/O)."""

    def __init__(self, master: str, old_masters: Sequence[str], lookup_key: str) -> None:
        self._current = _derive(master)
        self._masters = dict([self._current, *(_derive(k) for k in old_masters)])
        self._lookup = lookup_key.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        return cls(settings.vault_master_key.get_secret_value(),
                   [k.get_secret_value() for k in settings.vault_old_master_keys],
                   settings.vault_lookup_key.get_secret_value())

    def lookup_hash(self, id_number: str) -> bytes:
        return hmac.new(self._lookup, b"sixstep-id-v1\x00" + normalize(id_number).encode(),
                        hashlib.sha256).digest()

    def new_data_key(self, resident_id: UUID) -> tuple[bytes, bytes]:
        """(data key, wrapped data key)."""
        key = AESGCM.generate_key(bit_length=256)
        kid, master = self._current
        nonce = os.urandom(12)
        return key, kid + nonce + master.encrypt(nonce, key, b"dek\x00" + resident_id.bytes)

    def unwrap(self, resident_id: UUID, wrapped: bytes) -> bytes:
        master = self._masters.get(wrapped[:8])
        if master is None:
            raise RuntimeError("the data key was wrapped by a master key no longer configured")
        return master.decrypt(wrapped[8:20], wrapped[20:], b"dek\x00" + resident_id.bytes)

    @staticmethod
    def seal(key: bytes, resident_id: UUID, field: str, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        aad = resident_id.bytes + field.encode()
        return nonce + AESGCM(key).encrypt(nonce, plain, aad)

    @staticmethod
    def open(key: bytes, resident_id: UUID, field: str, sealed: bytes) -> bytes:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], resident_id.bytes + field.encode())


@dataclass(frozen=True)
class Access:
    """Who reads and why: becomes one audit row."""

    principal: Principal
    purpose: str
    correlation_id: str | None = None


class Vault:
    """Registration, lookup, reading and erasure of residents, each audited."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer) -> None:
        self.pool = pool
        self.sealer = sealer

    async def _audit(self, conn: asyncpg.Connection, access: Access, action: str,
                     resident_id: UUID | None, resident_center: str | None,
                     fields: Sequence[str], outcome: str) -> None:
        p = access.principal
        await conn.execute(
            "INSERT INTO personal_data_audit (actor, role, actor_center, action, resident_id,"
            " resident_center, purpose, fields, outcome, correlation_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            p.sub, p.role.value, p.center_id, action, resident_id, resident_center,
            redact(access.purpose), list(fields), outcome, access.correlation_id)

    async def register(self, data: ResidentData, access: Access) -> tuple[UUID, bool]:
        """The resident's id, and whether they are new (an ID number already on file
        returns the resident it belongs to; nothing is overwritten)."""
        center = access.principal.center_id
        if center is None:
            raise VaultForbidden("registering a resident needs a token with a center")
        id_hash = self.sealer.lookup_hash(data.id_number)
        resident_id = uuid4()
        key, wrapped = self.sealer.new_data_key(resident_id)
        sealed = [self.sealer.seal(key, resident_id, f, data.field(f)) for f in FIELDS]
        async with self.pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO residents (resident_id, center_id, id_hash, data_key, name,"
                " id_number, phone, address, contact_channel, consent, registered_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (id_hash) DO NOTHING RETURNING resident_id",
                resident_id, center, id_hash, wrapped, *sealed, access.principal.sub)
            if created is None:
                row = await conn.fetchrow(
                    "SELECT resident_id, center_id FROM residents WHERE id_hash = $1", id_hash)
                await self._audit(conn, access, "register", row["resident_id"],
                                  row["center_id"], ["id_number"], "already_on_file")
                return row["resident_id"], False
            await self._audit(conn, access, "register", resident_id, center, list(FIELDS),
                              "registered")
        return resident_id, True

    async def lookup(self, id_number: str, access: Access) -> UUID:
        """The resident id for an ID number (``NotFound`` when nobody has it)."""
        id_hash = self.sealer.lookup_hash(id_number)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT resident_id, center_id FROM residents WHERE id_hash = $1", id_hash)
            await self._audit(conn, access, "lookup", row["resident_id"] if row else None,
                              row["center_id"] if row else None, ["id_number"],
                              "found" if row else "not_found")
        if row is None:
            raise NotFound("no resident with this ID number is on file")
        return row["resident_id"]

    async def _may_read(self, conn: asyncpg.Connection, principal: Principal,
                        resident_id: UUID, center: str) -> bool:
        """Staff see residents registered at their center or with a case there."""
        if principal.center_id is None or principal.center_id == center:
            return True
        return bool(await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE resident_id = $1 AND center_id = $2)",
            resident_id, principal.center_id))

    async def _refused(self, conn: asyncpg.Connection, access: Access, action: str,
                       resident_id: UUID, row: asyncpg.Record | None) -> CommandError | None:
        """Why the caller may not touch this resident (recorded), or None."""
        if row is None:
            await self._audit(conn, access, action, resident_id, None, [], "not_found")
            return NotFound(f"resident {resident_id} not found", id=str(resident_id))
        if not await self._may_read(conn, access.principal, resident_id, row["center_id"]):
            await self._audit(conn, access, action, resident_id, row["center_id"], [],
                              "forbidden")
            return VaultForbidden("this resident has no case at the token's center",
                                  token_center=access.principal.center_id)
        return None

    async def read(self, resident_id: UUID, access: Access) -> Resident:
        # A refusal is raised after the commit, so that its audit row stays.
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM residents WHERE resident_id = $1",
                                      resident_id)
            refused = await self._refused(conn, access, "read", resident_id, row)
            if refused is None:
                erased = row["erased_at"] is not None
                await self._audit(conn, access, "read", resident_id, row["center_id"],
                                  [] if erased else list(FIELDS), "erased" if erased else "read")
        if refused is not None:
            raise refused
        if row["erased_at"] is not None:
            return Resident(resident_id, row["center_id"], row["registered_at"],
                            row["erased_at"], None)
        try:
            key = self.sealer.unwrap(resident_id, row["data_key"])
            values = {f: orjson.loads(self.sealer.open(key, resident_id, f, row[f]))
                      for f in FIELDS}
        except InvalidTag:
            raise RuntimeError(f"resident {resident_id}: sealed data fails its check") from None
        return Resident(resident_id, row["center_id"], row["registered_at"], None,
                        ResidentData(**values))

    async def identity_terms(self, resident_id: UUID) -> KnownPerson | None:
        """The resident's name, phone, ID number and address, for scrubbing the free text
        of a case that names them (``shared.scrubbing``); None when erased or not on file.

        Decrypted as :meth:`read` does, but not audited: the data goes to no person and
        leaves no trace (it lives in memory for the one command that scrubs with it, and is
        never stored or logged), and an audit row per case write would bury the reads the
        trail is for. Who *sees* a resident is still recorded by :meth:`read`."""
        row = await self.pool.fetchrow(
            "SELECT data_key, name, phone, id_number, address FROM residents"
            " WHERE resident_id = $1 AND erased_at IS NULL", resident_id)
        if row is None or row["data_key"] is None:
            return None
        try:
            key = self.sealer.unwrap(resident_id, row["data_key"])
            values = {f: orjson.loads(self.sealer.open(key, resident_id, f, row[f]))
                      for f in ("name", "phone", "id_number", "address")}
        except InvalidTag:
            raise RuntimeError(f"resident {resident_id}: sealed data fails its check") from None
        return KnownPerson(**values)

    async def erase(self, resident_id: UUID, access: Access) -> datetime:
        """Destroy the data key (and with it every sealed field) and the lookup hash."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT center_id, erased_at FROM residents WHERE resident_id = $1 FOR UPDATE",
                resident_id)
            refused = await self._refused(conn, access, "erase", resident_id, row)
        if refused is not None:
            raise refused
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT center_id, erased_at FROM residents WHERE resident_id = $1 FOR UPDATE",
                resident_id)
            if row["erased_at"] is not None:
                await self._audit(conn, access, "erase", resident_id, row["center_id"], [],
                                  "already_erased")
                return row["erased_at"]
            erased_at = await conn.fetchval(
                "UPDATE residents SET data_key = NULL, id_hash = NULL, name = NULL,"
                " id_number = NULL, phone = NULL, address = NULL, contact_channel = NULL,"
                " consent = NULL, erased_at = clock_timestamp(), erased_by = $2"
                " WHERE resident_id = $1 RETURNING erased_at", resident_id, access.principal.sub)
            await self._audit(conn, access, "erase", resident_id, row["center_id"],
                              list(FIELDS), "erased")
        return erased_at

    async def audit_trail(self, center_id: str | None, resident_id: UUID | None,
                          actor: str | None, since: datetime | None, until: datetime | None,
                          before: int | None, limit: int) -> list[dict[str, Any]]:
        """Audit rows of a center (its staff's accesses, and accesses to its residents)."""
        where, args = [], []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if center_id is not None:
            ref = arg(center_id)
            where.append(f"(actor_center = {ref} OR resident_center = {ref})")
        if resident_id is not None:
            where.append(f"resident_id = {arg(resident_id)}")
        if actor is not None:
            where.append(f"actor = {arg(actor)}")
        if since is not None:
            where.append(f"at >= {arg(since)}")
        if until is not None:
            where.append(f"at < {arg(until)}")
        if before is not None:
            where.append(f"audit_id < {arg(before)}")
        sql = ("SELECT audit_id, at, actor, role, actor_center, action, resident_id,"
               " resident_center, purpose, fields, outcome, correlation_id"
               " FROM personal_data_audit")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY audit_id DESC LIMIT {arg(limit)}"
        return [dict(r) for r in await self.pool.fetch(sql, *args)]
