"""Who may call: no token 401, a bad or expired token 401, another center's case 403, roles,
key rotation, and the limits on what a caller can send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from services.intake.main import create_app
from shared.security.principals import Role
from shared.security.tokens import AuthError, TokenKeys
from shared.settings import DEV_AUTH_KEY, Settings
from tests.support import TEST_CENTER, bearer, headers, running, token_for

OTHER_CENTER = "SH-PD-ZHANGJIANG"
OLD_KEY = "the-previous-signing-key-0123456789abcdef"
NEW_KEY = "the-current-signing-key-0123456789abcdefgh"


def open_body(center: str = TEST_CENTER) -> dict[str, str]:
    return {"center_id": center, "counter_id": "window-1", "service_item": "SA-HARDSHIP-SUBSIDY"}


async def test_a_clerk_sees_their_own_centers_cases_and_nobody_elses(settings: Settings
                                                                     ) -> None:
    async with running(create_app(settings), role=Role.CLERK) as client:
        opened = await client.post("/cases", json=open_body(), headers=headers("sec-open-1"))
        assert opened.status_code == 201, opened.text
        case = opened.json()["id"]
        own = await client.get(f"/cases/{case}", params={"after": opened.json()["position"]})
        assert own.status_code == 200
        assert own.json()["timeline"][0]["actor"] == "test-clerk"  # the token's subject

        other = bearer(settings, role=Role.CLERK, center=OTHER_CENTER, sub="clerk-b")
        # Another center's case is none of theirs: a 404 as for an id nobody has (a 403 said
        # the id is a case; tests/security/test_another_centers_case.py).
        read = await client.get(f"/cases/{case}", headers=other)
        assert read.status_code == 404 and read.json()["error"]["code"] == "not_found"
        # The write path refuses too, before the read model has the case or not.
        step = await client.post(f"/cases/{case}/hear", json={"words": "我想问问"},
                                 headers={**headers("sec-hear-b"), **other})
        assert step.status_code == 404 and step.json()["error"]["code"] == "not_found"
        opening = await client.post("/cases", json=open_body(TEST_CENTER),
                                    headers={**headers("sec-open-b"), **other})
        assert opening.status_code == 403
        listed = await client.get("/cases", headers=other)
        assert listed.status_code == 200 and listed.json()["items"] == []
        elsewhere = await client.get("/cases", params={"center_id": TEST_CENTER},
                                     headers=other)
        assert elsewhere.status_code == 403

        analyst = bearer(settings, role=Role.ANALYST, center=None, sub="analyst-1")
        refused = await client.get(f"/cases/{case}", headers=analyst)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"


async def test_no_token_a_forged_or_an_expired_one_is_a_401(settings: Settings) -> None:
    now = datetime.now(UTC)
    expired = TokenKeys([k.get_secret_value() for k in settings.auth_keys]).issue(
        "clerk-001", Role.CLERK, TEST_CENTER, ttl=timedelta(minutes=5),
        now=now - timedelta(hours=1))
    forged = TokenKeys(["somebody-elses-key-0123456789abcdefghij"]).issue(
        "clerk-001", Role.SUPERVISOR, TEST_CENTER)
    unsigned = jwt.encode({"sub": "x", "role": "ops", "iss": "sixstep", "aud": "sixstep",
                           "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 60},
                          None, algorithm="none")
    async with running(create_app(settings), anonymous=True) as client:
        for path in ("/cases", f"/cases/{uuid.uuid4()}", "/catalogue", "/residents/x",
                     "/audit", "/no-such-route"):
            r = await client.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "token_missing"
            assert r.headers["www-authenticate"].startswith("Bearer")
        for token, code in ((expired, "token_expired"), (forged, "token_invalid"),
                            (unsigned, "token_invalid"), ("not-a-jwt", "token_invalid")):
            r = await client.get("/cases", headers={"Authorization": f"Bearer {token}"})
            assert (r.status_code, r.json()["error"]["code"]) == (401, code)
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
        r = await client.post("/cases", json=open_body(), headers=headers("sec-anon-1"))
        assert r.status_code == 401
        for path in ("/health", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


async def test_ops_routes_are_for_ops_tokens(settings: Settings) -> None:
    async with running(create_app(settings), role=Role.OPS, center=None) as client:
        r = await client.get("/ops/consumers")
        assert r.status_code != 401 and r.status_code != 403, r.text
        clerk = bearer(settings, role=Role.CLERK)
        r = await client.get("/ops/consumers", headers=clerk)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
        r = await client.post("/cases", json=open_body(), headers=headers("sec-ops-1"))
        assert r.status_code == 403  # ops runs the service, it does not serve residents


async def test_bodies_over_the_limit_are_refused(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 4096})
    async with running(create_app(small)) as client:
        big = {**open_body(), "correlation_id": "x" * 5000}
        r = await client.post("/cases", json=big, headers=headers("sec-big-1"))
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

        async def chunks():  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post("/cases", content=chunks(),
                              headers={**headers("sec-big-2"), "Content-Type": "application/json"})
        assert r.status_code == 413


def test_rotation_keeps_both_keys_valid_until_the_old_one_is_dropped() -> None:
    before = TokenKeys([OLD_KEY])
    during = TokenKeys([NEW_KEY, OLD_KEY])
    after = TokenKeys([NEW_KEY])
    old_token = before.issue("clerk-001", Role.CLERK, TEST_CENTER)
    new_token = during.issue("clerk-001", Role.CLERK, TEST_CENTER)
    assert during.verify(old_token).sub == "clerk-001"
    assert after.verify(new_token).role is Role.CLERK
    with pytest.raises(AuthError) as refused:
        after.verify(old_token)
    assert refused.value.code == "token_invalid"
    # A token whose claims were edited fails its signature.
    head, _, sig = new_token.split(".")
    tampered = jwt.encode({**jwt.decode(new_token, options={"verify_signature": False}),
                           "center": OTHER_CENTER}, "x" * 40, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthError):
        during.verify(f"{head}.{tampered}.{sig}")


def test_development_keys_are_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="development key"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="32"):
        Settings(auth_keys=["short"])
    ok = Settings(environment="production", auth_keys=[NEW_KEY, OLD_KEY],
                  vault_master_key="m" * 40, vault_lookup_key="l" * 40,
                  survey_token_secret="s" * 40, nats_user="intake", nats_password="n" * 40)
    assert ok.auth_keys[0].get_secret_value() == NEW_KEY
    assert DEV_AUTH_KEY in [k.get_secret_value() for k in Settings().auth_keys]


def test_tokens_carry_role_and_scope_rules() -> None:
    keys = TokenKeys([NEW_KEY])
    with pytest.raises(ValueError):
        keys.issue("clerk-001", Role.CLERK, None)  # a clerk belongs to a center
    with pytest.raises(ValueError):
        keys.issue("resident", Role.RESIDENT, TEST_CENTER)  # a resident answers for one case
    case = uuid.uuid4()
    principal = keys.verify(keys.issue("survey-link", Role.RESIDENT, TEST_CENTER, case))
    assert (principal.role, principal.case_id) == (Role.RESIDENT, case)
    assert keys.verify(token_for_keys(keys)).center_id is None


def token_for_keys(keys: TokenKeys) -> str:
    return keys.issue("analyst-1", Role.ANALYST)


_ = token_for  # the helper the other tests use


def test_a_remembered_token_is_checked_for_expiry_and_only_by_its_own_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    keys = TokenKeys([NEW_KEY])
    token = keys.issue("clerk-001", Role.CLERK, TEST_CENTER, ttl=timedelta(minutes=5))
    first = keys.verify(token)
    assert keys.verify(token) is first  # remembered: not decoded again
    expires = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    monkeypatch.setattr(keys, "_now", lambda: expires + 29.0)  # within PyJWT's 30 s leeway
    assert keys.verify(token) is first
    monkeypatch.setattr(keys, "_now", lambda: expires + 30.0)
    with pytest.raises(AuthError) as refused:
        keys.verify(token)
    assert refused.value.code == "token_expired"
    assert token not in keys._verified  # forgotten: next time it is decoded in full again
    # Rotation builds new keys: what the old set remembered counts for nothing there.
    with pytest.raises(AuthError) as refused:
        TokenKeys([OLD_KEY]).verify(keys.issue("clerk-001", Role.CLERK, TEST_CENTER))
    assert refused.value.code == "token_invalid"
    # Bounded: the least recently used token is forgotten first.
    small = TokenKeys([NEW_KEY], remember=2)
    tokens = [small.issue(f"clerk-{i}", Role.CLERK, TEST_CENTER) for i in range(3)]
    for t in tokens:
        small.verify(t)
    assert list(small._verified) == tokens[1:]
