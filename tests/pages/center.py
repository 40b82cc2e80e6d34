"""A center for the browser tests: the three services listening on real ports (uvicorn, in this
test process, on its event loop), tokens for its staff, the survey links it sent, and a short
history so the board has days to plot.

The browser is Debian's chromium driven by Playwright (``/usr/bin/chromium``; never
``playwright install``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.security.tokens import issue_token
from shared.settings import Settings
from tests.feedback.helpers import KeptSender
from tools.devservers import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the test runner keeps Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


@dataclass(frozen=True)
class Own:
    """A test's own center and staff, handed out by :meth:`Center.own`: the services are the
    run's (one set per pytest worker, files in any order), and a center or clerk id two tests
    both wrote to showed each the other's rows (open cases, reviews, the desk's counts).
    Nothing else hands out these codes, and no test file writes one of its own
    (``tests/unit/test_pages_own_their_ids.py``)."""

    number: int

    @property
    def center_id(self) -> str:
        return f"SH-PAGES-{self.number:03d}"

    def clerk(self, n: int = 1) -> str:
        """The test's ``n``-th clerk (工号), at its center."""
        return f"clerk-p{self.number:03d}-{n}"

    def supervisor(self, n: int = 1) -> str:
        """The test's ``n``-th supervisor, at its center."""
        return f"director-p{self.number:03d}-{n}"


@dataclass
class Center:
    settings: Settings
    urls: dict[str, str]
    sender: KeptSender
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def own(self) -> Own:
        """A center no other test of the run has, with clerks and supervisors of its own (the
        ``own`` fixture's; a test working at two centers asks again)."""
        return Own(next(self.numbers))

    def directory(self, *, staff: dict[str, str] | None = None,
                  names: dict[str, str] | None = None,
                  windows: dict[str, dict[str, str]] | None = None) -> None:
        """Entries of the staff directory (``STAFF_NAMES``), the centers' printed names
        (``CENTER_NAMES``) and windows (``CENTER_WINDOWS``) for a test's own center and staff.
        The services read these settings at each request, from this very object: an entry
        is seen at once, and only by the test whose ids it names."""
        self.settings.staff_names.update(staff or {})
        self.settings.center_names.update(names or {})
        self.settings.center_windows.update(windows or {})

    @property
    def intake(self) -> str:
        return self.urls["intake"]

    @property
    def feedback(self) -> str:
        return self.urls["feedback"]

    def token(self, sub: str, role: str, center_id: str) -> str:
        """A bearer token of ``role`` at ``center_id``, signed with this center's key."""
        return issue_token(self.settings, sub, role, center_id)

    def client(self, service: str, sub: str, role: str, center_id: str) -> httpx.AsyncClient:
        """An API client for ``service`` with a token of ``sub``."""
        client = httpx.AsyncClient(
            base_url=self.urls[service], timeout=20.0,
            headers={"Authorization": f"Bearer {self.token(sub, role, center_id)}"})
        self.clients.append(client)
        return client

    async def survey_for(self, case_id: str, timeout: float = 15.0) -> Any:
        """The survey message the counter tablet got for ``case_id``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = next((m for m in self.sender.sent if str(m.case_id) == case_id), None)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no survey was sent for case {case_id}")


async def _serve(app: FastAPI, port: int, stack: contextlib.AsyncExitStack) -> str:
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                    access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)

    stack.push_async_callback(stop)
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.02)
    return f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def running_center(settings: Settings, *, own: Mapping[str, Mapping[str, Any]] | None = None
                         ) -> AsyncIterator[Center]:
    """The three services on free ports; ``own``: a service's settings of its own (its NATS
    user), over ``settings``."""
    ports = {name: free_port() for name in ("intake", "followup", "feedback")}
    settings = settings.model_copy(update={
        "feedback_tick_s": 0.05,
        "followup_url": f"http://127.0.0.1:{ports['followup']}",
        "survey_link_base": f"http://127.0.0.1:{ports['feedback']}/s",
        "intake_port": ports["intake"], "followup_port": ports["followup"],
        "feedback_port": ports["feedback"]})
    sender = KeptSender()
    async with contextlib.AsyncExitStack() as stack:
        def of(name: str) -> Settings:
            return settings.model_copy(update=dict((own or {}).get(name, {})))

        apps = {"intake": intake_app(of("intake")), "followup": followup_app(of("followup")),
                "feedback": feedback_app(of("feedback"), sender=sender)}
        urls = dict(zip(apps, await asyncio.gather(
            *(_serve(app, ports[name], stack) for name, app in apps.items())), strict=True))
        center = Center(settings, urls, sender)
        try:
            yield center
        finally:
            for client in center.clients:
                await client.aclose()


# -- a short history, so the board has days to plot ----------------------------------------------


def _key() -> str:
    return f"seed-{uuid.uuid4().hex}"


async def resolved_case(intake: httpx.AsyncClient, center_id: str, *, at: datetime,
                        emotion: str = "anxious", outcome: str = "resolved",
                        defused: bool = True, item: str = "SA-HARDSHIP-SUBSIDY",
                        resident_id: str | None = None) -> str:
    """A case through steps 1-4 as a counter app records it, by the client's clerk; returns
    its id."""
    stamp = at.isoformat()
    r = await intake.post("/visits", json={  # the resident sits down: one trip (人次)
        "center_id": center_id, "counter_id": "window-2", "occurred_at": stamp},
        headers={"Idempotency-Key": _key()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = {"center_id": center_id, "counter_id": "window-2",
                            "channel": "counter", "service_item": item, "occurred_at": stamp}
    if resident_id:
        body["resident_id"] = resident_id
    r = await intake.post("/cases", json=body, headers={"Idempotency-Key": _key()})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    explanation = "" if outcome == "resolved" else "需要街道复核，已告知居民时限"
    for step, payload in (
            ("hear", {"words": "我想问问这个怎么办"}),
            ("concerns", {"emotion": emotion, "urgency": "normal"}),
            ("resolve", {"outcome": outcome, "explanation": explanation,
                         "emotion_defused": defused})):
        r = await intake.post(f"/cases/{case_id}/{step}", json={**payload, "occurred_at": stamp},
                              headers={"Idempotency-Key": _key()})
        assert r.status_code == 200, (step, r.text)
    return case_id


async def seed_history(intake: httpx.AsyncClient, center_id: str, now: datetime,
                       days: int = 21) -> None:
    """A few cases a day over the last ``days`` days (none today): visits, resolutions and
    defused emotions to plot. Deterministic."""
    rng = random.Random(6)
    jobs = []
    for back in range(days, 0, -1):
        day = now - timedelta(days=back)
        if day.weekday() >= 5:
            continue
        for n in range(rng.randint(2, 5)):
            emotion = rng.choice(["calm", "calm", "anxious", "upset", "angry"])
            jobs.append(resolved_case(
                intake, center_id, at=day.replace(hour=9 + n, minute=rng.randint(0, 59)),
                emotion=emotion, outcome="resolved" if rng.random() > 0.06 else "partly_resolved",
                defused=rng.random() > 0.05))
    for start in range(0, len(jobs), 16):
        await asyncio.gather(*jobs[start:start + 16])


MAX_SCREENSHOT_BYTES = 300 * 1024


async def screenshot(page: Any, path: Path, *, full_page: bool = False) -> None:
    """A PNG of the page for docs/pages.md, kept under 300 KB: a whole page that would be larger
    is taken as the visible part only."""
    shot = await page.screenshot(full_page=full_page, animations="disabled")
    if full_page and len(shot) > MAX_SCREENSHOT_BYTES:
        shot = await page.screenshot(animations="disabled")
    await asyncio.to_thread(path.write_bytes, shot)
