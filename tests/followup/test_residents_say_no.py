"""A resident's no holds downstream: an erased resident is contacted no more, one who refused
contact gets no outreach (the work owed them becomes a task without contact), whichever of
intake's events reaches follow-up first: consent and erasure travel by resident, case events
by case."""

from __future__ import annotations

import uuid
from typing import Any

from services.followup.application import Plan
from shared.contracts.followup import Reason
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.support import headers, stream_envelopes, wait_until

SUBSIDY = "SA-HARDSHIP-SUBSIDY"


def t(hour: int, minute: int = 0) -> str:
    return at(2026, 3, 2, hour, minute).isoformat()  # Monday 2 March 2026


async def items(center: Center, case_id: uuid.UUID) -> list[dict[str, Any]]:
    r = await center.followup.get("/followups", params={"case_id": str(case_id)})
    return r.json()["items"]


async def until(center: Center, case_id: uuid.UUID, what: str,
                check: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def ok() -> bool:
        nonlocal found
        found = await items(center, case_id)
        return bool(check(found))

    await wait_until(ok, timeout=timeout, what=what)
    return found


def by(found: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    return [f for f in found if f["reason"] == reason]


async def test_an_erased_resident_is_contacted_no_more_and_a_refusal_gets_no_outreach(
        settings: Settings) -> None:
    erased, refuses, later, agrees = (uuid.uuid4() for _ in range(4))
    history = History(CENTER)
    # Registered refusing contact, before any case (the usual order).
    history.consent(refuses, t(9), contact=False, surveys=False, reason="registration")
    cases: dict[uuid.UUID, uuid.UUID] = {}
    obligation = uuid.uuid4()
    for resident in (erased, refuses, later):
        case_id = cases[resident] = history.case(t(9, 10), resident_id=resident)
        history.step(case_id, "DeadlineNoted", t(9, 20), deadline_id=str(uuid.uuid4()),
                     due_on="2026-03-13", description="补交材料")
        history.resolved(case_id, t(9, 30))
    history.step(cases[erased], "ObligationDeclared", t(9, 25), obligation_id=str(obligation),
                 description="每月报销单据", cadence="monthly", next_due_on="2026-03-16")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish_new(settings)
        for resident in (erased, later):  # a reminder and a check each, both contacts
            await until(center, cases[resident], "a reminder and a check",
                        lambda f: len(f) == 2)
        [task] = await until(center, cases[refuses], "the refusing resident's reminder",
                             lambda f: len(f) == 1)
        assert task["reason"] == "deadline_reminder" and task["contact"] is False, (
            "owed work without contact: a task for the clerk")

        async def watched() -> bool:
            r = await center.followup.get(f"/obligations/{obligation}")
            return r.status_code == 200
        await wait_until(watched, what="the obligation watched")

        # The resident is erased; another refuses contact after their follow-ups were
        # planned; a deadline noted on the erased resident's case after the erasure.
        history.erased(erased, t(10))
        history.consent(later, t(10), contact=False, surveys=True)
        history.step(cases[erased], "DeadlineNoted", t(10, 5), deadline_id=str(uuid.uuid4()),
                     due_on="2026-03-20", description="签字")
        marker = history.case(t(10, 10), resident_id=agrees)
        history.step(marker, "DeadlineNoted", t(10, 15), deadline_id=str(uuid.uuid4()),
                     due_on="2026-03-13", description="补交材料")
        await history.publish_new(settings)

        gone = await until(center, cases[erased], "the erased resident's follow-ups cancelled",
                           lambda f: f and all(x["status"] == "cancelled" for x in f))
        assert len(gone) == 2, "nothing new planned after the erasure"
        await until(center, marker, "the marker's reminder", lambda f: len(f) == 1)
        await center.settled()
        assert len(await items(center, cases[erased])) == 2

        async def ended() -> bool:
            r = await center.followup.get(f"/obligations/{obligation}")
            return r.json()["active"] is False
        await wait_until(ended, what="the erased resident's obligation ended")

        refused = await until(
            center, cases[later], "outreach cancelled, the reminder a task",
            lambda f: {(x["reason"], x["status"], x["contact"]) for x in f} == {
                ("post_resolution_check", "cancelled", True),
                ("deadline_reminder", "scheduled", False)})
        assert len(refused) == 2

        # A plan decided before the erasure and written after it (a fan-out batch in flight):
        # the scheduler reads consent again when it falls due, and cancels it instead.
        raced = uuid.uuid4()
        await center.app.state.followups.schedule(Plan(
            follow_up_id=raced, center_id=CENTER, case_id=cases[erased],
            reason=Reason.POLICY_CHANGE, resident_id=erased, due_at=at(2026, 3, 4, 9),
            assigned_clerk=None, assigned_team="followup-desk", source="test:in-flight"))

        # By hand: nothing for the erased resident, no home visit to one who refused.
        for resident, code in ((erased, "resident_erased"), (refuses, "no_consent")):
            r = await center.followup.post("/followups", headers=headers(key()), json={
                "center_id": CENTER, "reason": "home_visit", "resident_id": str(resident),
                "assigned_team": "followup-desk", "due_on": "2026-03-05"})
            assert r.status_code == 409 and r.json()["error"]["code"] == code, r.text

        # A policy change reaches only the resident who may be contacted.
        r = await center.followup.post("/policy-changes", headers=headers(key()), json={
            "center_id": CENTER, "service_items": [SUBSIDY], "summary": "困难补助标准上调",
            "effective_on": "2026-04-01"})
        assert r.status_code == 202, r.text
        policy_id = r.json()["id"]
        await center.settled()
        await center.fanout.once()
        r = await center.followup.get(f"/policy-changes/{policy_id}")
        assert r.json()["residents"] == 1
        await center.settled()
        r = await center.followup.get("/followups", params={"source_id": policy_id})
        assert [f["resident_id"] for f in r.json()["items"]] == [str(agrees)]

        # On 10 March the tasks fall due like any reminder; a task is done without a call.
        tick = await center.scheduler.tick(at(2026, 3, 10, 9))
        # Due: the two tasks, the marker's reminder, and the outreach of 4 March (by now
        # missed and escalated). Nothing of the erased resident's: the one in flight is
        # cancelled instead; no check for the others.
        assert tick.fired == {"FollowUpDue": 4, "FollowUpMissed": 1, "FollowUpEscalated": 1,
                              "FollowUpCancelled": 1}
        await center.settled()  # the worklist shows what the tick wrote (a barrier, no sleep)
        assert (await center.get(str(raced)))["status"] == "cancelled"
        called = await center.followup.post(
            f"/followups/{task['follow_up_id']}/complete", headers=headers(key()),
            json={"outcome": "done", "channel": "phone", "note": "打了电话"})
        assert called.status_code == 409, "no call to a resident who said no"
        done = await center.followup.post(
            f"/followups/{task['follow_up_id']}/complete", headers=headers(key()),
            json={"outcome": "done", "channel": "none", "note": "材料已核对"})
        assert done.status_code == 200, done.text

    envelopes = await stream_envelopes(settings)
    cancelled = [e for e in envelopes if e.type == "FollowUpCancelled"]
    assert sorted(e.payload["reason"] for e in cancelled) == sorted([
        *["the resident's personal data was erased"] * 3,
        "the resident has not agreed to be contacted"])
    assert {e.actor for e in cancelled} == {"system:rules", "system:scheduler"}
    [withdrawn] = [e for e in envelopes if e.type == "FollowUpContactWithdrawn"]
    assert withdrawn.center_id == CENTER and withdrawn.case_id == cases[later]
    [ended_event] = [e for e in envelopes if e.type == "ObligationEnded"]
    assert ended_event.payload["reason"] == "the resident's personal data was erased"


async def test_a_follow_up_planned_by_hand_about_a_case_holds_to_what_its_resident_said(
        settings: Settings) -> None:
    """A follow-up planned by hand may name the case alone (no ``resident_id``). It reaches
    the case's resident all the same, and skipped what they said: outreach to one who refused
    contact was planned as a contact, a reminder on an erased resident's case was planned
    after the erasure, and those planned before it stayed scheduled (their erasure cancels
    only what names them)."""
    erased, refuses = uuid.uuid4(), uuid.uuid4()
    history = History(CENTER)
    history.consent(refuses, t(9), contact=False, surveys=False, reason="registration")
    cases = {r: history.case(t(9, 10), resident_id=r) for r in (erased, refuses)}
    for case_id in cases.values():
        history.step(case_id, "DeadlineNoted", t(9, 20), deadline_id=str(uuid.uuid4()),
                     due_on="2026-03-13", description="补交材料")

    def by_hand(case_id: uuid.UUID, reason: str) -> dict[str, Any]:
        return {"center_id": CENTER, "case_id": str(case_id), "reason": reason,
                "assigned_clerk": "clerk-017", "due_on": "2026-03-05"}

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish_new(settings)
        for case_id in cases.values():  # follow-up knows the cases: their reminders planned
            await until(center, case_id, "the case's reminder", lambda f: len(f) == 1)

        r = await center.followup.post("/followups", headers=headers(key()),
                                       json=by_hand(cases[refuses], "post_resolution_check"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_consent", r.text
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json=by_hand(cases[refuses], "deadline_reminder"))
        assert r.status_code == 201, r.text
        task = (await center.followup.get(f"/followups/{r.json()['id']}",
                                          params={"after": r.json()["position"]})).json()
        assert task["contact"] is False and task["resident_id"] == str(refuses)

        r = await center.followup.post("/followups", headers=headers(key()),
                                       json=by_hand(cases[erased], "deadline_reminder"))
        assert r.status_code == 201, r.text
        before = r.json()["id"]

        async def by_the_old_release() -> uuid.UUID:
            """Planned by hand naming the case alone by an earlier release (no resident)."""
            planned = uuid.uuid4()
            await center.app.state.followups.schedule(Plan(
                follow_up_id=planned, center_id=CENTER, case_id=cases[erased],
                reason=Reason.DEADLINE_REMINDER, resident_id=None, due_at=at(2026, 3, 5, 9),
                assigned_clerk="clerk-017", assigned_team=None, source="api"))
            return planned

        earlier = await by_the_old_release()
        await until(center, cases[erased], "both planned by hand", lambda f: len(f) == 3)

        history.erased(erased, t(10))
        await history.publish_new(settings)
        gone = await until(center, cases[erased], "the erased resident's follow-ups cancelled",
                           lambda f: all(x["status"] == "cancelled" for x in f), timeout=30)
        assert {before, str(earlier)} <= {x["follow_up_id"] for x in gone}
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json=by_hand(cases[erased], "deadline_reminder"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "resident_erased", r.text

        # One such written after the erasure was applied (a request of that release in
        # flight): the scheduler reads the case's resident's consent when it falls due.
        await by_the_old_release()
        await until(center, cases[erased], "the raced one planned", lambda f: len(f) == 4)
        await center.scheduler.tick(at(2026, 3, 5, 10))
        await until(center, cases[erased], "the raced one cancelled, not due",
                    lambda f: all(x["status"] == "cancelled" for x in f))
