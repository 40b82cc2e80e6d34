"""The calendar never runs out: December 20, January planned provisionally, then the 2027
schedule published and everything provisional re-planned, once.

The clock stands at Sunday 2026-12-20: chinese-calendar 1.11.0 knows 2026 and nothing after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from services.followup import parked as parking
from services.followup.main import create_app as create_followup
from services.followup.projections import READ_MODEL
from shared.contracts import Envelope
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, DECEMBER_20, Center, at, center_day, key, quiet
from tests.followup.test_care_checks import _blocked_or_done, _intake_event
from tests.followup.test_help_and_referrals import escalate, refer
from tests.support import (
    as_resident,
    assert_rebuilt_as_live,
    bearer,
    headers,
    running,
    stream_envelopes,
    wait_until,
)

# An illustrative 2027 schedule for the tests, NOT the State Council's published one: it makes
# Wednesday Jan 6 (a provisional working day) a holiday and Saturday Feb 20 a make-up day.
SCHEDULE_2027 = {"2027": {
    "source": "illustrative test data",
    "holidays": ["2027-01-01..2027-01-03", "2027-01-06"],
    "workdays": ["2027-02-20"]}}


def ops(settings: Settings) -> dict[str, str]:
    return bearer(settings, role="ops", center=None)


async def bad_review(center: Center, when: datetime) -> tuple[str, dict[str, Any]]:
    """A case resolved at the counter and a dissatisfied answer on the tablet: the case id and
    the rectification the answer opened."""
    assert center.feedback is not None and center.sender is not None
    case_id = await center.open_case(when)
    await center.step(case_id, "resolve", {"outcome": "resolved", "explanation": "当场办结",
                                           "emotion_defused": True,
                                           "occurred_at": when.isoformat()})

    async def surveyed() -> bool:
        return center.sender is not None and center.sender.for_case(case_id) is not None

    await wait_until(surveyed, what="the tablet survey")
    survey = center.sender.for_case(case_id)
    r = await as_resident(center.feedback).post(f"/surveys/{survey.survey_id}/rating",
                                                headers=headers(key()),
                                   json={"token": survey.token, "level": "dissatisfied",
                                         "comment": "材料退回了三次"})
    assert r.status_code == 200, r.text
    r = await center.feedback.get(f"/cases/{case_id}/feedback",
                                  params={"after": r.json()["position"]})
    [rectification] = r.json()["rectifications"]
    return case_id, rectification


async def follow_up(center: Center, reason: str | None = None, **filters: str
                    ) -> dict[str, Any]:
    """The one follow-up ``filters`` find (of ``reason``: a bad review's rectification
    follow-up shares its source with the verification contact)."""
    found: list[dict[str, Any]] = []

    async def there() -> bool:
        nonlocal found
        found = [f for f in (await center.followup.get("/followups", params=filters)).json()[
            "items"] if reason is None or f["reason"] == reason]
        return len(found) == 1

    await wait_until(there, what=f"the follow-up of {filters}")
    return found[0]


async def deadline_reminder(center: Center, due_on: str) -> dict[str, Any]:
    case_id = await center.open_case(DECEMBER_20)
    await center.step(case_id, "deadlines", {"due_on": due_on, "description": "补助申请截止",
                                             "occurred_at": DECEMBER_20.isoformat()})
    return await _reminder_of(center, case_id)


async def _reminder_of(center: Center, case_id: str) -> dict[str, Any]:
    items = await center.followups_of(case_id, 1, "the deadline reminder")
    [reminder] = [f for f in items if f["reason"] == "deadline_reminder"]
    return reminder


def rescheduled(envelopes: list[Envelope]) -> list[Envelope]:
    return [e for e in envelopes
            if e.type == "FollowUpRescheduled" and e.payload["cause"] == "calendar_published"]


async def test_december_20_plans_january_provisionally_and_replans_once_when_2027_is_published(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")  # where next year's schedule will go
    async with center_day(settings, DECEMBER_20, with_feedback=True, holidays_file=holidays,
                          feedback_tick_s=0.05,
                          rectification_default_track="explain") as center:  # 15 days
        assert center.feedback is not None
        # A bad review on Sunday Dec 20: 15 working days from Monday Dec 21 run into January,
        # which nobody has published yet: provisional (Jan 1 the only holiday), Jan 12.
        _, rectification = await bad_review(center, DECEMBER_20)
        assert rectification["deadline_on"] == "2027-01-12"
        assert rectification["basis"] == "provisional"

        # The seed's story: a hardship subsidy deadline on Friday 2027-01-08 gets its
        # reminder three working days before, on the provisional calendar: Tuesday Jan 5.
        reminder = await deadline_reminder(center, "2027-01-08")
        assert datetime.fromisoformat(reminder["due_at"]) == at(2027, 1, 5, 9)
        assert reminder["basis"] == "provisional"
        # A deadline in March (re-planning will not move it), one in December (official).
        march = await deadline_reminder(center, "2027-03-19")
        assert datetime.fromisoformat(march["due_at"]) == at(2027, 3, 16, 9)
        december = await deadline_reminder(center, "2026-12-30")
        assert datetime.fromisoformat(december["due_at"]) == at(2026, 12, 25, 9)
        assert december["basis"] == "official"
        # A home visit booked for Saturday Feb 20: the next working day, Monday Feb 22.
        r = await center.followup.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "due_on": "2027-02-20", "assigned_team": "visits"})
        assert r.status_code == 201, r.text
        visit_id = r.json()["id"]
        visit = (await center.followup.get(f"/followups/{visit_id}",
                                           params={"after": r.json()["position"]})).json()
        assert datetime.fromisoformat(visit["due_at"]) == at(2027, 2, 22, 9)
        assert visit["basis"] == "provisional"
        rect_follow_up = await follow_up(center, "rectification",
                                         source_id=rectification["rectification_id"])
        assert datetime.fromisoformat(rect_follow_up["due_at"]) == at(2027, 1, 12, 9)
        assert rect_follow_up["basis"] == "provisional"

        # Readiness warns: the official schedules end in 11 days.
        r = await center.followup.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert "in 11 days" in r.json()["warnings"][0]

        # The State Council publishes 2027; ops add it to the file and reload every service,
        # here on two follow-up replicas at once (the second serves the API only).
        holidays.write_text(json.dumps(SCHEDULE_2027))
        second = create_followup(quiet(settings, holidays_file=holidays, roles={"api"}),
                                 center.clock)
        async with running(second) as replica:
            answers = await asyncio.gather(
                center.followup.post("/ops/calendar/reload", headers=ops(settings)),
                replica.post("/ops/calendar/reload", headers=ops(settings)),
                center.feedback.post("/ops/calendar/reload", headers=ops(settings)))
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        followup_moved = sum(a.json()["replanned"]["followup"]["followups_replanned"]
                             for a in answers[:2])
        assert followup_moved == 3, (
            "the reminder and the home visit moved, March confirmed official, once each")
        assert answers[2].json()["replanned"]["feedback"]["deadlines_revised"] == 1
        assert answers[0].json()["changed"] == ["*"]

        # Moved: Jan 6 is off, so three working days before Jan 8 is Monday Jan 4; the visit
        # lands on the make-up Saturday; the rectification needs one more day, Jan 13, and
        # its follow-up moves with it. Unmoved: March (confirmed: the same moment, now
        # official; it said 'provisional' for ever), December (official already).
        async def replanned() -> bool:
            return len(rescheduled(await stream_envelopes(settings))) >= 4

        await wait_until(replanned, what="the re-planned follow-ups on the stream")
        moved = {e.aggregate_id: e for e in rescheduled(await stream_envelopes(settings))}
        assert set(map(str, moved)) == {reminder["follow_up_id"], visit_id,
                                        rect_follow_up["follow_up_id"], march["follow_up_id"]}
        confirmed = moved[uuid.UUID(march["follow_up_id"])].payload
        assert confirmed["due_at"] == confirmed["previous_due_at"]
        assert datetime.fromisoformat(confirmed["due_at"]) == at(2027, 3, 16, 9)
        assert datetime.fromisoformat(
            moved[uuid.UUID(reminder["follow_up_id"])].payload["due_at"]) == at(2027, 1, 4, 9)
        assert datetime.fromisoformat(
            moved[uuid.UUID(visit_id)].payload["due_at"]) == at(2027, 2, 20, 9)
        assert datetime.fromisoformat(moved[uuid.UUID(rect_follow_up["follow_up_id"])]
                                      .payload["due_at"]) == at(2027, 1, 13, 9)
        for e in moved.values():
            assert e.version == 2 and e.payload["basis"] == "official"
            assert e.actor in ("system:calendar", "system:rules")
        [revised] = [e for e in await stream_envelopes(settings)
                     if e.type == "RectificationDeadlineRevised"]
        assert revised.payload["previous_deadline_on"] == "2027-01-12"
        assert revised.payload["deadline_on"] == "2027-01-13"
        await center.settled()
        march_now = await center.get(march["follow_up_id"])
        assert (march_now["due_at"], march_now["basis"]) == (march["due_at"], "official")
        assert march_now["status"] == "scheduled"
        assert march_now["assigned_clerk"] == march["assigned_clerk"]
        assert (await center.get(december["follow_up_id"]))["due_at"] == december["due_at"]
        assert (await center.get(reminder["follow_up_id"]))["basis"] == "official"

        # Reloading again re-plans nothing: the same schedule is the same key. Then a marker
        # write: when it is on the stream, nothing else came before it.
        again = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert again.json()["replanned"]["followup"]["followups_replanned"] == 0
        again = await center.feedback.post("/ops/calendar/reload", headers=ops(settings))
        assert again.json()["replanned"]["feedback"]["deadlines_revised"] == 0
        marker = await center.followup.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "due_on": "2027-03-01", "assigned_team": "visits"})

        async def marked() -> bool:
            return any(str(e.aggregate_id) == marker.json()["id"]
                       for e in await stream_envelopes(settings))

        await wait_until(marked, what="the marker on the stream")
        assert len(rescheduled(await stream_envelopes(settings))) == 4
        assert len([e for e in await stream_envelopes(settings)
                    if e.type == "RectificationDeadlineRevised"]) == 1

        # Monday Jan 4, 09:00: the reminder falls due.
        center.clock.set(at(2027, 1, 4, 9))
        tick = await center.scheduler.tick()
        assert tick.fired["FollowUpDue"] >= 1
        await center.settled()  # the worklist has applied what the tick wrote
        assert (await center.get(reminder["follow_up_id"]))["status"] == "due"

        # Another supervisor (test-supervisor served the case) completes the rectification
        # on Jan 13: on time against the revised deadline (it would have been late against
        # the provisional one).
        center.clock.set(at(2027, 1, 13, 15))
        r = await center.feedback.post(
            f"/rectifications/{rectification['rectification_id']}/outcome",
            headers={**headers(key()), **bearer(center.settings, role=Role.SUPERVISOR,
                                                 sub="director-02")},
            json={"outcome": "rectified", "actions": "补发材料清单"})
        assert r.status_code == 200, r.text
        r = await center.feedback.get("/figures", params={
            "period": "all", "as_of": "2027-01-13", "after": r.json()["position"]})
        [row] = r.json()["rows"]
        assert row["rectification_on_time_rate"] == {"numerator": 1, "denominator": 1,
                                                     "rate": 1.0}
        done = [e for e in await stream_envelopes(settings)
                if e.type == "RectificationCompleted"]
        assert done[0].payload["on_time"] and done[0].payload["basis"] == "official"


async def test_past_the_provisional_years_a_rule_is_parked_and_shown_until_the_year_is_known(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    # No provisional years at all: 2027 is beyond follow-up's calendar. Intake (which would
    # refuse the deadline with 422 calendar_out_of_range on this calendar) still plans 2027
    # provisionally: the services' calendars out of step, as during a rolling reload.
    async with center_day(settings, DECEMBER_20, with_feedback=True, holidays_file=holidays,
                          calendar_provisional_years=0, feedback_tick_s=0.05,
                          intake_extra={"calendar_provisional_years": 1},
                          rectification_default_track="explain") as center:  # 15 days
        assert center.feedback is not None
        case_id = await center.open_case(DECEMBER_20)
        await center.step(case_id, "deadlines", {
            "due_on": "2027-01-08", "description": "年审材料",
            "occurred_at": DECEMBER_20.isoformat()})

        async def parked() -> bool:
            r = await center.followup.get("/parked-rules")
            return r.json()["count"] == 1

        await wait_until(parked, what="the rule to be parked")
        [rule] = (await center.followup.get("/parked-rules")).json()["items"]
        assert rule["type"] == "DeadlineNoted" and rule["year"] == 2027
        assert rule["case_id"] == case_id and "2004-2026" in rule["reason"]
        # The supervisor's board counts it; another center's supervisor sees none of it.
        board = await center.followup.get(f"/worklists/centers/{CENTER}")
        assert board.json()["parked_rules"] == 1
        other = await center.followup.get("/parked-rules", headers=bearer(
            settings, role="supervisor", center="SH-PD-ZHANGJIANG"))
        assert other.json()["count"] == 0
        clerk = await center.followup.get("/parked-rules", headers=bearer(settings,
                                                                          role="clerk"))
        assert clerk.status_code == 403
        everyone = await center.followup.get("/parked-rules", headers=ops(settings))
        assert everyone.json()["count"] == 1
        # /ready: degraded but serving (200), with the reason; the gauge says so too.
        r = await center.followup.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert "1 follow-up rule(s) parked" in r.json()["reasons"][0]
        metrics = (await center.followup.get("/metrics")).text
        assert 'sixstep_parked_rules{service="followup"} 1.0' in metrics
        # A write that needs 2027 is refused with the covered range, never a 500.
        r = await center.followup.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "due_on": "2027-01-04", "assigned_team": "visits"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "calendar_out_of_range"
        assert error["details"] == {"year": 2027, "first_year": 2004, "last_year": 2026,
                                    "official_until": 2026}
        # So is a bad review whose deadline would fall in 2027; the answer can come again.
        case2 = await center.open_case(DECEMBER_20)
        await center.step(case2, "resolve", {"outcome": "resolved", "explanation": "已办结",
                                             "emotion_defused": True,
                                             "occurred_at": DECEMBER_20.isoformat()})

        async def surveyed() -> bool:
            return center.sender is not None and center.sender.for_case(case2) is not None

        await wait_until(surveyed, what="the survey")
        survey = center.sender.for_case(case2)  # type: ignore[union-attr]
        r = await as_resident(center.feedback).post(f"/surveys/{survey.survey_id}/rating",
                                       headers=headers(key()),
                                       json={"token": survey.token, "level": "dissatisfied"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"

        # A bad file on reload changes nothing and says which file and line.
        holidays.write_text('{\n  "2027": {\n    "workdays": ["2027-01-06"]\n  }\n}')
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 422
        assert r.json()["error"]["details"] == {
            "file": str(holidays), "line": 3,
            "reason": "make-up working day 2027-01-06 is a Wednesday: list only the Saturdays "
                      "and Sundays that are worked"}
        assert (await center.followup.get("/parked-rules")).json()["count"] == 1

        # A case referred to the bureau and escalated, ten working days each (into 2027: both
        # rules parked), then resolved: its resolution finds neither to close.
        case3 = await center.open_case(DECEMBER_20)
        for kind, more in (("referred", {"referred_to": "浦东新区社保中心",
                                         "unit_kind": "social_insurance_bureau"}),
                           ("escalated", {})):
            await center.step(case3, "actions", {
                "kind": kind, "description": "需跨部门核定", "within_working_days": 10,
                "occurred_at": DECEMBER_20.isoformat(), **more})

        async def three_parked() -> bool:
            return (await center.followup.get("/parked-rules")).json()["count"] == 3

        await wait_until(three_parked, what="the referral's and the escalation's rules parked")
        await center.step(case3, "resolve", {"outcome": "resolved", "explanation": "已办结",
                                             "emotion_defused": True,
                                             "occurred_at": DECEMBER_20.isoformat()})
        await center.settled()

        # The 2027 schedule arrives: the parked rules go through, on the official calendar.
        holidays.write_text(json.dumps(SCHEDULE_2027))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        assert r.json()["replanned"]["followup"]["rules_unparked"] == 3
        # The resolved case's referral and help task are closed as they are opened, not left
        # awaiting the bureau (until the scheduler's page) and open for a colleague (until
        # the deadline), on the worklists meanwhile; a reopening would chase the unit again.
        await center.settled()
        for path in ("/referrals", "/help-tasks"):
            [item] = (await center.followup.get(path, params={"case_id": case3})).json()[
                "items"]
            assert item["status"] == "closed", (path, item)
        status = r.json()["calendar"]
        assert status["centers"][0]["years"] == [
            {"first_year": 2004, "last_year": 2026, "source": "package"},
            {"first_year": 2027, "last_year": 2027, "source": "file"}]
        reminder = await _reminder_of(center, case_id)
        assert datetime.fromisoformat(reminder["due_at"]) == at(2027, 1, 4, 9)
        assert reminder["basis"] == "official"
        assert (await center.followup.get("/parked-rules")).json()["count"] == 0
        r = await center.followup.get("/ready")
        assert r.json()["status"] == "ready" and r.json()["reasons"] == []
        # Feedback was not asked: it heard of the reload over NATS, as every replica does.
        async def told() -> bool:
            r = await center.feedback.get("/ops/calendar", headers=ops(settings))  # type: ignore[union-attr]
            return r.json()["centers"][0]["official_until"] == "2027-12-31"

        await wait_until(told, what="feedback to reload on the broadcast")
        r = await as_resident(center.feedback).post(f"/surveys/{survey.survey_id}/rating",
                                       headers=headers(key()),
                                       json={"token": survey.token, "level": "dissatisfied"})
        assert r.status_code == 200, r.text
        r = await center.feedback.get(f"/cases/{case2}/feedback",
                                      params={"after": r.json()["position"]})
        [rectification] = r.json()["rectifications"]
        # Sun Dec 20: Dec 21 is day 0 ... Jan 4, 5, 7, 8, 11, 12, 13 (Jan 6 off in the file).
        assert rectification["deadline_on"] == "2027-01-13"
        assert rectification["basis"] == "official"


async def test_the_ops_calendar_route_answers_only_ops(settings: Settings) -> None:
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        r = await center.followup.get("/ops/calendar")
        assert r.status_code == 403
        r = await center.followup.get("/ops/calendar", headers=ops(settings))
        assert r.status_code == 200
        body = r.json()
        assert body["service"] == "followup" and body["today"] == "2026-12-20"
        assert body["centers"][0]["official_days_left"] == 11
        assert body["centers"][0]["years"][-1] == {"first_year": 2027, "last_year": 2031,
                                                   "source": "provisional"}


async def test_a_service_started_after_the_schedule_was_added_replans_what_it_left(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, with_intake=False,
                          holidays_file=holidays) as center:
        r = await center.followup.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "due_on": "2027-02-20", "assigned_team": "visits"})
        visit_id = r.json()["id"]
        visit = (await center.followup.get(f"/followups/{visit_id}",
                                           params={"after": r.json()["position"]})).json()
        assert visit["basis"] == "provisional"

    # While it was down, ops put 2027 into the file (or upgraded the package).
    holidays.write_text(json.dumps(SCHEDULE_2027))
    async with center_day(settings, DECEMBER_20, with_intake=False,
                          holidays_file=holidays) as center:
        async def moved() -> bool:
            return any(str(e.aggregate_id) == visit_id
                       for e in rescheduled(await stream_envelopes(settings)))

        await wait_until(moved, what="the visit re-planned at start")
        await center.settled()
        visit = await center.get(visit_id)
        assert datetime.fromisoformat(visit["due_at"]) == at(2027, 2, 20, 9)
        assert visit["basis"] == "official"


async def test_a_referral_and_a_help_task_sent_on_december_20_move_when_2027_is_published(
        settings: Settings, tmp_path: Path) -> None:
    """派单 and 帮办 are chased on the published days: their working days counted again."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, holidays_file=holidays) as center:
        case_id = await center.open_case(DECEMBER_20)
        # Sent on Sunday Dec 20, as from Monday 21 (stop 51's rule): ten working days after
        # it, the law alone ends on Tuesday Jan 5 (Monday Jan 4 until stop 51).
        referral = await refer(center, case_id, DECEMBER_20, within_working_days=10)
        task = await escalate(center, case_id, DECEMBER_20, within_working_days=10)
        assert datetime.fromisoformat(referral["reply_due_at"]) == at(2027, 1, 5, 17)
        assert datetime.fromisoformat(task["deadline_at"]) == at(2027, 1, 5, 17)
        assert referral["basis"] == task["basis"] == "provisional"

        # 2027 published with Saturday Jan 2 a make-up working day: the tenth day is the 4th.
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01"],
            "workdays": ["2027-01-02"]}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        await center.settled()
        referral = (await center.followup.get(f"/referrals/{referral['referral_id']}")).json()
        task = (await center.followup.get(f"/help-tasks/{task['task_id']}")).json()
        assert datetime.fromisoformat(referral["reply_due_at"]) == at(2027, 1, 4, 17)
        assert datetime.fromisoformat(task["deadline_at"]) == at(2027, 1, 4, 17)
        assert referral["basis"] == task["basis"] == "official"
        pool = center.app.state.pool
        timers = dict(await pool.fetch(
            "SELECT aggregate_id, fire_at FROM timers WHERE aggregate_id = ANY($1::uuid[])",
            [uuid.UUID(referral["referral_id"]), uuid.UUID(task["task_id"])]))
        assert set(timers.values()) == {at(2027, 1, 4, 17)}
        answer = r.json()["replanned"]["followup"]
        assert (answer["referrals_replanned"], answer["help_tasks_replanned"]) == (1, 1)
        # The same schedule again: nothing more.
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        answer = r.json()["replanned"]["followup"]
        assert (answer["referrals_replanned"], answer["help_tasks_replanned"]) == (0, 0)


async def monday_call(center: Center) -> str:
    """A call booked for Monday 4 January 2027 (provisional on the law alone): its id."""
    r = await center.followup.post("/followups", headers=headers(key()), json={
        "center_id": CENTER, "due_on": "2027-01-04", "assigned_team": "visits"})
    assert r.status_code == 201, r.text
    await center.settled()
    return str(r.json()["id"])


async def referred_and_escalated(center: Center, when: datetime
                                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case opened ``when``, referred and escalated with one working day: the referral and
    the help task."""
    case_id = await center.open_case(when)
    return (await refer(center, case_id, when, within_working_days=1),
            await escalate(center, case_id, when, within_working_days=1))


async def still_chased_and_escalated(center: Center, referral: dict[str, Any],
                                     task: dict[str, Any], basis: str
                                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The referral and the help task as the worklist has them now: still overdue and
    escalated on Monday 4 January 2027's closing, on ``basis``."""
    referral = (await center.followup.get(f"/referrals/{referral['referral_id']}")).json()
    task = (await center.followup.get(f"/help-tasks/{task['task_id']}")).json()
    assert (referral["status"], referral["basis"],
            datetime.fromisoformat(referral["reply_due_at"])) == (
        "overdue", basis, at(2027, 1, 4, 17))
    assert (task["escalated_to"], task["basis"], datetime.fromisoformat(task["deadline_at"])
            ) == ("supervisor", basis, at(2027, 1, 4, 17))
    return referral, task


async def test_a_referral_chased_and_a_task_escalated_on_a_provisional_day_the_notice_keeps(
        settings: Settings, tmp_path: Path) -> None:
    """New Year's Eve 23:30: referred and escalated with one working day, due Monday 4
    January 2027 at closing (the law alone: provisional). No reply, not done: chased (督办)
    and escalated at 17:00 on the 4th. The notice, added on Wednesday the 6th, gives the 4th
    too: the board stops saying "provisional" on those deadlines (confirmed official, once,
    the same moment), both still overdue / escalated, and no timer is re-armed; so does a call
    booked for the 4th and missed (FollowUpDueConfirmed), still missed, escalating as it
    would. Before, overdue, escalated and missed ones were never looked at: provisional for
    ever."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    eve = at(2026, 12, 31, 23, 30)
    async with center_day(settings, eve, holidays_file=holidays) as center:
        referral, task = await referred_and_escalated(center, eve)
        assert {(r["basis"], datetime.fromisoformat(r.get("reply_due_at") or r["deadline_at"]))
                for r in (referral, task)} == {("provisional", at(2027, 1, 4, 17))}
        # And a call booked for that Monday, missed at its closing.
        call_id = await monday_call(center)
        fired = (await center.scheduler.tick(at(2027, 1, 4, 17, 5))).fired
        assert (fired["ReferralOverdue"], fired["HelpTaskEscalated"], fired["FollowUpMissed"]
                ) == (1, 1, 1), fired
        await center.settled()
        missed = await center.get(call_id)
        assert (missed["status"], missed["basis"]) == ("missed", "provisional")
        pool = center.app.state.pool
        escalation = "SELECT fire_at FROM timers WHERE aggregate_id = $1"
        escalate_at = await pool.fetchval(escalation, uuid.UUID(call_id))
        assert escalate_at == at(2027, 1, 6, 9)

        center.clock.set(at(2027, 1, 6, 10))
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01"], "workdays": []}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        answer = r.json()["replanned"]["followup"]
        assert (answer["referrals_replanned"], answer["help_tasks_replanned"],
                answer["followups_replanned"]) == (1, 1, 1)
        await center.settled()
        confirmed = await center.get(call_id)
        assert (confirmed["status"], confirmed["basis"], confirmed["due_at"]) == (
            "missed", "official", missed["due_at"])
        referral, task = await still_chased_and_escalated(center, referral, task, "official")
        armed = await pool.fetchval(
            "SELECT count(*) FROM timers WHERE aggregate_id = ANY($1::uuid[])"
            " AND fire_at IS NOT NULL",
            [uuid.UUID(referral["referral_id"]), uuid.UUID(task["task_id"])])
        assert armed == 0, "a confirmation re-arms nothing"
        assert await pool.fetchval(escalation, uuid.UUID(call_id)) == escalate_at, (
            "the missed call escalates as it would")
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        answer = r.json()["replanned"]["followup"]
        assert (answer["referrals_replanned"], answer["help_tasks_replanned"],
                answer["followups_replanned"]) == (0, 0, 0)
        # The worklist rebuilt from the log is the one the confirmations left (basis official,
        # still missed / overdue / escalated, the same timers).
        await assert_rebuilt_as_live(settings, READ_MODEL)


class _Noting:
    """A pool that notes the server pid of each connection it hands out (to see it wait)."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.pids = pool, []

    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        async with self.pool.acquire() as conn:
            self.pids.append(conn.get_server_pid())
            yield conn


async def test_a_parked_referral_applied_again_while_its_case_is_reopened_is_chased_again(
        settings: Settings, tmp_path: Path) -> None:
    """Sunday 20 December: a case referred to the bureau (or escalated) when 2027 was past
    the calendar, its rule parked. The 2027 schedule is published and the rule is applied
    again at the very moment the live consumer reopens (or resolves) the case: one of the two
    held between its read of the case and its commit (a barrier), the other let in meanwhile.
    Whichever goes first, the other sees it: the reopened case's referral is chased again,
    the resolved case's referral and help task are closed. Before, the retry read the case
    resolved and closed the referral as it sent it while the reopening read no referral to
    chase (closed, never chased); or read it open while the resolution read nothing to close
    (awaiting the bureau and open for a colleague on a resolved case)."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(SCHEDULE_2027))  # published: the parked rules can go
    async with center_day(settings, DECEMBER_20, with_intake=False,
                          holidays_file=holidays) as center:
        rules = center.app.state.rules
        pool = center.app.state.pool
        followups = rules.followups
        stories = (("retry", "referred", "CaseReopened", "/referrals", "awaiting_reply"),
                   ("live", "referred", "CaseReopened", "/referrals", "awaiting_reply"),
                   ("retry", "referred", "CaseResolved", "/referrals", "closed"),
                   ("retry", "escalated", "CaseResolved", "/help-tasks", "closed"))
        cases = []
        for first, kind, turn, path, status in stories:
            case_id = uuid.uuid4()
            opened = _intake_event("CaseOpened", case_id, case_id, DECEMBER_20,
                                   resident_id=str(uuid.uuid4()), clerk_id="clerk-017",
                                   counter_id="window-3", service_item="SA-HARDSHIP-SUBSIDY")
            resolved = _intake_event("CaseResolved", case_id, case_id, DECEMBER_20,
                                     outcome="resolved", emotion_defused=True)
            action = _intake_event(
                "ActionTaken", case_id, case_id, DECEMBER_20, description="需跨部门核定",
                referred_to="浦东新区社保中心", unit_kind="social_insurance_bureau",
                unit_contact=None, owner_clerk=None, within_working_days=10)
            action.payload["kind"] = kind  # (the helper's first argument is the event's)
            turned = (_intake_event("CaseReopened", case_id, case_id, DECEMBER_20,
                                    reason="resident_says_unsolved")
                      if turn == "CaseReopened" else resolved)
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, [opened, resolved] if turn == "CaseReopened"
                                  else [opened])
                await parking.park(conn, action, "2027 is past the calendar", 2027)

            reached, go = asyncio.Event(), asyncio.Event()

            async def hold(reached: asyncio.Event = reached, go: asyncio.Event = go) -> None:
                reached.set()  # read the case, not yet committed
                await go.wait()

            retrying = _Noting(pool)
            async with pool.acquire() as other:
                async def live(held: bool) -> None:
                    async with other.transaction():
                        await rules.apply(other, [turned],  # noqa: B023
                                          hold if held else None)
                if first == "live":  # held after its read, before its commit
                    went = asyncio.create_task(live(True))
                    await asyncio.wait_for(reached.wait(), 10)
                    second = asyncio.create_task(rules.retry_parked(retrying))

                    async def acquired() -> bool:
                        return bool(retrying.pids)  # noqa: B023
                    await wait_until(acquired, what="the retry's connection")
                    await _blocked_or_done(pool, retrying.pids[0], second)
                    go.set()
                    await went
                    assert await second == 1
                else:  # the retry held after its send, before its close and commit
                    verb = "send_referral" if kind == "referred" else "open_help_task"
                    sends = getattr(followups, verb)

                    async def held(what: Any, sends: Any = sends) -> Any:
                        written = await sends(what)
                        await hold()
                        return written

                    setattr(followups, verb, held)
                    try:
                        went = asyncio.create_task(rules.retry_parked(retrying))
                        await asyncio.wait_for(reached.wait(), 10)
                        second = asyncio.create_task(live(False))
                        await _blocked_or_done(pool, other.get_server_pid(), second)
                        go.set()
                        assert await went == 1
                        await second
                    finally:
                        delattr(followups, verb)
            cases.append((case_id, path, status))
        await center.settled()
        found = []
        for case_id, path, _ in cases:
            [item] = (await center.followup.get(path, params={"case_id": str(case_id)})
                      ).json()["items"]
            found.append(item["status"])
        assert found == [status for _, _, status in cases]


async def test_a_parked_resolution_applied_after_its_case_was_reopened_closes_nothing_it_needs(
        settings: Settings, tmp_path: Path) -> None:
    """Sunday 20 December, 2027 past follow-up's calendar: two cases resolved, each check ten
    working days out (into 2027), so each resolution's rule is parked once it has closed
    the case's referral. The first case is reopened (the resident says it is not solved):
    its referral is chased again, its clerk has a "not solved" follow-up, a colleague is
    asked to help. The second is reopened and resolved again (that rule parked too). Then
    the 2027 schedule is published and the parked rules are applied again. Only the second
    case's latest resolution goes through (one check); the first case's stale resolution is
    dropped. Before, it ran on the reopened case: the referral closed again, the help task
    closed, the "not solved" follow-up cancelled as 'resolved again', and a post-resolution
    check planned for an open case; the second case had two checks."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with center_day(settings, DECEMBER_20, with_intake=False, holidays_file=holidays,
                          calendar_provisional_years=0,
                          followup_post_resolution_working_days=10) as center:
        rules = center.app.state.rules
        pool = center.app.state.pool

        def event(kind: str, case_id: uuid.UUID, **payload: Any) -> Envelope:
            return _intake_event(kind, case_id, case_id, DECEMBER_20, **payload)

        def resolved(case_id: uuid.UUID) -> Envelope:
            return event("CaseResolved", case_id, outcome="resolved", emotion_defused=True)

        def action(case_id: uuid.UUID, kind: str) -> Envelope:
            taken = event("ActionTaken", case_id, description="需跨部门核定",
                          referred_to="浦东新区社保中心", unit_kind="social_insurance_bureau",
                          unit_contact=None, owner_clerk=None, within_working_days=3)
            taken.payload["kind"] = kind
            return taken

        async def apply(*events: Envelope) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, list(events))

        reopened, again = uuid.uuid4(), uuid.uuid4()
        second_resolution = resolved(again)
        for case_id in (reopened, again):
            await apply(event("CaseOpened", case_id, resident_id=str(uuid.uuid4()),
                              clerk_id="clerk-017", counter_id="window-3",
                              service_item="SA-HARDSHIP-SUBSIDY"),
                        action(case_id, "referred"))
            await apply(resolved(case_id))  # its referral closed, its check parked
            await apply(event("CaseReopened", case_id, reason="resident_says_unsolved"))
        await apply(action(reopened, "escalated"))
        await apply(second_resolution)
        assert (await center.followup.get("/parked-rules")).json()["count"] == 3

        holidays.write_text(json.dumps(SCHEDULE_2027))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        assert r.json()["replanned"]["followup"]["rules_unparked"] == 1
        assert (await center.followup.get("/parked-rules")).json()["count"] == 0
        await center.settled()

        async def items(path: str, case_id: uuid.UUID) -> list[dict[str, Any]]:
            r = await center.followup.get(path, params={"case_id": str(case_id)})
            return cast(list[dict[str, Any]], r.json()["items"])

        [referral] = await items("/referrals", reopened)
        [task] = await items("/help-tasks", reopened)
        assert (referral["status"], task["status"]) == ("awaiting_reply", "open")
        assert [(f["reason"], f["status"]) for f in await items("/followups", reopened)] == [
            ("resident_says_unsolved", "scheduled")]
        [check] = [f for f in await items("/followups", again)
                   if f["reason"] == "post_resolution_check"]
        assert check["source_id"] == str(second_resolution.event_id)


async def test_a_call_missed_on_a_provisional_day_the_notice_moves_is_kept_and_said_once(
        settings: Settings, tmp_path: Path) -> None:
    """New Year's Eve 23:30: a call booked for Monday 4 January 2027 (the law alone:
    provisional), missed at its closing. The notice, added on Wednesday the 6th, makes the
    4th a day off: by it the call was due on the 5th. It keeps the 4th it was missed on, and
    its basis, and says once that the schedule gives the 5th (FollowUpDueConfirmed,
    published_due_at); the next reload reads it no more. Before, nothing was recorded and
    every reload read it again, for ever. The worklist rebuilt from the log is the live one."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    eve = at(2026, 12, 31, 23, 30)
    async with center_day(settings, eve, holidays_file=holidays) as center:
        call_id = await monday_call(center)
        fired = (await center.scheduler.tick(at(2027, 1, 4, 17, 5))).fired
        assert fired["FollowUpMissed"] == 1, fired
        await center.settled()
        missed = await center.get(call_id)
        assert (missed["status"], missed["basis"]) == ("missed", "provisional")

        center.clock.set(at(2027, 1, 6, 10))
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01", "2027-01-04"],
            "workdays": []}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        answer = r.json()["replanned"]["followup"]
        assert (answer["followups_checked"], answer["followups_replanned"]) == (1, 1)
        await center.settled()
        kept = await center.get(call_id)
        assert (kept["status"], kept["basis"], kept["due_at"], kept["due_kept"]) == (
            "missed", "provisional", missed["due_at"], True)
        assert missed["due_kept"] is False
        said = [e for e in await stream_envelopes(settings)
                if e.type == "FollowUpDueConfirmed" and str(e.aggregate_id) == call_id]
        assert [datetime.fromisoformat(e.payload["published_due_at"]) for e in said] == [
            at(2027, 1, 5, 9)]
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        answer = r.json()["replanned"]["followup"]
        assert (answer["followups_checked"], answer["followups_replanned"]) == (0, 0), (
            "not read again")
        # A second notice corrects the first: the 4th is a working day after all. The call
        # kept on it is news again: the same moment, now official, nothing kept any more.
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01"], "workdays": []}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        answer = r.json()["replanned"]["followup"]
        assert (answer["followups_checked"], answer["followups_replanned"]) == (1, 1)
        await center.settled()
        corrected = await center.get(call_id)
        assert (corrected["status"], corrected["basis"], corrected["due_at"],
                corrected["due_kept"]) == ("missed", "official", missed["due_at"], False)
        await assert_rebuilt_as_live(settings, READ_MODEL)


async def test_a_referral_chased_and_a_task_escalated_on_a_day_the_notice_moves_are_kept_once(
        settings: Settings, tmp_path: Path) -> None:
    """New Year's Eve 23:30: referred and escalated with one working day, due Monday 4
    January 2027 at closing (the law alone: provisional); chased (督办) and escalated then.
    The notice, added on Wednesday the 6th, makes the 4th a day off: by it both were due on
    the 5th. Each keeps the 4th it was judged on, and its basis, and says once that the
    schedule gives the 5th (published_*_at); the next reload reads neither. Before, nothing
    was recorded and every reload read both again, for ever. Rebuilt from the log, the
    worklist is the live one."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    eve = at(2026, 12, 31, 23, 30)
    async with center_day(settings, eve, holidays_file=holidays) as center:
        referral, task = await referred_and_escalated(center, eve)
        fired = (await center.scheduler.tick(at(2027, 1, 4, 17, 5))).fired
        assert (fired["ReferralOverdue"], fired["HelpTaskEscalated"]) == (1, 1), fired
        await center.settled()

        center.clock.set(at(2027, 1, 6, 10))
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01", "2027-01-04"],
            "workdays": []}}))
        counts = ("referrals_checked", "referrals_replanned", "help_tasks_checked",
                  "help_tasks_replanned")
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        assert tuple(r.json()["replanned"]["followup"][c] for c in counts) == (1, 1, 1, 1)
        await center.settled()
        referral, task = await still_chased_and_escalated(center, referral, task, "provisional")
        assert (referral["reply_due_kept"], task["deadline_kept"]) == (True, True)
        listed = await center.followup.get(f"/help-tasks?case_id={task['case_id']}")
        assert [t["deadline_kept"] for t in listed.json()["items"]] == [True], listed.text
        listed = await center.followup.get(f"/referrals?case_id={referral['case_id']}")
        assert [r["reply_due_kept"] for r in listed.json()["items"]] == [True], listed.text
        said = {e.type: datetime.fromisoformat(e.payload.get("published_deadline_at")
                                               or e.payload["published_reply_due_at"])
                for e in await stream_envelopes(settings)
                if e.type in ("HelpTaskReplanned", "ReferralReplanned")}
        assert said == {"HelpTaskReplanned": at(2027, 1, 5, 17),
                        "ReferralReplanned": at(2027, 1, 5, 17)}
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert tuple(r.json()["replanned"]["followup"][c] for c in counts) == (0, 0, 0, 0), (
            "not read again")
        # A second notice corrects the first: the 4th is a working day after all. What was
        # kept on it is news again: the same moment, now official, nothing kept any more.
        holidays.write_text(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01"], "workdays": []}}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert tuple(r.json()["replanned"]["followup"][c] for c in counts) == (1, 1, 1, 1)
        await center.settled()
        referral, task = await still_chased_and_escalated(center, referral, task, "official")
        assert (referral["reply_due_kept"], task["deadline_kept"]) == (False, False)
        await assert_rebuilt_as_live(settings, READ_MODEL)
