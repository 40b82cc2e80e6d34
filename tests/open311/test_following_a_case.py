"""A resident opens a case from a civic app; the center works it; the app follows it."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx

from services.intake.main import create_app
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.open311.support import (
    CENTER,
    KEY,
    OTHER_KEY,
    W3C_DATETIME,
    both,
    check_format,
    spark,
    spec_error,
    with_keys,
)
from tests.support import headers, running, stream_envelopes, wait_until

# GET Service Request(s), Response, in the spec's order.
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name",
                  "service_code", "description", "agency_responsible", "service_notice",
                  "requested_datetime", "updated_datetime", "expected_datetime", "address",
                  "address_id", "zipcode", "lat", "long", "media_url"]
PHONE = "13812345678"
EMAIL = "li.min@example.com"


def w3c(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def clerk(client: httpx.AsyncClient, case_id: str, step: str, body: dict) -> None:
    """A clerk at the counter takes the next step through intake's own API, then the read
    model is allowed to catch up (the app sees it on its next poll)."""
    r = await client.post(f"/cases/{case_id}/{step}", json=body,
                          headers=headers(f"k-{uuid.uuid4().hex}"))
    assert r.status_code == 200, r.text
    r = await client.get(f"/cases/{case_id}", params={"after": r.json()["position"]})
    assert r.status_code == 200, r.text


async def follow(client: httpx.AsyncClient, case_id: str, **kwargs: object) -> dict:
    [request] = await both(client, "GET", f"requests/{case_id}", "service_requests",
                           params={"api_key": KEY}, **kwargs)
    assert list(request) == REQUEST_FIELDS
    assert request["service_request_id"] == case_id
    assert request["status"] in ("open", "closed")  # "Options: open, closed"
    for field in ("requested_datetime", "updated_datetime"):  # "Returned in w3 format"
        assert W3C_DATETIME.fullmatch(request[field]), request[field]
    if request["expected_datetime"] is not None:
        assert W3C_DATETIME.fullmatch(request["expected_datetime"])
    return request


async def test_a_resident_opens_a_case_from_a_civic_app_and_follows_it(
        settings: Settings) -> None:
    async with running(create_app(with_keys(settings))) as client:
        form = {"api_key": KEY, "jurisdiction_id": CENTER,
                "service_code": "EMP-UNEMPLOYMENT-REGISTRATION",
                "description": f"我上个月失业了，想登记失业、领失业金。电话{PHONE}",
                "lat": "31.2215", "long": "121.5447", "address_string": "花木路100弄",
                "email": EMAIL, "first_name": "敏", "last_name": "李", "phone": PHONE,
                "device_id": "tt222111", "account_id": "123456"}
        r = await client.post("/open311/v2/requests.json", data=form)
        assert r.status_code == 200, r.text
        check_format(r, "json")
        # POST Service Request, Response: service_request_id ("This should not be returned
        # if token is returned"), service_notice, account_id ("May not be returned").
        [created] = r.json()
        assert list(created) == ["service_request_id", "service_notice", "account_id"]
        assert created["service_notice"] == "通常当场办结"
        case_id = created["service_request_id"]

        # The app, unsure its POST arrived, sends it again (as XML this time): the same case.
        r = await client.post("/open311/v2/requests.xml", data=form)
        assert r.status_code == 200
        check_format(r, "xml")
        assert spark(ET.fromstring(r.content))[0]["service_request_id"] == case_id

        heard = await follow(client, case_id)
        assert heard["status"] == "open"
        assert heard["status_notes"] == "诉求已收到，工作人员正在了解情况"
        assert heard["service_name"] == "失业登记"
        assert heard["service_code"] == "EMP-UNEMPLOYMENT-REGISTRATION"
        assert heard["description"].startswith("我上个月失业了") and PHONE not in (
            heard["description"]), "the resident's own words, phone numbers redacted"
        assert heard["agency_responsible"] == CENTER
        assert heard["expected_datetime"] is None
        assert heard["address"] is None and heard["lat"] is None, "no location is kept"

        # The center works the case at the counter; the app follows each step.
        await clerk(client, case_id, "guidance", {
            "policy_basis": "《失业保险条例》", "eligibility": "more_documents",
            "promised": "材料齐全后当场受理", "missing_documents": ["离职证明"]})
        guided = await follow(client, case_id)
        assert guided["status"] == "open"
        assert guided["status_notes"] == "需补充材料：离职证明。承诺：材料齐全后当场受理"
        assert guided["expected_datetime"] is not None  # the item's days: its due date

        await clerk(client, case_id, "deadlines", {"due_on": "2026-03-20",
                                                   "description": "补交离职证明"})
        await clerk(client, case_id, "actions", {"kind": "referred", "description": "转介",
                                                 "referred_to": "就业服务窗口"})
        served = await follow(client, case_id)
        assert served["expected_datetime"] == "2026-03-20T23:59:59+08:00"
        assert served["agency_responsible"] == "就业服务窗口"
        assert served["status_notes"] == "已转介：就业服务窗口"

        await clerk(client, case_id, "resolve", {
            "outcome": "resolved", "explanation": "已登记失业，失业金次月发放",
            "emotion_defused": True, "occurred_at": "2026-03-05T10:00:00+08:00"})
        closed = await follow(client, case_id)
        assert closed["status"] == "closed"
        assert closed["status_notes"] == "已办结：已登记失业，失业金次月发放"
        # "For requests with status=closed, this will be the date the request was closed."
        assert closed["updated_datetime"] == "2026-03-05T10:00:00+08:00"
        english = await follow(client, case_id, headers={"Accept-Language": "en"})
        assert english["status_notes"] == "Resolved: 已登记失业，失业金次月发放"
        assert english["service_name"] == "Unemployment registration"

        # Another resident, another item; and a walk-in at the window (not an Open311 case).
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": "SA-HARDSHIP-SUBSIDY", "description": "家里困难"})
        other_id = r.json()[0]["service_request_id"]
        r = await client.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "service_item": "SA-HARDSHIP-SUBSIDY"})
        walk_in = r.json()["id"]
        await client.get(f"/cases/{walk_in}", params={"after": r.json()["position"]})

        async def listed(**params: str) -> list[str]:
            found = await both(client, "GET", "requests", "service_requests",
                               params={"api_key": KEY, **params})
            assert all(list(f) == REQUEST_FIELDS for f in found)
            return [f["service_request_id"] for f in found]

        assert await listed() == [other_id, case_id], "the center's Open311 cases, newest first"
        assert await listed(status="closed") == [case_id]
        assert await listed(status="open,closed") == [other_id, case_id]
        assert await listed(service_code="SA-HARDSHIP-SUBSIDY") == [other_id]
        now = datetime.now(UTC)
        assert await listed(start_date=w3c(now - timedelta(hours=1)),
                            end_date=w3c(now + timedelta(hours=1))) == [other_id, case_id]
        assert await listed(start_date=w3c(now + timedelta(hours=1))) == []
        assert await listed(end_date=w3c(now - timedelta(hours=1))) == []
        # "service_request_id ... comma delimited. This overrides all other arguments."
        assert await listed(service_request_id=f"{case_id},not-a-case,{walk_in}",
                            status="open") == [case_id]
        # Another center's credential sees none of this center's cases.
        r = await client.get("/open311/v2/requests.json", params={"api_key": OTHER_KEY})
        assert r.status_code == 200 and r.json() == []
        await spec_error(client, "GET", f"requests/{case_id}", 404,
                         params={"api_key": OTHER_KEY})
        await spec_error(client, "GET", f"requests/{walk_in}", 404, params={"api_key": KEY})

        await clerk(client, case_id, "reopen", {"reason": "居民补充了新情况"})
        reopened = await follow(client, case_id)
        assert reopened["status"] == "open"
        assert reopened["status_notes"] == "已重新办理：居民补充了新情况"

    # Downstream (follow-up, feedback) sees ordinary intake events: the same contracts, with
    # channel open311, and none of the resident's contact or location details.
    async def arrived() -> bool:
        return len([e for e in await stream_envelopes(settings)
                    if str(e.case_id) == case_id]) == 9
    await wait_until(arrived, what="the Open311 case's events on the stream")
    envelopes = await stream_envelopes(settings)
    mine = [e for e in envelopes if str(e.case_id) == case_id]
    # Guidance sets the due date (the item's 0 days: today), the earlier deadline moves it.
    # The resolution says 5 March but was posted today, long past the 72 h grace: judged on
    # intake's clock less the grace (judged_at), after the 20 March deadline, so the
    # reopening counts no new due date (a case resolved late keeps its lateness).
    assert [e.type for e in mine] == ["CaseOpened", "RequestHeard", "GuidanceGiven",
                                      "CaseDueDateSet", "DeadlineNoted", "CaseDueDateSet",
                                      "ActionTaken", "CaseResolved", "CaseReopened"
                                      ], "once each, though the app posted twice"
    assert mine[7].payload["judged_at"] is not None
    for e in mine:
        REGISTRY.read(e)  # every payload reads with its registered contract
        assert e.service == "intake" and e.center_id == CENTER
    opened, heard_event = mine[0], mine[1]
    assert opened.payload["channel"] == "open311"
    assert opened.payload["service_item"] == "EMP-UNEMPLOYMENT-REGISTRATION"
    assert opened.payload["resident_id"] is None
    assert opened.actor == heard_event.actor and opened.actor.startswith("open311:")
    assert heard_event.payload["words"] == heard["description"]
    walk_in_opened = next(e for e in envelopes if str(e.case_id) == walk_in)
    assert set(walk_in_opened.payload) == set(opened.payload)
    text = "".join(e.model_dump_json() for e in envelopes)
    for secret in (PHONE, EMAIL, "花木路", "121.5447", "tt222111", KEY):
        assert secret not in text
