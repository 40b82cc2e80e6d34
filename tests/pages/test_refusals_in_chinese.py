"""A clerk or a supervisor reading Chinese sees no English sentence from the server when a
service refuses: a handover of a case to its own clerk on the counter page ("此步骤现在不能
进行：the case is already theirs" before), a month closed before it ended from the board
("未能保存：a month is closed once it has ended" before). The English page stays English."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.pages.center import Center, Own
from tests.pages.test_bad_review_board import open_board
from tests.pages.test_counter import case_heard, saved
from tests.support import scrubber_broken_on

#: An English sentence: three Latin words in a row (a clerk's id is not one).
ENGLISH = re.compile(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+")


async def hand_over_to(page: Page, clerk: str) -> str:
    form = page.locator("form[data-op=handover]")
    await page.fill("#handover-to", clerk)
    await page.fill("#handover-reason", "由本人继续办理")
    await form.locator("button[type=submit]").click()
    refusal = form.locator(".refusal")
    await expect(refusal).to_be_visible()
    return await refusal.inner_text()


async def test_a_case_handed_to_its_own_clerk_is_refused_in_the_clerks_language(
        center: Center, own: Own, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-4", "我想申请低保。", own.center_id)
    await saved(page, ["CaseOpened", "RequestHeard"])

    said = await hand_over_to(page, own.clerk())
    assert f"本案已由 {own.clerk()} 承办，无需转交" in said and not ENGLISH.search(said), said

    await page.click("[data-lang-button=en]")
    said = await hand_over_to(page, own.clerk())
    assert f"The case is already {own.clerk()}'s" in said, said


async def test_a_month_closed_before_it_ended_is_refused_on_the_board_in_chinese(
        center: Center, own: Own, desk: BrowserContext) -> None:
    board = await open_board(desk, center, own)
    said = await board.evaluate("""async ([key, center]) => {
        const ui = await import("/ui/shared/ui.js");
        try {
            await ui.api(`/periods/${center}/2099-01/close`, { method: "POST", key });
        } catch (err) {
            return [err.code, err.details.rule, ui.refusalWords(err)];
        }
        return null;
    }""", [f"close-{uuid.uuid4()}", own.center_id])
    assert said == ["rule_violated", "period_not_ended", "该月（2099-01）尚未结束，不能关账"]


async def test_a_note_the_scrubber_cannot_read_is_asked_again_and_kept_on_the_page(
        center: Center, own: Own, desk: BrowserContext,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrubber's rule that fails on a clerk's words (redteam108 found one) blanked the whole
    note (``[文字已隐去]``) and stored that: the resident's request was lost. Now intake refuses
    the step by the code's words, the words stay in the box, and said otherwise they are saved."""
    scrubber_broken_on("锟斤拷", monkeypatch)
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-4", "想申请低保，锟斤拷", own.center_id)
    form = page.locator("form[data-op=hear]")
    refusal = form.locator(".refusal")
    await expect(refusal).to_be_visible()
    said = await refusal.inner_text()
    assert "请换个说法再提交" in said and not ENGLISH.search(said), said
    await expect(page.locator("#words")).to_have_value("想申请低保，锟斤拷")

    await page.fill("#words", "想申请低保。")
    await form.locator("button[type=submit]").click()
    await saved(page, ["CaseOpened", "RequestHeard"])
