"""The supervisor handles bad reviews from the board, the 好差评 way: triages one (立行立改),
records what was done, and decides the clerk's appeal of another; each lands through the same
API as any client's, and the board follows without a reload."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import BrowserContext, Page, expect

from shared.kernel.calendar import WorkingCalendar
from tests.pages.center import Center, Own, resolved_case, screenshot
from tests.support import as_resident, register_resident


async def open_board(desk: BrowserContext, center: Center, own: Own) -> Page:
    board = await desk.new_page()
    await board.goto(f"{center.feedback}/board?every=1")
    await board.fill("#signin-token", center.token(own.supervisor(), "supervisor", own.center_id))
    await board.click("#signin-form button[type=submit]")
    await expect(board.locator("#board")).to_be_visible()
    return board


async def test_the_supervisor_triages_records_an_outcome_and_decides_an_appeal_on_the_board(
        center: Center, own: Own, desk: BrowserContext, screenshots: Path) -> None:
    zone = ZoneInfo(center.settings.center_timezone)
    now = datetime.now(zone)
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    feedback = center.client("feedback", own.clerk(), "clerk", own.center_id)
    cases = [await resolved_case(clerk, own.center_id, at=now,
                                 resident_id=await register_resident(clerk)) for _ in range(2)]
    for case_id, level in zip(cases, ("dissatisfied", "very_dissatisfied"), strict=True):
        survey = await center.survey_for(case_id)
        r = await as_resident(feedback).post(f"/surveys/{survey.survey_id}/rating",
                                json={"token": survey.token, "level": level,
                                      "comment": "窗口让我跑了三趟"},
                                headers={"Idempotency-Key": f"bad-{uuid.uuid4()}"})
        assert r.status_code == 200, r.text
    fixed, appealed = cases
    found = (await feedback.get(f"/cases/{appealed}/feedback",
                                params={"after": r.json()["position"]})).json()
    appealed_id = found["rectifications"][0]["rectification_id"]
    r = await feedback.post(f"/rectifications/{appealed_id}/appeal",
                            json={"reasons": "居民评价的是区医保中心的事项，不是本窗口"},
                            headers={"Idempotency-Key": f"appeal-{uuid.uuid4()}"})
    assert r.status_code == 200, r.text

    board = await open_board(desk, center, own)
    item = board.locator(f"#rect-list li[data-case='{fixed}']")
    await expect(item).to_be_visible()
    await expect(item.locator("[data-part=track]")).to_have_text("待分类")
    await expect(board.locator("[data-track-count=untriaged] b")).to_have_text("2")

    # 立行立改: due the next working day; the board says so at once.
    await item.locator("button[data-triage=immediate]").click()
    await expect(item.locator("[data-part=track]")).to_have_text("立行立改")
    await expect(board.locator("[data-track-count=immediate] b")).to_have_text("1")
    rectification_id = await item.get_attribute("data-id")
    supervisor = center.client("feedback", own.supervisor(), "supervisor", own.center_id)
    seen = (await supervisor.get(f"/rectifications/{rectification_id}")).json()
    tomorrow = WorkingCalendar().add_working_days(now.date(), 1)
    assert (seen["track"], seen["deadline_on"]) == ("immediate", tomorrow.isoformat())

    # The appeal waits for a supervisor other than the clerk.
    appeal = board.locator(f"#appeal-list li[data-case='{appealed}']")
    await expect(appeal).to_contain_text("区医保中心")
    await expect(board.locator("#appeals-waiting")).to_have_text("1")
    await screenshot(board, screenshots / "board-bad-reviews.png", full_page=True)

    # The outcome, typed on the board (a refresh meanwhile leaves the form as typed).
    await item.locator("button[data-action=outcome]").click()
    form = item.locator("form[data-form=outcome]")
    await form.locator("select[name=outcome]").select_option("rectified")
    await form.locator("input[name=actions]").fill("科长当面致歉，当场补办")
    await board.wait_for_timeout(1500)  # the board refreshes every second: the form stays
    await expect(form.locator("input[name=actions]")).to_have_value("科长当面致歉，当场补办")
    await form.locator("button[type=submit]").click()
    await expect(item).to_have_count(0)
    seen = (await supervisor.get(f"/rectifications/{rectification_id}")).json()
    assert (seen["status"], seen["outcome"], seen["on_time"]) == ("completed", "rectified", True)

    # Upheld: a mistaken review; it leaves the open list and the appeals waiting.
    await appeal.locator("select[name=grounds]").select_option("mistaken")
    await board.wait_for_timeout(1500)  # a refresh meanwhile keeps the grounds chosen
    await expect(appeal.locator("select[name=grounds]")).to_have_value("mistaken")
    await appeal.locator("input[name=reasons]").fill("经核实，评价对象不是本窗口")
    await appeal.locator("button[data-decide=upheld]").click()
    await expect(board.locator("#appeals-waiting")).to_have_text("0")
    await expect(board.locator(f"#rect-list li[data-case='{appealed}']")).to_have_count(0)
    await expect(board.locator("#rect-open")).to_have_text("0")
    seen = (await supervisor.get(f"/rectifications/{appealed_id}")).json()
    assert (seen["status"], seen["appeal"], seen["appeal_grounds"],
            seen["appeal_decided_by"]) == ("void", "upheld", "mistaken", own.supervisor())


async def test_a_deadline_in_a_year_without_a_schedule_says_so_on_the_board(
        center: Center, desk: BrowserContext) -> None:
    """A rectification triaged on New Year's Eve at 23:30 is due Monday 4 January 2027 by the
    law alone; a referral's reply and a help task's deadline counted into 2027 the same. The
    board showed the bare day, as firm; now it says it may move (basis provisional), and an
    official one shows the bare day as before."""
    board = await desk.new_page()
    await board.goto(f"{center.feedback}/board?every=1")
    shown = await board.evaluate("""async () => {
        const m = await import("/ui/feedback/board.js");  // the page's own instance
        return [m.dayShown("2027-01-04", "provisional"), m.dayShown("2026-12-31", "official")];
    }""")
    assert shown[0].endswith("（暂定：按法定节假日推算，放假安排公布后可能调整）"), shown
    assert "暂定" not in shown[1] and "2026" in shown[1]
    # A date that did its work keeps its day whatever the schedule says: a missed follow-up,
    # an escalated help task, an overdue referral, case or rectification, and one the
    # published schedule kept (``*_kept``), said 暂定 ... 公布后可能调整 all the same.
    kept = await board.evaluate("""async () => {
        const m = await import("/ui/feedback/board.js");
        const j = m.JUDGED;
        return [[j.followup({status: "missed"}), j.followup({status: "scheduled", due_kept: true}),
                 j.help({escalated_to: "lead-1"}), j.referral({status: "overdue"}),
                 j.case({overdue: true}), j.rect({status: "open", overdue: true})],
                [j.followup({status: "scheduled"}), j.help({escalated_to: null}),
                 j.referral({status: "awaiting_reply"}), j.case({overdue: false}),
                 j.rect({status: "open", overdue: false})],
                m.dayShown("2027-01-04", "provisional", true)];
    }""")
    assert kept[0] == [True] * 6 and kept[1] == [False] * 5, kept
    # A case's due date typed (promised, a deadline: ``due_may_move`` false) keeps its day,
    # provisional or not; one counted from the item's days, not past, may move.
    typed = await board.evaluate("""async () => {
        const j = (await import("/ui/feedback/board.js")).JUDGED;
        return [j.case({overdue: false, due_may_move: false}),
                j.case({overdue: false, due_may_move: true})];
    }""")
    assert typed == [True, False], typed
    assert "暂定" not in kept[2] and "2027" in kept[2], kept
