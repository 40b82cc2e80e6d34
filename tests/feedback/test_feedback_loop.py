"""A bad review taken seriously: from a resolved case to a survey, a bad review, the
rectification follow-up, the outcome and the revisit — the three services together."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import httpx

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.support import (
    as_resident,
    bearer,
    headers,
    register_resident,
    running,
    stream_envelopes,
    wait_until,
)

CENTER = "SH-PD-HUAMU"
RESOLVED_AT = "2026-11-25T10:00:00+08:00"  # a Wednesday
START = datetime.fromisoformat("2026-11-25T10:05:00+08:00")


def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"feedback_tick_s": 0.05})


@contextlib.asynccontextmanager
async def center(settings: Settings, clock: Clock, sender: KeptSender,
                 with_followup: bool = False,
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(settings, clock=clock)))
        feedback = await stack.enter_async_context(
            running(feedback_app(settings, sender=sender, clock=clock)))
        if with_followup:
            await stack.enter_async_context(
                running(followup_app(settings, clock=ManualClock(START))))
        yield intake, feedback


async def resolved_case(intake: httpx.AsyncClient, *, channel: str = "counter",
                        emotion: str = "angry", at: str = RESOLVED_AT,
                        resident: bool = True) -> str:
    body = {"center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": channel, "service_item": "SA-HARDSHIP-SUBSIDY", "occurred_at": at}
    if resident:
        body["resident_id"] = await register_resident(intake)
    r = await intake.post("/cases", json=body, headers=headers(key()))
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    for step, payload in (("hear", {"words": "我的临时救助还没批下来"}),
                          ("concerns", {"emotion": emotion, "urgency": "high"}),
                          ("resolve", {"outcome": "resolved", "explanation": "当场办结",
                                       "emotion_defused": True})):
        r = await intake.post(f"/cases/{case_id}/{step}", json={**payload, "occurred_at": at},
                              headers=headers(key()))
        assert r.status_code == 200, (step, r.text)
    return case_id


async def test_a_bad_review_is_rectified_and_the_resident_asked_again(settings: Settings) -> None:
    settings = fast(settings)
    clock, sender = Clock(START), KeptSender()
    async with center(settings, clock, sender, with_followup=True) as (intake, feedback):
        case_id = await resolved_case(intake)

        # The counter tablet asks right away, with a single-use link.
        async def surveyed() -> bool:
            return any(str(m.case_id) == case_id for m in sender.sent)
        await wait_until(surveyed, what="the survey on the counter tablet")
        survey = sender.sent[0]
        assert survey.channel == "tablet" and survey.purpose == "resolution"
        assert survey.link.endswith(f"/{survey.survey_id}?t={survey.token}")

        r = await as_resident(feedback).post(
                                f"/surveys/{survey.survey_id}/rating", headers=headers(key()),
                                json={"token": survey.token, "level": "dissatisfied",
                                      "comment": "等了很久才有人理我，回电13812345678",
                                      "aspects": {"listened": 4, "explained_clearly": 2}})
        assert r.status_code == 200, r.text
        rated = r.json()

        r = await feedback.get(f"/cases/{case_id}/feedback",
                               params={"after": rated["position"]})
        assert r.status_code == 200, r.text
        seen = r.json()
        answer = seen["surveys"][0]
        assert answer["status"] == "answered" and answer["level"] == "dissatisfied"
        assert answer["via"] == "token" and answer["aspects"] == {"listened": 4,
                                                                  "explained_clearly": 2}
        assert "13812345678" not in answer["comment"]
        (rectification,) = seen["rectifications"]
        # Untriaged, the default track's 5 working days after Wednesday 25 November 2026.
        assert rectification["deadline_on"] == "2026-12-02"
        assert rectification["track"] == "untriaged" and rectification["named"] is True
        assert rectification["status"] == "open" and rectification["overdue"] is False
        rectification_id = rectification["rectification_id"]

        # Once is enough: the same link cannot answer again.
        r = await as_resident(feedback).post(
                                f"/surveys/{survey.survey_id}/rating", headers=headers(key()),
                                json={"token": survey.token, "level": "very_satisfied"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "survey_already_answered"

        # The follow-up service turns the bad review into a rectification follow-up.
        async def follow_up() -> list:
            return [e for e in await stream_envelopes(settings)
                    if e.type == "FollowUpScheduled" and e.payload["reason"] == "rectification"]
        await wait_until(lambda: _nonempty(follow_up), what="the rectification follow-up")
        (scheduled,) = await follow_up()
        assert scheduled.payload["source_id"] == str(rectification_id)
        assert str(scheduled.case_id) == case_id

        # The supervisor's board: open, and overdue once the deadline has passed.
        board = (await feedback.get("/rectifications", params={"center_id": CENTER})).json()
        assert board["open"] == 1 and board["overdue"] == 0
        late = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "status": "overdue", "as_of": "2026-12-03"})).json()
        assert [i["rectification_id"] for i in late["items"]] == [rectification_id]
        assert late["items"][0]["overdue"] is True

        # Put right on 1 December; the resident is asked again, by phone (REVISIT_CHANNEL).
        clock.set(datetime.fromisoformat("2026-12-01T10:00:00+08:00"))
        director = bearer(settings, role=Role.SUPERVISOR, sub="director-01")  # served nothing
        r = await feedback.post(f"/rectifications/{rectification_id}/outcome",
                                headers={**headers(key()), **director},
                                json={"outcome": "rectified",
                                      "actions": "科长上门道歉，补发救助金",
                                      "occurred_at": "2026-12-01T10:00:00+08:00"})
        assert r.status_code == 200, r.text
        revisit_id = r.json()["revisit_survey_id"]
        r = await feedback.post(f"/rectifications/{rectification_id}/outcome",
                                headers={**headers(key()), **director},
                                json={"outcome": "explained", "actions": "again"})
        assert r.status_code == 409, "the outcome is recorded once"

        clock.advance(hours=2, minutes=1)  # a callback waits survey_delay_minutes

        async def revisited() -> bool:
            return sender.for_survey(revisit_id) is not None
        await wait_until(revisited, what="the revisit survey")
        revisit = sender.for_survey(revisit_id)
        assert revisit is not None
        assert revisit.channel == "phone_callback" and revisit.purpose == "revisit"
        assert revisit.token is None, "the phone desk asks and records as staff"
        desk = bearer(settings, role=Role.CLERK, sub="clerk-021")
        r = await feedback.post(f"/surveys/{revisit_id}/rating",
                                headers={**headers(key()), **desk},
                                json={"clerk_id": "clerk-021", "level": "satisfied"})
        assert r.status_code == 200, r.text
        last = r.json()

        seen = (await feedback.get(f"/cases/{case_id}/feedback",
                                   params={"after": last["position"]})).json()
        assert [(s["purpose"], s["level"]) for s in seen["surveys"]] == [
            ("resolution", "dissatisfied"), ("revisit", "satisfied")]
        (done,) = seen["rectifications"]
        assert done["status"] == "completed" and done["on_time"] is True
        assert done["completed_on"] == "2026-12-01" and done["revisit_level"] == "satisfied"

        figures = (await feedback.get("/figures", params={
            "period": "month", "after": last["position"], "as_of": "2026-12-01"})).json()
        november, december = figures["rows"]
        assert november["period_start"] == "2026-11-01" and november["cases"] == 1
        assert november["satisfaction_rate"] == {"numerator": 0, "denominator": 1, "rate": 0.0}
        assert november["response_rate"]["rate"] == 1.0
        assert november["bad_reviews"] == 1
        assert november["rectification_on_time_rate"] == {"numerator": 1, "denominator": 1,
                                                          "rate": 1.0}
        assert december["revisit_satisfaction_rate"]["rate"] == 1.0

    mine = [e for e in await stream_envelopes(settings)
            if e.service == "feedback" and str(e.case_id) == case_id]
    assert [e.type for e in mine] == [
        "SurveyRequested", "SurveySent", "RatingGiven", "RectificationOpened",
        "RectificationCompleted", "RevisitRequested", "SurveyRequested", "SurveySent",
        "RatingGiven"]
    assert all(e.center_id == CENTER for e in mine)
    opened = next(e for e in mine if e.type == "RectificationOpened")
    assert set(opened.payload) >= {"rectification_id", "resident_id", "rating", "deadline_on",
                                   "summary"}
    assert opened.payload["rating"] == "dissatisfied"
    assert "[low marks: explained_clearly]" in opened.payload["summary"]
    assert all("13812345678" not in e.model_dump_json() for e in mine)
    assert all(survey.token not in e.model_dump_json() for e in mine), "tokens stay off the bus"


async def _nonempty(get) -> bool:  # type: ignore[no-untyped-def]
    return bool(await get())
