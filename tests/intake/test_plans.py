"""Linked plans: the seed's cancer case, end to end over HTTP. An unemployed resident with
cancer is helped across three items and two months; his wife later applies for him; each step
gets its follow-up reminder on the working-day calendar; the plan shows on every case it links
and survives a rebuild of its read model from the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from services.intake.plan_views import READ_MODEL
from shared.analytics.rebuild import Rebuild
from shared.analytics.replay import Replay
from shared.cli.cancer_story import ITEMS, the_family_applies, the_patient_comes
from shared.settings import Settings
from tests.followup.story import CENTER, DECEMBER_20, at, center_day, key
from tests.support import headers, register_resident, stream_envelopes, wait_until


async def case_read(client: httpx.AsyncClient, case_id: str, after: int = 0) -> dict[str, Any]:
    r = await client.get(f"/cases/{case_id}", params={"after": after})
    assert r.status_code == 200, r.text
    return r.json()


async def plan_follow_ups(center: Any, resident: str, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        r = await center.followup.get("/followups", params={"resident_id": resident})
        found = [f for f in r.json()["items"] if f["reason"] == "plan_step"]
        return len(found) >= n

    await wait_until(check, what="the plan steps' reminders")
    return sorted(found, key=lambda f: (f["due_at"], f["service_item"]))


async def test_the_cancer_plan_across_three_items_and_two_months(settings: Settings) -> None:
    """Monday 2 March 2026: the plan's steps take effect on 1 April (two steps) and 1 May
    (the subsidy, after the benefit's last month). Reminders: three working days before,
    at office opening: Friday 27 March (31st, 30th, 27th) and Monday 27 April (1 May is Labour
    Day, so the step is reached on Thursday 30 April, the last working day before it: 29th,
    28th, 27th; the 25th and 26th are a plain weekend)."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        story = await the_patient_comes(center.intake, at(2026, 3, 2, 9, 20), CENTER)
        assert story.months == (datetime(2026, 4, 1).date(), datetime(2026, 5, 1).date())

        reminders = await plan_follow_ups(center, story.patient, 3)
        assert [(datetime.fromisoformat(f["due_at"]), f["service_item"], f["case_id"])
                for f in reminders] == [
            (at(2026, 3, 27, 9), ITEMS[0], story.suspension_case),
            (at(2026, 3, 27, 9), ITEMS[1], story.benefit_case),
            (at(2026, 4, 27, 9), ITEMS[2], None)]
        assert all(f["status"] == "scheduled" and f["assigned_clerk"] for f in reminders)

        # The plan shows on each linked case, its steps in order, with the items' names.
        for case_id in (story.suspension_case, story.benefit_case):
            read = await case_read(center.intake, case_id, story.last_position)
            [plan] = read["plans"]
            assert plan["plan_id"] == story.plan_id and plan["resident_id"] == story.patient
            assert [(s["seq"], s["service_item"], s["effective_on"], s["timing"],
                     s["depends_on"]) for s in plan["steps"]] == [
                (1, ITEMS[0], "2026-04-01", "month", None),
                (2, ITEMS[1], "2026-04-01", "month", None),
                (3, ITEMS[2], "2026-05-01", "month", 2)]
            assert plan["steps"][2]["name_zh"] == "城乡居民医保医疗费用补助申领"
            assert plan["title"].endswith("医疗费用补助由家人代办"), "free text kept as said"
            assert [s["case_status"] for s in plan["steps"]] == ["open", "open", None]
            assert read["acting_for"] is None and read["applicant_id"] == story.patient

        # Friday 24 April: his wife comes and applies for him; her case carries step 3.
        center.clock.set(at(2026, 4, 24, 10))
        await the_family_applies(center.intake, story, at(2026, 4, 24, 10, 5), CENTER)
        assert story.subsidy_case is not None
        subsidy = await case_read(center.intake, story.subsidy_case, story.last_position)
        assert subsidy["resident_id"] == story.patient
        assert subsidy["applicant_id"] == story.wife
        assert subsidy["acting_for"] == {"applicant_id": story.wife,
                                         "beneficiary_id": story.patient,
                                         "relation": "spouse",
                                         "proof_seen": "marriage_certificate"}
        [plan] = subsidy["plans"]
        assert [s["case_id"] for s in plan["steps"]] == [
            story.suspension_case, story.benefit_case, story.subsidy_case]
        assert [s["case_status"] for s in plan["steps"]] == ["open"] * 3
        # Each step's own follow-up is found by the step (its source).
        r = await center.followup.get("/followups", params={
            "source_id": plan["steps"][2]["step_id"]})
        [own] = r.json()["items"]
        assert own["reason"] == "plan_step" and own["service_item"] == ITEMS[2]

        # Its reminder is the subsidy case's from the link on: the worklist names the case
        # (until rulesrace48 its row had none, and a case's follow-ups did not list it).
        async def the_cases() -> bool:
            r = await center.followup.get("/followups", params={
                "case_id": story.subsidy_case})
            return [f["follow_up_id"] for f in r.json()["items"]
                    if f["reason"] == "plan_step"] == [own["follow_up_id"]]
        await wait_until(the_cases, what="the linked step's reminder listed with its case")
        r = await center.followup.get("/followups", params={
            "source_id": plan["steps"][2]["step_id"]})
        assert [f["case_id"] for f in r.json()["items"]] == [story.subsidy_case]

        # The reminders fire on their working days, not before.
        assert (await center.scheduler.tick(at(2026, 4, 27, 8, 59))).fired.get(
            "FollowUpDue", 0) == 2, "the two April steps are due since 27 March"
        assert (await center.scheduler.tick(at(2026, 4, 27, 9))).fired == {"FollowUpDue": 1}

        # On the bus: opaque ids only; the relation and the proof stay in the vault.
        envelopes = await stream_envelopes(settings)
        plan_events = [e for e in envelopes if e.type.startswith("Plan")]
        assert [e.type for e in plan_events] == ["PlanDrawnUp", *["PlanStepAdded"] * 3,
                                                 "PlanCaseLinked"]
        assert all(e.case_id is None and str(e.aggregate_id) == story.plan_id
                   for e in plan_events)
        [opened] = [e for e in envelopes if e.type == "CaseOpened"
                    and str(e.case_id) == story.subsidy_case]
        assert opened.payload["applicant_id"] == story.wife
        assert "spouse" not in str([e.payload for e in envelopes])
        assert "marriage" not in str([e.payload for e in envelopes])


async def test_a_plan_refuses_a_case_of_another_beneficiary_or_center(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        story = await the_patient_comes(center.intake, at(2026, 3, 2, 9, 20), CENTER)
        stranger = await center.open_case(at(2026, 3, 2, 9, 30), item=ITEMS[2])
        r = await center.intake.post(f"/plans/{story.plan_id}/links", headers=headers(key()),
                                     json={"step": 3, "case_id": stranger})
        assert r.status_code == 409 and "rule_violated" in r.text, r.text
        assert "plan_beneficiary" in r.text, r.text
        # A step that waits for a later one, and an item not in the catalogue: 422.
        for step, field in (({"depends_on": 5}, "depends_on"),
                            ({"service_item": "XX-NOT-THERE"}, "service_item")):
            body = {"service_item": ITEMS[2], "effective_on": "2026-06-01", "what": "复查",
                    **step}
            r = await center.intake.post(f"/plans/{story.plan_id}/steps",
                                         headers=headers(key()), json=body)
            assert r.status_code == 422 and field in r.text, r.text
        # Another center's clerk reaches neither the plan nor its steps. The plan is read from
        # its view: once its own center sees it (a barrier: under load the view lagged, and the
        # other center's 404 "not found" was the view's, not the refusal asked about).
        async def in_its_view() -> bool:
            return (await center.intake.get(f"/plans/{story.plan_id}")).status_code == 200
        await wait_until(in_its_view, what="the plan in its view")
        other = {"Authorization": "Bearer " + _token(settings, "SH-PD-LUJIAZUI")}
        r = await center.intake.get(f"/plans/{story.plan_id}", headers=other)
        assert r.status_code == 404, r.text  # another center's: as for none
        r = await center.intake.post(f"/plans/{story.plan_id}/steps", headers={
            **other, **headers(key())}, json={"service_item": ITEMS[2],
                                              "effective_on": "2026-06-01", "what": "复查"})
        assert r.status_code == 404, r.text
        r = await center.intake.post("/plans", headers={**other, **headers(key())}, json={
            "center_id": "SH-PD-LUJIAZUI", "counter_id": "window-1",
            "resident_id": story.patient, "title": "x",
            "steps": [{"service_item": ITEMS[2], "effective_on": "2026-06-01",
                       "what": "复查"}]})
        assert r.status_code == 404, "another center needs a presence grant for him"
        # A plan drawn up at this center cannot name another center's case either.
        r = await center.intake.post("/plans", headers={**other, **headers(key())}, json={
            "center_id": "SH-PD-LUJIAZUI", "counter_id": "window-1",
            "resident_id": await register_resident(center.intake, auth=other),
            "title": "x", "steps": [{"service_item": ITEMS[0], "effective_on": "2026-06-01",
                                     "case_id": story.suspension_case, "what": "复查"}]})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found"), r.text


async def test_the_plans_read_model_waits_for_plan_events_only(settings: Settings) -> None:
    """intake-plans takes the plan events alone (a tracking row and an ack for every case
    event changed nothing in its tables); ``?after=`` on a plan still waits for every plan
    event at or before the position, and a position no write has had is still a 400."""
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        story = await the_patient_comes(center.intake, at(2026, 3, 2, 9, 20), CENTER)
        r = await center.intake.get(f"/plans/{story.plan_id}",
                                    params={"after": story.last_position})
        assert r.status_code == 200 and len(r.json()["steps"]) == 3, r.text
        # Read-your-writes right after a step is added: the wait is for that plan event.
        added = await center.intake.post(f"/plans/{story.plan_id}/steps", headers=headers(key()),
                                         json={"service_item": ITEMS[2], "what": "复查",
                                               "effective_on": "2026-06-01"})
        assert added.status_code == 200, added.text
        r = await center.intake.get(f"/plans/{story.plan_id}",
                                    params={"after": added.json()["position"]})
        assert r.status_code == 200 and len(r.json()["steps"]) == 4, r.text
        # A case write after it: nothing of the plans' to wait for, the case read waits on.
        case = await center.open_case(at(2026, 3, 2, 10), item=ITEMS[2])
        written = await center.step(case, "concerns", {"needs": ["x"], "emotion": "calm"})
        r = await center.intake.get(f"/plans/{story.plan_id}",
                                    params={"after": written["position"]})
        assert r.status_code == 200 and len(r.json()["steps"]) == 4, r.text
        read = await case_read(center.intake, case, written["position"])
        assert read["version"] == written["version"]
        r = await center.intake.get(f"/plans/{story.plan_id}",
                                    params={"after": written["position"] + 1000})
        assert r.status_code == 400 and "position_unknown" in r.text, r.text
        # The durable's subjects are the plan events', and it tracked the plan alone.
        conn = await asyncpg.connect(settings.database_url)
        try:
            keys = await conn.fetch(
                f'SELECT key FROM "{settings.schema_for("intake")}".consumer_tracking'
                " WHERE consumer = 'intake-plans'")
        finally:
            await conn.close()
        assert [r["key"] for r in keys] == [uuid.UUID(story.plan_id)]


def _token(settings: Settings, center: str) -> str:
    from tests.support import token_for
    return token_for(settings, "clerk", center)


async def test_plans_survive_a_rebuild_from_the_log(settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        story = await the_patient_comes(center.intake, at(2026, 3, 2, 9, 20), CENTER)
        await the_family_applies(center.intake, story, at(2026, 3, 2, 11), CENTER)
        before = await case_read(center.intake, story.benefit_case, story.last_position)
        async with Rebuild(settings, READ_MODEL, batch_size=2) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same, diff
            assert {t.table: t.rebuilt_rows for t in diff.tables} == {"plans": 1,
                                                                      "plan_steps": 3}
            await rb.discard()
        # The live tables wiped by a bug come back from the log.
        conn = await asyncpg.connect(settings.database_url)
        try:
            schema = settings.schema_for("intake")
            await conn.execute(f'DELETE FROM "{schema}".plan_steps WHERE plan_id = $1',
                               uuid.UUID(story.plan_id))
        finally:
            await conn.close()
        async with Rebuild(settings, READ_MODEL) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            diff = await rb.diff()
            assert {t.table: t.only_rebuilt for t in diff.tables}["plan_steps"] == 3
            await rb.switch()
        after = await case_read(center.intake, story.benefit_case)
        assert after["plans"] == before["plans"]

        # An analyst's replay reads the plan's events back, decoded, in order.
        replayed = []
        async with Replay(settings, batch_size=4) as replay:
            async for batch in replay:
                replayed += [e for e in batch.events if e.type.startswith("Plan")]
        assert [e.type for e in replayed] == ["PlanDrawnUp", *["PlanStepAdded"] * 3,
                                              "PlanCaseLinked"]
        assert [e.payload.get("seq") for e in replayed[1:4]] == [1, 2, 3]
        assert replayed[-1].payload["case_id"] == story.subsidy_case


async def test_a_plan_drawn_up_on_20_december_reaches_into_a_provisional_year(
        settings: Settings) -> None:
    """Sunday 20 December 2026, the last year with an official schedule: the steps take effect
    on 1 January 2027 (New Year's Day, a statutory holiday) and 1 February 2027. 2027 has no
    official schedule yet, so both reminders are provisional (weekends and statutory holidays
    only). 1 January is reached on Thursday 31 December: three working days before is Monday
    28 December (30th, 29th, 28th). 1 February 2027 is a Monday: Wednesday 27 January (29th,
    28th, 27th)."""
    async with center_day(settings, DECEMBER_20) as center:
        story = await the_patient_comes(center.intake, at(2026, 12, 20, 10, 5), CENTER)
        reminders = await plan_follow_ups(center, story.patient, 3)
        assert [(datetime.fromisoformat(f["due_at"]), f["service_item"], f["basis"])
                for f in reminders] == [
            (at(2026, 12, 28, 9), ITEMS[0], "provisional"),
            (at(2026, 12, 28, 9), ITEMS[1], "provisional"),
            (at(2027, 1, 27, 9), ITEMS[2], "provisional")]


async def _present_elsewhere(center: Any, settings: Settings, when: datetime
                             ) -> tuple[Any, dict[str, str]]:
    """The patient comes to our center at ``when``; Lujiazui's clerk then types his ID number
    at their window (a presence grant): the story, and that clerk's headers."""
    from shared.cli.demo import demo_residents

    story = await the_patient_comes(center.intake, when, CENTER)
    other = {"Authorization": "Bearer " + _token(settings, "SH-PD-LUJIAZUI")}
    patient = demo_residents(9020, 2)[0]
    found = await center.intake.post("/residents/lookup", headers=other, json={
        "id_number": patient.id_number, "purpose": "city-wide service"})
    assert found.status_code == 200 and found.json()["resident_id"] == story.patient
    return story, other


async def test_a_plan_drawn_up_under_a_presence_grant_is_answered_again_after_it_ends(
        settings: Settings) -> None:
    """Another center serves the patient on a presence grant (his ID number typed at the
    window). A retry of the same drawing-up after the grant ended answers as the first did;
    a new plan is refused."""
    from datetime import timedelta

    async with center_day(settings, at(2026, 3, 2, 9)) as center:
        story, other = await _present_elsewhere(center, settings, at(2026, 3, 2, 9, 20))
        body = {"center_id": "SH-PD-LUJIAZUI", "counter_id": "window-1",
                "resident_id": story.patient, "title": "复查安排",
                "steps": [{"service_item": ITEMS[2], "effective_on": "2026-06-01",
                           "what": "复查后报销"}]}
        first = await center.intake.post("/plans", headers={**other, **headers("plan-lj-0001")},
                                         json=body)
        assert first.status_code == 201, first.text
        center.clock.advance(timedelta(minutes=31))
        again = await center.intake.post("/plans", headers={**other, **headers("plan-lj-0001")},
                                         json=body)
        assert again.status_code in (200, 201) and again.json()["replayed"], again.text
        assert again.json()["id"] == first.json()["id"]
        new = await center.intake.post("/plans", headers={**other, **headers("plan-lj-0002")},
                                       json=body)
        assert new.status_code == 404, new.text  # no standing left: as for nobody


async def test_a_plans_steps_are_dated_within_the_window_every_day_is(
        settings: Settings) -> None:
    """A plan's steps are dated as any day a command gives is: from OCCURRED_AT_EARLIEST to
    DATES_HORIZON_DAYS ahead, the horizon's last day the center's (Shanghai's) day. Before,
    a step added later was checked and one drawn up with the plan was not: the year 1 was
    recorded (outside the contracts' Day, 1970-2199), and 2199 too.
    On the calendar's edges: Sunday 20 December 2026, 31 December 23:30 in Shanghai (15:30
    UTC), a provisional 2027 and 2028, a year the holiday package does not know."""
    from datetime import date, timedelta

    from services.intake.main import create_app as create_intake
    from shared.kernel.clock import ManualClock
    from tests.support import running

    horizon = timedelta(days=settings.dates_horizon_days)
    for now in (DECEMBER_20, at(2026, 12, 31, 23, 30), at(2027, 6, 1, 10), at(2028, 3, 1, 10)):
        async with running(create_intake(settings, clock=ManualClock(now))) as intake:
            resident = await register_resident(intake)
            last = (now + horizon).date()  # ``at`` is Shanghai's time: the center's day

            async def draw_up(day: date, resident: str = resident,
                              today: date = now.date()) -> httpx.Response:
                return await intake.post("/plans", headers=headers(key()), json={
                    "center_id": CENTER, "counter_id": "window-1", "resident_id": resident,
                    "title": "化疗期间的安排", "steps": [
                        {"service_item": ITEMS[0], "effective_on": today.isoformat(),
                         "what": "暂停缴费"},
                        {"service_item": ITEMS[1], "effective_on": day.isoformat(),
                         "what": "复查"}]})

            for day in (date(1, 1, 1), date(1999, 12, 31), last + timedelta(days=1),
                        date(2199, 12, 31)):
                r = await draw_up(day)
                assert r.status_code == 422, (now, day, r.text)
                assert r.json()["error"]["details"]["field"] == "steps[1].effective_on", r.text
            r = await draw_up(last)
            assert r.status_code == 201, (now, r.text)


async def test_a_plan_sent_with_a_stale_clock_under_a_presence_grant_leaves_no_admission(
        settings: Settings) -> None:
    """Another center's clerk draws up a plan for the patient on a presence grant, from a
    tablet whose ``sent_at`` is ten minutes behind, under a new key: a 422 ``sent_at``, and
    the vault's audit trail holds no admission for a plan nobody drew up (since the sent_at
    refusal waited for the key's look-up in the group commit, the vault was asked first and
    audited "admitted" at both centers). The same bytes again under the key of a plan drawn
    up still replay it. On the calendar's edge: 31 December 23:30 in Shanghai."""
    from datetime import timedelta

    async with center_day(settings, at(2026, 12, 31, 23, 30),
                          occurred_at_max_future_s=300.0) as center:
        story, other = await _present_elsewhere(center, settings, at(2026, 12, 31, 23, 35))
        pool = center.intake._transport.app.state.pool  # type: ignore[attr-defined]
        sent = center.clock.now()
        body = {"center_id": "SH-PD-LUJIAZUI", "counter_id": "window-1",
                "resident_id": story.patient, "title": "复查安排", "sent_at": sent.isoformat(),
                "steps": [{"service_item": ITEMS[2], "effective_on": "2027-06-01",
                           "what": "复查后报销"}]}
        first = await center.intake.post("/plans", headers={**other, **headers("plan-sk-1")},
                                         json=body)
        assert first.status_code == 201, first.text

        center.clock.advance(timedelta(minutes=10))  # 1 January 2027: the tablet's clock lags
        trail = await pool.fetchval("SELECT count(*) FROM personal_data_audit")
        stale = await center.intake.post("/plans", headers={**other, **headers("plan-sk-2")},
                                         json=body)
        assert stale.status_code == 422, stale.text
        assert stale.json()["error"]["details"]["field"] == "sent_at"
        assert await pool.fetchval("SELECT count(*) FROM personal_data_audit") == trail, \
            "no admission audited for a plan refused"
        again = await center.intake.post("/plans", headers={**other, **headers("plan-sk-1")},
                                         json=body)
        assert again.status_code in (200, 201) and again.json()["replayed"], again.text
        assert again.json()["id"] == first.json()["id"]
    drawn = [e for e in await stream_envelopes(settings) if e.type == "PlanDrawnUp"]
    assert [str(e.aggregate_id) for e in drawn if str(e.center_id) == "SH-PD-LUJIAZUI"] == [
        first.json()["id"]], "the stale one recorded nothing"
