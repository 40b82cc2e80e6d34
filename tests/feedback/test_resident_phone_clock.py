"""A resident answers the survey on their own phone, whose clock is hours or minutes wrong (a
phone set by hand, a SIM bought abroad, a zone picked wrong). The answer is the resident's
verdict, dated by the service's clock as it is recorded: the phone's clock (its
``occurred_at``, its ``sent_at``) is not read, so it is never refused for it. Before, a rating
or a decline carrying a ``sent_at`` more than OCCURRED_AT_MAX_FUTURE_S off was a 422 telling
the resident to set their phone's clock, and the verdict was lost. On the year's last minutes
in Shanghai, on Sunday 20 December 2026 and on 29 February 2028 (a year the holiday package
does not know)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import center, fast, resolved_case
from tests.followup.story import at
from tests.support import as_resident, headers, stream_envelopes, wait_until

EDGES = [at(2026, 12, 31, 23, 58), at(2026, 12, 20, 23, 58), at(2028, 2, 29, 23, 58)]


@pytest.mark.parametrize("now", EDGES, ids=["new-year", "sunday-dec-20", "feb-29-2028"])
async def test_a_resident_whose_phone_clock_is_wrong_is_never_refused_for_it(
        settings: Settings, now: datetime) -> None:
    settings = fast(settings)
    clock, sender = Clock(now), KeptSender()
    async with center(settings, clock, sender) as (intake, feedback):
        rated = await resolved_case(intake, at=(now - timedelta(minutes=5)).isoformat())
        declined = await resolved_case(intake, at=(now - timedelta(minutes=4)).isoformat())

        async def asked() -> bool:
            return {rated, declined} <= {str(m.case_id) for m in sender.sent}
        await wait_until(asked, what="the tablet's two surveys")
        link = {str(m.case_id): m for m in sender.sent}

        # Two hours fast (the phone says 01:58 on the next day, the next year on 31 December).
        phone = now + timedelta(hours=2)
        k = key()
        body = {"token": link[rated].token, "level": "satisfied",
                "occurred_at": phone.isoformat(), "sent_at": phone.isoformat()}
        r = await as_resident(feedback).post(f"/surveys/{link[rated].survey_id}/rating",
                                             headers=headers(k), json=body)
        assert r.status_code == 200, r.text
        # The answer was lost: the phone sends it again a minute on, stamped anew.
        clock.advance(minutes=1)
        again = await as_resident(feedback).post(
            f"/surveys/{link[rated].survey_id}/rating", headers=headers(k),
            json=body | {"sent_at": (phone + timedelta(minutes=1)).isoformat()})
        assert again.status_code == 200 and again.json()["replayed"] is True, again.text

        # Twenty minutes slow, and in another zone: a decline.
        slow = (clock.now() - timedelta(minutes=20)).astimezone(
            datetime.fromisoformat("2026-01-01T00:00:00-05:00").tzinfo)
        r = await as_resident(feedback).post(
            f"/surveys/{link[declined].survey_id}/decline", headers=headers(key()),
            json={"token": link[declined].token, "occurred_at": slow.isoformat(),
                  "sent_at": slow.isoformat()})
        assert r.status_code == 200, r.text

    envelopes = await stream_envelopes(settings)
    got = {(e.type, str(e.case_id)): e.occurred_at for e in envelopes
           if e.type in ("RatingGiven", "SurveyDeclined")}
    assert got == {("RatingGiven", rated): now,
                   ("SurveyDeclined", declined): now + timedelta(minutes=1)}, got
