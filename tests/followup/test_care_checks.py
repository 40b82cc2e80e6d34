"""A resident who needs more care (living alone, disabled, chronically ill, 80+: intake's
``CareNeedChanged``) is checked on early after a resolution, high priority, as a case not
defused is: the clerk's urgency is about the affair, not the person. On the calendar's edge:
resolved at 23:30 on New Year's Eve (15:30 UTC, the same UTC date), the check falls in 2027,
a year the holiday package does not know, and says it was worked out provisionally."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from services.followup import parked as parking
from services.followup.domain import follow_up_id_for
from services.followup.residents import remember_care_and_hints
from shared.contracts import Envelope
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, DECEMBER_20, Center, at, center_day, key
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


def _intake_event(kind: str, aggregate: UUID, case_id: UUID | None, when: datetime,
                  **payload: object) -> Envelope:
    return Envelope(event_id=uuid4(), type=kind, version=1, service="intake", position=1,
                    aggregate_id=aggregate, aggregate_version=1, case_id=case_id,
                    center_id=CENTER, occurred_at=when, recorded_at=when, actor="clerk-017",
                    payload=dict(payload))


async def _blocked_or_done(pool: asyncpg.Pool, pid: int, task: asyncio.Task[None]) -> None:
    """The barrier: the second worker's batch either waits for a lock or has finished."""
    async def check() -> bool:
        return task.done() or await pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid) is True
    await wait_until(check, what="the second batch to wait for the first, or be done")


async def test_a_care_flag_and_a_resolution_applied_at_the_same_instant_by_two_workers(
        settings: Settings) -> None:
    """Two workers (CONSUMER_PARTITIONS): the resident's flag on one, the case's resolution
    on the other, each batch applied while the other's transaction is still open, in both
    orders. Sunday 20 December: whichever commits last, the check is the early one, Tuesday
    22 December, high priority. Before, neither saw the other's write and both checks
    stayed five working days out (28 December), normal."""
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool
        checks = []
        for flag_first in (False, True):
            resident, case_id = uuid4(), uuid4()
            opened = _intake_event("CaseOpened", case_id, case_id, DECEMBER_20,
                                   resident_id=str(resident), clerk_id="clerk-017",
                                   counter_id="window-3", service_item="SA-HARDSHIP-SUBSIDY")
            resolved = _intake_event("CaseResolved", case_id, case_id, DECEMBER_20,
                                     outcome="resolved", emotion_defused=True)
            flagged = _intake_event("CareNeedChanged", resident, None, DECEMBER_20,
                                    resident_id=str(resident), more_care=True)
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, [opened])
            first, second = (flagged, resolved) if flag_first else (resolved, flagged)
            async with pool.acquire() as one, pool.acquire() as other:
                async with one.transaction():
                    await rules.apply(one, [first])

                    async def then() -> None:
                        async with other.transaction():
                            await rules.apply(other, [second])  # noqa: B023
                    later = asyncio.create_task(then())
                    await _blocked_or_done(pool, other.get_server_pid(), later)
                await later
            checks.append(str(follow_up_id_for("resolution", resolved.event_id)))
        await center.settled()
        for check in checks:
            now = await center.get(check)
            assert (now["priority"], datetime.fromisoformat(now["due_at"])) == (
                "high", at(2026, 12, 22, 9)), now


async def test_a_care_flag_whose_rule_was_parked_brings_the_check_forward_when_it_comes_back(
        settings: Settings) -> None:
    """New Year's Eve 23:30: resolved, the usual check planned five working days into 2027
    (provisional), normal priority. The flag that she lives alone came when its early check's
    day was past the calendar (a year taken out of the holidays file): the consumer kept the
    flag and parked the rule. When the calendar grows the rule comes back and is applied:
    the check brought forward to Monday 4 January 2027, high priority. Before, a
    CareNeedChanged had no rule of its own to run again: it was unparked and dropped, the
    check left late."""
    eve = at(2026, 12, 31, 23, 30)
    async with center_day(settings, eve, with_intake=False) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool
        resident, case_id = uuid4(), uuid4()
        opened = _intake_event("CaseOpened", case_id, case_id, eve, resident_id=str(resident),
                               clerk_id="clerk-017", counter_id="window-3",
                               service_item="SA-HARDSHIP-SUBSIDY")
        resolved = _intake_event("CaseResolved", case_id, case_id, eve, outcome="resolved",
                                 emotion_defused=True)
        async with pool.acquire() as conn, conn.transaction():
            await rules.apply(conn, [opened, resolved])
        check = str(follow_up_id_for("resolution", resolved.event_id))
        await center.settled()
        usual = await center.get(check)
        assert usual["priority"] == "normal"
        assert datetime.fromisoformat(usual["due_at"]) > at(2027, 1, 4, 9)
        flagged = _intake_event("CareNeedChanged", resident, None, eve,
                                resident_id=str(resident), more_care=True)
        async with pool.acquire() as conn, conn.transaction():
            await remember_care_and_hints(conn, [flagged])
            await parking.park(conn, flagged, "2027 is past the calendar", 2027)
        assert await rules.retry_parked(pool) == 1
        await center.settled()
        early = await center.get(check)
        assert (early["priority"], datetime.fromisoformat(early["due_at"]), early["basis"]) == (
            "high", at(2027, 1, 4, 9), "provisional"), early
        assert await parking.count(pool) == 0


async def test_a_backdated_resolutions_check_is_planned_from_when_intake_had_it(
        settings: Settings) -> None:
    """Resolved on Sunday 20 December 2026 saying 1 December: the check after it was planned
    from 1 December (due days ago, missed at the scheduler's next tick and counted against
    the team in a month gone by). Planned from judged_at (Thursday 17 December, intake's
    clock less the grace): five working days on, Thursday 24 December."""
    async with center_day(settings, DECEMBER_20) as center:
        case_id = await center.open_case(at(2026, 12, 1, 10))
        await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                               "occurred_at": at(2026, 12, 1, 10).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        assert check["reason"] == "post_resolution_check"
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 12, 24, 9), check
