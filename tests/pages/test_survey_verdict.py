"""The survey asks whether the matter was solved, and why a bad review is bad: on a resident's
phone (the link) and on the counter pad (the same page, ``&pad=1``), in a real browser. The
resident's "not solved" reopens the case; the reasons picked reach the supervisor's board."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, expect

from tests.pages.center import Center, Own, resolved_case, screenshot
from tests.support import register_resident


async def test_the_survey_asks_if_it_was_solved_and_why_a_bad_review_is_bad(
        center: Center, own: Own, browser: Browser, desk: BrowserContext,
        screenshots: Path) -> None:
    now = datetime.now(ZoneInfo(center.settings.center_timezone))
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    feedback = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    unsolved = await resolved_case(clerk, own.center_id, at=now,
                                   resident_id=await register_resident(clerk))
    partly = await resolved_case(clerk, own.center_id, at=now,
                                 resident_id=await register_resident(clerk))
    first, second = await center.survey_for(unsolved), await center.survey_for(partly)

    # On her phone: three plain choices for "was it solved?"; no reasons asked while pleased.
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
    page = await phone.new_page()
    await page.goto(first.link)
    verdict = page.locator("#verdict")
    await expect(verdict).to_contain_text("您的事情解决了吗？")
    await expect(verdict.locator(".s-choice")).to_have_text(["已解决", "部分解决", "没有解决"])
    reasons = page.locator("#reasons")
    await page.click("label.lv-satisfied")
    await expect(reasons).to_be_hidden()
    # A bad review asks why: the center's reason tags, a comment beside them.
    await page.click("label.lv-very_dissatisfied")
    await expect(reasons).to_be_visible()
    await expect(reasons.locator(".s-tag")).to_have_text(
        ["态度不好", "等待太久", "多次跑腿", "材料要求不清", "没有解决"])
    await page.click("label.s-tag:has-text('多次跑腿')")
    await page.click("label.s-tag:has-text('材料要求不清')")
    await page.click("label.s-choice:has-text('没有解决')")
    await page.fill("#comment", "材料清单前后说得不一样，跑了三趟")
    await screenshot(page, screenshots / "survey-verdict.png", full_page=True)
    await page.click(".s-submit")
    await expect(page.locator("#thanks .s-bad")).to_be_visible()
    await expect(page.locator("#thanks .s-unsolved")).to_be_visible()
    await phone.close()

    # The counter pad shows the same questions; this resident says it is partly solved.
    tablet = await browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True,
                                       locale="zh-CN")
    pad = await tablet.new_page()
    await pad.goto(second.link + "&pad=1")
    await pad.click("label.lv-dissatisfied")
    await pad.click("label.s-tag:has-text('态度不好')")
    await pad.click("label.s-choice:has-text('部分解决')")
    await pad.click(".s-submit")
    await expect(pad.locator("#thanks .s-bad")).to_be_visible()
    await expect(pad.locator("#thanks .s-unsolved")).to_be_hidden()
    await tablet.close()

    # What the answers recorded: the verdicts, the reasons with each rectification.
    for case_id, said, tags in ((unsolved, "not_solved", ["多次跑腿", "材料要求不清"]),
                                (partly, "partly", ["态度不好"])):
        seen = await _feedback_of(feedback, case_id)
        assert (seen["surveys"][0]["verdict"], seen["surveys"][0]["via"]) == (said, "token")
        assert seen["rectifications"][0]["reason_tags"] == tags

    # "Not solved" reopened the first case; "partly" left the second as it was.
    async def status(case_id: str) -> str:
        return (await clerk.get(f"/cases/{case_id}")).json()["status"]
    for _ in range(300):
        if await status(unsolved) == "open":
            break
        await asyncio.sleep(0.05)
    assert (await status(unsolved), await status(partly)) == ("open", "resolved")

    # The supervisor's board shows each rectification's reasons.
    board = await desk.new_page()
    await board.goto(f"{center.feedback}/board?every=1")
    await board.fill("#signin-token", center.token(own.supervisor(), "supervisor", own.center_id))
    await board.click("#signin-form button[type=submit]")
    rectification = board.locator(f"#rect-list li[data-case='{unsolved}']")
    await expect(rectification.locator(".tag")).to_have_text(["多次跑腿", "材料要求不清"])
    # Today by the residents' word: none of the two said "solved"; by the clerks': the one
    # case still resolved (the other was reopened on its resident's word).
    solved = board.locator("[data-fig=resolution_rate]")
    await expect(solved).to_have_attribute("data-today", "0%")
    await expect(solved.locator("h2")).to_have_text("解决率（群众评价）")
    await expect(board.locator("[data-fig=declared_resolution_rate]")).to_have_attribute(
        "data-today", "100%")


async def _feedback_of(client: object, case_id: str) -> dict:
    for _ in range(300):
        r = await client.get(f"/cases/{case_id}/feedback")  # type: ignore[attr-defined]
        if r.status_code == 200 and r.json()["surveys"][0]["status"] == "answered" \
                and r.json()["rectifications"]:
            return r.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer and rectification on {case_id}")
