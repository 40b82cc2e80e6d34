"""A hard case (疑难件) walked end to end: handed to a team (转办), handed back to the clerk who
first took it, resolved, and reopened when the resident phones to say it is not done. At each
step the case is on the worklist of whoever does the work now, and on the supervisor's board
with who that is."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.support import bearer, headers, wait_until

TEAM = "team-elderly"


def clerk(settings: Settings, sub: str = "clerk-017") -> dict[str, str]:
    return {**bearer(settings, role=Role.CLERK, sub=sub, center=CENTER), **headers(key())}


async def cases_on(center: Center, path: str, **params: Any) -> dict[str, dict[str, Any]]:
    r = await center.followup.get(path, params={"center_id": CENTER, **params},
                                  headers=bearer(center.settings, role=Role.SUPERVISOR,
                                                 sub="director-01", center=CENTER))
    assert r.status_code == 200, r.text
    return {c["case_id"]: c for c in r.json()["cases"]}


async def until_owned(center: Center, case_id: str, clerk_: str | None, team: str | None,
                      what: str) -> None:
    async def check() -> bool:
        case = (await cases_on(center, f"/worklists/centers/{CENTER}")).get(case_id)
        return case is not None and (case["owner_clerk"], case["owner_team"]) == (clerk_, team)

    await wait_until(check, what=what)


async def handed_to_the_team(center: Center, when: datetime, due_on: str,
                             resident: UUID | None = None) -> str:
    """A case opened at ``when`` with a deadline on ``due_on``, handed to the team (转办)."""
    case_id = await center.open_case(when, resident=resident)
    await center.step(case_id, "deadlines", {"due_on": due_on, "description": "申报截止",
                                             "occurred_at": when.isoformat()})
    r = await center.intake.post(f"/cases/{case_id}/handover", headers=clerk(center.settings),
                                 json={"to_team": TEAM, "reason": "涉及多部门，需小组协调"})
    assert r.status_code == 200, r.text
    return case_id


async def test_a_case_handed_to_a_team_is_on_the_teams_worklist_until_it_is_handed_back(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        # 转办: the elderly-care team takes the hard part over.
        case_id = await handed_to_the_team(center, at(2026, 3, 2, 9, 10), "2026-03-04")
        await until_owned(center, case_id, None, TEAM, "the board to say the team has it")
        team = await cases_on(center, f"/worklists/teams/{TEAM}")
        assert list(team) == [case_id], "the team doing the work sees the case due Wednesday"
        assert team[case_id]["due_on"] == "2026-03-04"
        mine = await cases_on(center, "/worklists/clerks/clerk-017")
        assert case_id in mine, "首问负责制: the first clerk keeps seeing it"
        assert await cases_on(center, "/worklists/teams/team-other") == {}

        # The team hands it back to the clerk who first took it.
        r = await center.intake.post(f"/cases/{case_id}/handover", headers=clerk(settings),
                                     json={"to_clerk": "clerk-017", "reason": "已协调，退回"})
        assert r.status_code == 200, r.text
        await until_owned(center, case_id, "clerk-017", None, "the case back with its clerk")
        assert await cases_on(center, f"/worklists/teams/{TEAM}") == {}
        assert case_id in await cases_on(center, "/worklists/clerks/clerk-017")

        # Resolved; then the resident phones: it is not done. A supervisor reopens it, and the
        # case is back on the clerk's worklist, not on the team's. Its deadline (4 March) is
        # past by then: reopened, it gets its item's 15 working days again from the reopening
        # day (due 26 March), not shown overdue the moment it is taken up again (reopened by
        # its clerk, it would keep the past deadline: a renewal is an extension, 延期审批; so
        # would the supervisor who resolved it: the reopening is director-02's).
        center.clock.set(at(2026, 3, 3, 11))
        await center.step(case_id, "resolve", {"outcome": "resolved",
                                               "emotion_on_leaving": "calm",
                                               "occurred_at": at(2026, 3, 3, 11).isoformat()})

        async def off_the_board() -> bool:
            return case_id not in await cases_on(center, f"/worklists/centers/{CENTER}")

        await wait_until(off_the_board, what="the resolved case off the board")
        center.clock.set(at(2026, 3, 5, 8, 30))
        r = await center.intake.post(f"/cases/{case_id}/reopen", json={
            "reason": "居民来电称补助仍未到账", "occurred_at": at(2026, 3, 5, 8, 40).isoformat()},
            headers={**headers(key()), **bearer(settings, role=Role.SUPERVISOR,
                                                sub="director-02")})
        assert r.status_code == 200, r.text
        center.clock.set(at(2026, 3, 24, 9))  # due soon: on the board again
        await until_owned(center, case_id, "clerk-017", None, "the reopened case on the board")
        mine = await cases_on(center, "/worklists/clerks/clerk-017")
        assert (mine[case_id]["due_on"], mine[case_id]["overdue"]) == ("2026-03-26", False)
        assert await cases_on(center, f"/worklists/teams/{TEAM}") == {}


async def help_tasks_of(center: Center, who: str) -> dict[str, str]:
    r = await center.followup.get(f"/worklists/clerks/{who}", params={"center_id": CENTER})
    assert r.status_code == 200, r.text
    return {t["task_id"]: t["status"] for t in r.json()["help_tasks"]}


async def test_a_help_task_handed_back_is_on_the_asking_clerks_worklist_while_the_case_is_open(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        r = await center.intake.post(f"/cases/{case_id}/actions", headers=clerk(settings), json={
            "kind": "escalated", "description": "政策冲突需协调", "owner_clerk": "clerk-018",
            "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
        assert r.status_code == 200, r.text

        async def opened() -> bool:
            return bool(await help_tasks_of(center, "clerk-018"))

        await wait_until(opened, what="the help task on clerk-018's worklist")
        [task_id] = await help_tasks_of(center, "clerk-018")
        assert await help_tasks_of(center, "clerk-017") == {}, "clerk-018's to do, not hers"

        r = await center.followup.post(f"/help-tasks/{task_id}/hand-back",
                                       headers=clerk(settings, "clerk-018"),
                                       json={"reason": "不属于本岗位职责"})
        assert r.status_code == 200, r.text

        async def back() -> bool:
            return await help_tasks_of(center, "clerk-017") == {task_id: "handed_back"}

        await wait_until(back, what="the handed-back task back with the clerk who asked")
        assert await help_tasks_of(center, "clerk-018") == {}

        center.clock.set(at(2026, 3, 2, 11))
        await center.step(case_id, "resolve", {"outcome": "resolved",
                                               "emotion_on_leaving": "calm",
                                               "occurred_at": at(2026, 3, 2, 11).isoformat()})

        async def gone() -> bool:
            return await help_tasks_of(center, "clerk-017") == {}

        await wait_until(gone, what="the handed-back task off the list once the case is done")


async def test_a_plan_step_added_to_a_case_handed_to_a_team_is_the_teams_to_remind(
        settings: Settings) -> None:
    """The case is handed to the elderly-care team (转办) on Sunday 20 December; the team
    then draws up the resident's plan with a step on that case. Its reminder is the team's, as
    every follow-up planned for the case after the handover is; it went to the clerk who
    first took the case, who no longer does its work (nor saw it on the team's worklist)."""
    async with center_day(settings, at(2026, 12, 20, 9)) as center:
        resident = await center.resident()
        case_id = await handed_to_the_team(center, at(2026, 12, 20, 9, 10), "2027-01-15",
                                           resident)

        async def reassigned() -> bool:  # the handover applied by the rules
            found = await center.followups_of(case_id, 1, "the deadline's reminder")
            return found[0]["assigned_team"] == TEAM

        await wait_until(reassigned, what="the deadline's reminder handed to the team")
        r = await center.intake.post("/plans", headers=headers(key()), json={
            "center_id": CENTER, "counter_id": "window-3", "resident_id": str(resident),
            "title": "养老补贴材料", "occurred_at": at(2026, 12, 20, 10).isoformat(),
            "steps": [{"service_item": "SA-HARDSHIP-SUBSIDY", "effective_on": "2027-01-08",
                       "case_id": case_id, "what": "补交材料后审核"}]})
        assert r.status_code in (200, 201), r.text
        reminders = await center.followups_of(case_id, 2, "the step's reminder")
        assert {(f["reason"], f["assigned_team"], f["assigned_clerk"]) for f in reminders} == {
            ("deadline_reminder", TEAM, None), ("plan_step", TEAM, None)}, reminders
