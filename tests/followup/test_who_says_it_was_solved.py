""""Was your matter solved?" at the post-resolution check is the resident's word: the
residents' resolution rate counts each case's latest. The check is the case's clerk's task, so
the clerk (or whoever else served the resident) recorded "solved" for their own work, over a
resident's "partly" on the survey: 代评 through the check, where the survey's answer is refused
to them (403 ``self_rating``). A colleague who did not serve the resident records it; the
case's own staff complete the check without a verdict, or record a "not solved" they heard
(against their own figures: it reopens the case, as they could themselves).

Nor do they work a bad review's verification (回访核实) or rectification follow-up: the team's,
which any clerk could complete, cancel or move (no token names a team)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import datetime

import asyncpg
import httpx

from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.followup.test_help_and_referrals import first
from tests.followup.test_rules import _publish_feedback
from tests.support import bearer, headers, stream_envelopes


def as_(center: Center, sub: str, role: Role = Role.CLERK) -> dict[str, str]:
    return headers(key()) | bearer(center.settings, role=role, sub=sub, center=CENTER)


async def test_the_staff_who_served_a_resident_do_not_record_that_it_was_solved(
        settings: Settings) -> None:
    """A case opened by the test supervisor for clerk-017, handed to clerk-033 and resolved
    at 23:30 on New Year's Eve (its check falls in 2027, a year the holiday package does not
    know), clerk-044 having heard the resident out: none of the four records "solved" or
    "partly" at its check; clerk-021 does."""
    async with center_day(settings, at(2026, 12, 31, 23, 0)) as center:
        case_id = await center.open_case(at(2026, 12, 31, 23, 0))
        # clerk-044 only heard the resident out (RequestHeard): served them all the same.
        heard = await center.intake.post(
            f"/cases/{case_id}/hear", headers=as_(center, "clerk-044"),
            json={"words": "还想问问医保", "occurred_at": at(2026, 12, 31, 23, 5).isoformat()})
        assert heard.status_code == 200, heard.text
        await center.step(case_id, "handover", {"to_clerk": "clerk-033", "reason": "转办"})
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": at(2026, 12, 31, 23, 30).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        assert check["reason"] == "post_resolution_check"
        center.clock.set(datetime.fromisoformat(check["due_at"]))

        async def complete(who: dict[str, str], verdict: str) -> httpx.Response:
            return await center.followup.post(
                f"/followups/{check['follow_up_id']}/complete", headers=who,
                json={"outcome": "done", "channel": "phone", "note": "已回访",
                      "verdict": verdict})

        for who, verdict in (
                (as_(center, "clerk-017"), "solved"),  # its first clerk
                (as_(center, "test-supervisor", Role.SUPERVISOR), "partly"),  # resolved it
                (as_(center, "clerk-033"), "solved"),  # had it handed to them, owns the check
                (as_(center, "clerk-044"), "solved")):  # heard the request (RequestHeard)
            r = await complete(who, verdict)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "self_rating"
            assert r.json()["error"]["details"]["field"] == "verdict"
        await center.settled()
        assert (await center.get(check["follow_up_id"]))["status"] == "scheduled"

        # A colleague who did not serve the resident calls back and records it.
        assert (await complete(as_(center, "clerk-021"), "solved")).status_code == 200
    said = [(e.actor, e.payload["verdict"]) for e in await stream_envelopes(settings)
            if e.type == "FollowUpCompleted"]
    assert said == [("clerk-021", "solved")]


async def test_a_bad_reviews_follow_ups_are_not_worked_by_the_staff_it_is_about(
        settings: Settings) -> None:
    """A bad review on Sunday 20 December about a case the test supervisor opened for
    clerk-017: its verification (due Monday morning) and its rectification follow-up are
    neither completed, cancelled nor moved by either (403 ``own_bad_review``); clerk-021 of
    the team verifies it."""
    async with center_day(settings, at(2026, 12, 18, 9)) as center:
        case_id = await center.open_case(at(2026, 12, 18, 9, 10))
        center.clock.set(at(2026, 12, 20, 10))
        await _publish_feedback(settings, uuid.UUID(case_id), {
            "rectification_id": str(uuid.uuid4()), "resident_id": None,
            "rating": "very_dissatisfied", "deadline_on": "2026-12-25",
            "summary": "态度不好"}, occurred_at=at(2026, 12, 20, 10))
        found = {f["reason"]: f for f in await center.followups_of(case_id, 2)}
        verification, rectification = found["verification"], found["rectification"]
        assert datetime.fromisoformat(verification["due_at"]) == at(2026, 12, 21, 9)

        def post(follow_up: dict, what: str, who: dict[str, str], body: dict
                 ) -> Awaitable[httpx.Response]:
            return center.followup.post(f"/followups/{follow_up['follow_up_id']}/{what}",
                                        headers=who, json=body)

        done = {"outcome": "done", "channel": "phone", "note": "已核实"}
        for follow_up, what, who, body in (
                (verification, "complete", as_(center, "clerk-017"), done),
                (verification, "cancel", as_(center, "clerk-017"), {"reason": "无需核实"}),
                (rectification, "reschedule", as_(center, "clerk-017"),
                 {"due_on": "2027-01-08", "reason": "延后"}),
                (rectification, "cancel", as_(center, "test-supervisor", Role.SUPERVISOR),
                 {"reason": "已处理"})):
            r = await post(follow_up, what, who, body)
            assert r.status_code == 403, (what, r.text)
            assert r.json()["error"]["code"] == "own_bad_review"
        r = await post(verification, "complete", as_(center, "clerk-021"), done)
        assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.get(rectification["follow_up_id"]))["status"] == "scheduled"


async def test_a_check_made_by_hand_and_completed_at_once_is_no_way_around_it(
        settings: Settings) -> None:
    """clerk-017 resolves their case on Sunday 20 December, plans a post-resolution check of
    it by hand and completes it with "solved" at once, before the worklist has the check (its
    table held by a long report): refused all the same, who served the case being read of
    the case the follow-up names, not of the worklist's row."""
    async with center_day(settings, at(2026, 12, 20, 10)) as center:
        case_id = await center.open_case(at(2026, 12, 20, 10))
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": at(2026, 12, 20, 10, 20).isoformat()})
        await center.followups_of(case_id, 1)  # the rules have read the case
        report = await asyncpg.connect(settings.database_url)
        try:
            held = report.transaction()
            await held.start()
            await report.execute(f'LOCK TABLE "{settings.schema_for("followup")}".followups'
                                 " IN SHARE MODE")  # reads go on, the worklist's writes wait
            clerk = as_(center, "clerk-017")
            r = await center.followup.post("/followups", headers=clerk, json={
                "center_id": CENTER, "reason": "post_resolution_check", "case_id": case_id,
                "assigned_clerk": "clerk-017", "due_on": "2026-12-21"})
            assert r.status_code == 201, r.text
            r = await center.followup.post(
                f"/followups/{r.json()['id']}/complete", headers=as_(center, "clerk-017"),
                json={"outcome": "done", "channel": "phone", "note": "已回访",
                      "verdict": "solved"})
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "self_rating"
            await held.rollback()
        finally:
            await report.close()


async def test_the_supervisor_who_did_the_help_task_does_not_record_that_it_was_solved(
        settings: Settings) -> None:
    """clerk-017's case is escalated (帮办) on Friday 18 December to the supervisor team,
    which names nobody: supervisor-02 takes the task and does it, then, the case resolved on
    Sunday the 20th, records "solved" at its check. Refused (403 ``self_rating``), as for the
    colleague an escalation names: they served the resident. Before, only intake's steps
    made staff of a case, and the help task's worker took none."""
    async with center_day(settings, at(2026, 12, 18, 9)) as center:
        case_id = await center.open_case(at(2026, 12, 18, 9, 10))
        await center.step(case_id, "actions", {
            "kind": "escalated", "description": "政策冲突需协调",
            "occurred_at": at(2026, 12, 18, 9, 30).isoformat()})
        task = await first(center, "/help-tasks", case_id, "the help task")
        assert (task["owner_clerk"], task["owner_team"]) == (None, "supervisor")
        helper = as_(center, "supervisor-02", Role.SUPERVISOR)
        for step in ("accept", "done"):
            r = await center.followup.post(f"/help-tasks/{task['task_id']}/{step}",
                                           headers=helper | headers(key()), json={})
            assert r.status_code == 200, r.text
        center.clock.set(at(2026, 12, 20, 10))
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": at(2026, 12, 20, 10).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        await center.settled()  # the worklist has the task done, by whom
        center.clock.set(datetime.fromisoformat(check["due_at"]))
        r = await center.followup.post(
            f"/followups/{check['follow_up_id']}/complete",
            headers=as_(center, "supervisor-02", Role.SUPERVISOR),
            json={"outcome": "done", "channel": "phone", "note": "已回访", "verdict": "solved"})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "self_rating"
