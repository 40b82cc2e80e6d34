"""What the log learns of a resident: their consent at registration and at every change, and
their erasure, without personal data; once each, through a crash; and, once, for residents
registered before consent went on the log (whose keys move to the bucketed vault then)."""

from __future__ import annotations

import hashlib
import hmac
import os
from uuid import UUID, uuid4

import asyncpg
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.intake.main import create_app
from services.intake.vault import Access
from shared.contracts import Envelope
from shared.readmodels.readmodel import make_tables
from shared.security.principals import Principal, Role
from shared.settings import Settings
from tests.security.test_erasure_files import database_files
from tests.support import (
    TEST_CENTER,
    headers,
    id_number,
    register_resident,
    running,
    stream_envelopes,
    stream_messages,
    wait_until,
)

CLEAR = ("王秀英", "13912345678", "13800001111", "花木路")


def facts(envelopes: list[Envelope], resident: str) -> list[tuple[str, dict]]:
    return [(e.type, e.payload) for e in envelopes
            if e.type in ("ConsentChanged", "ResidentErased") and e.aggregate_id == UUID(resident)]


async def envelopes_after(settings: Settings, marker: str) -> list[Envelope]:
    """The stream once the marker resident's registration is on it (everything before is)."""
    found: list[Envelope] = []

    async def marker_arrived() -> bool:
        nonlocal found
        found = await stream_envelopes(settings)
        return any(e.aggregate_id == UUID(marker) for e in found)

    await wait_until(marker_arrived, what="the marker resident's consent on the stream")
    return found


async def test_consent_and_erasure_reach_the_stream_once_and_without_personal_data(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.SUPERVISOR) as desk:
        resident = await register_resident(desk, consent={"contact": True, "surveys": False})
        change = {"consent": {"contact": True, "surveys": True}}
        first = await desk.patch(f"/residents/{resident}", json=change,
                                 headers=headers("consent-change-1"))
        assert first.status_code == 200, first.text
        assert first.json()["changed"] == ["consent"]
        retried = await desk.patch(f"/residents/{resident}", json=change,
                                   headers=headers("consent-change-1"))
        assert retried.status_code == 200
        phone = await desk.patch(f"/residents/{resident}", json={"phone": "13800001111"},
                                 headers=headers("phone-change-1"))
        assert phone.status_code == 200
        read = await desk.get(f"/residents/{resident}", params={"purpose": "check"})
        assert (read.json()["phone"], read.json()["consent"]["surveys"]) == ("13800001111", True)
        bad = await desk.patch(f"/residents/{resident}", json={"phone": None},
                               headers=headers("phone-change-2"))
        assert bad.status_code == 422
        assert (await desk.delete(f"/residents/{resident}")).status_code == 200
        assert (await desk.delete(f"/residents/{resident}")).status_code == 200
        gone = await desk.patch(f"/residents/{resident}", json={"phone": "13800002222"},
                                headers=headers("phone-change-3"))
        assert gone.status_code == 410
        marker = await register_resident(desk)

    envelopes = await envelopes_after(settings, marker)
    assert facts(envelopes, resident) == [
        ("ConsentChanged", {"resident_id": resident, "contact": True, "surveys": False,
                            "reason": "registration"}),
        ("ConsentChanged", {"resident_id": resident, "contact": True, "surveys": True,
                            "reason": "changed"}),
        ("ResidentErased", {"resident_id": resident}),
    ]
    mine = [e for e in envelopes if e.aggregate_id == UUID(resident)]
    assert {(e.center_id, e.case_id, e.actor) for e in mine} == {
        (TEST_CENTER, None, "test-supervisor")}
    text = b"\n".join(m.data for m in await stream_messages(settings)).decode()
    assert [c for c in CLEAR if c in text] == []


async def test_an_erasure_cut_short_by_a_crash_is_finished_by_its_retry_or_the_next_start(
        settings: Settings) -> None:
    supervisor = Principal(sub="director-01", role=Role.SUPERVISOR, center_id=TEST_CENTER)
    app = create_app(settings)
    async with running(app) as desk:
        retried, restarted = await register_resident(desk), await register_resident(desk)
        # The vault erases both; the process dies before either erasure reaches the log.
        for resident in (retried, restarted):
            await app.state.vault.erase(UUID(resident), Access(supervisor, "erasure request"))
        again = await desk.delete(f"/residents/{retried}")
        assert again.status_code == 200, "a retried erasure answers as the first would have"

    async with running(create_app(settings)) as desk:
        async def published() -> bool:
            return any(e.type == "ResidentErased" and e.aggregate_id == UUID(restarted)
                       for e in await stream_envelopes(settings))

        await wait_until(published, what="the next start to finish the erasure")
        assert (await desk.delete(f"/residents/{restarted}")).status_code == 200
        marker = await register_resident(desk)

    envelopes = await envelopes_after(settings, marker)
    for resident in (retried, restarted):
        erasures = [e for e in envelopes
                    if e.type == "ResidentErased" and e.aggregate_id == UUID(resident)]
        assert len(erasures) == 1 and erasures[0].actor == "director-01"


# -- residents of the first vault --------------------------------------------------------------

FIRST_VAULT_DDL = (
    "CREATE TABLE residents ("
    " resident_id uuid PRIMARY KEY, center_id text NOT NULL, id_hash bytea UNIQUE,"
    " data_key bytea, name bytea, id_number bytea, phone bytea, address bytea,"
    " contact_channel bytea, consent bytea, registered_by text NOT NULL,"
    " registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " erased_at timestamptz, erased_by text)")


def first_vault_row(settings: Settings, id_: str, consent: dict[str, bool]
                    ) -> tuple[UUID, bytes, bytes, list[bytes]]:
    """A resident as the first vault stored them: (id, id_hash, master-wrapped key, fields)."""
    master = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                  info=b"sixstep-vault-master-v1").derive(
        settings.vault_master_key.get_secret_value().encode())
    kid = hashlib.sha256(b"sixstep-vault-kid\x00" + master).digest()[:8]
    rid = uuid4()
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    wrapped = kid + nonce + AESGCM(master).encrypt(nonce, key, b"dek\x00" + rid.bytes)
    id_hash = hmac.new(settings.vault_lookup_key.get_secret_value().encode(),
                       b"sixstep-id-v1\x00" + id_.encode(), hashlib.sha256).digest()
    values = {"name": "王秀英", "id_number": id_, "phone": "13912345678",
              "address": "浦东新区花木路100弄3号", "contact_channel": "phone", "consent": consent}
    fields = []
    for name, value in values.items():
        n = os.urandom(12)
        fields.append(n + AESGCM(key).encrypt(n, orjson.dumps(value), rid.bytes + name.encode()))
    return rid, id_hash, wrapped, fields


async def test_residents_of_the_first_vault_move_into_buckets_and_reach_the_log_once(
        settings: Settings) -> None:
    schema = settings.schema_for("intake")
    live_id = id_number()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, [FIRST_VAULT_DDL])
        live = first_vault_row(settings, live_id, {"contact": True, "surveys": False})
        erased = first_vault_row(settings, id_number(), {"contact": True, "surveys": True})
        for rid, id_hash, wrapped, fields in (live, erased):
            await conn.execute(
                "INSERT INTO residents VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'clerk-1')",
                rid, TEST_CENTER, id_hash, wrapped, *fields)
        # The first vault's erasure: the row's earlier version stays behind as a dead tuple.
        await conn.execute(
            "UPDATE residents SET data_key = NULL, id_hash = NULL, name = NULL, id_number = NULL,"
            " phone = NULL, address = NULL, contact_channel = NULL, consent = NULL,"
            " erased_at = now(), erased_by = 'director-01' WHERE resident_id = $1", erased[0])
    finally:
        await conn.close()

    async with running(create_app(settings), role=Role.SUPERVISOR) as desk:
        found = await desk.post("/residents/lookup",
                                json={"id_number": live_id, "purpose": "returning resident"})
        assert found.json()["resident_id"] == str(live[0])
        read = await desk.get(f"/residents/{live[0]}", params={"purpose": "check"})
        assert read.json()["name"] == "王秀英"
        gone = await desk.get(f"/residents/{erased[0]}", params={"purpose": "check"})
        assert gone.json()["status"] == "erased"
        conn = await asyncpg.connect(settings.database_url)
        try:
            files = await database_files(conn)
        finally:
            await conn.close()
        assert live[2] not in files and erased[2] not in files, \
            "no data key wrapped by the master key is left in the database files"
        assert erased[1] not in files, "nor the first vault's lookup hash of the erased one"

    async with running(create_app(settings), role=Role.SUPERVISOR) as desk:
        marker = await register_resident(desk)  # the second start publishes nothing again

    envelopes = await envelopes_after(settings, marker)
    assert facts(envelopes, str(live[0])) == [
        ("ConsentChanged", {"resident_id": str(live[0]), "contact": True, "surveys": False,
                            "reason": "registration"})]
    assert facts(envelopes, str(erased[0])) == [
        ("ResidentErased", {"resident_id": str(erased[0])})]
    assert [e.actor for e in envelopes if e.aggregate_id == erased[0]] == ["director-01"]
