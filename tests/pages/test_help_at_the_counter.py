"""Hard things helped, from the counter page (issue 19 item 7): an escalation for a named
colleague's help (帮办), a referral to the street office awaiting its reply (派单), and a
handover (转办) under which the first clerk stays accountable; the case's strip says where each
stands, as follow-up tracks them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import case_heard, saved, sign_in


async def test_a_hard_case_is_escalated_referred_and_handed_over_from_the_page(
        center: Center, own: Own, browser: Browser, desk: BrowserContext,
        screenshots: Path) -> None:
    followup = center.client("followup", own.clerk(1), "clerk", own.center_id)
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(1), "window-6",
                     "家里老人卧床，低保材料跑了三趟还没办下来。", own.center_id)

    # 帮办: a named colleague is to help.
    await page.select_option("#action-kind", "escalated")
    await page.fill("#owner-clerk", own.clerk(2))
    await page.fill("#action-desc", "请熟悉低保审核的同事帮办")
    await page.click("form[data-op=actions] button[type=submit]")
    # 派单: the street office, its own hotline, never the resident's.
    await page.select_option("#action-kind", "referred")
    await page.fill("#referred-to", "花木街道社区事务办")
    await page.select_option("#unit-kind", "street_office")
    await page.fill("#unit-contact", "街道热线 021-5888 6666")
    await page.fill("#action-desc", "请街道核对家庭经济状况")
    await page.click("form[data-op=actions] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ActionTaken", "ActionTaken"])

    strip = page.locator("#case-state")
    await expect(strip.locator("[data-state=help-task]")).to_contain_text(
        f"帮办 {own.clerk(2)}：待接收")
    await expect(strip.locator("[data-state=referral]")).to_contain_text(
        "派单待回复：花木街道社区事务办")
    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    [referral] = (await followup.get("/referrals", params={"case_id": case_id})).json()["items"]
    assert referral["unit_kind"] == "street_office"

    # The supervisor's board: the help task and the referral awaiting its reply, counted.
    office = await browser.new_context(viewport={"width": 1440, "height": 900},
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
    board = await office.new_page()
    await board.goto(f"{center.feedback}/board?every=1")
    await board.fill("#signin-token", center.token(own.supervisor(), "supervisor", own.center_id))
    await board.click("#signin-form button[type=submit]")
    await expect(board.locator("[data-list=referrals]")).to_contain_text("花木街道社区事务办")
    await expect(board.locator("[data-list=help_tasks] [data-task]").filter(
        has_text=case_id[:8])).to_have_count(1)
    await expect(board.locator("#wl-referrals")).to_contain_text(re.compile(r"派单 待回复 [1-9]"))
    await expect(board.locator("#wl-help")).to_contain_text(re.compile(r"帮办 未结 [1-9]"))
    await office.close()

    # The street office answers by phone; the clerk records it; the strip says so.
    r = await followup.post(f"/referrals/{referral['referral_id']}/reply",
                            json={"reply": "已核对，符合条件"},
                            headers={"Idempotency-Key": f"reply-{uuid.uuid4().hex}"})
    assert r.status_code == 200, r.text

    # 转办 to the colleague: the first clerk stays accountable and still sees the case.
    await page.fill("#handover-to", own.clerk(2))
    await page.fill("#handover-reason", "同事熟悉低保审核，由其继续办理")
    await page.click("form[data-op=handover] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ActionTaken", "ActionTaken",
                       "CaseHandedOver"])
    await expect(strip.locator("[data-state=handed]")).to_have_text(f"已转办给 {own.clerk(2)}")
    await expect(strip.locator("[data-state=first]")).to_have_text(f"首问负责：{own.clerk(1)}")
    await expect(strip.locator("[data-state=referral]")).to_contain_text(
        "派单已回复：花木街道社区事务办")
    await expect(strip.locator("[data-state=referral]")).to_have_class(re.compile("green"))
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, screenshots / "counter-helped.png")

    # The colleague finds it among their open cases.
    colleague = await browser.new_context(viewport={"width": 1440, "height": 900},
                                          locale="zh-CN", timezone_id="Asia/Shanghai")
    other = await colleague.new_page()
    await sign_in(other, center, own.clerk(2), "window-7", own.center_id)
    await expect(other.locator(f"#my-cases [data-case='{case_id}']")).to_be_visible()
    await colleague.close()
