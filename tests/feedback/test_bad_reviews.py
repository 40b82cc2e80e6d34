"""Bad reviews the 好差评 way, the three services together: the verification contact the next
working morning, the supervisor's triage and the follow-up that moves to the track's deadline,
the clerk's appeal decided by another supervisor, a named resident's revisit that stays a task
until answered, and the figures worked out by hand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.contracts import Envelope
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, fast, resolved_case
from tests.support import as_resident, bearer, headers, running, stream_envelopes, wait_until


@contextlib.asynccontextmanager
async def center(settings: Settings, clock: Clock, sender: KeptSender, start: datetime
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(settings, clock=clock)))
        feedback = await stack.enter_async_context(
            running(feedback_app(settings, sender=sender, clock=clock)))
        await stack.enter_async_context(running(followup_app(settings,
                                                             clock=ManualClock(start))))
        yield intake, feedback


async def bad_review(intake: httpx.AsyncClient, feedback: httpx.AsyncClient,
                     sender: KeptSender, resolved_at: str, level: str = "dissatisfied"
                     ) -> tuple[str, dict]:
    """A case resolved at the counter, its tablet survey answered ``level`` by the resident;
    (case id, its rectification as the board shows it, or {} for a good answer)."""
    case_id, answered = await rated_case(intake, feedback, sender, resolved_at, level)
    seen = (await feedback.get(f"/cases/{case_id}/feedback",
                               params={"after": answered})).json()
    return case_id, (seen["rectifications"] or [{}])[0]


async def rated_case(intake: httpx.AsyncClient, feedback: httpx.AsyncClient,
                     sender: KeptSender, resolved_at: str, level: str) -> tuple[str, int]:
    """A case resolved at the counter, its tablet survey answered ``level`` by the resident;
    (case id, the position the answer was written at)."""
    case_id = await resolved_case(intake, at=resolved_at)

    async def surveyed() -> bool:
        return sender.for_case(case_id) is not None
    await wait_until(surveyed, what="the survey on the counter tablet")
    survey = sender.for_case(case_id)
    assert survey is not None
    r = await as_resident(feedback).post(f"/surveys/{survey.survey_id}/rating",
                                         headers=headers(key()),
                                         json={"token": survey.token, "level": level})
    assert r.status_code == 200, r.text
    return case_id, r.json()["position"]


async def followup_events(settings: Settings, type_: str, case_id: str) -> list[Envelope]:
    return [e for e in await stream_envelopes(settings)
            if e.type == type_ and str(e.case_id) == case_id]


@pytest.mark.parametrize(("resolved_at", "rated_at", "verify_at", "untriaged_deadline",
                          "triaged_at", "track", "deadline"), [
    # Friday evening: verified on Monday morning; 立行立改 triaged Monday, due Tuesday.
    ("2026-11-20T17:00:00+08:00", "2026-11-20T19:30:00+08:00", "2026-11-23T09:00:00+08:00",
     "2026-11-27", "2026-11-23T10:00:00+08:00", "immediate", "2026-11-24"),
    # Saturday 20 December 2025: verified Monday 22nd; 解释说明 from Monday 22nd, 15 working
    # days across New Year 2026 (1-3 January off, Sunday 4 January worked): 13 January.
    ("2025-12-19T16:00:00+08:00", "2025-12-20T11:00:00+08:00", "2025-12-22T09:00:00+08:00",
     "2025-12-29", "2025-12-22T10:00:00+08:00", "explain", "2026-01-13"),
])
async def test_a_bad_review_is_verified_the_next_working_morning_and_followed_on_its_track(
        settings: Settings, resolved_at: str, rated_at: str, verify_at: str,
        untriaged_deadline: str, triaged_at: str, track: str, deadline: str) -> None:
    settings = fast(settings)
    start = datetime.fromisoformat(rated_at)
    clock, sender = Clock(start), KeptSender()
    async with center(settings, clock, sender, start) as (intake, feedback):
        case_id, rectification = await bad_review(intake, feedback, sender, resolved_at)
        rectification_id = rectification["rectification_id"]
        assert (rectification["track"], rectification["deadline_on"]) == (
            "untriaged", untriaged_deadline)

        async def scheduled() -> dict[str, Envelope]:
            return {e.payload["reason"]: e for e in
                    await followup_events(settings, "FollowUpScheduled", case_id)
                    if e.payload["reason"] in ("verification", "rectification")}

        async def planned() -> bool:
            return len(await scheduled()) == 2
        await wait_until(planned, what="the verification and rectification follow-ups")
        by_reason = await scheduled()
        verification = by_reason["verification"]
        assert datetime.fromisoformat(verification.payload["due_at"]) == \
            datetime.fromisoformat(verify_at)
        assert verification.payload["source_id"] == rectification_id
        assert verification.payload["priority"] == "high"
        assert datetime.fromisoformat(by_reason["rectification"].payload["due_at"]) == \
            datetime.fromisoformat(f"{untriaged_deadline}T09:00:00+08:00")

        # Only a supervisor triages.
        clock.set(datetime.fromisoformat(triaged_at))
        r = await feedback.post(f"/rectifications/{rectification_id}/triage",
                                json={"track": track},
                                headers={**headers(key()), **bearer(settings, role=Role.CLERK,
                                                                     sub="clerk-017")})
        assert r.status_code == 403, r.text
        r = await feedback.post(f"/rectifications/{rectification_id}/triage",
                                json={"track": "at_once"}, headers=headers(key()))
        assert r.status_code == 422, r.text
        # Not by the supervisor who opened and resolved the case: their own work's track.
        r = await feedback.post(f"/rectifications/{rectification_id}/triage",
                                json={"track": track}, headers=headers(key()))
        assert r.status_code == 403 and r.json()["error"]["details"]["because"] == "served"
        r = await feedback.post(f"/rectifications/{rectification_id}/triage",
                                json={"track": track}, headers={**headers(key()), **bearer(
                                    settings, role=Role.SUPERVISOR, sub="director-01")})
        assert r.status_code == 200, r.text
        board = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "after": r.json()["position"]})).json()
        (item,) = board["items"]
        assert (item["track"], item["deadline_on"]) == (track, deadline)
        assert board["by_track"] == {"untriaged": 0, "immediate": 0, "limited": 0,
                                     "explain": 0, track: 1}

        # The rectification follow-up falls due on the track's deadline.
        async def moved() -> bool:
            return bool(await followup_events(settings, "FollowUpRescheduled", case_id))
        await wait_until(moved, what="the rectification follow-up to follow the triage")
        (rescheduled,) = await followup_events(settings, "FollowUpRescheduled", case_id)
        assert rescheduled.aggregate_id == by_reason["rectification"].aggregate_id
        assert rescheduled.payload["cause"] == "triaged"
        assert datetime.fromisoformat(rescheduled.payload["due_at"]) == \
            datetime.fromisoformat(f"{deadline}T09:00:00+08:00")

        # The outcome, on the deadline: on time. Not recorded by the supervisor who served
        # the case either (it would close the rectification of their own work's review).
        clock.set(datetime.fromisoformat(f"{deadline}T15:00:00+08:00"))
        r = await feedback.post(f"/rectifications/{rectification_id}/outcome",
                                json={"outcome": "rectified", "actions": "当面致歉并补办"},
                                headers=headers(key()))
        assert r.status_code == 403 and r.json()["error"]["details"]["because"] == "served"
        r = await feedback.post(f"/rectifications/{rectification_id}/outcome",
                                json={"outcome": "rectified", "actions": "当面致歉并补办"},
                                headers={**headers(key()), **bearer(
                                    settings, role=Role.SUPERVISOR, sub="director-01")})
        assert r.status_code == 200, r.text
        done = (await feedback.get(f"/rectifications/{rectification_id}",
                                   params={"after": r.json()["position"]})).json()
        assert (done["status"], done["on_time"], done["track"]) == ("completed", True, track)

        # Put right and recorded: the rectification follow-up is done, the verification no
        # longer waits; neither falls due, is missed and escalates a bad review dealt with.
        async def closed() -> bool:
            return bool(await followup_events(settings, "FollowUpCompleted", case_id)) and \
                bool(await followup_events(settings, "FollowUpCancelled", case_id))
        await wait_until(closed, what="the rectification follow-up done, the verification gone")
        (completed,) = await followup_events(settings, "FollowUpCompleted", case_id)
        assert completed.aggregate_id == by_reason["rectification"].aggregate_id
        assert (completed.payload["outcome"], completed.payload["channel"]) == ("done", "none")
        (cancelled,) = await followup_events(settings, "FollowUpCancelled", case_id)
        assert cancelled.aggregate_id == verification.aggregate_id


async def test_appeals_are_decided_by_another_supervisor_and_revisits_stay_open_until_answered(
        settings: Settings) -> None:
    settings = fast(settings)
    start = datetime.fromisoformat("2026-11-25T10:05:00+08:00")  # a Wednesday
    clock, sender = Clock(start), KeptSender()
    clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
    async with center(settings, clock, sender, start) as (intake, feedback):
        at = "2026-11-25T10:00:00+08:00"
        malicious_case, malicious = await bad_review(intake, feedback, sender, at)
        _, real = await bad_review(intake, feedback, sender, at, "very_dissatisfied")
        await bad_review(intake, feedback, sender, at, "satisfied")

        # The clerk appeals both, with reasons (personal data redacted).
        position = 0
        for rectification, reasons in (
                (malicious, "该居民把隔壁街道的事评到本窗口，电话13812345678"),
                (real, "居民对政策本身不满")):
            r = await feedback.post(f"/rectifications/{rectification['rectification_id']}"
                                    "/appeal", json={"reasons": reasons},
                                    headers={**headers(key()), **clerk})
            assert r.status_code == 200, r.text
            position = r.json()["position"]
        r = await feedback.post(f"/rectifications/{real['rectification_id']}/appeal",
                                json={"reasons": "again"}, headers={**headers(key()), **clerk})
        assert r.status_code == 409 and r.json()["error"]["code"] == "appeal_exists"
        r = await feedback.post(f"/rectifications/{real['rectification_id']}/appeal",
                                json={"reasons": "不是我的窗口"}, headers={
                                    **headers(key()),
                                    **bearer(settings, role=Role.CLERK, sub="clerk-021")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_actor"
        board = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "status": "appealed", "after": position})).json()
        assert board["appeals_waiting"] == 2 and len(board["items"]) == 2
        waiting = {i["rectification_id"]: i for i in board["items"]}
        assert "13812345678" not in waiting[malicious["rectification_id"]]["appeal_reasons"]
        assert waiting[malicious["rectification_id"]]["appealed_by"] == "clerk-017"

        # Not the clerk, not a supervisor who is the clerk: a supervisor other than the clerk.
        decision = {"decision": "upheld", "grounds": "malicious", "reasons": "经调取录像核实"}
        url = f"/rectifications/{malicious['rectification_id']}/appeal/decision"
        r = await feedback.post(url, json=decision, headers={**headers(key()), **clerk})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
        r = await feedback.post(url, json=decision, headers={
            **headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub="clerk-017")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_decision"
        r = await feedback.post(url, json={"decision": "upheld", "reasons": "x"},
                                headers=headers(key()))
        assert r.status_code == 422, "an upheld appeal says malicious or mistaken"
        director = bearer(settings, role=Role.SUPERVISOR, sub="director-01")
        r = await feedback.post(url, json=decision, headers={**headers(key()), **director})
        assert r.status_code == 200, r.text
        r = await feedback.post(f"/rectifications/{real['rectification_id']}/appeal/decision",
                                json={"decision": "rejected", "reasons": "差评属实"},
                                headers={**headers(key()), **director})
        assert r.status_code == 200, r.text
        board = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "status": "all", "after": r.json()["position"]})).json()
        assert board["appeals_waiting"] == 0 and board["open"] == 1
        states = {i["rectification_id"]: (i["status"], i["appeal"]) for i in board["items"]}
        assert states == {malicious["rectification_id"]: ("void", "upheld"),
                          real["rectification_id"]: ("open", "rejected")}
        r = await feedback.post(f"/rectifications/{malicious['rectification_id']}/outcome",
                                json={"outcome": "rectified", "actions": "nothing"},
                                headers=headers(key()))
        assert r.status_code == 409, "a void rectification takes no outcome"

        # Nothing left to verify or put right: follow-up cancels both.
        async def cancelled() -> bool:
            return len(await followup_events(settings, "FollowUpCancelled",
                                             malicious_case)) == 2
        await wait_until(cancelled, what="the upheld appeal's follow-ups to be cancelled")
        planned = {e.aggregate_id: e.payload["reason"] for e in await followup_events(
            settings, "FollowUpScheduled", malicious_case)}
        assert sorted(planned[e.aggregate_id] for e in await followup_events(
            settings, "FollowUpCancelled", malicious_case)) == ["rectification", "verification"]

        # The real one is put right; its revisit (by phone) goes unanswered for a week.
        clock.set(datetime.fromisoformat("2026-11-26T10:00:00+08:00"))
        r = await feedback.post(f"/rectifications/{real['rectification_id']}/outcome",
                                json={"outcome": "explained", "actions": "再次解释政策"},
                                headers={**headers(key()), **bearer(
                                    settings, role=Role.SUPERVISOR, sub="director-02")})
        assert r.status_code == 200, r.text
        first = r.json()["revisit_survey_id"]
        clock.set(datetime.fromisoformat("2026-12-03T13:00:00+08:00"))  # past its 7 days

        async def asked_again() -> bool:
            got = (await feedback.get(f"/rectifications/{real['rectification_id']}")).json()
            return got["revisit_attempt"] == 2
        await wait_until(asked_again, what="the unanswered revisit to be asked again")
        again = (await feedback.get(f"/rectifications/{real['rectification_id']}")).json()
        assert again["revisit_survey_id"] != first
        assert (again["status"], again["revisit_status"]) == ("completed", "requested")
        assert (await feedback.get(f"/surveys/{first}")).json()["status"] == "expired"
        second = (await feedback.get(f"/surveys/{again['revisit_survey_id']}")).json()
        assert (second["channel"], second["purpose"], second["status"]) == (
            "phone_callback", "revisit", "requested")
        board = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "status": "revisiting"})).json()
        assert board["revisits_waiting"] == 1
        assert [i["rectification_id"] for i in board["items"]] == [real["rectification_id"]]

        # By hand: resolution answers 3, one struck by the upheld appeal -> satisfied 1/2;
        # bad reviews 1 (the real one); appeals upheld 1; named bad reviews 1, revisited 0.
        figures = (await feedback.get("/figures", params={
            "period": "month", "as_of": "2026-12-03", "after": again["position"]})).json()
        november = next(row for row in figures["rows"] if row["period_start"] == "2026-11-01")
        assert november["satisfaction_rate"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
        assert november["response_rate"]["denominator"] == 3
        assert (november["bad_reviews"], november["appeals_upheld"],
                november["rectifications_opened"]) == (1, 1, 2)
        assert november["named_revisit_rate"] == {"numerator": 0, "denominator": 1,
                                                  "rate": 0.0}

        # A clerk phones and records the resident's answer: revisited.
        clock.set(datetime.fromisoformat("2026-12-03T16:00:00+08:00"))
        r = await feedback.post(f"/surveys/{again['revisit_survey_id']}/rating",
                                json={"clerk_id": "clerk-021", "level": "basically_satisfied"},
                                headers={**headers(key()), **bearer(
                                    settings, role=Role.CLERK, sub="clerk-021")})
        assert r.status_code == 200, r.text
        figures = (await feedback.get("/figures", params={
            "period": "month", "as_of": "2026-12-03", "after": r.json()["position"]})).json()
        november = next(row for row in figures["rows"] if row["period_start"] == "2026-11-01")
        assert november["named_revisit_rate"] == {"numerator": 1, "denominator": 1,
                                                  "rate": 1.0}
        board = (await feedback.get("/rectifications", params={
            "center_id": CENTER, "after": r.json()["position"]})).json()
        assert board["revisits_waiting"] == 0, "answered: the task is done"


async def test_a_bad_reviews_answer_is_at_its_rectification_so_a_read_after_it_shows_both(
        settings: Settings) -> None:
    """The rating and the rectification it opens are one commit: the answer's position is the
    later of the two, so ``?after=`` that position never shows the rating without it (it did,
    now and then, on a loaded machine: the position was the survey's event, and a read model
    that had applied the survey's event but not yet the rectification's answered at once)."""
    settings = fast(settings)
    start = datetime.fromisoformat("2026-11-20T17:00:00+08:00")
    clock, sender = Clock(start), KeptSender()
    async with center(settings, clock, sender, start) as (intake, feedback):
        case_id, answered = await rated_case(intake, feedback, sender,
                                             "2026-11-20T16:00:00+08:00", "dissatisfied")
        events = [e for e in await stream_envelopes(settings)
                  if e.service == "feedback" and str(e.case_id) == case_id]
        [rating] = [e for e in events if e.type == "RatingGiven"]
        [opened] = [e for e in events if e.type == "RectificationOpened"]
        assert answered == max(rating.position, opened.position)
        seen = (await feedback.get(f"/cases/{case_id}/feedback",
                                   params={"after": answered})).json()
        assert len(seen["rectifications"]) == 1
