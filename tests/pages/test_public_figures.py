"""The public page of a center's monthly figures (公示) in a real browser: anyone opens it
without signing in, reads last month's closed figures in Chinese (or English), and prints it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import BrowserContext, expect

from tests.pages.center import Center, Own, resolved_case
from tests.support import wait_until


async def test_anyone_reads_and_prints_a_closed_month(center: Center, own: Own,
                                                      desk: BrowserContext) -> None:
    zone = ZoneInfo(center.settings.center_timezone)
    now = datetime.now(zone)
    last_month = (now.replace(day=1) - timedelta(days=1)).replace(day=1)
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    for n in range(3):  # three residents last month, each one trip, one case
        await resolved_case(clerk, own.center_id, at=last_month.replace(day=10, hour=9 + n),
                            emotion="angry", defused=n != 2)

    async def counted() -> bool:
        r = await supervisor.get("/figures", params={
            "period": "month", "from": last_month.date().isoformat(), "live": "true"})
        rows = r.json()["rows"]
        return bool(rows) and rows[0]["cases"] == 3 and rows[0]["emotion_defused_rate"][
            "denominator"] == 3
    await wait_until(counted, timeout=30, what="last month's figures")
    month = last_month.strftime("%Y-%m")
    r = await supervisor.post(f"/periods/{own.center_id}/{month}/close",
                              headers={"Idempotency-Key": f"close-{uuid.uuid4()}"})
    assert r.status_code in (200, 201), r.text

    async with httpx.AsyncClient(base_url=center.feedback) as anyone:  # no token
        async def published() -> bool:
            page = await anyone.get(f"/public/{own.center_id}")
            return page.status_code == 200 and f'data-month="{month}"' in page.text
        await wait_until(published, timeout=30, what="the month on the public page")

    page = await desk.new_page()
    await page.goto(f"{center.feedback}/public/{own.center_id}")
    await expect(page.locator("h1")).to_have_text("服务数据公示")
    section = page.locator(f"[data-month='{month}']")
    await expect(section.locator("h2")).to_have_text(
        f"{last_month.year}年{last_month.month}月")
    await expect(section.locator("[data-figure=visits] td")).to_have_text("3")
    await expect(section.locator("[data-figure=cases] td")).to_have_text("3")
    await expect(section.locator("[data-figure=emotion_defused_rate] td")).to_have_text(
        "66.7%（2/3）")
    await expect(section.locator("[data-figure=first_trip_rate] th")).to_have_text("一次办成率")
    # Nothing of a resident or a clerk on it, and no sign-in form.
    text = await page.locator("body").inner_text()
    assert own.clerk() not in text and "window-2" not in text
    assert await page.locator("input").count() == 0

    await page.click("a[lang=en]")
    await expect(page.locator("h1")).to_have_text("Published figures")
    await expect(section.locator("[data-figure=first_trip_rate] th")).to_have_text(
        "Resolved on the first trip")

    await page.emulate_media(media="print")
    await expect(page.locator(".p-lang")).to_be_hidden()
    await expect(section.locator("table")).to_be_visible()
