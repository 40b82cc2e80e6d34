"""帮办, 派单 / 回复 / 督办 and 转办 at one center: an escalation becomes a help task with an
owner and a deadline; a referral waits for the unit's reply, by the clerk or by the unit's
own reply link, and chases it when it does not come; a handed-over case keeps its first
clerk accountable while its follow-ups go to the new owner."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from shared.security.principals import Role
from shared.settings import Settings
from tests.cli.in_process import ran
from tests.faults.harness import service_env
from tests.followup.story import CENTER, DECEMBER_20, Center, at, center_day, key
from tests.support import batch_loads, bearer, headers, wait_until

OTHER_CENTER = "SH-PD-LUJIAZUI"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def clerk(settings: Settings, sub: str, center: str = CENTER) -> dict[str, str]:
    return bearer(settings, role=Role.CLERK, sub=sub, center=center)


async def first(center: Center, path: str, case_id: str, what: str) -> dict[str, Any]:
    """The first item of a case's list (help tasks, referrals) once the read model has it."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        r = await center.followup.get(path, params={"case_id": case_id})
        assert r.status_code == 200, r.text
        found = r.json()["items"]
        return bool(found)

    await wait_until(check, what=what)
    return found[0]


async def escalate(center: Center, case_id: str, when: Any, **more: Any) -> dict[str, Any]:
    await center.step(case_id, "actions", {"kind": "escalated", "description": "政策冲突需协调",
                                           "occurred_at": when.isoformat(), **more})
    return await first(center, "/help-tasks", case_id, "the help task")


async def refer(center: Center, case_id: str, when: Any, **more: Any) -> dict[str, Any]:
    await center.step(case_id, "actions", {
        "kind": "referred", "description": "转社保中心核定", "referred_to": "浦东新区社保中心",
        "unit_kind": "social_insurance_bureau", "occurred_at": when.isoformat(), **more})
    return await first(center, "/referrals", case_id, "the referral")


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any],
               auth: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(path, json=body, headers={**headers(key()), **(auth or {})})


def unit_client(center: Center) -> httpx.AsyncClient:
    """The referred unit: no account here, no bearer token."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=center.app),
                             base_url="http://sixstep.test")


async def test_an_escalation_is_a_help_task_its_owner_takes_through_to_done(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        task = await escalate(center, case_id, at(2026, 3, 2, 9, 30), owner_clerk="clerk-018",
                              within_working_days=2)
        assert (task["owner_clerk"], task["owner_team"], task["status"]) == (
            "clerk-018", None, "open")
        assert task["requested_by"] == "test-supervisor"  # the authenticated caller
        assert moment(task["deadline_at"]) == at(2026, 3, 4, 17)  # Wednesday's closing

        r = await center.followup.get("/worklists/clerks/clerk-018",
                                      params={"center_id": CENTER})
        assert [t["task_id"] for t in r.json()["help_tasks"]] == [task["task_id"]]

        path = f"/help-tasks/{task['task_id']}"
        s = settings
        not_owner = await post(center.followup, f"{path}/accept", {}, clerk(s, "clerk-017"))
        assert code(not_owner) == (403, "forbidden_owner")
        other = await post(center.followup, f"{path}/accept", {},
                           clerk(s, "clerk-018", OTHER_CENTER))
        assert code(other) == (404, "not_found")  # another center's: as for none
        for step, status in (("accept", "accepted"), ("start", "in_progress"),
                             ("done", "done")):
            r = await post(center.followup, f"{path}/{step}", {}, clerk(s, "clerk-018"))
            assert r.status_code == 200, r.text
            r = await center.followup.get(path, params={"after": r.json()["position"]})
            assert r.json()["status"] == status
        again = await post(center.followup, f"{path}/hand-back", {"reason": "太晚了"},
                           clerk(s, "clerk-018"))
        assert again.status_code == 409, again.text

        r = await center.followup.get("/worklists/clerks/clerk-018",
                                      params={"center_id": CENTER})
        assert r.json()["help_tasks"] == [], "done: off the owner's worklist"


async def test_a_help_task_nobody_finishes_is_escalated_to_the_supervisors_once(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        task = await escalate(center, case_id, at(2026, 3, 2, 9, 30), within_working_days=1)
        assert (task["owner_clerk"], task["owner_team"]) == (None, "supervisor")
        assert moment(task["deadline_at"]) == at(2026, 3, 3, 17)
        back = await post(center.followup, f"/help-tasks/{task['task_id']}/accept", {},
                          clerk(settings, "clerk-018"))
        assert back.status_code == 403, "the supervisor team's task is a supervisor's"
        await center.settled()

        assert (await center.scheduler.tick(at(2026, 3, 3, 16, 59))).fired == {}
        tick = await center.scheduler.tick(at(2026, 3, 3, 17))
        assert tick.fired == {"HelpTaskEscalated": 1}
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 3, 9, 9))).fired == {}, "once"

        r = await center.followup.get(f"/help-tasks/{task['task_id']}")
        assert (r.json()["escalated_to"], r.json()["status"]) == ("supervisor", "open")
        r = await center.followup.get("/worklists/teams/supervisor",
                                      params={"center_id": CENTER})
        assert [t["task_id"] for t in r.json()["help_tasks"]] == [task["task_id"]]
        center.clock.set(at(2026, 3, 3, 16, 59))  # the board's figures: open, not yet overdue
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 1, "overdue": 0}
        center.clock.set(at(2026, 3, 3, 17, 1))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 1, "overdue": 1}
        r = await post(center.followup, f"/help-tasks/{task['task_id']}/hand-back",
                       {"reason": "需区里协调"})
        assert r.status_code == 200, r.text
        # Handed back: on the worklist of the clerk who asked while the case is open, for
        # FOLLOWUP_HANDED_BACK_DAYS (90) after; then only on its case's page (the asker's
        # worklist read every such task of theirs ever, mostly of cases long resolved).
        asker = f"/worklists/clerks/{task['requested_by']}"
        for days, shown in ((89, [task["task_id"]]), (91, [])):
            center.clock.set(at(2026, 3, 3, 17, 1) + timedelta(days=days))
            w = await center.followup.get(asker, params={"center_id": CENTER,
                                                         "after": r.json()["position"]})
            assert [t["task_id"] for t in w.json()["help_tasks"]] == shown, days


async def test_a_help_task_across_new_year_is_planned_on_the_provisional_calendar(
        settings: Settings) -> None:
    async with center_day(settings, DECEMBER_20) as center:
        case_id = await center.open_case(DECEMBER_20 + timedelta(hours=1))
        task = await escalate(center, case_id, DECEMBER_20 + timedelta(hours=2),
                              owner_clerk="clerk-018", within_working_days=10)
        # Sunday Dec 20: ten working days later is in 2027, counted without make-up days.
        assert task["basis"] == "provisional"
        assert task["deadline_on"].startswith("2027-01")


async def test_the_unit_replies_with_its_link_and_the_link_reaches_that_referral_only(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        referral = await refer(center, case_id, at(2026, 3, 2, 9, 30),
                               unit_contact="经办窗口 13912345678", within_working_days=3)
        assert referral["unit_kind"] == "social_insurance_bureau"
        assert referral["status"] == "awaiting_reply"
        assert "13912345678" not in referral["unit_contact"], "scrubbed free text"
        assert moment(referral["reply_due_at"]) == at(2026, 3, 5, 17)
        other_case = await center.open_case(at(2026, 3, 2, 9, 40))
        other = await refer(center, other_case, at(2026, 3, 2, 9, 50))

        rid = referral["referral_id"]
        link = await post(center.followup, f"/referrals/{rid}/reply-link", {})
        assert link.status_code == 200, link.text
        token = link.json()["token"]
        other_token = (await post(center.followup,
                                  f"/referrals/{other['referral_id']}/reply-link", {})
                       ).json()["token"]
        stranger = clerk(settings, "clerk-900", OTHER_CENTER)
        for path in (f"/referrals/{rid}/reply-link",):
            r = await post(center.followup, path, {}, stranger)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await center.followup.get(f"/referrals/{rid}", headers=stranger)
        assert r.status_code == 404  # another center's: as for none
        # Another center's referral, its link asked for by its own staff.
        r = await post(center.intake, "/cases", {
            "center_id": OTHER_CENTER, "counter_id": "window-1", "service_item":
            "SA-HARDSHIP-SUBSIDY", "occurred_at": at(2026, 3, 2, 9, 55).isoformat()}, stranger)
        assert r.status_code == 201, r.text
        theirs_case = r.json()["id"]
        for name, body in (("hear", {"words": "咨询"}), ("actions", {
                "kind": "referred", "description": "转街道", "referred_to": "陆家嘴街道"})):
            r = await post(center.intake, f"/cases/{theirs_case}/{name}", body, stranger)
            assert r.status_code == 200, r.text
        theirs: dict[str, Any] | None = None

        async def their_referral() -> bool:
            nonlocal theirs
            r = await center.followup.get("/referrals", params={"case_id": theirs_case},
                                          headers=stranger)
            theirs = (r.json()["items"] or [None])[0]
            return theirs is not None

        await wait_until(their_referral, what="the other center's referral")
        assert theirs is not None
        r = await center.followup.get("/referrals", params={"case_id": theirs_case})
        assert r.json()["items"] == [], "our staff do not see their referrals"
        their_token = (await post(center.followup,
                                  f"/referrals/{theirs['referral_id']}/reply-link", {},
                                  stranger)).json()["token"]

        async with unit_client(center) as unit:
            async def reply(token_: str, referral_id: str = rid) -> httpx.Response:
                return await post(unit, f"/referrals/{referral_id}/unit-reply",
                                  {"token": token_, "reply": "已受理，三日内核定"})

            forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
            assert (await reply(forged)).json()["error"]["code"] == "token_invalid"
            wrong = await reply(other_token)
            assert code(wrong) == (403, "token_wrong_referral")
            assert (await unit.get(f"/referrals/{rid}")).status_code == 401, "reads nothing"
            assert code(await reply(their_token)) == (403, "token_wrong_referral")
            assert code(await reply(token, theirs["referral_id"])) == (
                403, "token_wrong_referral")
            ok = await reply(token)
            assert ok.status_code == 200, ok.text
            assert (await reply(token)).status_code == 409, "one reply"

            # Past the link's life: FOLLOWUP_REFERRAL_LINK_GRACE_DAYS after the reply
            # deadline, and FOLLOWUP_REFERRAL_LINK_DAYS after it was issued.
            center.clock.set(max(
                moment(other["reply_due_at"]) + timedelta(
                    days=settings.followup_referral_link_grace_days),
                at(2026, 3, 2, 10) + timedelta(days=settings.followup_referral_link_days),
            ) + timedelta(days=1))
            expired = await reply(other_token, other["referral_id"])
            assert (expired.status_code, expired.json()["error"]["code"]) == (410, "token_expired")

        r = await center.followup.get(f"/referrals/{rid}",
                                      params={"after": ok.json()["position"]})
        body = r.json()
        assert (body["status"], body["replied_by_recipient"]) == ("replied", True)
        again = await post(center.followup,
                           f"/referrals/{rid}/reply-link?after={ok.json()['position']}", {})
        assert code(again) == (409, "rule_violated"), "no link for a reply already recorded"


async def test_a_missing_reply_becomes_a_chase_for_the_clerk_and_a_late_reply_ends_it(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        referral = await refer(center, case_id, at(2026, 3, 2, 9, 30), within_working_days=1)
        rid = referral["referral_id"]
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 3, 3, 16))).fired == {}
        tick = await center.scheduler.tick(at(2026, 3, 3, 17, 5))
        assert tick.fired == {"ReferralOverdue": 1, "FollowUpScheduled": 1}

        chase = (await center.followups_of(case_id, 1, "the 督办"))[0]
        assert (chase["reason"], chase["priority"], chase["assigned_clerk"],
                chase["contact"]) == ("referral_overdue", "high", "clerk-017", False)
        r = await center.followup.get(f"/referrals/{rid}")
        assert (r.json()["status"], r.json()["follow_up_id"]) == ("overdue",
                                                                  chase["follow_up_id"])
        r = await center.followup.get("/referrals", params={"center_id": CENTER,
                                                            "waiting": "true"})
        assert [x["referral_id"] for x in r.json()["items"]] == [rid]
        # The board's figures: referrals open and overdue (and no help task at all).
        center.clock.set(at(2026, 3, 3, 17, 5))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert (board["referrals"], board["escalations"]) == ({"open": 1, "overdue": 1},
                                                              {"open": 0, "overdue": 0})
        assert [x["referral_id"] for x in board["referrals_waiting"]] == [rid]

        r = await post(center.followup, f"/referrals/{rid}/reply", {"reply": "电话确认已办"},
                       clerk(settings, "clerk-017"))
        assert r.status_code == 200, r.text
        await center.settled()
        done = await center.get(chase["follow_up_id"])
        assert (done["status"], done["channel"]) == ("completed", "none")
        r = await center.followup.get(f"/referrals/{rid}")
        assert (r.json()["status"], r.json()["replied_by_recipient"]) == ("replied", False)
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert (board["referrals"], board["referrals_waiting"]) == ({"open": 0, "overdue": 0},
                                                                    [])
        stranger = clerk(settings, "clerk-900", OTHER_CENTER)
        r = await post(center.followup, f"/referrals/{rid}/reply", {"reply": "x"}, stranger)
        assert r.status_code == 404  # another center's referral: as for none


async def test_a_handed_over_case_stays_with_its_first_clerk_and_its_follow_ups_move(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        await center.step(case_id, "deadlines", {"due_on": "2026-03-20",
                                                 "description": "申报截止",
                                                 "occurred_at": at(2026, 3, 2, 9, 20)
                                                 .isoformat()})
        reminder = (await center.followups_of(case_id, 1, "the deadline reminder"))[0]
        assert reminder["assigned_clerk"] == "clerk-017"
        await center.step(case_id, "obligations", {"description": "每月领取补助",
                                                   "next_due_on": "2026-03-10",
                                                   "occurred_at": at(2026, 3, 2, 9, 25)
                                                   .isoformat()})

        stranger = clerk(settings, "clerk-900", OTHER_CENTER)
        r = await post(center.intake, f"/cases/{case_id}/handover",
                       {"to_clerk": "clerk-900", "reason": "想接手"}, stranger)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"  # as for none
        r = await post(center.intake, f"/cases/{case_id}/handover",
                       {"to_clerk": "clerk-017", "reason": "同一人"})
        assert r.status_code == 409, "already theirs"
        r = await post(center.intake, f"/cases/{case_id}/handover",
                       {"to_clerk": "clerk-018", "reason": "熟悉低保政策"},
                       clerk(settings, "clerk-017"))
        assert r.status_code == 200, r.text
        position = r.json()["position"]

        case = (await center.intake.get(f"/cases/{case_id}", params={"after": position})).json()
        assert (case["clerk_id"], case["owner_clerk"]) == ("clerk-017", "clerk-018")
        handed = next(t for t in case["timeline"] if t["type"] == "CaseHandedOver")
        assert handed["actor"] == "clerk-017"
        assert handed["payload"]["first_clerk"] == "clerk-017"
        for who in ("clerk-017", "clerk-018"):
            r = await center.intake.get("/cases", params={"clerk_id": who, "status": "open"})
            assert case_id in [c["case_id"] for c in r.json()["items"]], who

        async def moved() -> bool:
            return (await center.get(reminder["follow_up_id"]))["assigned_clerk"] == "clerk-018"

        await wait_until(moved, what="the reminder to follow the case to clerk-018")
        await center.step(case_id, "deadlines", {"due_on": "2026-03-27",
                                                 "description": "补交材料",
                                                 "occurred_at": at(2026, 3, 2, 10)
                                                 .isoformat()})
        later = await center.followups_of(case_id, 2, "the second reminder")
        assert {f["assigned_clerk"] for f in later} == {"clerk-018"}
        assert (await center.get(reminder["follow_up_id"]))["status"] == "scheduled"

        # A period missed after the handover is the new owner's to chase too.
        await center.settled()
        await wait_until(lambda: _watched(center), what="the obligation's timer")
        tick = await center.scheduler.tick(at(2026, 3, 16, 9))
        assert tick.fired["ObligationMissed"] == 1, tick.fired
        missed = [f for f in await center.followups_of(case_id, 3, "the missed period")
                  if f["reason"] == "obligation_missed"]
        assert [f["assigned_clerk"] for f in missed] == ["clerk-018"]


async def _watched(center: Center) -> bool:
    return bool(await center.app.state.pool.fetchval(
        "SELECT count(*) FROM timers WHERE kind = 'obligation' AND fire_at IS NOT NULL"))


async def test_a_unit_given_sixty_working_days_over_new_year_can_still_reply_on_its_last_day(
        settings: Settings) -> None:
    """Referred on Sunday 20 December 2026, the unit to reply within 60 working days: by
    March 2027, counted on the provisional calendar (Spring Festival on the law alone). The
    link the clerk passed on the same day expired after 30 calendar days, in January: the unit
    was locked out two months before its deadline. It now lives until the deadline plus a
    grace, and no longer than FOLLOWUP_REFERRAL_LINK_MAX_DAYS."""
    async with center_day(settings, DECEMBER_20) as center:
        case_id = await center.open_case(DECEMBER_20 + timedelta(hours=1))
        referral = await refer(center, case_id, DECEMBER_20 + timedelta(hours=2),
                               within_working_days=60)
        due = moment(referral["reply_due_at"])
        assert referral["basis"] == "provisional" and due.year == 2027 and due.month >= 3
        link = await post(center.followup, f"/referrals/{referral['referral_id']}/reply-link",
                          {})
        assert link.status_code == 200, link.text
        expires = moment(link.json()["expires_at"])
        assert due < expires <= center.clock.now() + timedelta(
            days=settings.followup_referral_link_max_days)

        center.clock.set(due - timedelta(hours=1))  # the afternoon of its last day
        async with unit_client(center) as unit:
            r = await post(unit, f"/referrals/{referral['referral_id']}/unit-reply",
                           {"token": link.json()["token"], "reply": "已核定，按时回复"})
        assert r.status_code == 200, r.text


async def test_a_units_reply_link_is_refused_while_its_case_is_resolved_and_taken_once_reopened(
        settings: Settings) -> None:
    """Referred on Sunday 20 December 2026, the link passed on; the case resolved before the
    unit replies closes the referral: the unit's reply through its link is 409
    ``referral_closed``, nothing recorded. The case reopened, the referral is chased again and
    the same link takes the reply."""
    async with center_day(settings, DECEMBER_20) as center:
        case_id = await center.open_case(DECEMBER_20 + timedelta(hours=1))
        referral = await refer(center, case_id, DECEMBER_20 + timedelta(hours=2))
        path = f"/referrals/{referral['referral_id']}"
        link = await post(center.followup, f"{path}/reply-link", {})
        assert link.status_code == 200, link.text
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": (DECEMBER_20 + timedelta(hours=3)).isoformat()})

        async def status_is(wanted: str) -> bool:
            return (await center.followup.get(path)).json()["status"] == wanted

        await wait_until(lambda: status_is("closed"), what="the referral closed")
        reply = {"token": link.json()["token"], "reply": "已核定"}
        async with unit_client(center) as unit:
            r = await post(unit, f"{path}/unit-reply", reply)
            assert code(r) == (409, "referral_closed"), r.text
            await center.step(case_id, "reopen", {"reason": "居民补充材料"})
            await wait_until(lambda: status_is("awaiting_reply"), what="chased again")
            r = await post(unit, f"{path}/unit-reply", reply)
            assert r.status_code == 200, r.text


async def test_a_resolution_closes_its_referrals_and_their_chases_in_one_command_each(
        settings: Settings) -> None:
    """The case is resolved: each referral still awaiting its reply is closed, and its 督办
    with it, in the closing's own command. A referral answered in time never had a 督办, and
    an overdue one's was cancelled by its closing: the rules send no cancel of their own for
    either (before, one per referral, answered 404 or a no-op, a group-commit round of the
    case's chain each)."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        followups = center.app.state.followups
        cancelled: list[str] = []
        cancel = followups.cancel

        async def counted(follow_up_id: Any, *args: Any, **kwargs: Any) -> Any:
            cancelled.append(str(follow_up_id))
            return await cancel(follow_up_id, *args, **kwargs)

        followups.cancel = counted
        in_time = await center.open_case(at(2026, 3, 2, 9, 10))
        late = await center.open_case(at(2026, 3, 2, 9, 20))
        waiting = await refer(center, in_time, at(2026, 3, 2, 9, 30), within_working_days=5)
        overdue = await refer(center, late, at(2026, 3, 2, 9, 40), within_working_days=1)
        await center.settled()
        tick = await center.scheduler.tick(at(2026, 3, 3, 17, 5))
        assert tick.fired == {"ReferralOverdue": 1, "FollowUpScheduled": 1}
        chase = (await center.followups_of(late, 1, "the 督办"))[0]

        center.clock.set(at(2026, 3, 3, 17, 10))
        for case_id in (in_time, late):
            await center.step(case_id, "resolve", {
                "outcome": "resolved", "explanation": "已办结", "emotion_defused": True,
                "occurred_at": at(2026, 3, 3, 17, 10).isoformat()})
        await center.followups_of(in_time, 1, "the post-resolution check")
        await center.followups_of(late, 2, "the post-resolution check")
        await center.settled()
        for referral in (waiting, overdue):
            r = await center.followup.get(f"/referrals/{referral['referral_id']}")
            assert r.json()["status"] == "closed"
        assert (await center.get(chase["follow_up_id"]))["status"] == "cancelled"
        assert cancelled == [], "no cancel sent for a 督办 its referral's closing settled"


async def test_no_reply_link_just_after_the_unit_replied_while_the_read_model_lags(
        settings: Settings) -> None:
    """The unit replies with its link on Monday 2 March; a clerk asks for a new link at once,
    with no position to wait for (the unit's answer went to the unit), while the referrals'
    read model is held by a long report. Before, the link was issued off the stale row
    (awaiting_reply) and the unit learnt of its uselessness only when it answered; now the
    route waits for the referral's own last event: 504 read_model_behind while held, 409
    once applied."""
    async with center_day(settings, at(2026, 3, 2, 9), read_wait_timeout_s=0.3) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        rid = (await refer(center, case_id, at(2026, 3, 2, 9, 20)))["referral_id"]
        token = (await post(center.followup, f"/referrals/{rid}/reply-link", {})).json()["token"]
        report = await asyncpg.connect(settings.database_url)
        try:
            held = report.transaction()
            await held.start()
            await report.execute(f'LOCK TABLE "{settings.schema_for("followup")}".referrals'
                                 " IN SHARE MODE")  # reads go on, the referrals' writes wait
            async with unit_client(center) as unit:
                ok = await post(unit, f"/referrals/{rid}/unit-reply",
                                {"token": token, "reply": "已受理，三日内核定"})
            assert ok.status_code == 200, ok.text
            stale = await post(center.followup, f"/referrals/{rid}/reply-link", {})
            assert code(stale) == (504, "read_model_behind"), stale.text
            await held.rollback()
        finally:
            await report.close()
        again = await post(center.followup,
                           f"/referrals/{rid}/reply-link?after={ok.json()['position']}", {})
        assert code(again) == (409, "rule_violated"), again.text


CONCERNS = {"needs": ["补助"], "worries": ["房租"], "emotion": "anxious"}


async def team_task_done(center: Center, settings: Settings
                         ) -> tuple[str, dict[str, Any], int]:
    """clerk-017's case guided on Monday 2 March 2026, noted critical and escalated to the
    supervisor team, whose task supervisor-02 accepts and does: the case, the task and the
    position of its work's last event."""
    case_id = await center.open_case(at(2026, 3, 2, 9, 10))
    await center.step(case_id, "guidance", {"policy_basis": "《社会救助暂行办法》",
                                            "eligibility": "eligible"})
    await center.step(case_id, "concerns", {**CONCERNS, "urgency": "critical"})
    task = await escalate(center, case_id, at(2026, 3, 2, 9, 30))
    supervisor_02 = bearer(settings, role=Role.SUPERVISOR, sub="supervisor-02")
    for step in ("accept", "done"):
        r = await post(center.followup, f"/help-tasks/{task['task_id']}/{step}", {},
                       supervisor_02)
        assert r.status_code == 200, r.text
    return case_id, task, r.json()["position"]


async def test_the_supervisor_who_did_the_teams_help_task_does_not_approve_its_extension(
        settings: Settings) -> None:
    """clerk-017's case is guided on Monday 2 March 2026 (due the 23rd), noted critical, and
    escalated to the supervisor team (帮办: the escalation names nobody); supervisor-02 takes
    the task and does it. On Sunday 20 December the case is long overdue. supervisor-02
    served it (``shared.kernel.serving``), yet intake never read the help task's work: they
    lowered its urgency and approved its extension (延期审批), their own. Now intake keeps
    who worked its help tasks: 403 ``urgency_needs_supervisor`` (``own_case``) and 403
    ``self_approval``; director-02 and director-03, who never served it, do them (one each:
    noting the concerns, lowering them included, is serving it too). Nor does supervisor-02's
    reopening of the overdue case renew its due date."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id, task, done = await team_task_done(center, settings)
        assert (task["owner_clerk"], task["owner_team"]) == (None, "supervisor"), task
        concerns = CONCERNS
        supervisor_02 = bearer(settings, role=Role.SUPERVISOR, sub="supervisor-02")
        pool: asyncpg.Pool = center.app.state.pool
        progress = (f'SELECT position FROM "{settings.schema_for("intake")}".consumer_progress'
                    " WHERE consumer = 'intake-verdicts' AND service = 'followup'")

        async def intake_read_it() -> bool:
            return (await pool.fetchval(progress) or 0) >= done

        await wait_until(intake_read_it, what="intake reading the help task's work")
        center.clock.set(DECEMBER_20)
        lower = {**concerns, "urgency": "normal"}
        extend = {"due_on": "2027-01-15", "note": "延期审批"}
        for path, body, refused, other in (
                ("concerns", lower, "urgency_needs_supervisor", "director-02"),
                ("due-date", extend, "self_approval", "director-03")):
            r = await post(center.intake, f"/cases/{case_id}/{path}", body, supervisor_02)
            assert code(r) == (403, refused), r.text
            r = await post(center.intake, f"/cases/{case_id}/{path}", body,
                           bearer(settings, role=Role.SUPERVISOR, sub=other))
            assert r.status_code == 200, r.text
        # Resolved on its new due day, Friday 15 January 2027 (a provisional year), and
        # reopened by supervisor-02 on Monday the 18th, overdue: it keeps its due date
        # (renewed, the reopening would be their own extension by a second route).
        center.clock.set(at(2027, 1, 15, 10))
        await center.step(case_id, "resolve", {"outcome": "resolved", "explanation": "",
                                               "emotion_defused": True})
        center.clock.set(at(2027, 1, 18, 10))
        r = await post(center.intake, f"/cases/{case_id}/reopen", {"reason": "居民补充材料"},
                       supervisor_02)
        assert r.status_code == 200, r.text
        r = await center.intake.get(f"/cases/{case_id}", params={"after": r.json()["position"]})
        assert (r.json()["status"], r.json()["due_on"]) == ("open", "2027-01-15"), r.json()


async def test_help_work_done_before_the_upgrade_is_read_in_by_the_backfill(
        settings: Settings) -> None:
    """supervisor-02 did the supervisor team's help task of a critical case on Monday 2 March
    2026, before the release whose consumers read help-task work: intake's ``case_helpers``
    and feedback's ``case_help_tasks`` and ``served_by`` never had it (their durables went on
    from where they were; here the rows are taken away as they were then). On Sunday 20
    December ops run ``sixstep ops backfill`` once, twice by mistake: intake refuses
    supervisor-02's lowering of the urgency (403 ``urgency_needs_supervisor``) and extension
    (403 ``self_approval``), and feedback counts them among who served the case (a survey
    answer they record is 代评), once."""
    async with center_day(settings, at(2026, 3, 2, 9), with_feedback=True) as center:
        case_id, task, done = await team_task_done(center, settings)
        concerns = CONCERNS
        supervisor_02 = bearer(settings, role=Role.SUPERVISOR, sub="supervisor-02")
        pool: asyncpg.Pool = center.app.state.pool
        intake, feedback = settings.schema_for("intake"), settings.schema_for("feedback")

        async def both_read_it() -> bool:
            return all([(await pool.fetchval(
                f'SELECT position FROM "{schema}".consumer_progress'
                " WHERE consumer = $1 AND service = 'followup'", name) or 0) >= done
                for schema, name in ((intake, "intake-verdicts"),
                                     (feedback, "feedback-intake"))])

        await wait_until(both_read_it, what="intake and feedback reading the task's work")
        served = f'SELECT served_by FROM "{feedback}".intake_cases WHERE case_id = $1'
        assert "supervisor-02" in await pool.fetchval(served, uuid.UUID(case_id))
        # As the tables stood before the upgrade.
        await pool.execute(f'DELETE FROM "{intake}".case_helpers WHERE case_id = $1',
                           uuid.UUID(case_id))
        await pool.execute(f'DELETE FROM "{feedback}".case_help_tasks WHERE case_id = $1',
                           uuid.UUID(case_id))
        await pool.execute(f'UPDATE "{feedback}".intake_cases SET served_by ='
                           " array_remove(served_by, 'supervisor-02') WHERE case_id = $1",
                           uuid.UUID(case_id))
        for _ in range(2):
            out = await asyncio.to_thread(ran, ["ops", "backfill"],
                                          env=service_env(settings))
            assert out.code == 0, out.err + out.out
        assert (await pool.fetchval(served, uuid.UUID(case_id))).count("supervisor-02") == 1
        assert await pool.fetchval(
            f'SELECT read_up_to FROM "{feedback}".case_help_tasks WHERE task_id = $1',
            uuid.UUID(task["task_id"])) == done
        center.clock.set(DECEMBER_20)
        lower = {**concerns, "urgency": "normal"}
        extend = {"due_on": "2027-01-15", "note": "延期审批"}
        for path, body, refused in (("concerns", lower, "urgency_needs_supervisor"),
                                    ("due-date", extend, "self_approval")):
            r = await post(center.intake, f"/cases/{case_id}/{path}", body, supervisor_02)
            assert code(r) == (403, refused), r.text
        # supervisor-02 is the center's only supervisor: the street's (jiedao-sup-03) is
        # given a day token for the center (docs/security.md). They lower the urgency, then
        # approve the extension: both are decisions on another's case, neither serves it
        # (until the end of stop 46 the lowering counted as noting the concerns and the
        # extension was then refused as their own); having served nobody, they record the
        # resident's answer by phone, which supervisor-02 may not.
        day_token = {"Authorization": "Bearer " + (await asyncio.to_thread(
            ran, ["token", "issue", "--sub", "jiedao-sup-03", "--role", "supervisor",
                  "--center", CENTER, "--ttl", "8h"], env=service_env(settings))).out.strip()}
        for path, body in (("concerns", lower), ("due-date", extend)):
            r = await post(center.intake, f"/cases/{case_id}/{path}", body, day_token)
            assert r.status_code == 200, r.text
        await center.step(case_id, "resolve", {"outcome": "resolved", "explanation": "",
                                               "emotion_defused": True})
        asked: dict[str, Any] = {}

        async def survey_asked() -> bool:
            r = await center.feedback.get(f"/cases/{case_id}/feedback", headers=day_token)
            asked.update(r.json() if r.status_code == 200 else {})
            return bool(asked.get("surveys"))

        await wait_until(survey_asked, what="the resolution's survey")
        survey = asked["surveys"][-1]["survey_id"]
        for who, answered_by, status in (("supervisor-02", "clerk-017", 403),
                                         ("jiedao-sup-03", "jiedao-sup-03", 200)):
            role = Role.CLERK if who.startswith("clerk") else Role.SUPERVISOR
            auth = day_token if who == "jiedao-sup-03" else bearer(settings, role=role, sub=who)
            r = await post(center.feedback, f"/surveys/{survey}/rating",
                           {"level": "satisfied", "clerk_id": answered_by}, auth)
            assert r.status_code == status, (who, r.text)


async def test_the_backfill_gives_old_due_dates_their_source_from_the_log(
        settings: Settings) -> None:
    """Two cases guided on Monday 2 March 2026: one keeps the item's working days, the
    other's due date a director moves by hand to Friday 15 January 2027 (a provisional year:
    no schedule moves a typed day). Follow-up kept them before ``case_refs.due_source``
    existed (NULL, read as the item's days: the board said the moved one may still move).
    ``sixstep ops backfill`` gives each the source of its last ``CaseDueDateSet``."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        kept, moved = [await center.open_case(at(2026, 3, 2, 9, minute))
                       for minute in (10, 20)]
        for case_id in (kept, moved):
            await center.step(case_id, "guidance", {"policy_basis": "《社会救助暂行办法》",
                                                    "eligibility": "eligible"})
        r = await post(center.intake, f"/cases/{moved}/due-date",
                       {"due_on": "2027-01-15", "note": "延期审批"},
                       bearer(settings, role=Role.SUPERVISOR, sub="director-02"))
        assert r.status_code == 200, r.text
        pool: asyncpg.Pool = center.app.state.pool
        rows = (f'SELECT case_id::text, due_source FROM "{settings.schema_for("followup")}"'
                ".case_refs WHERE case_id = ANY($1::uuid[])")
        ids = [uuid.UUID(kept), uuid.UUID(moved)]
        want = {kept: "item_days", moved: "moved"}

        async def rules_read_them() -> bool:
            return dict(await pool.fetch(rows, ids)) == want

        await wait_until(rules_read_them, what="follow-up's rules reading the due dates")
        await pool.execute(f'UPDATE "{settings.schema_for("followup")}".case_refs'
                           " SET due_source = NULL WHERE case_id = ANY($1::uuid[])", ids)
        out = await asyncio.to_thread(ran, ["ops", "backfill"], env=service_env(settings))
        assert out.code == 0, out.err + out.out
        assert dict(await pool.fetch(rows, ids)) == want
        assert "2 rows filled" in out.out, out.out


async def test_another_centers_clerk_replying_to_our_referral_loads_nothing_of_it(
        settings: Settings) -> None:
    """Another center's clerk posts a reply to our referral, its 督办 running: a 404 as for
    a referral nobody has, refused on the referral's first event before the command loads
    the referral and its chase. Before December 2026 both were loaded whole for them first
    (the reply loads the chase beside the referral) and refused after."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        referral = await refer(center, case_id, at(2026, 3, 2, 9, 30), within_working_days=1)
        rid = referral["referral_id"]
        await center.settled()
        tick = await center.scheduler.tick(at(2026, 3, 3, 17, 5))
        assert tick.fired == {"ReferralOverdue": 1, "FollowUpScheduled": 1}
        loaded = batch_loads(center.app)
        stranger = clerk(settings, "clerk-900", OTHER_CENTER)
        theirs = await post(center.followup, f"/referrals/{rid}/reply", {"reply": "x"}, stranger)
        none = await post(center.followup, f"/referrals/{uuid.uuid4()}/reply", {"reply": "x"},
                          stranger)
        assert (code(theirs), code(none)) == ((404, "not_found"), (404, "not_found"))
        assert [ids for ids in loaded if uuid.UUID(rid) in ids] == [], loaded
