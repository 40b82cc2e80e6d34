"""代评 across the new steps: the clerk a case was handed to (转办) who then served the
resident with guidance sessions and a placement (employment aid) served the case, and may not
record its survey answer (403 ``self_rating``), nor may the colleague asked to help (帮办); a
colleague who never touched it may."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from services.feedback.main import create_app as create_feedback
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import KeptSender
from tests.followup.story import CENTER, at, quiet
from tests.support import bearer, headers, register_resident, running, wait_until


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any],
               who: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(path, json=body,
                             headers={**headers(f"k-{uuid.uuid4().hex}"), **(who or {})})


async def test_the_clerk_handed_the_case_who_served_it_cannot_record_its_answer(
        settings: Settings) -> None:
    settings = quiet(settings)
    clock = ManualClock(at(2026, 4, 2, 9))
    sender = KeptSender()
    async with running(create_intake(settings, clock=clock)) as intake, \
            running(create_feedback(settings, sender=sender, clock=clock)) as feedback:
        resident = await register_resident(intake)
        r = await post(intake, "/cases", {
            "center_id": CENTER, "counter_id": "studio-emp", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "EMP-EMPLOYMENT-ASSISTANCE",
            "resident_id": resident, "occurred_at": at(2026, 4, 1, 9).isoformat()})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await post(intake, f"/cases/{case_id}/hear", {
            "words": "想找份工作", "occurred_at": at(2026, 4, 1, 9).isoformat()})
        assert r.status_code == 200, r.text
        r = await post(intake, f"/cases/{case_id}/handover",
                       {"to_clerk": "clerk-021", "reason": "就业指导由专员跟进"})
        assert r.status_code == 200, r.text
        owner = bearer(settings, role=Role.CLERK, center=CENTER, sub="clerk-021")
        r = await post(intake, f"/cases/{case_id}/guidance-sessions",
                       {"held_on": "2026-04-01", "topic": "career_guidance"}, owner)
        assert r.status_code == 200, r.text
        r = await post(intake, f"/cases/{case_id}/placement",
                       {"employed_on": "2026-04-01", "employer_type": "enterprise"}, owner)
        assert r.status_code == 200, r.text
        r = await post(intake, f"/cases/{case_id}/actions", {
            "kind": "escalated", "description": "请同事帮办社保转移", "owner_clerk": "clerk-044"},
            owner)
        assert r.status_code == 200, r.text
        r = await post(intake, f"/cases/{case_id}/resolve", {
            "outcome": "resolved", "explanation": "已就业", "emotion_defused": True,
            # the day the resident came, at the window: the tablet asks them at once
            "occurred_at": at(2026, 4, 1, 16).isoformat()})
        assert r.status_code == 200, r.text

        async def asked() -> bool:
            return any(str(m.case_id) == case_id for m in sender.sent)
        await wait_until(asked, what="the survey of the resolved case")
        survey = next(m for m in sender.sent if str(m.case_id) == case_id).survey_id
        said = {"level": "very_satisfied", "verdict": "solved", "channel": "phone_callback"}
        helper = bearer(settings, role=Role.CLERK, center=CENTER, sub="clerk-044")
        for who, sub in ((owner, "clerk-021"), (helper, "clerk-044")):
            r = await post(feedback, f"/surveys/{survey}/rating", {**said, "clerk_id": sub}, who)
            assert r.status_code == 403, (sub, r.text)
            assert r.json()["error"]["code"] == "self_rating"
        colleague = bearer(settings, role=Role.CLERK, center=CENTER, sub="clerk-033")
        r = await post(feedback, f"/surveys/{survey}/rating",
                       {**said, "clerk_id": "clerk-033"}, colleague)
        assert r.status_code == 200, r.text
