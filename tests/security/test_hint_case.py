"""A hint is taken with the case opened for it: that case must be one the caller reaches (their
center's, else a 404 as for a case nobody has), exist (404) and be the hint's resident's (409
``rule_violated``). Otherwise a clerk records on their own center's hint a case of another
center, or of another resident, as the one opened for it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from services.intake.domain import hint_id_for
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, key
from tests.intake.test_hints import MR_53
from tests.support import batch_loads, bearer, error_words, headers, register_resident, running

OTHER = "SH-PD-ZHANGJIANG"
WHEN = at(2026, 3, 2, 9, 0).isoformat()


async def _shown(intake: httpx.AsyncClient, here: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Mr 53, registered here with a special work type (declared with consent), and the
    first hint the counter showed him."""
    resident = await register_resident(intake, id_=MR_53, auth=here)
    r = await intake.put(f"/residents/{resident}/facts", headers={**here, **headers(key())},
                         json={"facts": ["special_work_type"], "consent": True})
    assert r.status_code == 200, r.text
    r = await intake.post(f"/residents/{resident}/hints", headers=here)
    assert r.status_code == 200, r.text
    return resident, r.json()["items"][0]


async def test_a_hint_is_taken_only_with_a_case_of_its_resident_at_the_callers_center(
        settings: Settings) -> None:
    """Another center's case is refused on its first event, as a case nobody has, before the
    command loads it whole beside the hint (it was loaded, then refused by ``Unit.get``)."""
    app = create_intake(settings, clock=ManualClock(at(2026, 3, 2, 9)))
    async with running(app) as intake:
        here = bearer(settings, role=Role.SUPERVISOR, sub="director-01", center=CENTER)
        there = bearer(settings, role=Role.SUPERVISOR, sub="director-09", center=OTHER)
        resident, hint = await _shown(intake, here)

        async def case(center: str, auth: dict[str, str], who: str) -> str:
            r = await intake.post("/cases", headers={**auth, **headers(key())}, json={
                "center_id": center, "counter_id": "window-3",
                "service_item": hint["service_item"], "resident_id": who,
                "occurred_at": WHEN})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        elsewhere = await case(OTHER, there, await register_resident(intake, auth=there))
        neighbour = await case(CENTER, here, await register_resident(intake, auth=here))
        own = await case(CENTER, here, resident)

        async def take(case_id: str) -> tuple[int, str]:
            r = await intake.post(f"/hints/{hint['hint_id']}/taken",
                                  headers={**here, **headers(key())}, json={"case_id": case_id})
            return r.status_code, (r.json().get("error") or {}).get("code", "")

        loaded = batch_loads(app)
        assert await take(elsewhere) == (404, "not_found")  # as for none (was 403)
        assert [ids for ids in loaded if uuid.UUID(elsewhere) in ids] == [], loaded
        assert await take(str(uuid.uuid4())) == (404, "not_found")
        assert await take(neighbour) == (409, "rule_violated")
        assert (await take(own))[0] == 200


async def test_another_center_cannot_tell_which_hints_our_resident_was_shown(
        settings: Settings) -> None:
    """A hint's id is worked out from the center, the resident, the rule and the item
    (``hint_id_for``), so a clerk of another center who knows the resident's opaque id can
    work out the id of each hint our counter may have shown. Taking or dismissing it answered
    403 when our counter had shown it and 404 when not: which eligibility rules fired for the
    resident here, i.e. what they declared of their health and work, without the presence
    grant the hints need. Now a 404 either way, worded as for a hint never shown."""
    async with running(create_intake(settings, clock=ManualClock(at(2026, 3, 2, 9)))) as intake:
        here = bearer(settings, role=Role.CLERK, sub="clerk-017", center=CENTER)
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        resident, hint = await _shown(intake, here)
        worked_out = hint_id_for(CENTER, uuid.UUID(resident), hint["rule_id"],
                                 hint["rule_version"], hint["service_item"])
        assert str(worked_out) == hint["hint_id"], "anyone can work the id out"
        never = str(hint_id_for(CENTER, uuid.UUID(resident), "no-such-rule", 1,
                                hint["service_item"]))

        for verb in ("dismissed", "taken"):
            answers = [await intake.post(f"/hints/{h}/{verb}", json={},
                                         headers={**there, **headers(key())})
                       for h in (hint["hint_id"], never)]
            assert [a.status_code for a in answers] == [404, 404], [a.text for a in answers]
            assert error_words(answers[0].json(), hint["hint_id"]) == error_words(
                answers[1].json(), never)
        again = (await intake.post(f"/residents/{resident}/hints", headers=here)).json()
        assert {h["hint_id"]: h["status"] for h in again["items"]}[hint["hint_id"]] == "shown"
        # Our own clerk still dismisses it.
        r = await intake.post(f"/hints/{hint['hint_id']}/dismissed", json={},
                              headers={**here, **headers(key())})
        assert r.status_code == 200, r.text
