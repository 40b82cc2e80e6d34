"""The rating pad at the window (issue 24, item 3): paired once with a supervisor's code, no
staff token on the tablet; idle it shows the window's clerk; the survey appears by itself
within seconds of 办结 at that window, is answered once, and the pad returns to idle. Two
pages side by side: the clerk's screen and the pad."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import case_heard, saved
from tests.pages.test_survey_and_board import answer, send_answer
from tests.support import wait_until


async def test_the_pad_at_window_1_asks_the_resident_as_soon_as_the_clerk_resolves(
        center: Center, own: Own, browser: Browser, desk: BrowserContext,
        screenshots: Path) -> None:
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    # The supervisor makes a pairing code for window 1 on the board.
    board = await desk.new_page()
    await board.goto(f"{center.feedback}/board?every=30")
    await board.fill("#signin-token", center.token(own.supervisor(), "supervisor", own.center_id))
    await board.click("#signin-form button[type=submit]")
    await board.select_option("#pad-window", "window-1")
    await board.click("#pad-form button[type=submit]")
    await expect(board.locator("#pad-code b")).to_have_text(re.compile(r"^\d{8}$"))
    code = await board.locator("#pad-code b").inner_text()
    await board.close()

    tablet = await browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True,
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
    tablet.set_default_timeout(15_000)
    pad = await tablet.new_page()
    await pad.goto(f"{center.feedback}/pad")
    await expect(pad.locator("#pair-code")).to_be_focused()
    await pad.fill("#pair-code", code)
    await pad.press("#pair-code", "Enter")
    await expect(pad.locator("#idle")).to_be_visible()
    await expect(pad.locator("#pad-window")).to_have_text(f"{own.center_id} · 1号窗口")
    stored = await pad.evaluate("JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    assert "pad_token" in stored and "Bearer" not in stored
    # The code pairs one pad only.
    again = await supervisor.post("/pads/pair", json={"code": code})
    assert again.status_code == 404 and again.json()["error"]["code"] == "pairing_code_unknown"
    # The pad token reads the window's survey, nothing else.
    token = (await pad.evaluate("JSON.parse(localStorage.getItem('sixstep.pad.v1')).pad_token"))
    async with httpx.AsyncClient(base_url=center.feedback) as anonymous:
        denied = await anonymous.get("/surveys", headers={"X-Pad-Token": token})
        assert denied.status_code == 401

    # The clerk at window 1 serves a resident and resolves the case.
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-1", "想问低保年审要带什么。", own.center_id)
    await page.click("form[data-op=resolve] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "CaseResolved"])

    # The pad opens the survey by itself, within seconds.
    await expect(pad.locator("#survey")).to_be_visible(timeout=15_000)
    assert "/s/" in pad.url and "pad=1" in pad.url
    await screenshot(pad, screenshots / "pad-survey.png")
    await answer(pad, "very_satisfied", 5, "很耐心", send=False)
    await send_answer(pad)
    await expect(pad.locator("#thanks")).to_be_visible()

    # Back to idle, showing who served at the window; the answered survey is not shown again.
    await expect(pad.locator("#idle")).to_be_visible(timeout=15_000)
    await expect(pad.locator("#pad-clerk")).to_have_text(own.clerk())
    await screenshot(pad, screenshots / "pad-idle.png")
    # What the pad keeps between residents (queue50): its pairing and the ids of surveys shown,
    # nothing of the resident: no survey link or token, no comment; the browser's back button
    # does not bring the last resident's answers back either.
    kept = await pad.evaluate("""async () => JSON.stringify({
        local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage),
        idb: indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [],
        caches: await caches.keys()})""")
    assert "很耐心" not in kept and "/s/" not in kept and own.clerk() not in kept, kept
    await pad.go_back()
    await pad.wait_for_load_state()
    assert "很耐心" not in await pad.locator("body").inner_text()
    assert not await pad.evaluate(
        "Array.from(document.querySelectorAll('textarea, input[type=text]')).some((e) => e.value)")
    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    surveys = (await supervisor.get(f"/cases/{case_id}/feedback")).json()["surveys"]
    assert [(s["status"], s["level"]) for s in surveys] == [("answered", "very_satisfied")], surveys
    await tablet.close()


async def paired_pad(center: Center, own: Own, browser: Browser, window: str
                     ) -> tuple[BrowserContext, Page]:
    """A tablet paired with ``window`` by the supervisor's code, idle."""
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    r = await supervisor.post("/pads/pairings", json={"counter_id": window})
    assert r.status_code == 201, r.text
    tablet = await browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True,
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
    tablet.set_default_timeout(15_000)
    pad = await tablet.new_page()
    await pad.goto(f"{center.feedback}/pad")
    await pad.fill("#pair-code", r.json()["code"])
    await pad.press("#pair-code", "Enter")
    await expect(pad.locator("#idle")).to_be_visible()
    return tablet, pad


async def test_after_the_shift_change_the_idle_pad_shows_the_clerk_now_at_the_window(
        center: Center, own: Own, browser: Browser) -> None:
    """Window 5: a clerk serves the morning and resolves a case; at 13:00 a colleague takes
    the window and opens a case for the next resident. The pad in front of that resident
    shows the colleague, the one serving them, not the morning's clerk until the colleague's
    first survey (a 工号 shown to a resident is someone they can name in a review)."""
    window = "window-5"
    tablet, pad = await paired_pad(center, own, browser, window)

    async def open_case(clerk: str, resolve: bool) -> None:
        """What the clerk's screen sends when a resident sits down (and is served)."""
        intake = center.client("intake", clerk, "clerk", own.center_id)
        opened = await intake.post("/cases", headers={"Idempotency-Key": f"{clerk}-open"},
                                   json={"center_id": own.center_id, "counter_id": window,
                                         "service_item": "SA-MINIMUM-LIVING-ALLOWANCE"})
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]
        heard = await intake.post(f"/cases/{case_id}/hear",
                                  headers={"Idempotency-Key": f"{clerk}-hear"},
                                  json={"words": "问低保年审"})
        assert heard.status_code == 200, heard.text
        if resolve:
            done = await intake.post(f"/cases/{case_id}/resolve",
                                     headers={"Idempotency-Key": f"{clerk}-resolve"},
                                     json={"outcome": "resolved", "explanation": "",
                                           "emotion_on_leaving": "calm"})
            assert done.status_code == 200, done.text

    morning, afternoon = own.clerk(1), own.clerk(2)
    # The morning: the clerk's resident answers on the pad, which then shows that clerk.
    await open_case(morning, resolve=True)
    await expect(pad.locator("#survey")).to_be_visible()
    await answer(pad, "satisfied", 4, "好")
    await expect(pad.locator("#idle")).to_be_visible()
    await expect(pad.locator("#pad-clerk")).to_have_text(morning)

    # The shift changes: the colleague opens a case for the resident now sitting at the window.
    await open_case(afternoon, resolve=False)
    await expect(pad.locator("#pad-clerk")).to_have_text(afternoon)
    await tablet.close()


async def test_a_resident_who_would_rather_not_rate_says_so_on_the_pad(
        center: Center, own: Own, browser: Browser) -> None:
    """好差评: declining is the resident's right and no default good rating. At window 9 the
    resident taps "不想评价": the survey is recorded as declined (never as no answer, never
    satisfied), the pad goes back to idle, and the link is spent."""
    window = "window-9"
    tablet, pad = await paired_pad(center, own, browser, window)
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)

    intake = center.client("intake", own.clerk(), "clerk", own.center_id)
    opened = await intake.post("/cases", headers={"Idempotency-Key": f"{own.clerk()}-open"},
                               json={"center_id": own.center_id, "counter_id": window,
                                     "service_item": "SA-MINIMUM-LIVING-ALLOWANCE"})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    for op, body in (("hear", {"words": "问低保年审"}),
                     ("resolve", {"outcome": "resolved", "explanation": "",
                                  "emotion_on_leaving": "calm"})):
        done = await intake.post(f"/cases/{case_id}/{op}",
                                 headers={"Idempotency-Key": f"{own.clerk()}-{op}"}, json=body)
        assert done.status_code == 200, done.text

    await expect(pad.locator("#survey")).to_be_visible()
    await expect(pad.locator("#decline")).to_have_text("不想评价")
    await pad.click("#decline")
    await expect(pad.locator("#declined-live")).to_be_visible()
    await expect(pad.locator("#idle")).to_be_visible()

    async def declined() -> bool:
        surveys = (await supervisor.get(f"/cases/{case_id}/feedback")).json()["surveys"]
        return [(s["status"], s["level"]) for s in surveys] == [("declined", None)]

    await wait_until(declined, what="the survey recorded as declined")
    await tablet.close()
