"""Every answer of the three services says how a browser may use it: the pages run only their
own scripts and styles, no site frames them, no URL leaks in Referer; and the board's worklist
relay reaches nothing of follow-up's but the worklist."""

from __future__ import annotations

import uuid

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import bearer, running

PAGES = {"intake": ["/counter"], "feedback": ["/board", f"/s/{uuid.UUID(int=1)}?t=x"],
         "followup": []}
EVERYWHERE = ["/health", "/openapi.json", "/docs", "/no-such-page"]


async def test_every_page_and_answer_carries_the_browser_policies(settings: Settings) -> None:
    apps = {"intake": intake_app, "feedback": feedback_app, "followup": followup_app}
    for name, create in apps.items():
        async with running(create(settings)) as client:
            for path in [*PAGES[name], *EVERYWHERE]:
                r = await client.get(path)
                policy = r.headers.get("content-security-policy", "")
                assert "frame-ancestors 'none'" in policy, (name, path)
                assert r.headers.get("x-frame-options") == "DENY", (name, path)
                assert r.headers.get("referrer-policy") == "no-referrer", (name, path)
                assert r.headers.get("x-content-type-options") == "nosniff", (name, path)
                if r.headers.get("content-type", "").startswith("application/json"):
                    assert r.headers.get("cache-control") == "no-store", (name, path)
                if path in PAGES[name]:
                    assert r.headers["content-type"].startswith("text/html"), (name, path)
                    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
            refused = await client.get("/cases", headers={"Authorization": "Bearer x"})
            assert refused.status_code in (401, 404)
            assert refused.headers.get("x-frame-options") == "DENY", "a refusal too"


async def test_the_boards_worklist_reaches_only_the_worklist(settings: Settings) -> None:
    async with running(feedback_app(settings), role=Role.SUPERVISOR) as board:
        ops = bearer(settings, role=Role.OPS, center=None, sub="oncall")
        for center_id in ("x/../../../ops/consumers", "../ops/consumers", "x?y=1", "%2e%2e"):
            for auth in ({}, ops):
                r = await board.get("/board/worklist", params={"center_id": center_id},
                                    headers=auth)
                assert r.status_code == 422, (center_id, r.text)
                assert r.json()["error"]["code"] == "validation_failed"
