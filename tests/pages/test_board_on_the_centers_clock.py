"""The supervisor's board reads every moment on the center's clock, not the screen's: a board
on a laptop left on another zone (UTC, a travelling supervisor's) would show a bad review
received this morning in Shanghai as received yesterday. The screen's zone is picked so that,
at the hour the test runs, its calendar day is not Shanghai's (20 hours behind before 19:00 in
Shanghai, 6 hours ahead after), so the old page fails whatever the hour."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from tests.pages.center import Center, Own, resolved_case
from tests.support import as_resident, register_resident

SHANGHAI_DAY = "2026/12/05"


def zh_day(moment: datetime) -> str:
    return moment.strftime("%Y/%m/%d")


async def test_a_bad_review_received_this_morning_reads_today_on_a_board_in_another_zone(
        center: Center, own: Own, browser: Browser) -> None:
    zone = center.settings.center_timezone
    now = datetime.now(ZoneInfo(zone))
    screen_zone = "Etc/GMT+12" if now.hour < 19 else "Pacific/Kiritimati"
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    feedback = center.client("feedback", own.clerk(), "clerk", own.center_id)
    case_id = await resolved_case(clerk, own.center_id, at=now,
                                  resident_id=await register_resident(clerk))
    survey = await center.survey_for(case_id)
    r = await as_resident(feedback).post(f"/surveys/{survey.survey_id}/rating",
                            json={"token": survey.token, "level": "dissatisfied",
                                  "comment": "材料清单没讲全"},
                            headers={"Idempotency-Key": f"bad-{uuid.uuid4()}"})
    assert r.status_code == 200, r.text
    found = (await feedback.get(f"/cases/{case_id}/feedback",
                                params={"after": r.json()["position"]})).json()
    opened_at = datetime.fromisoformat(found["rectifications"][0]["opened_at"])
    on_the_centers_day = zh_day(opened_at.astimezone(now.tzinfo))
    on_the_screens_day = zh_day(opened_at.astimezone(ZoneInfo(screen_zone)))
    assert on_the_centers_day != on_the_screens_day  # the test means something at this hour

    screen = await browser.new_context(viewport={"width": 1440, "height": 900},
                                       locale="zh-CN", timezone_id=screen_zone)
    screen.set_default_timeout(15_000)
    try:
        board = await screen.new_page()
        await board.goto(f"{center.feedback}/board?every=1")
        await board.fill("#signin-token",
                         center.token(own.supervisor(), "supervisor", own.center_id))
        await board.click("#signin-form button[type=submit]")
        await expect(board.locator("#board")).to_be_visible()
        item = board.locator(f"#rect-list li[data-case='{case_id}']")
        await expect(item).to_contain_text(f"{on_the_centers_day} 收到")

        # The page's formatters, on fixed moments: 01:30 on 5 December in Shanghai is still
        # 4 December in UTC and on the screen; a calendar day is shown as it is.
        shown = await board.evaluate("""async () => {
            const ui = await import("/ui/shared/ui.js");
            const m = "2026-12-04T17:30:05+00:00";
            return [ui.fmtDate(m), ui.fmtTime(m), ui.fmtDateTime(m), ui.fmtDate("2026-12-05"),
                    ui.dayIn(ui.centerZone(), new Date(m))];
        }""")
        assert shown == [SHANGHAI_DAY, "01:30:05", "12/05 01:30", SHANGHAI_DAY, "2026-12-05"]
    finally:
        await screen.close()
