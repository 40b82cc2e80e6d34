"""A bad review is appealed within RECTIFICATION_APPEAL_WORKING_DAYS (5) working days of the
review's day, judged on feedback's clock: later, a 409 ``appeal_window_closed`` naming the day
it closed, and nothing recorded. Until stop 51 there was no window: a supervisor could appeal
a 差评 of last year and take it out of the figures. An appeal lodged in time is decided after
the window all the same."""

from __future__ import annotations

from datetime import datetime

from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_bad_reviews import bad_review, center
from tests.feedback.test_feedback_loop import fast
from tests.support import bearer, headers


async def test_a_bad_review_of_sunday_20_december_is_appealed_until_monday_28_not_after(
        settings: Settings) -> None:
    settings, sunday = fast(settings), datetime.fromisoformat("2026-12-20T10:05:00+08:00")
    clerk, director = (bearer(settings, role=role, sub=sub) for role, sub in (
        (Role.CLERK, "clerk-017"), (Role.SUPERVISOR, "director-01")))
    clock, sender = Clock(sunday), KeptSender()
    async with center(settings, clock, sender, sunday) as (intake, feedback):
        at = "2026-12-20T10:00:00+08:00"
        _, late = await bad_review(intake, feedback, sender, at)
        _, in_time = await bad_review(intake, feedback, sender, at, "very_dissatisfied")
        # Monday 28 December at 16:00, the window's last day (as from Monday 21: 22-25, 28).
        clock.set(datetime.fromisoformat("2026-12-28T16:00:00+08:00"))
        r = await feedback.post(f"/rectifications/{in_time['rectification_id']}/appeal",
                                json={"reasons": "居民评错了窗口"},
                                headers={**headers(key()), **clerk})
        assert r.status_code == 200, r.text
        # Tuesday 29, and a supervisor for the clerk: closed, whatever occurred_at says.
        clock.set(datetime.fromisoformat("2026-12-29T09:30:00+08:00"))
        r = await feedback.post(f"/rectifications/{late['rectification_id']}/appeal",
                                json={"reasons": "补充申诉",
                                      "occurred_at": "2026-12-28T16:00:00+08:00"},
                                headers={**headers(key()), **director})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "appeal_window_closed"
        assert error["details"]["closed_on"] == "2026-12-28"
        # The appeal lodged in time is decided after the window (a colleague, not the clerk).
        r = await feedback.post(f"/rectifications/{in_time['rectification_id']}/appeal/decision",
                                json={"decision": "rejected", "reasons": "差评属实"},
                                headers={**headers(key()), **director})
        assert r.status_code == 200, r.text
