"""A case handed over mid-day (转办): the colleague who has it now resolves it with the
resident before them, and their screen shows the survey as a QR code for the resident's phone.
Before, only the first responder named on the survey got the code: the clerk who handed the
case away saw it, the one sitting with the resident was refused (403)."""

from __future__ import annotations

from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, RESOLVED_AT, START, center, fast
from tests.support import bearer, headers, register_resident, wait_until


async def test_the_colleague_who_resolves_a_case_handed_over_shows_its_survey_qr(
        settings: Settings) -> None:
    settings = fast(settings)
    sender = KeptSender()
    async with center(settings, Clock(START), sender) as (intake, feedback):
        first = bearer(settings, role="clerk", sub="clerk-017")
        colleague = bearer(settings, role="clerk", sub="clerk-022")
        r = await intake.post("/cases", json={
            "center_id": CENTER, "counter_id": "window-3", "channel": "counter",
            "service_item": "SA-HARDSHIP-SUBSIDY", "occurred_at": RESOLVED_AT,
            "resident_id": await register_resident(intake)},
            headers={**headers(key()), **first})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        for who, step, payload in (
                (first, "hear", {"words": "我的临时救助还没批下来"}),
                (first, "handover", {"to_clerk": "clerk-022", "reason": "换班，交给王老师"}),
                (colleague, "concerns", {"emotion": "anxious", "urgency": "normal"}),
                (colleague, "resolve", {"outcome": "resolved", "explanation": "当场办结",
                                        "emotion_on_leaving": "calm"})):
            r = await intake.post(f"/cases/{case_id}/{step}",
                                  json={**payload, "occurred_at": RESOLVED_AT},
                                  headers={**headers(key()), **who})
            assert r.status_code == 200, (step, r.text)

        async def surveyed() -> bool:
            return any(str(m.case_id) == case_id for m in sender.sent)
        await wait_until(surveyed, what="the case's survey at the counter tablet")

        async def qr(who: dict[str, str]) -> int:
            return (await feedback.get(f"/cases/{case_id}/survey/qr", headers=who)).status_code

        async def waiting() -> bool:  # the survey's view is written by its own consumer
            return await qr(first) == 200
        await wait_until(waiting, what="the survey's QR code for its first responder")
        assert await qr(colleague) == 200
        assert await qr(bearer(settings, role="clerk", sub="clerk-031")) == 403
