"""Residents who need more care: the seed's resident living alone who is always late to claim
his medical reimbursement is visited at home after one missed month; a resident who declared
nothing, after two in a row. Over HTTP, through intake's vault, the stream and follow-up's
scheduler on a hand-set clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import DECEMBER_20, Center, at, center_day, key
from tests.intake.test_hints import born, no_personal_data
from tests.support import bearer, headers, register_resident, stream_envelopes, wait_until

ALONE = born("19560310", "021")  # 69 in March 2026: the care flag is his living alone
NEIGHBOUR = born("19560410", "031")


async def reimbursement(center: Center, resident: str) -> str:
    """His monthly medical reimbursement, declared at the counter; the obligation's id."""
    case_id = await center.open_case(at(2026, 3, 2, 9, 10), UUID(resident),
                                     item="MI-MEDICAL-REIMBURSEMENT")
    written = await center.step(case_id, "obligations", {
        "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-03-16",
        "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
    pool: asyncpg.Pool = center.app.state.pool

    async def watched() -> bool:
        return bool(await pool.fetchval(
            "SELECT count(*) FROM obligations WHERE case_id = $1", UUID(case_id)))

    await wait_until(watched, what=f"the obligation of {written['id']} watched")
    return case_id


def of_reason(items: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    return [f for f in items if f["reason"] == reason]


async def test_a_resident_living_alone_is_visited_after_one_missed_month_others_after_two(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        alone = str(await center.living_alone(ALONE))
        neighbour = await register_resident(center.intake, id_=NEIGHBOUR)
        pool: asyncpg.Pool = center.app.state.pool
        alone_case = await reimbursement(center, alone)
        neighbour_case = await reimbursement(center, neighbour)

        # March: neither claims by closing on Thursday 19 March (due 16th, 3 working days).
        tick = await center.scheduler.tick(at(2026, 3, 19, 17))
        assert tick.fired == {"ObligationMissed": 2, "FollowUpScheduled": 3}
        [visit] = of_reason(await center.followups_of(alone_case, 2), "home_visit")
        assert visit["assigned_team"] == settings.followup_team
        assert visit["priority"] == "high" and visit["resident_id"] == alone
        assert datetime.fromisoformat(visit["due_at"]) == at(2026, 3, 20, 9)
        assert of_reason(await center.followups_of(neighbour_case, 1), "home_visit") == []

        # The board lists the home visit for the team's rounds.
        await center.settled()
        board = (await center.followup.get("/worklists/centers/SH-PD-HUAMU")).json()
        assert [f["follow_up_id"] for f in board["home_visits"]] == [visit["follow_up_id"]]

        # April: both miss again. The neighbour's second month in a row calls for a visit;
        # the resident living alone has one already for this run of missed months.
        tick = await center.scheduler.tick(at(2026, 4, 21, 17))
        assert (tick.fired["ObligationMissed"], tick.fired["FollowUpScheduled"]) == (2, 3)
        [second] = of_reason(await center.followups_of(neighbour_case, 3), "home_visit")
        assert datetime.fromisoformat(second["due_at"]) == at(2026, 4, 22, 9)
        alone_items = await center.followups_of(alone_case, 3)
        assert len(of_reason(alone_items, "home_visit")) == 1
        await center.settled()
        board = (await center.followup.get("/worklists/centers/SH-PD-HUAMU")).json()
        assert {f["follow_up_id"] for f in board["home_visits"]} == {
            visit["follow_up_id"], second["follow_up_id"]}

        # He asks to be erased: his visit is called off, and follow-up forgets the bit.
        assert (await center.intake.delete(f"/residents/{alone}")).status_code == 200

        async def forgotten() -> bool:
            gone = not await pool.fetchval(
                "SELECT count(*) FROM resident_care WHERE resident_id = $1", UUID(alone))
            return gone and (await center.get(visit["follow_up_id"]))["status"] == "cancelled"

        await wait_until(forgotten, what="the care bit dropped and the visit cancelled")

    envelopes = await stream_envelopes(settings)
    [care] = [e for e in envelopes if e.type == "CareNeedChanged"]
    assert care.payload == {"resident_id": alone, "more_care": True}, "one bit, never why"
    visits = [e for e in envelopes if e.type == "FollowUpScheduled"
              and e.payload["reason"] == "home_visit"]
    assert len(visits) == 2
    no_personal_data(envelopes, ALONE)
    no_personal_data(envelopes, NEIGHBOUR)


async def test_a_home_visit_planned_across_new_year_is_provisional_on_a_year_without_schedule(
        settings: Settings) -> None:
    async with center_day(settings, DECEMBER_20) as center:
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        alone = await register_resident(center.intake, id_=born("19401220", "041"))  # 86
        r = await center.intake.put(f"/residents/{alone}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["lives_alone"], "consent": True})
        assert r.status_code == 200, r.text
        pool: asyncpg.Pool = center.app.state.pool

        async def flagged() -> bool:
            return bool(await pool.fetchval(
                "SELECT more_care FROM resident_care WHERE resident_id = $1", UUID(alone)))

        await wait_until(flagged, what="follow-up told she needs more care")
        case_id = await center.open_case(at(2026, 12, 21, 9, 10), UUID(alone),
                                         item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(case_id, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-12-28",
            "occurred_at": at(2026, 12, 21, 9, 30).isoformat()})

        async def watched() -> bool:
            return bool(await pool.fetchval(
                "SELECT count(*) FROM obligations WHERE case_id = $1", UUID(case_id)))

        await wait_until(watched, what="the obligation watched")
        # Due Monday 28 December: grace 28, 29, 30, 31; missed at closing on New Year's Eve.
        tick = await center.scheduler.tick(at(2026, 12, 31, 17))
        assert (tick.fired["ObligationMissed"], tick.fired["FollowUpScheduled"]) == (1, 2)
        [visit] = of_reason(await center.followups_of(case_id, 2), "home_visit")
        # 1 January is a holiday, 2-3 January a weekend: Monday 4 January, on 2027's
        # provisional calendar (no official schedule yet).
        assert datetime.fromisoformat(visit["due_at"]) == at(2027, 1, 4, 9)
        assert visit["basis"] == "provisional"
