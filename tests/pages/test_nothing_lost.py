"""Nothing is lost between steps (issue 24, item 1): a step typed but not saved, or refused by
intake, stops 办结 and 接待下一位 with the reason beside the step; a refused step keeps what was
typed and names the field; a date is typed as the clerk says it and never becomes year 61210;
a step refused after the network came back holds the case's later steps until the clerk
answers it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import case_heard, pick_item, saved, sign_in
from tests.support import wait_until


async def case_of(page: Page, center: Center, clerk: str, steps: int,
                  center_id: str) -> dict[str, Any]:
    """The case on the page's desk as intake's read model has it, once it holds at least
    ``steps`` steps: the read model follows the store (a read without ``?after=`` may come
    before the last step is applied, as it did at load)."""
    client = center.client("intake", clerk, "clerk", center_id)
    case: dict[str, Any] = {}
    case_id = None

    async def there() -> bool:
        nonlocal case, case_id
        # The page keeps the case's id once intake's answer to the queued opening is handled,
        # which at load comes after the timeline shows it: read it again until it is there.
        case_id = await page.evaluate(
            "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
        if case_id is None:
            return False
        r = await client.get(f"/cases/{case_id}")
        case = r.json()
        return r.status_code == 200 and len(case["timeline"]) >= steps
    await wait_until(there, what=f"case {case_id} with {steps} steps in the read model")
    return case


async def test_a_refused_step_and_an_unsaved_deadline_stop_the_case_being_resolved(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-4", "我想申请低保，家里只有我一个劳动力。",
                     own.center_id)
    await saved(page, ["CaseOpened", "RequestHeard"])

    # A referral without where to: intake refuses it; what was typed stays, the field is named.
    actions = page.locator("form[data-op=actions]")
    await page.select_option("#action-kind", "referred")
    await page.fill("#action-desc", "转介街道民政科核对家庭收入")
    await actions.locator("button[type=submit]").click()
    refusal = actions.locator(".refusal")
    await expect(refusal).to_contain_text("转介至：转介时必须写明转介去向")
    await expect(page.locator("#action-desc")).to_have_value("转介街道民政科核对家庭收入")
    await expect(page.locator("#step-serve .state")).to_have_text("未被接受")
    await expect(page.locator("#net")).to_have_attribute("data-state", "failed")

    # The deadline, typed as in the issue: year/month/day into the date field, by keys. A year
    # the browser would make 61210 is refused by the page itself, before anything is sent.
    due = page.locator("#deadline-due")
    await due.press_sequentially("61210/12/10")
    await page.fill("#deadline-desc", "补交收入证明")
    await page.click("form[data-op=deadlines] button[type=submit]")
    await expect(page.locator("form[data-op=deadlines] .field-error")).to_have_text(
        "请按 年/月/日 输入日期，如 2026/12/10")
    assert await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.queue.v1') || '[]').length") == 0
    week = date.today() + timedelta(days=7)
    await due.fill("")
    await due.press_sequentially(week.strftime("%Y/%m/%d"))
    await expect(page.locator("#deadline-day")).to_contain_text(f"{week.month}月{week.day}日")

    # 办结 now: refused, each reason beside its step, in Chinese.
    await page.click("form[data-op=resolve] .choice:has(input[value=calm])")
    await page.click("form[data-op=resolve] button[type=submit]")
    await expect(page.locator("#resolve-error")).to_have_text(
        "办结前请先处理：办理（未被接受）、记录期限（尚未保存）")
    await expect(page.locator("form[data-op=deadlines] .op-state")).to_have_text("尚未保存")
    await expect(page.locator("form[data-op=deadlines]")).to_have_class("sub attention")
    await page.locator("#step-serve").scroll_into_view_if_needed()
    await screenshot(page, screenshots / "counter-refused.png")
    # 接待下一位 is refused the same way.
    await page.click("#next-resident")
    await expect(page.locator("#case-error")).to_contain_text("办理（未被接受）")

    # The clerk puts the referral right, saves the deadline, and resolves.
    await page.fill("#referred-to", "街道民政科")
    await actions.locator("button[type=submit]").click()
    await expect(refusal).to_have_count(0)
    await page.click("form[data-op=deadlines] button[type=submit]")
    # The deadline is the case's first due date (no guidance): CaseDueDateSet beside it.
    await saved(page, ["CaseOpened", "RequestHeard", "ActionTaken", "DeadlineNoted",
                       "CaseDueDateSet"])
    await page.click("form[data-op=resolve] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ActionTaken", "DeadlineNoted",
                       "CaseDueDateSet", "CaseResolved"])
    await expect(page.locator("#net")).to_have_attribute("data-state", "online")

    case = await case_of(page, center, own.clerk(), 6, own.center_id)
    by_type = {e["type"]: e["payload"] for e in case["timeline"]}
    assert by_type["DeadlineNoted"]["due_on"] == week.isoformat()
    assert by_type["ActionTaken"]["referred_to"] == "街道民政科"


async def test_a_step_refused_after_the_network_returns_holds_the_rest_until_the_clerk_answers(
        center: Center, own: Own, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-6", own.center_id)
    await pick_item(page, "低保", "最低生活保障")

    # Offline, the clerk skips step 1: an action, a deadline and 办结 are queued.
    await desk.set_offline(True)
    await page.click("#open-case")
    await page.fill("#action-desc", "当场受理低保申请")
    await page.click("form[data-op=actions] button[type=submit]")
    week = date.today() + timedelta(days=7)
    await page.locator("#deadline-due").press_sequentially(week.strftime("%Y/%m/%d"))
    await page.fill("#deadline-desc", "补交收入证明")
    await page.click("form[data-op=deadlines] button[type=submit]")
    await page.click("form[data-op=resolve] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "4")
    queued = await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [q["op"] for q in queued] == ["open", "actions", "deadlines", "resolve"]

    # Back online: the opening goes through, the action is refused (step 1 comes first), and
    # the deadline and 办结 behind it wait; the clerk is asked, nothing is dropped.
    await desk.set_offline(False)
    refusal = page.locator("form[data-op=actions] .refusal")
    await expect(refusal).to_contain_text("请先完成第 1 步：记录居民原话")
    await expect(page.locator("#action-desc")).to_have_value("当场受理低保申请")
    await expect(page.locator("#net")).to_have_attribute("data-state", "failed")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "2")
    await expect(page.locator("#timeline li[data-queued]")).to_have_count(2)
    held = page.locator("#timeline li[data-queued=resolve]")
    await expect(held).to_contain_text("等待前一步处理")
    case = await case_of(page, center, own.clerk(), 1, own.center_id)
    assert [e["type"] for e in case["timeline"]] == ["CaseOpened"]
    await page.click("#next-resident")
    await expect(page.locator("#case-error")).to_contain_text("办理（未被接受）")

    # The clerk records step 1 and sends the action again: all go, in order, once each.
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "3")
    await page.click("form[data-op=actions] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "0", timeout=20_000)
    steps = ["CaseOpened", "RequestHeard", "ActionTaken", "DeadlineNoted", "CaseDueDateSet",
             "CaseResolved"]
    await saved(page, steps)
    case = await case_of(page, center, own.clerk(), len(steps), own.center_id)
    assert [e["type"] for e in case["timeline"]] == steps
    keys = [e["causation_id"] for e in case["timeline"]]
    assert keys[0] == queued[0]["key"]
    assert keys[3:] == [queued[2]["key"], queued[2]["key"], queued[3]["key"]]  # due date too
    assert case["status"] == "resolved"


async def test_concerns_typed_offline_without_the_arrival_emotion_are_kept_until_it_is_picked(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """Stop 51 saw the concerns form not queue with only the needs filled, offline: intake
    takes no concerns without the emotion on arrival (``NoteConcerns.emotion``), so the page
    asks for it there, and keeps what was typed; 接待下一位 stops on the unsaved step; once
    an emotion is picked, the needs go into the queue with it, the network still down."""
    page = await desk.new_page()
    await case_heard(page, center, own.clerk(), "window-4", "我想申请低保。", own.center_id)
    await saved(page, ["CaseOpened", "RequestHeard"])
    await desk.set_offline(True)
    await page.fill("#needs", "希望尽快办理；需要上门服务")
    await page.click("form[data-op=concerns] button[type=submit]")
    await expect(page.locator("form[data-op=concerns] .field-error")).to_contain_text(
        "来时情绪：必须填写")
    await expect(page.locator("#needs")).to_have_value("希望尽快办理；需要上门服务")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "0")

    await page.click("#next-resident")
    await expect(page.locator("#case-error")).to_be_visible()
    await expect(page.locator("#needs")).to_have_value("希望尽快办理；需要上门服务")

    await page.click("form[data-op=concerns] .choice:has(input[value=anxious])")
    await page.click("form[data-op=concerns] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "1")
    queued = await page.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [(q["op"], q["body"]["needs"], q["body"]["emotion"]) for q in queued] == [
        ("concerns", ["希望尽快办理", "需要上门服务"], "anxious")]
