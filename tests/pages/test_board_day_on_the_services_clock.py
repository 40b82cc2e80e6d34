"""The supervisor's wall screen whose clock runs 10 minutes fast, at 23:55 in Shanghai on New
Year's Eve 2026 (a provisional 2027 next): the board still shows 31 December's figures and
worklist, the center's day on the services' clock (ui.js, ``centerDay``). On the screen's own
clock it turned to 1 January 2027 at 23:50."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, Request, expect

from shared.security.tokens import issue_token
from tests.pages.center import Center, Own
from tests.pages.services_clock import services_clock
from tests.support import wait_until


async def test_a_wall_screen_ten_minutes_fast_shows_new_years_eve_at_2355(
        center: Center, own: Own, browser: Browser) -> None:
    services = datetime.fromisoformat("2026-12-31T23:55:00+08:00")
    ahead = timedelta(minutes=10)  # the screen says 00:05 on 1 January 2027
    screen = await browser.new_context(viewport={"width": 1440, "height": 900},
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        board = await screen.new_page()
        await board.clock.install(time=services + ahead)
        await services_clock(board, behind=ahead)
        days: list[tuple[str, str]] = []  # (from, to) of each day-figures ask, in order

        def asked(request: Request) -> None:
            url = urlsplit(request.url)
            query = parse_qs(url.query)
            if url.path.endswith("/figures") and query.get("period") == ["day"]:
                days.append((query["from"][0], query["to"][0]))

        board.on("request", asked)
        await board.goto(f"{center.feedback}/board?every=1")
        # The token outlives the screen's faked clock (the page reads its exp on that clock).
        await board.fill("#signin-token", issue_token(
            center.settings, own.supervisor(), "supervisor", own.center_id,
            ttl=timedelta(days=3 * 366)))
        await board.click("#signin-form button[type=submit]")
        await expect(board.locator("#board")).to_be_visible()

        # Once an answer has told the page the services' clock, every refresh asks for the
        # thirty days up to 31 December (a page with no answer yet has only the screen's).
        async def asked_thrice() -> bool:
            return len(days) >= 3

        await wait_until(asked_thrice, what="the board refreshed after its first answers")
        assert days[-1] == ("2026-12-02", "2026-12-31"), days
        assert await board.evaluate("""async () => {
            const ui = await import("/ui/shared/ui.js");
            return ui.centerDay();
        }""") == "2026-12-31"
    finally:
        # The board refreshes every second: a call still held by the route when the screen
        # closes is let go, not failed into the next test.
        await screen.unroute_all(behavior="ignoreErrors")
        for page in screen.pages:
            await page.unroute_all(behavior="ignoreErrors")
        await screen.close()
