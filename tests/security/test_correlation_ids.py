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
