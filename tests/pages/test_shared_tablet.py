"""A counter tablet shared by two clerks (queue50): what one clerk queued offline waits for her,
is sent only under her own token, is never shown to the next clerk, and does not hold the next
clerk's own steps back."""

from __future__ import annotations

from typing import Any

from playwright.async_api import BrowserContext, expect

from tests.pages.center import Center
from tests.pages.test_counter import case_heard, pick_item, saved, sign_in
from tests.support import wait_until

CENTER = "SH-PD-HUAMU"
WORDS_A = "您想给母亲申请低保，她住在三楼，行动不便。"


async def timeline_of(center: Center, case_id: str) -> list[dict[str, Any]]:
    client = center.client("intake", "supervisor-050", "supervisor", CENTER)
    r = await client.get(f"/cases/{case_id}")
    assert r.status_code == 200
    return r.json()["timeline"]


async def test_a_clerk_walking_away_with_steps_queued_leaves_them_for_herself_not_the_next_clerk(
        center: Center, desk: BrowserContext) -> None:
    # Clerk A hears a resident while the network is up, then restates offline and walks away:
    # her tab is closed (her session with it), the step stays in the tablet's storage.
    page_a = await desk.new_page()
    await case_heard(page_a, center, "clerk-051", "window-6", "我想给我妈妈申请低保。")
    await saved(page_a, ["CaseOpened", "RequestHeard"])
    case_a = await page_a.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    await desk.set_offline(True)
    await page_a.fill("#restatement", WORDS_A)
    await page_a.click("form[data-op=restate] .choice:has(input[value=yes])")
    await page_a.click("form[data-op=restate] button[type=submit]")
    await expect(page_a.locator("#net")).to_have_attribute("data-pending", "1")
    await page_a.close()
    await desk.set_offline(False)

    # Clerk B signs in on the same tablet: A's case and A's words are not on B's screen, and
    # B's own case goes out although A's step still waits.
    page_b = await desk.new_page()
    await sign_in(page_b, center, "clerk-052", "window-6")
    await expect(page_b.locator("#net")).to_have_attribute("data-pending", "0")
    assert WORDS_A not in await page_b.locator("body").inner_text()
    await expect(page_b.locator("#timeline li")).to_have_count(0)
    await pick_item(page_b, "低保", "最低生活保障")
    await page_b.click("#open-case")
    await page_b.fill("#words", "我来问问廉租房。")
    await page_b.click("form[data-op=hear] button[type=submit]")
    await saved(page_b, ["CaseOpened", "RequestHeard"])
    assert [e["type"] for e in await timeline_of(center, case_a)] == [
        "CaseOpened", "RequestHeard"], "A's step was not sent under B's token"
    queued = await page_b.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [(q["op"], q["by"]) for q in queued] == [("restate", "clerk-051")], \
        "A's step still waits for her"

    # B signs out: A's step is not B's to drop.
    page_b.once("dialog", lambda d: d.accept())
    await page_b.click("#sign-out")
    await expect(page_b.locator("#signin")).to_be_visible()
    queued = await page_b.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [q["by"] for q in queued] == ["clerk-051"]
    await page_b.close()

    # A comes back and signs in: her step goes out under her own token, as hers.
    page_a = await desk.new_page()
    await sign_in(page_a, center, "clerk-051", "window-6")
    await expect(page_a.locator("#net")).to_have_attribute("data-pending", "0")

    async def restated() -> bool:
        return any(e["type"] == "RequestRestated" for e in await timeline_of(center, case_a))
    await wait_until(restated, what="A's restatement recorded once she signed in again")
    entry = next(e for e in await timeline_of(center, case_a) if e["type"] == "RequestRestated")
    assert entry["actor"] == "clerk-051"
