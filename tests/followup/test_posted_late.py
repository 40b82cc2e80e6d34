"""A step posted after its own day (the counter page's offline queue, within the 72 h grace that
keeps its moment): its reminder is due on the first working morning to come, not on the day
gone, where it was missed at the first tick and counted late on a day nobody could have made
the call. Each at the calendar's edges: a plain Friday, Sunday 20 December, New Year's Eve at
23:30 in Shanghai, a provisional 2027 day and a 2028 one."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.followup.projections import READ_MODEL
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, Center, at, center_day, key, quiet
from tests.followup.test_help_and_referrals import escalate, first, refer
from tests.followup.test_rules import _wait_for
from tests.support import assert_rebuilt_as_live, bearer, headers, running, wait_until

#: (the step's own moment, when it reached the service, the reminder's due moment, basis)
POSTED_LATE = {
    "thursday_sent_friday": (at(2026, 12, 17, 14), at(2026, 12, 18, 10),
                             at(2026, 12, 18, 9), "official"),
    "friday_sent_sunday_20_december": (at(2026, 12, 18, 15), at(2026, 12, 20, 10),
                                       at(2026, 12, 21, 9), "official"),
    "new_years_eve_23_30": (at(2026, 12, 30, 15), at(2026, 12, 31, 23, 30),
                            at(2027, 1, 4, 9), "provisional"),
    "provisional_2027": (at(2027, 3, 11, 14), at(2027, 3, 12, 10),
                         at(2027, 3, 12, 9), "provisional"),
    "a_2028_day": (at(2028, 3, 9, 14), at(2028, 3, 10, 18),
                   at(2028, 3, 13, 9), "provisional"),
}


async def _deadline_and_plan_step(center: Center, case_id: str, resident: UUID, day: str,
                                  said: datetime) -> list[dict[str, Any]]:
    """A deadline on ``day`` noted on the case and a plan step taking effect that day, both
    posted with ``said`` as their moment: the two reminders follow-up plans for them."""
    await center.step(case_id, "deadlines", {"due_on": day, "description": "补交材料",
                                             "occurred_at": said.isoformat()})
    r = await center.intake.post("/plans", headers=headers(key()), json={
        "center_id": CENTER, "counter_id": "window-3", "resident_id": str(resident),
        "title": "材料补齐后办理", "occurred_at": said.isoformat(),
        "steps": [{"service_item": "SA-HARDSHIP-SUBSIDY", "effective_on": day,
                   "case_id": case_id, "what": "补交材料后审核"}]})
    assert r.status_code in (200, 201), r.text
    return await center.followups_of(case_id, 2, "the deadline's and the step's reminders")


@pytest.mark.parametrize("story", list(POSTED_LATE))
async def test_a_deadline_and_a_plan_step_posted_the_next_day_are_reminded_on_a_day_to_come(
        settings: Settings, story: str) -> None:
    """'The application closes in two working days', said at the counter on Thursday and sent
    from the page's queue on Friday: the reminder is due at once, that is on Friday morning,
    and Friday's tick finds it due, not missed (it was due on Thursday, missed and counted
    late on Thursday). A plan step typed in with it, taking effect the same day, alike."""
    said, sent, due, basis = POSTED_LATE[story]
    async with center_day(settings, sent) as center:
        resident = await center.resident()
        case_id = await center.open_case(said, resident=resident)
        closes = due.date().isoformat()  # closer than the reminder's working days: at once
        found = await _deadline_and_plan_step(center, case_id, resident, closes, said)
        reminders = {f["reason"]: f for f in found}
        assert {k: (datetime.fromisoformat(f["due_at"]), f["basis"])
                for k, f in reminders.items()} == {
            "deadline_reminder": (due, basis), "plan_step": (due, basis)}
        await center.settled()
        tick = await center.scheduler.tick(max(sent, due))
        assert "FollowUpMissed" not in tick.fired, "missed the moment it was planned"


#: (the 'missed since' declared at, tracked_from, next_due_on, the calls' due moment)
DECLARED_AFTER_CLOSING = {
    "monday_21_december_18_00": (at(2026, 12, 21, 18), "2026-10-01", "2027-01-15",
                                 at(2026, 12, 22, 9)),
    "sunday_20_december_18_00": (at(2026, 12, 20, 18), "2026-10-01", "2027-01-15",
                                 at(2026, 12, 21, 9)),
    "new_years_eve_23_30": (at(2026, 12, 31, 23, 30), "2026-10-01", "2027-01-15",
                            at(2027, 1, 4, 9)),
    "provisional_2027": (at(2027, 3, 10, 18), "2027-01-01", "2027-04-15", at(2027, 3, 11, 9)),
    "a_2028_friday": (at(2028, 3, 10, 18), "2028-01-01", "2028-04-15", at(2028, 3, 13, 9)),
}


@pytest.mark.parametrize("story", list(DECLARED_AFTER_CLOSING))
async def test_a_missed_since_declared_after_closing_calls_on_the_next_working_morning(
        settings: Settings, story: str) -> None:
    """After closing, the resident says nothing came for months. The calls (and the home
    visit) are due on the next working morning: planned on that day's morning (its office
    hours over), they were missed at the next tick, that same evening."""
    declared, tracked_from, next_due_on, due = DECLARED_AFTER_CLOSING[story]
    async with center_day(settings, declared) as center:
        case_id = await center.open_case(declared, item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(case_id, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": next_due_on,
            "tracked_from": tracked_from, "occurred_at": declared.isoformat()})
        await _wait_for(settings, "ObligationWatched")
        await center.settled()
        tick = await center.scheduler.tick(declared + timedelta(minutes=5))
        assert tick.fired["ObligationMissed"] >= 2, tick.fired
        calls = await center.followups_of(case_id, tick.fired["FollowUpScheduled"])
        assert {datetime.fromisoformat(f["due_at"]) for f in calls} == {due}
        await center.settled()
        assert (await center.scheduler.tick(declared + timedelta(minutes=25))).fired == {}, (
            "nothing is missed on the evening they were planned")


async def test_a_reminder_put_off_to_a_provisional_monday_moves_when_the_notice_makes_it_a_holiday(
        settings: Settings, tmp_path: Path) -> None:
    """New Year's Eve, 23:30 in Shanghai: a deadline said on the 30th reaches the service, its
    reminder put off to Monday 4 January 2027, provisional. A reload that publishes nothing
    keeps it provisional (the re-planning at every start said it "official": its count ran on
    2026's days, the morning it was put off to was not consulted). Then a notice (illustrative
    data) makes Monday 4 January a holiday: the reminder goes to Tuesday's opening, official
    (it stayed due on the holiday, the floor kept as a moment the new calendar does not work)."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    said, sent = at(2026, 12, 30, 15), at(2026, 12, 31, 23, 30)
    ops = bearer(settings, role="ops", center=None)
    async with center_day(settings, sent, holidays_file=holidays) as center:
        case_id = await center.open_case(said)
        await center.step(case_id, "deadlines", {"due_on": "2026-12-31", "description": "补交材料",
                                                 "occurred_at": said.isoformat()})
        [reminder] = await center.followups_of(case_id, 1, "the deadline's reminder")
        reminder_id = reminder["follow_up_id"]
        assert (datetime.fromisoformat(reminder["due_at"]), reminder["basis"]) == (
            at(2027, 1, 4, 9), "provisional")
        await center.settled()

        r = await center.followup.post("/ops/calendar/reload", headers=ops)
        assert r.status_code == 200, r.text
        await center.settled()
        reminder = await center.get(reminder_id)
        assert (datetime.fromisoformat(reminder["due_at"]), reminder["basis"]) == (
            at(2027, 1, 4, 9), "provisional"), "nothing was published"

        holidays.write_text(json.dumps({"2027": {"source": "illustrative test data",
                                                 "holidays": ["2027-01-01..2027-01-04"]}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops)
        assert r.status_code == 200, r.text
        await center.settled()
        reminder = await center.get(reminder_id)
        assert (datetime.fromisoformat(reminder["due_at"]), reminder["basis"]) == (
            at(2027, 1, 5, 9), "official")


async def _deadline_at_the_counter(settings: Settings, when: datetime, due_on: str) -> str:
    """Intake alone, follow-up not running: a case whose deadline closes on ``due_on``."""
    clock = ManualClock(when)
    async with running(create_intake(quiet(settings), clock=clock)) as intake:
        counter = Center(settings, clock, intake, httpx.AsyncClient(), None)  # type: ignore[arg-type]
        case_id = await counter.open_case(when)
        await counter.step(case_id, "deadlines", {"due_on": due_on, "description": "补交材料",
                                                  "occurred_at": when.isoformat()})
        return case_id


#: (the old deadline said, the recent one said (after closing), follow-up starts)
FROM_SCRATCH = {
    "december_20_read_in_provisional_2027": (at(2026, 12, 20, 10), at(2027, 1, 8, 18),
                                             at(2027, 1, 18, 10)),
    "new_years_eve_23_30_read_in_2028": (at(2026, 12, 31, 23, 30), at(2028, 3, 9, 18),
                                         at(2028, 3, 13, 10)),
}


@pytest.mark.parametrize("story", list(FROM_SCRATCH))
async def test_a_follow_up_service_reading_the_history_from_scratch_lets_old_reminders_lapse(
        settings: Settings, story: str) -> None:
    """Follow-up deployed (or its schema lost) after intake had run for weeks: it reads every
    event from the stream's start. A reminder whose working day ended more than
    FOLLOWUP_LAPSE_AFTER_DAYS (14) before is recorded lapsed (scheduled on its day, cancelled
    at once by the rules): on no worklist, never missed, in no rate. Before, every such
    reminder was due this morning, thousands on one clerk's first day. The last week's
    (a deadline said after closing, its next working day over too) is still work: due this
    morning."""
    old_said, recent_said, start = FROM_SCRATCH[story]
    old = await _deadline_at_the_counter(settings, old_said, old_said.date().isoformat())
    recent = await _deadline_at_the_counter(settings, recent_said,
                                            recent_said.date().isoformat())
    async with center_day(settings, start, with_intake=False) as center:
        [lapsed] = await center.followups_of(old, 1, "the old deadline's reminder")
        [due] = await center.followups_of(recent, 1, "the recent deadline's reminder")
        await center.settled()
        lapsed, due = await center.get(lapsed["follow_up_id"]), await center.get(
            due["follow_up_id"])
        assert lapsed["status"] == "cancelled", lapsed
        assert datetime.fromisoformat(lapsed["due_at"]) < start - timedelta(days=14)
        assert (due["status"], datetime.fromisoformat(due["due_at"])) == (
            "scheduled", start.replace(hour=9))
        tick = await center.scheduler.tick(start + timedelta(minutes=1))
        assert "FollowUpMissed" not in tick.fired, tick.fired
        await center.settled()
        await assert_rebuilt_as_live(settings, READ_MODEL)  # the worklist: live == log


async def test_on_the_calendars_last_new_years_eve_a_lapsed_reminder_is_recorded_one_due_waits(
        settings: Settings) -> None:
    """No provisional years: the calendar ends with 2026. Follow-up reads intake's history
    at 23:30 on 31 December, when the next working morning is in 2027. November's reminder
    lapsed long ago: recorded and cancelled as any lapsed one, it needs no day of 2027
    (until rules55 it was parked with the other). Yesterday evening's is work for a morning
    the calendar cannot say: its rule is parked, nothing planned on a morning guessed."""
    old = await _deadline_at_the_counter(settings, at(2026, 11, 2, 10), "2026-11-02")
    recent = await _deadline_at_the_counter(settings, at(2026, 12, 30, 18), "2026-12-30")
    async with center_day(settings, at(2026, 12, 31, 23, 30), with_intake=False,
                          calendar_provisional_years=0) as center:
        ops = bearer(settings, role="ops", center=None)
        parked: list[dict[str, Any]] = []
        planned: list[dict[str, Any]] = []

        async def both_read() -> bool:  # each deadline either planned or parked
            nonlocal parked, planned
            parked = (await center.followup.get("/parked-rules", headers=ops)).json()["items"]
            planned = (await center.followup.get("/followups", params={
                "case_id": old})).json()["items"]
            return len(parked) + len(planned) >= 2

        await wait_until(both_read, what="both deadlines' rules applied or parked")
        assert [(r["case_id"], r["type"], r["year"]) for r in parked] == [
            (recent, "DeadlineNoted", 2027)]
        [lapsed] = planned
        await center.settled()
        lapsed = await center.get(lapsed["follow_up_id"])
        assert lapsed["status"] == "cancelled", lapsed
        assert datetime.fromisoformat(lapsed["due_at"]) == at(2026, 11, 2, 10)
        r = await center.followup.get("/followups", params={"case_id": recent})
        assert r.json()["items"] == []


#: (the action's moment, when it reached the service, the help task's deadline (3 working
#: days), the referral's reply deadline (5))
ACTIONS_POSTED_LATE = {
    # Received on a day off: the days count from Monday 21 (docs/calendar.md, "Deadlines
    # from a day off").
    "thursday_sent_sunday_20_december": (at(2026, 12, 17, 14), at(2026, 12, 20, 10),
                                         at(2026, 12, 24, 17), at(2026, 12, 28, 17)),
    "new_years_eve_23_30": (at(2026, 12, 29, 14), at(2026, 12, 31, 23, 30),
                            at(2027, 1, 6, 17), at(2027, 1, 8, 17)),
    "provisional_2027": (at(2027, 3, 11, 14), at(2027, 3, 12, 10),
                         at(2027, 3, 17, 17), at(2027, 3, 19, 17)),
    "a_2028_friday_18_00": (at(2028, 3, 9, 14), at(2028, 3, 10, 18),
                            at(2028, 3, 15, 17), at(2028, 3, 17, 17)),
}


@pytest.mark.parametrize("story", list(ACTIONS_POSTED_LATE))
async def test_a_help_task_and_a_referral_posted_late_count_their_days_from_the_post(
        settings: Settings, story: str) -> None:
    """An escalation (帮办) and a referral (派单) taken at the counter on Thursday, sent from
    the page's queue days later: the colleague and the unit get their working days from the
    day the post reached the center's system (the next working day when it reached it on a
    day off: Sunday 20 December counts from Monday 21). Counted from Thursday, the colleague had one
    working day of three and the supervisor saw the task escalated, the unit two of five."""
    said, sent, task_due, reply_due = ACTIONS_POSTED_LATE[story]
    await _counted_from_the_post(settings, said, sent, task_due, reply_due)


async def _counted_from_the_post(settings: Settings, said: datetime, sent: datetime,
                                 task_due: datetime, reply_due: datetime) -> None:
    """An escalation and a referral said at ``said``, posted at ``sent``: their deadlines."""
    async with center_day(settings, sent) as center:
        case_id = await center.open_case(said)
        task = await escalate(center, case_id, said)
        referral = await refer(center, case_id, said)
        assert (datetime.fromisoformat(task["deadline_at"]),
                datetime.fromisoformat(referral["reply_due_at"])) == (task_due, reply_due)


#: (the slip's moment (beyond the 72 h grace), the deadline it noted, posted now, the
#: reminder's due moment: the next working morning)
PAPER_SLIPS = {
    "sunday_20_december": (at(2026, 11, 16, 10), "2026-11-27", at(2026, 12, 20, 10),
                           at(2026, 12, 21, 9)),
    "new_years_eve_23_30": (at(2026, 11, 30, 10), "2026-12-04", at(2026, 12, 31, 23, 30),
                            at(2027, 1, 4, 9)),
    "a_2028_friday_18_00": (at(2028, 2, 7, 10), "2028-02-14", at(2028, 3, 10, 18),
                            at(2028, 3, 13, 9)),
}


@pytest.mark.parametrize("story", list(PAPER_SLIPS))
async def test_a_deadline_posted_today_from_last_months_slip_is_work_not_lapsed(
        settings: Settings, story: str) -> None:
    """A clerk types in today a paper slip of last month (``occurred_at`` beyond the grace,
    recorded as given), its deadline passed weeks ago: the center learns of it now, and its
    reminder is the next working morning's work. The lapse window is for a follow-up service
    reading events stored long ago; judged on the reminder's day alone, this fresh one was
    recorded lapsed (cancelled by system:rules) the moment it was posted."""
    said, due_on, posted, due_at = PAPER_SLIPS[story]
    async with center_day(settings, posted) as center:
        resident = await center.resident()
        case_id = await center.open_case(posted, resident=resident)
        # A plan step typed in from the same slip alike (``PlanStepAdded.judged_at``).
        found = await _deadline_and_plan_step(center, case_id, resident, due_on, said)
        await center.settled()
        for reminder in found:
            reminder = await center.get(reminder["follow_up_id"])
            assert (reminder["status"], datetime.fromisoformat(reminder["due_at"])) == (
                "scheduled", due_at), json.dumps(reminder)


@pytest.mark.parametrize("story", list(ACTIONS_POSTED_LATE))
async def test_a_help_task_and_a_referral_typed_in_from_last_months_slip_count_from_the_post(
        settings: Settings, story: str) -> None:
    """The same escalation and referral, typed in from a paper slip a month old (beyond the
    grace: ``ActionTaken.judged_at``): their working days count from the day the post reached
    the center's system, as a post sent late within the grace does. Counted from the slip's
    day (learnt of more than FOLLOWUP_LAPSE_AFTER_DAYS after its moment), the help task was
    overdue on arrival and the unit's reply late before it was asked for."""
    _, sent, task_due, reply_due = ACTIONS_POSTED_LATE[story]
    await _counted_from_the_post(settings, sent - timedelta(days=30), sent, task_due, reply_due)


@pytest.mark.parametrize("story", list(ACTIONS_POSTED_LATE))
async def test_a_referral_chased_again_by_a_reopening_typed_in_from_last_months_slip_counts_from_the_post(  # noqa: E501
        settings: Settings, story: str) -> None:
    """Referred, resolved before the unit replied (the referral closed), then reopened by
    the clerk: all on last month's paper slips, typed in today. The referral is awaited again
    with its working days counted from the day the reopening reached the center's system, as
    the referral itself was. Intake gave the staff reopening no ``judged_at`` (only a
    resident's "not solved" had one), so the chase counted from the slip's day: its reply due
    weeks ago, the unit overdue before it was asked again."""
    _, sent, _, reply_due = ACTIONS_POSTED_LATE[story]
    slip = sent - timedelta(days=30)
    async with center_day(settings, sent) as center:
        case_id = await center.open_case(slip - timedelta(hours=2))
        referral = await refer(center, case_id, slip - timedelta(hours=1))
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": (slip - timedelta(minutes=30)).isoformat()})
        path = f"/referrals/{referral['referral_id']}"

        async def status_is(wanted: str) -> bool:
            return (await center.followup.get(path)).json()["status"] == wanted

        await wait_until(lambda: status_is("closed"), what="the referral closed by the resolution")
        await center.step(case_id, "reopen", {"reason": "居民补充材料",
                                              "occurred_at": slip.isoformat()})
        await wait_until(lambda: status_is("awaiting_reply"), what="the referral chased again")
        chased = (await center.followup.get(path)).json()
        assert datetime.fromisoformat(chased["reply_due_at"]) == reply_due, chased


@pytest.mark.parametrize("story", list(ACTIONS_POSTED_LATE))
async def test_help_tasks_posted_during_a_twelve_day_outage_of_follow_up_count_alike(
        settings: Settings, story: str) -> None:
    """Follow-up was down twelve and a half days. Meanwhile intake recorded two escalations
    (帮办) at the same moment: one said then, one typed in from last month's slip
    (``ActionTaken.judged_at``: intake's clock less the grace). Both reach follow-up only now:
    both help tasks count their three working days from today. The slip's was measured from
    its judged moment, 72 h further back, past FOLLOWUP_LAPSE_AFTER_DAYS, as if read from
    scratch: counted from that day, overdue on arrival, escalated at once."""
    _, back, task_due, _ = ACTIONS_POSTED_LATE[story]
    recorded = back - timedelta(days=12, hours=12)
    async with center_day(settings, back, with_intake=False) as center:
        history = History(CENTER)
        cases = [history.case((recorded - timedelta(days=40)).isoformat(),
                              resident_id=uuid.uuid4()) for _ in range(2)]
        for case_id, said, judged in ((cases[0], recorded, None),
                                      (cases[1], recorded - timedelta(days=30),
                                       recorded - timedelta(hours=72))):
            action = history.add("intake", "ActionTaken", said.isoformat(), {
                "kind": "escalated", "description": "政策冲突需协调",
                **({"judged_at": judged.isoformat()} if judged else {})},
                case_id=case_id, actor="clerk-017")
            history.envelopes[-1] = action.model_copy(update={"recorded_at": recorded})
        await history.publish_new(settings)
        for case_id in cases:
            task = await first(center, "/help-tasks", str(case_id), "the help task")
            assert datetime.fromisoformat(task["deadline_at"]) == task_due, task
