"""An upheld appeal cancels its follow-ups even when feedback's clock is a few minutes ahead of
follow-up's (another machine): the rule cancels at follow-up's own time, as the outcome's rule
completes at it. Stamped with feedback's moment, the cancellation was refused as a moment too
far ahead (OCCURRED_AT_MAX_FUTURE_S) and the rule dead-lettered: the verification call and the
rectification stayed on the desk, fell due and escalated a review that no longer counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_bad_reviews import bad_review, center, followup_events
from tests.feedback.test_feedback_loop import fast
from tests.support import bearer, headers, wait_until


async def test_an_upheld_appeal_cancels_its_follow_ups_whatever_feedbacks_clock_says(
        settings: Settings) -> None:
    start = datetime.fromisoformat("2026-11-25T10:05:00+08:00")  # a Wednesday
    behind = start - timedelta(minutes=10)  # follow-up's machine, ten minutes behind
    settings, clock, sender = fast(settings), Clock(start), KeptSender()
    clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
    director = bearer(settings, role=Role.SUPERVISOR, sub="director-01")
    async with center(settings, clock, sender, behind) as (intake, feedback):
        case_id, rectification = await bad_review(intake, feedback, sender,
                                                  "2026-11-25T10:00:00+08:00")
        url = f"/rectifications/{rectification['rectification_id']}/appeal"

        async def planned() -> bool:
            return {"verification", "rectification"} <= {e.payload["reason"] for e in
                                                         await followup_events(
                                                             settings, "FollowUpScheduled",
                                                             case_id)}
        await wait_until(planned, what="the verification and the rectification planned")
        r = await feedback.post(url, json={"reasons": "该居民把隔壁街道的事评到本窗口"},
                                headers={**headers(key()), **clerk})
        assert r.status_code == 200, r.text
        r = await feedback.post(f"{url}/decision", json={
            "decision": "upheld", "grounds": "malicious", "reasons": "经调取录像核实"},
            headers={**headers(key()), **director})
        assert r.status_code == 200, r.text

        async def cancelled() -> bool:
            return len(await followup_events(settings, "FollowUpCancelled", case_id)) == 2
        await wait_until(cancelled, what="the upheld appeal's follow-ups cancelled")
