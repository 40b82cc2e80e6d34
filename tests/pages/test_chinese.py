"""Chinese all through in 中文 mode (issue 24, item 6): item names without English or codes
(a tooltip keeps them), the page's own messages instead of the browser's, and the window
chosen from the center's configured list."""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, expect

from tests.pages.center import Center, Own
from tests.pages.test_counter import pick_item, sign_in


async def test_the_counter_speaks_chinese_and_offers_the_centers_own_windows(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Two centers of the test's own: one with windows of its own, one with the default eight.
    named = center.own()
    center.directory(windows={named.center_id: {"jingan-a": "综合受理A窗",
                                                "jingan-b": "综合受理B窗"}})
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")

    # The window list follows the center of the token being pasted.
    await page.fill("#signin-token", center.token(own.clerk(), "clerk", named.center_id))
    options = page.locator("#signin-counter option")
    await expect(options).to_have_text(["综合受理A窗", "综合受理B窗"])
    await page.fill("#signin-token", center.token(own.clerk(), "clerk", own.center_id))
    await expect(options).to_have_count(8)
    await expect(options.nth(2)).to_have_text("3号窗口")

    await sign_in(page, center, own.clerk(), "window-3", own.center_id)
    await expect(page.locator("#who")).to_contain_text("3号窗口")

    # Search results and the chosen item: Chinese names only; English and code in a tooltip.
    await page.fill("#item-q", "pension")
    first = page.locator("#item-results li").first
    await expect(first).to_contain_text("养老")
    texts = await page.locator("#item-results li").all_inner_texts()
    assert texts and not any(re.search(r"[A-Za-z]", t) for t in texts), texts
    assert re.search(r"[A-Za-z].* · [A-Z]", await first.get_attribute("title") or "")
    await pick_item(page, "pension", "养老")
    assert not re.search(r"[A-Za-z]", await page.locator("#item-picked .names").inner_text())

    # The page's own messages, in Chinese, where the browser would pop up its own.
    await page.click("#open-case")
    await page.click("form[data-op=hear] button[type=submit]")
    await expect(page.locator("form[data-op=hear] .field-error")).to_have_text("居民原话：必须填写")
    await page.click("form[data-op=concerns] button[type=submit]")
    await expect(page.locator("form[data-op=concerns] .field-error")).to_have_text(
        "来时情绪：必须填写")
    assert await page.evaluate(
        "[...document.querySelectorAll('#desk form')].every(f => f.noValidate)")

    # In English the names and codes come back.
    await page.click("[data-lang-button=en]")
    await expect(page.locator("#item-picked")).to_contain_text("ension")
