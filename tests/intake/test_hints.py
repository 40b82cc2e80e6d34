"""Eligibility hints, the seed's story: a 53-year-old registering as unemployed declares a
special work type; the counter tells him he may retire early and draw unemployment benefit
until then. All over HTTP, through the real services and the stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.intake.idnumber import check_character
from services.intake.main import create_app as create_intake
from shared.analytics.replay import Replay, Selection
from shared.bus.consumer import wait_for_position
from shared.catalogue.eligibility import RulesError
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.support import bearer, headers, register_resident, running, stream_envelopes, wait_until

MONDAY = at(2026, 3, 2, 9)


def born(day: str, sequence: str = "013") -> str:
    """A valid ID number of a man born on ``day`` (YYYYMMDD): the 17th digit is odd."""
    first17 = f"310115{day}{sequence}"
    return first17 + check_character(first17)


MR_53 = born("19720510")  # 53 on 2 March 2026


async def test_a_53_year_old_with_a_special_work_type_is_shown_hints_and_takes_one(
        settings: Settings) -> None:
    async with center_day(settings, MONDAY) as center:
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        resident = await register_resident(center.intake, id_=MR_53)

        # Nothing declared yet: at 53 no rule fires.
        r = await center.intake.post(f"/residents/{resident}/hints", headers=clerk)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []

        # He declares his special work type, and agrees to have it kept.
        refused = await center.intake.put(f"/residents/{resident}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["special_work_type"], "consent": False})
        assert refused.status_code == 422, "kept only with consent"
        unknown = await center.intake.put(f"/residents/{resident}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["owns_a_boat"], "consent": True})
        assert unknown.status_code == 422 and "owns_a_boat" in unknown.text
        r = await center.intake.put(f"/residents/{resident}/facts", headers={
            **clerk, **headers(key())}, json={"facts": ["special_work_type"], "consent": True})
        assert r.status_code == 200, r.text

        r = await center.intake.post(f"/residents/{resident}/hints", headers=clerk)
        assert r.status_code == 200, r.text
        hints = {h["service_item"]: h for h in r.json()["items"]}
        assert set(hints) == {"PEN-EARLY-RETIREMENT-SPECIAL-WORK", "SI-UNEMPLOYMENT-BENEFIT"}
        early = hints["PEN-EARLY-RETIREMENT-SPECIAL-WORK"]
        assert early["because"] == {"zh": "53岁，从事特殊工种",
                                    "en": "age 53, special work type declared"}
        assert early["rule_id"] == "special-work-early-retirement" and early["rule_version"] == 1
        assert "国发〔1978〕104号" in early["policy_basis"]["zh"]
        assert early["status"] == "shown"

        # He takes up early retirement (a case is opened for it) and leaves the benefit.
        case_id = await center.open_case(at(2026, 3, 2, 9, 20), UUID(resident),
                                         item="PEN-EARLY-RETIREMENT-SPECIAL-WORK")
        taken = await center.intake.post(f"/hints/{early['hint_id']}/taken", headers={
            **clerk, **headers(key())}, json={"case_id": case_id})
        assert taken.status_code == 200, taken.text
        benefit = hints["SI-UNEMPLOYMENT-BENEFIT"]
        dismissed = await center.intake.post(f"/hints/{benefit['hint_id']}/dismissed",
                                              headers={**clerk, **headers(key())}, json={})
        assert dismissed.status_code == 200, dismissed.text
        again = await center.intake.post(f"/hints/{benefit['hint_id']}/taken",
                                          headers={**clerk, **headers(key())}, json={})
        assert again.status_code == 409, "a decided hint stays decided"

        # Another center's clerk, without his ID number typed, reaches neither.
        other = bearer(settings, role=Role.CLERK, sub="clerk-900", center="SH-PD-ZHANGJIANG")
        r = await center.intake.post(f"/residents/{resident}/hints", headers=other)
        assert r.status_code == 404, r.text  # as for a resident nobody has
        r = await center.intake.post(f"/hints/{benefit['hint_id']}/dismissed",
                                     headers={**other, **headers(key())}, json={})
        assert r.status_code == 404, r.text  # as for a hint never shown: test_hint_case.py

        # A policy change on the benefit reaches him: it was shown to him, though no case of
        # his is about it.
        last = dismissed.json()["position"]
        assert await wait_for_position(center.app.state.pool, "followup-rules", "intake",
                                       last, 10.0)
        r = await center.followup.post("/policy-changes", headers=headers(key()), json={
            "center_id": CENTER, "service_items": ["SI-UNEMPLOYMENT-BENEFIT"],
            "summary": "失业保险金标准上调", "effective_on": "2026-04-01"})
        assert r.status_code == 202, r.text
        r = await center.followup.get(f"/policy-changes/{r.json()['id']}",
                                      params={"after": r.json()["position"]})
        assert r.status_code == 200, r.text
        await center.fanout.once()

        async def reached() -> bool:
            found = (await center.followup.get("/followups", params={
                "resident_id": resident})).json()["items"]
            return any(f["reason"] == "policy_change" for f in found)

        await wait_until(reached, what="the policy outreach to the resident shown the hint")

    # After a restart (nothing cached: the hints are read back from the log), the counter
    # shows what came of each.
    app = create_intake(settings.model_copy(update={"occurred_at_max_future_s": 86_400.0}))
    async with running(app, role=Role.CLERK) as intake:
        r = await intake.post(f"/residents/{resident}/hints")
        assert r.status_code == 200, r.text
        assert {h["service_item"]: h["status"] for h in r.json()["items"]} == {
            "SI-UNEMPLOYMENT-BENEFIT": "dismissed"}, "the item of his case is not suggested again"

    envelopes = await stream_envelopes(settings)
    hinted = [e for e in envelopes if e.type.startswith("Hint")]
    assert sorted(e.type for e in hinted) == ["HintDismissed", "HintShown", "HintShown",
                                              "HintTaken"], "shown once, however often asked"
    for e in hinted:
        assert set(e.payload) <= {"resident_id", "rule_id", "rule_version", "service_item",
                                  "case_id"}
        assert e.payload["resident_id"] == resident and e.case_id is None
        assert e.center_id == CENTER and e.actor == "clerk-017"
    [took] = [e for e in hinted if e.type == "HintTaken"]
    assert took.payload["case_id"] == case_id
    no_personal_data(envelopes, MR_53)

    # The analysts' replay reads them back, each through its contract.
    selection = Selection(types=("HintShown", "HintTaken", "HintDismissed"))
    replayed = []
    async with Replay(settings, selection) as replay:
        async for batch in replay:
            replayed += [e.type for e in batch.events]
    assert sorted(replayed) == ["HintDismissed", "HintShown", "HintShown", "HintTaken"]


def no_personal_data(envelopes: list[Any], id_number: str) -> None:
    """Neither the ID number, nor the birth date in it, nor an age is on the bus."""
    text = json.dumps([e.model_dump(mode="json") for e in envelopes], ensure_ascii=False)
    for needle in (id_number, id_number[6:14], "王秀英", "13912345678", "special_work_type",
                   "lives_alone", "53岁", "age 53"):
        assert needle not in text, needle


async def test_declared_facts_are_sealed_audited_and_erased_with_the_resident(
        settings: Settings) -> None:
    app = create_intake(settings)
    async with running(app) as intake:  # a supervisor of the center
        resident = await register_resident(intake, id_=born("19400102", "015"))
        r = await intake.put(f"/residents/{resident}/facts", headers=headers(key()),
                             json={"facts": ["lives_alone", "chronic_illness"], "consent": True})
        assert r.status_code == 200, r.text
        pool = app.state.pool
        row = await pool.fetchrow("SELECT facts, more_care FROM residents"
                                  " WHERE resident_id = $1", UUID(resident))
        assert row["more_care"] is True, "the log was told: lives alone, and 86"
        assert b"lives_alone" not in row["facts"], "sealed, not in clear"
        r = await intake.post(f"/residents/{resident}/hints")
        items = {h["service_item"] for h in r.json()["items"]}
        assert {"EC-LIVING-ALONE-CARE-VISIT", "MI-CHRONIC-DISEASE",
                "EC-CARE-NEEDS-ASSESSMENT"} <= items
        trail = (await intake.get("/audit", params={"resident_id": resident})).json()["items"]
        assert [(e["action"], e["fields"], e["purpose"]) for e in trail
                if e["purpose"] == "eligibility hints"] == [
            ("read", ["id_number", "facts"], "eligibility hints")]

        assert (await intake.delete(f"/residents/{resident}")).status_code == 200
        row = await pool.fetchrow("SELECT facts, more_care FROM residents"
                                  " WHERE resident_id = $1", UUID(resident))
        assert (row["facts"], row["more_care"]) == (None, None)
        r = await intake.post(f"/residents/{resident}/hints")
        assert r.status_code == 410, r.text


async def test_a_resident_who_turned_80_is_told_to_need_more_care_at_the_next_lookup(
        settings: Settings) -> None:
    clock = ManualClock(at(2026, 3, 2, 9))
    app = create_intake(settings, clock=clock)
    async with running(app) as intake:
        resident = await register_resident(intake, id_=born("19460310", "017"))  # 79 today
        assert (await intake.post(f"/residents/{resident}/hints")).status_code == 200
        clock.set(at(2026, 3, 10, 9))  # her 80th birthday
        r = await intake.post(f"/residents/{resident}/hints")
        assert "EC-CARE-NEEDS-ASSESSMENT" in {h["service_item"] for h in r.json()["items"]}

        async def told() -> bool:
            return any(e.type == "CareNeedChanged" and e.payload["resident_id"] == resident
                       for e in await stream_envelopes(settings))

        await wait_until(told, what="CareNeedChanged on the stream")
    [care] = [e for e in await stream_envelopes(settings) if e.type == "CareNeedChanged"]
    assert care.payload == {"resident_id": resident, "more_care": True}
    assert care.occurred_at == at(2026, 3, 10, 9)


def test_intake_refuses_to_start_on_a_bad_rules_file_naming_it_and_the_rule(
        settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "center-rules.json"
    bad.write_text(json.dumps({"rules": [{
        "id": "boat-owners", "version": 1, "when": {"facts": ["owns_a_boat"]},
        "suggest": ["SA-HARDSHIP-SUBSIDY"], "reason": {"zh": "有船", "en": "a boat"}}]}),
        encoding="utf-8")
    with pytest.raises(RulesError, match=r"center-rules\.json: rule #1 \(boat-owners\): "
                                         r"unknown fact 'owns_a_boat'"):
        create_intake(settings.model_copy(update={"eligibility_rules_paths": [bad]}))
