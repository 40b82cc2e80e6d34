"""A correlation id is recorded on every event of a visit, bound into every log line, exported
with every row and kept in the vault's audit trail. A counter app that puts what it knows of
the resident into it (a name, an ID number, a phone) must be refused, not have it carried in
clear past the scrubber: the header's rule (1-128 of A-Z a-z 0-9 _ . : -) holds for the body's
``correlation_id`` too, and for the audit trail's copy of the header."""

from __future__ import annotations

import uuid

from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.settings import Settings
from tests.support import TEST_CENTER, headers, register_resident, running, stream_envelopes

PERSONAL = "王秀英 身份证310115198503121234 电话13812345678"


async def test_a_correlation_id_holding_a_residents_data_is_refused_and_never_recorded(
        settings: Settings) -> None:
    async with running(create_intake(settings)) as intake:
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "correlation_id": PERSONAL})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "validation_failed"
        assert "correlation_id" in r.text

        # An id of the header's shape is still the visit's, on the event.
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "correlation_id": "visit-2026-12-04.17"})
        assert r.status_code == 201, r.text

    async with running(create_followup(settings)) as followup:
        visit = {"center_id": TEST_CENTER, "assigned_clerk": "clerk-001", "reason": "home_visit",
                 "due_at": "2026-12-10T09:00:00+08:00"}
        r = await followup.post("/followups", headers=headers(f"k-{uuid.uuid4().hex}"),
                                json={**visit, "correlation_id": "回访 13812345678"})
        assert r.status_code == 422, r.text
        assert "correlation_id" in r.text
        r = await followup.post("/followups", headers=headers(f"k-{uuid.uuid4().hex}"),
                                json={**visit, "correlation_id": "home-visit-3"})
        assert r.status_code == 201, r.text

    envelopes = await stream_envelopes(settings)
    assert [e.correlation_id for e in envelopes if e.type == "CaseOpened"] == [
        "visit-2026-12-04.17"]
    assert not any("13812345678" in e.model_dump_json() for e in envelopes)


async def test_the_audit_trail_keeps_no_free_text_from_the_correlation_header(
        settings: Settings) -> None:
    async with running(create_intake(settings)) as intake:
        resident = await register_resident(intake)
        r = await intake.get(f"/residents/{resident}", params={"purpose": "follow-up call"},
                             headers={"X-Correlation-Id": "wang xiuying 138 1234 5678"})
        assert r.status_code == 200, r.text
        r = await intake.get(f"/residents/{resident}", params={"purpose": "follow-up call"},
                             headers={"X-Correlation-Id": "call-17"})
        assert r.status_code == 200, r.text
        r = await intake.get("/audit", params={"resident_id": resident, "limit": 50})
        assert r.status_code == 200, r.text
        kept = {e["correlation_id"] for e in r.json()["items"]}
    assert "call-17" in kept
    assert not any(k and "xiuying" in k for k in kept), kept


# A counter app that makes its ids of the resident's numbers: the mobile number as it is, with
# dashes, with the country code, or inside a longer id; the ID number with its X.
PHONE_IDS = ["13812345678", "visit-13812345678-2", "138-1234-5678", "86.13812345678"]
ID_NUMBER_IDS = ["310101199001011234", "case:11010519491231002X", "310101-19900101-1234"]


async def test_a_key_or_correlation_id_made_of_a_phone_or_id_number_is_refused(
        settings: Settings) -> None:
    """Each of these fits the ids' character rule, and each was recorded in clear: the key as
    every event's causation id, the body's id as its correlation id, the header's in every
    log line and in the vault's audit trail. Each is now a 422 naming what it holds."""
    opening = {"center_id": TEST_CENTER, "counter_id": "window-3",
               "service_item": "SA-HARDSHIP-SUBSIDY"}
    async with running(create_intake(settings)) as intake:
        resident = await register_resident(intake)
        for number in PHONE_IDS + ID_NUMBER_IDS:
            holds = "a phone number" if number in PHONE_IDS else "an ID number"
            r = await intake.post("/cases", headers=headers(number), json=opening)
            assert r.status_code == 422, (number, r.text)
            assert r.json()["error"]["code"] == "idempotency_key_personal_data"
            assert r.json()["error"]["details"] == {"holds": holds}

            r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                                  json={**opening, "correlation_id": number})
            assert r.status_code == 422 and holds in r.text, (number, r.text)

            r = await intake.get(f"/residents/{resident}", params={"purpose": "callback"},
                                 headers={"X-Correlation-Id": number})
            assert r.status_code == 422, (number, r.text)
            assert r.json()["error"] == {
                "code": "correlation_id_personal_data", "details": {"holds": holds},
                "message": r.json()["error"]["message"]}
            assert number not in r.headers["X-Correlation-Id"]

        # Ids of the app's own, digits and all, still go through: a UUID, a date and a count.
        for own in (str(uuid.uuid4()), f"k-{uuid.uuid4().hex}", "2026-12-04-0001.17"):
            r = await intake.post("/cases", headers=headers(own),
                                  json={**opening, "correlation_id": own})
            assert r.status_code == 201, (own, r.text)
        audit = await intake.get("/audit", params={"resident_id": resident, "limit": 50})
        assert audit.status_code == 200, audit.text
        kept = {e["correlation_id"] for e in audit.json()["items"]}
    assert not kept & set(PHONE_IDS + ID_NUMBER_IDS), kept
    envelopes = await stream_envelopes(settings)
    assert not any(n in e.model_dump_json() for e in envelopes
                   for n in PHONE_IDS + ID_NUMBER_IDS)
