"""A critical case at the counter from arrival to the printed one-time notice (一次性告知,
issue 19 items 6-7): the guidance in plain words prefilled from the catalogue, a monthly
obligation declared from the page, urgency on the case's strip, and a notice printed in
Chinese on A5 with what was agreed, the documents to bring, the dates, the clerk's name and the
center's phone, and nothing of the resident's but the surname."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import BrowserContext, Route, expect

from tests.pages.center import Center, Own, screenshot
from tests.pages.test_counter import id_number, pick_item, saved, sign_in
from tests.support import wait_until

#: A5 portrait in PostScript points (148 x 210 mm).
A5 = (419.5, 595.3)


async def test_a_critical_case_leaves_with_a_printed_notice_and_a_watched_obligation(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    # The center's printed name and the clerk's in the staff directory, for the notice.
    center.directory(staff={own.clerk(): "张敏"}, names={own.center_id: "花木社区事务受理服务中心"})
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    followup = center.client("followup", own.supervisor(), "supervisor", own.center_id)
    card = id_number("31011519580602301")
    r = await clerk.post("/residents", json={
        "name": "王建国", "id_number": card, "phone": "13812345678",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    resident_id = r.json()["resident_id"]

    page = await desk.new_page()
    # The browser's print dialog is counted, not opened: the test prints to PDF itself.
    await page.add_init_script(
        "window.__prints = 0; window.print = () => { window.__prints += 1; };")
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-masked")).to_contain_text("王*国")
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])

    # Mr Wang's allowance stopped this month and his rent is due: critical.
    await page.fill("#words", "低保这个月没到账，房租后天就要交了。")
    await page.click("form[data-op=hear] button[type=submit]")
    await page.click("form[data-op=concerns] .choice:has(input[value=distressed])")
    await page.click("form[data-op=concerns] .choice:has(input[value=critical])")
    await page.click("form[data-op=concerns] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted"])
    await expect(page.locator("#case-state [data-state=urgency]")).to_have_text("紧急程度：紧急")
    await expect(page.locator("#case-state [data-state=urgency]")).to_have_class(re.compile("red"))

    # 3 guide: the plain words start from the catalogue's summary; the clerk adds to them.
    plain = page.locator("#plain-words")
    await expect(plain).to_have_value(re.compile("^全家每人每月收入低于本市低保标准"))
    await plain.press("End")
    await plain.type("您的低保需要年审后恢复发放。")
    documents = page.locator("#documents input")
    await documents.nth(0).check()  # the ID card: brought
    await documents.nth(1).check()  # the household register: brought
    await page.click("form[data-op=guidance] .choice:has(input[value=more_documents])")
    await page.fill("#promised", "材料齐全后当天恢复发放")
    await page.click("form[data-op=guidance] button[type=submit]")

    # 4 serve: the monthly obligation the center will watch, and the rent deadline.
    next_due = date.today() + timedelta(days=30)
    await page.fill("#obligation-desc", "每月 10 日前确认低保到账")
    await page.select_option("#obligation-cadence", "monthly")
    await page.fill("#obligation-due", next_due.strftime("%Y/%m/%d"))
    await expect(page.locator("#obligation-day")).to_contain_text(f"{next_due.day}日")
    await page.click("form[data-op=obligations] button[type=submit]")
    due = date.today() + timedelta(days=2)
    await page.fill("#deadline-due", due.strftime("%Y/%m/%d"))
    await page.fill("#deadline-desc", "交房租")
    await page.click("form[data-op=deadlines] button[type=submit]")
    # The due date: the item's 30 working days at guidance, then the rent's day, earlier.
    await saved(page, ["CaseOpened", "RequestHeard", "ConcernsNoted", "GuidanceGiven",
                       "CaseDueDateSet", "ObligationDeclared", "DeadlineNoted",
                       "CaseDueDateSet"])
    await expect(page.locator("#obligation-list li")).to_contain_text(
        "每月 · 每月 10 日前确认低保到账")

    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, screenshots / "counter-critical.png")

    # The follow-up service watches the obligation declared from the page.
    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    case = (await clerk.get(f"/cases/{case_id}")).json()
    guided = next(e["payload"] for e in case["timeline"] if e["type"] == "GuidanceGiven")
    assert guided["plain_words"].endswith("您的低保需要年审后恢复发放。")
    missing = guided["missing_documents"]
    assert "居民身份证" not in missing and "家庭经济状况核对授权书" in missing
    obligation = next(e["payload"] for e in case["timeline"]
                      if e["type"] == "ObligationDeclared")
    assert (obligation["cadence"], obligation["next_due_on"]) == ("monthly", next_due.isoformat())
    async def watched() -> bool:
        r = await followup.get(f"/obligations/{obligation['obligation_id']}")
        return r.status_code == 200 and r.json()["case_id"] == case_id
    await wait_until(watched)

    # The notice: printed (Alt+P works as well as the button), A5, Chinese.
    await page.keyboard.press("Alt+P")
    await expect(page.locator("#notice-sheet")).to_have_attribute("data-ready", "1")
    assert await page.evaluate("window.__prints") == 1
    await page.emulate_media(media="print")
    await expect(page.locator("#notice-sheet")).to_be_visible()
    await expect(page.locator("#desk")).to_be_hidden()
    text = await page.evaluate("document.body.innerText")
    for expected in ("花木社区事务受理服务中心", "一次性告知单", "尊敬的王先生/女士：",
                     "最低生活保障", "需补充材料", "您的低保需要年审后恢复发放。",
                     "材料齐全后当天恢复发放",
                     "家庭经济状况核对授权书", f"{due.year}年{due.month}月{due.day}日　交房租",
                     "每月：每月 10 日前确认低保到账",
                     f"办结时限\n{due.year}年{due.month}月{due.day}日",
                     f"张敏（工号 {own.clerk()}）",
                     "021-5888 1234", case_id[:8]):
        assert expected in text, (expected, text)
    # Nothing of the resident's but the surname: no name, phone, ID number or resident id.
    for personal in ("王建国", "建国", "13812345678", "138****5678", card, resident_id, "王*国"):
        assert personal not in text, personal
    assert "居民身份证\n" not in text  # brought: not on the list to bring
    await page.set_viewport_size({"width": 560, "height": 794})  # about A5 at 96 dpi
    await screenshot(page, screenshots / "counter-notice.png", full_page=True)

    pdf = await page.pdf(prefer_css_page_size=True, print_background=False)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes, "the PDF has no page"
    assert len(boxes) == 1, f"the notice takes {len(boxes)} pages"
    width, height = (float(v) for v in boxes[0])
    assert abs(width - A5[0]) < 2 and abs(height - A5[1]) < 2, (width, height)
    for personal in ("13812345678", card, resident_id):
        assert personal.encode() not in pdf

    # A4 when the clerk chooses it.
    await page.emulate_media(media="screen")
    await page.select_option("#notice-size", "a4")
    await page.click("#print-notice")
    await expect(page.locator("#notice-sheet")).to_have_attribute("data-ready", "1")
    assert await page.evaluate("window.__prints") == 2
    await expect(page.locator("#notice-sheet")).to_have_class(re.compile(r"\ba4\b"))
    pdf = await page.pdf(prefer_css_page_size=True)
    width, height = (float(v) for v in re.findall(
        rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)[0])
    assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, (width, height)

    # A step taken just before printing: the page's read of the case after it has not come
    # back yet (held here), and the notice must still be read after that step, not after the
    # position of the last read that came back (it could leave the step out).
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    await page.route(re.compile(r"/cases/[0-9a-f-]{36}\?after="), hold)
    async with page.expect_response(lambda r: r.request.method == "POST"
                                    and r.url.endswith(f"/cases/{case_id}/hear")) as answer:
        await page.fill("#words", "房租能不能缓几天再交？")
        await page.click("form[data-op=hear] button[type=submit]")
    position = (await (await answer.value).json())["position"]
    await expect(page.locator("#net")).to_have_attribute("data-pending", "0")
    async with page.expect_request(lambda r: "/notice" in r.url) as asked:
        await page.click("#print-notice")
    assert f"after={position}" in (await asked.value).url, (await asked.value).url
    await expect(page.locator("#notice-sheet")).to_have_attribute("data-ready", "1")
    for route in held:
        await route.continue_()


async def test_the_clerk_records_since_when_an_obligation_was_missed(
        center: Center, own: Own, desk: BrowserContext) -> None:
    """The resident says November's payment did not come: the counter page takes the next due
    day (ahead) and, apart, since when it was missed (a day already past, at most a year
    back); the declaration carries it (``tracked_from``) and follow-up watches the periods
    between."""
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    followup = center.client("followup", own.supervisor(), "supervisor", own.center_id)
    card = id_number("31011519620315402")
    r = await clerk.post("/residents", json={
        "name": "李桂芳", "id_number": card, "phone": "13812345679",
        "consent": {"contact": True, "surveys": True}})
    assert r.status_code in (200, 201), r.text
    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-4", own.center_id)
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-masked")).to_contain_text("李*芳")
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await saved(page, ["CaseOpened"])

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    next_due, since = today + timedelta(days=20), today - timedelta(days=45)
    await page.fill("#obligation-desc", "每月确认低保到账")
    await page.fill("#obligation-due", next_due.strftime("%Y/%m/%d"))
    # A day to come says nothing of what was missed; a year typed wrong is refused too.
    await page.fill("#obligation-since", (today + timedelta(days=3)).strftime("%Y/%m/%d"))
    await expect(page.locator("#obligation-since-day")).to_have_text(
        "这一天还没到，请填已经过去的日期")
    await page.fill("#obligation-since", (since - timedelta(days=7300)).strftime("%Y/%m/%d"))
    await expect(page.locator("#obligation-since-day")).to_contain_text("最早只能追溯到")
    await page.click("form[data-op=obligations] button[type=submit]")
    await expect(page.locator("form[data-op=obligations] .field-error")).to_contain_text(
        "最早只能追溯到")
    await page.fill("#obligation-since", since.strftime("%Y/%m/%d"))
    await expect(page.locator("#obligation-since-day")).to_contain_text(f"{since.day}日")
    await page.click("form[data-op=obligations] button[type=submit]")
    await saved(page, ["CaseOpened", "ObligationDeclared"])
    await expect(page.locator("#obligation-list li")).to_contain_text("起漏办的也跟进")
    await expect(page.locator("#obligation-since-day")).to_have_text("")

    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    case = (await clerk.get(f"/cases/{case_id}")).json()
    declared = next(e["payload"] for e in case["timeline"] if e["type"] == "ObligationDeclared")
    assert (declared["next_due_on"], declared["tracked_from"]) == (
        next_due.isoformat(), since.isoformat())

    # Follow-up watches from the first period since that day, before the next due day: as
    # the current period, or already recorded missed when the scheduler ticked in between
    # (its periods are past: then the next due day is current, and one was missed).
    async def watched() -> bool:
        r = await followup.get(f"/obligations/{declared['obligation_id']}")
        seen = r.json() if r.status_code == 200 else {}
        return bool(seen) and (seen["next_due_on"] < next_due.isoformat()
                               or seen["missed_periods"] > 0)
    await wait_until(watched, what="a period before the next due day watched")


async def test_a_due_date_in_a_year_without_a_schedule_says_so_on_the_paper_and_the_strip(
        center: Center, desk: BrowserContext) -> None:
    """Guided on Sunday 20 December 2026, due Tuesday 12 January 2027: counted on the law
    alone (2027 has no published schedule yet). The paper the resident takes home, and the
    clerk's case strip, said 2027年1月12日 as if it were firm; it may move once the State
    Council's notice is typed in. An official one prints the bare day, as before."""
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    texts = await page.evaluate("""async () => {
        const m = await import("/ui/intake/notice.js");
        const sheet = document.getElementById("notice-sheet");
        const notice = {case_id: "0d1e2f30-0000-4000-8000-000000000000",
            center_name: "花木", center_phone: null, clerk_id: "clerk-090", clerk_name: null,
            service_item: "SA-HARDSHIP-SUBSIDY", item_name_zh: "困难补助", eligibility: null,
            plain_words: "", policy_basis: "", promised: "", missing_documents: [],
            typical_days: 15, due_on: "2027-01-12", due_basis: "provisional", deadlines: [],
            obligations: [], plans: [], status: "open", outcome: null,
            issued_at: "2026-12-20T02:00:00+00:00"};
        const out = [];
        for (const due_basis of ["provisional", "official"]) {
            m.renderNotice(sheet, {...notice, due_basis});
            out.push(sheet.textContent);
        }
        const counter = await import("/ui/intake/counter.js");  // the page's own instance
        for (const due_basis of ["provisional", "official"]) {
            out.push(counter.dueDay({due_on: "2027-01-12", due_basis}));
        }
        return out;
    }""")
    provisional, official, strip, firm = texts
    assert "2027年1月12日（暂按法定节假日推算，以国务院公布的放假安排为准）" in provisional
    assert "2027年1月12日" in official and "暂按" not in official
    assert strip.endswith("（暂定：按法定节假日推算，放假安排公布后可能调整）"), strip
    assert "暂定" not in firm and "2027" in firm


async def test_a_referrals_reply_day_in_a_year_without_a_schedule_says_so_on_the_strip(
        center: Center, desk: BrowserContext) -> None:
    """A unit asked on Sunday 20 December 2026 to reply within working days, by Tuesday 12
    January 2027: counted on the law alone. The board and the notice said 暂定; the counter's
    referral chip (and a help task's) showed the bare day as if it were firm."""
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    chips = await page.evaluate("""async () => {
        const m = await import("/ui/intake/attention.js");
        const view = {case_id: "0d1e2f30-0000-4000-8000-000000000000", status: "open",
                      timeline: []};
        const out = [];
        for (const basis of ["provisional", "official"]) {
            const given = {
                referrals: [{unit_name: "房管所", status: "awaiting_reply",
                             reply_due_at: "2027-01-12T09:00:00+08:00", basis}],
                help_tasks: [{owner_team: "legal-aid", status: "open",
                              deadline_on: "2027-01-12", basis}]};
            out.push(m.caseState(view, "2026-12-20", given).map((li) => li.textContent));
        }
        return out;
    }""")
    provisional, official = chips
    assert len(provisional) == 2 and all(
        "2027/01/12" in c and "（暂定：按法定节假日推算，放假安排公布后可能调整）" in c
        for c in provisional), provisional
    assert len(official) == 2 and all("2027/01/12" in c and "暂定" not in c
                                      for c in official), official


async def test_a_provisional_day_says_it_may_move_only_while_it_can(
        center: Center, desk: BrowserContext) -> None:
    """On Sunday 20 December 2026 a day in 2027 is counted on the law alone; the published
    schedule counts it again only while it is still to do its work. The strip's help task and
    referral said their 2027 deadlines bare, as firm (the board says 暂定); and the paper and
    the strip said 暂定 beside a day that never moves: one promised (typed, never counted),
    one past (overdue: it keeps its day), and a deadline the published schedule kept."""
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    said = await page.evaluate("""async () => {
        const counter = await import("/ui/intake/counter.js");  // the page's own instances
        const attention = await import("/ui/intake/attention.js");
        const notice = await import("/ui/intake/notice.js");
        const due = (over) => counter.dueDay({due_on: "2027-01-12", due_basis: "provisional",
            due_source: "item_days", status: "guided", ...over}, "2026-12-20");
        const chips = (kept) => attention.caseState(
            {case_id: "c", status: "guided", timeline: []}, "2026-12-20",
            {help_tasks: [{deadline_on: "2027-01-05", basis: "provisional", status: "open",
                           owner_clerk: "clerk-2", deadline_kept: kept}],
             referrals: [{unit_name: "街道", reply_due_at: "2027-01-05T09:00:00+08:00",
                          basis: "provisional", status: "awaiting_reply",
                          reply_due_kept: kept}]}).map((li) => li.textContent);
        const sheet = document.getElementById("notice-sheet");
        notice.renderNotice(sheet, {case_id: "0d1e2f30-0000-4000-8000-000000000000",
            center_name: "花木", center_phone: null, clerk_id: "clerk-090", clerk_name: null,
            service_item: "SA-HARDSHIP-SUBSIDY", item_name_zh: "困难补助", eligibility: null,
            plain_words: "", policy_basis: "", promised: "", missing_documents: [],
            typical_days: 15, due_on: "2027-01-05", due_basis: "provisional",
            due_may_move: false, deadlines: [], obligations: [], plans: [], status: "open",
            outcome: null, issued_at: "2026-12-20T02:00:00+00:00"});
        return {counted: due({}), promised: due({due_source: "promised"}),
                past: counter.dueDay({due_on: "2027-01-12", due_basis: "provisional",
                                      due_source: "item_days", status: "guided"}, "2027-01-14"),
                waiting: chips(false), kept: chips(true),
                paper: sheet.textContent};
    }""")
    assert "暂定" in said["counted"], said
    assert "暂定" not in said["promised"] and "暂定" not in said["past"], said
    assert len(said["waiting"]) == 2 and all("暂定" in chip for chip in said["waiting"]), said
    assert len(said["kept"]) == 2 and not any("暂定" in chip for chip in said["kept"]), said
    assert "2027年1月5日" in said["paper"] and "暂按" not in said["paper"], said
