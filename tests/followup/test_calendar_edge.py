"""The last days the working-day calendar covers: the scheduler records every step it can,
says on /ready what waits for the next year, and goes on once that year is added.

No provisional years (``CALENDAR_PROVISIONAL_YEARS=0``, a center that plans nothing on the law
alone): the calendar ends 2026-12-31, as any calendar ends after its last provisional year."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from uuid import UUID

from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.followup.test_calendar_published import SCHEDULE_2027, ops
from tests.support import headers, wait_until


async def test_at_the_calendars_end_a_follow_up_falls_due_and_what_waits_is_said(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    wednesday = at(2026, 12, 30, 10)
    declared = at(2026, 12, 1, 10)
    async with center_day(settings, declared, holidays_file=holidays,
                          calendar_provisional_years=0) as center:
        # A monthly reimbursement declared on Tuesday 1 December, its November period in its
        # grace (three working days, ended Thursday 3 December) and then not collected.
        case_id = await center.open_case(declared)
        await center.step(case_id, "obligations", {
            "description": "每月领取医疗费用补助", "cadence": "monthly",
            "next_due_on": "2026-11-30", "occurred_at": declared.isoformat()})
        pool = center.app.state.pool

        async def watched() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM obligations"
                                            " WHERE case_id = $1", UUID(case_id)))

        await wait_until(watched, what="the obligation watched")
        # Wednesday 30 December: a home visit for this morning.
        center.clock.set(wednesday)
        r = await center.followup.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "due_on": "2026-12-30", "assigned_team": "visits"})
        assert r.status_code == 201, r.text
        visit_id = r.json()["id"]
        await center.settled()

        # Closing time: the visit is due (its day closes at 17:00, known), but missing it
        # escalates two working days later, in 2027, which this calendar does not cover.
        # The November period's miss needs December's grace, also in 2027. Both wait, and
        # /ready says so (it served on: 200).
        tick = await center.scheduler.tick(at(2026, 12, 30, 18))
        assert tick.fired["FollowUpDue"] == 1
        assert sorted(tick.waiting.values()) == [2027, 2027] and tick.failed == 0
        await center.settled()
        visit = await center.get(visit_id)
        assert visit["status"] == "due"
        r = await center.followup.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert "2 scheduled step(s) wait" in r.json()["reasons"][0]
        assert "2027" in r.json()["reasons"][0]

        # The State Council's 2027 schedule is added: the next tick records what waited.
        holidays.write_text(json.dumps(SCHEDULE_2027))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        center.clock.set(at(2026, 12, 31, 9))
        tick = await center.scheduler.tick()
        assert tick.fired["FollowUpMissed"] == 1 and tick.fired["ObligationMissed"] == 1
        assert tick.waiting == {}
        await center.settled()
        [called] = [f for f in await center.followups_of(case_id, 1, "the missed period's call")
                    if f["reason"] == "obligation_missed"]
        # Due this morning: planned as it would have been on 3 December, due on the 4th, it
        # was missed the moment it was planned, late on a day long gone.
        assert datetime.fromisoformat(called["due_at"]) == at(2026, 12, 31, 9)
        assert (await center.get(visit_id))["status"] == "missed"
        r = await center.followup.get("/ready")
        assert r.json()["status"] == "ready" and r.json()["reasons"] == []
