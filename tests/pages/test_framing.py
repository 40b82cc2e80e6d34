"""Another site cannot put the clerk's screen, the board or a survey in a frame of its own
(clickjacking): the browser refuses, as the pages' policy tells it to."""

from __future__ import annotations

import uuid

from playwright.async_api import BrowserContext

from tests.pages.center import Center
from tests.pages.conftest import VIOLATIONS


async def test_no_site_can_frame_the_pages(center: Center, desk: BrowserContext) -> None:
    page = await desk.new_page()
    for url in (f"{center.intake}/counter", f"{center.feedback}/board",
                f"{center.feedback}/s/{uuid.UUID(int=1)}?t=x"):
        async with page.expect_console_message(
                lambda m: "frame-ancestors" in m.text, timeout=15_000) as refused:
            await page.set_content(f'<iframe src="{url}"></iframe>')
        assert "'none'" in (await refused.value).text
    VIOLATIONS.clear()  # these refusals are the point here, not a page's fault
