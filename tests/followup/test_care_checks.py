"""A resident who needs more care (living alone, disabled, chronically ill, 80+: intake's
``CareNeedChanged``) is checked on early after a resolution, high priority, as a case not
defused is: the clerk's urgency is about the affair, not the person. On the calendar's edge:
resolved at 23:30 on New Year's Eve (15:30 UTC, the same UTC date), the check falls in 2027,
a year the holiday package does not know, and says it was worked out provisionally."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import DECEMBER_20, Center, at, center_day, key
from tests.intake.test_hints import born
from tests.support import bearer, headers, wait_until


async def _check_after(center: Center, resident: UUID, resolved: datetime) -> dict:
    case_id = await center.open_case(resolved, resident)
    await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                           "occurred_at": resolved.isoformat()})
    [check] = await center.followups_of(case_id, 1)
    assert check["reason"] == "post_resolution_check"
    return check


async def test_a_resident_living_alone_is_checked_on_early_after_a_resolution(
        settings: Settings) -> None:
    async with center_day(settings, DECEMBER_20) as center:
        alone = await center.living_alone(born("19500101", "061"))
        neighbour = await center.resident()

        # Sunday 20 December (a day off): the next working day, not five working days on.
        check = await _check_after(center, alone, DECEMBER_20)
        assert check["priority"] == "high"
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 12, 22, 9)
        usual = await _check_after(center, neighbour, DECEMBER_20)
        assert usual["priority"] == "normal"
        assert datetime.fromisoformat(usual["due_at"]) == at(2026, 12, 28, 9)

        # 23:30 on New Year's Eve: Monday 4 January 2027 for her, provisional, and it says so.
        center.clock.set(at(2026, 12, 31, 23, 30))
        check = await _check_after(center, alone, at(2026, 12, 31, 23, 30))
        assert (check["priority"], check["basis"]) == ("high", "provisional")
        assert datetime.fromisoformat(check["due_at"]) == at(2027, 1, 4, 9)
        usual = await _check_after(center, neighbour, at(2026, 12, 31, 23, 30))
        assert (usual["priority"], usual["basis"]) == ("normal", "provisional")
        assert datetime.fromisoformat(usual["due_at"]) > datetime.fromisoformat(
            check["due_at"])


async def test_a_resident_found_living_alone_after_the_resolution_is_checked_on_early_too(
        settings: Settings) -> None:
    """Sunday 20 December: resolved before the counter recorded that she lives alone, so the
    check was planned five working days out (28 December), normal priority. The fact
    recorded an hour later (intake's CareNeedChanged, on her own partition, after the
    resolution) brings it forward to the early check, Tuesday 22 December, high priority.
    Before, the flag moved nothing already planned."""
    async with center_day(settings, DECEMBER_20) as center:
        resident = await center.resident()
        check = await _check_after(center, resident, DECEMBER_20)
        assert check["priority"] == "normal"
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 12, 28, 9)

        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        r = await center.intake.put(f"/residents/{resident}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["lives_alone"], "consent": True})
        assert r.status_code == 200, r.text

        async def brought_forward() -> bool:
            now = await center.get(check["follow_up_id"])
            return now["priority"] == "high" and datetime.fromisoformat(
                now["due_at"]) == at(2026, 12, 22, 9)
        await wait_until(brought_forward, what="the check brought forward, high priority")
