"""A follow-up planned by hand names only a resident its center knows: another center's
resident is a 404, said exactly as for an id no one knows, so that whether another center's
resident was erased or refused contact cannot be learnt by trying ids (before: 409
``resident_erased`` / ``no_consent``)."""

from __future__ import annotations

import uuid
from typing import Any

from services.followup.known_residents import applicants, pairs
from shared.bus.consumer import wait_for_position
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, at, center_day, key
from tests.support import headers, wait_until

OTHER = "SH-PD-ZHANGJIANG"


def t(hour: int, minute: int = 0) -> str:
    return at(2026, 3, 2, hour, minute).isoformat()  # Monday 2 March 2026


def visit(resident: uuid.UUID, center: str = CENTER) -> dict[str, Any]:
    return {"center_id": center, "reason": "home_visit", "resident_id": str(resident),
            "assigned_team": "followup-desk", "due_on": "2026-03-05"}


async def test_another_centers_resident_is_not_found_whatever_they_agreed_to(
        settings: Settings) -> None:
    theirs_erased, theirs_refusing, theirs_with_case = (uuid.uuid4() for _ in range(3))
    registered_here, applied_here, hinted_here, ours_refusing = (
        uuid.uuid4() for _ in range(4))
    nobody = uuid.uuid4()
    history = History(CENTER)
    # Another center's residents: one erased, one refusing contact, one with a case there.
    for resident, contact in ((theirs_erased, True), (theirs_refusing, False)):
        history.add("intake", "ConsentChanged", t(9), {
            "resident_id": str(resident), "contact": contact, "surveys": contact,
            "reason": "registration"}, case_id=None, aggregate_id=resident, center_id=OTHER)
    history.add("intake", "ResidentErased", t(9, 5), {"resident_id": str(theirs_erased)},
                case_id=None, aggregate_id=theirs_erased, center_id=OTHER)
    history.case(t(9, 10), resident_id=theirs_with_case, center_id=OTHER)
    # This center's: registered, the applicant of a case for someone else (代办), shown a
    # hint, and one who refused contact (their own center is told so).
    history.consent(registered_here, t(9), contact=True, surveys=True, reason="registration")
    case_id = uuid.uuid4()
    history.add("intake", "CaseOpened", t(9, 20), {
        "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": str(uuid.uuid4()), "applicant_id": str(applied_here)},
        case_id=case_id, actor="clerk-017")
    history.add("intake", "HintShown", t(9, 30), {
        "resident_id": str(hinted_here), "rule_id": "R-UNEMPLOYMENT", "rule_version": 1,
        "service_item": "SI-UNEMPLOYMENT-BENEFIT"}, case_id=None, aggregate_id=uuid.uuid4())
    last = history.consent(ours_refusing, t(9, 40), contact=False, surveys=False,
                           reason="registration")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish(settings)
        assert await wait_for_position(center.app.state.pool, "followup-residents", "intake",
                                       last.position, 20.0)
        assert await wait_for_position(center.app.state.pool, "followup-rules", "intake",
                                       last.position, 20.0)

        bodies = set()
        for resident in (theirs_erased, theirs_refusing, theirs_with_case, nobody):
            r = await center.followup.post("/followups", headers=headers(key()),
                                           json=visit(resident))
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "resident_not_found", r.text
            bodies.add(r.text.replace(str(resident), "<id>"))
        assert len(bodies) == 1, f"word for word the same but for the id: {bodies}"

        for resident in (registered_here, applied_here, hinted_here):
            r = await center.followup.post("/followups", headers=headers(key()),
                                           json=visit(resident))
            assert r.status_code == 201, r.text
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json=visit(ours_refusing))
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_consent", r.text


def test_a_case_makes_its_resident_and_its_applicant_known_at_its_center() -> None:
    history = History(CENTER)
    resident, applicant = uuid.uuid4(), uuid.uuid4()
    history.add("intake", "CaseOpened", t(9), {
        "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": str(resident), "applicant_id": str(applicant)},
        case_id=uuid.uuid4(), actor="clerk-017")
    history.case(t(9, 5), resident_id=None)  # no one named: nothing known
    history.case(t(9, 10), resident_id=resident, center_id=OTHER)
    history.erased(resident, t(9, 20))  # erasure makes no one known, and unknown no one
    assert pairs(history.envelopes) == [(resident, CENTER), (applicant, CENTER),
                                        (resident, OTHER)]
    # who applied for another (代办) is kept per case; one who came for themselves is not
    assert applicants(history.envelopes) == [(history.envelopes[0].case_id, applicant)]


async def test_a_follow_up_planned_by_hand_names_a_case_only_with_the_cases_resident(
        settings: Settings) -> None:
    """A clerk's slip (or a probe) naming Mrs Wang's case with Mr Li: the call would go to
    Mr Li about her case, its notes scrubbed of the wrong name, the figures per resident
    counted on him. Refused 422 ``resident_not_of_case``, also for a case opened without a
    resident; the case alone still takes its resident, the case's own resident is welcome."""
    wang, li = uuid.uuid4(), uuid.uuid4()
    history = History(CENTER)
    wangs_case = history.case(t(9), resident_id=wang)
    history.case(t(9, 5), resident_id=li)  # Mr Li is known here too
    anonymous = history.case(t(9, 10), resident_id=None)
    last = history.consent(li, t(9, 20), contact=True, surveys=True, reason="registration")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish(settings)
        for consumer in ("followup-residents", "followup-rules"):
            assert await wait_for_position(center.app.state.pool, consumer, "intake",
                                           last.position, 20.0)

        for case_id in (wangs_case, anonymous):
            r = await center.followup.post("/followups", headers=headers(key()),
                                           json={**visit(li), "case_id": str(case_id)})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "resident_not_of_case", r.text

        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**visit(wang), "case_id": str(wangs_case)})
        assert r.status_code == 201, r.text
        alone = {k: v for k, v in visit(li).items() if k != "resident_id"}
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**alone, "case_id": str(wangs_case)})
        assert r.status_code == 201, r.text


async def test_a_follow_up_of_a_case_may_name_who_applied_for_it_on_the_residents_behalf(
        settings: Settings) -> None:
    """代办: Mrs Wang's daughter applied for her at the window, and the call about the papers
    goes to the daughter. Before, naming her with the case was refused 422
    ``resident_not_of_case``, as a stranger would be. Another resident of this center still
    is; another center's applicant is a 404 (not known here, said before anything is
    compared), and so is their case; Mrs Wang's erasure cancels the daughter's follow-up of
    her case, as it cancels the rules' ones."""
    wang, daughter, li, theirs, their_daughter = (uuid.uuid4() for _ in range(5))
    history = History(CENTER)
    wangs_case, their_case = uuid.uuid4(), uuid.uuid4()
    for case_id, center_id, resident, applicant in ((wangs_case, CENTER, wang, daughter),
                                                    (their_case, OTHER, theirs, their_daughter)):
        history.add("intake", "CaseOpened", t(9), {
            "center_id": center_id, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
            "resident_id": str(resident), "applicant_id": str(applicant)},
            case_id=case_id, actor="clerk-017", center_id=center_id)
    history.case(t(9, 5), resident_id=li)  # Mr Li is known here too
    last = history.consent(daughter, t(9, 10), contact=True, surveys=True,
                           reason="registration")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish_new(settings)
        for consumer in ("followup-residents", "followup-rules"):
            assert await wait_for_position(center.app.state.pool, consumer, "intake",
                                           last.position, 20.0)

        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**visit(daughter), "case_id": str(wangs_case)})
        assert r.status_code == 201, r.text
        planned = r.json()
        got = (await center.followup.get(f"/followups/{planned['id']}",
                                         params={"after": planned["position"]})).json()
        assert got["resident_id"] == str(daughter) and got["case_id"] == str(wangs_case)

        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**visit(li), "case_id": str(wangs_case)})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "resident_not_of_case", r.text
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**visit(their_daughter), "case_id": str(wangs_case)})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "resident_not_found", r.text
        r = await center.followup.post("/followups", headers=headers(key()),
                                       json={**visit(their_daughter), "case_id": str(their_case)})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "case_not_found", r.text

        history.erased(wang, t(10))
        await history.publish_new(settings)

        async def cancelled() -> bool:
            r = await center.followup.get(f"/followups/{planned['id']}")
            return r.json()["status"] == "cancelled"

        await wait_until(cancelled, timeout=15, what="the daughter's follow-up cancelled")
