"""A counter tablet whose clock runs 3 minutes fast, its network down: the steps it keeps say
its own clock's moment, and reach intake twenty minutes later, behind intake's clock, where
nothing in ``occurred_at`` shows the tablet's error. The page stamps each request with its
clock as it sends (``sent_at``), and intake dates the steps when they really happened. A
tablet ten minutes off is told to set its clock right, in the clerk's words."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import BrowserContext, Locator, Page, Request, expect

from tests.pages.center import Center, Own
from tests.pages.test_counter import case_heard, id_number, pick_item, saved, sign_in
from tests.pages.test_nothing_lost import case_of
from tests.support import stream_envelopes, wait_until

FAST = timedelta(minutes=3)
SHANGHAI = ZoneInfo("Asia/Shanghai")


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


async def kept_since() -> tuple[datetime, int]:
    """When the steps were kept, in real time, and how long ago, in ms, for ``fast_forward``:
    twenty minutes, or less just after the center's midnight. The page drops at its day's end
    the steps a day before kept (docs/pages.md), judged on the tablet's clock, 3 minutes fast:
    twenty minutes kept offline across midnight are dropped, rightly, and this file asks how
    kept steps are dated, not that. So the stretch starts after the tablet's midnight; in the
    few minutes before it (the tablet already past it, or about to be while the test runs) the
    test first waits for the real midnight."""
    now = datetime.now(SHANGHAI)
    midnight_next = datetime.combine(now.date() + timedelta(days=1), time(), SHANGHAI)
    if now + FAST + timedelta(minutes=1) >= midnight_next:
        await asyncio.sleep((midnight_next - now).total_seconds() + 1)
        now = datetime.now(SHANGHAI)
    midnight = datetime.combine(now.date(), time(), SHANGHAI)
    happened = max(now - timedelta(minutes=20), midnight - FAST + timedelta(seconds=5))
    return happened.astimezone(UTC), int((now - happened).total_seconds() * 1000)


async def test_steps_kept_offline_on_a_fast_tablet_are_dated_when_they_happened(
        center: Center, own: Own, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-7", own.center_id)
    await pick_item(page, "低保", "最低生活保障")
    bodies = posted_bodies(page)

    # Twenty minutes ago the network was down: the tablet, 3 minutes fast, kept two steps.
    # Its clocks, the date and the monotonic one, both faked: twenty minutes pass on both (on
    # the date alone, the page would see a clock set 20 minutes forward while they waited).
    happened, since = await kept_since()
    await page.clock.install(time=happened + FAST)
    net = await two_steps_kept_offline(page, desk)

    # Now it is back: the tablet's clock, still 3 minutes fast, goes with each request.
    await page.clock.fast_forward(since)
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await saved(page, ["CaseOpened", "RequestHeard"])
    assert bodies and all("sent_at" in b for b in bodies), bodies
    case = await case_of(page, center, own.clerk(), 2, own.center_id)
    for entry in case["timeline"]:
        at = datetime.fromisoformat(entry["occurred_at"])
        # The time between reading the clock here and intake's receipt, at most: as sent
        # (before sent_at), the tablet's 3 minutes stayed in.
        assert happened <= at < happened + timedelta(minutes=1), entry


async def test_a_tablet_ten_minutes_off_is_asked_to_set_its_clock(
        center: Center, own: Own, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-8", own.center_id)
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
    case = await case_of(page, center, own.clerk(), 1, own.center_id)
    assert [e["type"] for e in case["timeline"]] == ["CaseOpened"], "nothing recorded"


async def test_a_tablet_clock_set_right_while_its_steps_waited_offline_still_dates_them_right(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """The tablet, 3 minutes fast, keeps two steps while the network is down; twenty minutes
    later (by the page's monotonic clock too) its clock is set right (NTP, or the clerk),
    3 minutes back, and then the network returns. Stamped with the clock as it is, ``sent_at``
    said a right clock and the steps kept the 3 minutes they were stamped with (17 minutes
    ago, not 20). The page sends, for a step queued before the clock was set back, the clock
    as it was set when the step was queued, moved on by its monotonic clock: intake takes the
    3 minutes off, and the steps are dated when they happened."""
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-6", own.center_id)
    await pick_item(page, "低保", "最低生活保障")
    happened, since = await kept_since()
    await page.clock.install(time=happened + FAST)  # Date and performance.now, both faked
    bodies = posted_bodies(page)
    net = await two_steps_kept_offline(page, desk)

    await page.clock.fast_forward(since)  # twenty minutes offline, the clock still fast
    await page.clock.set_system_time(datetime.now(UTC))  # set right: 3 minutes back
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await saved(page, ["CaseOpened", "RequestHeard"])
    case = await case_of(page, center, own.clerk(), 2, own.center_id)
    for entry in case["timeline"]:
        at = datetime.fromisoformat(entry["occurred_at"])
        # Stamped with the clock as it is: 17 minutes ago, the 3 minutes kept.
        assert happened - timedelta(minutes=1) <= at < happened + timedelta(minutes=1), entry
    # What was said: the clock as it was set when the steps were queued, 3 minutes fast.
    sent = [datetime.fromisoformat(b["sent_at"]) for b in bodies if "sent_at" in b]
    assert sent and all(s - datetime.now(UTC) > FAST - timedelta(minutes=1) for s in sent), \
        bodies


async def test_a_resident_who_sat_while_the_clock_was_set_right_is_counted_when_they_sat_down(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """A trip (一人次) is dated when the resident sat down (their lookup) and sent when their
    case is opened. The tablet, 3 minutes fast, is set right while they sit for twenty
    minutes: sent with the clock as it is, the trip kept the 3 minutes it was dated with (17
    minutes ago, not 20). As a kept step, it is sent with the clock as it was set when they
    sat down, moved on by the page's monotonic clock, and intake takes the 3 minutes off."""
    here = own.center_id  # its trips are this test's
    card = id_number("31011519750505123")
    r = await center.client("intake", own.clerk(), "clerk", here).post("/residents", json={
        "name": "王芳", "id_number": card, "phone": "13812345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-5", center_id=here)
    happened, since = await kept_since()
    await page.clock.install(time=happened + FAST)
    visits: list[dict[str, Any]] = []
    page.on("requestfinished", lambda r: visits.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/visits") else None)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-status")).to_contain_text("以往 0 件")

    await page.clock.fast_forward(since)  # twenty minutes at the window, the clock fast
    await page.clock.set_system_time(datetime.now(UTC))  # set right: 3 minutes back
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])
    subject = f"{center.settings.subject_prefix}.intake.VisitRecorded.*"

    async def trips() -> list[datetime]:
        return [e.occurred_at for e in await stream_envelopes(center.settings, subject)
                if e.center_id == here]

    async def one() -> bool:
        return len(await trips()) == 1
    await wait_until(one, timeout=45, what="the trip")
    [at] = await trips()
    # Sent with the clock as it is: 17 minutes ago, the 3 minutes kept.
    assert happened - timedelta(minutes=1) <= at < happened + timedelta(minutes=1), at
    [sent] = [datetime.fromisoformat(v["sent_at"]) for v in visits]
    assert sent - datetime.now(UTC) > FAST - timedelta(minutes=1), visits


async def test_a_refused_step_corrected_four_minutes_later_keeps_its_first_time(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """A referral without where to is refused; the clerk corrects it four minutes later. What
    it says is corrected, not when it happened: sent again dated at the resend, the referral
    was four minutes late (and after midnight, the next day's)."""
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-3", "我想申请低保。", own.center_id)
    await saved(page, ["CaseOpened", "RequestHeard"])
    # Four minutes ago, by a clock installed so (the page's monotonic clock with it).
    refused_at = datetime.now(UTC) - timedelta(minutes=4)
    await page.clock.install(time=refused_at)
    actions = page.locator("form[data-op=actions]")
    await page.select_option("#action-kind", "referred")
    await page.fill("#action-desc", "转介街道民政科核对家庭收入")
    await actions.locator("button[type=submit]").click()
    await expect(actions.locator(".refusal")).to_contain_text("转介至：转介时必须写明转介去向")

    await page.clock.fast_forward("04:00")  # four minutes on: the clock is right again
    await page.fill("#action-desc", "转介街道民政科核对家庭收入")
    await page.fill("#referred-to", "街道民政科")
    await actions.locator("button[type=submit]").click()
    await saved(page, ["CaseOpened", "RequestHeard", "ActionTaken"])
    case = await case_of(page, center, own.clerk(), 3, own.center_id)
    [taken] = [e for e in case["timeline"] if e["type"] == "ActionTaken"]
    at = datetime.fromisoformat(taken["occurred_at"])
    # Dated at the resend: now; dated when it happened: four minutes ago (and the seconds of
    # a loaded machine between reading the clocks).
    assert refused_at - timedelta(seconds=30) <= at < refused_at + timedelta(minutes=2), taken


async def test_a_step_kept_offline_across_a_restart_is_dated_by_the_clock_it_was_queued_with(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """A tablet 4 minutes slow hears a resident while the network is down; its clock is set
    right (4 minutes forward) and the tab closed (the tablet restarted) before the network
    returns. The new page has no monotonic clock of the step's page, and a clock set forward
    is not seen by one anyway: stamped with the clock as it is, the step kept the 4 minutes
    it was dated with. The page keeps, with each step, how far the service's clock ran from
    its own (the answers' Date header) and reads it again in the new page: the 4 minutes it
    moved are sent, intake moves the step forward by them, and it is dated when it happened."""
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    await pick_item(page, "低保", "最低生活保障")
    slow = timedelta(minutes=4)
    await page.clock.install(time=datetime.now(UTC) - slow)
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])  # answered: the service's clock read, 4 minutes ahead
    await desk.set_offline(True)
    happened = datetime.now(UTC)
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "1")

    await page.clock.set_system_time(datetime.now(UTC))  # set right: 4 minutes forward
    await page.close()  # the tablet restarted, its step kept
    await desk.set_offline(False)
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    await expect(page.locator("#net")).to_have_attribute("data-pending", "0", timeout=20_000)
    case = await case_of(page, center, own.clerk(), 2, own.center_id)
    [heard] = [e for e in case["timeline"] if e["type"] == "RequestHeard"]
    at = datetime.fromisoformat(heard["occurred_at"])
    # Stamped with the clock as it is: 4 minutes early.
    assert happened - timedelta(seconds=30) <= at < happened + timedelta(minutes=1), heard


@pytest.mark.parametrize("off", [timedelta(minutes=-4), timedelta(minutes=4)],
                         ids=["slow-set-forward", "fast-set-back"])
async def test_a_clock_set_right_before_a_step_queued_offline_and_a_restart_moves_nothing(
        center: Center, own: Own, desk: BrowserContext, off: timedelta) -> None:
    """A tablet 4 minutes slow (or fast) has its answers, then the network goes down; its
    clock is set right (4 minutes forward, or back) and only then the clerk hears the
    resident: the step says the right time. The tab is closed (the tablet restarted) before
    the network returns. The step kept the service's clock as the page last read it, before
    the clock was set right: the new page, reading the service's clock again, saw the
    offset move by 4 minutes and sent the clock "as it was set when the step was queued",
    4 minutes off, and intake moved a right step by 4 minutes (late, or early). The page
    reads its offset on the monotonic clock too: a clock set back since is taken off it, and
    one set forward (or a tablet asleep) is no offset known, the step sent as it is."""
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-5", own.center_id)
    await pick_item(page, "低保", "最低生活保障")
    await page.clock.install(time=datetime.now(UTC) + off)
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])  # answered: the service's clock read, 4 minutes off
    await desk.set_offline(True)
    await page.clock.set_system_time(datetime.now(UTC))  # set right, the network still down
    happened = datetime.now(UTC)
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "1")

    await page.close()  # the tablet restarted, its step kept
    await desk.set_offline(False)
    page = await desk.new_page()
    bodies = posted_bodies(page)
    await sign_in(page, center, own.clerk(), "window-5", own.center_id)
    await expect(page.locator("#net")).to_have_attribute("data-pending", "0", timeout=20_000)
    # The clock is right: said as it is (4 minutes off, a step that had waited twenty
    # minutes offline was moved by them; one sent at once is held at its arrival).
    [sent] = [datetime.fromisoformat(b["sent_at"]) for b in bodies if "sent_at" in b]
    assert abs(sent - datetime.now(UTC)) < timedelta(seconds=30), bodies
    case = await case_of(page, center, own.clerk(), 2, own.center_id)
    [heard] = [e for e in case["timeline"] if e["type"] == "RequestHeard"]
    at = datetime.fromisoformat(heard["occurred_at"])
    # Sent with the stale offset: 4 minutes late (a slow clock set forward) or early.
    assert happened - timedelta(seconds=30) <= at < happened + timedelta(minutes=1), heard


def _past_the_centers_midnight() -> timedelta:
    """From now to half past the center's next midnight: a jump that crosses it whatever the
    hour the test runs (2 hours crossed it only from 22:00 Shanghai: the page then dropped the
    step as yesterday's, judged on the jumped clock; seen by a CI run at 22:25)."""
    now = datetime.now(SHANGHAI)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    return midnight - now + timedelta(minutes=30)


@pytest.mark.parametrize("jump", [lambda: timedelta(hours=2), _past_the_centers_midnight],
                         ids=["two-hours", "past-the-centers-midnight"])
async def test_a_tablet_clock_jumping_two_hours_forward_mid_page_still_dates_the_waiting_step(
        center: Center, own: Own, desk: BrowserContext, jump: Any) -> None:
    """A right tablet hears a resident while the network is down; then, the page still open,
    its clock jumps 2 hours forward (a bad NTP answer, a thumb on the settings) and the
    network returns. Sent with the clock as it is, the waiting step said a clock 2 hours
    ahead and was refused for it, although it was dated right; resent once the clerk set
    the clock right, it was dated at the resend. The page reads the service's clock again
    first, sees its own moved 2 hours forward since the step was queued (not a tablet asleep:
    the service's clock moved with the monotonic one), and sends the clock as it was set: the
    step is recorded when it happened. What is typed after the jump is dated by the wrong
    clock, and refused for it."""
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-4", own.center_id)
    await pick_item(page, "低保", "最低生活保障")
    await page.clock.install(time=datetime.now(UTC))  # Date and performance.now, both faked
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])  # answered: the service's clock read, this one right
    bodies = posted_bodies(page)
    await desk.set_offline(True)
    happened = datetime.now(UTC)
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    net = page.locator("#net")
    await expect(net).to_have_attribute("data-pending", "1")

    await page.clock.set_system_time(datetime.now(UTC) + jump())  # jumps forward
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await expect(net).to_have_attribute("data-state", "online")
    case = await case_of(page, center, own.clerk(), 2, own.center_id)
    [heard] = [e for e in case["timeline"] if e["type"] == "RequestHeard"]
    at = datetime.fromisoformat(heard["occurred_at"])
    assert happened - timedelta(seconds=30) <= at < happened + timedelta(minutes=1), heard
    [sent] = [datetime.fromisoformat(b["sent_at"]) for b in bodies if "sent_at" in b]
    assert abs(sent - datetime.now(UTC)) < timedelta(minutes=1), "the clock as it was set"

    restate = page.locator("form[data-op=restate]")
    await page.fill("#restatement", "您想申请低保。")
    await restate.locator(".choice:has(input[value=yes])").click()
    await restate.locator("button[type=submit]").click()
    await expect(restate.locator(".refusal")).to_contain_text(
        "本机时间：与服务器的时间相差太多，请校准本机时间后重发")


#: A clerk's last minutes of a day, in Shanghai, at the calendar's edges (2027: provisional
#: holidays; 2028: a year the holiday package does not know).
LAST_MINUTES = [datetime(2026, 12, 20, 23, 58, tzinfo=SHANGHAI),
                datetime(2026, 12, 31, 23, 59, 59, tzinfo=SHANGHAI),
                datetime(2027, 9, 30, 23, 58, tzinfo=SHANGHAI),
                datetime(2028, 2, 29, 23, 58, tzinfo=SHANGHAI)]


async def test_the_pages_clock_rules_keep_the_day_at_the_calendars_edges(
        center: Center, desk: BrowserContext) -> None:
    """The page's rules, as it runs them, at a day's last minute: a step refused at it and
    corrected four minutes later (the next day, month, year) keeps its day, also when the
    clock was set back 3 minutes meanwhile; a step refused for the clock is dated at the
    resend; a step queued before a restart by a tablet 3 minutes fast (the service's clock
    read 3 minutes behind then, right now) is sent with the clock as it was set."""
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    for edge in LAST_MINUTES:
        said = edge.astimezone(UTC)
        out = await page.evaluate("""async (said) => {
          const q = await import("/ui/intake/queue.js");
          const at = Date.parse(said), min = 60_000;
          const here = q.clockNow();  // this page's monotonic clock: queued at its `at`
          const refused = { body: { occurred_at: said }, error: { code: "invalid_command" },
                            queuedAt: said, tick: here.tick, offset: 0 };
          const tick = here.tick.at + 4 * min;
          return {
            kept: q.firstMoment(refused, at + 4 * min, tick, 0),
            setBack: q.firstMoment(refused, at + min, tick, 0),
            forClock: q.firstMoment({ ...refused, error: { details: { field: "sent_at" } } },
                                    at + 4 * min, tick, 0),
            restarted: q.sendingClock({ ...refused, tick: { page: "gone", at: 0 },
                                        offset: -3 * min }, at + min, 0, 0).toISOString(),
          };
        }""", said.isoformat())
        assert datetime.fromisoformat(out["kept"]) == said, out
        # Set back 3 minutes while it waited: its moment read on the clock as it is now.
        assert datetime.fromisoformat(out["setBack"]) == said - FAST, out
        assert out["forClock"] is None, "dated at the resend"
        assert datetime.fromisoformat(out["restarted"]) == said + timedelta(minutes=1) + FAST
        assert datetime.fromisoformat(out["kept"]).astimezone(SHANGHAI).date() == edge.date()
