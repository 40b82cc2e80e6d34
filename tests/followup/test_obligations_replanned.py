"""A monthly obligation declared on December 20 is watched on the provisional 2027 calendar;
the 2027 notice arrives and the grace of its period is counted again, once over two replicas;
then a correction of the published notice moves what was planned on it (basis official).

The 2027 schedules are illustrative test data, NOT the State Council's notice: New Year's Day
off, the Spring Festival 2027-02-06..02-12 off with Sundays around it worked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.feedback.projections import READ_MODEL as FEEDBACK_VIEWS
from services.followup.main import create_app as create_followup
from services.followup.projections import READ_MODEL
from shared.contracts import Envelope
from shared.settings import Settings
from tests.followup.story import CENTER, DECEMBER_20, Center, at, center_day, key, quiet
from tests.followup.test_calendar_published import (
    bad_review,
    deadline_reminder,
    follow_up,
    ops,
)
from tests.support import assert_rebuilt_as_live, headers, running, stream_envelopes, wait_until

NOTICE_2027 = {"2027": {"source": "illustrative test data",
                        "holidays": ["2027-01-01", "2027-02-06..2027-02-12"],
                        "workdays": ["2027-01-31", "2027-02-21"]}}
CORRECTED_2027 = {"2027": {**NOTICE_2027["2027"],
                           "holidays": ["2027-01-01", "2027-01-06", "2027-02-06..2027-02-12"]}}


async def declare(center: Center, first_due_on: str, when: datetime) -> dict[str, Any]:
    """A monthly reimbursement declared at the counter: the obligation follow-up watches."""
    case_id = await center.open_case(when)
    await center.step(case_id, "obligations", {
        "description": "每月领取医疗费用补助", "cadence": "monthly",
        "next_due_on": first_due_on, "occurred_at": when.isoformat()})
    pool = center.app.state.pool

    async def watched() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM obligations WHERE case_id = $1",
                                        uuid.UUID(case_id)))

    await wait_until(watched, what="the obligation watched")
    oid = await pool.fetchval("SELECT obligation_id FROM obligations WHERE case_id = $1",
                              uuid.UUID(case_id))
    return (await center.followup.get(f"/obligations/{oid}")).json()


def replanned(envelopes: list[Envelope]) -> list[Envelope]:
    return [e for e in envelopes if e.type == "ObligationReplanned"]


async def replanned_by_a_start(center: Center, settings: Settings, holidays: Path
                               ) -> Envelope:
    """A new follow-up process starts on ``holidays`` (an upgrade, a pod rescheduled): the
    one obligation it re-plans, once on the stream."""
    fresh = create_followup(quiet(settings, holidays_file=holidays), center.clock)
    async with running(fresh):
        pass

    async def on_stream() -> bool:
        return bool(replanned(await stream_envelopes(settings)))

    await wait_until(on_stream, what="the obligation re-planned by the start")
    [event] = replanned(await stream_envelopes(settings))
    return event


async def reload(center: Center, settings: Settings) -> dict[str, Any]:
    r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
    assert r.status_code == 200, r.text
    return r.json()["replanned"]["followup"]


async def test_an_obligation_declared_on_december_20_is_missed_when_the_notice_says_not_the_law(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        # Due on the 1st: January's period (Friday, a holiday either way) has its grace to the
        # close of Thursday 7 January on the law alone.
        january = await declare(center, "2027-01-01", DECEMBER_20)
        assert january["next_due_on"] == "2027-01-01" and january["basis"] == "provisional"
        assert datetime.fromisoformat(january["missed_at"]) == at(2027, 1, 7, 17)
        # Due on the 3rd, from February: Feb 3, 4, then the law's Spring Festival (5-8), 9,
        # 10: missed at the close of Wednesday 10 February, provisionally.
        february = await declare(center, "2027-02-03", DECEMBER_20)
        assert datetime.fromisoformat(february["missed_at"]) == at(2027, 2, 10, 17)
        assert february["basis"] == "provisional"

        # The notice is published: Feb 5 worked, Feb 6-14 off. Reloaded on two replicas at
        # once: the February grace ends Monday 15 February, recorded once; January's moment,
        # the same on the notice, confirmed official once.
        holidays.write_text(json.dumps(NOTICE_2027))
        second = create_followup(quiet(settings, holidays_file=holidays, roles={"api"}),
                                 center.clock)
        async with running(second) as replica:
            answers = await asyncio.gather(
                center.followup.post("/ops/calendar/reload", headers=ops(settings)),
                replica.post("/ops/calendar/reload", headers=ops(settings)))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert sum(a.json()["replanned"]["followup"]["obligations_replanned"]
                   for a in answers) == 2

        async def on_stream() -> bool:
            return len(replanned(await stream_envelopes(settings))) == 2

        await wait_until(on_stream, what="the re-planned obligations on the stream")
        by_id = {str(e.aggregate_id): e for e in replanned(await stream_envelopes(settings))}
        confirmed = by_id[january["aggregate_id"]].payload
        assert confirmed["missed_at"] == confirmed["previous_missed_at"]
        assert confirmed["basis"] == "official"
        event = by_id[february["aggregate_id"]]
        assert event.actor == "system:calendar"
        assert event.payload["cause"] == "calendar_published"
        assert event.payload["basis"] == "official"
        assert datetime.fromisoformat(event.payload["previous_missed_at"]) == at(2027, 2, 10, 17)
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 2, 15, 17)
        await center.settled()
        seen = (await center.followup.get(f"/obligations/{february['obligation_id']}")).json()
        assert datetime.fromisoformat(seen["missed_at"]) == at(2027, 2, 15, 17)
        assert seen["basis"] == "official"
        # January's moment is the same on the notice: only its basis changed.
        seen = (await center.followup.get(f"/obligations/{january['obligation_id']}")).json()
        assert datetime.fromisoformat(seen["missed_at"]) == at(2027, 1, 7, 17)
        assert seen["basis"] == "official"
        # The same schedule again re-plans nothing.
        assert (await reload(center, settings))["obligations_replanned"] == 0

        # January's period is paid on the 5th; on Wednesday 10 February at closing nothing
        # is missed (the law's moment); the next tick after Monday 15th's closing misses it.
        r = await center.followup.post(
            f"/obligations/{january['obligation_id']}/fulfilments", headers=headers(key()),
            json={"period_due_on": "2027-01-01", "fulfilled_on": "2027-01-05"})
        assert r.status_code == 200, r.text
        await center.settled()
        tick = await center.scheduler.tick(at(2027, 2, 10, 17, 30))
        assert tick.fired["ObligationMissed"] == 1, "January's Feb 1 period (grace to Feb 4)"
        await center.settled()
        seen = (await center.followup.get(f"/obligations/{february['obligation_id']}")).json()
        assert seen["missed_periods"] == 0 and seen["next_due_on"] == "2027-02-03"
        tick = await center.scheduler.tick(at(2027, 2, 15, 17, 1))
        assert tick.fired["ObligationMissed"] == 1
        await center.settled()
        seen = (await center.followup.get(f"/obligations/{february['obligation_id']}")).json()
        assert seen["missed_periods"] == 1 and seen["next_due_on"] == "2027-03-03"


async def test_a_correction_of_a_published_year_moves_what_was_planned_on_it_once(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(NOTICE_2027))  # 2027 official from the start
    async with center_day(settings, DECEMBER_20, holidays_file=holidays, with_feedback=True,
                          feedback_tick_s=0.05,
                          rectification_default_track="explain") as center:  # 15 days
        # A deadline on Friday 8 January: its reminder three working days before, Tuesday
        # 5 January, official. An obligation due Tuesday 5 January: missed at the close of
        # Friday 8th, official. A March reminder nothing will touch.
        reminder = await deadline_reminder(center, "2027-01-08")
        assert datetime.fromisoformat(reminder["due_at"]) == at(2027, 1, 5, 9)
        assert reminder["basis"] == "official"
        march = await deadline_reminder(center, "2027-03-19")
        duty = await declare(center, "2027-01-05", DECEMBER_20)
        assert datetime.fromisoformat(duty["missed_at"]) == at(2027, 1, 8, 17)
        assert duty["basis"] == "official"
        # A bad review on Sunday 20 December: 15 working days, Tuesday 12 January, official;
        # its rectification follow-up that morning.
        _, rectification = await bad_review(center, DECEMBER_20)
        assert (rectification["deadline_on"], rectification["basis"]) == ("2027-01-12",
                                                                          "official")
        rect_follow_up = await follow_up(center, "rectification",
                                         source_id=rectification["rectification_id"])

        # The published notice is corrected: Wednesday 6 January off as well.
        holidays.write_text(json.dumps(CORRECTED_2027))
        done = await reload(center, settings)
        assert done["followups_replanned"] == 1 and done["obligations_replanned"] == 1
        assert center.feedback is not None
        r = await center.feedback.post("/ops/calendar/reload", headers=ops(settings))
        assert r.json()["replanned"]["feedback"]["deadlines_revised"] == 1

        async def on_stream() -> bool:
            envelopes = await stream_envelopes(settings)
            return bool(replanned(envelopes)) and len(
                [e for e in envelopes if e.type == "FollowUpRescheduled"]) >= 2

        await wait_until(on_stream, what="the re-planned reminder and obligation")
        envelopes = await stream_envelopes(settings)
        [moved] = [e for e in envelopes if e.type == "FollowUpRescheduled"
                   and str(e.aggregate_id) == reminder["follow_up_id"]]
        assert moved.payload["cause"] == "calendar_published"
        assert datetime.fromisoformat(moved.payload["due_at"]) == at(2027, 1, 4, 9)
        assert datetime.fromisoformat(moved.payload["previous_due_at"]) == at(2027, 1, 5, 9)
        [event] = replanned(envelopes)
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 1, 11, 17)
        # The rectification's deadline counted again (Jan 6 off: Wednesday 13 January), and
        # its follow-up moved with it.
        [revised] = [e for e in envelopes if e.type == "RectificationDeadlineRevised"]
        assert (revised.payload["previous_deadline_on"], revised.payload["deadline_on"]) == (
            "2027-01-12", "2027-01-13")
        [followed] = [e for e in envelopes if e.type == "FollowUpRescheduled"
                      and str(e.aggregate_id) == rect_follow_up["follow_up_id"]][-1:]
        assert datetime.fromisoformat(followed.payload["due_at"]) == at(2027, 1, 13, 9)
        await center.settled()
        assert (await center.get(march["follow_up_id"]))["due_at"] == march["due_at"]
        # Reloading the corrected file again moves nothing.
        again = await reload(center, settings)
        assert again["followups_replanned"] == 0 and again["obligations_replanned"] == 0


async def test_a_correction_made_while_follow_up_was_stopped_is_re_planned_when_it_starts(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(NOTICE_2027))
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        reminder = await deadline_reminder(center, "2027-01-08")
        assert datetime.fromisoformat(reminder["due_at"]) == at(2027, 1, 5, 9)
        duty = await declare(center, "2027-01-05", DECEMBER_20)
        # The file is corrected with no reload, and a new follow-up process starts (an
        # upgrade, a rescheduled pod): it re-plans what the corrected day moves, once.
        holidays.write_text(json.dumps(CORRECTED_2027))
        fresh = create_followup(quiet(settings, holidays_file=holidays), center.clock)
        async with running(fresh):
            pass

        async def on_stream() -> bool:
            envelopes = await stream_envelopes(settings)
            return bool(replanned(envelopes)) and any(
                e.type == "FollowUpRescheduled" for e in envelopes)

        await wait_until(on_stream, what="the re-planned reminder and obligation")
        envelopes = await stream_envelopes(settings)
        [moved] = [e for e in envelopes if e.type == "FollowUpRescheduled"]
        assert str(moved.aggregate_id) == reminder["follow_up_id"]
        assert datetime.fromisoformat(moved.payload["due_at"]) == at(2027, 1, 4, 9)
        [event] = replanned(envelopes)
        assert str(event.aggregate_id) == duty["aggregate_id"]
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 1, 11, 17)
        # The running replica, told nothing, reloads: the days are re-planned already.
        done = await reload(center, settings)
        assert done["followups_replanned"] == 0 and done["obligations_replanned"] == 0


async def test_a_correction_withdrawn_puts_back_what_it_moved(settings: Settings,
                                                               tmp_path: Path) -> None:
    """The notice's year planned on, then a correction loaded by mistake (Monday 15 February
    off too), then the notice's file loaded again: the grace the correction lengthened ends
    on the 15th again. The withdrawal's schedules are the ones first re-planned on, and a key
    of their fingerprint alone answered it as done: the period stayed missed on the 16th."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        february = await declare(center, "2027-02-03", DECEMBER_20)
        assert datetime.fromisoformat(february["missed_at"]) == at(2027, 2, 10, 17)
        holidays.write_text(json.dumps(NOTICE_2027))
        assert (await reload(center, settings))["obligations_replanned"] == 1
        mistaken = {"2027": {**NOTICE_2027["2027"], "holidays": [
            *NOTICE_2027["2027"]["holidays"], "2027-02-15"]}}
        holidays.write_text(json.dumps(mistaken))
        assert (await reload(center, settings))["obligations_replanned"] == 1
        holidays.write_text(json.dumps(NOTICE_2027))
        assert (await reload(center, settings))["obligations_replanned"] == 1

        async def all_three() -> bool:
            return len(replanned(await stream_envelopes(settings))) == 3

        await wait_until(all_three, what="three re-plannings on the stream")
        moments = [datetime.fromisoformat(e.payload["missed_at"])
                   for e in replanned(await stream_envelopes(settings))]
        assert moments == [at(2027, 2, 15, 17), at(2027, 2, 16, 17), at(2027, 2, 15, 17)]
        await center.settled()
        seen = (await center.followup.get(f"/obligations/{february['obligation_id']}")).json()
        assert datetime.fromisoformat(seen["missed_at"]) == at(2027, 2, 15, 17)
        # The worklist rebuilt from the log is the one the re-plannings left.
        await assert_rebuilt_as_live(settings, READ_MODEL)


async def test_a_center_back_on_the_common_calendar_after_a_restart_is_re_planned_on_it(
        settings: Settings, tmp_path: Path) -> None:
    """The center had its own holidays file (the corrected notice: Wednesday 6 January off);
    the file is dropped from its settings while follow-up is stopped, so the center is on the
    common calendar again (the notice: the 6th worked). A start compared only the centers
    that still have their own file: the obligation stayed missed on the 11th."""
    common = tmp_path / "holidays.json"
    common.write_text(json.dumps(NOTICE_2027))
    own = tmp_path / "huamu.json"
    own.write_text(json.dumps(CORRECTED_2027))
    async with center_day(settings, DECEMBER_20, holidays_file=common,
                          center_holidays_files={CENTER: own}) as center:
        duty = await declare(center, "2027-01-05", DECEMBER_20)
        assert datetime.fromisoformat(duty["missed_at"]) == at(2027, 1, 11, 17)
        event = await replanned_by_a_start(center, settings, common)
        assert str(event.aggregate_id) == duty["aggregate_id"]
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 1, 8, 17)


async def test_a_year_withdrawn_from_the_holidays_file_re_plans_what_was_planned_on_it(
        settings: Settings, tmp_path: Path) -> None:
    """A 2027 schedule loaded from a draft, then taken out of the file: February's grace was
    counted on the draft (Monday 15 February, official) and is the law's again (Wednesday 10,
    provisional). Only days official on both calendars were compared, so nothing was: the
    period stayed 'official' on days no schedule says any more."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(NOTICE_2027))
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        february = await declare(center, "2027-02-03", DECEMBER_20)
        assert datetime.fromisoformat(february["missed_at"]) == at(2027, 2, 15, 17)
        assert february["basis"] == "official"
        holidays.write_text("{}")
        assert (await reload(center, settings))["obligations_replanned"] == 1

        async def on_stream() -> bool:
            return bool(replanned(await stream_envelopes(settings)))

        await wait_until(on_stream, what="the obligation re-planned on the law")
        [event] = replanned(await stream_envelopes(settings))
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 2, 10, 17)
        assert event.payload["basis"] == "provisional"


async def test_a_re_planning_ending_while_a_later_reload_re_plans_remembers_only_its_own_days(
        settings: Settings, tmp_path: Path) -> None:
    """The start's re-planning, on the notice, is finishing when a reload brings the corrected
    notice (Wednesday 6 January off); it ends first and recorded the calendars as they were
    at its end (the correction's) as re-planned on. The process stops before the reload
    re-plans the obligation (a pod replaced during a deploy): the next start found nothing
    changed, and the obligation stayed missed on the 8th, not the 11th. (Since redteam120 the
    earlier run, its calendars changed under it, runs again on the correction before it ends:
    the stop finds both waiting.)"""
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(NOTICE_2027))
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        duty = await declare(center, "2027-01-05", DECEMBER_20)
        assert datetime.fromisoformat(duty["missed_at"]) == at(2027, 1, 8, 17)
        runtime = center.app.state.runtime
        earlier_done, later_begun, go_on = asyncio.Event(), asyncio.Event(), asyncio.Event()
        earlier_again = asyncio.Event()
        waiting = 0

        async def before() -> dict[str, int]:  # the later run waits here, before re-planning
            nonlocal waiting
            if earlier_done.is_set():
                waiting += 1
                (later_begun if waiting == 1 else earlier_again).set()
                await asyncio.Event().wait()  # until the process stops
            return {}

        async def after() -> dict[str, int]:  # the earlier run, its re-planning done
            earlier_done.set()
            await go_on.wait()
            return {}

        runtime.calendar_hooks = {"before": before, **runtime.calendar_hooks, "after": after}
        earlier = asyncio.create_task(runtime.replan_at_start())
        await earlier_done.wait()
        holidays.write_text(json.dumps(CORRECTED_2027))
        later = asyncio.create_task(runtime.reload_calendars(tell_others=False))
        await later_begun.wait()
        go_on.set()
        await earlier_again.wait()  # the earlier run, on the correction now, waits too
        for run in (earlier, later):  # the process stops before either re-planned anything
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        event = await replanned_by_a_start(center, settings, holidays)
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 1, 11, 17)


@pytest.mark.parametrize("notice_moves_it", [False, True], ids=["keeps", "moves"])
async def test_a_rectification_follow_up_missed_on_a_provisional_day_is_confirmed_with_its_deadline(
        settings: Settings, tmp_path: Path, notice_moves_it: bool) -> None:
    """A bad review on New Year's Eve, on the immediate track: its deadline Monday 4 January
    2027 by the law alone (provisional), and its follow-up that morning; not done, missed at
    the 4th's closing. The notice, added on Wednesday the 6th, keeps the 4th: the missed
    deadline's basis is confirmed official (the same day, RectificationDeadlineRevised) and
    its follow-up's with it (FollowUpDueConfirmed), still missed. Before, neither was ever
    confirmed: the follow-up has no rule of its own and the deadline, missed, was never
    looked at; both said "provisional" for ever, the follow-up read again at every reload.
    A notice that makes the 4th a day off (the 5th by it) leaves both on the 4th, provisional,
    and says so once (published_deadline_on, published_due_at: due_kept): before, nothing
    was recorded, and every reload read both again, for ever."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    eve = at(2026, 12, 31, 16)
    async with center_day(settings, eve, holidays_file=holidays, with_feedback=True,
                          feedback_tick_s=0.05,
                          rectification_default_track="immediate") as center:
        _, rectification = await bad_review(center, eve)
        assert (rectification["deadline_on"], rectification["basis"]) == ("2027-01-04",
                                                                          "provisional")
        rect = await follow_up(center, "rectification",
                               source_id=rectification["rectification_id"])
        assert datetime.fromisoformat(rect["due_at"]) == at(2027, 1, 4, 9)
        tick = await center.scheduler.tick(at(2027, 1, 4, 17, 5))
        assert tick.fired["FollowUpMissed"] >= 1, tick.fired
        await center.settled()
        assert (await center.get(rect["follow_up_id"]))["status"] == "missed"

        center.clock.set(at(2027, 1, 6, 10))
        off = "2027-01-01..2027-01-04" if notice_moves_it else "2027-01-01..2027-01-03"
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": [off], "workdays": []}}))
        await reload(center, settings)
        assert center.feedback is not None
        r = await center.feedback.post("/ops/calendar/reload", headers=ops(settings))
        assert r.json()["replanned"]["feedback"]["deadlines_revised"] == 1

        async def said() -> bool:
            seen = await center.get(rect["follow_up_id"])
            return bool(seen["due_kept"]) if notice_moves_it else seen["basis"] == "official"

        await wait_until(said, what="the rectification follow-up confirmed or kept")
        seen = await center.get(rect["follow_up_id"])
        assert (seen["status"], seen["basis"], seen["due_at"]) == (
            "missed", "provisional" if notice_moves_it else "official", rect["due_at"])
        again = await reload(center, settings)
        assert (again["followups_checked"], again["followups_replanned"]) == (0, 0)
        r = await center.feedback.post("/ops/calendar/reload", headers=ops(settings))
        assert r.json()["replanned"]["feedback"] == {"rectifications_checked": 0,
                                                     "deadlines_revised": 0,
                                                     "rectifications_failed": 0}, "not read again"
        if notice_moves_it:
            # A second notice corrects the first: the 4th is a working day after all. What
            # was kept on it is news again: the same day, now official, nothing kept.
            holidays.write_text(json.dumps({"2027": {
                "source": "illustrative test data", "holidays": ["2027-01-01..2027-01-03"],
                "workdays": []}}))
            await reload(center, settings)
            r = await center.feedback.post("/ops/calendar/reload", headers=ops(settings))
            assert r.json()["replanned"]["feedback"]["deadlines_revised"] == 1, r.text

            async def corrected() -> bool:
                return (await center.get(rect["follow_up_id"]))["basis"] == "official"

            await wait_until(corrected, what="the kept follow-up confirmed by the correction")
            seen = await center.get(rect["follow_up_id"])
            assert (seen["status"], seen["due_at"], seen["due_kept"]) == (
                "missed", rect["due_at"], False)
        await assert_rebuilt_as_live(settings, READ_MODEL)
        await assert_rebuilt_as_live(settings, FEEDBACK_VIEWS)


async def test_a_parked_rule_failing_stops_no_obligation_from_being_re_planned(
        settings: Settings, tmp_path: Path) -> None:
    """The notice published while a parked rule's write is not taken (redteam120): follow-up's
    one calendar hook applied the parked rules first and, that raising, never re-planned the
    obligations: the reload answered ``hook_failed`` alone, and a rule failing at every try
    kept every obligation on the law's days for as long. Now the rule is counted failed (the
    whole is run again) and the obligation is re-planned on the notice at once."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        february = await declare(center, "2027-02-03", DECEMBER_20)
        assert datetime.fromisoformat(february["missed_at"]) == at(2027, 2, 10, 17)
        rules = center.app.state.rules

        async def refused(_: Any) -> int:
            raise TimeoutError("the write was not taken within WRITE_TIMEOUT_S")

        rules.retry_parked = refused
        holidays.write_text(json.dumps(NOTICE_2027))
        said = await reload(center, settings)
        assert said["rules_failed"] == 1
        assert (said["obligations_checked"], said["obligations_replanned"]) == (1, 1)
        del rules.retry_parked  # the obstacle gone: the service's retry goes through

        async def through() -> bool:
            return center.app.state.runtime.replan_pending.since is None
        await wait_until(through, timeout=30, what="the retried re-planning")

        async def on_stream() -> bool:
            return bool(replanned(await stream_envelopes(settings)))
        await wait_until(on_stream, what="the obligation re-planned")
        [event] = replanned(await stream_envelopes(settings))
        assert datetime.fromisoformat(event.payload["missed_at"]) == at(2027, 2, 15, 17)
