"""The counter's tablet asks the resident who is at the window. A counter case resolved on a
later day than the resident's last trip about it (the documents came by post, the back office
finished it, the resident reopened it by phone) is asked where the resident is: by SMS, or
by a clerk's call when nobody is on file. Before, its survey went to the tablet of the window
where the case was opened, days later, and the rating pad there offered it to whoever sat
down next: a stranger could rate the case, and its resident was never asked."""

from __future__ import annotations

from uuid import uuid4

import httpx

from services.feedback.application import SurveyPolicy
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, RESOLVED_AT, START, center, fast
from tests.support import bearer, headers, register_resident, wait_until

YESTERDAY = "2026-11-24T16:30:00+08:00"  # the day before START, at the window


def test_the_tablet_asks_only_a_resident_at_the_window() -> None:
    policy = SurveyPolicy()
    resident = uuid4()
    assert policy.channel_for("counter", resident) == "tablet"
    assert policy.channel_for("counter", resident, at_window=False) == "sms"
    assert policy.channel_for("counter", None, at_window=False) == "phone_callback"
    assert policy.channel_for("phone", resident, at_window=False) == "phone_callback"


async def _opened(intake: httpx.AsyncClient, at: str, resident: bool = True) -> str:
    body = {"center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY", "occurred_at": at}
    if resident:
        body["resident_id"] = await register_resident(intake)
    r = await intake.post("/cases", json=body, headers=headers(key()))
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    r = await intake.post(f"/cases/{case_id}/hear", json={"words": "材料回家找", "occurred_at": at},
                          headers=headers(key()))
    assert r.status_code == 200, r.text
    return str(case_id)


async def _resolve(intake: httpx.AsyncClient, case_id: str) -> None:
    r = await intake.post(f"/cases/{case_id}/resolve", json={
        "outcome": "resolved", "explanation": "材料已邮寄收到", "emotion_defused": True,
        "occurred_at": RESOLVED_AT}, headers=headers(key()))
    assert r.status_code == 200, r.text


async def _asked(feedback: httpx.AsyncClient, *case_ids: str) -> dict[str, tuple[str, str]]:
    """Each case's survey, as (channel, window), once all of them have one."""
    async def surveys() -> dict[str, tuple[str, str]]:
        out = {}
        for case_id in case_ids:
            r = await feedback.get(f"/cases/{case_id}/feedback")
            assert r.status_code in (200, 404), r.text  # 404: nothing asked yet
            for s in r.json().get("surveys", []):
                out[case_id] = (s["channel"], s["counter_id"])
        return out

    async def all_asked() -> bool:
        return len(await surveys()) == len(case_ids)
    await wait_until(all_asked, what="a survey for each resolution")
    return await surveys()


async def test_a_case_resolved_after_the_resident_went_home_is_not_asked_on_the_tablet(
        settings: Settings) -> None:
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (intake, feedback):
        home = await _opened(intake, YESTERDAY)  # resolved today, in the back office
        nobody = await _opened(intake, YESTERDAY, resident=False)
        back = await _opened(intake, YESTERDAY)  # came back today, to another window
        r = await intake.post("/visits", json={
            "center_id": CENTER, "counter_id": "window-5", "case_id": back,
            "occurred_at": "2026-11-25T09:40:00+08:00"},
            headers={**headers(key()), **bearer(settings, role="clerk", sub="clerk-031")})
        assert r.status_code == 201, r.text
        for case_id in (home, nobody, back):
            await _resolve(intake, case_id)

        assert await _asked(feedback, home, nobody, back) == {
            home: ("sms", "window-3"), nobody: ("phone_callback", "window-3"),
            back: ("tablet", "window-5")}

        # The pad at window-5 offers the returning resident their survey, under the name of
        # the clerk who received them there, not the first responder of window-3.
        made = await feedback.post("/pads/pairings", json={"counter_id": "window-5"})
        assert made.status_code == 201, made.text
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        assert paired.status_code == 200, paired.text
        pad = {"X-Pad-Token": paired.json()["pad_token"]}

        async def offered() -> bool:
            r = await feedback.get("/pads/next", headers=pad)
            assert r.status_code == 200, r.text
            return r.json()["survey"] is not None
        await wait_until(offered, what="the returning resident's survey on window-5's pad")
        now = (await feedback.get("/pads/next", headers=pad)).json()
        assert now["clerk_id"] == "clerk-031", now


async def test_a_resident_who_called_about_the_case_is_not_asked_on_a_tablet(
        settings: Settings) -> None:
    """A trip naming the case is a call (the phone line's counter) or a clerk's home visit:
    resolved that day, the case is asked by SMS at its window, as after any day the resident
    went home. Before, the call counted as a trip to a window: the survey went to a tablet at
    the phone line (or the visiting clerk's desk), where no resident is, and was never seen."""
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (intake, feedback):
        called = await _opened(intake, YESTERDAY)
        visited = await _opened(intake, YESTERDAY)
        for case_id, channel, counter in ((called, "phone", "hotline-1"),
                                          (visited, "home_visit", "outreach-2")):
            r = await intake.post("/visits", json={
                "center_id": CENTER, "counter_id": counter, "channel": channel,
                "case_id": case_id, "occurred_at": "2026-11-25T09:40:00+08:00"},
                headers={**headers(key()), **bearer(settings, role="clerk", sub="clerk-040")})
            assert r.status_code == 201, r.text
            await _resolve(intake, case_id)

        assert await _asked(feedback, called, visited) == {
            called: ("sms", "window-3"), visited: ("sms", "window-3")}
