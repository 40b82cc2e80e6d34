"""The resident vault: personal data encrypted at rest, center boundaries that hold, erasure
that cannot be undone from the database files.

* **Sealing** (``sealing.py``): each field (name, ID number, phone, address, preferred contact
  channel, consent) is sealed with AES-256-GCM under the resident's own data key, with the
  resident id and the field's name as associated data. The data key is stored only wrapped by
  the KEK of the resident's bucket; the bucket's secret only wrapped by the master key. A
  returning resident is found by an ID tag keyed by the lookup key and the bucket secret.
* **Presence** (``presence.py``): a center reaches a resident it registered; another center
  only with a presence grant (the full ID number typed at a lookup, for
  ``PRESENCE_GRANT_MINUTES``, for that clerk) or through a case opened under one.
* **Erasure** destroys the resident's bucket secret: the other residents of the bucket are
  re-wrapped under a new one and the key table is rewritten into a new file, in the erasure's
  own transaction (``_erase_in``), so no copy of a key that opens the fields survives in any
  live or dead tuple. The row keeps the resident id, its center and when and by whom it was
  erased.
* **Audit**: every access to personal data (register, lookup, read, change, erase, open a case
  for a resident, and every refusal) is recorded in the same transaction as the access: who,
  with which role and center, on which standing, when, why, which resident and what came of
  it. A row names both the caller's center and the resident's, so each center's trail shows
  it; a burst of lookups that find no one is recorded for the city to see.
* **Events**: registration, a consent change, declared facts and erasure leave a
  ``pending_event`` mark in the same transaction; the application turns it into a
  ``ConsentChanged``, ``CareNeedChanged`` or ``ResidentErased`` on the log (``publish``) and
  clears it, so a crash in between is finished at the next start or by the retried request.
* **Declared facts** (``declare_facts``: a special work type, living alone, disability,
  chronic illness) are sealed like every field, kept only with the resident's consent, and
  read with the ID number's birth date for eligibility hints (``profile``, audited). The log
  learns one bit of them: whether the resident needs more care (``CareNeedChanged``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag

from services.intake.idnumber import birth_date, sex_of
from services.intake.presence import Act, Standing, allowed, refusal
from services.intake.sealing import Sealer
from shared.catalogue.eligibility import age_on, needs_more_care
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.errors import (
    CommandError,
    IdempotencyKeyReused,
    NotFound,
    OutOfReach,
    Unavailable,
)
from shared.kernel.privacy import KnownPerson, redact
from shared.security.principals import Principal

FIELDS = ("name", "id_number", "phone", "address", "contact_channel", "consent")
CHANGEABLE = ("phone", "address", "contact_channel", "consent")
IDENTITY = ("name", "phone", "id_number", "address")  # what free text is scrubbed of
SEALED = ", ".join(f"r.{f}" for f in FIELDS)
IN_REACH = "(s.registered OR s.granted OR s.cased)"
IF_IN_REACH = ", ".join(f"CASE WHEN {IN_REACH} THEN r.{f} END AS {f}"
                        for f in ("wrapped_key", *FIELDS, "facts"))
AuditAction = Literal["register", "lookup", "lookup_burst", "read", "hints", "change", "erase",
                      "open_case", "record_relation"]
"""Every action the trail writes (``Act``'s values among them)."""
WITHHELD = "[purpose not kept: {n} characters]"
"""What the audit trail keeps of the purpose of a refusal as for nobody."""
OUT_OF_REACH = "out_of_reach"
"""The audit outcome of a caller of another center refused with no standing at all: the
resident's center and the city see it; the caller's center sees it as ``not_found``, as the
caller was answered."""

DDL = [
    "CREATE TABLE IF NOT EXISTS vault_key_buckets (bucket int PRIMARY KEY, secret bytea NOT NULL)",
    # ANALYZE would copy sample values into pg_statistic, a table erasure does not rewrite.
    "ALTER TABLE vault_key_buckets ALTER COLUMN secret SET STATISTICS 0",
    "CREATE TABLE IF NOT EXISTS residents ("
    " resident_id uuid PRIMARY KEY, center_id text NOT NULL, key_bucket int, id_tag bytea,"
    " wrapped_key bytea, name bytea, id_number bytea, phone bytea, address bytea,"
    " contact_channel bytea, consent bytea, registered_by text NOT NULL,"
    " registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " erased_at timestamptz, erased_by text, pending_event text, pending_actor text)",
    "ALTER TABLE residents ADD COLUMN IF NOT EXISTS key_bucket int,"
    " ADD COLUMN IF NOT EXISTS id_tag bytea, ADD COLUMN IF NOT EXISTS wrapped_key bytea,"
    " ADD COLUMN IF NOT EXISTS pending_event text, ADD COLUMN IF NOT EXISTS pending_actor text",
    "ALTER TABLE residents " + ", ".join(
        f"ALTER COLUMN {c} SET STATISTICS 0"
        for c in ("id_tag", "wrapped_key", *FIELDS)),
    "CREATE UNIQUE INDEX IF NOT EXISTS residents_id_tag ON residents (id_tag)",
    "CREATE INDEX IF NOT EXISTS residents_bucket ON residents (key_bucket)"
    " WHERE erased_at IS NULL",
    "CREATE INDEX IF NOT EXISTS residents_pending ON residents (resident_id)"
    " WHERE pending_event IS NOT NULL",
    # Declared facts (a special work type, living alone, disability, chronic illness), sealed
    # like the other fields, kept with the resident's consent; ``more_care``: what the log
    # was last told (``CareNeedChanged``), so a change is told once.
    "ALTER TABLE residents ADD COLUMN IF NOT EXISTS facts bytea,"
    " ADD COLUMN IF NOT EXISTS more_care boolean",
    "ALTER TABLE residents ALTER COLUMN facts SET STATISTICS 0",
    "CREATE TABLE IF NOT EXISTS resident_changes ("
    " resident_id uuid NOT NULL, key text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (resident_id, key))",
    # What the change keyed so was (an HMAC under the resident's own data key, so it opens
    # nothing and means nothing once they are erased): the same key with another change is a
    # 422, never a change reported and not made. Rows from before it: NULL, taken as the same.
    "ALTER TABLE resident_changes ADD COLUMN IF NOT EXISTS digest bytea",
    "ALTER TABLE resident_changes ALTER COLUMN digest SET STATISTICS 0",
    "CREATE TABLE IF NOT EXISTS presence_grants ("
    " grant_id bigserial PRIMARY KEY, resident_id uuid NOT NULL, center_id text NOT NULL,"
    " actor text NOT NULL, granted_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS presence_grants_holder"
    " ON presence_grants (resident_id, center_id, actor, expires_at)",
    "CREATE TABLE IF NOT EXISTS personal_data_audit ("
    " audit_id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " actor text NOT NULL, role text NOT NULL, actor_center text, action text NOT NULL,"
    " resident_id uuid, resident_center text, purpose text NOT NULL, fields text[] NOT NULL,"
    " outcome text NOT NULL, correlation_id text)",
    "ALTER TABLE personal_data_audit ADD COLUMN IF NOT EXISTS standing text",
    "CREATE INDEX IF NOT EXISTS audit_actor_center ON personal_data_audit (actor_center, at)",
    "CREATE INDEX IF NOT EXISTS audit_resident_center"
    " ON personal_data_audit (resident_center, at)",
    "CREATE INDEX IF NOT EXISTS audit_resident ON personal_data_audit (resident_id)",
    "CREATE INDEX IF NOT EXISTS audit_actor ON personal_data_audit (actor, at)",
    # Acting for someone (代办): how a case's applicant is related to its beneficiary and the
    # proof the clerk saw. Never on the bus (events carry the two opaque ids only).
    "CREATE TABLE IF NOT EXISTS case_relations ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, applicant_id uuid NOT NULL,"
    " beneficiary_id uuid NOT NULL, relation text NOT NULL, proof_seen text NOT NULL,"
    " recorded_by text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS case_relations_applicant ON case_relations (applicant_id)",
    "CREATE INDEX IF NOT EXISTS case_relations_beneficiary ON case_relations (beneficiary_id)",
]
"""The vault's tables; ``vault_migration.py`` fills the key table and moves older rows on."""


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
    standing: Standing | None = None


@dataclass(frozen=True)
class Registered:
    resident_id: UUID
    created: bool


@dataclass(frozen=True)
class Fact:
    """What the log must learn about a resident (no personal data): their consent, or that
    they were erased; ``home_center`` is where they were registered."""

    resident_id: UUID
    home_center: str
    actor: str
    erased: bool
    occurred_at: datetime
    contact: bool = False
    surveys: bool = False
    more_care: bool = False


@dataclass(frozen=True)
class Profile:
    """What eligibility hints are worked out from, opened for one lookup and never kept:
    the birth date and sex the ID number carries, the declared facts, and whether the log
    was last told the resident needs more care."""

    birth: date
    sex: Literal["male", "female"]
    facts: frozenset[str]
    more_care_told: bool | None


@dataclass(frozen=True)
class Access:
    """Who reads and why: becomes one audit row."""

    principal: Principal
    purpose: str
    correlation_id: str | None = None


@dataclass
class VaultPolicy:
    """The vault's settings (``shared.settings``)."""

    grant_minutes: float = 30.0
    miss_alert: int = 10
    miss_window_minutes: float = 10.0
    on_miss_burst: Callable[[str | None], None] = field(default=lambda center: None)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))


class Vault:
    """Registration, lookup, reading, changes and erasure of residents, each audited."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer, policy: VaultPolicy | None = None,
                 clock: Clock | None = None) -> None:
        self.pool = pool
        self.sealer = sealer
        self.policy = policy or VaultPolicy()
        self.clock: Clock = clock or SystemClock()
        self.buckets = 0  # read from the key table at start (``vault_migration.prepare``)

    # -- audit ---------------------------------------------------------------------------------

    async def _audit(self, conn: asyncpg.Connection, access: Access, action: str,
                     resident_id: UUID | None, resident_center: str | None,
                     fields: Sequence[str], outcome: str,
                     standing: Standing | None = None, keep_purpose: bool = True) -> None:
        """One audit row, its purpose scrubbed as free text is and of the resident's own name,
        phone ... (their sealed data opened for it). ``keep_purpose=False``: a refusal as for
        nobody (``not_found``, ``OUT_OF_REACH``) keeps :func:`withheld` instead, opening and
        scrubbing nothing (it must cost what a miss costs)."""
        p = access.principal
        if keep_purpose:
            known = await self._known_in(conn, resident_id) \
                if resident_id and access.purpose else None
            purpose = redact(access.purpose, known)
        else:
            purpose = withheld(access.purpose)
        await conn.execute(
            "INSERT INTO personal_data_audit (actor, role, actor_center, action, resident_id,"
            " resident_center, purpose, fields, outcome, correlation_id, standing)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            p.sub, p.role.value, p.center_id, action, resident_id, resident_center,
            purpose, list(fields), outcome, access.correlation_id,
            standing.value if standing else None)

    async def _known_in(self, conn: asyncpg.Connection, resident_id: UUID) -> KnownPerson | None:
        """The resident an audit row is about, to scrub the purpose the clerk typed of their
        name in every form ("给美玲阿姨回电"): the trail outlives an erasure, so nothing of the
        person may be kept in it. None when erased or not on file."""
        row = await conn.fetchrow(self._SELECT_WITH_KEY, resident_id)
        if row is None or row["erased_at"] is not None or row["secret"] is None:
            return None
        return KnownPerson(**self._open(row, IDENTITY))

    # -- keys ----------------------------------------------------------------------------------

    async def _bucket_secret(self, conn: asyncpg.Connection, id_number: str) -> tuple[int, bytes]:
        if not self.buckets:
            raise Unavailable("the vault's keys are not ready yet")
        bucket = self.sealer.bucket_of(id_number, self.buckets)
        wrapped = await conn.fetchval(
            "SELECT secret FROM vault_key_buckets WHERE bucket = $1", bucket)
        if wrapped is None:
            raise Unavailable(f"the vault's key bucket {bucket} is missing")
        return bucket, self.sealer.unwrap_secret(bucket, wrapped)

    def _data_key(self, row: asyncpg.Record) -> bytes:
        """The data key of a row read with its bucket's ``secret`` (``_SELECT_WITH_KEY``)."""
        if row["wrapped_key"] is None or row["secret"] is None:
            raise Unavailable("this resident's key has not been moved to the bucketed vault "
                              "yet; the migration runs at start")
        bucket = row["key_bucket"]
        secret = self.sealer.unwrap_secret(bucket, row["secret"])
        return self.sealer.unwrap_data_key(secret, bucket, row["resident_id"].bytes,
                                           row["wrapped_key"])

    def _open(self, row: asyncpg.Record, fields: Sequence[str] = FIELDS) -> dict[str, Any]:
        """The clear values of ``fields`` of a row read with ``_SELECT_WITH_KEY``."""
        rid = row["resident_id"]
        try:
            key = self._data_key(row)
            return {f: orjson.loads(self.sealer.open(key, rid.bytes, f, row[f])) for f in fields}
        except InvalidTag:
            raise RuntimeError(f"resident {rid}: sealed data fails its check") from None

    # -- standing --------------------------------------------------------------------------------

    @staticmethod
    def _standings(row: asyncpg.Record) -> set[Standing]:
        """The caller's standings, as ``_SELECT_IN_REACH`` worked them out with the row."""
        if row["registered"]:
            # Registration is the strongest standing: nothing else needs looking up.
            return {Standing.REGISTRATION}
        out: set[Standing] = set()
        if row["granted"]:
            out.add(Standing.PRESENCE_GRANT)
        if row["cased"]:
            out.add(Standing.CASE)
        return out

    async def _grant(self, conn: asyncpg.Connection, principal: Principal,
                     resident_id: UUID) -> None:
        """The caller typed the resident's full ID number: a presence grant, for a while."""
        now = self.clock.now()
        await conn.execute(
            "DELETE FROM presence_grants WHERE actor = $1 AND center_id = $2"
            " AND expires_at < $3", principal.sub, principal.center_id, now)
        await conn.execute(
            "INSERT INTO presence_grants (resident_id, center_id, actor, granted_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)", resident_id, principal.center_id, principal.sub,
            now, now + timedelta(minutes=self.policy.grant_minutes))

    async def _reach(self, conn: asyncpg.Connection, resident_id: UUID, access: Access,
                     lock: bool = False) -> asyncpg.Record | None:
        """The resident's row as the caller may have it (``_SELECT_IN_REACH``); ``lock``: for
        a change, the row locked, but only for a caller it is not refused as out of reach.

        Another center's caller with no standing neither waits for the row's lock nor takes
        it: they are answered from the unlocked read, as for an id nobody has. Until stop 50
        the row was locked (``FOR UPDATE``) before the standings were known: while the
        resident's center was changing them (a clerk's change, the publisher recording it on
        the log) another center's probe waited and an id nobody has did not, and the probe's
        own lock held the resident's center's writers back
        (``tests/security/test_vault_locks_in_reach_only.py``). A caller in reach reads the
        row again under the lock: the standings and the row as they stand once it is theirs."""
        p = access.principal
        args = (resident_id, p.center_id, p.sub, self.clock.now())
        row = await conn.fetchrow(self._SELECT_IN_REACH, *args)
        if not lock or row is None or (p.center_id is not None and not self._standings(row)):
            return row
        return await conn.fetchrow(self._SELECT_IN_REACH + " FOR UPDATE OF r", *args)

    async def _check(self, conn: asyncpg.Connection, access: Access, act: Act,
                     resident_id: UUID, row: asyncpg.Record | None
                     ) -> tuple[Standing | None, CommandError | None]:
        """The standing ``act`` rests on, or why it is refused (the refusal is audited).

        A caller of another center with no standing at all (no grant, no case of theirs
        naming the resident) is refused as for a resident nobody has: the same 404, the same
        work (one statement, then one audit row, the purpose withheld alike), and an audit row
        their own center's trail shows as a miss (``OUT_OF_REACH``). Until stop 49 it was a
        403, after the row's wrapped key and sealed fields were fetched: the answer, its time
        and the caller's center's trail told "another center's" from "nobody's"."""
        if row is None:
            await self._audit(conn, access, act.value, resident_id, None, [], "not_found",
                              keep_purpose=False)
            return None, NotFound(f"resident {resident_id} not found", id=str(resident_id))
        home = row["center_id"]
        standings = self._standings(row)
        standing = allowed(act, access.principal, standings)
        if standing is None and not standings and access.principal.center_id is not None:
            await self._audit(conn, access, act.value, resident_id, home, [], OUT_OF_REACH,
                              keep_purpose=False)
            refused = NotFound(f"resident {resident_id} not found", id=str(resident_id))
            refused.out_of_reach = OutOfReach("resident", str(resident_id), home)
            return None, refused
        if standing is None:
            await self._audit(conn, access, act.value, resident_id, home, [], "forbidden")
            return None, VaultForbidden(refusal(act), token_center=access.principal.center_id)
        return standing, None

    # -- registration and lookup -----------------------------------------------------------------

    async def register(self, data: ResidentData, access: Access) -> Registered:
        """The resident's id, and whether they are new. An ID number already on file returns
        the resident it belongs to (nothing is overwritten) and, at another center than
        theirs, gives the caller a presence grant: the full ID number was typed."""
        principal = access.principal
        if principal.center_id is None:
            raise VaultForbidden("registering a resident needs a token with a center")
        resident_id = uuid4()
        key = self.sealer.new_data_key()
        sealed = [self.sealer.seal(key, resident_id.bytes, f, data.field(f)) for f in FIELDS]
        async with self.pool.acquire() as conn, conn.transaction():
            bucket, secret = await self._bucket_secret(conn, data.id_number)
            tag = self.sealer.id_tag(secret, data.id_number)
            wrapped = self.sealer.wrap_data_key(secret, bucket, resident_id.bytes, key)
            created = await conn.fetchval(
                "INSERT INTO residents (resident_id, center_id, key_bucket, id_tag, wrapped_key,"
                " name, id_number, phone, address, contact_channel, consent, registered_by,"
                " pending_event, pending_actor)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'consent', $12)"
                " ON CONFLICT (id_tag) DO NOTHING RETURNING resident_id",
                resident_id, principal.center_id, bucket, tag, wrapped, *sealed, principal.sub)
            if created is None:
                row = await conn.fetchrow(
                    "SELECT resident_id, center_id FROM residents WHERE id_tag = $1", tag)
                home = row["center_id"]
                outcome, standing = "already_on_file", Standing.REGISTRATION
                if home != principal.center_id:
                    await self._grant(conn, principal, row["resident_id"])
                    outcome, standing = "presence_granted", Standing.PRESENCE_GRANT
                await self._audit(conn, access, "register", row["resident_id"], home,
                                  ["id_number"], outcome, standing)
                return Registered(UUID(bytes=row["resident_id"].bytes), False)
            await self._audit(conn, access, "register", resident_id, principal.center_id,
                              list(FIELDS), "registered", Standing.REGISTRATION)
        return Registered(resident_id, True)

    async def lookup(self, id_number: str, access: Access) -> UUID:
        """The resident id for an ID number (``NotFound`` when nobody has it). A resident of
        another center is found too, and the caller gets a presence grant for them."""
        principal = access.principal
        async with self.pool.acquire() as conn, conn.transaction():
            _, secret = await self._bucket_secret(conn, id_number)
            row = await conn.fetchrow(
                "SELECT resident_id, center_id FROM residents WHERE id_tag = $1",
                self.sealer.id_tag(secret, id_number))
            if row is None:
                # Nobody to scrub the purpose of (a digit mistyped in a resident's number,
                # say), and the generic redactor leaves a name it does not know: not kept.
                await self._audit(conn, access, "lookup", None, None, ["id_number"],
                                  "not_found", keep_purpose=False)
                await self._watch_misses(conn, access)
            elif row["center_id"] != principal.center_id and principal.center_id is not None:
                await self._grant(conn, principal, row["resident_id"])
                await self._audit(conn, access, "lookup", row["resident_id"], row["center_id"],
                                  ["id_number"], "presence_granted", Standing.PRESENCE_GRANT)
            else:
                await self._audit(conn, access, "lookup", row["resident_id"], row["center_id"],
                                  ["id_number"], "found", Standing.REGISTRATION)
        if row is None:
            raise NotFound("no resident with this ID number is on file")
        return UUID(bytes=row["resident_id"].bytes)

    async def _watch_misses(self, conn: asyncpg.Connection, access: Access) -> None:
        """Every ``miss_alert``-th lookup of one actor that finds no one within the window is
        a burst: an audit entry the city sees, and a metric."""
        policy = self.policy
        misses = await conn.fetchval(
            "SELECT count(*) FROM personal_data_audit WHERE actor = $1"
            " AND actor_center IS NOT DISTINCT FROM $2 AND action = 'lookup'"
            " AND outcome = 'not_found' AND at > clock_timestamp() - $3::interval",
            access.principal.sub, access.principal.center_id,
            timedelta(minutes=policy.miss_window_minutes))
        if misses and misses % policy.miss_alert == 0:
            await self._audit(conn, access, "lookup_burst", None, None, [],
                              f"{misses} lookups found no one within "
                              f"{policy.miss_window_minutes:g} minutes")
            policy.on_miss_burst(access.principal.center_id)

    # -- the cases that name a resident ----------------------------------------------------------

    async def admit_case(self, resident_id: UUID, access: Access) -> Standing:
        """May the caller open a case for this resident, and on which standing: the resident
        is registered at the caller's center, or the caller holds a presence grant. A case on
        another center's resident is audited at both centers; a refusal too."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._reach(conn, resident_id, access)
            standing, refused = await self._check(conn, access, Act.OPEN_CASE, resident_id, row)
            if refused is None and row["erased_at"] is not None:
                await self._audit(conn, access, Act.OPEN_CASE.value, resident_id,
                                  row["center_id"], [], "erased")
                refused = ResidentErased(f"resident {resident_id} was erased; register them "
                                         "again if they come back", id=str(resident_id))
            elif refused is None and standing is not Standing.REGISTRATION:
                await self._audit(conn, access, Act.OPEN_CASE.value, resident_id,
                                  row["center_id"], [], "admitted", standing)
        if refused is not None:
            raise refused
        assert standing is not None
        return standing

    async def case_basis(self, case_id: UUID, resident_id: UUID) -> Standing | None:
        """The standing a case already opened names ``resident_id`` on (the read model)."""
        basis = await self.pool.fetchval(
            "SELECT resident_basis FROM cases WHERE case_id = $1 AND resident_id = $2",
            case_id, resident_id)
        return Standing(basis) if basis else None

    # -- reading and changing ----------------------------------------------------------------------

    _SELECT_WITH_KEY = (
        "SELECT r.resident_id, r.center_id, r.registered_at, r.erased_at, r.key_bucket,"
        f" r.wrapped_key, r.pending_event, r.pending_actor, {SEALED}, r.facts, r.more_care,"
        " k.secret FROM residents r"
        " LEFT JOIN vault_key_buckets k ON k.bucket = r.key_bucket WHERE r.resident_id = $1")

    _SELECT_IN_REACH = (
        "SELECT r.resident_id, r.center_id, r.registered_at, r.erased_at, r.key_bucket,"
        " r.pending_event, r.pending_actor, r.more_care, s.registered, s.granted, s.cased, "
        + IF_IN_REACH + f", CASE WHEN {IN_REACH} THEN (SELECT k.secret FROM vault_key_buckets k"
        " WHERE k.bucket = r.key_bucket) END AS secret"
        " FROM (SELECT i.resident_id,"
        "  EXISTS (SELECT 1 FROM presence_grants p WHERE p.resident_id = i.resident_id"
        "   AND p.center_id = $2 AND p.actor = $3 AND p.expires_at > $4) AS grant_held,"
        "  EXISTS (SELECT 1 FROM cases c WHERE c.resident_id = i.resident_id"
        "   AND c.center_id = $2 AND c.resident_basis IS NOT NULL) AS case_held"
        "  FROM (SELECT $1::uuid AS resident_id OFFSET 0) i OFFSET 0) q"
        " JOIN residents r ON r.resident_id = q.resident_id"
        " CROSS JOIN LATERAL (SELECT coalesce(r.center_id = $2, false) AS registered,"
        "  coalesce(r.center_id <> $2 AND q.grant_held, false) AS granted,"
        "  coalesce(r.center_id <> $2 AND q.case_held, false) AS cased) s")
    """A resident's row for one caller (``$2`` their center, ``$3`` their subject, ``$4``
    now), their standings worked out in the same statement: the wrapped key, the bucket's
    secret and the sealed fields come back only for a caller with a standing, so another
    center's caller without one costs what an id nobody has costs (one statement, no key
    read) and nothing of the resident is in the process for them. ``OFFSET 0`` keeps the
    standings a subquery worked out once: without it PostgreSQL pulled them up into each
    column they guard and looked them up for each (ten grant and ten case probes), and
    another center's resident answered 0.26 ms later than an id nobody has (stop 49). The
    bucket's secret is a subquery under the same ``CASE``, run for a caller in reach only:
    until stop 50 a join, ``IN_REACH`` its filter, fetched the bucket's row for every caller
    and discarded it for one out of reach (some 25 us by which another center's resident
    answered later than an id nobody has). The grant and case probes (``q``) are made for
    the id asked, before the resident's row is looked up (``OFFSET 0`` keeps them there):
    an id nobody has is probed as another center's resident is, where until stop 50 it was
    one look-up against their three (``tests/security/test_vault_reach_work.py``)."""

    async def read(self, resident_id: UUID, access: Access) -> Resident:
        # A refusal is raised after the commit, so that its audit row stays.
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._reach(conn, resident_id, access)
            standing, refused = await self._check(conn, access, Act.READ, resident_id, row)
            if refused is None:
                erased = row["erased_at"] is not None
                await self._audit(conn, access, "read", resident_id, row["center_id"],
                                  [] if erased else list(FIELDS), "erased" if erased else "read",
                                  standing)
        if refused is not None:
            raise refused
        if row["erased_at"] is not None:
            return Resident(resident_id, row["center_id"], row["registered_at"],
                            row["erased_at"], None, standing)
        return Resident(resident_id, row["center_id"], row["registered_at"], None,
                        ResidentData(**self._open(row)), standing)

    async def identity_terms(self, resident_id: UUID) -> KnownPerson | None:
        """The resident's name, phone, ID number and address, for scrubbing the free text
        of a case that names them (``shared.kernel.scrubbing``); None when erased or not on file.

        Opened as :meth:`read` opens them (the bucket's secret, then the data key), but not
        audited and on no standing: it is the case's own resident, already admitted when the
        case was opened; the data goes to no person and leaves no trace (it lives in memory
        for the one command that scrubs with it, and is never stored or logged), and an audit
        row per case write would bury the reads the trail is for. Who *sees* a resident is
        still recorded by :meth:`read`."""
        row = await self.pool.fetchrow(self._SELECT_WITH_KEY, resident_id)
        if row is None or row["erased_at"] is not None:
            return None
        return KnownPerson(**self._open(row, IDENTITY))

    async def change(self, resident_id: UUID, changes: dict[str, Any], access: Access,
                     key: str) -> bool:
        """Change contact details or consent (those in ``changes``); in person, so on a
        registration or a presence grant. Whether consent changed (the log must learn it).
        The Idempotency-Key ``key`` applies a change once: a retry changes nothing again."""
        unknown = set(changes) - set(CHANGEABLE)
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        consent_changed = False
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._reach(conn, resident_id, access, lock=True)
            standing, refused = await self._check(conn, access, Act.CHANGE, resident_id, row)
            if refused is None and row["erased_at"] is not None:
                await self._audit(conn, access, Act.CHANGE.value, resident_id,
                                  row["center_id"], [], "erased")
                refused = ResidentErased(f"resident {resident_id} was erased",
                                         id=str(resident_id))
            if refused is None:
                data_key = self._data_key(row)
                done = await self._keyed(conn, resident_id, key,
                                         _digest(data_key, "change", changes))
                if not done:
                    await self._audit(conn, access, Act.CHANGE.value, resident_id,
                                      row["center_id"], [], "already_applied", standing)
                    return row["pending_event"] is not None
                before = self._open(row, ["consent"])["consent"]
                sets = [f"{f} = ${i}" for i, f in enumerate(changes, start=2)]
                values = [self.sealer.seal(data_key, resident_id.bytes, f, orjson.dumps(v))
                          for f, v in changes.items()]
                after = changes.get("consent", before)
                consent_changed = ((before.get("contact"), before.get("surveys"))
                                   != (after.get("contact"), after.get("surveys")))
                if consent_changed:
                    sets.append(f"pending_event = 'consent', pending_actor = ${len(values) + 2}")
                    values.append(access.principal.sub)
                await conn.execute(f"UPDATE residents SET {', '.join(sets)}"
                                   " WHERE resident_id = $1", resident_id, *values)
                await self._audit(conn, access, Act.CHANGE.value, resident_id,
                                  row["center_id"], list(changes), "changed", standing)
        if refused is not None:
            raise refused
        return consent_changed

    @staticmethod
    async def _keyed(conn: asyncpg.Connection, resident_id: UUID, key: str,
                     digest: bytes) -> bool:
        """True: ``key`` is new for the resident, and now taken by this change. False: the
        same change came with it before (a retry: nothing to do again). A different change
        with a key already used is refused (422 ``idempotency_key_reused``): a clerk's app
        that reuses keys must not be told "changed" about a change never made."""
        done = await conn.fetchval(
            "INSERT INTO resident_changes (resident_id, key, digest) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true", resident_id, key, digest)
        if done:
            return True
        before = await conn.fetchval(
            "SELECT digest FROM resident_changes WHERE resident_id = $1 AND key = $2",
            resident_id, key)
        if before is not None and not hmac.compare_digest(before, digest):
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for another change of this resident; "
                "send a new key for a new change", field="Idempotency-Key")
        return False

    # -- declared facts and eligibility ------------------------------------------------------------

    def today(self) -> date:
        """Today in the center's time zone (ages are worked out on it)."""
        return self.clock.now().astimezone(self.policy.tz).date()

    def _facts(self, row: asyncpg.Record) -> frozenset[str]:
        """The declared facts of a row read with its key (none declared: empty)."""
        if row["facts"] is None:
            return frozenset()
        return frozenset(self._open(row, ["facts"])["facts"]["facts"])

    async def declare_facts(self, resident_id: UUID, facts: Sequence[str], access: Access,
                            key: str) -> None:
        """Keep the facts the resident declared and agreed to have kept (an empty list: keep
        none); in person, as a change. The log learns only whether the resident needs more
        care (``CareNeedChanged``, from ``publish``), never which fact it is."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._reach(conn, resident_id, access, lock=True)
            standing, refused = await self._check(conn, access, Act.CHANGE, resident_id, row)
            if refused is None and row["erased_at"] is not None:
                await self._audit(conn, access, Act.CHANGE.value, resident_id,
                                  row["center_id"], [], "erased")
                refused = ResidentErased(f"resident {resident_id} was erased",
                                         id=str(resident_id))
            if refused is None:
                data_key = self._data_key(row)
                done = await self._keyed(conn, resident_id, key,
                                         _digest(data_key, "facts", sorted(set(facts))))
                if done:
                    sealed = self.sealer.seal(data_key, resident_id.bytes, "facts",
                                              orjson.dumps({"facts": sorted(set(facts)),
                                                            "consented_at": self.clock.now()}))
                    await conn.execute(
                        "UPDATE residents SET facts = $2,"
                        " pending_event = COALESCE(pending_event, 'care'), pending_actor = $3"
                        " WHERE resident_id = $1", resident_id, sealed, access.principal.sub)
                await self._audit(conn, access, Act.CHANGE.value, resident_id,
                                  row["center_id"], ["facts"],
                                  "changed" if done else "already_applied", standing)
        if refused is not None:
            raise refused

    async def profile(self, resident_id: UUID, access: Access) -> Profile:
        """What eligibility hints are worked out from (a read of the ID number and the
        declared facts, audited with the caller's purpose)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._reach(conn, resident_id, access)
            # Not Act.READ: a case at the caller's center is no standing for the facts.
            standing, refused = await self._check(conn, access, Act.HINTS, resident_id, row)
            if refused is None and row["erased_at"] is not None:
                await self._audit(conn, access, "read", resident_id, row["center_id"], [],
                                  "erased", standing)
                refused = ResidentErased(f"resident {resident_id} was erased",
                                         id=str(resident_id))
            elif refused is None:
                await self._audit(conn, access, "read", resident_id, row["center_id"],
                                  ["id_number", "facts"], "read", standing)
        if refused is not None:
            raise refused
        number = self._open(row, ["id_number"])["id_number"]
        return Profile(birth=birth_date(number), sex=sex_of(number), facts=self._facts(row),
                       more_care_told=row["more_care"])

    async def retell_care(self, resident_id: UUID, actor: str) -> bool:
        """Mark the resident for ``publish`` again (their age crossed 80 since the log was
        last told); False when something is already marked."""
        done = await self.pool.execute(
            "UPDATE residents SET pending_event = 'care', pending_actor = $2"
            " WHERE resident_id = $1 AND pending_event IS NULL AND erased_at IS NULL",
            resident_id, actor)
        return done.endswith(" 1")

    # -- erasure -----------------------------------------------------------------------------------

    async def erase(self, resident_id: UUID, access: Access) -> datetime:
        """Erase a resident: their bucket gets a new secret and the key table a new file, so
        nothing left anywhere in the database opens their data (see the module's docstring).

        The key table's lock is taken only once the caller may erase: a refusal (an id
        nobody has, another center's resident, a caller without the right) is answered and
        audited from an unlocked read in a transaction of its own. Until stop 50 every
        ``DELETE /residents/{id}`` locked the key table first, whoever sent it and whatever
        the id: one supervisor's guesses, each waiting for every vault read under way, held
        every center's reads and writes of residents behind them
        (``tests/security/test_vault_locks_in_reach_only.py``)."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await self._reach(conn, resident_id, access)
                standing, refused = await self._check(conn, access, Act.ERASE, resident_id,
                                                      row)
            if refused is not None:
                raise refused
            async with conn.transaction():
                # Every other vault transaction reads the key table before it touches a
                # resident's row, so taking this lock first cannot deadlock with them (this
                # transaction read nothing before it: no lock of its own to raise).
                await conn.execute("LOCK TABLE vault_key_buckets IN ACCESS EXCLUSIVE MODE")
                row = await self._reach(conn, resident_id, access, lock=True)
                standing, refused = await self._check(conn, access, Act.ERASE, resident_id,
                                                      row)
                if refused is None and row["erased_at"] is not None:
                    await self._audit(conn, access, "erase", resident_id, row["center_id"], [],
                                      "already_erased", standing)
                    return row["erased_at"]
                if refused is None:
                    erased_at = await self._erase_in(conn, resident_id, row["key_bucket"],
                                                     access.principal.sub)
                    await self._audit(conn, access, "erase", resident_id, row["center_id"],
                                      list(FIELDS), "erased", standing)
        if refused is not None:
            raise refused
        return erased_at

    async def _erase_in(self, conn: asyncpg.Connection, resident_id: UUID, bucket: int | None,
                        actor: str) -> datetime:
        """Inside the erasure's transaction, the key table locked."""
        if bucket is None:
            raise Unavailable("this resident's key has not been moved to the bucketed vault "
                              "yet; the migration runs at start")
        keys = {r["bucket"]: r["secret"] for r in await conn.fetch(
            "SELECT bucket, secret FROM vault_key_buckets ORDER BY bucket")}
        old = self.sealer.unwrap_secret(bucket, keys[bucket])
        new = self.sealer.new_secret()
        moved = []
        for n in await conn.fetch(
                "SELECT resident_id, wrapped_key, id_number FROM residents"
                " WHERE key_bucket = $1 AND erased_at IS NULL AND resident_id <> $2",
                bucket, resident_id):
            rid: bytes = n["resident_id"].bytes
            data_key = self.sealer.unwrap_data_key(old, bucket, rid, n["wrapped_key"])
            id_number = orjson.loads(self.sealer.open(data_key, rid, "id_number",
                                                      n["id_number"]))
            moved.append((n["resident_id"],
                          self.sealer.wrap_data_key(new, bucket, rid, data_key),
                          self.sealer.id_tag(new, id_number)))
        erased_at: datetime = await conn.fetchval(
            "UPDATE residents SET wrapped_key = NULL, id_tag = NULL, name = NULL,"
            " id_number = NULL, phone = NULL, address = NULL, contact_channel = NULL,"
            " consent = NULL, facts = NULL, more_care = NULL, erased_at = $3, erased_by = $2,"
            " pending_event = 'erased', pending_actor = $2"
            " WHERE resident_id = $1 RETURNING erased_at", resident_id, actor, self.clock.now())
        if moved:
            await conn.executemany(
                "UPDATE residents SET wrapped_key = $2, id_tag = $3 WHERE resident_id = $1",
                moved)
        # Who acted for whom, and on which proof, goes with the resident (either side).
        await conn.execute("DELETE FROM case_relations WHERE applicant_id = $1"
                           " OR beneficiary_id = $1", resident_id)
        keys[bucket] = self.sealer.wrap_secret(bucket, new)
        await rewrite_key_table(conn, keys)
        return erased_at

    async def forget_expired_grants(self) -> int:
        """Drop presence grants that ended more than a day ago (the audit trail keeps who
        looked whom up; the grants table only answers "may they, now")."""
        done = await self.pool.execute(
            "DELETE FROM presence_grants WHERE expires_at < $1",
            self.clock.now() - timedelta(days=1))
        return int(done.split()[-1])

    # -- what the log must learn -------------------------------------------------------------------

    async def pending(self, limit: int, after: UUID | None = None) -> list[UUID]:
        """Residents whose consent or erasure is not on the log yet, in id order (``after``:
        the last one of the previous page)."""
        rows = await self.pool.fetch(
            "SELECT resident_id FROM residents WHERE pending_event IS NOT NULL"
            " AND resident_id > $2 ORDER BY resident_id LIMIT $1", limit,
            after or UUID(int=0))
        return [UUID(bytes=r["resident_id"].bytes) for r in rows]  # a plain uuid.UUID

    async def publish(self, resident_id: UUID, record: Callable[[Fact], Awaitable[Any]]) -> Any:
        """Hand what the log must learn about the resident to ``record`` (which writes the
        event), then clear the mark, all under the resident's row lock: changes are recorded
        in the order the vault made them, and a crash leaves the mark for the next try."""
        resident_id = UUID(bytes=resident_id.bytes)  # asyncpg's UUID does not go in an event
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(self._SELECT_WITH_KEY + " FOR UPDATE OF r", resident_id)
            if row is None or row["pending_event"] is None:
                return None
            erased = row["erased_at"] is not None
            opened = {} if erased else self._open(row, ["consent", "id_number"])
            consent = opened.get("consent", {})
            more_care = not erased and needs_more_care(
                age_on(birth_date(opened["id_number"]), self.today()), self._facts(row))
            result = await record(Fact(
                resident_id=resident_id, home_center=row["center_id"],
                actor=row["pending_actor"] or "system", erased=erased,
                occurred_at=row["erased_at"] or self.clock.now(),
                contact=bool(consent.get("contact")), surveys=bool(consent.get("surveys")),
                more_care=more_care))
            await conn.execute("UPDATE residents SET pending_event = NULL, pending_actor = NULL,"
                               " more_care = $2 WHERE resident_id = $1", resident_id,
                               None if erased else more_care)
        return result

    # -- the audit trail ---------------------------------------------------------------------------

    async def audit_trail(self, center_id: str | None, resident_id: UUID | None,
                          actor: str | None, since: datetime | None, until: datetime | None,
                          before: int | None, limit: int, action: str | None = None,
                          cross_center: bool | None = None, reader_center: str | None = None
                          ) -> list[dict[str, Any]]:
        """Audit rows of a center (its staff's accesses, and accesses to its residents), or of
        every center (``center_id`` None: the city). ``reader_center``: the reader's own
        center (None: the city's token, which sees every row as it was, narrowed or not)."""
        where, args = [], []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        # A caller refused as for nobody (``OUT_OF_REACH``) is shown to their own center as
        # they were answered: a miss, no resident's center (the city and the resident's center
        # see whose it was). By the reader's center, not the one the trail is narrowed to:
        # the city reading a prober's center's trail hid it too, until stop 49.
        hidden = "false"
        if center_id is not None:
            ref = arg(center_id)
            where.append(f"(actor_center = {ref} OR resident_center = {ref})")
        if reader_center is not None:
            hidden = (f"(outcome = '{OUT_OF_REACH}' AND resident_center IS DISTINCT FROM"
                      f" {arg(reader_center)})")
        shown_center = f"CASE WHEN {hidden} THEN NULL ELSE resident_center END"
        crossing = cross_center_of(shown_center)
        if resident_id is not None:
            where.append(f"resident_id = {arg(resident_id)}")
        if actor is not None:
            where.append(f"actor = {arg(actor)}")
        if action is not None:
            where.append(f"action = {arg(action)}")
        if cross_center is not None:
            where.append(f"({crossing}) = {arg(cross_center)}")
        if since is not None:
            where.append(f"at >= {arg(since)}")
        if until is not None:
            where.append(f"at < {arg(until)}")
        if before is not None:
            where.append(f"audit_id < {arg(before)}")
        sql = ("SELECT audit_id, at, actor, role, actor_center, action, resident_id,"
               f" {shown_center} AS resident_center, purpose, fields,"
               f" CASE WHEN {hidden} THEN 'not_found' ELSE outcome END AS outcome,"
               f" correlation_id, standing, {crossing} AS cross_center FROM personal_data_audit")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY audit_id DESC LIMIT {arg(limit)}"
        return [dict(r) for r in await self.pool.fetch(sql, *args)]

    # -- acting for someone (代办) ---------------------------------------------------------------

    async def record_relation(self, case_id: UUID, center_id: str, applicant_id: UUID,
                              beneficiary_id: UUID, relation: str, proof_seen: str,
                              access: Access) -> None:
        """How the applicant of ``case_id`` is related to its beneficiary, and the proof seen
        (before the case is opened; a retried opening finds it there). Audited."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO case_relations (case_id, center_id, applicant_id, beneficiary_id,"
                " relation, proof_seen, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (case_id) DO NOTHING", case_id, center_id, applicant_id,
                beneficiary_id, relation, proof_seen, access.principal.sub)
            await self._audit(conn, access, "record_relation", beneficiary_id, None,
                              ["relation", "proof_seen"], "recorded")

    async def relation_of(self, case_id: UUID) -> dict[str, Any] | None:
        """The relation and proof recorded for a case, or None (the resident came for
        themselves, or the case names no one)."""
        row = await self.pool.fetchrow(
            "SELECT applicant_id, beneficiary_id, relation, proof_seen FROM case_relations"
            " WHERE case_id = $1", case_id)
        return dict(row) if row else None


def withheld(purpose: str) -> str:
    """The purpose of a refusal as for nobody (``not_found``, ``OUT_OF_REACH``; a lookup that
    finds no one), as the trail keeps it: its length only. Scrubbing it of the resident's
    name would open their data for a caller answered as for nobody, and the generic redactor
    alone leaves a name it does not know as one ("核实欧阳秀凤的低保"), in a trail that
    outlives the resident's erasure; until stop 49 it was kept so."""
    return WITHHELD.format(n=len(purpose))


def cross_center_of(resident_center: str = "resident_center") -> str:
    """SQL: an access by one center to a resident registered at another."""
    return (f"coalesce({resident_center} IS NOT NULL AND {resident_center}"
            " IS DISTINCT FROM actor_center, false)")




def _digest(data_key: bytes, act: str, what: Any) -> bytes:
    """What a keyed change of the resident was, under their own data key (never the values)."""
    return hmac.new(data_key, act.encode() + b"\x00" + orjson.dumps(
        what, option=orjson.OPT_SORT_KEYS), hashlib.sha256).digest()


async def rewrite_key_table(conn: asyncpg.Connection, keys: dict[int, bytes]) -> None:
    """Put ``keys`` in the key table, in a new file: ``TRUNCATE`` gives the table a new
    relfilenode and the old file is removed at commit whatever snapshot is still open (unlike
    ``VACUUM FULL``, which keeps row versions an old snapshot may see), so a replaced secret
    survives in no live or dead tuple. Inside the caller's transaction."""
    await conn.execute("TRUNCATE vault_key_buckets")
    await conn.copy_records_to_table("vault_key_buckets", columns=["bucket", "secret"],
                                     records=sorted(keys.items()))
