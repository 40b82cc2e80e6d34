"""The resident's survey and the supervisor's board in a real browser: a pleased resident answers
on a phone, a displeased one on the counter tablet, and the board, open all along, follows
without a reload: satisfaction and response move, the bad review is an open rectification."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, Page, expect

from services.feedback.tokens import SurveyTokens
from services.followup.domain import work_day
from shared.kernel.calendar import WorkingCalendar
from tests.pages.center import Center, Own, resolved_case, screenshot, seed_history
from tests.support import register_resident, wait_until

ASPECTS = ("listened", "understood", "explained_clearly", "served_well")


async def open_board(desk: BrowserContext, center: Center, own: Own) -> Page:
    board = await desk.new_page()
    await board.goto(f"{center.feedback}/board?every=1")
    await board.fill("#signin-token", center.token(own.supervisor(), "supervisor", own.center_id))
    await board.click("#signin-form button[type=submit]")
    await expect(board.locator("#board")).to_be_visible()
    await expect(board.locator("#live")).to_be_visible()
    return board


async def answer(page: Page, level: str, marks: int, comment: str, *, send: bool = True) -> None:
    """The resident answers with the keyboard alone: Tab to a choice, Space to pick it."""
    await page.focus(f"input[name=level][value={level}]")
    await page.keyboard.press("Space")
    for aspect in ASPECTS:
        await page.focus(f"input[name=aspect-{aspect}][value='{marks}']")
        await page.keyboard.press("Space")
    await page.focus("#comment")
    await page.keyboard.type(comment)
    if send:
        await send_answer(page)


async def send_answer(page: Page) -> None:
    await page.focus(".s-submit")
    await page.keyboard.press("Enter")


async def test_answers_move_the_board_and_a_bad_review_is_an_open_rectification(
        center: Center, own: Own, browser: Browser, desk: BrowserContext,
        screenshots: Path) -> None:
    zone = ZoneInfo(center.settings.center_timezone)
    now = datetime.now(zone)
    # The desk's work is due later TODAY at the center: an hour from now is tomorrow after 23:00
    # (this test failed at 23:12 Shanghai time with "due today" 0). In the day's last two
    # minutes, start on the next day instead.
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), zone)
    if midnight - now < timedelta(minutes=2):
        await asyncio.sleep((midnight - now).total_seconds() + 1)
        now = datetime.now(zone)
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), zone)
    later_today = min(timedelta(hours=1), (midnight - now) / 3)
    # "Due today" is the scheduler's working day (work_day): a follow-up due before today's
    # closing, none on a day off or after closing (it is the next working day's). With the
    # office open for a while yet, both home visits fall before closing; else they are
    # upcoming. Not all of the desk's work is theirs: the history seeded below has early
    # checks (an emotion not defused) that fell due on days gone, and a follow-up planned on
    # a day gone is due at the first working morning to come (FollowUps.on_a_day_to_come): this
    # morning's while the office is open, so today's work until closing. In the last minutes
    # before closing the desk counts those and no visit (the fresh CI run at 16:58 Shanghai
    # read 1, asserted against 0); after closing and on a day off, nothing.
    open_for = work_day(WorkingCalendar(zone), now).due_today_before - now
    due_today = open_for > timedelta(minutes=10)
    if due_today:
        later_today = min(later_today, open_for / 3)
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    followup = center.client("followup", own.supervisor(), "supervisor", own.center_id)
    await seed_history(clerk, own.center_id, now)
    # Work on the follow-up desk: a home visit today, one escalated to the supervisor.
    for n in range(2):
        r = await followup.post("/followups", headers={"Idempotency-Key": f"board-{uuid.uuid4()}"},
                                json={"center_id": own.center_id, "reason": "home_visit",
                                      "due_at": (now + later_today * (1 + n)).isoformat(),
                                      "assigned_team": "followup-desk"})
        assert r.status_code == 201, r.text
    r = await followup.post(f"/followups/{r.json()['id']}/escalate",
                            headers={"Idempotency-Key": f"board-{uuid.uuid4()}"},
                            json={"reason": "居民行动不便，需要主任协调上门"})
    assert r.status_code == 200, r.text
    # A critical case whose monthly obligation starts years past what the working-day calendar
    # covers: the rule watching it is parked. (A deadline that far is refused at the counter:
    # 422 calendar_out_of_range, its due date could not be worked out.)
    r = await clerk.post("/cases", headers={"Idempotency-Key": f"board-{uuid.uuid4()}"}, json={
        "center_id": own.center_id, "counter_id": "window-2", "clerk_id": own.clerk(),
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": await register_resident(clerk)})
    far = r.json()["id"]
    for step, body in (("hear", {"words": "残疾证到期了要换"}),
                       ("concerns", {"emotion": "distressed", "urgency": "critical"}),
                       ("obligations", {"description": "每月领取护理补贴",
                                        "next_due_on": f"{now.year + 9}-06-01"})):
        r = await clerk.post(f"/cases/{far}/{step}", json=body,
                             headers={"Idempotency-Key": f"board-{uuid.uuid4()}"})
        assert r.status_code == 200, r.text
    r = await clerk.post(f"/cases/{far}/deadlines", headers={
        "Idempotency-Key": f"board-{uuid.uuid4()}"}, json={
        "due_on": f"{now.year + 9}-06-01", "description": "证件到期换领"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"

    # Two residents leave the counter this morning; each gets a survey on the tablet.
    pleased = await resolved_case(clerk, own.center_id, at=now, emotion="angry",
                                  item="MI-MEDICAL-REIMBURSEMENT",
                                  resident_id=await register_resident(clerk))
    displeased = await resolved_case(clerk, own.center_id, at=now, emotion="upset",
                                     resident_id=await register_resident(clerk))
    first, second = await center.survey_for(pleased), await center.survey_for(displeased)

    board = await open_board(desk, center, own)
    satisfaction = board.locator("[data-fig=satisfaction_rate]")
    response = board.locator("[data-fig=response_rate]")
    await expect(board.locator("[data-fig=visits]")).not_to_have_attribute("data-month", "0")
    await expect(satisfaction).to_have_attribute("data-today", "暂无")

    # On her phone, the first resident is very satisfied.
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
    page = await phone.new_page()
    await page.goto(first.link)
    await expect(page.locator("#survey")).to_be_visible()
    await expect(page.locator(".s-facts")).to_contain_text("医疗")
    await screenshot(page, screenshots / "survey-phone.png", full_page=True)
    await answer(page, "very_satisfied", 5, "工作人员很耐心，谢谢！")
    await expect(page.locator("#thanks")).to_be_visible()
    await expect(page.locator("#thanks .s-good")).to_be_visible()
    await screenshot(page, screenshots / "survey-thanks.png")

    # The board, untouched, follows.
    await expect(satisfaction).to_have_attribute("data-today", "100%", timeout=15_000)
    await expect(response).to_have_attribute("data-today", "100%")

    # The link is spent; an expired one says so plainly.
    await page.goto(first.link)
    await expect(page.locator("#state-used")).to_be_visible()
    tokens = SurveyTokens(center.settings.survey_token_secret.get_secret_value())
    stale = tokens.issue(second.survey_id, now - timedelta(days=1))
    await page.goto(f"{center.feedback}/s/{second.survey_id}?t={stale}")
    await expect(page.locator("#state-expired")).to_be_visible()
    await screenshot(page, screenshots / "survey-expired.png")
    await phone.close()

    # At the counter tablet, the second resident is dissatisfied.
    tablet = await browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True,
                                       locale="zh-CN")
    page = await tablet.new_page()
    await page.goto(second.link)
    await answer(page, "dissatisfied", 2, "排队太久，窗口只开了两个", send=False)
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, screenshots / "survey-tablet.png")
    await send_answer(page)
    await expect(page.locator("#thanks .s-bad")).to_be_visible()
    await tablet.close()

    # Half satisfied now; the bad review is an open rectification on the board.
    await expect(satisfaction).to_have_attribute("data-today", "50%", timeout=15_000)
    rectification = board.locator(f"#rect-list li[data-case='{displeased}']")
    await expect(rectification).to_be_visible()
    await expect(rectification).to_contain_text("不满意")
    await expect(rectification).to_contain_text("排队太久")
    await expect(board.locator("#rect-open")).to_have_text("1")
    desk_today = board.locator("[data-count=due_today]")
    if due_today:
        await expect(desk_today).not_to_have_text("0")
    else:
        async def todays_work_without_the_visits() -> bool:
            """The desk counts what follow-up lists as due today, no home visit among it
            (both are after closing); read again until the two agree (the board's poll may
            come either side of closing)."""
            listed = (await followup.get(f"/worklists/centers/{own.center_id}")).json()
            today = listed["due_today"]
            return (await desk_today.inner_text() == str(len(today))
                    and not any(f["reason"] == "home_visit" for f in today))

        await wait_until(todays_work_without_the_visits, what="the desk's work due today")
        if open_for <= timedelta(0):  # closed: none of it is today's
            await expect(desk_today).to_have_text("0")
    await expect(board.locator("[data-count=home_visits]")).not_to_have_text("0")
    await expect(board.locator("[data-count=escalated]")).not_to_have_text("0")
    await expect(board.locator("#wl-parked")).to_have_text(
        "1 条回访规则暂停：日期超出工作日历", timeout=15_000)
    # The critical case heads the worklist's cases; the two completion rates are shown.
    critical = board.locator("[data-list=cases] li").first
    await expect(critical).to_have_attribute("data-case", far)
    await expect(critical).to_contain_text("紧急")
    await expect(board.locator("[data-fig=on_the_spot_rate] h2")).to_have_text("当场办结率")
    await expect(board.locator("[data-fig=on_time_rate] h2")).to_have_text("按时办结率")
    await screenshot(board, screenshots / "board.png", full_page=True)

    # The same board in English, switched in place.
    await board.click("[data-lang-button=en]")
    await expect(board.locator("[data-fig=satisfaction_rate] h2")).to_have_text("Satisfaction")
    await expect(rectification).to_contain_text("Dissatisfied")
