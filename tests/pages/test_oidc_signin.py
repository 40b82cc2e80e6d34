"""A clerk signs in at the center's identity provider (a real OpenID provider server started
here: oidc-provider-mock, set up as a Keycloak realm would be) in a real browser, works a case,
keeps working offline while the access token runs out, gets a fresh one without losing a queued
step, and signs out, which leaves nothing of them in the browser."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import httpx
import jwt
import oidc_provider_mock
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from shared.settings import Settings
from tests.pages.center import Center, running_center
from tests.pages.test_counter import pick_item, saved
from tests.support import drop_test_objects

CENTER = "SH-PD-HUAMU"
CLIENT_ID = "sixstep-pages"
#: The first access token's lifetime (seconds); the browser renews it before it runs out.
LIFETIME = 120
#: A Keycloak realm's way of saying who is who: realm roles, and a user attribute for the center.
USERS = {
    "clerk-017": {"realm_access": {"roles": ["offline_access", "center-clerk"]},
                  "center_code": CENTER, "preferred_username": "clerk-017"},
    "clerk-new": {"realm_access": {"roles": ["center-clerk"]}},  # no center yet
    # A realm whose usernames are mobile numbers, and whose sub is the username.
    "13812345678": {"realm_access": {"roles": ["center-clerk"]}, "center_code": CENTER},
    "director-01": {"realm_access": {"roles": ["center-clerk", "center-supervisor"]},
                    "center_code": CENTER},
}


def _jwt_access_token(client: Any, grant_type: str, user: Any, scope: str) -> str:
    """Access tokens as JWTs (RFC 9068), signed with the provider's own key, carrying the
    user's claims, as Keycloak issues them (the mock's own access tokens are opaque)."""
    from authlib.oauth2.rfc6750 import BearerTokenGenerator

    key = flask.g.oidc_provider_mock_storage.jwk
    now = int(time.time())
    lifetime = LIFETIME if grant_type == "authorization_code" else (
        BearerTokenGenerator.DEFAULT_EXPIRES_IN)  # what the mock answers as expires_in
    claims = {"iss": flask.request.host_url.rstrip("/"), "aud": client.id, "azp": client.id,
              "sub": user.sub, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex,
              "scope": scope, **user.claims}
    return jwt.encode(claims, key.get_private_key(), algorithm="RS256",
                      headers={"kid": key.as_dict()["kid"], "typ": "at+jwt"})


class _WebOrigins:
    """What Keycloak's "Web origins" does: the pages' scripts may read the provider's answers
    (discovery, the token endpoint) from another origin."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        cors = [("Access-Control-Allow-Origin", "*")]
        if environ["REQUEST_METHOD"] == "OPTIONS":
            start_response("204 No Content", [*cors, ("Access-Control-Allow-Headers", "*"),
                                              ("Access-Control-Allow-Methods", "GET, POST")])
            return [b""]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *cors], exc_info)

        return self.app(environ, start)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The identity provider, on a port of its own; its issuer URL."""
    from oidc_provider_mock import User, _app
    from oidc_provider_mock._server import _threaded_server

    app = flask.Flask("center-idp", template_folder=str(
        Path(oidc_provider_mock.__file__).parent / "templates"))  # the mock's own pages
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _jwt_access_token
    oidc_provider_mock.init_app(
        app, require_nonce=True, access_token_max_age=timedelta(seconds=LIFETIME),
        user_claims=[User(sub=sub, claims=claims) for sub, claims in USERS.items()])
    app.secret_key = secrets.token_bytes(16)
    app.wsgi_app = _WebOrigins(app.wsgi_app)  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch, _threaded_server(app) as server:
        # A public client, as Keycloak's "Client authentication: off": the pages hold no secret.
        for grant in (_app.AuthorizationCodeGrant, _app.RefreshTokenGrant):
            patch.setattr(grant, "TOKEN_ENDPOINT_AUTH_METHODS",
                          [*grant.TOKEN_ENDPOINT_AUTH_METHODS, "none"])
        yield f"http://localhost:{server.server_port}"


@pytest_asyncio.fixture(scope="module")
async def center(database_url: str, nats_url: str, provider: str) -> AsyncIterator[Center]:
    """The three services in production, their staff signing in at ``provider``."""
    tag = secrets.token_hex(3)
    settings = Settings(
        database_url=database_url, nats_url=nats_url, stream_name=f"O{tag}",
        subject_prefix=f"o{tag}", schema_prefix=f"o{tag}_", partitions=4,
        consumer_backoff_s=(0.05, 0.1, 0.2, 0.3), consumer_max_deliver=3,
        read_wait_timeout_s=10.0, log_json=False, log_level="WARNING", environment="production",
        nats_secured_otherwise=True,  # the run's own nats-server (tests/deploy/test_nats_auth)
        auth_keys=["pages-test-auth-key-" + secrets.token_hex(16)],
        vault_master_key="pages-test-vault-master-key-" + secrets.token_hex(16),
        vault_lookup_key="pages-test-vault-lookup-key-" + secrets.token_hex(16),
        survey_token_secret="pages-test-survey-secret-" + secrets.token_hex(16),
        oidc_issuer=provider, oidc_client_id=CLIENT_ID, oidc_scope="openid profile",
        oidc_role_claim="realm_access.roles", oidc_center_claim="center_code",
        oidc_roles={"center-supervisor": "supervisor", "center-clerk": "clerk"})
    try:
        async with running_center(settings) as running:
            yield running
    finally:
        await drop_test_objects(settings)


def bearer_of(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


async def sign_in_at_provider(page: Page, back: str, provider: str, user: str,
                              counter: str | None) -> dict[str, list[str]]:
    """From a page's sign-in to the provider's page and ``back``; the authorization
    request's parameters."""
    await expect(page.locator("#signin")).to_be_visible()
    if counter is not None:
        await page.select_option("#signin-counter", counter)
    await page.click("#signin-oidc")
    await page.wait_for_url(f"{provider}/oauth2/authorize?*")
    asked = parse_qs(urlsplit(page.url).query)
    await page.click(f"button[name=sub][value='{user}']")
    await page.wait_for_url(f"{back}*")
    return asked


async def test_a_clerk_signs_in_at_the_center_s_provider_works_offline_through_a_renewal_and_signs_out(  # noqa: E501
        center: Center, provider: str, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await page.clock.install()
    token_requests: list[dict[str, list[str]]] = []
    api_tokens: list[tuple[str, str]] = []

    def watch(request: Request) -> None:
        if request.url.startswith(f"{provider}/oauth2/token"):
            token_requests.append(parse_qs(request.post_data or ""))
        elif request.url.startswith(center.intake) and "/cases" in request.url:
            api_tokens.append((urlsplit(request.url).path, bearer_of(request)))

    page.on("requestfinished", watch)  # answered: what reached a server
    await page.goto(f"{center.intake}/counter")
    # Production with a provider: no pasted tokens, one button.
    await expect(page.locator("#signin-oidc")).to_be_visible()
    await expect(page.locator("#signin-token")).to_have_count(0)

    asked = await sign_in_at_provider(page, f"{center.intake}/counter", provider, "clerk-017",
                                      "window-7")
    assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) == 43
    assert asked["client_id"] == [CLIENT_ID] and asked["response_type"] == ["code"]
    assert asked["state"][0] and asked["nonce"][0]
    assert asked["redirect_uri"] == [f"{center.intake}/counter"]

    await expect(page.locator("#desk")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("clerk-017")
    await expect(page.locator("#who")).to_contain_text(f"{CENTER} · 7号窗口")
    assert "code=" not in page.url and "state=" not in page.url
    # The code was exchanged with its PKCE verifier, the challenge's preimage.
    [exchange] = token_requests
    assert exchange["grant_type"] == ["authorization_code"]
    verifier = exchange["code_verifier"][0]
    assert 43 <= len(verifier) <= 128 and pkce_challenge(verifier) == asked["code_challenge"][0]
    first = await session_of(page)
    assert first["via"] == "oidc" and first["role"] == "clerk" and first["refresh_token"]

    # The clerk works a case: opened and heard, saved with the provider's token.
    await pick_item(page, "低保", "最低生活保障")
    await page.click("#open-case")
    await page.fill("#words", "低保怎么申请？")
    await page.click("form[data-op=hear] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard"])
    assert {token for path, token in api_tokens} == {first["token"]}

    # The network drops; a step is queued; the token runs out meanwhile.
    await desk.set_offline(True)
    await page.fill("#restatement", "您想申请最低生活保障。")
    await page.click("form[data-op=restate] button[type=submit]")
    net = page.locator("#net")
    await expect(net).to_have_attribute("data-pending", "1")
    await expect(net).to_have_attribute("data-state", "offline")
    await page.clock.fast_forward((LIFETIME + 30) * 1000)
    await expect(net).to_have_attribute("data-pending", "1")  # kept, not dropped
    assert len(token_requests) == 1, "offline: nothing reached the provider"
    assert (await session_of(page))["token"] == first["token"]

    # Back online: the token is renewed with the refresh token, then the step goes out.
    await desk.set_offline(False)
    await expect(net).to_have_attribute("data-pending", "0", timeout=20_000)
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated"])
    renewed = await session_of(page)
    assert renewed["token"] != first["token"] and renewed["clerk_id"] == "clerk-017"
    assert [r["grant_type"] for r in token_requests] == [["authorization_code"], ["refresh_token"]]
    assert token_requests[1]["refresh_token"] == [first["refresh_token"]]
    restated = [token for path, token in api_tokens if path.endswith("/restate")]
    assert restated == [renewed["token"]]

    # The service says the token has expired (the counter's clock was behind): renewed once
    # more and the step sent again, nothing lost.
    expired_once: list[str] = []

    async def expire_once(route: Route) -> None:
        if not expired_once:
            expired_once.append(bearer_of(route.request))
            await route.fulfill(status=401, json={"error": {
                "code": "token_expired", "message": "the bearer token has expired",
                "details": {}}})
        else:
            await route.continue_()

    await page.route("**/cases/*/concerns", expire_once)
    await page.click("form[data-op=concerns] .choice:has(input[value=anxious])")
    await page.click("form[data-op=concerns] button[type=submit]")
    await saved(page, ["CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted"])
    assert len(token_requests) == 3 and expired_once == [renewed["token"]]
    await page.unroute("**/cases/*/concerns")

    # What intake recorded, read with the clerk's own token (production takes no other).
    clerk = httpx.AsyncClient(base_url=center.intake, timeout=20.0,
                              headers={"Authorization": f"Bearer {renewed['token']}"})
    center.clients.append(clerk)
    case_id = await page.evaluate(
        "JSON.parse(localStorage.getItem('sixstep.counter.current.v1')).id")
    case = (await clerk.get(f"/cases/{case_id}")).json()
    assert [e["actor"] for e in case["timeline"]] == ["clerk-017"] * 4

    # A step that cannot go out (the intake service is out of reach), then sign-out: the
    # clerk is asked, the step and the case are deleted here, the provider's session ended.
    await page.route("**/cases/*/guidance", lambda route: route.abort("internetdisconnected"))
    await page.click("form[data-op=guidance] .choice:has(input[value=eligible])")
    await page.click("form[data-op=guidance] button[type=submit]")
    await expect(net).to_have_attribute("data-pending", "1")
    dialogs: list[str] = []

    async def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.once("dialog", lambda dialog: asyncio.ensure_future(accept(dialog)))
    await page.click("#sign-out")
    await page.wait_for_url(f"{provider}/oauth2/end_session?*")
    ended = parse_qs(urlsplit(page.url).query)
    assert ended["id_token_hint"] and ended["post_logout_redirect_uri"] == [
        f"{center.intake}/counter"]
    assert dialogs and "1" in dialogs[0]
    await page.click("form button[type=submit]")
    await page.wait_for_url(f"{center.intake}/counter*")
    await expect(page.locator("#signin-oidc")).to_be_visible()
    kept = await page.evaluate(
        "JSON.stringify([Object.assign({}, localStorage), Object.assign({}, sessionStorage)])")
    assert "sixstep.counter" not in kept and "sixstep.session" not in kept
    assert first["refresh_token"] not in kept and "您想" not in kept
    guidance = (await clerk.get(f"/cases/{case_id}")).json()["timeline"]
    assert "GuidanceGiven" not in [e["type"] for e in guidance]


@pytest.mark.parametrize(("user", "told"), [
    ("clerk-new", ("claim_missing", "center_code")),
    # The actor of all they would record would be their mobile number: the setting to change.
    ("13812345678", ("claim_personal", "OIDC_SUBJECT_CLAIM")),
], ids=["no center", "phone number as sub"])
async def test_a_clerk_the_provider_names_unusably_is_told_which_claim_or_setting_it_is(
        center: Center, provider: str, desk: BrowserContext, user: str,
        told: tuple[str, str]) -> None:
    page = await desk.new_page()
    await page.goto(f"{center.intake}/counter")
    await sign_in_at_provider(page, f"{center.intake}/counter", provider, user, "window-2")
    error = page.locator("#signin-error")
    await expect(error).to_be_visible()
    for text in told:
        await expect(error).to_contain_text(text)
    await expect(page.locator("#desk")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('sixstep.session')") is None


async def test_a_supervisor_signs_in_to_the_board_and_sees_follow_up_s_worklist_through_it(
        center: Center, provider: str, desk: BrowserContext) -> None:
    page = await desk.new_page()
    await page.goto(f"{center.feedback}/board?every=2")
    # Feedback hands the provider's token on to follow-up, which checks it with the same keys.
    async with page.expect_response(lambda r: "/board/worklist" in r.url) as worklist:
        await sign_in_at_provider(page, f"{center.feedback}/board", provider, "director-01",
                                  None)
    assert (await worklist.value).status == 200
    await expect(page.locator("#board")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("director-01")
    assert parse_qs(urlsplit(page.url).query) == {"every": ["2"]}, "the board's own query is kept"


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def session_of(page: Page) -> dict[str, Any]:
    return await page.evaluate("JSON.parse(sessionStorage.getItem('sixstep.session'))")

