"""代办: a case applied for by a relative names two people on file, and a step's free text is
scrubbed of both: the beneficiary's and the applicant's own name, phone and ID number (the
clerk types what the daughter says, with her name in it)."""

from __future__ import annotations

import uuid

from services.intake.main import create_app as create_intake
from shared.settings import Settings
from tests.support import (
    TEST_CENTER,
    headers,
    id_number,
    register_resident,
    running,
    stream_envelopes,
    wait_until,
)

DAUGHTER, PHONE = "钱芳菲", "13787654321"


async def test_a_cases_steps_are_scrubbed_of_the_applicants_name_too(
        settings: Settings) -> None:
    number = id_number()
    async with running(create_intake(settings)) as intake:
        mother = await register_resident(intake)
        daughter = await register_resident(intake, id_=number, name=DAUGHTER, phone=PHONE)
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": mother,
            "applicant_id": daughter, "relation": "child",
            "proof_seen": "household_register"})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await intake.post(f"/cases/{case_id}/hear", headers=headers(f"k-{uuid.uuid4().hex}"),
                              json={"words": f"{DAUGHTER}住得远，{DAUGHTER}的手机 {PHONE[:3]} "
                                             f"{PHONE[3:7]} {PHONE[7:]}，身份证{number}"})
        assert r.status_code == 200, r.text

    async def heard() -> bool:
        return any(e.type == "RequestHeard" for e in await stream_envelopes(settings))
    await wait_until(heard, what="the step on the stream")
    (e,) = [e for e in await stream_envelopes(settings) if e.type == "RequestHeard"]
    words = e.payload["words"]
    assert DAUGHTER not in words and number not in words and "5432" not in words, words
