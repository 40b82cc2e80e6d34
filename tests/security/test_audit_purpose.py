"""The personal-data audit trail outlives an erasure: who read a resident, when and why stays
for the supervisor and the city. The *why* is typed by the clerk, and clerks write the person
into it ("给美玲阿姨回电"): it is scrubbed of the resident it is about, by name in every form,
phone, ID number and address, so nothing of them is left once they are erased."""

from __future__ import annotations

import uuid

from services.intake.main import create_app
from shared.settings import Settings
from tests.support import id_number, register_resident, running

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
