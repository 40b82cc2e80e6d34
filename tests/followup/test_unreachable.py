"""A follow-up call that does not reach the resident is tried again, the next working morning,
before the follow-up is closed as unreachable: one unanswered call on a Friday afternoon does
not end a post-resolution check (nor a bad review's revisit, which is a task until done)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.followup.domain import UNREACHABLE_ATTEMPTS
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.intake.test_hints import born
from tests.support import assert_rebuilt_as_live, bearer, headers, stream_envelopes


def colleague(center: Center) -> dict[str, str]:
    """A colleague who did not serve the resident: the one who records that it was solved
    (the test supervisor opened and resolved the cases: 代评, 403 ``self_rating``)."""
    return bearer(center.settings, role=Role.CLERK, sub="clerk-021", center=CENTER)


async def resolved_with_check(center: Center, resolved_at: datetime) -> tuple[str, dict]:
    """A case opened and resolved at the window on one morning, and its post-resolution
    check."""
    case_id = await center.open_case(resolved_at.replace(hour=10))
    await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                           "occurred_at": resolved_at.isoformat()})
    [check] = await center.followups_of(case_id, 1)
    return case_id, check


async def test_a_check_that_does_not_reach_the_resident_three_times_is_closed_as_unreachable(
        settings: Settings) -> None:
    assert UNREACHABLE_ATTEMPTS == 3
    async with center_day(settings, at(2026, 3, 6, 9)) as center:
        case_id, check = await resolved_with_check(center, at(2026, 3, 6, 16))
        follow_up_id = check["follow_up_id"]
        assert datetime.fromisoformat(check["due_at"]) == at(2026, 3, 13, 9)

        async def call(now: datetime, idempotency_key: str, note: str = "无人接听") -> dict:
            center.clock.set(now)
            r = await center.followup.post(
                f"/followups/{follow_up_id}/complete", headers=headers(idempotency_key),
                json={"outcome": "unreachable", "channel": "phone", "note": note})
            assert r.status_code == 200, r.text
            await center.settled()
            return await center.get(follow_up_id)

        # Friday 13 March: no answer. Tried again on Monday morning, still the case's clerk's.
        first = key()
        seen = await call(at(2026, 3, 13, 15), first)
        assert seen["status"] == "scheduled" and seen["assigned_clerk"] == "clerk-017"
        assert datetime.fromisoformat(seen["due_at"]) == at(2026, 3, 16, 9)
        # The counter app's retry of that answer is answered as the first was (not a 422).
        r = await center.followup.post(
            f"/followups/{follow_up_id}/complete", headers=headers(first),
            json={"outcome": "unreachable", "channel": "phone", "note": "无人接听"})
        assert r.status_code == 200, r.text
        assert (await center.get(follow_up_id))["due_at"] == seen["due_at"]

        # Monday: switched off; tried again on Tuesday. Tuesday: no answer, the last attempt.
        seen = await call(at(2026, 3, 16, 9, 30), key(), note="关机，邻居说住院了")
        assert seen["status"] == "scheduled"
        assert datetime.fromisoformat(seen["due_at"]) == at(2026, 3, 17, 9)
        seen = await call(at(2026, 3, 17, 11), key())
        assert (seen["status"], seen["outcome"]) == ("completed", "unreachable")

        # The resident reached on a later attempt completes it as usual.
        case_id = await center.open_case(at(2026, 3, 17, 11))
        await center.step(case_id, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                               "occurred_at": at(2026, 3, 17, 11).isoformat()})
        [check] = await center.followups_of(case_id, 1)
        follow_up_id = check["follow_up_id"]
        await call(at(2026, 3, 24, 10), key())
        center.clock.set(at(2026, 3, 25, 9, 5))
        r = await center.followup.post(
            f"/followups/{follow_up_id}/complete", headers=headers(key()) | colleague(center),
            json={"outcome": "done", "channel": "phone", "note": "已回访", "verdict": "solved"})
        assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.get(follow_up_id))["status"] == "completed"

    # What each unanswered attempt learnt stays with the follow-up for the next caller.
    reasons = [e.payload["reason"] for e in await stream_envelopes(settings)
               if e.type == "FollowUpRescheduled" and e.payload["cause"] == "unreachable"]
    assert reasons[:2] == ["unreachable: attempt 1 of 3: 无人接听",
                           "unreachable: attempt 2 of 3: 关机，邻居说住院了"]


async def _unreachable_three_times(center: Center, follow_up_id: str,
                                   last: datetime) -> dict[str, Any]:
    """Three unanswered calls: Monday 21 and Tuesday 22 December, and the last one typed in
    at 23:30 on New Year's Eve (15:30 UTC, the same UTC date; the next working morning is
    in 2027, a year the holiday package does not know)."""
    for now in (at(2026, 12, 21, 10), at(2026, 12, 22, 10), last):
        center.clock.set(now)
        r = await center.followup.post(
            f"/followups/{follow_up_id}/complete", headers=headers(key()),
            json={"outcome": "unreachable", "channel": "phone", "note": "无人接听"})
        assert r.status_code == 200, r.text
    await center.settled()
    return await center.get(follow_up_id)


async def test_a_resident_not_reached_three_times_is_handed_to_the_team_leader_or_visited(
        settings: Settings) -> None:
    """The third unanswered call does not just close the post-resolution check: the team
    leader gets a task (a resident who needs more care, a home visit by the team), high
    priority, the next working morning, on the same case; the figures count the check as
    unreachable, not as done on time."""
    async with center_day(settings, at(2026, 12, 14, 9)) as center:
        alone = await center.living_alone(born("19500101", "051"))
        checks = {}
        for who, resident in (("alone", alone), ("other", await center.resident())):
            case_id = await center.open_case(at(2026, 12, 14, 10), resident)
            await center.step(case_id, "resolve", {
                "outcome": "resolved", "emotion_defused": True,
                "occurred_at": at(2026, 12, 14, 11).isoformat()})
            [check] = await center.followups_of(case_id, 1)
            checks[who] = (case_id, check)

        # Another center's clerk cannot record the attempts (nor so plan a team's task here).
        other_center = bearer(settings, role=Role.CLERK, sub="clerk-900", center="SH-PD-LUJIAZUI")
        for _ in range(UNREACHABLE_ATTEMPTS):
            r = await center.followup.post(
                f"/followups/{checks['other'][1]['follow_up_id']}/complete",
                headers={**other_center, **headers(key())},
                json={"outcome": "unreachable", "channel": "phone", "note": "无人接听"})
            assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")

        handed = {}
        for who, (case_id, check) in checks.items():
            seen = await _unreachable_three_times(center, check["follow_up_id"],
                                                  at(2026, 12, 31, 23, 30))
            assert (seen["status"], seen["outcome"]) == ("completed", "unreachable")
            items = await center.followups_of(case_id, 2, "the team's follow-up")
            [handed[who]] = [f for f in items if f["follow_up_id"] != check["follow_up_id"]]

        visit, task = handed["alone"], handed["other"]
        assert (visit["reason"], visit["assigned_team"]) == (
            "home_visit", settings.followup_team)
        assert (task["reason"], task["assigned_team"]) == (
            "resident_unreachable", settings.followup_supervisor_team)
        for f, (_, check) in ((visit, checks["alone"]), (task, checks["other"])):
            assert f["priority"] == "high" and f["status"] == "scheduled"
            assert f["resident_id"] == check["resident_id"] and f["assigned_clerk"] is None
            # Friday 1 January is New Year's Day, then a weekend: Monday 4 January 2027,
            # worked out on the provisional calendar, and it says so.
            assert datetime.fromisoformat(f["due_at"]) == at(2027, 1, 4, 9)
            assert f["basis"] == "provisional"

        # The worklists show them: the visit on the board's rounds, the task on the leader's.
        board = (await center.followup.get("/worklists/centers/SH-PD-HUAMU")).json()
        assert [f["follow_up_id"] for f in board["home_visits"]] == [visit["follow_up_id"]]
        center.clock.set(at(2027, 1, 4, 8))
        leader = (await center.followup.get(
            f"/worklists/teams/{settings.followup_supervisor_team}",
            params={"center_id": "SH-PD-HUAMU"})).json()
        shown = [f["follow_up_id"] for f in leader["due_today"] + leader["upcoming"]]
        assert task["follow_up_id"] in shown

        # Not reached by the team either, one visit a day: the task ends there (no fourth
        # round of handing).
        for day in (4, 5, 6):
            center.clock.set(at(2027, 1, day, 10))
            r = await center.followup.post(
                f"/followups/{task['follow_up_id']}/complete", headers=headers(key()),
                json={"outcome": "unreachable", "channel": "home_visit", "note": "不在家"})
            assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.get(task["follow_up_id"]))["status"] == "completed"
        assert len(await center.followups_of(checks["other"][0], 2)) == 2

    envelopes = await stream_envelopes(settings)
    [scheduled] = [e for e in envelopes if e.type == "FollowUpScheduled"
                   and e.payload["reason"] == "resident_unreachable"]
    [last] = [e for e in envelopes if e.type == "FollowUpCompleted"
              and str(e.aggregate_id) == scheduled.payload["source_id"]]
    assert scheduled.actor == last.actor == "test-supervisor", "whoever recorded the attempt"
    assert scheduled.payload["source_id"] == checks["other"][1]["follow_up_id"]
    # Its moment keeps the rule it was worked out by (the first working day from 1 January),
    # so the 2027 schedule, once published, re-plans it as every provisional date is; so do
    # the retries (the checks' from 21 and 22 December, the team's from 4 and 5 January).
    assert (scheduled.payload["due_rule"]["direction"], scheduled.payload["due_rule"]["day"],
            scheduled.payload["due_rule"]["working_days"]) == ("on_or_after", "2027-01-01", 0)
    retries = [e.payload for e in envelopes if e.type == "FollowUpRescheduled"
               and e.payload["cause"] == "unreachable"]
    assert {r["due_rule"]["day"] for r in retries} == {"2026-12-22", "2026-12-23",
                                                        "2027-01-05", "2027-01-06"}


async def test_an_unanswered_attempt_counts_once_a_day(settings: Settings) -> None:
    """Three unanswered calls in one morning (a clerk redialling, an attempt typed in twice
    with a new key) used up every attempt: the team took up a resident never tried on another
    day. The second one that day is not counted (``counted`` false, ``tried_today``) but
    recorded with its note (停机: refused, the note was lost), the follow-up unchanged; a
    retry under its key answers the same; a call that reaches them is recorded as usual;
    the next day's counts."""
    async with center_day(settings, at(2026, 12, 18, 9)) as center:
        _, check = await resolved_with_check(center, at(2026, 12, 18, 11))
        follow_up_id = check["follow_up_id"]

        async def call(now: datetime, outcome: str = "unreachable", note: str = "无人接听",
                       idempotency_key: str | None = None) -> Any:
            center.clock.set(now)
            body: dict[str, Any] = {"outcome": outcome, "channel": "phone", "note": note}
            who: dict[str, str] = {}
            if outcome == "done":
                body |= {"note": "已回访", "verdict": "solved"}
                who = colleague(center)
            return await center.followup.post(f"/followups/{follow_up_id}/complete",
                                              headers=headers(idempotency_key or key()) | who,
                                              json=body)

        first = await call(at(2026, 12, 21, 10))
        assert (first.status_code, first.json()["counted"]) == (200, True), first.text
        await center.settled()
        before = await center.get(follow_up_id)
        for now, note in ((at(2026, 12, 21, 10, 5), "停机"), (at(2026, 12, 21, 16, 30), "")):
            again = key()
            r = await call(now, note=note, idempotency_key=again)
            assert r.status_code == 200, r.text
            assert (r.json()["counted"], r.json()["not_counted_because"]) == (
                False, "tried_today")
            assert datetime.fromisoformat(r.json()["next_attempt_at"]) == \
                datetime.fromisoformat(before["due_at"])
            retried = await call(now, note=note, idempotency_key=again)
            assert retried.json() == r.json() | {"replayed": True}
        await center.settled()
        after = await center.get(follow_up_id)
        assert {k: after[k] for k in ("status", "due_at")} == {
            k: before[k] for k in ("status", "due_at")}
        recorded = [e.payload for e in await stream_envelopes(settings)
                    if e.type == "FollowUpRescheduled" and str(e.aggregate_id) == follow_up_id]
        assert [(p["counted"], p["not_counted_because"], p["reason"]) for p in recorded] == [
            (True, None, "unreachable: attempt 1 of 3: 无人接听"),
            (False, "tried_today", "unreachable: not counted (tried_today): 停机"),
            (False, "tried_today", "unreachable: not counted (tried_today)")]
        assert recorded[1]["due_at"] == recorded[1]["previous_due_at"] == recorded[0]["due_at"]
        # Tuesday's counts (the second of three); Tuesday evening's reaches them.
        assert (await call(at(2026, 12, 22, 9, 30))).status_code == 200
        r = await call(at(2026, 12, 22, 18), outcome="done")
        assert r.status_code == 200, r.text
        await center.settled()
        assert (await center.get(follow_up_id))["status"] == "completed"
        from services.followup.projections import READ_MODEL
        await assert_rebuilt_as_live(settings, READ_MODEL)


async def test_a_day_already_tried_is_not_counted_again_after_an_earlier_day_typed_in(
        settings: Settings) -> None:
    """Each day counts once, whatever order the attempts are typed in: Tuesday's unanswered
    call, then Monday's typed in late (its own day, counted), then Tuesday's redial. The
    redial was compared with the last attempt typed in (Monday) only, so it counted as the
    third attempt and the team took up a resident tried on two days. It is not counted
    (``counted`` false, ``tried_today``), the follow-up unchanged; a retry of an attempt
    under its own key answers as the first did."""
    async with center_day(settings, at(2026, 12, 18, 9)) as center:
        case_id, check = await resolved_with_check(center, at(2026, 12, 18, 11))
        follow_up_id = check["follow_up_id"]

        async def call(now: datetime, idempotency_key: str,
                       occurred_at: datetime | None = None) -> Any:
            center.clock.set(now)
            body: dict[str, Any] = {"outcome": "unreachable", "channel": "phone",
                                    "note": "无人接听"}
            if occurred_at is not None:
                body["occurred_at"] = occurred_at.isoformat()
            return await center.followup.post(f"/followups/{follow_up_id}/complete",
                                              headers=headers(idempotency_key), json=body)

        assert (await call(at(2026, 12, 22, 10), key())).status_code == 200  # Tuesday's
        monday = key()
        typed_in = await call(at(2026, 12, 22, 11), monday, at(2026, 12, 21, 16))
        assert typed_in.status_code == 200, typed_in.text  # Monday's, typed in late
        again = await call(at(2026, 12, 22, 11, 1), monday, at(2026, 12, 21, 16))
        assert again.status_code == 200, again.text
        assert again.json() == typed_in.json() | {"replayed": True}
        await center.settled()
        before = await center.get(follow_up_id)
        assert before["status"] == "scheduled"
        r = await call(at(2026, 12, 22, 15), key())  # Tuesday's redial
        assert r.status_code == 200, r.text
        assert (r.json()["counted"], r.json()["not_counted_because"]) == (False, "tried_today")
        await center.settled()
        after = await center.get(follow_up_id)
        assert {k: after[k] for k in ("status", "due_at")} == {
            k: before[k] for k in ("status", "due_at")}
        assert len(await center.followups_of(case_id, 1)) == 1  # nobody took it up


async def test_a_missed_check_stays_on_the_supervisors_list_after_its_clerks_unanswered_call(
        settings: Settings) -> None:
    """A check due Friday 18 December 2026, missed at its closing, is on the supervisors'
    worklist. clerk-017, who let it go and may not move it (403), posted an unanswered call on
    Sunday the 20th: it became 'scheduled' at Monday's opening and left the list, the miss
    taken off it by its own clerk. Now the call and note are recorded and it stays missed,
    escalated at its moment; a supervisor's unanswered call at 23:30 on 31 December leaves it
    escalated too; the read model rebuilt from the log is the one kept live."""
    from services.followup.projections import READ_MODEL
    from tests.followup.test_worklists import ids, schedule

    async with center_day(settings, at(2026, 12, 18, 8, 30), with_intake=False) as center:
        api = center.followup
        check = await schedule(api, due_at=at(2026, 12, 18, 9).isoformat(),
                               assigned_clerk="clerk-017", reason="post_resolution_check")
        await center.settled()
        center.clock.set(at(2026, 12, 18, 17, 30))
        assert (await center.scheduler.tick()).fired == {"FollowUpDue": 1, "FollowUpMissed": 1}
        await center.settled()
        assert (await center.get(check["id"]))["status"] == "missed"

        async def overdue(whose: str) -> list[str]:
            r = await api.get(f"/worklists/{whose}", params={"center_id": "SH-PD-HUAMU"})
            assert r.status_code == 200, r.text
            return ids(r.json()["overdue"])

        assert await overdue("clerks/clerk-017") == [check["id"]]
        as_clerk = bearer(center.settings, role=Role.CLERK, sub="clerk-017")
        center.clock.set(at(2026, 12, 20, 10))
        r = await api.post(f"/followups/{check['id']}/complete",
                           headers={**headers(key()), **as_clerk},
                           json={"outcome": "unreachable", "channel": "phone", "note": "停机"})
        assert r.status_code == 200, r.text
        await center.settled()
        seen = await center.get(check["id"])
        assert (seen["status"], datetime.fromisoformat(seen["due_at"])) == (
            "missed", at(2026, 12, 18, 9))
        assert await overdue("clerks/clerk-017") == [check["id"]]

        # Escalated at its moment (two working days after the due day: Tuesday's opening).
        center.clock.set(at(2026, 12, 22, 9, 5))
        assert (await center.scheduler.tick()).fired == {"FollowUpEscalated": 1}
        await center.settled()
        assert await overdue("teams/supervisor") == [check["id"]]
        center.clock.set(at(2026, 12, 31, 23, 30))
        r = await api.post(f"/followups/{check['id']}/complete", headers=headers(key()),
                           json={"outcome": "unreachable", "channel": "phone", "note": ""})
        assert r.status_code == 200, r.text
        # The redial five minutes later is recorded with its note, not counted: it stays.
        center.clock.set(at(2026, 12, 31, 23, 35))
        r = await api.post(f"/followups/{check['id']}/complete", headers=headers(key()),
                           json={"outcome": "unreachable", "channel": "phone", "note": "空号"})
        assert (r.status_code, r.json()["counted"]) == (200, False), r.text
        # The next call counts from 07:30 on 1 January (the gap's end), not from its due
        # moment on 18 December.
        assert datetime.fromisoformat(r.json()["next_attempt_at"]) == at(2027, 1, 1, 7, 30)
        await center.settled()
        assert (await center.get(check["id"]))["status"] == "escalated"
        assert await overdue("teams/supervisor") == [check["id"]]
        await assert_rebuilt_as_live(settings, READ_MODEL)

    attempts = [e.payload for e in await stream_envelopes(settings)
                if e.type == "FollowUpRescheduled"]
    assert [(p["stays"], p["counted"], p["reason"]) for p in attempts] == [
        ("missed", True, "unreachable: attempt 1 of 3: 停机"),
        ("escalated", True, "unreachable: attempt 2 of 3"),
        ("escalated", False, "unreachable: not counted (tried_today): 空号")]
