"""A counter tablet whose clock runs 10 minutes off, on the calendar's edges (New Year's Eve
with a provisional 2027 next, Sunday 20 December 2026, 29 February 2028), left on another zone
than the center's: every center's day the page judges is judged on the services' clock (the
tablet's moved by what the services' answers say), in the center's zone. On the tablet's own
clock, a tablet 10 minutes fast dropped the day's unsent steps (what a resident said) 10
minutes before the center's midnight, took a resident looked up again at 23:55 for a new trip,
the next day's, and refused today as a deadline; one 10 minutes slow kept them 10 minutes past
it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Route, expect

from shared.security.tokens import issue_token
from tests.pages.center import Center, Own
from tests.pages.services_clock import services_clock
from tests.pages.test_counter import id_number, pick_item
from tests.pages.test_shared_tablet import gone_from_the_tablet
from tests.support import wait_until

WORDS = "她一个人住在幸福路，行动不便。"
NEEDS = "想问问他儿子的低保能不能续上。"


async def tablet_at(browser: Browser, zone: str, services: datetime,
                    ahead: timedelta) -> tuple[BrowserContext, Page]:
    """A tablet on ``zone`` whose clock runs ``ahead`` of the services' (at ``services``)."""
    tablet = await browser.new_context(locale="zh-CN", timezone_id=zone)
    page = await tablet.new_page()
    await page.clock.install(time=services + ahead)
    return tablet, page


async def signed_in(page: Page, center: Center, clerk: str, counter: str,
                    center_id: str) -> None:
    """``clerk`` signs in at ``counter``; its answers tell the page the services' clock. The
    token outlives the tablet's faked clock (the page reads its exp on that clock)."""
    await page.goto(f"{center.intake}/counter")
    await page.fill("#signin-token", issue_token(center.settings, clerk, "clerk", center_id,
                                                 ttl=timedelta(days=3 * 366)))
    await expect(page.locator("#signin-claims")).to_contain_text(clerk)
    await page.select_option("#signin-counter", counter)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()


@pytest.mark.parametrize(("evening", "zone", "minutes_ahead"), [
    ("2026-12-31T23:45:00+08:00", "America/Los_Angeles", 10),  # New Year's Eve; fast
    ("2026-12-20T23:45:00+08:00", "America/Los_Angeles", 10),  # a Sunday; fast
    ("2028-02-29T23:45:00+08:00", "UTC", -10),  # a leap day; slow
])
async def test_a_tablet_ten_minutes_off_keeps_the_days_steps_till_the_centers_midnight(
        center: Center, own: Own, browser: Browser, evening: str, zone: str,
        minutes_ahead: int) -> None:
    services = datetime.fromisoformat(evening)
    ahead = timedelta(minutes=minutes_ahead)
    tablet, page = await tablet_at(browser, zone, services, ahead)
    calls = await services_clock(page, behind=ahead)
    await signed_in(page, center, own.clerk(1), "window-6", own.center_id)

    # At 23:45 by the services, a colleague went home with a step still queued on this tablet
    # and one intake refused, for her to correct: both kept for her till the day's end.
    await page.evaluate("""async ([words, needs, clerk]) => {
        const q = await import("/ui/intake/queue.js");
        const at = new Date().toISOString();
        const queued = { id: "q1", key: "k1", op: "restate", caseRef: "c1", by: clerk,
                         body: { restatement: words, confirmed: true, occurred_at: at },
                         ...q.clockNow() };
        const refused = { id: "q2", key: "k2", op: "concerns", caseRef: "c2", by: clerk,
                          body: { needs: [needs], occurred_at: at }, ...q.clockNow() };
        localStorage.setItem("sixstep.counter.queue.v1", JSON.stringify([queued, refused]));
        new q.StepQueue().refuse(refused, { code: "invalid_command", details: {} });
      }""", [WORDS, NEEDS, own.clerk(2)])

    await calls.settled()
    await page.clock.fast_forward("10:00")  # 23:55 by the services; the fast tablet's 00:05
    assert not await gone_from_the_tablet(page, WORDS), "the queued step dropped before midnight"
    assert not await gone_from_the_tablet(page, NEEDS), "the refused step dropped before midnight"

    await calls.settled()
    await page.clock.fast_forward("06:00")  # 00:01 by the services: the center's day is over
    await wait_until(lambda: gone_from_the_tablet(page, WORDS, NEEDS, "幸福路"),
                     what="the day's steps dropped at the center's midnight")
    failed = await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.failed.v1'))")
    assert [(f["by"], f["error"]["code"]) for f in failed] == [(own.clerk(2), "queue_expired")]
    await tablet.close()


@pytest.mark.parametrize(("evening", "zone", "number"), [
    ("2026-12-31T23:48:00+08:00", "America/Los_Angeles", "31011519551231128"),  # New Year's Eve
    ("2026-12-20T23:48:00+08:00", "Asia/Shanghai", "31011519561220226"),  # a Sunday
])
async def test_a_resident_looked_up_again_at_2355_on_a_fast_tablet_is_one_trip_of_that_day(
        center: Center, own: Own, browser: Browser, evening: str, zone: str, number: str) -> None:
    card = id_number(number)
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    r = await clerk.post("/residents", json={
        "name": "陈桂芳", "id_number": card, "phone": "13512345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text

    services = datetime.fromisoformat(evening)
    tablet, page = await tablet_at(browser, zone, services, timedelta(minutes=10))

    async def stand_in(route: Route, date: str) -> bool:
        # Intake stands in for the writes (the real one's clock is today's, not this night's):
        # the opening waits (503), a trip is taken.
        request = route.request
        path = request.url.split("?")[0]
        if request.method != "POST" or not path.endswith(("/cases", "/visits")):
            return False
        if path.endswith("/cases"):
            await route.fulfill(status=503, headers={"Retry-After": "30", "date": date},
                                content_type="application/json", body=json.dumps(
                                    {"error": {"code": "store_unavailable", "message": "away",
                                               "details": {}}}))
        else:
            await route.fulfill(status=201, headers={"date": date},
                                content_type="application/json",
                                body=json.dumps({"id": "v1", "version": 1, "position": 1}))
        return True

    calls = await services_clock(page, behind=timedelta(minutes=10), answer=stand_in)
    posts: list[tuple[str, dict[str, object]]] = []  # in the order the page made them

    def posted(request: Request) -> None:
        path = request.url.split("?")[0]
        if request.method == "POST" and path.endswith(("/cases", "/visits")):
            posts.append((path.rsplit("/", 1)[1], json.loads(request.post_data or "{}")))

    page.on("request", posted)
    await signed_in(page, center, own.clerk(), "window-7", own.center_id)

    # She sits down at 23:48 by the services (23:58 by the tablet), asks, and is looked up
    # again at 23:55 (00:05 the next day by the tablet): the same sitting, the same day.
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#item-q")).to_be_focused()
    await calls.settled()
    await page.clock.fast_forward("07:00")
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#item-q")).to_be_focused()

    # A case is opened for her: her one trip is recorded then (the page posts it before the
    # opening goes out of its queue).
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await wait_until(lambda: _opened(posts), what="the opening sent")
    trips = [body for kind, body in posts if kind == "visits"]
    assert len(trips) == 1, f"her sitting was split at the tablet's midnight: {trips}"

    # A deadline today (the center's, by the services) is today, not a day past.
    await page.fill("#deadline-due", services.date().isoformat())
    echo = page.locator("#deadline-day")
    await expect(echo).not_to_have_text("")
    await expect(echo).not_to_have_class("help day-echo error-text")
    await tablet.close()


async def _opened(posts: list[tuple[str, dict[str, object]]]) -> bool:
    return any(kind == "cases" for kind, _ in posts)
