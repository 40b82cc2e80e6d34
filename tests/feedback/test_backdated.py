"""A rectification put right late and posted as done before its deadline: the supervisor's
``occurred_at`` is taken as said within the counter's grace (72 h), never further back."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from services.feedback.application import ResolvedCase
from services.feedback.domain import rectification_id_for
from services.feedback.main import create_app
from services.intake.main import create_app as intake_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.support import (
    TEST_CENTER,
    bearer,
    headers,
    register_resident,
    running,
    wait_until,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _bad_review(client: httpx.AsyncClient, settings: Settings, app: object) -> uuid.UUID:
    """A case resolved just now, rated dissatisfied on the phone: its rectification's id."""
    feedback = app.state.feedback  # type: ignore[attr-defined]
    resolved = ResolvedCase(
        case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
        clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY", intake_channel="online",
        resident_id=None, resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
    survey_id = (await feedback.request_survey(resolved)).aggregate_id
    r = await client.post(f"/surveys/{survey_id}/rating", json={
        "level": "dissatisfied", "clerk_id": "clerk-017"},
        headers={**headers(key()), **bearer(settings, role=Role.CLERK, sub="clerk-017")})
    assert r.status_code == 200, r.text
    return rectification_id_for(survey_id)


async def _done(client: httpx.AsyncClient, settings: Settings, rectification_id: uuid.UUID,
                occurred_at: str) -> dict:
    r = await client.post(f"/rectifications/{rectification_id}/outcome", json={
        "outcome": "rectified", "actions": "当面致歉并补办", "occurred_at": occurred_at},
        headers={**headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub="sup-007")})
    assert r.status_code == 200, r.text
    r = await client.get(f"/rectifications/{rectification_id}",
                         params={"after": r.json()["position"]})
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_rectification_posted_on_sunday_december_20_as_done_on_the_4th_is_late(
        settings: Settings) -> None:
    """A bad review of Tuesday 1 December (5 working days: due Tuesday 8 December), put right
    and recorded on Sunday 20 December saying 4 December: before, it counted on time
    (整改按时率). It is judged on 17 December, feedback's clock less the grace: late. Within
    the grace the word stands: one recorded at 00:10 on 1 January 2027 (a provisional year)
    saying 23:50 on New Year's Eve was done on 31 December."""
    clock = Clock(datetime(2026, 12, 1, 10, tzinfo=SHANGHAI))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        late = await _bad_review(client, settings, app)
        clock.set(datetime(2026, 12, 20, 10, tzinfo=SHANGHAI))
        done = await _done(client, settings, late, "2026-12-04T10:00:00+08:00")
        assert (done["deadline_on"], done["completed_on"], done["on_time"]) == (
            "2026-12-08", "2026-12-17", False), done

        clock.set(datetime(2026, 12, 30, 10, tzinfo=SHANGHAI))
        eve = await _bad_review(client, settings, app)
        clock.set(datetime(2027, 1, 1, 0, 10, tzinfo=SHANGHAI))
        done = await _done(client, settings, eve, "2026-12-31T23:50:00+08:00")
        assert (done["completed_on"], done["on_time"]) == ("2026-12-31", True), done


async def test_a_resolution_dated_back_past_the_answer_window_is_still_asked_about(
        settings: Settings) -> None:
    """Opened at the window on Tuesday 1 December and resolved there that day, the clerk
    says, in a post of Sunday 20 December: its survey was timed from 1 December, expired on
    the 8th, so none was asked (a clerk escaped the resident's rating of a late case by
    dating it back). Timed from judged_at (17 December), it is asked where the resident is
    now (not on the window's tablet) and answers for the 7 days from then."""
    sunday = datetime(2026, 12, 20, 10, tzinfo=SHANGHAI)
    clock = Clock(sunday)
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(settings, clock=clock)))
        feedback = await stack.enter_async_context(running(create_app(
            settings.model_copy(update={"feedback_tick_s": 0.05}), sender=KeptSender(),
            clock=clock)))
        said = "2026-12-01T10:00:00+08:00"
        r = await intake.post("/cases", json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY", "occurred_at": said,
            "resident_id": await register_resident(intake)}, headers=headers(key()))
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        for step, body in (("hear", {"words": "补贴没到账"}), ("resolve", {
                "outcome": "resolved", "explanation": "已补发", "emotion_defused": True})):
            r = await intake.post(f"/cases/{case_id}/{step}", json={**body, "occurred_at": said},
                                  headers=headers(key()))
            assert r.status_code == 200, r.text

        async def asked() -> list[dict]:
            r = await feedback.get(f"/cases/{case_id}/feedback",
                                   headers=bearer(settings, role=Role.SUPERVISOR, sub="sup-007"))
            assert r.status_code in (200, 404), r.text  # 404: nothing asked yet
            return r.json().get("surveys", []) if r.status_code == 200 else []

        async def any_asked() -> bool:
            return bool(await asked())
        await wait_until(any_asked, what="the backdated resolution's survey")
        [survey] = await asked()
        assert survey["channel"] == "sms", survey
        assert datetime.fromisoformat(survey["expires_at"]) > sunday, survey
