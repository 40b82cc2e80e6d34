"""The one-time notice (一次性告知, issue 19 item 6): guidance in plain words beside the policy
citation, and the notice a resident takes home with what was agreed, the documents to bring,
the dates, who served and the center's phone; nothing of the resident's."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import httpx

from services.intake.commands import GiveGuidance
from services.intake.main import create_app
from shared.contracts.vocabulary import Eligibility
from shared.kernel.periods import add_months
from shared.settings import Settings
from tests.support import (
    TEST_CENTER,
    bearer,
    headers,
    register_resident,
    running,
    stream_envelopes,
    wait_until,
)


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def test_the_resident_takes_home_what_was_agreed_in_plain_words(settings: Settings) -> None:
    settings = settings.model_copy(update={
        "staff_names": {"clerk-017": "李娜"},
        "center_names": {TEST_CENTER: "花木社区事务受理服务中心"},
        "center_phones": {"*": "021-5888 0000"}})
    async with running(create_app(settings), role="clerk") as client:
        clerk = bearer(settings, role="clerk", sub="clerk-017")
        due, next_due = (str(date.today() + timedelta(days=n)) for n in (20, 40))
        resident = await register_resident(client, name="王秀英", phone="13912345678")
        r = await client.post("/cases", headers={**headers(key()), **clerk}, json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "channel": "counter",
            "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": resident})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        for step, body in (
                ("hear", {"words": "想申请困难补助"}),
                ("guidance", {
                    "policy_basis": "《社会救助暂行办法》第四十七条",
                    "plain_words": "家里收入低于本市标准就可以申请，有事打王秀英电话13912345678",
                    "eligibility": "more_documents", "promised": "材料齐全后十个工作日内答复",
                    "missing_documents": ["户口簿", "收入证明"]}),
                ("deadlines", {"due_on": due, "description": "补交收入证明"}),
                ("obligations", {"description": "每月提交收入情况", "cadence": "monthly",
                                 "next_due_on": next_due})):
            r = await client.post(f"/cases/{case_id}/{step}", json=body,
                                  headers={**headers(key()), **clerk})
            assert r.status_code == 200, (step, r.text)
        # The resident's plan: this case is its first step, the allowance's review the next.
        r = await client.post("/plans", headers={**headers(key()), **clerk}, json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "resident_id": resident,
            "title": "困难补助与低保复核", "steps": [
                {"service_item": "SA-HARDSHIP-SUBSIDY", "effective_on": due,
                 "case_id": case_id, "what": "补助到账"},
                {"service_item": "SA-ALLOWANCE-REVIEW", "effective_on": next_due,
                 "timing": "month", "depends_on": 1, "what": "带收入证明来复核"}]})
        assert r.status_code == 201, r.text
        position = r.json()["position"]

        r = await client.get(f"/cases/{case_id}/notice", params={"after": position},
                             headers=clerk)
        assert r.status_code == 200, r.text
        notice = r.json()
        assert notice["item_name_zh"] == "困难补助"
        assert notice["eligibility"] == "more_documents"
        assert notice["missing_documents"] == ["户口簿", "收入证明"]
        assert notice["promised"] == "材料齐全后十个工作日内答复"
        assert notice["policy_basis"] == "《社会救助暂行办法》第四十七条"
        # The plain words went through the scrubber like every free text.
        assert notice["plain_words"].startswith("家里收入低于本市标准就可以申请")
        assert "13912345678" not in notice["plain_words"]
        assert [d["due_on"] for d in notice["deadlines"]] == [due]
        assert notice["obligations"] == [{"description": "每月提交收入情况",
                                          "cadence": "monthly", "next_due_on": next_due,
                                          "tracked_from": None}]
        # The case's due date (办结时限): the deadline noted, earlier than the item's days.
        assert notice["due_on"] == due
        assert (notice["clerk_id"], notice["clerk_name"]) == ("clerk-017", "李娜")
        assert notice["center_name"] == "花木社区事务受理服务中心"
        assert notice["center_phone"] == "021-5888 0000"
        [plan] = notice["plans"]
        assert plan["title"] == "困难补助与低保复核"
        assert [(st["seq"], st["item_name_zh"], st["this_case"], st["what"])
                for st in plan["steps"]] == [(1, "困难补助", True, "补助到账"),
                                             (2, "低保定期复核", False, "带收入证明来复核")]
        # Nothing of the resident's: not even the opaque id.
        text = r.text
        assert resident not in text and "王秀英" not in text and "13912345678" not in text

        # Another center's clerk reaches no notice of this center's case; none for no case.
        other = bearer(settings, role="clerk", sub="clerk-900", center="SH-JA-JINGAN")
        r = await client.get(f"/cases/{case_id}/notice", headers=other)
        assert r.status_code == 404, r.text  # another center's case: as for none
        r = await client.get(f"/cases/{uuid.uuid4()}/notice", headers=clerk)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

        # On the bus the guidance is GuidanceGiven v2, plain words scrubbed there too.
        async def guided() -> bool:
            return any(e.type == "GuidanceGiven" for e in await stream_envelopes(settings))
        await wait_until(guided)
        event = next(e for e in await stream_envelopes(settings) if e.type == "GuidanceGiven")
        assert event.version == 2 and "13912345678" not in event.payload["plain_words"]


async def test_an_obligation_declared_after_it_began_tells_the_next_period_not_a_past_one(
        settings: Settings) -> None:
    """Recorded in December for a reimbursement due on the 1st since September: the notice
    said "下次 9 月 1 日前", a day long gone; it tells the next period from the notice's day
    (the center's), and that the periods missed since the day the resident named are
    followed up."""
    async with running(create_app(settings), role="clerk") as client:
        clerk = bearer(settings, role="clerk", sub="clerk-017")
        today = datetime.now(settings.tz).date()
        began = add_months(today.replace(day=1), -3)
        since = today - timedelta(days=40)
        resident = await register_resident(client, name="王秀英", phone="13912345678")
        r = await client.post("/cases", headers={**headers(key()), **clerk}, json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "channel": "counter",
            "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": resident})
        case_id = r.json()["id"]
        r = await client.post(f"/cases/{case_id}/obligations", headers={
            **headers(key()), **clerk}, json={
            "description": "每月提交报销单据", "cadence": "monthly", "next_due_on": str(began),
            "tracked_from": str(since)})
        assert r.status_code == 200, r.text
        r = await client.get(f"/cases/{case_id}/notice",
                             params={"after": r.json()["position"]}, headers=clerk)
        assert r.status_code == 200, r.text
        [told] = r.json()["obligations"]
        expected = today if today.day == 1 else add_months(today.replace(day=1), 1)
        assert told["next_due_on"] == str(expected) and told["next_due_on"] >= str(today)
        assert told["tracked_from"] == str(since)


async def test_a_clerk_not_in_the_staff_directory_is_named_by_the_id_alone(
        settings: Settings) -> None:
    async with running(create_app(settings), role="clerk") as client:
        r = await client.post("/cases", headers=headers(key()), json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "channel": "counter",
            "service_item": "SA-HARDSHIP-SUBSIDY"})
        case_id = r.json()["id"]
        r = await client.get(f"/cases/{case_id}/notice", params={"after": r.json()["position"]})
        assert r.status_code == 200, r.text
        notice = r.json()
        assert notice["clerk_id"] == "test-clerk" and notice["clerk_name"] is None
        assert notice["center_name"] == TEST_CENTER and notice["center_phone"] is None
        assert notice["plain_words"] == "" and notice["missing_documents"] == []
        assert notice["eligibility"] is None and notice["due_on"] is None


async def test_a_blank_document_need_or_worry_is_refused_not_printed_as_an_empty_line(
        settings: Settings) -> None:
    """A counter app that sends the clerk's list as typed ("户口簿", "  ", a full-width space):
    every text is stripped, and an item left empty is a 422 naming it, not an empty bullet on
    the notice the resident takes home; so is one item the length of a page."""
    async with running(create_app(settings), role="clerk") as client:
        clerk = bearer(settings, role="clerk", sub="clerk-017")
        case_id = await heard_case(client, clerk)
        guided = {"policy_basis": "《社会救助暂行办法》", "eligibility": "more_documents"}
        for step, body, field in (
                ("guidance", {**guided, "missing_documents": ["户口簿", "  "]},
                 "missing_documents"),
                ("guidance", {**guided, "missing_documents": ["收入证明" * 200]},
                 "missing_documents"),
                ("concerns", {"needs": ["\u3000"], "emotion": "calm"}, "needs"),
                ("concerns", {"worries": ["钱不够", ""], "emotion": "calm"}, "worries"),
                # pasted from a chat: only characters nobody sees
                ("concerns", {"needs": ["\u200b"], "emotion": "calm"}, "needs"),
                ("concerns", {"worries": ["\ufeff\u200d \u2060"], "emotion": "calm"},
                 "worries")):
            r = await client.post(f"/cases/{case_id}/{step}", json=body,
                                  headers={**headers(key()), **clerk})
            assert r.status_code == 422, (body, r.text)
            fields = [f["field"] for f in r.json()["error"]["details"]["fields"]]
            assert [f.split(".")[0] for f in fields] == [field], fields
        r = await client.post(f"/cases/{case_id}/guidance", headers={**headers(key()), **clerk},
                              json={"policy_basis": "《社会救助暂行办法》",
                                    "eligibility": "more_documents",
                                    "missing_documents": [" 户口簿 ", "\u200b收入证明\ufeff"]})
        assert r.status_code == 200, r.text
        notice = (await client.get(f"/cases/{case_id}/notice",
                                   params={"after": r.json()["position"]},
                                   headers=clerk)).json()
        assert notice["missing_documents"] == ["户口簿", "收入证明"]


async def test_a_notice_reprinted_from_guidance_stored_with_a_blank_document_skips_it(
        settings: Settings) -> None:
    """Guidance recorded by the release before blank items were refused (its command checked
    no item: ["户口簿", ""]) stays in the store as it was; the notice the resident asks for
    again prints the documents, not an empty bullet among them."""
    app = create_app(settings)
    async with running(app, role="clerk") as client:
        clerk = bearer(settings, role="clerk", sub="clerk-017")
        case_id = await heard_case(client, clerk)
        # As the old release's command let it through (model_construct: no checks).
        old = GiveGuidance.model_construct(
            policy_basis="《社会救助暂行办法》", eligibility=Eligibility.MORE_DOCUMENTS,
            promised="", promised_on=None, missing_documents=["户口簿", "", "收入证明"],
            plain_words="", service_item=None, occurred_at=None, correlation_id=None)
        written = await app.state.intake.give_guidance(uuid.UUID(case_id), old, "clerk-017",
                                                       key())
        notice = (await client.get(f"/cases/{case_id}/notice",
                                   params={"after": written.position}, headers=clerk)).json()
        assert notice["missing_documents"] == ["户口簿", "收入证明"]


async def heard_case(client: httpx.AsyncClient, clerk: dict[str, str]) -> str:
    """A hardship-subsidy case opened at window 3 and its request heard; its id."""
    r = await client.post("/cases", headers={**headers(key()), **clerk}, json={
        "center_id": TEST_CENTER, "counter_id": "window-3", "channel": "counter",
        "service_item": "SA-HARDSHIP-SUBSIDY"})
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    r = await client.post(f"/cases/{case_id}/hear", json={"words": "想申请困难补助"},
                          headers={**headers(key()), **clerk})
    assert r.status_code == 200, r.text
    return case_id
