"""A follow-up done late and posted as done on its due day, while the scheduler was down (it
would have recorded it missed): ``occurred_at`` stands within the counter's grace (72 h), no
further back."""

from __future__ import annotations

from datetime import datetime

from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.support import headers, stream_envelopes


async def test_a_task_due_on_the_14th_posted_done_on_sunday_december_20_is_judged_on_the_17th(
        settings: Settings) -> None:
    """Due Monday 14 December; completed on Sunday 20 December saying 14 December 11:00, the
    scheduler not having run since: recorded as said, judged on 17 December 10:00 (the clock
    less 72 h), so followups_on_time_rate does not count it (tests/unit/test_backdating.py).
    One posted at 00:10 on 1 January 2027 saying 23:50 on New Year's Eve stands."""
    async with center_day(settings, at(2026, 12, 14, 8, 30), with_intake=False) as center:
        api = center.followup
        done: dict[str, str] = {}
        for due_on, said, now in (("2026-12-14", at(2026, 12, 14, 11), at(2026, 12, 20, 10)),
                                  ("2026-12-31", at(2026, 12, 31, 23, 50),
                                   at(2027, 1, 1, 0, 10))):
            r = await api.post("/followups", headers=headers(key()), json={
                "center_id": CENTER, "reason": "home_visit", "due_on": due_on,
                "assigned_team": "followup-desk"})
            assert r.status_code == 201, r.text
            follow_up_id = r.json()["id"]
            center.clock.set(now)
            r = await api.post(f"/followups/{follow_up_id}/complete", headers=headers(key()),
                               json={"outcome": "done", "channel": "none",
                                     "occurred_at": said.isoformat()})
            assert r.status_code == 200, r.text
            done[follow_up_id] = due_on
    completed = {str(e.aggregate_id): e for e in await stream_envelopes(settings)
                 if e.type == "FollowUpCompleted"}
    [late, eve] = [completed[i] for i in done]
    assert late.occurred_at == at(2026, 12, 14, 11)
    assert datetime.fromisoformat(late.payload["judged_at"]) == at(2026, 12, 17, 10)
    assert eve.payload["judged_at"] is None
