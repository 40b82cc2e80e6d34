"""The case's strip at the counter says a due date passed on the center's day, not on the
screen's: a counter machine left on UTC (a remote desktop, a fresh tablet) half an hour after
midnight in Shanghai is still on the day before, and would read yesterday's due date as today's
(the Shanghai-date trap, on the page)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from shared.security.tokens import issue_token
from tests.pages.center import Center, Own
from tests.pages.services_clock import services_clock
from tests.pages.test_counter import pick_item, saved


async def test_a_due_date_is_overdue_half_an_hour_after_midnight_on_a_utc_screen(
        center: Center, own: Own, browser: Browser) -> None:
    # A deadline two days ahead (the server's clock is the machine's); the screen's clock is
    # then moved to 16:30 UTC that day: 00:30 the next day in Shanghai.
    due = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)
    after_midnight = datetime.combine(due, time(16, 30), UTC)
    screen = await browser.new_context(viewport={"width": 1440, "height": 900},
                                       locale="zh-CN", timezone_id="UTC")
    screen.set_default_timeout(15_000)
    try:
        page = await screen.new_page()
        await page.goto(f"{center.intake}/counter")
        # Signed in for long enough that the moved screen clock still finds the token valid.
        await page.fill("#signin-token", issue_token(center.settings, own.clerk(), "clerk",
                                                     own.center_id, ttl=timedelta(days=4)))
        await page.select_option("#signin-counter", "window-4")
        await page.click("#signin-form button[type=submit]")
        await expect(page.locator("#desk")).to_be_visible()
        await pick_item(page, "低保", "最低生活保障")
        await page.click("#open-case")
        await page.fill("#words", "低保年审材料截止前要交齐。")
        await page.click("form[data-op=hear] button[type=submit]")
        await page.fill("#deadline-due", due.isoformat())
        await page.fill("#deadline-desc", "低保年审材料截止")
        await page.click("form[data-op=deadlines] button[type=submit]")
        await saved(page, ["CaseOpened", "RequestHeard", "DeadlineNoted", "CaseDueDateSet"])
        # The timeline's due date says why and who set it (test_due_date_timeline.py).
        await expect(page.locator("#timeline li[data-type=CaseDueDateSet] .t-body")).to_have_text(
            f"{due:%Y/%m/%d} · 按记录的期限 · 设定：{own.clerk()}")

        # The clerk comes back to the case after midnight (the page reopens it); the services'
        # answers say that midnight too (the page judges the center's day on their clock).
        await services_clock(page, behind=timedelta(0))
        await page.clock.set_fixed_time(after_midnight)
        await page.reload()
        await expect(page.locator("#desk")).to_be_visible()
        chip = page.locator("#case-state [data-state=due]")
        await expect(chip).to_contain_text("已超办结时限")
        await expect(chip).to_have_class("badge red")

        # A new deadline typed now cannot be the day that just ended in Shanghai (the
        # screen's today), and the case's opening reads on the center's clock too.
        await page.fill("#deadline-due", due.isoformat())
        await expect(page.locator("#deadline-day")).to_have_text("期限不能早于今天")
        await page.fill("#deadline-due", (due + timedelta(days=1)).isoformat())
        await expect(page.locator("#deadline-day")).not_to_have_class("help day-echo error-text")
        shown = await page.evaluate("""async () => {
            const ui = await import("/ui/shared/ui.js");
            return ui.fmtDateTime("2026-12-31T16:30:00+00:00");
        }""")
        assert shown == "01/01 00:30"
    finally:
        await screen.close()
