"""An erasure at the counter reaches every service: a resident who said no to contact and to
surveys is served, then erased, and follow-up and feedback let go of everything still open for
them. All through the real services: intake's vault and relay, the stream, follow-up's and
feedback's consumers (no event published by hand)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.bus.consumer import wait_for_position
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day
from tests.support import register_resident, stream_envelopes, wait_until

MONDAY = at(2026, 3, 2, 9)


async def test_a_resident_erased_after_their_visit_is_followed_up_and_surveyed_no_more(
        settings: Settings) -> None:
    async with center_day(settings, MONDAY, with_feedback=True) as center:
        assert center.feedback is not None and center.feedback_app is not None
        # Registered at the window: no calls, no surveys.
        resident = UUID(await register_resident(center.intake,
                                                consent={"contact": False, "surveys": False}))
        # Served at the counter: a deadline to keep, then resolved on the spot.
        case_id = await center.open_case(at(2026, 3, 2, 9, 10), resident)
        await center.step(case_id, "deadlines", {
            "due_on": "2026-03-13", "description": "补交收入证明",
            "occurred_at": at(2026, 3, 2, 9, 20).isoformat()})
        resolved = await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "当场受理", "emotion_defused": True,
            "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})

        # Barrier: both services have applied the resolution, and so (each consumer applies
        # intake's stream in order) the case before it and the consent given at registration.
        for app, consumer in ((center.app, "followup-rules"),
                              (center.feedback_app, "feedback-intake")):
            assert await wait_for_position(app.state.pool, consumer, "intake",
                                           resolved["position"], 10.0), consumer
        await center.settled()

        # What the center owes them anyway is a task without contact; no check after the
        # visit (that would be a call).
        [reminder] = await center.followups_of(case_id, 1, "the deadline's reminder")
        assert (reminder["reason"], reminder["status"], reminder["contact"]) == (
            "deadline_reminder", "scheduled", False)
        # The counter's tablet may ask a resident who is there; nothing by text or phone.
        [survey] = await surveys(center.feedback, case_id, 1)
        assert survey["channel"] == "tablet" and survey["status"] in ("requested", "sent")

        # At ten the resident asks to be erased; the supervisor does it.
        center.clock.set(at(2026, 3, 2, 10))
        r = await center.intake.delete(f"/residents/{resident}")
        assert r.status_code == 200, r.text

        async def let_go() -> bool:
            [f] = await center.followups_of(case_id, 1)
            [s] = await surveys(center.feedback, case_id, 1)
            return f["status"] == "cancelled" and s["status"] == "withdrawn"

        await wait_until(let_go, what="the reminder cancelled and the survey withdrawn")

    envelopes = await stream_envelopes(settings)
    [erased] = [e for e in envelopes if e.type == "ResidentErased"]
    assert erased.aggregate_id == resident and erased.case_id is None
    assert erased.payload == {"resident_id": str(resident)}, "no personal data on the bus"
    assert erased.occurred_at == at(2026, 3, 2, 10), "on the service's clock"
    [cancelled] = [e for e in envelopes if e.type == "FollowUpCancelled"]
    assert cancelled.aggregate_id == UUID(reminder["follow_up_id"])
    assert cancelled.payload["reason"] == "the resident's personal data was erased"
    [withdrawn] = [e for e in envelopes if e.type == "SurveyWithdrawn"]
    assert withdrawn.aggregate_id == UUID(survey["survey_id"])
    assert withdrawn.payload["because"] == "erased"
    asked = [e.payload["channel"] for e in envelopes if e.type == "SurveyRequested"]
    assert asked == ["tablet"], "no text, no callback: the resident did not agree to them"
    assert {e.center_id for e in (erased, cancelled, withdrawn)} == {CENTER}


async def surveys(feedback: Any, case_id: str, n: int) -> list[dict[str, Any]]:
    """The case's surveys in feedback's views, once there are ``n``."""
    found: list[dict[str, Any]] = []

    async def there() -> bool:
        nonlocal found
        r = await feedback.get(f"/cases/{case_id}/feedback")
        found = r.json()["surveys"] if r.status_code == 200 else []
        return len(found) >= n

    await wait_until(there, what=f"{n} survey(s) of the case")
    return found
