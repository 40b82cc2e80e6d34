"""What every request passes through before its route (``shared.http.front_door``): every
answer, a refusal too, carries the correlation id and then the browser policies; requests are
counted by route; NUL characters and bodies too large are refused before any route runs."""

from __future__ import annotations

import re

from services.intake.main import create_app
from shared.settings import Settings
from tests.support import running


def _names(raw: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name.lower() for name, _ in raw]


async def test_every_answer_echoes_the_correlation_id_before_the_policies(
        settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        given = await client.get("/health", headers={"X-Correlation-Id": "visit-42:a"})
        assert given.headers["x-correlation-id"] == "visit-42:a"
        made = await client.get("/health")
        assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-correlation-id"])
        bad = await client.get("/health", headers={"X-Correlation-Id": "not ok!"})
        assert bad.headers["x-correlation-id"] != "not ok!"
        from_body = await client.post("/cases", json={"correlation_id": "from-the-body"},
                                      headers={"Idempotency-Key": "key-front-door-1"})
        assert from_body.status_code == 422  # the body is invalid, and still read by the route
        assert from_body.headers["x-correlation-id"] == "from-the-body"
        names = _names(from_body.headers.raw)
        assert names.index(b"x-correlation-id") < names.index(b"content-security-policy")
    async with running(create_app(settings), anonymous=True) as anonymous:
        refused = await anonymous.get("/cases", headers={"X-Correlation-Id": "who-asks"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_missing"
        assert refused.headers["x-correlation-id"] == "who-asks"
        assert refused.headers["x-frame-options"] == "DENY"
        assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_nul_and_oversized_requests_are_refused_with_their_codes(
        settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        nul = await client.get("/cases/%00", headers={"X-Correlation-Id": "nul-1"})
        assert nul.status_code == 422 and nul.json()["error"]["code"] == "nul_character"
        assert nul.headers["x-correlation-id"] == "nul-1"
        big = await client.post("/cases", content=b"{" + b" " * settings.max_body_bytes + b"}",
                                headers={"Content-Type": "application/json",
                                         "Idempotency-Key": "key-front-door-2"})
        assert big.status_code == 413
        assert big.json()["error"] == {
            "code": "body_too_large",
            "message": f"the request body is larger than {settings.max_body_bytes} bytes",
            "details": {"max_bytes": settings.max_body_bytes}}
        assert big.headers["content-security-policy"]
        nul_body = await client.post("/cases", content=b'{"clerk_id": "a\\u0000b"}',
                                     headers={"Content-Type": "application/json",
                                              "Idempotency-Key": "key-front-door-3"})
        assert nul_body.status_code == 422
        assert nul_body.json()["error"]["code"] == "nul_character"
        metrics = (await client.get("/metrics")).text
        assert re.search(r'sixstep_http_requests_total\{[^}]*method="POST"[^}]*'
                         r'route="unmatched"[^}]*status="413"[^}]*\} 1\.0', metrics), metrics
        assert re.search(r'sixstep_http_requests_total\{[^}]*method="POST"[^}]*'
                         r'route="/cases"[^}]*status="422"[^}]*\} 1\.0', metrics), metrics
