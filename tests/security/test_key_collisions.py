"""Two counter apps of one center that make their Idempotency-Keys the same way ("tablet-open-0001",
"open-2", ... counted per tablet) send the same key for two different residents. A case, a
visit and a follow-up planned by hand take their id from the center and the key alone, so the
second clerk was answered with the first clerk's case ("replayed") and went on to record their
own resident's words, restatement and resolution on it. The same key from another caller is
now a 422 ``idempotency_key_reused``; the first caller's retry still replays."""

from __future__ import annotations

from datetime import timedelta

from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, register_resident, running

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


async def test_a_second_clerk_on_a_handed_over_case_is_not_answered_with_the_first_ones_action(
        settings: Settings) -> None:
    """A case handed from the phone line to the window: both tablets count their keys from 1,
    and the window clerk's referral was answered as the phone clerk's ('replayed') and never
    recorded. It is a 422 now; the phone clerk's retry on a refreshed token still replays."""
    first = bearer(settings, role=Role.CLERK, sub="clerk-001")
    second = bearer(settings, role=Role.CLERK, sub="clerk-002")
    async with running(create_intake(settings)) as intake:
        r = await intake.post("/cases", json=OPEN, headers={**first, KEY: "phone-0001"})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await intake.post(f"/cases/{case_id}/hear", json={"words": "想问失业金怎么领"},
                              headers={**first, KEY: "phone-0002"})
        assert r.status_code == 200, r.text
        action = {"kind": "referred", "description": "转介就业援助", "referred_to": "就业服务窗口"}
        r = await intake.post(f"/cases/{case_id}/actions", json=action,
                              headers={**first, KEY: "phone-0003"})
        assert r.status_code == 200 and r.json()["replayed"] is False, r.text
        version = r.json()["version"]

        r = await intake.post(f"/cases/{case_id}/actions",
                              json={**action, "description": "转介街道残联",
                                    "referred_to": "街道残联"},
                              headers={**second, KEY: "phone-0003"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"

        refreshed = bearer(settings, role=Role.CLERK, sub="clerk-001", ttl=timedelta(hours=2))
        assert refreshed != first
        r = await intake.post(f"/cases/{case_id}/actions", json=action,
                              headers={**refreshed, KEY: "phone-0003"})
        assert r.status_code == 200, r.text
        assert (r.json()["replayed"], r.json()["version"]) == (True, version)


async def test_a_second_clerk_adding_a_step_to_a_plan_is_not_answered_with_the_first_ones(
        settings: Settings) -> None:
    """The same on a resident's plan: the window clerk's step under the phone clerk's key was
    answered as the phone clerk's and never added."""
    first = bearer(settings, role=Role.CLERK, sub="clerk-001")
    second = bearer(settings, role=Role.CLERK, sub="clerk-002")
    async with running(create_intake(settings), role="clerk") as intake:
        resident = await register_resident(intake)
        step = {"service_item": "SA-ALLOWANCE-REVIEW", "effective_on": "2027-03-01",
                "what": "带收入证明来复核"}
        r = await intake.post("/plans", headers={**first, KEY: "phone-0001"}, json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "resident_id": resident,
            "title": "低保复核", "steps": [step]})
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]
        r = await intake.post(f"/plans/{plan_id}/steps", json=step,
                              headers={**first, KEY: "phone-0002"})
        assert r.status_code == 200 and r.json()["replayed"] is False, r.text
        r = await intake.post(f"/plans/{plan_id}/steps", json={**step, "what": "复查"},
                              headers={**second, KEY: "phone-0002"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"
        r = await intake.post(f"/plans/{plan_id}/steps", json=step,
                              headers={**first, KEY: "phone-0002"})
        assert r.status_code == 200 and r.json()["replayed"] is True, r.text
