"""Recognising a returning resident (issue 24, item 5): after the lookup the clerk sees the
masked name and phone, read from the vault and audited as today, and updates the phone and
the consent at the counter."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect

from tests.pages.center import Center, Own
from tests.pages.test_counter import id_number, sign_in
from tests.support import wait_until


async def test_the_clerk_recognises_a_returning_resident_and_updates_her_phone(
        center: Center, own: Own, desk: BrowserContext) -> None:
    clerk = center.client("intake", own.clerk(), "clerk", own.center_id)
    card = id_number("31010419580808402")
    r = await clerk.post("/residents", json={
        "name": "王建英", "id_number": card, "phone": "13912345678",
        "consent": {"contact": True, "surveys": True}})
    resident_id = r.json()["resident_id"]

    page = await desk.new_page()
    await sign_in(page, center, own.clerk(), "window-2", own.center_id)
    await page.fill("#resident-q", "12345")
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-form .field-error")).to_have_text(
        "请输入18位身份证号或居民编号")
    await page.fill("#resident-q", card)
    await page.press("#resident-q", "Enter")
    await expect(page.locator("#resident-masked")).to_have_text("王*英 · 139****5678")
    await expect(page.locator("#resident-consent")).to_have_text("同意回访")
    html = await page.content()
    assert "王建英" not in html and "13912345678" not in html

    # The read is in the audit trail, with the clerk and the purpose.
    director = center.client("intake", own.supervisor(), "supervisor", own.center_id)
    # (the eligibility hints' read, after the lookup, is one of its own: issue 20; the page
    # asks for the hints once the lookup has answered, so it may come a moment later)
    async def purposes() -> set[str]:
        trail = (await director.get("/audit", params={"resident_id": resident_id})).json()
        return {e["purpose"] for e in trail["items"]
                if e["action"] == "read" and e["actor"] == own.clerk()}

    async def both_read() -> bool:
        return len(await purposes()) >= 2

    await wait_until(both_read, what="the lookup's and the hints' reads in the audit trail")
    assert await purposes() == {"counter reception", "eligibility hints"}

    # She has a new phone and no longer wants calls.
    await page.click("#resident-edit")
    await expect(page.locator("#upd-phone")).to_be_focused()
    await page.fill("#upd-phone", "1369876")
    await page.click("#resident-update button[type=submit]")
    await expect(page.locator("#resident-who .field-error")).to_contain_text("格式不对")
    await page.fill("#upd-phone", "13698765432")
    await page.locator("#resident-update input[name=contact]").uncheck()
    await page.click("#resident-update button[type=submit]")
    await expect(page.locator("#resident-masked")).to_have_text("王*英 · 136****5432")
    await expect(page.locator("#resident-consent")).to_have_text("未同意回访")
    await expect(page.locator("#item-q")).to_be_focused()

    stored = (await director.get(f"/residents/{resident_id}",
                                 params={"purpose": "test check"})).json()
    assert stored["phone"] == "13698765432" and stored["consent"]["contact"] is False
