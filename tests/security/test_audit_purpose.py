"""The personal-data audit trail outlives an erasure: who read a resident, when and why stays
for the supervisor and the city. The *why* is typed by the clerk, and clerks write the person
into it ("给美玲阿姨回电"): it is scrubbed of the resident it is about, by name in every form,
phone, ID number and address, so nothing of them is left once they are erased."""

from __future__ import annotations

import uuid

import asyncpg

from services.intake.main import create_app
from shared.kernel.privacy import redact
from shared.security.principals import Role
from shared.settings import Settings
from tests.security.test_erasure_files import database_files
from tests.support import bearer, id_number, register_resident, running

NAME, PHONE = "诸葛美玲", "13722223333"


async def test_the_reasons_typed_for_reading_a_resident_keep_nothing_of_them_after_erasure(
        settings: Settings) -> None:
    number = id_number()
    async with running(create_app(settings)) as intake:
        resident = await register_resident(intake, id_=number, name=NAME, phone=PHONE)
        for purpose in (f"给{NAME}回电", "美玲阿姨的回访", f"核对手机{PHONE[:3]} {PHONE[3:]}"):
            r = await intake.get(f"/residents/{resident}", params={"purpose": purpose})
            assert r.status_code == 200, r.text
        r = await intake.post("/residents/lookup", headers={"Idempotency-Key": uuid.uuid4().hex},
                              json={"id_number": number, "purpose": "诸葛老师本人来窗口"})
        assert r.status_code == 200, r.text
        r = await intake.delete(f"/residents/{resident}")
        assert r.status_code == 200, r.text

        r = await intake.get("/audit", params={"resident_id": resident, "limit": 50})
        assert r.status_code == 200, r.text
        purposes = [e["purpose"] for e in r.json()["items"]]
    assert len(purposes) >= 5, purposes
    kept = " ".join(purposes)
    for trace in ("美玲", "诸葛", PHONE[3:]):
        assert trace not in kept, purposes
    assert "回电" in kept and "回访" in kept, "the reason itself stays"


OTHER = "SH-PD-ZHANGJIANG"
STRANGER = "欧阳秀凤"  # a name the generic redactor does not know as one


async def test_a_name_another_centers_clerk_types_as_their_purpose_is_kept_nowhere(
        settings: Settings) -> None:
    """Another center's clerk, with no standing for our resident, reads them by their opaque
    id with the resident's name typed as the purpose. The refusal opens nothing of the
    resident (its time must be a miss's), so the purpose cannot be scrubbed of their name: it
    is not kept at all, for their resident as for an id nobody has, and after the resident's
    erasure no file of the database holds the name."""
    purpose = f"核实{STRANGER}的低保"
    assert STRANGER in redact(purpose, None), "the generic redactor would have hidden it"
    async with running(create_app(settings), role=Role.SUPERVISOR) as home:
        resident = await register_resident(home, name=STRANGER)
        clerk_b = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-b")
        nobody = str(uuid.uuid4())
        for rid in (resident, nobody):
            for path in (f"/residents/{rid}", f"/residents/{rid}/masked"):
                r = await home.get(path, headers=clerk_b, params={"purpose": purpose})
                assert r.status_code == 404, r.text

        sup_b = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="sup-b")
        theirs = (await home.get("/audit", headers=sup_b, params={"actor": "clerk-b"})).json()
        by_id: dict[str, list[str]] = {}
        for e in theirs["items"]:
            by_id.setdefault(e["resident_id"], []).append(e["purpose"])
        assert by_id[resident] == by_id[nobody] and len(by_id[resident]) == 2, \
            "their trail shows our resident's refusal as it shows nobody's"
        ours = (await home.get("/audit", params={"resident_id": resident})).json()["items"]
        refused = [e["purpose"] for e in ours if e["outcome"] == "out_of_reach"]
        assert refused == by_id[resident], "the resident's center sees the same marker"
        assert all(STRANGER not in p for p in refused), refused

        assert (await home.delete(f"/residents/{resident}")).status_code == 200
        conn = await asyncpg.connect(settings.database_url)
        try:
            files = await database_files(conn)
        finally:
            await conn.close()
    assert STRANGER.encode() not in files, "the name typed as a purpose is in the database"


async def test_a_name_typed_as_the_purpose_of_a_lookup_that_finds_no_one_is_not_kept(
        settings: Settings) -> None:
    """A lookup that finds no one (a digit mistyped in the ID number of a resident on file,
    say) has nobody to scrub its purpose of, and the generic redactor leaves a name it does
    not know as one: the purpose is not kept, only its length."""
    purpose = f"核实{STRANGER}的身份"
    assert STRANGER in redact(purpose, None), "the generic redactor would have hidden it"
    async with running(create_app(settings)) as intake:
        r = await intake.post("/residents/lookup", headers={"Idempotency-Key": uuid.uuid4().hex},
                              json={"id_number": id_number(), "purpose": purpose})
        assert r.status_code == 404, r.text
        trail = (await intake.get("/audit", params={"action": "lookup"})).json()["items"]
    assert [e["purpose"] for e in trail] == [f"[purpose not kept: {len(purpose)} characters]"]
