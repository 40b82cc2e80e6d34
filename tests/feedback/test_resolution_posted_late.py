"""A resolution posted late (the counter page's offline queue, within the 72 h grace that keeps
its moment): the survey's call goes when it reaches feedback, and the answer window's days
run from that day. Counted from the resolution, two days of the seven were gone before
anyone could call, and the no answer was recorded early. At the calendar's edges: Sunday 20
December, New Year's Eve at 23:30 in Shanghai, a 2028 Friday evening."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import center, fast, resolved_case
from tests.support import wait_until

#: (the resolution's own moment, when it reached the services)
POSTED_LATE = {
    "thursday_sent_sunday_20_december": ("2026-12-17T15:00:00+08:00",
                                         "2026-12-20T10:00:00+08:00"),
    "new_years_eve_23_30": ("2026-12-29T14:00:00+08:00", "2026-12-31T23:30:00+08:00"),
    "a_2028_friday_18_00": ("2028-03-09T14:00:00+08:00", "2028-03-10T18:00:00+08:00"),
}


@pytest.mark.parametrize("story", list(POSTED_LATE))
async def test_a_resolution_posted_late_gives_the_resident_the_whole_answer_window(
        settings: Settings, story: str) -> None:
    said, sent = (datetime.fromisoformat(t) for t in POSTED_LATE[story])
    # No quiet hours at this center: the call goes at once.
    settings = fast(settings).model_copy(update={"survey_quiet_from": time(0),
                                                 "survey_quiet_until": time(0)})
    clock, sender = Clock(sent), KeptSender()
    async with center(settings, clock, sender) as (intake, feedback):
        case_id = await resolved_case(intake, channel="phone", emotion="calm",
                                      at=said.isoformat())

        async def called() -> bool:
            return sender.for_case(case_id) is not None
        await wait_until(called, what="the phone callback handed to the desk")
        r = await feedback.get(f"/surveys/{sender.for_case(case_id).survey_id}")
        assert r.status_code == 200, r.text
        # Planned two hours after the resolution, it goes when it reaches feedback: the
        # window's seven days run from that day (at the planned hour).
        planned = said + timedelta(minutes=settings.survey_delay_minutes)
        days = settings.survey_answer_days + (sent.date() - planned.date()).days
        expires_at = datetime.fromisoformat(r.json()["expires_at"])
        assert expires_at == planned + timedelta(days=days)
