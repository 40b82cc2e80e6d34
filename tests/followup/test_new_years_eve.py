"""New Year's Eve at the counter, half an hour before midnight in Shanghai (15:30 UTC), and the
worklist half an hour after it (16:30 UTC, still 31 December on the machine): the center's
dates are Shanghai's, 2027 is planned on the provisional calendar, and a clock past the
calendar is a clear 422."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day
from tests.followup.test_calendar_published import bad_review, follow_up
from tests.support import bearer, wait_until

EVE = at(2026, 12, 31, 23, 30)
AFTER_MIDNIGHT = at(2027, 1, 1, 0, 30)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [f["follow_up_id"] for f in items]


async def test_a_deadline_noted_on_new_years_eve_is_reminded_on_the_first_working_day(
        settings: Settings) -> None:
    assert EVE.astimezone(UTC).hour == 15 and AFTER_MIDNIGHT.astimezone(UTC).day == 31
    async with center_day(settings, EVE, with_feedback=True) as center:
        # "The application closes in 2 days" (Saturday 2 January, a provisional day off):
        # the reminder is due at once, noted after closing: the first working day's.
        case_id = await center.open_case(EVE)
        await center.step(case_id, "deadlines", {"due_on": "2027-01-02",
                                                 "description": "补助申请截止",
                                                 "occurred_at": EVE.isoformat()})
        reminder = await follow_up(center, "deadline_reminder", case_id=case_id)
        assert datetime.fromisoformat(reminder["due_at"]) == EVE
        assert reminder["basis"] == "provisional"

        center.clock.set(AFTER_MIDNIGHT)
        await center.scheduler.tick()
        await center.settled()
        r = await center.followup.get("/worklists/clerks/clerk-017",
                                      params={"center_id": CENTER})
        assert r.status_code == 200, r.text
        day = r.json()
        assert day["today"] == "2027-01-01"
        assert reminder["follow_up_id"] in ids(day["upcoming"])
        assert reminder["follow_up_id"] not in ids(day["overdue"])
        [case] = [c for c in day["cases"] if c["case_id"] == case_id]
        assert case["due_on"] == "2027-01-02" and not case["overdue"]

        # A bad review half an hour after midnight: 2027's working days, provisionally.
        _, rectification = await bad_review(center, AFTER_MIDNIGHT)
        assert rectification["basis"] == "provisional"
        assert rectification["deadline_on"] > "2027-01-04"

        center.clock.set(at(2032, 1, 5, 10))
        r = await center.followup.get("/worklists/clerks/clerk-017",
                                      params={"center_id": CENTER})
        assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"


async def test_a_case_promised_for_new_years_eve_is_overdue_half_an_hour_after_midnight(
        settings: Settings) -> None:
    # A case heard and guided at 23:30, promised for today, its urgency never assessed (no
    # concerns step: the resident was calm, the clerk went straight to guidance).
    async with center_day(settings, EVE) as center:
        case_id = await center.open_case(EVE)
        guided = await center.step(case_id, "guidance", {
            "policy_basis": "《社会救助暂行办法》", "eligibility": "eligible",
            "promised": "今天答复", "promised_on": "2026-12-31", "occurred_at": EVE.isoformat()})

        async def worklist_cases() -> list[dict[str, Any]]:
            r = await center.followup.get("/worklists/clerks/clerk-017",
                                          params={"center_id": CENTER})
            assert r.status_code == 200, r.text
            return [c for c in r.json()["cases"] if c["case_id"] == case_id]

        async def listed() -> bool:
            return bool(await worklist_cases())

        await wait_until(listed, what="the case due today on the clerk's worklist")
        [case] = await worklist_cases()
        assert (case["due_on"], case["overdue"], case["urgent"]) == ("2026-12-31", False, False)

        # 00:30 in Shanghai, still 31 December on the machine: overdue at the counter and on
        # the worklists alike.
        center.clock.set(AFTER_MIDNIGHT)
        # ``after``: the counter's list reads its own write (the worklist having it says
        # nothing of intake's read model: under load the list still lacked the promised day).
        r = await center.intake.get("/cases", params={
            "center_id": CENTER, "overdue": "true", "after": guided["position"]})
        assert [c["case_id"] for c in r.json()["items"]] == [case_id]
        [case] = await worklist_cases()
        assert case["overdue"] and not case["urgent"]
        r = await center.followup.get(f"/worklists/centers/{CENTER}",
                                      headers=bearer(settings, role="supervisor"))
        assert r.status_code == 200, r.text
        assert [(c["case_id"], c["overdue"]) for c in r.json()["cases"]] == [(case_id, True)]


async def test_a_typed_provisional_due_date_on_the_worklist_keeps_its_day(
        settings: Settings) -> None:
    """New Year's Eve at 23:30, three critical cases on the board, each due in a year without
    a published schedule (provisional): one promised for Monday 4 January 2027, one counted
    from its item's working days, one with a deadline noted in 2028. Only the counted one is
    counted again when the year is published (docs/calendar.md, "What keeps its day"), so
    only it says 暂定 (``due_may_move``); the board read the basis alone and called the
    typed dates provisional too."""
    async with center_day(settings, EVE) as center:
        async def critical() -> str:
            case_id = await center.open_case(EVE)
            await center.step(case_id, "concerns", {"emotion": "anxious", "urgency": "critical",
                                                    "occurred_at": EVE.isoformat()})
            return case_id

        guidance = {"policy_basis": "《社会救助暂行办法》", "eligibility": "eligible",
                    "occurred_at": EVE.isoformat()}
        promised = await critical()
        await center.step(promised, "guidance", {**guidance, "promised": "周一答复",
                                                 "promised_on": "2027-01-04"})
        counted = await critical()
        await center.step(counted, "guidance", {**guidance, "promised": ""})
        noted = await critical()
        await center.step(noted, "deadlines", {"due_on": "2028-03-06", "description": "截止",
                                               "occurred_at": EVE.isoformat()})

        async def cases() -> dict[str, dict[str, Any]]:
            r = await center.followup.get(f"/worklists/centers/{CENTER}",
                                          headers=bearer(settings, role="supervisor"))
            assert r.status_code == 200, r.text
            return {c["case_id"]: c for c in r.json()["cases"]}

        async def dated() -> bool:
            found = await cases()
            return all(found.get(c, {}).get("due_on") for c in (promised, counted, noted))

        await wait_until(dated, what="the three cases' due dates on the board")
        found = await cases()
        assert {c: (found[c]["due_source"], found[c]["due_basis"], found[c]["due_may_move"])
                for c in (promised, counted, noted)} == {
            promised: ("promised", "provisional", False),
            counted: ("item_days", "provisional", True),
            noted: ("deadline", "provisional", False)}
