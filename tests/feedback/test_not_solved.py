"""The resident's word reopens the case: "not solved" on the counter pad's survey, then at the
post-resolution check, each reopening the case once (also when the verdict is delivered
again), on the clerk's worklist, with the second and third resolutions in between. Staff cannot
rate a case they served (代评); a colleague's answer from a paper form is kept apart."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI

from services.feedback.main import create_app as feedback_app
from services.followup.domain import follow_up_id_for
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from services.intake.verdicts import Verdicts
from shared.contracts import Envelope
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.support import (
    TEST_CENTER,
    as_resident,
    bearer,
    headers,
    register_resident,
    running,
    stream_envelopes,
    wait_until,
)

FIRST, SECOND = "2026-11-25T10:00:00+08:00", "2026-11-25T11:00:00+08:00"
CHECKED = "2026-11-27T10:00:00+08:00"
THIRD = "2026-11-27T09:30:00+08:00"  # recorded after the check, dated when it was done


@dataclass
class Center:
    intake: httpx.AsyncClient
    feedback: httpx.AsyncClient
    followup: httpx.AsyncClient
    intake_app: FastAPI
    clock: Clock
    sender: KeptSender


@contextlib.asynccontextmanager
async def center(settings: Settings) -> AsyncIterator[Center]:
    settings = settings.model_copy(update={"feedback_tick_s": 0.05})
    clock, sender = Clock(datetime.fromisoformat("2026-11-25T10:05:00+08:00")), KeptSender()
    async with contextlib.AsyncExitStack() as stack:
        app = intake_app(settings, clock=ManualClock(datetime.fromisoformat(CHECKED)))
        intake = await stack.enter_async_context(running(app))
        feedback = await stack.enter_async_context(
            running(feedback_app(settings, sender=sender, clock=clock)))
        followup = await stack.enter_async_context(running(followup_app(
            settings, clock=ManualClock(datetime.fromisoformat(CHECKED)))))
        yield Center(intake, feedback, followup, app, clock, sender)


async def events_of(settings: Settings, case_id: str, type_: str) -> list[Envelope]:
    return [e for e in await stream_envelopes(settings)
            if e.type == type_ and str(e.case_id) == case_id]


async def resolve(intake: httpx.AsyncClient, case_id: str, at: str) -> None:
    r = await intake.post(f"/cases/{case_id}/resolve", headers=headers(key()), json={
        "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
        "occurred_at": at})
    assert r.status_code == 200, r.text


async def test_a_resident_says_not_solved_by_survey_and_by_phone_check(
        settings: Settings) -> None:
    async with center(settings) as c:
        resident = await register_resident(c.intake)
        r = await c.intake.post("/cases", headers=headers(key()), json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
            "resident_id": resident, "occurred_at": FIRST})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await c.intake.post(f"/cases/{case_id}/hear", headers=headers(key()),
                                json={"words": "临时救助的钱还没到账", "occurred_at": FIRST})
        assert r.status_code == 200, r.text
        await resolve(c.intake, case_id, FIRST)

        # The pad at the window asks at once; the resident is not satisfied, and says so.
        async def asked(n: int) -> bool:
            return sum(str(m.case_id) == case_id for m in c.sender.sent) >= n
        await wait_until(lambda: asked(1), what="the survey on the counter pad")
        pad = c.sender.sent[-1]
        answer: dict[str, Any] = {
            "token": pad.token, "level": "dissatisfied", "verdict": "not_solved",
            "reason_tags": ["等待太久", "多次跑腿"], "comment": "跑了三趟，打13812345678找我"}
        r = await as_resident(c.feedback).post(
                                  f"/surveys/{pad.survey_id}/rating", headers=headers(key()),
                                  json={**answer, "reason_tags": ["服务很差"]})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "reason_tags"
        r = await as_resident(c.feedback).post(
                                  f"/surveys/{pad.survey_id}/rating", headers=headers(key()),
                                  json=answer)
        assert r.status_code == 200, r.text

        # Intake hears it: the case is reopened, on the resident's word, by nobody's hand.
        async def reopened(n: int) -> list[Envelope]:
            found = await events_of(settings, case_id, "CaseReopened")
            return found if len(found) >= n else []
        await wait_until(lambda: _some(reopened(1)), what="the reopening on the verdict")
        (first_reopen,) = await reopened(1)
        (rating,) = await events_of(settings, case_id, "RatingGiven")
        assert first_reopen.payload == {"reason": "resident_says_unsolved",
                                        "judged_at": None}
        assert first_reopen.actor == "system:verdicts"
        assert first_reopen.causation_id == f"verdict:{rating.event_id}"
        assert (rating.payload["verdict"], rating.payload["reason_tags"]) == (
            "not_solved", ["等待太久", "多次跑腿"])
        assert "13812345678" not in rating.payload["comment"]

        # The bad review's rectification carries the reasons picked; the board shows them.
        (opened,) = await events_of(settings, case_id, "RectificationOpened")
        assert opened.payload["reason_tags"] == ["等待太久", "多次跑腿"]
        await wait_until(lambda: _board_has(c.feedback, opened.aggregate_id),
                         what="the rectification on the board")
        r = await c.feedback.get(f"/rectifications/{opened.aggregate_id}")
        assert r.json()["reason_tags"] == ["等待太久", "多次跑腿"]

        # Follow-up cancels the first resolution's check and puts the case before its clerk.
        (resolved_1,) = await events_of(settings, case_id, "CaseResolved")
        check_1 = follow_up_id_for("resolution", resolved_1.event_id)
        unsolved_1 = follow_up_id_for("unsolved", first_reopen.event_id)

        async def followed() -> bool:
            cancelled = {e.aggregate_id for e in await stream_envelopes(settings)
                         if e.type == "FollowUpCancelled"}
            r = await c.followup.get("/worklists/clerks/clerk-017",
                                     params={"center_id": TEST_CENTER})
            listed = {f["follow_up_id"] for part in ("overdue", "due_today", "upcoming")
                      for f in r.json()[part]}
            r = await c.followup.get(f"/worklists/centers/{TEST_CENTER}")
            on_board = {f["follow_up_id"] for part in ("overdue", "due_today", "upcoming")
                        for f in r.json()[part]}
            r = await c.intake.get("/cases", params={"clerk_id": "clerk-017", "status": "open"})
            open_cases = {item["case_id"] for item in r.json()["items"]}
            return (check_1 in cancelled and str(unsolved_1) in listed & on_board
                    and case_id in open_cases)
        await wait_until(followed, what="the check cancelled; the case on the clerk's and "
                                        "the supervisor's lists, open again")
        r = await c.followup.get(f"/followups/{unsolved_1}")
        assert (r.json()["reason"], r.json()["priority"]) == ("resident_says_unsolved", "high")

        # The clerk takes it up again and resolves it a second time (the follow-up it was
        # on the worklist for is then done with); the pad asks anew.
        await resolve(c.intake, case_id, SECOND)

        async def taken_up() -> bool:
            return any(e.type == "FollowUpCancelled" and e.aggregate_id == unsolved_1
                       for e in await stream_envelopes(settings))
        await wait_until(taken_up, what="the 'not solved' follow-up closed by the resolution")
        c.clock.advance(hours=1)
        await wait_until(lambda: asked(2), what="the second survey")
        second = c.sender.sent[-1]
        assert second.survey_id != pad.survey_id

        # No 代评: neither the clerk who served the resident nor the supervisor who recorded
        # the case's steps records its answer; a colleague from the paper form does.
        def staff(sub: str, role: Role = Role.CLERK) -> dict[str, str]:
            return {**headers(key()), **bearer(settings, role=role, sub=sub)}
        said = {"level": "satisfied", "verdict": "solved", "channel": "paper_form"}
        for who, role, body in (("clerk-017", Role.CLERK, {"clerk_id": "clerk-017"}),
                                ("test-supervisor", Role.SUPERVISOR, {"clerk_id": "clerk-021"}),
                                ("director-02", Role.SUPERVISOR, {"clerk_id": "clerk-017"})):
            r = await c.feedback.post(f"/surveys/{second.survey_id}/rating",
                                      headers=staff(who, role), json={**said, **body})
            assert r.status_code == 403, (who, r.text)
            assert r.json()["error"]["code"] == "self_rating"
        r = await c.feedback.post(f"/surveys/{second.survey_id}/rating",
                                  headers=staff("clerk-021"),
                                  json={**said, "clerk_id": "clerk-021"})
        assert r.status_code == 200, r.text
        r = await c.feedback.get(f"/surveys/{second.survey_id}",
                                 params={"after": r.json()["position"]})
        seen = r.json()
        assert (seen["via"], seen["staff_channel"], seen["recorded_by"], seen["verdict"]) == (
            "clerk", "paper_form", "clerk-021", "solved")

        # At the post-resolution check the resident says it is still not solved.
        resolved_2 = (await events_of(settings, case_id, "CaseResolved"))[1]
        check_2 = follow_up_id_for("resolution", resolved_2.event_id)

        async def check_planned() -> bool:
            return (await c.followup.get(f"/followups/{check_2}")).status_code == 200
        await wait_until(check_planned, what="the second resolution's check")
        r = await c.followup.post(f"/followups/{check_2}/complete", headers=headers(key()),
                                  json={"outcome": "needs_action", "channel": "phone",
                                        "verdict": "not_solved", "note": "还是没到账"})
        assert r.status_code == 200, r.text
        await wait_until(lambda: _some(reopened(2)), what="the reopening on the check")
        second_reopen = (await reopened(2))[1]
        (completed,) = [e for e in await events_of(settings, case_id, "FollowUpCompleted")
                        if e.aggregate_id == check_2]
        assert second_reopen.causation_id == f"verdict:{completed.event_id}"
        assert second_reopen.payload == {"reason": "resident_says_unsolved", "judged_at": None}
        await resolve(c.intake, case_id, THIRD)

        # Delivered again (a crash before the ack): nothing more is recorded. The check's
        # verdict was said after the third resolution's time: only its key stops it.
        repository = c.intake_app.state.runtime.application.repository
        version = repository.get(UUID(case_id)).version
        verdicts = Verdicts(c.intake_app.state.intake)
        for verdict in (rating, completed):
            assert await c.intake_app.state.intake.hear_unsolved(
                UUID(case_id), _verdict(verdict)) is False
        async with c.intake_app.state.pool.acquire() as conn:
            await verdicts.apply(conn, [rating, completed])
        assert repository.get(UUID(case_id)).version == version

        async def steps() -> list[str]:
            return [e.type for e in sorted(
                [e for e in await stream_envelopes(settings) if str(e.case_id) == case_id
                 and e.service == "intake"], key=lambda e: e.aggregate_version)]
        expected = ["CaseOpened", "RequestHeard", "CaseResolved", "CaseReopened",
                    "CaseResolved", "CaseReopened", "CaseResolved"]
        await wait_until(lambda: _same(steps(), expected), what="the third resolution")


async def _same(found: Any, expected: list[str]) -> bool:
    return await found == expected


async def _some(found: Any) -> bool:
    return bool(await found)


async def _board_has(client: httpx.AsyncClient, rectification_id: UUID) -> bool:
    r = await client.get("/rectifications", params={"center_id": TEST_CENTER})
    return any(i["rectification_id"] == str(rectification_id) and i["reason_tags"]
               for i in r.json()["items"])


def _verdict(e: Envelope) -> Any:
    from services.intake.application import Verdict
    return Verdict(e.event_id, e.occurred_at, e.correlation_id, e.center_id)
