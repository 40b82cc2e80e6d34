"""One resolution survey a case a center day. A clerk who saw a bad rating coming reopened the
case before the resident pressed it (the survey withdrawn: counted nowhere) and resolved it
again for a fresh survey on the tablet, as often as they liked. Now a survey put before the
resident at the window stays open when staff reopen the case that day, and resolving it again
that day asks nothing new: the day's survey is the one rated. The resident's own "not solved"
still gets them asked anew (``test_not_solved``); a reopening on a later day withdraws as
before."""

from __future__ import annotations

from datetime import datetime

import httpx

from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import center, fast, resolved_case
from tests.support import as_resident, headers, stream_envelopes, wait_until

SUNDAY = "2026-12-20T10:30:00+08:00"  # Sunday 20 December 2026, a weekend service day


async def _post(intake: httpx.AsyncClient, case_id: str, step: str, at: str,
                **body: object) -> None:
    r = await intake.post(f"/cases/{case_id}/{step}", json={**body, "occurred_at": at},
                          headers=headers(key()))
    assert r.status_code == 200, r.text


async def test_reopened_and_resolved_again_the_same_day_the_first_survey_is_the_one_rated(
        settings: Settings) -> None:
    settings = fast(settings)
    sender = KeptSender()
    clock = Clock(datetime.fromisoformat("2026-12-20T10:31:00+08:00"))
    async with center(settings, clock, sender) as (intake, feedback):
        case_id = await resolved_case(intake, at=SUNDAY)
        await wait_until(lambda: _sent_for(sender, case_id, 1), what="the tablet survey")
        [first] = [m for m in sender.sent if str(m.case_id) == case_id]
        assert first.channel == "tablet"
        # The resident frowns at the tablet; the clerk reopens and resolves again.
        clock.advance(minutes=8)
        await _post(intake, case_id, "reopen", "2026-12-20T10:32:00+08:00",
                    reason="再核对一下材料")
        await _post(intake, case_id, "resolve", "2026-12-20T10:38:00+08:00",
                    outcome="resolved", explanation="当场办结", emotion_defused=True)
        # The resident rates the day's survey, still on the tablet.
        r = await as_resident(feedback).post(
            f"/surveys/{first.survey_id}/rating", headers=headers(key()),
            json={"token": first.token, "level": "very_dissatisfied"})
        assert r.status_code == 200, r.text
        # A barrier: another case resolved after it has its survey (the window's next
        # resident: the first survey's tablet link has done its work).
        later = await resolved_case(intake, at="2026-12-20T10:39:00+08:00")
        await wait_until(lambda: _sent_for(sender, later, 1), what="the later case's survey")
        assert [m.survey_id for m in sender.sent if str(m.case_id) == case_id] == [
            first.survey_id], "no fresh survey the same day"
        assert not [e for e in await stream_envelopes(settings)
                    if e.type == "SurveyWithdrawn"], "the day's survey was not withdrawn"


async def _sent_for(sender: KeptSender, case_id: str, n: int) -> bool:
    return len([m for m in sender.sent if str(m.case_id) == case_id]) >= n
