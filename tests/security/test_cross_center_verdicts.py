"""Another center's clerk cannot reopen our case by naming it in a follow-up.

The chain this closes: a clerk of another center plans a post-resolution check by hand
(``POST /followups``) with our case's id in ``case_id``, completes it with the verdict
``not_solved``, and intake's verdicts consumer reopens our case (``CaseReopened`` by
``system:verdicts``), withdraws its survey and puts it back on our clerk's worklist. Two
guards, each tested alone: follow-up refuses a case its center does not know (404 worded as
for a case no one has), and intake reopens only a case of the center that heard the verdict.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.intake.main import create_app as create_intake
from shared.bus.consumer import wait_for_position
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, at, center_day, key
from tests.support import bearer, headers, running, wait_until

OTHER = "SH-PD-OTHER"
MONDAY = at(2026, 3, 2, 9)


def _hand_made_check(center: str, case_id: str) -> dict[str, Any]:
    return {"center_id": center, "reason": "post_resolution_check", "case_id": case_id,
            "assigned_clerk": "clerk-900", "due_on": "2026-03-03"}


def _same_words(body: dict[str, Any], case_id: str) -> dict[str, Any]:
    """The error with the case id taken out: what differs is only the id asked about."""
    error = body["error"]
    return {"code": error["code"], "message": error["message"].replace(case_id, "<case>"),
            "details": {k: ("<case>" if v == case_id else v)
                        for k, v in error["details"].items()}}


async def test_another_centers_clerk_cannot_name_our_case_in_a_follow_up(
        settings: Settings) -> None:
    async with center_day(settings, MONDAY) as center:
        case_id = await center.open_case(at(2026, 3, 2, 9, 10))
        resolved = await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
            "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
        # Barrier: follow-up has read the case (so a refusal is not the read model lagging).
        assert await wait_for_position(center.app.state.pool, "followup-rules", "intake",
                                       resolved["position"], 15.0)

        theirs = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-900")
        r = await center.followup.post("/followups", json=_hand_made_check(OTHER, case_id),
                                       headers=headers(key()) | theirs)
        assert r.status_code == 404, r.text
        nobodys = str(uuid.uuid4())
        n = await center.followup.post("/followups", json=_hand_made_check(OTHER, nobodys),
                                       headers=headers(key()) | theirs)
        assert n.status_code == 404, n.text
        assert _same_words(r.json(), case_id) == _same_words(n.json(), nobodys), (
            "another center's case is answered as a case no one has")
        assert r.json()["error"]["code"] == "case_not_found"

        # Our own clerk may still plan a check on our case by hand.
        ours = bearer(settings, role=Role.CLERK, center=CENTER, sub="clerk-017")
        r = await center.followup.post("/followups", json=_hand_made_check(CENTER, case_id)
                                       | {"assigned_clerk": "clerk-017"},
                                       headers=headers(key()) | ours)
        assert r.status_code == 201, r.text


async def test_a_verdict_heard_at_another_center_does_not_reopen_our_case(
        settings: Settings) -> None:
    """Intake's own guard, for a follow-up written before follow-up checked the case (or by
    any other way a verdict's envelope names another center's case)."""
    app = create_intake(settings)
    async with running(app) as intake:
        cases = []
        for _ in range(2):
            r = await intake.post("/cases", headers=headers(key()), json={
                "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
                "service_item": "SA-HARDSHIP-SUBSIDY"})
            assert r.status_code == 201, r.text
            case_id = r.json()["id"]
            for step, body in (("hear", {"words": "想问问补助"}),
                               ("resolve", {"outcome": "resolved", "explanation": "当场办结",
                                            "emotion_defused": True})):
                r = await intake.post(f"/cases/{case_id}/{step}", json=body,
                                      headers=headers(key()))
                assert r.status_code == 200, r.text
            cases.append(case_id)
        ours_by_them, ours_by_us = cases

        said = datetime.now().astimezone().isoformat()
        history = History(CENTER)
        for case_id, center_id in ((ours_by_them, OTHER), (ours_by_us, CENTER)):
            follow_up = uuid.uuid4()
            history.add("followup", "FollowUpCompleted", said, {
                "outcome": "done", "channel": "phone", "note": "", "verdict": "not_solved"},
                case_id=uuid.UUID(case_id), aggregate_id=follow_up, center_id=center_id,
                actor="clerk-900" if center_id == OTHER else "clerk-018")
        await history.publish(settings)
        # Barrier: the verdicts consumer has applied both (the second after the first).
        assert await wait_for_position(app.state.pool, "intake-verdicts", "followup", 2, 15.0)

        async def status(case_id: str) -> str:
            r = await intake.get(f"/cases/{case_id}")
            return str(r.json()["status"])

        await wait_until(lambda: _is(status(ours_by_us), "open"),
                         what="our own verdict reopening our case")
        assert await status(ours_by_them) == "resolved", (
            "another center's verdict reopened our case")


async def _is(found: Any, expected: str) -> bool:
    return await found == expected
