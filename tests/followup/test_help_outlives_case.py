"""帮办 ends with its case: a case resolved while its help tasks are still open closes them as
no longer needed (``HelpTaskClosed``, by the rules), off every worklist and never escalated to
the supervisors; a task already done stays done; reopening the case brings nothing back (a
new escalation is a new task). Told across 31 December 23:30 in Shanghai, into 2027 (a year
the holiday package does not know: the deadline is provisional)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.analytics.rebuild import Rebuild
from shared.contracts import Envelope
from shared.readmodels.readmodel import load_read_model
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day
from tests.followup.test_help_and_referrals import clerk, escalate, first, post, refer
from tests.support import bearer, stream_envelopes, wait_until

NEW_YEARS_EVE = at(2026, 12, 31, 23, 30)  # 15:30 UTC: still the 31st there, too


async def _status(center: Center, task_id: str) -> str:
    r = await center.followup.get(f"/help-tasks/{task_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def _help_tasks_on(center: Center, path: str) -> list[str]:
    r = await center.followup.get(path, params={"center_id": CENTER})
    assert r.status_code == 200, r.text
    return [t["task_id"] for t in r.json()["help_tasks"]]


async def _closed(settings: Settings) -> list[Envelope]:
    return [e for e in await stream_envelopes(settings) if e.type == "HelpTaskClosed"]


async def test_a_case_resolved_closes_its_open_help_tasks_and_no_supervisor_is_chased(
        settings: Settings) -> None:
    async with center_day(settings, NEW_YEARS_EVE - timedelta(hours=1)) as center:
        case_id = await center.open_case(NEW_YEARS_EVE - timedelta(minutes=50))
        asked = await escalate(center, case_id, NEW_YEARS_EVE - timedelta(minutes=40),
                               owner_clerk="clerk-018", within_working_days=1)
        # The first working day after New Year's Eve: Monday 4 January 2027, provisional.
        assert (asked["deadline_on"], asked["basis"]) == ("2027-01-04", "provisional")
        team_task = await _new_task(center, case_id, NEW_YEARS_EVE - timedelta(minutes=35),
                                    {asked["task_id"]}, within_working_days=1)
        team_id = team_task["task_id"]
        assert team_task["owner_team"] == "supervisor"
        r = await post(center.followup, f"/help-tasks/{asked['task_id']}/accept", {},
                       clerk(settings, "clerk-018"))
        assert r.status_code == 200, r.text  # accepted, not done: still open work
        await center.settled()
        assert await _help_tasks_on(center, "/worklists/clerks/clerk-018") == [
            asked["task_id"]]

        resolved = await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
            "occurred_at": NEW_YEARS_EVE.isoformat()})
        assert resolved

        async def both_closed() -> bool:
            return [await _status(center, t) for t in (asked["task_id"], team_id)] == [
                "closed", "closed"]

        await wait_until(both_closed, what="the resolved case's help tasks to be closed")
        await center.settled()
        assert await _help_tasks_on(center, "/worklists/clerks/clerk-018") == []
        assert await _help_tasks_on(center, "/worklists/teams/supervisor") == []
        center.clock.set(at(2027, 1, 5, 9))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 0, "overdue": 0}
        assert board["help_tasks"] == []

        # Past the deadline, into 2027: nothing escalates, nothing is even due.
        assert (await center.scheduler.tick(at(2027, 1, 4, 17))).fired == {}
        assert (await center.scheduler.tick(at(2027, 1, 5, 9))).fired == {}

        closed = await _closed(settings)
        assert sorted((str(e.aggregate_id), e.payload["reason"], e.actor) for e in closed) \
            == sorted((t, "case_resolved", "system:rules") for t in (asked["task_id"], team_id))

        # Exactly once: the resolution applied again (a redelivery) closes nothing more.
        [resolution] = [e for e in await stream_envelopes(settings)
                        if e.type == "CaseResolved" and str(e.case_id) == case_id]
        pool: asyncpg.Pool = center.app.state.pool
        async with pool.acquire() as conn, conn.transaction():
            await center.app.state.rules.apply(conn, [resolution])
        assert len(await _closed(settings)) == 2

        # A closed task is not moved along any more.
        r = await post(center.followup, f"/help-tasks/{asked['task_id']}/done", {},
                       clerk(settings, "clerk-018"))
        assert r.status_code == 409, r.text

        # Reopened: the closed tasks stay closed; help needed again is a new escalation. Until
        # then both are back on the worklist of the clerk who asked, closed: nobody helps
        # with the case any more, only they can ask again.
        await center.step(case_id, "reopen", {"reason": "new_information",
                                              "occurred_at": at(2027, 1, 5, 9, 30).isoformat()})
        asker = f"/worklists/clerks/{asked['requested_by']}"

        async def back_to_asker() -> bool:
            return sorted(await _help_tasks_on(center, asker)) == sorted(
                [asked["task_id"], team_id])
        await wait_until(back_to_asker, what="the closed help back with the clerk who asked")
        assert await _help_tasks_on(center, "/worklists/clerks/clerk-018") == []
        again = await _new_task(center, case_id, at(2027, 1, 5, 10),
                                {asked["task_id"], team_id}, owner_clerk="clerk-018")
        assert again["status"] == "open"
        assert await _status(center, asked["task_id"]) == "closed"
        await center.settled()
        assert await _help_tasks_on(center, asker) == [], "asked again: the new task stands"
        await _rebuilt_is_live(settings)


async def _rebuilt_is_live(settings: Settings) -> None:
    """``sixstep rebuild followup --dry-run``: the worklists (help tasks, timers) rebuilt from
    the log are the live ones."""
    async with Rebuild(settings, load_read_model("followup"), batch_size=3) as rb:
        await rb.prepare()
        await rb.catch_up()
        assert (await rb.state())["skipped"] == 0, await rb.skipped()
        diff = await rb.diff()
        assert diff.same, diff
        await rb.discard()


async def _new_task(center: Center, case_id: str, when: Any, known: set[str],
                    **more: Any) -> dict[str, Any]:
    """A further escalation of the case: its task, once the read model has it."""
    await center.step(case_id, "actions", {"kind": "escalated", "description": "再次协调",
                                           "occurred_at": when.isoformat(), **more})
    found: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal found
        r = await center.followup.get("/help-tasks", params={"case_id": case_id})
        new = [t for t in r.json()["items"] if t["task_id"] not in known]
        found = new[0] if new else {}
        return bool(new)

    await wait_until(check, what="the new help task")
    return found


async def test_a_done_help_task_stays_done_when_its_case_is_resolved(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        task = await escalate(center, case_id, at(2026, 3, 2, 9, 30), owner_clerk="clerk-018")
        r = await post(center.followup, f"/help-tasks/{task['task_id']}/done",
                       {"note": "已协助"}, clerk(settings, "clerk-018"))
        assert r.status_code == 200, r.text
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
            "occurred_at": at(2026, 3, 2, 11).isoformat()})
        await center.followups_of(case_id, 1, "the post-resolution check (the rule ran)")
        await center.settled()
        assert await _status(center, task["task_id"]) == "done"
        assert await _closed(settings) == []


async def test_the_scheduler_never_escalates_a_help_task_of_a_case_it_knows_resolved(
        settings: Settings) -> None:
    """A task still open although follow-up knows its case resolved (left open before the
    rules closed help tasks, or its closing never went through): past its deadline the
    scheduler closes it instead of chasing the supervisors, and no worklist shows it."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        task = await escalate(center, case_id, at(2026, 3, 2, 9, 30), owner_clerk="clerk-018",
                              within_working_days=1)
        await center.settled()
        pool: asyncpg.Pool = center.app.state.pool
        await pool.execute("UPDATE case_refs SET status = 'resolved' WHERE case_id = $1::uuid",
                           case_id)
        assert await _help_tasks_on(center, "/worklists/clerks/clerk-018") == []
        center.clock.set(at(2026, 3, 3, 17, 1))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 0, "overdue": 0}

        tick = await center.scheduler.tick(at(2026, 3, 3, 17))
        assert tick.fired == {"HelpTaskClosed": 1}
        await center.settled()
        assert await _status(center, task["task_id"]) == "closed"
        assert (await center.scheduler.tick(at(2026, 3, 9, 9))).fired == {}
        [closed] = await _closed(settings)
        assert (closed.actor, closed.payload["reason"]) == ("system:scheduler",
                                                           "case_resolved")
        assert (await first(center, "/help-tasks", case_id, "the task"))["escalated_to"] \
            is None
        await _rebuilt_is_live(settings)


async def _referral(center: Center, rid: str) -> dict[str, Any]:
    r = await center.followup.get(f"/referrals/{rid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_resolved_cases_referrals_are_no_longer_chased(settings: Settings) -> None:
    """派单 ends with its case too. Sunday 20 December: a case referred to the social
    insurance bureau, reply due in one working day, counted from Monday (received on a day
    off: Tuesday 22); no reply, so the scheduler chases it (督办). Resolved on the 23rd: the
    referral is closed and its 督办 cancelled. New Year's
    Eve 23:30: another case referred, reply due Monday 4 January 2027 (provisional), resolved
    ten minutes later: closed at once, and past the deadline nothing is chased. Before, both
    referrals stayed waiting and the scheduler chased the second in 2027."""
    async with center_day(settings, at(2026, 12, 20, 9)) as center:
        sunday = await center.open_case(at(2026, 12, 20, 10))
        chased = await refer(center, sunday, at(2026, 12, 20, 10, 30), within_working_days=1)
        assert datetime.fromisoformat(chased["reply_due_at"]) == at(2026, 12, 22, 17)
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 12, 22, 17, 5))).fired == {
            "ReferralOverdue": 1, "FollowUpScheduled": 1}
        [chase] = await center.followups_of(sunday, 1, "the 督办")
        center.clock.set(at(2026, 12, 23, 10))
        await center.step(sunday, "resolve", {
            "outcome": "resolved", "explanation": "社保中心电话确认", "emotion_defused": True,
            "occurred_at": at(2026, 12, 23, 10).isoformat()})

        center.clock.set(NEW_YEARS_EVE - timedelta(minutes=20))
        eve = await center.open_case(NEW_YEARS_EVE - timedelta(minutes=15))
        waiting = await refer(center, eve, NEW_YEARS_EVE, within_working_days=1)
        assert (datetime.fromisoformat(waiting["reply_due_at"]), waiting["basis"]) == (
            at(2027, 1, 4, 17), "provisional")
        center.clock.set(NEW_YEARS_EVE + timedelta(minutes=10))
        await center.step(eve, "resolve", {
            "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
            "occurred_at": (NEW_YEARS_EVE + timedelta(minutes=10)).isoformat()})

        async def closed() -> bool:
            return [(await _referral(center, r["referral_id"]))["status"]
                    for r in (chased, waiting)] == ["closed", "closed"]
        await wait_until(closed, what="the resolved cases' referrals closed")
        # No new reply link for a closed referral: the link would take no reply (before, it
        # was issued, and the unit was told 409 only when it answered).
        r = await post(center.followup, f"/referrals/{waiting['referral_id']}/reply-link", {})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "referral_closed"), r.text
        await center.settled()
        assert (await center.get(chase["follow_up_id"]))["status"] == "cancelled"
        center.clock.set(at(2027, 1, 5, 9))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert (board["referrals"], board["referrals_waiting"]) == (
            {"open": 0, "overdue": 0}, [])
        # Past both deadlines: nothing chases a unit (the Sunday case's own check to the
        # resident runs its course).
        fired = (await center.scheduler.tick(at(2027, 1, 5, 9))).fired
        assert "ReferralOverdue" not in fired and "FollowUpScheduled" not in fired, fired
        referral_closed = [e for e in await stream_envelopes(settings)
                           if e.type == "ReferralClosed"]
        assert sorted((str(e.aggregate_id), e.actor) for e in referral_closed) == sorted(
            (r["referral_id"], "system:rules") for r in (chased, waiting))

        # Reopened on Tuesday 5 January 2027: the Sunday case's referral, closed by its
        # resolution unanswered, is chased again from the reopening, its one working day:
        # Wednesday 6 January (provisional). Before, it stayed closed and nobody asked the
        # bureau again. The eve case's referral (its case still resolved) stays closed.
        await center.step(sunday, "reopen", {"reason": "new_information",
                                             "occurred_at": at(2027, 1, 5, 9, 30).isoformat()})

        async def chased_again() -> bool:
            r = await _referral(center, chased["referral_id"])
            return bool(r["status"] == "awaiting_reply")
        await wait_until(chased_again, what="the referral chased again")
        again = await _referral(center, chased["referral_id"])
        assert (datetime.fromisoformat(again["reply_due_at"]), again["basis"],
                again["follow_up_id"]) == (at(2027, 1, 6, 17), "provisional", None)
        assert (await _referral(center, waiting["referral_id"]))["status"] == "closed"
        [reopened] = [e for e in await stream_envelopes(settings)
                      if e.type == "ReferralReopened"]
        assert (reopened.actor, reopened.payload["round"]) == ("system:rules", 1)
        await center.settled()
        fired = (await center.scheduler.tick(at(2027, 1, 6, 17, 5))).fired
        assert fired["ReferralOverdue"] == 1, fired
        await center.settled()
        new_chase = (await _referral(center, chased["referral_id"]))["follow_up_id"]
        assert new_chase not in (None, chase["follow_up_id"])
        assert (await center.get(new_chase))["reason"] == "referral_overdue"
        # Remembered with the case as the first one was: a handover moves it, a resolution
        # cancels it.
        pool: asyncpg.Pool = center.app.state.pool
        assert await pool.fetchval(
            "SELECT rule FROM rule_followups WHERE case_id = $1::uuid AND follow_up_id = $2",
            sunday, UUID(new_chase)) == "referral_overdue"
        # Exactly once: the reopening applied again (a redelivery) with this round overdue
        # starts no second round and leaves its 督办 running (before: round 2, the 督办
        # cancelled, the unit chased twice).
        [reopening] = [e for e in await stream_envelopes(settings)
                       if e.type == "CaseReopened" and str(e.case_id) == sunday]
        async with pool.acquire() as conn, conn.transaction():
            await center.app.state.rules.apply(conn, [reopening])
        await center.settled()
        assert len([e for e in await stream_envelopes(settings)
                    if e.type == "ReferralReopened"]) == 1
        assert (await center.get(new_chase))["status"] != "cancelled"
        assert (await _referral(center, chased["referral_id"]))["status"] == "overdue"
        # Resolved again: closed again, and this round's 督办 with it.
        center.clock.set(at(2027, 1, 7, 10))
        await center.step(sunday, "resolve", {
            "outcome": "resolved", "explanation": "社保中心书面答复", "emotion_defused": True,
            "occurred_at": at(2027, 1, 7, 10).isoformat()})

        async def new_chase_cancelled() -> bool:
            return (await center.get(new_chase))["status"] == "cancelled"
        await wait_until(new_chase_cancelled, what="the second 督办 cancelled")
        assert (await _referral(center, chased["referral_id"]))["status"] == "closed"
        await center.settled()
        await _rebuilt_is_live(settings)


class _Paused:
    """The scheduler's hand on the store, held at a barrier: ``reached`` once it has read
    its page and is about to close, and it goes on when ``go`` is set."""

    def __init__(self, followups: Any) -> None:
        self.followups = followups
        self.reached, self.go = asyncio.Event(), asyncio.Event()

    async def advance(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        await self.go.wait()
        return await self.followups.advance(*args, **kwargs)


async def test_referrals_left_overdue_before_this_release_are_closed_once_their_case_is_resolved(
        settings: Settings) -> None:
    """The upgrade: referrals sent before the rules remembered a case's referrals and closed
    them at its resolution, overdue (督办 planned) on Tuesday 22 December (sent on Sunday the
    20th with one working day, counted from Monday). A was resolved
    before the upgrade (the old rules folded the resolution and closed nothing: its 督办 runs
    on); no timer brings an overdue referral back, so it showed overdue for ever. B is
    resolved after it: the rules find its referral among the case's (``referrals``) and
    close it, its 督办 cancelled. C's referral, given ten working days (reply due 5 January
    2027), was still awaited when C was resolved before the upgrade: it waited for its
    deadline. At New Year's Eve 23:30 the scheduler's tick closes A's and cancels its 督办;
    it has read C's case resolved when, at that moment, the resident comes back and C is
    reopened, before its close is written (a barrier holds it): the reopening is recorded on
    the referral first (chased again, ten working days from the 31st: Friday 15 January
    2027, provisional) and the close finds it so. Before, the close came after the reopening
    and nobody asked the bureau again about an open case. In 2027 nothing more is closed."""
    async with center_day(settings, at(2026, 12, 20, 9)) as center:
        pool: asyncpg.Pool = center.app.state.pool
        a = await center.open_case(at(2026, 12, 20, 10))
        b = await center.open_case(at(2026, 12, 20, 10, 5))
        c = await center.open_case(at(2026, 12, 20, 10, 10))
        d = await center.open_case(at(2026, 12, 20, 10, 15))
        sent = {case: await refer(center, case, at(2026, 12, 20, 10, 30),
                                  within_working_days=1) for case in (a, b)}
        sent[c] = await refer(center, c, at(2026, 12, 20, 10, 30), within_working_days=10)
        sent[d] = await refer(center, d, at(2026, 12, 20, 10, 30), within_working_days=1)

        async def remembered() -> bool:
            return await pool.fetchval(
                "SELECT count(*) FROM rule_followups WHERE rule = 'referral'"
                " AND case_id = ANY($1::uuid[])", [a, b, c, d]) == 4
        await wait_until(remembered, what="the rules to remember both referrals")
        # Before this release the rules remembered no referral, only its 督办.
        await pool.execute("DELETE FROM rule_followups WHERE rule = 'referral'")
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 12, 22, 17, 5))).fired == {
            "ReferralOverdue": 3, "FollowUpScheduled": 3}
        await center.settled()
        chases = {case: (await _referral(center, r["referral_id"]))["follow_up_id"]
                  for case, r in sent.items()}

        async def case_is(case: str, status: str) -> bool:
            return await pool.fetchval("SELECT status FROM case_refs WHERE case_id = $1::uuid",
                                       case) == status
        # A: resolved under the old rules (the case known resolved, nothing closed); C too,
        # for real in intake (to be reopened), its referral out of the rules' sight meanwhile.
        await pool.execute("UPDATE case_refs SET status = 'resolved' WHERE case_id = $1::uuid",
                           a)
        c_referral, d_referral = UUID(sent[c]["referral_id"]), UUID(sent[d]["referral_id"])
        await pool.execute("UPDATE referrals SET case_id = NULL WHERE referral_id = ANY($1)",
                           [c_referral, d_referral])
        await pool.execute("DELETE FROM rule_followups WHERE case_id = $1::uuid", d)
        center.clock.set(at(2026, 12, 23, 10))
        for case in (c, d, b):
            await center.step(case, "resolve", {
                "outcome": "resolved", "explanation": "社保中心电话确认",
                "emotion_defused": True, "occurred_at": at(2026, 12, 23, 10).isoformat()})
        await wait_until(lambda: case_is(c, "resolved"), what="C's resolution applied")
        await wait_until(lambda: case_is(d, "resolved"), what="D's resolution applied")
        for case, referral_id in ((c, c_referral), (d, d_referral)):
            await pool.execute("UPDATE referrals SET case_id = $2::uuid"
                               " WHERE referral_id = $1", referral_id, case)

        async def b_closed() -> bool:
            return (await center.get(chases[b]))["status"] == "cancelled" and (
                await _referral(center, sent[b]["referral_id"]))["status"] == "closed"
        await wait_until(b_closed, what="B's referral closed, its 督办 cancelled")
        await center.settled()
        assert (datetime.fromisoformat(sent[c]["reply_due_at"]), sent[c]["basis"]) == (
            at(2027, 1, 5, 17), "provisional")
        assert (await _referral(center, str(c_referral)))["status"] == "awaiting_reply"

        center.clock.set(NEW_YEARS_EVE)
        scheduler = center.scheduler
        paused = scheduler.followups = _Paused(scheduler.followups)
        try:
            tick = asyncio.create_task(scheduler.tick(NEW_YEARS_EVE))
            await paused.reached.wait()  # its pages read: A's, C's and D's cases resolved
            for case in (c, d):
                await center.step(case, "reopen", {"reason": "new_information",
                                                   "occurred_at": NEW_YEARS_EVE.isoformat()})
                await wait_until(lambda case=case: case_is(case, "open"),
                                 what="the reopening applied")
            paused.go.set()
            fired = (await tick).fired
        finally:
            scheduler.followups = paused.followups
        assert (fired["ReferralClosed"], fired["FollowUpCancelled"]) == (1, 1), fired
        await center.settled()
        assert [(await _referral(center, r["referral_id"]))["status"]
                for r in sent.values()] == ["closed", "closed", "awaiting_reply",
                                            "awaiting_reply"]
        assert (await center.get(chases[a]))["status"] == "cancelled"
        # D's, overdue, is asked again too (one working day from the 31st: Monday 4 January
        # 2027, provisional), its first 督办 ended with the round.
        assert (await center.get(chases[d]))["status"] == "cancelled"
        d_again = await _referral(center, str(d_referral))
        assert (datetime.fromisoformat(d_again["reply_due_at"]), d_again["basis"]) == (
            at(2027, 1, 4, 17), "provisional")
        again = await _referral(center, str(c_referral))
        assert (datetime.fromisoformat(again["reply_due_at"]), again["basis"]) == (
            at(2027, 1, 15, 17), "provisional")
        center.clock.set(at(2027, 1, 5, 9))
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["referrals"] == {"open": 2, "overdue": 1}  # D's, missed again
        assert {r["referral_id"] for r in board["referrals_waiting"]} == {
            str(c_referral), str(d_referral)}
        fired = (await center.scheduler.tick(at(2027, 1, 5, 9))).fired
        assert "ReferralClosed" not in fired and "FollowUpCancelled" not in fired, fired
        events = [e for e in await stream_envelopes(settings)
                  if e.type in ("ReferralClosed", "ReferralReopened")]
        assert sorted((str(e.aggregate_id), e.type, e.actor) for e in events) == sorted([
            (sent[a]["referral_id"], "ReferralClosed", "system:scheduler"),
            (sent[b]["referral_id"], "ReferralClosed", "system:rules"),
            (str(c_referral), "ReferralReopened", "system:rules"),
            (str(d_referral), "ReferralReopened", "system:rules")])
        await _rebuilt_is_live(settings)


async def test_an_overdue_help_task_outlives_its_cases_resolution_on_the_board(
        settings: Settings) -> None:
    """Asked on Thursday 17 December 2026 for a day's help, the colleague let Friday's
    closing pass; on Sunday the 20th the clerk resolved the case before the scheduler had
    escalated the task, and the rules closed it: the board's overdue 帮办 count fell to 0
    and no supervisor ever saw it. Now it is escalated at the resolution and stays open and
    counted overdue, until a supervisor hands it back."""
    thursday = at(2026, 12, 17, 10)
    async with center_day(settings, thursday) as center:
        case_id = await center.open_case(thursday)
        task = await escalate(center, case_id, thursday + timedelta(minutes=5),
                              owner_clerk="clerk-018", within_working_days=1)
        assert task["deadline_on"] == "2026-12-18"
        center.clock.set(at(2026, 12, 20, 10))
        assert await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "自行办结", "emotion_defused": True,
            "occurred_at": at(2026, 12, 20, 10).isoformat()})

        async def escalated() -> bool:
            r = await center.followup.get(f"/help-tasks/{task['task_id']}")
            return (r.json()["status"], r.json()["escalated_to"]) == ("open", "supervisor")

        await wait_until(escalated, what="the overdue help task escalated, still open")
        await center.settled()
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 1, "overdue": 1}
        assert await _help_tasks_on(center, "/worklists/teams/supervisor") == [
            task["task_id"]]
        r = await post(center.followup, f"/help-tasks/{task['task_id']}/hand-back",
                       {"reason": "案件已办结，不再需要"},
                       bearer(settings, role=Role.SUPERVISOR, sub="director-01",
                              center=CENTER))
        assert r.status_code == 200, r.text
        await center.settled()
        board = (await center.followup.get(f"/worklists/centers/{CENTER}")).json()
        assert board["escalations"] == {"open": 0, "overdue": 0}
