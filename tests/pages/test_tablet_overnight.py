"""The shared tablet between two clerks and two days: a sign-out the bus could not take yet
(the token still valid in every other service) is said on the sign-in screen and finished in
the background (in the screen's language, ended on the services' clock, not a fast tablet's;
a note a sign-out, headed by its clerk, so the next clerk's sign-out is not read as hers);
a page left open on the sign-in screen overnight drops the day's unsent steps at the center's
midnight, not at its next load, but not a step on its way then (intake may have it)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from shared.security.tokens import issue_token
from tests.pages.center import Center, Own
from tests.pages.services_clock import services_clock
from tests.pages.test_counter import sign_in
from tests.pages.test_shared_tablet import gone_from_the_tablet
from tests.support import wait_until

BUS_AWAY = json.dumps({"error": {"code": "auth_unavailable", "message": "the bus is away",
                                 "details": {}}})


async def test_a_sign_out_the_bus_did_not_take_is_said_and_finished_once_the_bus_is_back(
        center: Center, own: Own, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    token = await page.evaluate("JSON.parse(sessionStorage.getItem('sixstep.session')).token")

    # NATS is away: intake answers the sign-out 503, the token is not ended elsewhere.
    asked = 0
    asked_again = asyncio.Event()

    async def bus_away(route: Route) -> None:
        nonlocal asked
        asked += 1
        if asked >= 2:
            asked_again.set()
        await route.fulfill(status=503, headers={"Retry-After": "1"},
                            content_type="application/json", body=BUS_AWAY)

    await page.route("**/auth/sign-out", bus_away)
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()

    # The clerk is told, in Chinese, that her sign-in may still be valid elsewhere and that
    # the page keeps trying; the tablet's storage holds the token no more all the same.
    note = page.locator("#signout-pending")
    await expect(note).to_contain_text("可能仍然有效")
    await expect(note).to_contain_text("请勿关闭本页")
    assert await gone_from_the_tablet(page, token)
    await asyncio.wait_for(asked_again.wait(), 15)  # asked again in the background

    # The bus is back: the next try ends it in every service, and the page says so.
    await page.unroute("**/auth/sign-out")
    await expect(note).to_contain_text("已在所有服务上退出")
    async with httpx.AsyncClient(timeout=20.0) as client:
        async def refused(service: str) -> bool:
            r = await client.get(f"{center.urls[service]}/auth/me",
                                 headers={"Authorization": f"Bearer {token}"})
            return r.status_code == 401 and r.json()["error"]["code"] == "token_expired"

        for service in ("intake", "followup", "feedback"):
            await wait_until(lambda s=service: refused(s), what=f"{service} refusing it")
    await page.close()


@pytest.mark.parametrize("evening", [
    "2026-12-20T23:30:00+08:00",  # a Sunday
    "2026-12-31T23:30:00+08:00",  # New Year's Eve, the next day in a provisional year
    "2028-02-29T23:30:00+08:00",  # a leap day
])
async def test_a_page_left_on_the_sign_in_screen_overnight_drops_the_days_unsent_steps_at_midnight(
        center: Center, own: Own, browser: Browser, evening: str) -> None:
    # A tablet left on UTC: its own day ends at 08:00 in Shanghai, the center's at midnight.
    tablet = await browser.new_context(locale="zh-CN", timezone_id="UTC")
    page = await tablet.new_page()
    at = datetime.fromisoformat(evening)
    await page.clock.install(time=at)
    await page.goto(f"{center.intake}/counter")
    await expect(page.locator("#signin")).to_be_visible()

    # A clerk queued a step at 23:30 and walked away; the page stays on the sign-in screen.
    words = "她一个人住在幸福路，行动不便。"
    await page.evaluate("""([words, queued, clerk]) => localStorage.setItem(
        "sixstep.counter.queue.v1", JSON.stringify([{
          id: "q1", key: "k1", op: "restate", caseRef: "c1", by: clerk,
          body: { restatement: words, confirmed: true, occurred_at: queued },
          queuedAt: queued }]))""",
        [words, at.isoformat(), own.clerk()])

    await page.clock.fast_forward("29:00")  # 23:59 at the center: kept for its clerk
    assert not await gone_from_the_tablet(page, words)
    await page.clock.fast_forward("02:00")  # 00:01: the center's day has ended
    await wait_until(lambda: gone_from_the_tablet(page, words, "幸福路"),
                     what="the step dropped at the center's midnight, the page left open")
    failed = await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.failed.v1'))")
    assert [(f["by"], f["error"]["code"]) for f in failed] == [(own.clerk(), "queue_expired")]
    await tablet.close()


@pytest.mark.parametrize(("evening", "zone"), [
    ("2026-12-31T23:58:00+08:00", "America/Los_Angeles"),  # New Year's Eve, a provisional next
    ("2026-12-20T23:58:00+08:00", "UTC"),  # a Sunday
    ("2028-02-29T23:58:00+08:00", "Asia/Shanghai"),  # a leap day
])
async def test_a_step_on_its_way_at_the_centers_midnight_is_not_said_never_sent(
        center: Center, own: Own, browser: Browser, evening: str, zone: str) -> None:
    # A clerk's step goes out at 23:59 and intake's answer comes after midnight: the step was
    # recorded. The midnight's prune must neither drop it nor say it was never sent.
    tablet = await browser.new_context(locale="zh-CN", timezone_id=zone)
    page = await tablet.new_page()
    at = datetime.fromisoformat(evening)
    await page.clock.install(time=at)
    calls = await services_clock(page, behind=timedelta(0))  # the services' night too
    await page.goto(f"{center.intake}/counter")
    await expect(page.locator("#signin")).to_be_visible()
    # A token that outlives the tablet's clock (the page reads its exp on that clock).
    await page.fill("#signin-token", issue_token(center.settings, own.clerk(), "clerk",
                                                 own.center_id, ttl=timedelta(days=3 * 366)))
    await expect(page.locator("#signin-claims")).to_contain_text(own.clerk())
    await page.select_option("#signin-counter", "window-3")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()

    on_its_way = asyncio.Event()
    answer = asyncio.Event()

    async def slow_intake(route: Route) -> None:
        on_its_way.set()
        await answer.wait()
        await route.fulfill(status=201, content_type="application/json", body=json.dumps(
            {"id": "11111111-1111-4111-8111-111111111111", "version": 3, "position": 7}))

    await page.route("**/cases/*/restate", slow_intake)
    words = "她一个人住在幸福路，行动不便。"
    await page.evaluate("""([words, queued, clerk]) => {
        localStorage.setItem("sixstep.counter.cases.v1",
          JSON.stringify({ c1: "11111111-1111-4111-8111-111111111111" }));
        localStorage.setItem("sixstep.counter.queue.v1", JSON.stringify([{
          id: "q1", key: "k1-restate-0001", op: "restate", caseRef: "c1", by: clerk,
          body: { restatement: words, confirmed: true, occurred_at: queued },
          queuedAt: queued }]));
        window.dispatchEvent(new Event("online"));
      }""", [words, (at + timedelta(seconds=59)).isoformat(), own.clerk()])
    await asyncio.wait_for(on_its_way.wait(), 20)  # sent at 23:59, not answered yet
    calls.open = {r for r in calls.open if not r.url.endswith("/restate")}  # held, on purpose
    await calls.settled()

    await page.clock.fast_forward("03:00")  # 00:01 at the center: the day-end prune ran
    answer.set()  # intake recorded it
    await wait_until(lambda: gone_from_the_tablet(page, words),
                     what="the recorded step gone from the queue")
    failed = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.failed.v1') || '[]')")
    assert failed == [], "a step intake recorded was said never sent"
    await tablet.close()


async def test_the_sign_out_note_follows_the_language_the_next_clerk_picks(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # The bus stays away: the note stays. The next clerk at the tablet reads English; the note
    # is said in her language, in codes.json's words, as every other word of the screen.
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-4", own.center_id)
    await signed_out_with_the_bus_away(page)
    note = page.locator("#signout-pending")
    await page.click("[data-lang-button=en]")
    await expect(note).to_contain_text("may still be valid")
    await page.click("[data-lang-button=zh]")
    await expect(note).to_contain_text("可能仍然有效")
    await page.close()


async def test_a_tablet_whose_clock_runs_fast_does_not_say_ended_a_sign_out_the_bus_never_took(
        center: Center, own: Own, browser: Browser) -> None:
    # The tablet's clock is 5 minutes fast; the clerk's token has 10 minutes left when she signs
    # in. She signs out as the bus is away, and the tablet's clock passes the token's exp while
    # the services' clock is 5 minutes short of it: the token is still taken everywhere.
    tablet = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await tablet.new_page()
    await page.clock.install(time=datetime.now(UTC) + timedelta(minutes=5))
    await page.goto(f"{center.intake}/counter")
    await page.fill("#signin-token", issue_token(center.settings, own.clerk(), "clerk",
                                                 own.center_id, ttl=timedelta(minutes=10)))
    await expect(page.locator("#signin-claims")).to_contain_text(own.clerk())
    await page.select_option("#signin-counter", "window-5")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()  # its answers told the page their clock

    asked = await signed_out_with_the_bus_away(page)
    note = page.locator(f"#signout-pending [data-clerk={own.clerk()}]")

    await page.clock.fast_forward("06:00")  # past exp by the tablet, 4 minutes before by intake
    async def state() -> str:
        return str(await note.get_attribute("data-state"))

    async def decided() -> bool:
        return len(asked) >= 2 or await state() == "ended"

    await wait_until(decided, what="asked again, or said ended")
    said = await state()
    assert (said, len(asked)) == ("pending", 2), "said ended on the tablet's clock, never asked"
    await tablet.close()


async def test_a_clerks_sign_out_beside_anothers_still_pending_is_said_as_her_own(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Clerk 068 signs out as the bus is away: her note says her sign-in may still be valid.
    # Clerk 069 signs in on the same page and out again, the bus taking hers: the screen
    # said 068's red note alone, which 069 read as hers ("可能仍然有效").
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(1), "window-6", own.center_id)
    first = await page.evaluate("JSON.parse(sessionStorage.getItem('sixstep.session')).token")
    await signed_out_with_the_bus_away(page, only=first)
    hers = page.locator(f"#signout-pending [data-clerk={own.clerk(1)}]")
    await expect(hers).to_contain_text(own.clerk(1))
    await expect(hers).to_contain_text("可能仍然有效")

    await page.fill("#signin-token", center.token(own.clerk(2), "clerk", own.center_id))
    await expect(page.locator("#signin-claims")).to_contain_text(own.clerk(2))
    await page.select_option("#signin-counter", "window-7")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()

    mine = page.locator(f"#signout-pending [data-clerk={own.clerk(2)}]")
    await expect(mine).to_contain_text("已在所有服务上退出")
    await expect(mine).to_have_attribute("data-state", "ended")
    await expect(hers).to_have_attribute("data-state", "pending")
    await expect(page.locator("#signout-pending [data-state=pending]")).to_have_count(1)
    await page.close()


async def signed_out_with_the_bus_away(page: Page, only: str | None = None) -> list[str]:
    """The clerk signs out while intake answers every sign-out 503 (asked again in 30 s), and
    the sign-in screen says so; the tokens each sign-out was asked with, as they come.
    ``only``: the bus is away for this token's sign-out alone (the next clerk's goes)."""
    asked: list[str] = []

    async def bus_away(route: Route) -> None:
        said = route.request.headers.get("authorization", "")
        if only is not None and said != f"Bearer {only}":
            await route.continue_()
            return
        asked.append(said)
        await route.fulfill(status=503, headers={"Retry-After": "30"},
                            content_type="application/json", body=BUS_AWAY)

    await page.route("**/auth/sign-out", bus_away)
    await page.click("#sign-out")
    await expect(page.locator("#signout-pending")).to_contain_text("可能仍然有效")
    return asked
