"""A clerk's tablet counts its Idempotency-Keys from 1 again after a reinstall, and sends a key it
already used with what the clerk has just typed: other words heard, a follow-up on another
day, another rating. Each was answered ``replayed: true`` with the first command's result, and
what the clerk typed was dropped under a success. The same key with another command is now a
422 ``idempotency_key_reused`` and records nothing; the very same command sent again (a retry
after a lost answer, its JSON spelled another way) still replays the first answer, also after
a restart, and two copies racing each other are one write and one replay or one refusal."""

from __future__ import annotations

import asyncio
import json

import httpx

from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import START, center, fast, resolved_case
from tests.support import TEST_CENTER, as_resident, headers, running, wait_until

OPEN = {"center_id": TEST_CENTER, "counter_id": "window-1", "channel": "counter",
        "service_item": "SA-HARDSHIP-SUBSIDY"}


def spelled_otherwise(body: dict[str, object]) -> bytes:
    """``body`` as another client would send it: keys in reverse order, spaces between."""
    return json.dumps(dict(reversed(body.items())), indent=3, separators=(" , ", " :  "),
                      ensure_ascii=False).encode()


async def post_raw(client: httpx.AsyncClient, path: str, body: dict[str, object],
                   key: str) -> httpx.Response:
    return await client.post(path, content=spelled_otherwise(body),
                             headers={**headers(key), "Content-Type": "application/json"})


def refused(r: httpx.Response) -> bool:
    return r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_key_sent_again_with_other_words_is_refused_and_a_retry_still_replays(
        settings: Settings) -> None:
    async with running(create_intake(settings)) as intake:
        r = await intake.post("/cases", json=OPEN, headers=headers("tablet-7-open-0001"))
        assert r.status_code == 201 and r.json()["replayed"] is False, r.text
        case_id = r.json()["id"]
        r = await post_raw(intake, "/cases", OPEN, "tablet-7-open-0001")
        assert (r.status_code, r.json()["id"], r.json()["replayed"]) == (201, case_id, True)
        r = await intake.post("/cases", json={**OPEN, "counter_id": "window-2"},
                              headers=headers("tablet-7-open-0001"))
        assert refused(r), r.text

        hear = f"/cases/{case_id}/hear"
        r = await intake.post(hear, json={"words": "我的临时救助还没批下来"},
                              headers=headers("tablet-7-hear-0001"))
        assert r.status_code == 200 and r.json()["replayed"] is False, r.text
        heard = r.json()
        r = await post_raw(intake, hear, {"words": "我的临时救助还没批下来"}, "tablet-7-hear-0001")
        assert r.status_code == 200 and r.json() == {**heard, "replayed": True}, r.text
        # The reinstalled tablet's key 0001 again, with what the clerk typed now.
        r = await intake.post(hear, json={"words": "低保的材料要补什么"},
                              headers=headers("tablet-7-hear-0001"))
        assert refused(r), r.text

        # Two copies of one key racing: another command is refused, the same one replayed.
        # (Texts are told apart by their shape: the digest keeps nothing a name could be
        # found again from, tests/unit/test_command_digests.py; these two differ in length.)
        racing = await asyncio.gather(*(
            intake.post(hear, json={"words": words}, headers=headers("tablet-7-hear-0002"))
            for words in ("房子漏水了", "想问廉租房的事")))
        assert sorted(r.status_code for r in racing) == [200, 422], [r.text for r in racing]
        assert refused(next(r for r in racing if r.status_code == 422))
        assert next(r for r in racing if r.status_code == 200).json()["replayed"] is False
        twins = await asyncio.gather(*(
            intake.post(hear, json={"words": "再确认一下"}, headers=headers("tablet-7-hear-0003"))
            for _ in range(2)))
        assert [r.status_code for r in twins] == [200, 200], [r.text for r in twins]
        assert sorted(r.json()["replayed"] for r in twins) == [False, True]
        assert len({r.json()["version"] for r in twins}) == 1
        last = twins[0].json()["version"]

    # After a restart the aggregate is loaded from the store: its keys' digests with it.
    async with running(create_intake(settings)) as intake:
        r = await intake.post(hear, json={"words": "低保的材料要补什么"},
                              headers=headers("tablet-7-hear-0001"))
        assert refused(r), r.text
        r = await intake.post(hear, json={"words": "我的临时救助还没批下来"},
                              headers=headers("tablet-7-hear-0001"))
        assert r.status_code == 200 and r.json() == {**heard, "replayed": True}, r.text
        # Nothing was recorded by the refused commands: the next word is the next version.
        r = await intake.post(hear, json={"words": "谢谢"}, headers=headers("tablet-7-hear-0004"))
        assert r.status_code == 200 and r.json()["version"] == last + 1, r.text


async def test_a_follow_up_planned_again_under_its_key_for_another_day_is_refused(
        settings: Settings) -> None:
    plan = {"center_id": TEST_CENTER, "assigned_clerk": "clerk-001", "reason": "home_visit",
            "due_at": "2026-12-10T09:00:00+08:00"}
    other_day = {**plan, "due_at": "2026-12-11T09:00:00+08:00"}
    async with running(create_followup(settings)) as followup:
        r = await followup.post("/followups", json=plan, headers=headers("tablet-7-fu-0001"))
        assert r.status_code == 201 and r.json()["replayed"] is False, r.text
        first = r.json()
        r = await post_raw(followup, "/followups", plan, "tablet-7-fu-0001")
        assert r.status_code == 201 and r.json() == {**first, "replayed": True}, r.text
        r = await followup.post("/followups", json=other_day, headers=headers("tablet-7-fu-0001"))
        assert refused(r), r.text

        racing = await asyncio.gather(*(
            followup.post("/followups", json=body, headers=headers("tablet-7-fu-0002"))
            for body in (plan, other_day)))
        assert sorted(r.status_code for r in racing) == [201, 422], [r.text for r in racing]
        assert next(r for r in racing if r.status_code == 201).json()["replayed"] is False

        r = await followup.get(f"/followups/{first['id']}",
                               params={"after": first["position"]})
        assert r.status_code == 200, r.text
        assert (r.json()["due_at"], r.json()["version"]) == ("2026-12-10T01:00:00+00:00", 1)


async def test_a_rating_sent_again_under_its_key_with_another_level_is_refused(
        settings: Settings) -> None:
    settings = fast(settings)
    clock, sender = Clock(START), KeptSender()
    async with center(settings, clock, sender) as (intake, feedback):
        case_id = await resolved_case(intake, emotion="calm")

        async def surveyed() -> bool:
            return sender.for_case(case_id) is not None
        await wait_until(surveyed, what="the survey on the counter tablet")
        survey = sender.for_case(case_id)
        assert survey is not None
        rate = f"/surveys/{survey.survey_id}/rating"
        answer = {"token": survey.token, "level": "satisfied", "comment": "办得很快"}
        r = await as_resident(feedback).post(rate, json=answer,
                                             headers=headers("tablet-7-rate-0001"))
        assert r.status_code == 200 and r.json()["replayed"] is False, r.text
        first = r.json()
        r = await post_raw(feedback, rate, answer, "tablet-7-rate-0001")
        assert r.status_code == 200 and r.json() == {**first, "replayed": True}, r.text
        r = await as_resident(feedback).post(rate, json={**answer, "level": "very_dissatisfied"},
                                             headers=headers("tablet-7-rate-0001"))
        assert refused(r), r.text
