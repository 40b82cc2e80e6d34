"""Browser tests share the three services (on real ports) and one chromium, started once a worker
for this folder's files (~4 s a module before) and stopped when the worker leaves the folder:
kept for the whole run, the services' schedulers ticked on through every later file on that
worker's loop, CPU taken from them, and their batches looked like those tests' orphans
(``tests/started_tasks.py``). The files of a folder come one after another
(``tests/conftest.py``'s ``SLOW_FIRST``). Each test gets a fresh browser context (its own
localStorage and sessionStorage) and, from the ``own`` fixture, a center, clerks and
supervisors no other test has (every other test's cases are in the same services)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from shared.settings import Settings
from tests.pages.center import CHROMIUM, CHROMIUM_ARGS, ROOT, Center, Own, running_center
from tests.support import drop_test_objects

try:
    from playwright.async_api import Browser, BrowserContext, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]
else:
    # A page's answer waits on the three services; on a two-core CI machine running the whole
    # suite a lookup plus its vault reads took over Playwright's default 5 s. Assertions still
    # fail, later: the API clients' own timeout (20 s) is the bound.
    expect.set_options(timeout=20_000)


@pytest_asyncio.fixture(scope="package")
async def center(database_url: str, nats_url: str) -> AsyncIterator[Center]:
    tag = secrets.token_hex(3)
    settings = Settings(
        database_url=database_url, nats_url=nats_url, stream_name=f"P{tag}",
        subject_prefix=f"p{tag}", schema_prefix=f"p{tag}_", partitions=4,
        consumer_backoff_s=(0.05, 0.1, 0.2, 0.3), consumer_max_deliver=3,
        read_wait_timeout_s=10.0, log_json=False, log_level="WARNING",
        environment="production", nats_secured_otherwise=True,  # the run's own nats-server
        auth_keys=["pages-test-auth-key-" + secrets.token_hex(16)],
        vault_master_key="pages-test-vault-master-key-" + secrets.token_hex(16),
        vault_lookup_key="pages-test-vault-lookup-key-" + secrets.token_hex(16),
        survey_token_secret="pages-test-survey-secret-" + secrets.token_hex(16),
        # Eight default windows and one phone for every center; a test names its own center's
        # windows, its name and its staff's (``Center.directory``).
        center_windows={"*": {f"window-{n}": f"{n}号窗口" for n in range(1, 9)}},
        staff_names={}, center_names={}, center_phones={"*": "021-5888 1234"})
    try:
        async with running_center(settings) as running:
            yield running
    finally:
        await drop_test_objects(settings)


@pytest.fixture
def own(center: Center) -> Own:
    """This test's own center, clerks and supervisors (``Own``): no other test of the run,
    whatever its file, worker or order, writes a row there."""
    return center.own()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if async_playwright is None or not Path(CHROMIUM).exists():
        pytest.skip(f"the browser tests need playwright and {CHROMIUM} (make test installs it)")
    return CHROMIUM


#: What the browser refused because a page broke its own Content-Security-Policy (an inline
#: script or style, another origin): every page test fails on one (``no_policy_violations``).
VIOLATIONS: list[str] = []


@pytest_asyncio.fixture(scope="package")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        new_context = chromium.new_context

        async def watched(**kwargs: Any) -> BrowserContext:
            context = await new_context(**kwargs)
            context.on("console", lambda message: VIOLATIONS.append(message.text)
                       if "Content Security Policy" in message.text else None)
            return context

        chromium.new_context = watched  # type: ignore[method-assign]
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(autouse=True)
def no_policy_violations() -> Iterator[None]:
    VIOLATIONS.clear()
    yield
    assert VIOLATIONS == [], "a page broke its Content-Security-Policy"


@pytest_asyncio.fixture
async def desk(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A counter screen's browser: 1440x900, Chinese, the center's time zone."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900},
                                        locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the pages' pictures go: ``.state/screenshots/`` (not committed) unless
    ``SIXSTEP_SCREENSHOTS`` names a folder; ``SIXSTEP_SCREENSHOTS=docs/screenshots`` refreshes
    the ones docs/pages.md shows."""
    folder = Path(os.environ.get("SIXSTEP_SCREENSHOTS") or ROOT / ".state" / "screenshots")
    if not folder.is_absolute():
        folder = ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder
