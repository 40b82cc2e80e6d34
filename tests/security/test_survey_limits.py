"""The survey answer is open to residents without an account, so each of their tokens is rate
limited: a leaked link cannot flood the service."""

from __future__ import annotations

import uuid

from services.feedback.application import ResolvedCase
from services.feedback.main import create_app
from shared.http.limits import TokenBuckets
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, headers, running


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = TokenBuckets(rate_per_s=1.0, burst=2)
    assert [bucket.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert bucket.take("b", now=0.0) == 0.0  # per key
    assert bucket.take("a", now=1.0) == 0.0


async def test_survey_answers_are_limited_per_token(settings: Settings) -> None:
    limited = settings.model_copy(update={"survey_rate_burst": 2,
                                          "survey_rate_per_minute": 1.0})
    survey = uuid.uuid4()
    answer = {"level": "satisfied"}
    async with running(create_app(limited), anonymous=True) as client:
        none = await client.post(f"/surveys/{survey}/rating", json=answer,
                                 headers=headers("rate-none-1"))
        assert none.status_code == 401 and none.json()["error"]["code"] == "token_missing"

        link = {**answer, "token": "a-leaked-or-made-up-link-token"}
        codes = [(await client.post(f"/surveys/{survey}/rating", json=link,
                                    headers=headers(f"rate-link-{i}"))).status_code
                 for i in range(3)]
        assert codes == [403, 403, 429]  # token_invalid twice, then the bucket is empty
        limited_answer = await client.post(f"/surveys/{survey}/rating", json=link,
                                           headers=headers("rate-link-9"))
        assert limited_answer.json()["error"]["code"] == "rate_limited"
        assert int(limited_answer.headers["retry-after"]) >= 1

        # A resident's bearer token, bound to one case: its own bucket.
        resident = bearer(limited, role=Role.RESIDENT, center=TEST_CENTER,
                          case_id=uuid.uuid4(), sub="resident-link")
        codes = [(await client.post(f"/surveys/{survey}/rating", json=answer,
                                    headers={**headers(f"rate-res-{i}"), **resident}))
                 .status_code for i in range(3)]
        assert codes == [404, 404, 429]

        # Staff record answers at the counter: not limited per token, but role-checked.
        analyst = bearer(limited, role=Role.ANALYST, center=None)
        r = await client.post(f"/surveys/{survey}/rating", json={**answer, "clerk_id": "c-1"},
                              headers={**headers("rate-analyst"), **analyst})
        assert r.status_code == 403


async def test_a_link_spelled_another_way_is_refused_and_opens_no_fresh_bucket(
        settings: Settings) -> None:
    """Base64 decoding skips characters outside its alphabet and extra padding: the same link
    with junk in it verified, and each spelling had a rate-limit bucket of its own."""
    limited = settings.model_copy(update={"survey_rate_burst": 2,
                                          "survey_rate_per_minute": 1.0})
    app = create_app(limited)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback
        resolved = ResolvedCase(
            case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-1",
            clerk_id="clerk-001", service_item="SA-HARDSHIP-SUBSIDY", intake_channel="counter",
            resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(),
            resolved_at=feedback.clock.now())
        survey = (await feedback.request_survey(resolved)).aggregate_id
        token = (await feedback.send_survey(survey)).token
        body, _, mac = token.partition(".")
        spellings = [f"{body[:5]}!{body[5:]}.{mac}", f"{body}.{mac}==",
                     f"{body}.{mac[:4]}*{mac[4:]}"]

        async def answer(link: str, n: str) -> tuple[int, str]:
            r = await client.post(f"/surveys/{survey}/rating", headers=headers(f"spelled-link-{n}"),
                                  json={"level": "satisfied", "token": link})
            return r.status_code, r.json().get("error", {}).get("code", "")

        assert await answer(spellings[0], "a") == (403, "token_invalid")
        assert await answer(token, "b") == (200, "")
        assert await answer(token, "c") == (409, "survey_already_answered")
        assert await answer(token, "d") == (429, "rate_limited")
        # Junk in the link: refused before the store is asked, whatever the bucket says.
        for i, link in enumerate(spellings[1:]):
            status, code = await answer(link, f"e{i}")
            assert status in (403, 429) and code in ("token_invalid", "rate_limited"), code
