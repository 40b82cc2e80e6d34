"""A plan's free text is scrubbed of its beneficiary's own name, phone and ID number, as a
case's is: the title and each step's ``what`` are typed by a clerk who has the resident in
front of them ("王秀英的就业帮扶计划"), and the plan's events go on the bus and into exports."""

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

NAME = "王秀英"  # register_resident's made-up resident


async def test_a_plans_title_and_steps_are_scrubbed_of_the_beneficiarys_name(
        settings: Settings) -> None:
    number = id_number()
    async with running(create_intake(settings)) as intake:
        resident = await register_resident(intake, id_=number)
        r = await intake.post("/plans", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "resident_id": resident,
            "title": f"{NAME}的就业帮扶计划",
            "steps": [{"service_item": "EMP-EMPLOYMENT-ASSISTANCE",
                       "effective_on": "2026-12-10", "what": f"{NAME}先办失业登记"}]})
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]
        r = await intake.post(f"/plans/{plan_id}/steps",
                              headers=headers(f"k-{uuid.uuid4().hex}"), json={
                                  "service_item": "EMP-CAREER-GUIDANCE",
                                  "effective_on": "2026-12-20",
                                  "what": f"{NAME}（身份证{number}）参加职业指导"})
        assert r.status_code == 200, r.text

    async def both() -> bool:
        return sum(e.type.startswith("Plan") for e in await stream_envelopes(settings)) >= 2
    await wait_until(both, what="the plan's events on the stream")
    plans = [e for e in await stream_envelopes(settings) if e.type.startswith("Plan")]
    for e in plans:
        text = str(e.payload)
        assert NAME not in text and number not in text, (e.type, text)
