"""The case's timeline says what a clerk needs of each due date (办结时限) set on it: the day,
暂定 beside it only while it may still move, the day it replaced, why it was set or moved, and
who set it. Before, the row said the day and where it came from: a due date moved by a
supervisor, or counted again once the holiday schedule was published, read like the first."""

from __future__ import annotations

from playwright.async_api import BrowserContext

from tests.pages.center import Center


async def test_each_due_date_on_the_timeline_says_why_and_who_and_whether_it_may_move(
        center: Center, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    rows = await page.evaluate("""async () => {
        const counter = await import("/ui/intake/counter.js");  // the page's own instance
        const row = (version, actor, payload) => ({version, actor, type: "CaseDueDateSet",
            payload: {previous_due_on: null, counted_from: null, working_days: null,
                      note: null, ...payload}});
        // Guided on Sunday 20 December 2026: 15 working days, into 2027 (no schedule yet).
        const counted = row(3, "clerk-018", {due_on: "2027-01-12", source: "item_days",
            cause: "guidance", basis: "provisional", counted_from: "2026-12-20",
            working_days: 15});
        const moved = row(5, "director-02", {due_on: "2027-01-19", source: "moved",
            cause: "moved", basis: "provisional", previous_due_on: "2027-01-12",
            note: "等待房管所回函"});
        const published = row(6, "system:calendar", {due_on: "2027-01-13",
            source: "item_days", cause: "calendar_published", basis: "official",
            previous_due_on: "2027-01-12", counted_from: "2026-12-20", working_days: 15});
        // A year nobody knows yet (2028), counted on the law alone.
        const far = row(3, "clerk-018", {due_on: "2028-02-15", source: "item_days",
            cause: "guidance", basis: "provisional", counted_from: "2028-01-24",
            working_days: 15});
        const view = (status, ...timeline) => ({status, timeline});
        const say = counter.dueSetRow;
        return {
            alone: say(counted, view("guided", counted), "2026-12-20"),
            newYearsEve: say(counted, view("guided", counted), "2026-12-31"),
            past: say(counted, view("guided", counted), "2027-01-13"),
            resolved: say(counted, view("resolved", counted), "2026-12-31"),
            replaced: say(counted, view("guided", counted, moved), "2026-12-20"),
            moved: say(moved, view("guided", counted, moved), "2026-12-20"),
            published: say(published, view("guided", counted, published), "2026-12-31"),
            far: say(far, view("guided", far), "2028-01-24"),
        };
    }""")
    assert rows["alone"] == ("2027/01/12 （暂定：按法定节假日推算，放假安排公布后可能调整） · "
                             "按事项承诺时限：自2026/12/20起15个工作日 · 设定：clerk-018"), rows
    assert "暂定" in rows["newYearsEve"], rows  # 23:30 on 31 December: the day still to come
    for judged in ("past", "resolved", "replaced"):  # it did its work, or another is in force
        assert rows[judged].startswith("2027/01/12 · 按事项"), rows
    assert rows["moved"] == ("2027/01/19 · 原为2027/01/12 · 调整 · 等待房管所回函 · "
                             "设定：director-02"), rows  # typed: never counted again
    assert rows["published"] == ("2027/01/13 · 原为2027/01/12 · 按事项承诺时限：自2026/12/20起"
                                 "15个工作日 · 放假安排公布后重新推算 · 设定：系统"), rows
    assert rows["far"].startswith("2028/02/15 （暂定"), rows
