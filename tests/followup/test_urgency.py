"""Urgent things fast (急事快点办): urgency and close deadlines make a case's follow-ups high
priority and put the case at the top of the worklists; a critical case is on the supervisor's
board at once; cases overdue and due soon are on the clerk's and the supervisor's worklists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day
from tests.support import stream_envelopes, wait_until

MONDAY = at(2026, 3, 2, 9)
FRIDAY = at(2026, 3, 20, 9)


async def noted(center: Center, urgency: str, deadline: str | None,
                when: datetime = MONDAY) -> str:
    case_id = await center.open_case(when)
    await center.step(case_id, "concerns", {"emotion": "anxious", "urgency": urgency,
                                            "occurred_at": when.isoformat()})
    if deadline:
        await center.step(case_id, "deadlines", {"due_on": deadline, "description": "截止",
                                                 "occurred_at": when.isoformat()})
    return case_id


async def worklist_cases(center: Center, path: str, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        r = await center.followup.get(path, params={"center_id": CENTER})
        assert r.status_code == 200, r.text
        found = r.json()["cases"]
        return len(found) >= n

    await wait_until(check, what=f"{n} cases on {path}")
    return found


async def test_urgent_cases_get_high_priority_follow_ups_and_head_the_worklists(
        settings: Settings) -> None:
    async with center_day(settings, MONDAY, urgent_deadline_working_days=2,
                          case_due_soon_working_days=3) as center:
        # A critical case, no due date yet: on the supervisor's board at once.
        critical = await noted(center, "critical", None)
        [first] = await worklist_cases(center, f"/worklists/centers/{CENTER}", 1)
        assert (first["case_id"], first["urgency"], first["urgent"]) == (critical, "critical",
                                                                          True)

        normal = await noted(center, "normal", "2026-03-19")  # reminder Mon 16 March
        high = await noted(center, "high", "2026-03-20")  # reminder Tue 17 March
        # Wednesday 4 March is two working days after Monday: close, so urgent.
        close = await noted(center, "normal", "2026-03-04")
        [n] = await center.followups_of(normal, 1)
        [h] = await center.followups_of(high, 1)
        [c] = await center.followups_of(close, 1)
        assert (n["priority"], h["priority"], c["priority"]) == ("normal", "high", "high")

        # The clerk's follow-ups: the high-priority reminder before the earlier normal one.
        await center.settled()
        r = await center.followup.get("/worklists/clerks/clerk-017",
                                      params={"center_id": CENTER, "days": 20})
        day = r.json()
        assert [f["follow_up_id"] for f in day["upcoming"]] == [h["follow_up_id"],
                                                                n["follow_up_id"]]
        assert [f["follow_up_id"] for f in day["due_today"]] == [c["follow_up_id"]]
        # The clerk's cases: the critical one, then the one due within three working days.
        cases = await worklist_cases(center, "/worklists/clerks/clerk-017", 2)
        assert [x["case_id"] for x in cases] == [critical, close]
        assert cases[1]["due_on"] == "2026-03-04" and not cases[1]["overdue"]

        # Friday 20 March: two cases overdue, one due today; critical first, urgent next.
        center.clock.set(at(2026, 3, 20, 9))
        expected = [critical, close, high, normal]
        for path in ("/worklists/clerks/clerk-017", f"/worklists/centers/{CENTER}",
                     "/worklists/teams/supervisor"):
            cases = await worklist_cases(center, path, 4)
            assert [x["case_id"] for x in cases] == expected, path
            assert [x["overdue"] for x in cases] == [False, True, False, True]
            assert [x["urgent"] for x in cases] == [True, True, True, False]
        r = await center.followup.get("/worklists/teams/followup-desk",
                                      params={"center_id": CENTER})
        assert r.json()["cases"] == []
        r = await center.followup.get("/worklists/clerks/clerk-099", params={"center_id": CENTER})
        assert r.json()["cases"] == []

        # Resolved, a case leaves the worklists; its check is high priority, being urgent.
        await center.step(high, "resolve", {"outcome": "resolved", "explanation": "",
                                            "emotion_defused": True,
                                            "occurred_at": at(2026, 3, 20, 9).isoformat()})
        checks = await center.followups_of(high, 2)
        [check] = [f for f in checks if f["reason"] == "post_resolution_check"]
        assert check["priority"] == "high"

        async def gone() -> bool:
            r = await center.followup.get(f"/worklists/centers/{CENTER}")
            return [x["case_id"] for x in r.json()["cases"]] == [critical, close, normal]

        await wait_until(gone, what="the resolved case to leave the board")

        # A case that turns urgent later: its reminder, planned at normal priority, is raised.
        later = await noted(center, "normal", "2026-03-27", FRIDAY)
        [reminder] = await center.followups_of(later, 1)
        assert reminder["priority"] == "normal"
        await center.step(later, "concerns", {"emotion": "upset", "urgency": "high",
                                              "occurred_at": FRIDAY.isoformat()})

        async def raised() -> bool:
            return (await center.get(reminder["follow_up_id"]))["priority"] == "high"

        await wait_until(raised, what="the reminder to be high priority")
        prioritised = [e for e in await stream_envelopes(center.settings)
                       if e.type == "FollowUpPrioritised"]
        assert [(str(e.aggregate_id), e.payload, e.actor) for e in prioritised] == [
            (reminder["follow_up_id"], {"priority": "high", "reason": "case_urgent"},
             "system:rules")]
        # A second urgent word changes nothing more.
        await center.step(later, "concerns", {"emotion": "angry", "urgency": "high",
                                              "occurred_at": FRIDAY.isoformat()})
        await center.step(later, "resolve", {"outcome": "resolved", "explanation": "",
                                             "emotion_defused": True,
                                             "occurred_at": FRIDAY.isoformat()})
        await center.followups_of(later, 2)
        assert len([e for e in await stream_envelopes(center.settings)
                    if e.type == "FollowUpPrioritised"]) == 1


#: (the slip's moment, a month back; typed in now; the deadline it noted: within two working
#: days of the moment follow-up takes it as noted, intake's clock less the 72 h grace)
SLIPS_WITH_A_CLOSE_DEADLINE = {
    "sunday_20_december": (at(2026, 11, 16, 10), at(2026, 12, 20, 10), "2026-12-21"),
    "new_years_eve_23_30": (at(2026, 11, 30, 10), at(2026, 12, 31, 23, 30), "2026-12-30"),
    "provisional_2027": (at(2027, 2, 10, 10), at(2027, 3, 12, 10), "2027-03-11"),
    "a_2028_friday_18_00": (at(2028, 2, 7, 10), at(2028, 3, 10, 18), "2028-03-09"),
}


@pytest.mark.parametrize("story", list(SLIPS_WITH_A_CLOSE_DEADLINE))
async def test_a_deadline_typed_in_from_last_months_slip_that_closes_now_makes_the_case_urgent(
        settings: Settings, story: str) -> None:
    """Last month's paper slip typed in today: 'the application closes' on a day now at
    most two working days off (``DeadlineNoted.judged_at``). The case is urgent and its
    reminder high priority, as for a deadline noted today. Measured from the slip's own day,
    the deadline was weeks away, the case not urgent, and its reminder due the next morning
    as normal priority behind everything else."""
    said, now, due_on = SLIPS_WITH_A_CLOSE_DEADLINE[story]
    async with center_day(settings, now) as center:
        case_id = await noted(center, "normal", due_on, when=said)
        reminder = (await center.followups_of(case_id, 1, "the deadline's reminder"))[0]
        assert (reminder["reason"], reminder["priority"]) == ("deadline_reminder", "high"), \
            reminder
