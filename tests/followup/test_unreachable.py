"""A follow-up call that does not reach the resident is tried again, the next working morning,
before the follow-up is closed as unreachable: one unanswered call on a Friday afternoon does
not end a post-resolution check (nor a bad review's revisit, which is a task until done)."""

from __future__ import annotations

from datetime import datetime

from services.followup.domain import UNREACHABLE_ATTEMPTS
from shared.settings import Settings
from tests.followup.story import at, center_day, key
from tests.support import headers


async def test_a_check_that_does_not_reach_the_resident_three_times_is_closed_as_unreachable(
        settings: Settings) -> None:
    assert UNREACHABLE_ATTEMPTS == 3
    async with center_day(settings, at(2026, 3, 6, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 6, 10))
        await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                               "occurred_at": at(2026, 3, 6, 16).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        follow_up_id = check["follow_up_id"]
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 3, 13, 9)

        async def call(now: datetime, idempotency_key: str) -> dict:
            center.clock.set(now)
            r = await center.followup.post(
                f"/followups/{follow_up_id}/complete", headers=headers(idempotency_key),
                json={"outcome": "unreachable", "channel": "phone", "note": "无人接听"})
            assert r.status_code == 200, r.text
            await center.settled()
            return await center.get(follow_up_id)

        # Friday 13 March: no answer. Tried again on Monday morning, still the case's clerk's.
        first = key()
        seen = await call(at(2026, 3, 13, 15), first)
        assert seen["status"] == "scheduled" and seen["assigned_clerk"] == "clerk-017"
        assert datetime.fromisoformat(seen["due_at"]) == at(2026, 3, 16, 9)
        # The counter app's retry of that answer is answered as the first was (not a 422).
        r = await center.followup.post(
            f"/followups/{follow_up_id}/complete", headers=headers(first),
            json={"outcome": "unreachable", "channel": "phone", "note": "无人接听"})
        assert r.status_code == 200, r.text
        assert (await center.get(follow_up_id))["due_at"] == seen["due_at"]

        # Monday: switched off; tried again on Tuesday. Tuesday: no answer, the last attempt.
        seen = await call(at(2026, 3, 16, 9, 30), key())
        assert seen["status"] == "scheduled"
        assert datetime.fromisoformat(seen["due_at"]) == at(2026, 3, 17, 9)
        seen = await call(at(2026, 3, 17, 11), key())
        assert (seen["status"], seen["outcome"]) == ("completed", "unreachable")

        # The resident reached on a later attempt completes it as usual.
        case_id = await center.open_case(at(2026, 3, 17, 11))
        await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                               "occurred_at": at(2026, 3, 17, 11).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        follow_up_id = check["follow_up_id"]
        await call(at(2026, 3, 24, 10), key())
        center.clock.set(at(2026, 3, 25, 9, 5))
        r = await center.followup.post(
            f"/followups/{follow_up_id}/complete", headers=headers(key()),
            json={"outcome": "done", "channel": "phone", "note": "已回访", "verdict": "solved"})
        assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.get(follow_up_id))["status"] == "completed"
