"""The resident's plan on the counter page (issue 20, linked plans): a case that carries a step
of a plan shows the whole plan, in order, as a timeline the clerk can hand to the resident."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from playwright.async_api import BrowserContext, expect

from shared.cli.cancer_story import the_family_applies, the_patient_comes
from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import sign_in


async def test_the_cancer_plan_shows_on_each_of_its_cases(center: Center, own: Own,
                                                          desk: BrowserContext,
                                                          screenshots: Path) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    now = datetime.now().astimezone()
    story = await the_patient_comes(clerk, now - timedelta(hours=2), own.center_id, "window-8")
    await the_family_applies(clerk, story, now - timedelta(hours=1), own.center_id, "window-8")

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-8", own.center_id)
    await page.click(f"#my-cases button[data-case='{story.benefit_case}']")
    block = page.locator("#plan-timeline")
    await expect(block).to_be_visible()
    steps = block.locator("li[data-seq]")
    await expect(steps).to_have_count(3)
    await expect(steps.nth(0)).to_contain_text("灵活就业人员社会保险暂停缴费")
    await expect(steps.nth(1)).to_contain_text("本案件")
    await expect(steps.nth(2)).to_contain_text("城乡居民医保医疗费用补助申领")
    await expect(steps.nth(2)).to_contain_text("在第2步之后")
    first, second = story.months
    await expect(steps.nth(2)).to_contain_text(f"{second.year}年{second.month}月起")
    await expect(steps.nth(0)).to_contain_text(f"{first.year}年{first.month}月起")
    await block.evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -90); }")
    await screenshot(page, screenshots / "counter-plan.png")

    # A case without a plan shows no such block.
    await page.click("#next-resident")
    dialog = page.locator("#leave-dialog")
    if await dialog.is_visible():
        await dialog.locator("button[value=leave]").click()
    await expect(page.locator("#reception")).to_be_visible()
    await expect(block).to_be_hidden()
