"""The survey at the window both ways (issue 24 item 3): the rating pad beside the clerk's
screen shows the window's clerk by name and 工号 while idle; after 办结 the pad asks and the
clerk's screen shows the same survey as a QR code, drawn by the service, for a resident who
prefers their phone. One answer per survey, whichever way; the pad goes back to idle after
the answer, or by itself when nobody answers it."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import zxingcpp
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import pick_item, saved, sign_in
from tests.pages.test_survey_and_board import answer, send_answer

WINDOW = "window-4"


async def read_qr(page: Page) -> str:
    """The text of the QR code on the clerk's screen, read from its picture as a phone would."""
    shot = await page.locator("#survey-qr-img").screenshot()
    image = Image.open(io.BytesIO(shot)).convert("L")
    found = await asyncio.to_thread(zxingcpp.read_barcodes, image)
    # One code; the reader may find it twice (its finder patterns seen at two scales), so
    # one text, not one hit: two different links on the picture still fail.
    texts = {code.text for code in found}
    assert len(texts) == 1, f"{len(texts)} codes on the picture: {sorted(texts)}"
    return texts.pop()


async def serve_and_resolve(page: Page, words: str) -> str:
    """One resident through the steps to 办结 at the clerk's window; the case's id."""
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await page.fill("#words", words)
    await page.click("form[data-op=hear] button[type=submit]")
    await page.click("form[data-op=resolve] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "CaseResolved"])
    return await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")


async def test_a_resident_rates_on_the_pad_and_the_next_one_by_the_qr_code_on_a_phone(
        center: Center, own: Own, browser: Browser, desk: BrowserContext,
        screenshots: Path) -> None:
    # The clerk at window 4 in the staff directory: the pad shows their name.
    center.directory(staff={own.clerk(1): "刘洋"})
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    r = await supervisor.post("/pads/pairings", json={"counter_id": WINDOW})
    assert r.status_code == 201, r.text
    code = r.json()["code"]

    # The tablet at window 4, paired; its clock is the test's, so "nobody answered for two
    # minutes" takes no two minutes.
    tablet = await browser.new_context(viewport={"width": 900, "height": 700}, has_touch=True,
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
    tablet.set_default_timeout(15_000)
    pad = await tablet.new_page()
    await pad.clock.install()
    await pad.goto(f"{center.feedback}/pad")
    await pad.fill("#pair-code", code)
    await pad.press("#pair-code", "Enter")
    await expect(pad.locator("#idle")).to_be_visible()
    await expect(pad.locator("#pad-window")).to_have_text(f"{own.center_id} · 4号窗口")

    # The clerk signs in at window 4, beside the pad, and resolves a first resident's case.
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(1), WINDOW, own.center_id)
    first = await serve_and_resolve(page, "想问低保金每月几号到账。")

    # Within seconds: the pad asks, and the clerk's screen shows the same survey as a QR code.
    await expect(pad.locator("#survey")).to_be_visible()
    await expect(page.locator("#survey-qr")).to_be_visible()
    pad_survey = re.search(r"/s/([0-9a-f-]{36})\?", pad.url)
    link = await read_qr(page)
    assert pad_survey and f"/s/{pad_survey.group(1)}?t=" in link, (pad.url, link)
    assert link.startswith(center.settings.survey_link_base) and "pad=1" not in link
    await screenshot(page, screenshots / "counter-survey-qr.png")

    # The first resident answers on the pad; it thanks them and is idle again, showing who
    # serves at the window by name and 工号, nothing of the resident.
    await answer(pad, "satisfied", 4, "讲得很清楚", send=False)
    await send_answer(pad)
    await expect(pad.locator("#thanks")).to_be_visible()
    await pad.clock.fast_forward(6_000)
    await expect(pad.locator("#idle")).to_be_visible()
    await expect(pad.locator("#pad-clerk")).to_have_text("刘洋")
    await expect(pad.locator("#pad-clerk-no")).to_have_text(f"工号 {own.clerk(1)}")
    idle_text = await pad.locator("main").inner_text()
    assert "想问低保金" not in idle_text and first not in idle_text
    await screenshot(pad, screenshots / "pad-idle.png")
    # Answered: the code leaves the clerk's screen.
    await expect(page.locator("#survey-qr")).to_be_hidden()

    # Only the clerk who served (or a supervisor of the center) is shown the code.
    other_clerk = center.client("intake", own.clerk(2), "clerk", own.center_id)
    elsewhere = center.own()
    other_center = center.client("intake", elsewhere.clerk(), "clerk", elsewhere.center_id)
    await page.click("#next-resident")
    second = await serve_and_resolve(page, "低保年审要带什么材料？")
    await expect(page.locator("#survey-qr")).to_be_visible()
    await expect(pad.locator("#survey")).to_be_visible()
    # Another center's clerk: no survey of that case waits there (a 404 as for none).
    for caller, status in ((other_clerk, 403), (other_center, 404)):
        r = await caller.get(f"/counter/survey-qr/{second}")
        assert r.status_code == status, r.text
    serving = center.client("intake", own.clerk(1), "clerk", own.center_id)
    r = await serving.get(f"/counter/survey-qr/{second}")
    assert r.status_code == 200 and r.json()["link"] == await read_qr(page)

    # The second resident prefers their phone: the code opens the survey there.
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
    mobile = await phone.new_page()
    await mobile.goto(await read_qr(page))
    await answer(mobile, "very_satisfied", 5, "扫码很方便")
    await expect(mobile.locator("#thanks")).to_be_visible()
    await phone.close()
    await expect(page.locator("#survey-qr")).to_be_hidden()

    # Nobody answers on the pad now: two minutes later it is idle again by itself, and the
    # survey answered on the phone is not asked again.
    await pad.clock.fast_forward(121_000)
    await expect(pad.locator("#idle")).to_be_visible()
    await pad.clock.fast_forward(3_000)
    await expect(pad.locator("#idle")).to_be_visible()
    surveys = (await supervisor.get(f"/cases/{second}/feedback")).json()["surveys"]
    assert [(s["status"], s["level"]) for s in surveys] == [("answered", "very_satisfied")]
    await tablet.close()
