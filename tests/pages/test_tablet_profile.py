"""The shared tablet's browser profile, read from the disk after a clerk signs out: what the
page clears (localStorage, sessionStorage) is one thing, what chromium keeps of it in the
profile folder (its LevelDB logs, form history, the HTTP cache, the session it restores) is
another. Nothing the clerk typed, nor the resident's personal data, nor her token, may stay in
any file of the profile once she has signed out and the browser is closed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.pages.center import CHROMIUM_ARGS, Center
from tests.pages.test_counter import id_number, saved, sign_in
from tests.pages.test_shared_tablet import first_visit
from tests.support import wait_until


def holding(profile: Path, secrets: list[str]) -> dict[str, list[str]]:
    """Which of ``secrets`` each file of ``profile`` holds, in UTF-8 or UTF-16 (LevelDB keeps
    localStorage's strings as UTF-16), or in the Latin-1 chromium uses for ASCII ones."""
    found: dict[str, list[str]] = {}
    for path in profile.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits = [s for s in secrets if any(
            s.encode(codec) in data for codec in ("utf-8", "utf-16-le"))]
        if hits:
            found[str(path.relative_to(profile))] = hits
    return found


async def a_day_at_the_window(page: Page, center: Center, words: list[str],
                              resident: tuple[str, str, str]) -> str:
    """A clerk signs in, registers a resident, opens her case, hears and restates her, refers
    her (refused: no where-to, its text kept for correcting) and signs out: every step went
    through the tablet's queue in localStorage. Returns the token she signed in with."""
    own = center.own()
    await sign_in(page, center, own.clerk(), "window-1", own.center_id)
    token = await page.evaluate("JSON.parse(sessionStorage.getItem('sixstep.session')).token")
    await first_visit(page, *resident)
    await page.click("#open-case")
    await page.fill("#words", words[0])
    await page.click("form[data-op=hear] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard"])
    await page.fill("#restatement", words[1])
    await page.click("form[data-op=restate] .choice:has(input[value=yes])")
    await page.click("form[data-op=restate] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated"])
    await page.select_option("#action-kind", "referred")
    await page.fill("#action-desc", words[2])
    await page.click("form[data-op=actions] button[type=submit]")
    await expect(page.locator("form[data-op=actions] .refusal")).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()
    return token


class Put:
    """A tablet put away after a day at the window: its profile folder and what was typed."""

    def __init__(self, profile: Path, typed: list[str], token: str) -> None:
        self.profile, self.typed, self.token = profile, typed, token


async def put_away(center: Center, chromium_path: str, profile: Path, flags: list[str],
                   number: str) -> Put:
    """A day at the window on a tablet whose browser keeps its profile in ``profile``."""
    words = ["我母亲八十二岁，独居在幸福路十二号，想申请低保。",
             "您想为独居的母亲申请最低生活保障。",
             "转介街道民政科核对老人家庭收入情况"]
    resident = (id_number(number), "周秀英", "13844445555")
    async with async_playwright() as pw:
        tablet = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path, args=[*CHROMIUM_ARGS, *flags],
            viewport={"width": 1440, "height": 900}, locale="zh-CN",
            timezone_id="Asia/Shanghai")
        tablet.set_default_timeout(15_000)
        try:
            page = tablet.pages[0] if tablet.pages else await tablet.new_page()
            token = await a_day_at_the_window(page, center, words, resident)
        finally:
            await tablet.close()  # the browser's files flushed, as a tablet put away
    return Put(profile, [*words, *resident], token)


@pytest.mark.xfail(reason=(
    "chromium keeps localStorage and sessionStorage (for session restore) in LevelDB files "
    "of the profile: what the page removes at sign-out stays in their logs until a "
    "compaction, the clerk's bearer token (dead since the sign-out revoked it: the test "
    "below) always, a refused step's text when its write reached the disk before its removal. No "
    "page can reach those files: the tablet's browser runs on a profile it does not keep "
    "(deploy/README.md, The counter tablet's browser)"))
async def test_a_tablet_browser_keeping_its_profile_keeps_nothing_a_clerk_typed(
        center: Center, chromium_path: str, tmp_path: Path) -> None:
    put = await put_away(center, chromium_path, tmp_path / "profile", [],
                         "31011519470712202")
    assert holding(put.profile, [*put.typed, put.token]) == {}


async def test_nothing_a_clerk_typed_stays_in_the_tablets_browser_profile_after_sign_out(
        center: Center, chromium_path: str, tmp_path: Path) -> None:
    """The tablet's browser as deploy/README.md has it (--incognito): after the clerk signs
    out and the browser closes, no file of its profile folder holds what she typed, the
    resident's name, phone or ID number, or her token."""
    put = await put_away(center, chromium_path, tmp_path / "profile", ["--incognito"],
                         "31011519470813203")
    assert holding(put.profile, [*put.typed, put.token]) == {}


async def test_the_token_a_kept_profile_holds_is_dead(center: Center, chromium_path: str,
                                                       tmp_path: Path) -> None:
    """The page's sign-out revoked the token on the server (``POST /auth/sign-out``): a copy
    of it chromium left in the profile is refused by every service, as an expired token."""
    put = await put_away(center, chromium_path, tmp_path / "profile", [],
                         "31011519470914204")
    # Whether chromium's logs hold it this time or not (3 of 3 runs did before the page
    # waited for the sign-out's answer), the token she signed in with is what a copy holds.
    async with httpx.AsyncClient(timeout=20.0) as client:
        async def refused(service: str) -> bool:
            r = await client.get(f"{center.urls[service]}/auth/me",
                                 headers={"Authorization": f"Bearer {put.token}"})
            return r.status_code == 401 and r.json()["error"]["code"] == "token_expired"

        # intake took the sign-out itself; the others once their watch has delivered it
        assert await refused("intake")
        for service in ("followup", "feedback"):
            await wait_until(lambda s=service: refused(s), what=f"{service} refusing it")
