"""ID reader and keyboard first (issue 24, item 4): a clerk serves a returning resident from
sign-in to 办结 without touching the mouse; the card reader's digits and Enter look the
resident up even when no field has the focus."""

from __future__ import annotations

from datetime import datetime, timedelta

from playwright.async_api import BrowserContext, Page, expect

from tests.pages.center import Center, Own, resolved_case
from tests.pages.test_counter import id_number, saved


async def focused(page: Page) -> str:
    """The focused element, as ``#id`` or ``name=value``."""
    return await page.evaluate(
        "(() => { const e = document.activeElement;"
        " return e.id ? '#' + e.id : `${e.name}=${e.value}`; })()")


async def test_a_clerk_serves_a_resident_with_the_keyboard_alone(
        center: Center, own: Own, desk: BrowserContext) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    card = id_number("32010219750606201")
    r = await clerk.post("/residents", json={
        "name": "周桂英", "id_number": card, "phone": "13912345670",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    await resolved_case(clerk, own.center_id, at=datetime.now().astimezone() - timedelta(days=40),
                        resident_id=r.json()["resident_id"])

    page = await desk.new_page()
    kb = page.keyboard
    await page.goto(f"{center.intake}/counter")
    await expect(page.locator("#signin-token")).to_be_focused()
    await kb.insert_text(center.token(own.clerk(), "clerk", own.center_id))  # pasted
    await kb.press("Shift+Tab")  # the window comes first on the form
    await expect(page.locator("#signin-counter")).to_be_focused()
    await kb.type("7")  # the window, chosen from the center's list by its first character
    await expect(page.locator("#signin-counter")).to_have_value("window-7")
    await kb.press("Tab")
    await kb.press("Tab")
    await expect(page.locator("#signin-form button[type=submit]")).to_be_focused()
    await kb.press("Enter")

    # Signed in: the focus waits in the ID field. The reader's keystrokes still find it when
    # the focus has wandered off to the page.
    await expect(page.locator("#resident-q")).to_be_focused()
    await page.evaluate("document.activeElement.blur()")
    await kb.type(card)
    await kb.press("Enter")
    await expect(page.locator("#resident-status")).to_contain_text("以往 1 件")

    # Then the item search: pinyin initials, Enter picks, Enter opens the case.
    await expect(page.locator("#item-q")).to_be_focused()
    await kb.type("sydj")
    await expect(page.locator("#item-results li").first).to_contain_text("失业登记")
    await kb.press("Enter")
    await expect(page.locator("#open-case")).to_be_focused()
    await kb.press("Enter")

    # Each step: type, Ctrl+Enter saves it, the focus moves on to the next.
    await expect(page.locator("#words")).to_be_focused()
    await kb.type("我被辞退了，想领失业金。")
    await kb.press("Control+Enter")
    await expect(page.locator("#restatement")).to_be_focused()
    await kb.type("您想办理失业登记并申领失业金。")
    await kb.press("Control+Enter")
    assert await focused(page) == "emotion=calm"
    await kb.press("ArrowRight")  # anxious, chosen by the arrow
    await kb.press("Control+Enter")
    assert await focused(page) == "eligibility=eligible"
    await kb.press("Space")
    await kb.press("Control+Enter")
    await expect(page.locator("#action-desc")).to_be_focused()
    await kb.type("当场完成失业登记")
    await kb.press("Enter")
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted",
                       "GuidanceGiven", "CaseDueDateSet", "ActionTaken"])

    # Alt+0 goes to 办结; Ctrl+Enter resolves; the focus waits on 接待下一位.
    await kb.press("Alt+0")
    assert await focused(page) == "outcome=resolved"
    await kb.press("Control+Enter")
    await expect(page.locator("#next-resident")).to_be_focused()
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted",
                       "GuidanceGiven", "CaseDueDateSet", "ActionTaken", "CaseResolved"])
    await kb.press("Enter")
    await expect(page.locator("#resident-q")).to_be_focused()
    await expect(page.locator("#reception")).to_be_visible()

    case = (await clerk.get("/cases", params={"center_id": own.center_id, "limit": 5})).json()
    mine = [c for c in case["items"] if c["counter_id"] == "window-7"]
    assert len(mine) == 1 and mine[0]["status"] == "resolved"
    assert mine[0]["emotion_on_arrival"] == "anxious" and mine[0]["eligibility"] == "eligible"
