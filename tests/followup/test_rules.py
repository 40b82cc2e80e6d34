"""Rules: what follow-up schedules when intake (and feedback) events arrive on the stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.bus.jetstream import connect, event_subject
from shared.contracts import Envelope
from shared.eventstore.outbox import encode
from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.support import headers, stream_envelopes, wait_until


def by_reason(items: list[dict], reason: str) -> list[dict]:
    return [f for f in items if f["reason"] == reason]


async def test_a_deadline_gets_a_reminder_working_days_before_it(settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        # Friday Mar 13: three working days before is Tuesday Mar 10.
        await center.step(case_id, "deadlines", {"due_on": "2026-03-13", "description": "补交材料",
                                                 "occurred_at": at(2026, 3, 2, 9, 20).isoformat()})
        # Tomorrow: closer than three working days, so the reminder is due at once.
        await center.step(case_id, "deadlines", {"due_on": "2026-03-03", "description": "签字",
                                                 "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
        items = await center.followups_of(case_id, 2)
        reminders = sorted(by_reason(items, "deadline_reminder"), key=lambda f: f["due_at"])
        assert [datetime.fromisoformat(f["due_at"]) for f in reminders] == [
            at(2026, 3, 2, 9, 30), at(2026, 3, 10, 9)]
        assert all(f["assigned_clerk"] == "clerk-017" and f["status"] == "scheduled"
                   for f in reminders)
        assert reminders[0]["resident_id"] is not None

        tick = await center.scheduler.tick(at(2026, 3, 2, 9, 45))
        assert tick.fired == {"FollowUpDue": 1}, "only the close deadline is due yet"
        r = await center.followup.post(
            f"/followups/{reminders[0]['follow_up_id']}/complete", headers=headers(key()),
            json={"outcome": "done", "channel": "phone", "note": "已提醒"})
        assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 3, 10, 8, 59))).fired == {}, "never early"
        assert (await center.scheduler.tick(at(2026, 3, 10, 9))).fired == {"FollowUpDue": 1}


async def test_a_resolution_gets_a_check_and_a_hard_one_an_early_check(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 6, 9)) as center:
        friday = at(2026, 3, 6, 16).isoformat()
        calm = await center.open_case(at(2026, 3, 6, 10))
        stuck = await center.open_case(at(2026, 3, 6, 10))
        upset = await center.open_case(at(2026, 3, 6, 10))
        await center.step(calm, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                            "occurred_at": friday})
        await center.step(stuck, "resolve", {"outcome": "cannot_be_resolved",
                                             "explanation": "不符合条件，已说明原因",
                                             "emotion_defused": True, "occurred_at": friday})
        await center.step(upset, "resolve", {"outcome": "resolved", "emotion_defused": False,
                                             "occurred_at": friday})
        [check] = await center.followups_of(calm, 1)
        assert check["reason"] == "post_resolution_check" and check["priority"] == "normal"
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 3, 13, 9), "5 working days"
        for case_id in (stuck, upset):
            [early] = await center.followups_of(case_id, 1)
            assert early["priority"] == "high"
            assert datetime.fromisoformat(early["due_at"]) == at(2026, 3, 9, 9), "next Monday"

        # Reopened at the counter: the check is moot; resolving again schedules a new one.
        center.clock.set(at(2026, 3, 9, 10))
        await center.step(calm, "reopen", {"reason": "居民补充材料",
                                           "occurred_at": at(2026, 3, 9, 10).isoformat()})
        await center.step(calm, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                            "occurred_at": at(2026, 3, 9, 11).isoformat()})
        items = await center.followups_of(calm, 2)
        await center.settled()
        items = (await center.followup.get("/followups", params={"case_id": calm})).json()["items"]
        states = {(f["status"], f["due_at"][:10]) for f in items}
        assert states == {("cancelled", "2026-03-13"), ("scheduled", "2026-03-16")}


async def test_a_missed_monthly_obligation_gets_a_proactive_contact(settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10), item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(case_id, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-03-16",
            "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
        envelopes = await _wait_for(settings, "ObligationDeclared")
        obligation_id = envelopes[0].payload["obligation_id"]
        await _wait_for(settings, "ObligationWatched")

        async def watched() -> bool:
            r = await center.followup.get(f"/obligations/{obligation_id}")
            return r.status_code == 200

        await wait_until(watched, what="the obligation in the read model")
        r = await center.followup.get(f"/obligations/{obligation_id}")
        assert r.json()["next_due_on"] == "2026-03-16"
        # Grace: the due day and 3 working days; missed at closing on Thursday Mar 19.
        assert datetime.fromisoformat(r.json()["missed_at"]) == at(2026, 3, 19, 17)

        # March: fulfilled on time (recorded through the follow-up API).
        center.clock.set(at(2026, 3, 17, 10))
        r = await center.followup.post(f"/obligations/{obligation_id}/fulfilments",
                                       json={}, headers=headers(key()))
        assert r.status_code == 200, r.text
        assert (await center.scheduler.tick(at(2026, 3, 20, 9))).fired == {}
        r = await center.followup.get(f"/obligations/{obligation_id}",
                                      params={"after": r.json()["position"]})
        assert r.json()["next_due_on"] == "2026-04-16"

        # April: nothing recorded by closing on Tuesday Apr 21 (Thu 16, Fri 17, Mon 20, Tue 21).
        assert (await center.scheduler.tick(at(2026, 4, 21, 16, 59))).fired == {}
        tick = await center.scheduler.tick(at(2026, 4, 21, 17))
        assert tick.fired == {"ObligationMissed": 1, "FollowUpScheduled": 1}
        [contact] = by_reason(await center.followups_of(case_id, 1), "obligation_missed")
        assert contact["priority"] == "high" and contact["assigned_clerk"] == "clerk-017"
        assert datetime.fromisoformat(contact["due_at"]) == at(2026, 4, 22, 9)
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 4, 22, 9))).fired == {"FollowUpDue": 1}
        r = await center.followup.get(f"/obligations/{obligation_id}")
        assert r.json()["missed_periods"] == 1 and r.json()["next_due_on"] == "2026-05-16"


async def test_an_obligation_recorded_in_december_that_began_in_september_fires_nothing_old(
        settings: Settings) -> None:
    # Friday 4 December: the resident has claimed the reimbursement on the 15th since
    # September; the clerk records it only now. September to November were never expected
    # to be tracked: no pile of "missed" contacts, December is the first period watched.
    async with center_day(settings, at(2026, 12, 4, 9)) as center:
        case_id = await center.open_case(at(2026, 12, 4, 9, 10), item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(case_id, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-09-15",
            "occurred_at": at(2026, 12, 4, 9, 30).isoformat()})
        [watched] = await _wait_for(settings, "ObligationWatched")
        assert watched.payload["next_due_on"] == "2026-12-15"
        assert (watched.payload["first_due_on"], watched.payload["period"]) == ("2026-09-15", 3)
        obligation_id = watched.payload["obligation_id"]

        async def in_read_model() -> bool:
            r = await center.followup.get(f"/obligations/{obligation_id}")
            return r.status_code == 200

        await wait_until(in_read_model, what="the obligation in the read model")
        assert (await center.scheduler.tick(at(2026, 12, 4, 10))).fired == {}
        # December's period, missed at closing on Friday 18 December, is the first contact.
        assert (await center.scheduler.tick(at(2026, 12, 18, 16, 59))).fired == {}
        tick = await center.scheduler.tick(at(2026, 12, 18, 17))
        assert tick.fired == {"ObligationMissed": 1, "FollowUpScheduled": 1}
        await center.settled()
        r = await center.followup.get(f"/obligations/{obligation_id}")
        assert (r.json()["missed_periods"], r.json()["next_due_on"]) == (1, "2027-01-15")
        [contact] = by_reason(await center.followups_of(case_id, 1), "obligation_missed")
        assert contact["assigned_clerk"] == "clerk-017"

        # The resident says November's did not come and wants it followed up: tracked_from.
        center.clock.set(at(2026, 12, 21, 10))
        other = await center.open_case(at(2026, 12, 21, 10), item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(other, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-09-15",
            "tracked_from": "2026-11-01", "occurred_at": at(2026, 12, 21, 10, 5).isoformat()})
        await wait_until(lambda: _watched_of(settings, other), what="the second obligation")
        await center.settled()
        tick = await center.scheduler.tick(at(2026, 12, 21, 10, 30))
        # November's and December's (two in a row: a home visit too); the first case's
        # contact falls due this morning.
        assert tick.fired == {"ObligationMissed": 2, "FollowUpScheduled": 3, "FollowUpDue": 1}

        # Nor when a declaration says it happened in September (a tablet's clock reset, a
        # date typed wrong): posted more than the grace (72 h) later, it is judged on intake's
        # clock less the grace (Friday 18 December, 10:00), as a resolution is: December's
        # period (grace to that evening) is the first watched. Said as given, September to
        # December were watched, missed at the next tick: four calls and home visits.
        third = await center.open_case(at(2026, 12, 21, 10), item="MI-MEDICAL-REIMBURSEMENT")
        await center.step(third, "obligations", {
            "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2026-09-15",
            "occurred_at": at(2026, 9, 10, 9, 30).isoformat()})
        await wait_until(lambda: _watched_of(settings, third), what="the third obligation")
        [watched] = [e for e in await _wait_for(settings, "ObligationWatched")
                     if str(e.case_id) == third]
        assert (watched.payload["next_due_on"], watched.payload["period"]) == ("2026-12-15", 3)


async def test_the_counters_next_due_day_and_missed_since_watch_the_periods_between(
        settings: Settings) -> None:
    """The counter page asks for the next due day (a day to come) and, apart, since when the
    resident says the payments did not come. The periods between lie before the declared day:
    follow-up watched from the next due day on, and the ones asked for were never followed
    up. Sunday 20 December: due on the 15th, next on 15 January, missed since 1 November."""
    async with center_day(settings, at(2026, 12, 20, 9)) as center:
        _, watched = await _missed_since(center, settings, "2026-11-01")
        assert watched.payload["next_due_on"] == "2026-11-15"
        assert (watched.payload["first_due_on"], watched.payload["period"]) == ("2027-01-15", -2)
        # November's and December's (15 Dec, grace to Friday 18 Dec) are missed at the next
        # tick: two in a row, a home visit too; January's is watched on.
        tick = await center.scheduler.tick(at(2026, 12, 20, 10))
        assert tick.fired == {"ObligationMissed": 2, "FollowUpScheduled": 3}
        obligation_id = watched.payload["obligation_id"]

        async def moved_on() -> bool:
            r = await center.followup.get(f"/obligations/{obligation_id}")
            return r.status_code == 200 and r.json()["next_due_on"] == "2027-01-15"
        await wait_until(moved_on, what="January's period watched")


async def test_calls_for_months_missed_before_anyone_knew_are_due_on_a_day_to_come(
        settings: Settings) -> None:
    """Sunday 20 December: the resident says nothing came since September. The calls for
    September to December and the home visit are due on Monday morning, the next working
    morning: planned on the mornings after each grace (16 September ...), days long past,
    they were missed the moment they were planned, late in months already closed."""
    async with center_day(settings, at(2026, 12, 20, 9)) as center:
        case_id, _ = await _missed_since(center, settings, "2026-09-01")
        tick = await center.scheduler.tick(at(2026, 12, 20, 10))
        assert tick.fired == {"ObligationMissed": 4, "FollowUpScheduled": 5}
        calls = await center.followups_of(case_id, 5)
        assert sorted(f["reason"] for f in calls) == ["home_visit"] + ["obligation_missed"] * 4
        assert {datetime.fromisoformat(f["due_at"]) for f in calls} == {at(2026, 12, 21, 9)}
        await center.settled()
        assert (await center.scheduler.tick(at(2026, 12, 20, 17, 30))).fired == {}, (
            "nothing is missed on the Sunday they were planned")


async def test_tracked_from_is_a_day_already_come_that_the_calendar_covers(
        settings: Settings) -> None:
    """A day to come says nothing of periods missed; a year typed wrong (2006) asked for
    some 240 missed periods, and a day before the calendar's first year parked the obligation
    in follow-up for good: 422 beyond a year back, nothing declared."""
    async with center_day(settings, at(2026, 12, 4, 9)) as center:
        case_id = await center.open_case(at(2026, 12, 4, 9, 10), item="MI-MEDICAL-REIMBURSEMENT")
        declared = {"description": "每月报销单据", "cadence": "monthly",
                    "next_due_on": "2026-09-15", "occurred_at": at(2026, 12, 4, 9, 30).isoformat()}
        for tracked_from, code in (("2026-12-05", "invalid_command"),
                                   ("2006-12-01", "invalid_command"),  # 2026 mistyped
                                   ("2025-12-02", "invalid_command")):
            r = await center.intake.post(f"/cases/{case_id}/obligations", headers=headers(key()),
                                         json={**declared, "tracked_from": tracked_from})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == code, r.text
        # Nor by a second route: the declaration dated a year back (beyond the grace, judged
        # on 1 December), the year counted from the day it says.
        r = await center.intake.post(f"/cases/{case_id}/obligations", headers=headers(key()),
                                     json={**declared, "tracked_from": "2024-12-10",
                                           "occurred_at": at(2025, 12, 1, 9).isoformat()})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_command", r.text
        await center.step(case_id, "obligations", {**declared, "tracked_from": "2025-12-04"})
        [watched] = await _wait_for(settings, "ObligationWatched")
        assert watched.payload["next_due_on"] == "2026-09-15"  # the first period, a year on


async def test_a_bad_review_gets_a_rectification_follow_up_on_its_deadline(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 16, 9)) as center:
        case_id = await center.open_case(at(2026, 3, 16, 9, 10))
        rectification_id = uuid.uuid4()
        await _publish_feedback(settings, uuid.UUID(case_id), {
            "rectification_id": str(rectification_id), "resident_id": None,
            "rating": "dissatisfied", "deadline_on": "2026-03-21", "summary": "等待时间太长"})
        found = await center.followups_of(case_id, 2, "the verification and rectification")
        by_reason = {f["reason"]: f for f in found}
        revisit = by_reason["rectification"]
        assert revisit["reason"] == "rectification" and revisit["priority"] == "high"
        # 回访核实: the bad review came Monday 15:00; the verification is due Tuesday morning.
        verification = by_reason["verification"]
        assert datetime.fromisoformat(verification["due_at"]) == at(2026, 3, 17, 9)
        assert verification["source_id"] == str(rectification_id)
        assert verification["priority"] == "high"
        assert revisit["assigned_team"] == "followup-desk"
        assert revisit["source_id"] == str(rectification_id)
        assert revisit["resident_id"] is not None, "the resident comes from the case"
        # Saturday Mar 21 is a day off: due on the last working day before it.
        assert datetime.fromisoformat(revisit["due_at"]) == at(2026, 3, 20, 9)

    scheduled = [e for e in await stream_envelopes(settings) if e.type == "FollowUpScheduled"]
    assert len(scheduled) == 2 and {e.center_id for e in scheduled} == {CENTER}
    assert {str(e.case_id) for e in scheduled} == {case_id}


async def _missed_since(center: Center, settings: Settings, tracked_from: str
                        ) -> tuple[str, Envelope]:
    """Sunday 20 December, 09:30: the monthly reimbursement, due on the 15th (next on 15
    January), has not come since ``tracked_from``, the resident says. (The case, its
    ``ObligationWatched``.)"""
    case_id = await center.open_case(at(2026, 12, 20, 9, 10), item="MI-MEDICAL-REIMBURSEMENT")
    await center.step(case_id, "obligations", {
        "description": "每月报销单据", "cadence": "monthly", "next_due_on": "2027-01-15",
        "tracked_from": tracked_from, "occurred_at": at(2026, 12, 20, 9, 30).isoformat()})
    [watched] = await _wait_for(settings, "ObligationWatched")
    await center.settled()
    return case_id, watched


async def _watched_of(settings: Settings, case_id: str) -> bool:
    return any(e.type == "ObligationWatched" and str(e.case_id) == case_id
               for e in await stream_envelopes(settings))


async def _wait_for(settings: Settings, type_: str) -> list[Envelope]:
    found: list[Envelope] = []

    async def check() -> bool:
        nonlocal found
        found = [e for e in await stream_envelopes(settings) if e.type == type_]
        return bool(found)

    await wait_until(check, what=type_)
    return found


async def _publish_feedback(settings: Settings, case_id: uuid.UUID, payload: dict,
                            occurred_at: datetime | None = None) -> None:
    """What the feedback service will publish when a bad review opens a rectification
    (``occurred_at``: the bad review's moment, Monday 16 March 15:00 unless said)."""
    now = datetime.now(UTC)
    envelope = Envelope(
        event_id=uuid.uuid4(), type="RectificationOpened", version=1, service="feedback",
        position=1, aggregate_id=uuid.uuid4(), aggregate_version=1, case_id=case_id,
        center_id=CENTER, occurred_at=occurred_at or at(2026, 3, 16, 15), recorded_at=now,
        actor="system:feedback", payload=payload)
    nc = await connect(settings, "test-feedback")
    try:
        await nc.jetstream().publish(
            event_subject(settings, "feedback", "RectificationOpened", case_id),
            encode(envelope), headers={"Nats-Msg-Id": "feedback:1"})
    finally:
        await nc.close()
