"""The 08:30 worklist at the calendar's edges, against a hand-computed expectation: Sunday 20
December 2026 (nothing is due on a day off; Friday's undone work is overdue), Monday 21
December, New Year's Eve at 23:30 in Shanghai (the day's work is overdue once the office
closed), and Monday 4 January 2027 on the provisional calendar (1 January a holiday, 2-3 a
weekend: Thursday's work is overdue, Friday's holiday work is due Monday)."""

from __future__ import annotations

from typing import Any

import httpx

from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.support import headers


async def schedule(api: httpx.AsyncClient, **body: Any) -> str:
    r = await api.post("/followups", headers=headers(key()),
                       json={"center_id": CENTER, "reason": "home_visit", **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def lists(api: httpx.AsyncClient, path: str) -> tuple[str, list[str], list[str],
                                                             list[str]]:
    r = await api.get(path, params={"center_id": CENTER})
    assert r.status_code == 200, r.text
    day = r.json()
    return (day["today"], *([f["follow_up_id"] for f in day[name]]
                            for name in ("overdue", "due_today", "upcoming")))


async def test_the_0830_worklist_on_a_sunday_a_monday_new_years_eve_and_a_provisional_monday(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 12, 14, 8), with_intake=False) as center:
        api = center.followup
        friday = await schedule(api, due_at=at(2026, 12, 18, 10).isoformat(),
                                assigned_clerk="clerk-017")
        monday = await schedule(api, due_on="2026-12-21", assigned_clerk="clerk-017")
        eve = await schedule(api, due_on="2026-12-31", assigned_team="followup-desk")
        new_year = await schedule(api, due_on="2027-01-01", assigned_clerk="clerk-017")
        january = await schedule(api, due_on="2027-01-04", assigned_clerk="clerk-017")
        await center.settled()
        assert (await center.get(new_year))["due_at"].startswith("2027-01-04T01:00"), \
            "a holiday's follow-up is due at the next working day's opening"
        assert (await center.get(january))["basis"] == "provisional"
        clerk, team = "/worklists/clerks/clerk-017", "/worklists/teams/followup-desk"
        both_jan = sorted([new_year, january])

        center.clock.set(at(2026, 12, 20, 8, 30))  # Sunday
        assert await lists(api, clerk) == ("2026-12-20", [friday], [], [monday])
        assert await lists(api, team) == ("2026-12-20", [], [], [eve])

        center.clock.set(at(2026, 12, 21, 8, 30))  # Monday
        assert await lists(api, clerk) == ("2026-12-21", [friday], [monday], both_jan)

        center.clock.set(at(2026, 12, 31, 23, 30))  # New Year's Eve, 15:30 UTC
        assert await lists(api, clerk) == ("2026-12-31", [friday, monday], [], both_jan)
        assert await lists(api, team) == ("2026-12-31", [eve], [], [])

        center.clock.set(at(2027, 1, 4, 8, 30))  # the first working day of 2027
        assert await lists(api, clerk) == ("2027-01-04", [friday, monday], both_jan, [])
        assert await lists(api, team) == ("2027-01-04", [eve], [], [])
        board = (await api.get(f"/worklists/centers/{CENTER}")).json()
        assert [f["follow_up_id"] for f in board["overdue"]] == [friday, monday, eve]
