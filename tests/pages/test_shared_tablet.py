"""A counter tablet shared by two clerks (queue50): what one clerk queued offline waits for her,
is sent only under her own token, is never shown to the next clerk, and does not hold the next
clerk's own steps back."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.pages.center import Center, Own
from tests.pages.test_counter import case_heard, id_number, pick_item, saved, sign_in
from tests.support import wait_until

WORDS_A = "您想给母亲申请低保，她住在三楼，行动不便。"


async def first_visit(page: Page, number: str, name: str, phone: str) -> None:
    """A resident new to the center is registered at the window, and 低保 picked for her."""
    await page.fill("#resident-q", number)
    await page.click("#resident-form button[type=submit]")
    await expect(page.locator("#register-form")).to_be_visible()
    await page.fill("#reg-name", name)
    await page.fill("#reg-phone", phone)
    await page.click("#register-form button[type=submit]")
    await expect(page.locator("#resident-status")).to_contain_text("已登记")
    await pick_item(page, "低保", "最低生活保障")


async def dated_yesterday(page: Page, key: str, field: str) -> None:
    """Date every entry of the stored list ``key`` (its ``field``) 36 hours back: the day
    before, in the center's zone, whatever the hour."""
    await page.evaluate("""([key, field]) => {
        const kept = JSON.parse(localStorage.getItem(key));
        const yesterday = new Date(Date.now() - 36 * 3600 * 1000).toISOString();
        localStorage.setItem(key, JSON.stringify(kept.map((k) => ({ ...k, [field]: yesterday }))));
    }""", [key, field])


async def gone_from_the_tablet(page: Page, *words: str) -> bool:
    """None of ``words`` is left in the tab's local or session storage."""
    everything = await page.evaluate(
        "JSON.stringify([Object.assign({}, localStorage), Object.assign({}, sessionStorage)])")
    return not any(w in everything for w in words)


async def timeline_of(center: Center, own: Own, case_id: str) -> list[dict[str, Any]]:
    client = center.client("intake", own.supervisor(), "supervisor", own.center_id)
    r = await client.get(f"/cases/{case_id}")
    assert r.status_code == 200
    return r.json()["timeline"]


async def test_a_clerk_walking_away_with_steps_queued_leaves_them_for_herself_not_the_next_clerk(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Clerk A hears a resident while the network is up, then restates offline and walks away:
    # her tab is closed (her session with it), the step stays in the tablet's storage.
    page_a = await desk.new_page()
    await case_heard(page_a, center, own.clerk(1), "window-6", "我想给我妈妈申请低保。",
                     own.center_id)
    await saved(page_a, ["CaseOpened", "RequestHeard"])
    case_a = await page_a.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    await desk.set_offline(True)
    await page_a.fill("#restatement", WORDS_A)
    await page_a.click("form[data-op=restate] .choice:has(input[value=yes])")
    await page_a.click("form[data-op=restate] button[type=submit]")
    await expect(page_a.locator("#net")).to_have_attribute("data-pending", "1")
    await page_a.close()
    await desk.set_offline(False)

    # Clerk B signs in on the same tablet: A's case and A's words are not on B's screen, and
    # B's own case goes out although A's step still waits.
    page_b = await desk.new_page()
    await sign_in(page_b, center, own.clerk(2), "window-6", own.center_id)
    await expect(page_b.locator("#net")).to_have_attribute("data-pending", "0")
    assert WORDS_A not in await page_b.locator("body").inner_text()
    await expect(page_b.locator("#timeline li")).to_have_count(0)
    await pick_item(page_b, "低保", "最低生活保障")
    await page_b.click("#open-case")
    await page_b.fill("#words", "我来问问廉租房。")
    await page_b.click("form[data-op=hear] button[type=submit]")
    await saved(page_b, ["CaseOpened", "RequestHeard"])
    assert [e["type"] for e in await timeline_of(center, own, case_a)] == [
        "CaseOpened", "RequestHeard"], "A's step was not sent under B's token"
    queued = await page_b.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [(q["op"], q["by"]) for q in queued] == [("restate", own.clerk(1))], \
        "A's step still waits for her"

    # B signs out: A's step is not B's to drop.
    page_b.once("dialog", lambda d: d.accept())
    await page_b.click("#sign-out")
    await expect(page_b.locator("#signin")).to_be_visible()
    queued = await page_b.evaluate("JSON.parse(localStorage.getItem('sixstep.counter.queue.v1'))")
    assert [q["by"] for q in queued] == [own.clerk(1)]
    await page_b.close()

    # A comes back and signs in: her step goes out under her own token, as hers.
    page_a = await desk.new_page()
    await sign_in(page_a, center, own.clerk(1), "window-6", own.center_id)
    await expect(page_a.locator("#net")).to_have_attribute("data-pending", "0")

    async def restated() -> bool:
        return any(e["type"] == "RequestRestated" for e in await timeline_of(center, own, case_a))
    await wait_until(restated, what="A's restatement recorded once she signed in again")
    entry = next(e for e in await timeline_of(center, own, case_a)
                 if e["type"] == "RequestRestated")
    assert entry["actor"] == own.clerk(1)


async def test_a_refused_step_is_its_clerks_to_correct_today_and_is_gone_from_the_tablet_after(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Clerk A's referral names no where-to: intake refuses it, what she typed is kept for her
    # to correct, and the page says for how long.
    page_a = await desk.new_page()
    await case_heard(page_a, center, own.clerk(1), "window-7", "我想申请低保。", own.center_id)
    await saved(page_a, ["CaseOpened", "RequestHeard"])
    words = "转介街道民政科，联系她女儿核对家庭收入"
    await page_a.select_option("#action-kind", "referred")
    await page_a.fill("#action-desc", words)
    await page_a.click("form[data-op=actions] button[type=submit]")
    refusal = page_a.locator("form[data-op=actions] .refusal")
    await expect(refusal).to_contain_text("只保留到今天结束")
    await page_a.close()

    # Clerk B on the same tablet: A's refusal is not on his screen, and not his to resend.
    page_b = await desk.new_page()
    await sign_in(page_b, center, own.clerk(2), "window-7", own.center_id)
    await expect(page_b.locator("#net")).to_have_attribute("data-state", "online")
    assert words not in await page_b.locator("body").inner_text()
    assert await page_b.evaluate("document.querySelectorAll('.refusal').length") == 0
    stored = await page_b.evaluate("localStorage.getItem('sixstep.counter.failed.v1')")
    assert words in stored, "kept for A, today"

    # The next day (the refusal dated the day before, in the center's zone): gone from the
    # tablet when the page next runs, whoever is signed in.
    await dated_yesterday(page_b, "sixstep.counter.failed.v1", "failedAt")
    await page_b.reload()
    await expect(page_b.locator("#desk")).to_be_visible()
    await wait_until(lambda: gone_from_the_tablet(page_b, words),
                     what="yesterday's refused step dropped from the tablet")


async def test_a_step_a_clerk_left_queued_leaves_the_tablet_at_the_days_end_and_she_is_told(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Clerk A restates offline and walks away, her tab closed: the step waits for her.
    page_a = await desk.new_page()
    await case_heard(page_a, center, own.clerk(1), "window-3", "我想给我妈妈申请低保。",
                     own.center_id)
    await saved(page_a, ["CaseOpened", "RequestHeard"])
    case_a = await page_a.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    await desk.set_offline(True)
    words = "您想给母亲申请低保，她一个人住在幸福路，行动不便。"
    await page_a.fill("#restatement", words)
    await page_a.click("form[data-op=restate] .choice:has(input[value=yes])")
    await page_a.click("form[data-op=restate] button[type=submit]")
    await expect(page_a.locator("#net")).to_have_attribute("data-pending", "1")
    await page_a.close()
    await desk.set_offline(False)

    # She does not come back that day: the step is dated the day before (the center's zone).
    page_b = await desk.new_page()
    await page_b.goto(f"{center.intake}/counter")
    await dated_yesterday(page_b, "sixstep.counter.queue.v1", "queuedAt")
    # The next page on the tablet, before anyone signs in: her words are gone from it, and
    # nothing of her step was sent under anyone's token.
    await page_b.reload()
    await expect(page_b.locator("#signin")).to_be_visible()

    await wait_until(lambda: gone_from_the_tablet(page_b, words, "幸福路"),
                     what="a step left queued past its day dropped from the tablet")
    assert await page_b.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.queue.v1') || '[]').length") == 0

    # Clerk B signs in: nothing of A's is on his screen, his net says nothing of hers.
    await sign_in(page_b, center, own.clerk(2), "window-3", own.center_id)
    net = page_b.locator("#net")
    await expect(net).to_have_attribute("data-state", "online")
    page_b.once("dialog", lambda d: d.accept())
    await page_b.click("#sign-out")
    await expect(page_b.locator("#signin")).to_be_visible()
    await page_b.close()

    # A signs in again: she is told her step never went and was not kept, to enter it again.
    page_a = await desk.new_page()
    await sign_in(page_a, center, own.clerk(1), "window-3", own.center_id)
    await expect(page_a.locator("#net")).to_contain_text("您有 1 步到当天结束仍未发出")
    assert [e["type"] for e in await timeline_of(center, own, case_a)] == [
        "CaseOpened", "RequestHeard"], "nothing sent of it"


async def test_the_days_end_for_a_queued_step_is_the_centers_at_the_calendars_edges(
        center: Center, browser: Browser) -> None:
    """A step queued at a day's last minutes (Shanghai) waits till that day's end, not a
    minute more: 20 Dec 2026 (a Sunday), New Year's Eve 2026, 2027 (provisional holidays),
    29 Feb 2028; on a tablet left on UTC too, whose own day ends 8 hours later."""
    utc = await browser.new_context(locale="zh-CN", timezone_id="UTC")
    page = await utc.new_page()
    await page.goto(f"{center.intake}/counter")
    edges = [  # queued, the last second of its day, the first of the next (Shanghai)
        ("2026-12-20T23:30:00+08:00", "2026-12-20T23:59:59+08:00", "2026-12-21T00:00:01+08:00"),
        ("2026-12-31T23:30:00+08:00", "2026-12-31T23:59:59+08:00", "2027-01-01T00:00:01+08:00"),
        ("2027-10-01T08:00:00+08:00", "2027-10-01T23:59:59+08:00", "2027-10-02T00:00:01+08:00"),
        ("2028-02-29T23:30:00+08:00", "2028-02-29T23:59:59+08:00", "2028-03-01T00:00:01+08:00")]
    for queued, before, after in edges:
        left = await page.evaluate("""async ([queued, before, after]) => {
          const q = await import("/ui/intake/queue.js");
          const step = { id: "q1", key: "k1", op: "restate", caseRef: "c1", by: "clerk-061",
                         body: { restatement: "typed", occurred_at: queued },
                         queuedAt: new Date(queued).toISOString() };
          const left = [];
          for (const now of [before, after]) {
            localStorage.setItem("sixstep.counter.queue.v1", JSON.stringify([step]));
            localStorage.removeItem("sixstep.counter.failed.v1");
            new q.StepQueue().prune(new Date(now));
            left.push(localStorage.getItem("sixstep.counter.queue.v1").includes("typed"));
          }
          localStorage.clear();
          return left;
        }""", [queued, before, after])
        assert left == [True, False], (queued, left)
    await utc.close()


async def test_what_the_tablet_keeps_after_a_day_holds_no_resident_and_no_clerk_token(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """Dumps every store of the page (local, session, IndexedDB, Cache Storage) after a
    resident is looked up by ID number, registered, heard and the clerk signs out."""
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-8", own.center_id)
    number = id_number("31011519790522304")
    await first_visit(page, number, "赵桂兰", "13811112222")
    await page.click("#open-case")
    await page.fill("#words", "我想申请低保。")
    await page.click("form[data-op=hear] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard"])
    dump = """async () => JSON.stringify({
        local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage),
        idb: indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [],
        caches: await caches.keys(),
    })"""
    during = await page.evaluate(dump)
    for personal in (number, "赵桂兰", "13811112222"):
        assert personal not in during, f"{personal} kept by the page"
    page.once("dialog", lambda d: d.accept())
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()
    after = await page.evaluate(dump)
    assert "token" not in after and own.clerk() not in after and "我想申请低保" not in after, after


async def test_a_resident_erased_while_her_case_waited_offline_leaves_no_word_of_it_on_the_tablet(
        center: Center, own: Own, desk: BrowserContext) -> None:
    supervisor = center.client("intake", own.supervisor(), "supervisor", own.center_id)
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-5", own.center_id)
    await first_visit(page, id_number("31011519580101302"), "钱玉珍", "13822223333")

    # The network drops: her case is opened and heard on the tablet only.
    await desk.set_offline(True)
    await page.click("#open-case")
    words = "她说住在幸福路12号，儿子不管她。"
    await page.fill("#words", words)
    await page.click("form[data-op=hear] button[type=submit]")
    await expect(page.locator("#net")).to_have_attribute("data-pending", "2")
    resident_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).resident_id")

    # Meanwhile she asks to be erased; then the network comes back: intake refuses the
    # opening (410 resident_erased). Nothing typed about her stays on the tablet.
    assert (await supervisor.delete(f"/residents/{resident_id}")).status_code == 200
    await desk.set_offline(False)
    await expect(page.locator("#timeline li.failed[data-refused=open]")).to_contain_text(
        "该居民的资料已按要求删除")
    everything = await page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert words not in everything
    assert await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.queue.v1') || '[]').length") == 0


async def test_the_next_clerk_signing_in_on_the_same_tab_does_not_see_the_last_clerks_resident(
        center: Center, own: Own, desk: BrowserContext) -> None:
    # Clerk A looks a resident up and goes to open her case; her session ends (the service
    # refuses her token) and the page asks for a sign-in on the same tab.
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(1), "window-8", own.center_id)
    await first_visit(page, id_number("31011519660303401"), "孙美华", "13833334444")
    await expect(page.locator("#resident-card")).to_be_visible()
    await page.route("**/cases", lambda route: route.fulfill(
        status=401, content_type="application/json",
        body='{"error": {"code": "token_invalid", "message": "no"}}'))
    await page.click("#open-case")
    await expect(page.locator("#signin")).to_be_visible()
    await page.unroute("**/cases")

    # Clerk B signs in there: nothing of A's resident is on his desk.
    await page.fill("#signin-token", center.token(own.clerk(2), "clerk", own.center_id))
    await page.select_option("#signin-counter", "window-8")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#desk")).to_be_visible()
    await expect(page.locator("#resident-card")).to_be_hidden()
    assert "孙" not in await page.locator("#desk").inner_text()
