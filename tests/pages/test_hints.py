"""Eligibility hints on the clerk's screen (issue 20): after the lookup, the resident declares
a special work type (kept with consent) and the hint block shows what he may be entitled to,
with the rule's reason and its policy basis; the clerk records one taken, one not needed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from playwright.async_api import BrowserContext, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import id_number, sign_in


async def test_the_clerk_sees_hints_for_a_53_year_old_and_records_what_he_takes(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    born = date.today() - timedelta(days=int(53.5 * 365.25))
    card = id_number(f"310115{born:%Y%m%d}135")
    r = await clerk.post("/residents", json={
        "name": "赵国庆", "id_number": card, "phone": "13761234508",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    block = page.locator("#hints-card")
    await expect(block).to_be_visible()
    await expect(block.locator("#hints li")).to_have_text("暂无提示")

    # He worked underground for twenty years: declared, but kept only with his consent.
    await block.locator("input[value=special_work_type]").check()
    await block.locator("#facts-form button[type=submit]").click()
    await expect(block.locator("#facts-note")).to_have_text("须经居民同意才能保存")
    await block.locator("input[name=consent]").check()
    await block.locator("#facts-form button[type=submit]").click()
    hints = block.locator("#hints li[data-item]")
    await expect(hints).to_have_count(2)
    early = block.locator("li[data-item=PEN-EARLY-RETIREMENT-SPECIAL-WORK]")
    await expect(early.locator(".hint-because")).to_have_text("依据: 53岁，从事特殊工种")
    await expect(early.locator(".hint-basis")).to_contain_text("国发〔1978〕104号")
    await expect(block.locator("#hints-count")).to_have_text("2")
    await block.scroll_into_view_if_needed()
    await screenshot(page, screenshots / "counter-hints.png")

    await early.locator("button[data-act=taken]").click()
    await expect(early.locator(".badge")).to_have_text("已办理")
    await expect(page.locator("#item-q")).to_have_value("PEN-EARLY-RETIREMENT-SPECIAL-WORK")
    benefit = block.locator("li[data-item=SI-UNEMPLOYMENT-BENEFIT]")
    await benefit.locator("button[data-act=dismissed]").click()
    await expect(benefit.locator(".badge")).to_have_text("不需要")
    await expect(block.locator("#hints-count")).to_have_text("0")
    assert card not in await page.content()

    # At another window later (a new page: nothing kept in the browser), the block says what
    # came of each, from the log.
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-3", own.center_id)
    block = page.locator("#hints-card")
    early = block.locator("li[data-item=PEN-EARLY-RETIREMENT-SPECIAL-WORK]")
    benefit = block.locator("li[data-item=SI-UNEMPLOYMENT-BENEFIT]")
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(early.locator(".badge")).to_have_text("已办理")
    await expect(benefit.locator(".badge")).to_have_text("不需要")
