"""Another center learns nothing of the hints our resident was shown.

A hint's id is worked out from the center, the resident, the rule and the item
(``hint_id_for``), so anyone who knows the resident's opaque id (a clerk of another center
with a case of theirs for the resident) can work out the id of each hint our counter may have
shown. Taking or dismissing it answered 403 when our counter had shown it and 404 when not:
which eligibility rules fired for the resident here, i.e. what they declared of their health
and work, without the presence grant the hints themselves need. Now it is a 404 either way,
worded as for a hint nobody was shown, and nothing is recorded."""

from __future__ import annotations

import uuid
from typing import Any

from services.intake.domain import hint_id_for
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, key
from tests.intake.test_hints import MR_53
from tests.support import bearer, headers, register_resident, running

OTHER = "SH-PD-ZHANGJIANG"


def _words(body: dict[str, Any], hint_id: str) -> dict[str, Any]:
    error = body["error"]
    return {"code": error["code"], "message": error["message"].replace(hint_id, "<id>"),
            "details": {k: "<id>" if v == hint_id else v for k, v in error["details"].items()}}


async def test_another_center_cannot_tell_which_hints_our_resident_was_shown(
        settings: Settings) -> None:
    async with running(create_intake(settings, clock=ManualClock(at(2026, 3, 2, 9)))) as intake:
        here = bearer(settings, role=Role.CLERK, sub="clerk-017", center=CENTER)
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        resident = await register_resident(intake, id_=MR_53, auth=here)
        r = await intake.put(f"/residents/{resident}/facts", headers={**here, **headers(key())},
                             json={"facts": ["special_work_type"], "consent": True})
        assert r.status_code == 200, r.text
        shown = (await intake.post(f"/residents/{resident}/hints", headers=here)).json()["items"]
        assert shown, "the special work type's rule fired"
        hint = shown[0]
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
            assert _words(answers[0].json(), hint["hint_id"]) == _words(answers[1].json(),
                                                                         never)
        again = (await intake.post(f"/residents/{resident}/hints", headers=here)).json()
        assert {h["hint_id"]: h["status"] for h in again["items"]}[hint["hint_id"]] == "shown"
        # Our own clerk still dismisses it.
        r = await intake.post(f"/hints/{hint['hint_id']}/dismissed", json={},
                              headers={**here, **headers(key())})
        assert r.status_code == 200, r.text
