"""Open cases are never lost from the page (issue 24, item 2): leaving a case that is not
resolved asks first; the clerk's own open cases are listed and taken up again; a returning
resident's past case opens with its timeline and is reopened."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Route, expect

from tests.pages.center import Center, Own, resolved_case
from tests.pages.test_counter import id_number, pick_item, saved, sign_in
from tests.support import wait_until


async def opened_and_heard(clerk: httpx.AsyncClient, center_id: str, words: str) -> str:
    stamp = (datetime.now().astimezone() - timedelta(hours=2)).isoformat()
    r = await clerk.post("/cases", headers={"Idempotency-Key": f"seed-{uuid.uuid4().hex}"}, json={
        "center_id": center_id, "counter_id": "window-8", "channel": "counter",
        "service_item": "SA-HARDSHIP-SUBSIDY", "occurred_at": stamp})
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    r = await clerk.post(f"/cases/{case_id}/hear", json={"words": words, "occurred_at": stamp},
                         headers={"Idempotency-Key": f"seed-{uuid.uuid4().hex}"})
    assert r.status_code == 200, r.text
    return case_id


async def test_a_clerk_leaves_a_case_open_takes_it_up_again_and_reopens_a_past_one(
        center: Center, own: Own, desk: BrowserContext) -> None:
    clerk = center.client("intake", own.clerk(1), "clerk", own.center_id)
    # This morning the clerk left a case open; a colleague's open case is not theirs to list.
    morning = await opened_and_heard(clerk, own.center_id, "上午来问困难补助，材料没带齐。")
    await opened_and_heard(center.client("intake", own.clerk(2), "clerk", own.center_id),
                           own.center_id, "别人的案件")
    card = id_number("44030419680101302")
    r = await clerk.post("/residents", json={
        "name": "陈美玲", "id_number": card, "phone": "13712345678",
        "consent": {"contact": True, "surveys": True}})
    resident_id = r.json()["resident_id"]
    past = await resolved_case(clerk, own.center_id,
                               at=datetime.now().astimezone() - timedelta(days=20),
                               resident_id=resident_id)

    # The page reads the list once, at sign-in: it waits for intake's read model to have the
    # past case resolved (a two-worker run read it still open: two cases listed, for good).
    async def listed_open() -> bool:
        r = await clerk.get("/cases", params={"center_id": own.center_id, "clerk_id": own.clerk(1),
                                              "status": "open", "limit": "50"})
        return [c["case_id"] for c in r.json()["items"]] == [morning]
    await wait_until(listed_open, what="the past case resolved in intake's list")

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(1), "window-8", own.center_id)
    mine = page.locator("#my-cases li.link")
    await expect(mine).to_have_count(1)
    await expect(mine).to_contain_text("困难补助")
    # Every case shows its urgency and due date (issue 19): none noted yet on this one.
    await expect(mine).to_contain_text("紧急程度未记录 · 办结时限 待定")

    # A new case, heard but not resolved: 接待下一位 asks first; the clerk stays, then leaves.
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await page.fill("#words", "想咨询低保的申请条件。")
    await page.click("form[data-op=hear] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard"])
    await page.click("#next-resident")
    dialog = page.locator("#leave-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("本案尚未办结")
    await dialog.locator("button[value=stay]").click()
    await expect(page.locator("#case-head")).to_be_visible()
    await page.click("#next-resident")
    await dialog.locator("button[value=leave]").click()
    await expect(page.locator("#reception")).to_be_visible()
    await expect(mine).to_have_count(2)

    # The morning's case, taken up again: its timeline, its words; continued and resolved.
    await page.click(f"#my-cases button[data-case='{morning}']")
    await saved(page, ["CaseOpened", "RequestHeard"])
    await expect(page.locator("#words")).to_have_value("上午来问困难补助，材料没带齐。")
    await page.click("form[data-op=concerns] .choice:has(input[value=anxious])")
    await page.click("form[data-op=concerns] button[type=submit]")
    await page.click("form[data-op=resolve] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted", "CaseResolved"])
    # The case in hand shows its urgency and its due date (none: it was never guided).
    await expect(page.locator("#case-meta")).to_contain_text("一般 · 办结时限 待定")
    await expect(mine).to_have_count(1)  # the one left a moment ago
    await page.click("#next-resident")  # resolved: no question
    await expect(page.locator("#reception")).to_be_visible()

    # Ms Chen comes back: her past case opens with its timeline and is reopened.
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await page.click(f"#past-cases button[data-case='{past}']")
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted", "CaseResolved"])
    await expect(page.locator("#case-status")).to_have_text("已办结")
    await page.fill("#reopen-reason", "补助未到账，居民再次来问")
    await page.press("#reopen-reason", "Enter")
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted", "CaseResolved",
                       "CaseReopened"])
    await expect(page.locator("#case-status")).to_have_text("办理中")
    await page.fill("#action-desc", "联系街道核实发放情况")
    await page.click("form[data-op=actions] button[type=submit]")
    await page.click("form[data-op=resolve] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted", "CaseResolved",
                       "CaseReopened", "ActionTaken", "CaseResolved"])
    case: dict[str, Any] = (await clerk.get(f"/cases/{past}")).json()
    assert case["status"] == "resolved" and case["reopen_count"] == 1


async def test_the_case_clicked_last_stays_on_the_desk_when_an_earlier_click_answers_late(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """On a slow line the clerk clicks one open case, and before it shows, another: the
    first read's answer, come back last, must not put the first case on the desk under the
    clerk's hands (the old page took whichever answer came back last)."""
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    first = await opened_and_heard(clerk, own.center_id, "先点的案件：问养老补贴。")
    second = await opened_and_heard(clerk, own.center_id, "后点的案件：问医保报销。")
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-8", own.center_id)
    await expect(page.locator("#my-cases li.link")).to_have_count(2)

    held: list[Route] = []
    answers: list[Any] = []
    answered = asyncio.Event()

    async def hold(route: Route) -> None:
        held.append(route)
        answers.append(await route.fetch())  # answered by intake now, given later
        answered.set()

    await page.route(f"**/cases/{first}", hold)
    await page.click(f"#my-cases button[data-case='{first}']")
    await asyncio.wait_for(answered.wait(), 15)
    await page.click(f"#my-cases button[data-case='{second}']")
    await expect(page.locator("#words")).to_have_value("后点的案件：问医保报销。")

    async with page.expect_event("requestfinished", lambda r: r.url == held[0].request.url):
        await held[0].fulfill(response=answers[0])
    await page.evaluate("() => new Promise((r) => setTimeout(() => setTimeout(r)))")
    await expect(page.locator("#words")).to_have_value("后点的案件：问医保报销。")
    on_desk = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    assert on_desk == second
