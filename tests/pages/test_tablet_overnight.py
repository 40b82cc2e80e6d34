"""The shared tablet between two clerks and two days: a sign-out the bus could not take yet
(the token still valid in every other service) is said on the sign-in screen and finished in
the background; a page left open on the sign-in screen overnight drops the day's unsent steps
at the center's midnight, not at its next load."""

from __future__ import annotations

import asyncio
import json

import httpx
from playwright.async_api import BrowserContext, Route, expect

from tests.pages.center import Center
from tests.pages.test_counter import sign_in
from tests.pages.test_shared_tablet import gone_from_the_tablet
from tests.support import wait_until

BUS_AWAY = json.dumps({"error": {"code": "auth_unavailable", "message": "the bus is away",
                                 "details": {}}})


async def test_a_sign_out_the_bus_did_not_take_is_said_and_finished_once_the_bus_is_back(
        center: Center, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, "clerk-063", "window-2")
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
