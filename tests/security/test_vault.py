"""The resident vault: registered once, found again by ID number without keeping it in clear,
read with a recorded reason, erased on request; and the clear text is nowhere else."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from services.intake.main import create_app
from services.intake.projections import READ_MODEL
from shared.analytics.rebuild import Rebuild
from shared.security.principals import Role
from shared.settings import Settings
from tests.security.test_erasure_files import database_files
from tests.support import (
    TEST_CENTER,
    bearer,
    headers,
    running,
    stream_messages,
    wait_until,
)

OTHER_CENTER = "SH-PD-ZHANGJIANG"
RESIDENT = {"name": "王秀英", "id_number": "11010519491231002X", "phone": "13912345678",
            "address": "浦东新区花木路100弄3号", "contact_channel": "phone",
            "consent": {"contact": True, "surveys": True}}
CLEAR = ("王秀英", "11010519491231002X", "13912345678", "花木路100弄")


async def raw_database_text(settings: Settings) -> str:
    """Every row of every table of this test's schemas, as PostgreSQL prints it."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema LIKE $1 AND table_type = 'BASE TABLE'",
            settings.schema_prefix + "%")
        out = []
        for t in tables:
            rows = await conn.fetch(
                f'SELECT t::text AS row FROM "{t["table_schema"]}"."{t["table_name"]}" t')
            out.extend(r["row"] for r in rows)
        return "\n".join(out)
    finally:
        await conn.close()


def leaks(text: str) -> list[str]:
    found = [c for c in CLEAR if c in text]
    # bytea prints as hex: look for the UTF-8 bytes of each value too
    found += [c for c in CLEAR if c.encode().hex() in text]
    return found


async def test_register_find_read_audit_and_erase_a_resident(settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as client:
        bad = await client.post("/residents", json={**RESIDENT, "id_number": "110105194912310021"})
        assert bad.status_code == 422
        assert "check digit" in bad.text and "110105194912310021" not in bad.text

        first = await client.post("/residents", json=RESIDENT)
        assert first.status_code == 201, first.text
        resident_id = first.json()["resident_id"]
        again = await client.post("/residents",
                                  json={**RESIDENT, "id_number": "11010519491231002x"})
        assert (again.status_code, again.json()["resident_id"]) == (200, resident_id)

        found = await client.post("/residents/lookup", json={
            "id_number": RESIDENT["id_number"], "purpose": "returning resident at window 3"})
        assert found.json()["resident_id"] == resident_id
        read = await client.get(f"/residents/{resident_id}",
                                params={"purpose": "follow-up call about the subsidy"})
        assert read.status_code == 200
        # No cache of the counter's computer keeps it past the erasure below.
        assert read.headers["cache-control"] == "no-store"
        assert {k: read.json()[k] for k in ("name", "id_number", "phone")} == {
            k: RESIDENT[k] for k in ("name", "id_number", "phone")}
        assert (await client.get(f"/residents/{resident_id}")).status_code == 422  # why?

        opened = await client.post("/cases", headers=headers("vault-open-1"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": resident_id})
        case = opened.json()["id"]
        words = "我的电话13912345678，身份证11010519491231002X，想申请困难补助"
        heard = await client.post(f"/cases/{case}/hear", headers=headers("vault-hear-1"),
                                  json={"words": words})
        assert heard.status_code == 200

        # Another center's clerk: no case of theirs, so no access (and that is recorded).
        other = bearer(settings, role=Role.CLERK, center=OTHER_CENTER, sub="clerk-b")
        refused = await client.get(f"/residents/{resident_id}", headers=other,
                                   params={"purpose": "curious"})
        assert refused.status_code == 404, "answered as for a resident nobody has"

        # The audit trail: the supervisor's, of their own center.
        assert (await client.get("/audit")).status_code == 403  # a clerk's token
        supervisor = bearer(settings, role=Role.SUPERVISOR, sub="supervisor-1")
        trail = (await client.get("/audit", headers=supervisor,
                                  params={"resident_id": resident_id})).json()["items"]
        seen = [(e["actor"], e["action"], e["outcome"], e["purpose"]) for e in trail]
        assert ("test-clerk", "read", "read", "follow-up call about the subsidy") in seen
        assert ("test-clerk", "lookup", "found", "returning resident at window 3") in seen
        # Refused as for nobody: the purpose is not kept, only its length.
        assert ("clerk-b", "read", "out_of_reach", "[purpose not kept: 7 characters]") in seen
        assert {e["action"] for e in trail} >= {"register", "lookup", "read"}
        elsewhere = bearer(settings, role=Role.SUPERVISOR, center=OTHER_CENTER, sub="sup-b")
        theirs = (await client.get("/audit", headers=elsewhere)).json()["items"]
        assert {e["actor"] for e in theirs} == {"clerk-b"}  # only their own staff's reads

        # Erasure: a supervisor's act; the key is destroyed, the case stays readable.
        assert (await client.delete(f"/residents/{resident_id}")).status_code == 403
        erased = await client.delete(f"/residents/{resident_id}", headers=supervisor)
        assert erased.status_code == 200, erased.text
        after = await client.get(f"/residents/{resident_id}", params={"purpose": "check"})
        assert after.json()["status"] == "erased" and after.json()["name"] is None
        gone = await client.post("/residents/lookup", json={
            "id_number": RESIDENT["id_number"], "purpose": "returning resident"})
        assert gone.status_code == 404
        shown = await client.get(f"/cases/{case}", params={"after": heard.json()["position"]})
        assert shown.status_code == 200 and shown.json()["resident_status"] == "erased"
        listed = await client.get("/cases", params={"resident_id": resident_id})
        assert [c["resident_status"] for c in listed.json()["items"]] == ["erased"]

        # Replay: the read model rebuilt from the log after the erasure is the same.
        async with Rebuild(settings, READ_MODEL) as rebuild:
            await rebuild.prepare()
            await rebuild.catch_up()
            assert (await rebuild.diff()).same
        shown = await client.get(f"/cases/{case}")
        assert shown.json()["resident_status"] == "erased"

    # The clear text is nowhere: not in any table of the service, not on the stream.
    messages = await stream_messages(settings)
    assert messages, "the case's events are on the stream"
    stream_text = "\n".join(m.data.decode() + str(m.headers or {}) for m in messages)
    assert leaks(stream_text) == []
    assert leaks(stream_text.encode().decode("unicode_escape", "ignore")) == []
    assert leaks(await raw_database_text(settings)) == []

    async def row_cleared() -> bool:
        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await conn.fetchrow(
                f'SELECT * FROM "{settings.schema_for("intake")}".residents')
        finally:
            await conn.close()
        return row["wrapped_key"] is None and row["id_tag"] is None and row["name"] is None

    await wait_until(row_cleared, timeout=2, what="the erased row to keep no key")


async def test_a_rotated_master_key_can_be_destroyed_once_the_vault_has_moved_on(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as desk:
        resident = (await desk.post("/residents", json=RESIDENT)).json()["resident_id"]
    old = settings.vault_master_key
    rotated = settings.model_copy(update={
        "vault_master_key": SecretStr("a-new-master-key-" + secrets.token_hex(16)),
        "vault_old_master_keys": [old]})
    async with running(create_app(rotated), role=Role.CLERK):
        pass  # the start re-wraps every bucket secret under the new key
    destroyed = rotated.model_copy(update={"vault_old_master_keys": []})
    async with running(create_app(destroyed), role=Role.CLERK) as desk:
        read = await desk.get(f"/residents/{resident}", params={"purpose": "check"})
        assert read.status_code == 200 and read.json()["name"] == RESIDENT["name"]
    conn = await asyncpg.connect(settings.database_url)
    try:
        files = await database_files(conn)
    finally:
        await conn.close()
    old_kid = hashlib.sha256(b"sixstep-vault-kid\x00" + HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sixstep-vault-master-v1"
    ).derive(old.get_secret_value().encode())).digest()[:8]
    wrapped_before = [blob for blob in (await _key_table(settings)) if blob[:8] == old_kid]
    assert wrapped_before == [] and files.count(old_kid) == 0, \
        "nothing wrapped by the destroyed key is left in the database files"


async def _key_table(settings: Settings) -> list[bytes]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return [bytes(r["secret"]) for r in await conn.fetch(
            f'SELECT secret FROM "{settings.schema_for("intake")}".vault_key_buckets')]
    finally:
        await conn.close()
