"""An id of another kind of aggregate in a route's path (a case's id where a plan's or a
hint's is asked for) is a 404 for that kind, never a 500."""

from __future__ import annotations

import uuid

from services.intake.main import create_app as create_intake
from shared.settings import Settings
from tests.support import TEST_CENTER, headers, register_resident, running


async def test_a_case_id_where_a_plan_or_a_hint_is_asked_for_is_a_404(
        settings: Settings) -> None:
    async with running(create_intake(settings)) as intake:
        resident = await register_resident(intake)
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": resident})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await intake.post("/plans", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "resident_id": resident,
            "title": "帮扶计划", "steps": [{"service_item": "SA-HARDSHIP-SUBSIDY",
                                          "effective_on": "2026-12-10", "what": "先申请"}]})
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]
        tries = {
            f"/plans/{case_id}/steps": {"service_item": "SA-HARDSHIP-SUBSIDY",
                                        "effective_on": "2026-12-20", "what": "再复核"},
            f"/plans/{case_id}/links": {"step": 1, "case_id": case_id},
            f"/hints/{case_id}/taken": {},
            f"/hints/{case_id}/dismissed": {},
            f"/cases/{plan_id}/hear": {"words": "想问问"},
            f"/cases/{plan_id}/handover": {"to_clerk": "clerk-021", "reason": "转办"},
            f"/cases/{plan_id}/due-date": {"due_on": "2026-12-30", "note": "改期"},
            f"/cases/{plan_id}/guidance-sessions": {"held_on": "2026-12-01",
                                                    "topic": "career_guidance"},
        }
        for path, body in tries.items():
            r = await intake.post(path, json=body, headers=headers(f"k-{uuid.uuid4().hex}"))
            assert r.status_code == 404, (path, r.status_code, r.text)
