"""Two counter apps of one center that make their Idempotency-Keys the same way ("tablet-open-0001",
"open-2", ... counted per tablet) send the same key for two different residents. A case, a
visit and a follow-up planned by hand take their id from the center and the key alone, so the
second clerk was answered with the first clerk's case ("replayed") and went on to record their
own resident's words, restatement and resolution on it. The same key from another caller is
now a 422 ``idempotency_key_reused``; the first caller's retry still replays."""

from __future__ import annotations

from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, running

KEY = "Idempotency-Key"
OPEN = {"center_id": TEST_CENTER, "counter_id": "window-1", "channel": "counter",
        "service_item": "SA-HARDSHIP-SUBSIDY"}


async def test_a_key_another_clerk_used_does_not_hand_over_their_case(
        settings: Settings) -> None:
    first = bearer(settings, role=Role.CLERK, sub="clerk-001")
    second = bearer(settings, role=Role.CLERK, sub="clerk-002")
    async with running(create_intake(settings)) as intake:
        r = await intake.post("/cases", json=OPEN, headers={**first, KEY: "tablet-open-0001"})
        assert r.status_code == 201 and r.json()["replayed"] is False, r.text
        case_id = r.json()["id"]

        r = await intake.post("/cases", json={**OPEN, "counter_id": "window-2"},
                              headers={**second, KEY: "tablet-open-0001"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"

        r = await intake.post("/cases", json=OPEN, headers={**first, KEY: "tablet-open-0001"})
        assert (r.status_code, r.json()["id"], r.json()["replayed"]) == (201, case_id, True)

        visit = {"center_id": TEST_CENTER, "counter_id": "window-1"}
        r = await intake.post("/visits", json=visit, headers={**first, KEY: "tablet-visit-0001"})
        assert r.status_code == 201, r.text
        r = await intake.post("/visits", json={**visit, "counter_id": "window-2"},
                              headers={**second, KEY: "tablet-visit-0001"})
        assert r.status_code == 422, r.text

    async with running(create_followup(settings)) as followup:
        plan = {"center_id": TEST_CENTER, "assigned_clerk": "clerk-001", "reason": "home_visit",
                "due_at": "2026-12-10T09:00:00+08:00"}
        r = await followup.post("/followups", json=plan,
                                headers={**first, KEY: "tablet-followup-0001"})
        assert r.status_code == 201, r.text
        r = await followup.post("/followups", json={**plan, "assigned_clerk": "clerk-002"},
                                headers={**second, KEY: "tablet-followup-0001"})
        assert r.status_code == 422, r.text
        r = await followup.post("/followups", json=plan,
                                headers={**first, KEY: "tablet-followup-0001"})
        assert r.status_code == 201 and r.json()["replayed"] is True, r.text
