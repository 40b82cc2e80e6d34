"""A counter tablet whose clock runs 3 minutes fast, its network down: the steps it keeps say
its own clock's moment, and reach intake twenty minutes later, behind intake's clock, where
nothing in ``occurred_at`` shows the tablet's error. The page stamps each request with its
clock as it sends (``sent_at``), and intake dates the steps when they really happened. A
tablet ten minutes off is told to set its clock right, in the clerk's words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, Request, expect

from tests.pages.center import Center
from tests.pages.test_counter import pick_item, saved, sign_in
from tests.pages.test_nothing_lost import case_of

FAST = timedelta(minutes=3)


def posted_bodies(page: Page) -> list[dict[str, Any]]:
    """The bodies of the page's posts to intake's cases, as they finish."""
    bodies: list[dict[str, Any]] = []

    def posted(request: Request) -> None:
        if request.method == "POST" and "/cases" in request.url and request.post_data:
            bodies.append(json.loads(request.post_data))

    page.on("requestfinished", posted)
    return bodies


async def two_steps_kept_offline(page: Page, desk: BrowserContext) -> Locator:
    """The network down, the clerk opens a case and hears the resident: both steps kept."""
    await desk.set_offline(True)
    await page.click("#open-case")
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    net = page.locator("#net")
    await expect(net).to_have_attribute("data-pending", "2")
    return net


async def test_steps_kept_offline_on_a_fast_tablet_are_dated_when_they_happened(
        center: Center, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, "clerk-033", "window-7")
    await pick_item(page, "低保", "最低生活保障")
    bodies = posted_bodies(page)

    # Twenty minutes ago the network was down: the tablet, 3 minutes fast, kept two steps.
    happened = datetime.now(UTC) - timedelta(minutes=20)
    await page.clock.set_fixed_time(happened + FAST)
    net = await two_steps_kept_offline(page, desk)

    # Now it is back: the tablet's clock, still 3 minutes fast, goes with each request.
    await page.clock.set_fixed_time(datetime.now(UTC) + FAST)
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await saved(page, ["CaseOpened", "RequestHeard"])
    assert bodies and all("sent_at" in b for b in bodies), bodies
    case = await case_of(page, center, "clerk-033", 2)
    for entry in case["timeline"]:
        at = datetime.fromisoformat(entry["occurred_at"])
        # The time between reading the clock here and intake's receipt, at most: as sent
        # (before sent_at), the tablet's 3 minutes stayed in.
        assert happened <= at < happened + timedelta(minutes=1), entry


async def test_a_tablet_ten_minutes_off_is_asked_to_set_its_clock(
        center: Center, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, "clerk-034", "window-8")
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])
    hear = page.locator("form[data-op=hear]")
    for off in (timedelta(minutes=10), -timedelta(minutes=10)):  # fast, then slow
        await page.clock.set_fixed_time(datetime.now(UTC) + off)
        await page.fill("#words", "低保怎么申请？")
        async with page.expect_response(lambda r: r.url.endswith("/hear")) as answered:
            await hear.locator("button[type=submit]").click()
        answer = await answered.value
        assert answer.status == 422, await answer.text()
        assert (await answer.json())["error"]["details"]["field"] == "sent_at"
        await expect(hear.locator(".refusal")).to_contain_text(
            "本机时间：与服务器的时间相差太多，请校准本机时间后重发")
    case = await case_of(page, center, "clerk-034", 1)
    assert [e["type"] for e in case["timeline"]] == ["CaseOpened"], "nothing recorded"


async def test_a_tablet_clock_set_right_while_its_steps_waited_offline_still_dates_them_right(
        center: Center, desk: BrowserContext) -> None:
    """The tablet, 3 minutes fast, keeps two steps while the network is down; twenty minutes
    later (by the page's monotonic clock too) its clock is set right (NTP, or the clerk),
    3 minutes back, and then the network returns. Stamped with the clock as it is, ``sent_at``
    said a right clock and the steps kept the 3 minutes they were stamped with (17 minutes
    ago, not 20). The page sends, for a step queued before the clock was set back, the clock
    as it was set when the step was queued, moved on by its monotonic clock: intake takes the
    3 minutes off, and the steps are dated when they happened."""
    page = await desk.new_page()
    await sign_in(page, center, "clerk-035", "window-6")
    await pick_item(page, "低保", "最低生活保障")
    happened = datetime.now(UTC) - timedelta(minutes=20)
    await page.clock.install(time=happened + FAST)  # Date and performance.now, both faked
    bodies = posted_bodies(page)
    net = await two_steps_kept_offline(page, desk)

    await page.clock.fast_forward("20:00")  # twenty minutes offline, the clock still fast
    await page.clock.set_system_time(datetime.now(UTC))  # set right: 3 minutes back
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await saved(page, ["CaseOpened", "RequestHeard"])
    case = await case_of(page, center, "clerk-035", 2)
    for entry in case["timeline"]:
        at = datetime.fromisoformat(entry["occurred_at"])
        # Stamped with the clock as it is: 17 minutes ago, the 3 minutes kept.
        assert happened - timedelta(minutes=1) <= at < happened + timedelta(minutes=1), entry
    # What was said: the clock as it was set when the steps were queued, 3 minutes fast.
    sent = [datetime.fromisoformat(b["sent_at"]) for b in bodies if "sent_at" in b]
    assert sent and all(s - datetime.now(UTC) > FAST - timedelta(minutes=1) for s in sent), \
        bodies
