"""The services' clock as a page reads it: the ``Date`` header of every answer it fetches. A
test that fakes the tablet's clock (``page.clock``) for a night at the calendar's edges lets
the services answer on that night too, ``behind`` the tablet's clock (a tablet 10 minutes
fast: 10 minutes), whatever the real date: the page judges the center's day on the services'
clock (ui.js, ``centerDay``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Route

# A route of the test's own: handles the answer (fulfils it) and says so, else leaves it.
Handler = Callable[[Route, str], Awaitable[bool]]


class ServicesClock:
    """The page's API calls still on their way, to be waited for before the tablet's clock is
    moved: an answer dated before a jump of the faked clock and read after it says a services'
    clock off by the jump."""

    def __init__(self, page: Page) -> None:
        self.open: set[Request] = set()
        self.changed = asyncio.Event()
        page.on("request", self.started)
        page.on("requestfinished", self.ended)
        page.on("requestfailed", self.ended)

    def started(self, request: Request) -> None:
        if request.resource_type in ("fetch", "xhr"):
            self.open.add(request)

    def ended(self, request: Request) -> None:
        self.open.discard(request)
        self.changed.set()

    async def settled(self) -> None:
        """Every API call the page has made is answered (or failed)."""
        async with asyncio.timeout(20):
            while self.open:
                self.changed.clear()
                await self.changed.wait()


async def services_clock(page: Page, behind: timedelta,
                         answer: Handler | None = None) -> ServicesClock:
    """Every answer to the page's API calls says the services' clock ``behind`` the page's
    own (as it is faked at that moment). ``answer(route, date)``: answers a call itself
    (a service the test stands in for), with ``date`` as its Date header, when it returns
    True."""
    calls = ServicesClock(page)

    async def dated(route: Route) -> None:
        try:
            await _dated(route)
        except PlaywrightError as error:
            # The page or its context closed with a call on its way (a board polling every
            # second as its test ends): nothing is left to answer. Raised, it surfaced in the
            # next test on the loop, as that test's failure (a fresh CI run).
            gone = ("disposed" in str(error) or "closed" in str(error))
            if not (page.is_closed() or gone):
                raise

    async def _dated(route: Route) -> None:
        if route.request.resource_type not in ("fetch", "xhr"):
            await route.continue_()
            return
        tablet = await page.evaluate("Date.now()")
        said = format_datetime(datetime.fromtimestamp(tablet / 1000, UTC) - behind, usegmt=True)
        if answer is not None and await answer(route, said):
            return
        fetched = await route.fetch()
        await route.fulfill(response=fetched, headers={**fetched.headers, "date": said})

    await page.route("**/*", dated)
    return calls
