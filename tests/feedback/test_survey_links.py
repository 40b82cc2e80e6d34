"""A survey link answers one survey, once, before its deadline; no answer stays no answer."""

from __future__ import annotations

from datetime import datetime

from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, START, center, fast, resolved_case
from tests.support import as_resident, bearer, headers, stream_envelopes, wait_until


async def test_a_link_answers_its_own_survey_once_before_its_deadline(settings: Settings) -> None:
    settings = fast(settings)
    clock, sender = Clock(START), KeptSender()
    async with center(settings, clock, sender) as (intake, feedback):
        at_counter = await resolved_case(intake)  # tablet, right away
        by_phone = await resolved_case(intake, channel="phone", emotion="calm")  # call back
        left = await resolved_case(intake, emotion="upset")  # tablet; never answered
        reopened = await resolved_case(intake, channel="home_visit", emotion="calm")  # SMS

        # Reopened before the text went out: that survey asks nothing any more.
        r = await intake.post(f"/cases/{reopened}/reopen", headers=headers(key()),
                              json={"reason": "居民补充了材料"})
        assert r.status_code == 200, r.text

        async def sent(n: int) -> bool:
            return len(sender.sent) >= n

        async def withdrawn() -> bool:
            return any(e.type == "SurveyWithdrawn" for e in await stream_envelopes(settings))
        await wait_until(lambda: sent(2), what="the two tablet surveys")
        await wait_until(withdrawn, what="the reopened case's survey withdrawn")
        # A rates on the pad at once (below); C's resident leaves without rating: once the
        # pad has shown it its ten minutes, C is asked by text, two hours after the
        # resolution (好差评: whoever did not rate on the spot gets a text).
        first = {str(m.case_id): m for m in reversed(sender.sent)}
        a, c = first[at_counter], first[left]
        assert (a.channel, c.channel) == ("tablet", "tablet")
        k = key()
        r = await as_resident(feedback).post(f"/surveys/{a.survey_id}/rating",
                                             headers=headers(k),
                                             json={"token": a.token, "level": "satisfied"})
        assert r.status_code == 200, r.text
        clock.advance(hours=2, minutes=1)
        await wait_until(lambda: sent(4), what="the phone callback and C's text")
        by_case = {str(m.case_id): m for m in sender.sent}
        assert reopened not in by_case, "a withdrawn survey is never sent"
        b, c = by_case[by_phone], by_case[left]
        assert (by_case[at_counter].channel, b.channel, c.channel) == (
            "tablet", "phone_callback", "sms")
        # The phone desk is handed no link: a clerk holding one would answer as the
        # resident, past the check of who served them (代评 by a second route).
        assert (b.token, b.link) == (None, None) and c.token and a.token

        # The phone desk's supervisor records answers for its clerks: never one of the staff
        # who served the resident (the test's own supervisor did: 代评).
        desk = bearer(settings, role=Role.SUPERVISOR, sub="director-09")

        async def rate(survey_id: str, k: str | None = None, **body: object) -> dict:
            link = "token" in body  # the resident's device; else staff
            r = await (as_resident(feedback) if link else feedback).post(
                f"/surveys/{survey_id}/rating",
                headers={**headers(k or key()), **(desk if "clerk_id" in body else {})},
                json={"level": "very_satisfied", **body})
            return {"status": r.status_code, **r.json()}

        # Someone else's case: the link of A's survey does not answer B's.
        wrong = await rate(str(b.survey_id), token=a.token)
        assert wrong["status"] == 403 and wrong["error"]["code"] == "token_wrong_case"
        forged = a.token[:-3] + ("AAA" if not a.token.endswith("AAA") else "BBB")
        bad = await rate(str(a.survey_id), token=forged)
        assert bad["status"] == 403 and bad["error"]["code"] == "token_invalid"
        assert (await rate(str(a.survey_id), token="nonsense"))["status"] == 403
        none = await rate(str(a.survey_id))
        assert none["status"] == 422, "a token or a clerk, one of them"

        # Once: a retry with the same key is the same answer; another answer is refused.
        retry = await rate(str(a.survey_id), k, token=a.token, level="satisfied")
        assert retry == r.json() | {"status": 200, "replayed": True}
        again = await rate(str(a.survey_id), token=a.token, level="very_dissatisfied")
        assert again["status"] == 409 and again["error"]["code"] == "survey_already_answered"

        # The phone desk calls back and records the answer; the resident's link is then spent.
        called = await rate(str(b.survey_id), clerk_id="clerk-021", level="basically_satisfied")
        assert called["status"] == 200
        assert (await rate(str(b.survey_id), clerk_id="clerk-021"))["status"] == 409

        withdrawn_id = next(e.aggregate_id for e in await stream_envelopes(settings)
                            if e.type == "SurveyWithdrawn")
        gone = await rate(str(withdrawn_id), clerk_id="clerk-021")
        assert gone["status"] == 409 and gone["error"]["code"] == "survey_withdrawn"

        # Seven days after the text (12:00) C's link has expired; the scheduler records no
        # answer.
        clock.set(datetime.fromisoformat("2026-12-02T12:01:00+08:00"))
        late = await rate(str(c.survey_id), token=c.token)
        assert late["status"] == 410 and late["error"]["code"] == "token_expired"

        async def expired() -> bool:
            return any(e.type == "SurveyExpired" for e in await stream_envelopes(settings))
        await wait_until(expired, what="the survey recorded as no answer")
        late = await rate(str(c.survey_id), clerk_id="clerk-021")
        assert late["status"] == 410 and late["error"]["code"] == "survey_expired"

        # No answer is never a satisfied answer: 2 of 3 answered, both satisfied: the
        # resident's own (the headline) and the one the phone desk recorded (apart). Read
        # after the expiry too: the scheduler writes it after the phone desk's answer, and a
        # figures consumer behind under load counted 2 of 2 read after the answer alone.
        expiry = max(e.position for e in await stream_envelopes(settings)
                     if e.type == "SurveyExpired")
        (row,) = (await feedback.get("/figures", params={
            "period": "all", "after": max(called["position"], expiry),
            "center_id": CENTER})).json()["rows"]
        assert row["response_rate"] == {"numerator": 2, "denominator": 3, "rate": 0.666667}
        assert row["satisfaction_rate"] == {"numerator": 1, "denominator": 1, "rate": 1.0}
        assert row["staff_recorded_satisfaction_rate"] == {"numerator": 1, "denominator": 1,
                                                            "rate": 1.0}
        assert row["staff_recorded_answers"] == 1

    expired_event = next(e for e in await stream_envelopes(settings)
                         if e.type == "SurveyExpired")
    assert expired_event.payload == {"survey_id": str(c.survey_id), "purpose": "resolution",
                                     "was_sent": True}
    assert str(expired_event.case_id) == left
