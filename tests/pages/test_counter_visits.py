"""The clerk's screen counts trips (人次): one per resident at the window, naming the case when
they came back about one, also when they came only to ask."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import BrowserContext, Route, expect

from tests.pages.center import Center, Own
from tests.pages.test_counter import id_number, pick_item, saved, sign_in
from tests.support import stream_envelopes, wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")



async def test_each_resident_at_the_window_is_one_trip(center: Center, own: Own,
                                                       desk: BrowserContext) -> None:
    clerk = center.client("intake", own.clerk(1), "clerk", own.center_id)
    card = id_number("31011519700101123")
    r = await clerk.post("/residents", json={
        "name": "李秀兰", "id_number": card, "phone": "13712345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    resident_id = r.json()["resident_id"]
    other = id_number("31011519800202223")
    r = await clerk.post("/residents", json={
        "name": "张伟", "id_number": other, "phone": "13612345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    three_days_ago = (datetime.now().astimezone() - timedelta(days=3)).isoformat()
    r = await clerk.post("/cases", headers={"Idempotency-Key": f"v-{uuid.uuid4()}"}, json={
        "center_id": own.center_id, "counter_id": "window-4", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": resident_id, "occurred_at": three_days_ago})
    earlier = r.json()["id"]

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(1), "window-4", center_id=own.center_id)
    leave = page.locator("#leave-dialog button[value=leave]")

    # She comes back about her subsidy: found, the case taken up -> a trip naming it.
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await page.click(f"#past-cases button[data-case='{earlier}']")
    await saved(page, ["CaseOpened"])
    await page.click("#next-resident")
    await leave.click()

    # Someone not looked up asks about the minimum living allowance: a trip, no case named.
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])
    await page.click("#next-resident")
    await leave.click()

    # She comes once more, only to ask: found, nothing opened; her trip is recorded when the
    # next resident is looked up.
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#past-cases li")).not_to_have_count(0)
    # Her lookup is over (recognised, hints read) once the item search has the focus; only
    # then is the next resident looked up, as a clerk would.
    await expect(page.locator("#item-q")).to_be_focused()
    await page.fill("#resident-q", other)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-status")).to_contain_text("以往 0 件")

    subject = f"{center.settings.subject_prefix}.intake.VisitRecorded.*"

    async def trips() -> list[str | None]:
        return [e.payload["case_id"] for e in await stream_envelopes(center.settings, subject)
                if e.center_id == own.center_id]
    await wait_until(lambda: _at_least(trips, 3), timeout=45, what="three trips")
    found = await trips()  # sent as they happen, so in any order under load
    assert sorted(found, key=lambda c: c or "") == sorted([earlier, None, None],
                                                           key=lambda c: c or ""), found
    assert all(e.actor == own.clerk(1) and e.payload["counter_id"] == "window-4"
               for e in await stream_envelopes(center.settings, subject)
               if e.center_id == own.center_id)


async def _at_least(trips: object, n: int) -> bool:
    return len(await trips()) >= n  # type: ignore[operator]


async def test_a_resident_back_the_next_morning_is_a_trip_of_that_morning(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """The last resident of the evening is looked up and asks only; the clerk leaves the
    page as it is (no "next resident"), the tablet sleeps the night. The next morning she
    comes back and a case is opened for her: the page still held her sitting of the evening
    before, so her two trips were one, dated the evening before (New Year's Eve's: last
    year's; a Friday's: last week's). A sitting of another day of the center's is over: the
    evening's trip is counted as hers, and the morning's is that morning's."""
    center_id = own.center_id
    clerk = center.client("intake", own.clerk(2), "clerk", center_id)
    card = id_number("31011519650505124")
    r = await clerk.post("/residents", json={
        "name": "王秀英", "id_number": card, "phone": "13912345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(2), "window-5", center_id=center_id)
    # The evening before by the center's day: 19:30 of yesterday in Shanghai, whatever the
    # hour now. A fixed 14 hours put the "evening" on the same center day from 14:00 Shanghai
    # (06:00 UTC) on: one sitting, one trip, and the test failed in the afternoon only.
    today = datetime.now(SHANGHAI).date()
    evening = datetime.combine(today - timedelta(days=1), time(19, 30), SHANGHAI)
    night = datetime.now(UTC) - evening
    await page.clock.install(time=evening)  # the tablet's clock as she sits down

    asleep = [False]

    async def in_the_evening(route: Route) -> None:
        # The service's clock answers the evening too (its Date header): the page reads it,
        # and a tablet whose clock agreed with it then and agrees in the morning slept.
        if asleep[0]:
            await route.continue_()
            return
        answer = await route.fetch()
        said = format_datetime(datetime.now(UTC) - night, usegmt=True)
        await route.fulfill(response=answer, headers={**answer.headers, "date": said})
    await page.route("**/*", in_the_evening)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#item-q")).to_be_focused()
    asleep[0] = True  # the morning's answers say the morning

    await page.clock.set_system_time(datetime.now(UTC))  # the morning (asleep, then woken)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#item-q")).to_be_focused()
    await pick_item(page, "低保", "最低生活保障")
    morning = datetime.now(UTC)
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])

    subject = f"{center.settings.subject_prefix}.intake.VisitRecorded.*"

    async def trips() -> list[Any]:
        return [e for e in await stream_envelopes(center.settings, subject)
                if e.center_id == center_id and e.actor == own.clerk(2)]
    await wait_until(lambda: _at_least(trips, 2), timeout=45, what="two trips")
    found = sorted(await trips(), key=lambda e: e.occurred_at)
    assert len(found) == 2, found
    assert found[0].occurred_at < evening + timedelta(hours=1), "the evening's"
    assert abs(found[1].occurred_at - morning) < timedelta(minutes=1), "the morning's"
