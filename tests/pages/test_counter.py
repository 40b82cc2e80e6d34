"""The clerk's screen in a real browser: a returning resident walked through the six steps, and
a counter whose network drops in the middle of a case."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Route, expect

from tests.pages.center import Center, Own, resolved_case, screenshot

ID_NUMBER = "11010519491231002X"  # a valid check digit


def id_number(first17: str) -> str:
    """An ID number with its check digit (ISO 7064 MOD 11-2)."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


async def sign_in(page: Page, center: Center, clerk: str, counter: str, center_id: str) -> None:
    await page.goto(f"{center.intake}/counter")
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#signin-token", center.token(clerk, "clerk", center_id))
    await expect(page.locator("#signin-claims")).to_contain_text(clerk)
    await page.select_option("#signin-counter", counter)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()


async def pick_item(page: Page, query: str, name_zh: str) -> None:
    await page.fill("#item-q", query)
    option = page.locator("#item-results li", has_text=name_zh).first
    await expect(option).to_be_visible()
    await option.click()
    await expect(page.locator("#item-picked")).to_contain_text(name_zh)


async def case_heard(page: Page, center: Center, clerk: str, counter: str, words: str,
                     center_id: str) -> None:
    """A clerk signed in at ``counter`` of ``center_id`` opens a 低保 case and records the
    resident's ``words`` (step 1), the start of many a story at the counter."""
    await sign_in(page, center, clerk, counter, center_id)
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await page.fill("#words", words)
    await page.click("form[data-op=hear] button[type=submit]")


async def saved(page: Page, types: list[str]) -> None:
    """The timeline shows exactly these events, saved, in this order."""
    timeline = page.locator("#timeline li.saved")
    await expect(timeline).to_have_count(len(types))
    assert await timeline.evaluate_all("els => els.map(e => e.dataset.type)") == types


async def test_a_clerk_walks_a_returning_resident_through_the_six_steps(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    # Mr Wang came last month about his hardship subsidy; he is in the vault.
    r = await clerk.post("/residents", json={
        "name": "王建国", "id_number": ID_NUMBER, "phone": "13812345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    resident_id = r.json()["resident_id"]
    last_month = datetime.now().astimezone() - timedelta(days=30)
    await resolved_case(clerk, own.center_id, at=last_month, resident_id=resident_id)

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-3", own.center_id)

    # He is found by his ID number; his past case is shown.
    await page.fill("#resident-q", ID_NUMBER)
    await page.click("#resident-form button[type=submit]")
    await expect(page.locator("#resident-status")).to_contain_text("以往 1 件")
    await expect(page.locator("#past-cases li")).to_have_count(1)
    await expect(page.locator("#past-cases")).to_contain_text("困难补助")

    # The item, found by pinyin initials ("shiye dengji"), and English works too.
    await pick_item(page, "pension", "养老")
    await page.click("#item-picked button")
    await page.fill("#item-q", "sydj")
    await expect(page.locator("#item-results li").first).to_contain_text("失业登记")
    await screenshot(page, screenshots / "counter-reception.png")
    await pick_item(page, "sydj", "失业登记")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])

    # 1 listen: his own words, the restatement, confirmed.
    await page.fill("#words", "我上个月被公司辞退了，想问问失业金怎么领，家里还有老人要养。")
    await page.click("form[data-op=hear] button[type=submit]")
    await page.fill("#restatement", "您想办理失业登记并申领失业保险金，对吗？")
    await page.click("form[data-op=restate] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated"])

    # 2 empathize: anxious on arrival, urgent, what he needs and fears.
    await page.click("form[data-op=concerns] .choice:has(input[value=anxious])")
    await page.click("form[data-op=concerns] .choice:has(input[value=high])")
    await page.fill("#needs", "尽快领到失业金\n了解再就业培训")
    await page.fill("#worries", "担心断缴影响医保")
    await page.click("form[data-op=concerns] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted"])
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, screenshots / "counter-case.png")

    # 3 guide: the item's policy basis and documents are on screen.
    await expect(page.locator("#policy-text")).to_contain_text("就业")
    documents = page.locator("#documents input")
    assert await documents.count() >= 2
    await documents.nth(0).check()
    await page.click("form[data-op=guidance] .choice:has(input[value=eligible])")
    await page.fill("#promised", "今天完成失业登记，失业金 5 个工作日内到账")
    await page.click("form[data-op=guidance] button[type=submit]")

    # 4 serve: done on the spot, a deadline, then resolved, calm at the end.
    await page.fill("#action-desc", "当场完成失业登记并提交失业金申请")
    await page.click("form[data-op=actions] button[type=submit]")
    # Two days after the center's today (the machine's date is a day behind Shanghai's from
    # 16:00 UTC: the deadline came before the due date and moved it)
    due = (datetime.now(center.settings.tz).date() + timedelta(days=2)).isoformat()
    await page.fill("#deadline-due", due)
    await page.fill("#deadline-desc", "两天内补交离职证明")
    await page.click("form[data-op=deadlines] button[type=submit]")
    await page.click("form[data-op=resolve] .choice:has(input[value=calm])")
    await expect(page.locator("#defused")).to_be_checked()
    await page.fill("#explanation", "已告知到账时间和再就业培训报名方式")
    await page.click("form[data-op=resolve] button[type=submit]")

    # Guidance sets the due date (失业登记: on the spot, so today); the later deadline leaves it.
    steps = ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted", "GuidanceGiven",
             "CaseDueDateSet", "ActionTaken", "DeadlineNoted", "CaseResolved"]
    await saved(page, steps)
    await expect(page.locator("#resolved-banner")).to_be_visible()
    await expect(page.locator("#stepper li.done")).to_have_count(4)
    await expect(page.locator("#net")).to_have_attribute("data-state", "online")
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await screenshot(page, screenshots / "counter-resolved.png")

    # What intake recorded: each step once, in order, with the words as typed.
    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    case: dict[str, Any] = (await clerk.get(f"/cases/{case_id}")).json()
    assert [e["type"] for e in case["timeline"]] == steps
    assert case["resident_id"] == resident_id and case["status"] == "resolved"
    by_type = {e["type"]: e["payload"] for e in case["timeline"]}
    assert by_type["RequestRestated"]["confirmed"] is True
    assert by_type["ConcernsNoted"] | {"needs": ["尽快领到失业金", "了解再就业培训"],
                                       "worries": ["担心断缴影响医保"], "emotion": "anxious",
                                       "urgency": "high"} == by_type["ConcernsNoted"]
    assert by_type["GuidanceGiven"]["eligibility"] == "eligible"
    assert len(by_type["GuidanceGiven"]["missing_documents"]) == await documents.count() - 1
    assert by_type["DeadlineNoted"]["due_on"] == due
    assert by_type["CaseResolved"] | {"outcome": "resolved", "emotion_defused": True,
                                      "explanation": "已告知到账时间和再就业培训报名方式"
                                      } == by_type["CaseResolved"]

    # The English switch, in place: the case stays on screen.
    await page.click("[data-lang-button=en]")
    await expect(page.locator("#timeline li.saved").first).to_contain_text("Case opened")
    await expect(page.locator("#case-status")).to_have_text("Resolved")


async def test_steps_taken_while_the_network_is_down_are_sent_in_order_once(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-5", own.center_id)
    # Ms Li comes for the first time: she is registered in the vault while the network is up.
    await page.fill("#resident-q", id_number("31011519860314204"))
    await page.click("#resident-form button[type=submit]")
    await expect(page.locator("#register-form")).to_be_visible()
    await page.fill("#reg-name", "李秀英")
    await page.fill("#reg-phone", "13912345678")
    await page.click("#register-form button[type=submit]")
    await expect(page.locator("#resident-status")).to_have_text("已登记 · 新居民")
    await pick_item(page, "低保", "最低生活保障")
    before = len((await clerk.get("/cases", params={"center_id": own.center_id, "limit": 500})
                  ).json()["items"])

    # The network drops: the case is opened and three steps are taken all the same.
    await desk.set_offline(True)
    await page.click("#open-case")
    await page.fill("#words", "低保怎么申请？我一个人带孩子，收入很低。")
    await page.click("form[data-op=hear] button[type=submit]")
    await page.fill("#restatement", "您想为自己和孩子申请最低生活保障。")
    await page.click("form[data-op=restate] .choice:has(input[value=no])")
    await page.fill("#correction", "还想问孩子的教育救助")
    await page.click("form[data-op=restate] button[type=submit]")
    await page.click("form[data-op=concerns] .choice:has(input[value=distressed])")
    await page.click("form[data-op=concerns] button[type=submit]")

    net = page.locator("#net")
    await expect(net).to_have_attribute("data-pending", "4")
    await expect(net).to_have_attribute("data-state", "offline")
    await expect(net).to_contain_text("4 步待发送")
    await expect(page.locator("#timeline li.queued")).to_have_count(4)
    await expect(page.locator("form[data-op=hear] .op-state")).to_contain_text("联网后自动发送")
    stored = await page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert "李秀英" not in stored and "13912345678" not in stored, "no personal data kept here"
    queued = await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [q["op"] for q in queued] == ["open", "hear", "restate", "concerns"]
    assert len({q["key"] for q in queued}) == 4, "each step has its own Idempotency-Key"
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, screenshots / "counter-offline.png")
    after = (await clerk.get("/cases", params={"center_id": own.center_id, "limit": 500})).json()
    assert len(after["items"]) == before, "nothing reached intake while offline"

    # The network comes back, but the answer to the restatement is lost on its way back:
    # intake has recorded it, the browser does not know. It must send it again, same key.
    restates: list[str] = []

    async def lose_first_answer(route: Route) -> None:
        restates.append(route.request.headers["idempotency-key"])
        if len(restates) == 1:
            await route.fetch()  # reaches intake, which records the step
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await page.route("**/cases/*/restate", lose_first_answer)

    # Each step's answer has the page read the case again (after its position). Those reads
    # can come back out of order: the first one's answer (the case just opened) is held back
    # until the last step shows, and must not then take the timeline back.
    reads: list[Route] = []
    first_answer: list[Any] = []

    async def hold_first_read(route: Route) -> None:
        reads.append(route)
        if len(reads) > 1:
            await route.continue_()
        else:
            first_answer.append(await route.fetch())  # answered by intake now, given later

    await page.route(re.compile(r"/cases/[0-9a-f-]{36}\?after="), hold_first_read)
    await desk.set_offline(False)

    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await expect(net).to_have_attribute("data-state", "online")
    everything = ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted"]
    await saved(page, everything)
    first_read, [its_answer] = reads[0], first_answer
    stale = [e["type"] for e in (await its_answer.json())["timeline"]]
    assert stale == everything[:len(stale)] and len(stale) < len(everything), stale
    async with page.expect_event("requestfinished",
                                 lambda r: r.url == first_read.request.url):
        await first_read.fulfill(response=its_answer)
    await page.evaluate("() => new Promise((r) => setTimeout(() => setTimeout(r)))")
    await saved(page, everything)
    assert len(restates) == 2 and restates[0] == restates[1] == queued[2]["key"]

    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    case = (await clerk.get(f"/cases/{case_id}")).json()
    assert [(e["type"], e["causation_id"]) for e in case["timeline"]] == [
        ("CaseOpened", queued[0]["key"]), ("RequestHeard", queued[1]["key"]),
        ("RequestRestated", queued[2]["key"]), ("ConcernsNoted", queued[3]["key"])]
    assert case["resident_id"] == queued[0]["body"]["resident_id"]
    restated = case["timeline"][2]["payload"]
    assert restated["confirmed"] is False and restated["correction"] == "还想问孩子的教育救助"
    # The steps keep the time they were taken at the counter, not the time they were sent.
    heard = case["timeline"][1]
    assert (datetime.fromisoformat(heard["occurred_at"])
            < datetime.fromisoformat(heard["recorded_at"]))
