"""Staff tokens from the center's identity provider: verified against the keys its real (local)
HTTP server publishes, kept, refreshed when it rotates them, trusted for a while when it cannot
be reached and then not at all; claims mapped onto a role and a center, or a 403 naming the
claim that is missing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import jwt
import pytest

from services.intake.main import create_app
from shared.http.oidc import jwks_fetch
from shared.security.oidc import ClaimMap, IssuerKeys, OidcVerifier
from shared.security.principals import Role
from shared.security.tokens import AuthError, TokenKeys
from shared.settings import Settings
from tests.security.issuer import CLIENT_ID, Issuer, SigningKey, running_issuer
from tests.support import TEST_CENTER, bearer, running
from tools.devservers import free_port


class Clock:
    """The verifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer(free_port(), SigningKey.rsa(), SigningKey.ec()) as running:
        yield running


def verifier(issuer: Issuer, clock: Clock, claims: ClaimMap | None = None, *,
             url: str | None = None) -> OidcVerifier:
    keys = IssuerKeys(jwks_fetch(url or issuer.url, timeout_s=2.0), refresh_s=300,
                      max_age_s=3600, min_refetch_s=30, clock=clock)
    return OidcVerifier(keys, issuer=url or issuer.url, audience=CLIENT_ID, claims=claims)


async def refused(check: OidcVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as failure:
        await check.verify(token)
    return failure.value


async def test_a_clerk_signed_in_at_the_center_s_provider_is_a_clerk_of_that_center(
        issuer: Issuer) -> None:
    check = verifier(issuer, Clock())
    rsa_key, ec_key = issuer.keys
    for key in (rsa_key, ec_key):
        principal = await check.verify(issuer.token(key, sub="clerk-017"))
        assert (principal.sub, principal.role, principal.center_id) == (
            "clerk-017", Role.CLERK, "SH-PD-HUAMU")
    # Many tokens, many requests: the keys were fetched once.
    await asyncio.gather(*(check.verify(issuer.token(rsa_key, sub=f"clerk-{n}"))
                           for n in range(20)))
    assert issuer.jwks_fetches == 1


async def test_concurrent_first_requests_share_one_fetch(issuer: Issuer) -> None:
    check = verifier(issuer, Clock())
    await asyncio.gather(*(check.verify(issuer.token(sub=f"clerk-{n}")) for n in range(10)))
    assert issuer.jwks_fetches == 1


async def test_the_provider_rotates_its_keys_and_tokens_of_the_new_key_are_taken_at_once(
        issuer: Issuer) -> None:
    clock = Clock()
    check = verifier(issuer, clock)
    old = issuer.keys[0]
    old_token = issuer.token(old, sub="clerk-old")
    assert (await check.verify(old_token)).sub == "clerk-old"
    # The provider publishes a new key and signs with it: an unknown kid fetches the JWKS.
    new = SigningKey.rsa()
    issuer.keys = [new, old]
    clock.now += 31
    assert (await check.verify(issuer.token(new, sub="clerk-new"))).sub == "clerk-new"
    assert issuer.jwks_fetches == 2
    # The old key is dropped: a token signed by it and not seen before is refused once the
    # keys are fetched again; the refresh happens in the background after refresh_s.
    issuer.keys = [new]
    clock.now += 301
    assert (await check.verify(issuer.token(new, sub="clerk-a"))).sub == "clerk-a"
    await wait_for_fetches(issuer, 3)
    failure = await refused(check, issuer.token(old, sub="clerk-late"))
    assert (failure.status, failure.code) == (401, "token_invalid")


async def wait_for_fetches(issuer: Issuer, count: int) -> None:
    for _ in range(200):
        if issuer.jwks_fetches >= count:
            await asyncio.sleep(0.05)  # the fetched set is installed after the answer
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the JWKS was fetched {issuer.jwks_fetches} times, not {count}")


async def test_made_up_key_ids_fetch_the_jwks_at_most_every_min_refetch_seconds(
        issuer: Issuer) -> None:
    clock = Clock()
    check = verifier(issuer, clock)
    await check.verify(issuer.token())
    stranger = SigningKey.rsa()
    await refused(check, issuer.token(stranger, kid="made-up-now"))
    assert issuer.jwks_fetches == 1  # fetched moments ago: not again
    clock.now += 30
    for n in range(25):
        failure = await refused(check, issuer.token(stranger, kid=f"made-up-{n}"))
        assert (failure.status, failure.code) == (401, "token_invalid")
    assert issuer.jwks_fetches == 2  # the first made-up kid fetched again; the rest waited
    clock.now += 30
    await refused(check, issuer.token(stranger, kid="made-up-later"))
    assert issuer.jwks_fetches == 3


async def test_an_unreachable_jwks_keeps_the_kept_keys_for_their_lifetime_then_refuses(
        issuer: Issuer) -> None:
    clock = Clock()
    check = verifier(issuer, clock)
    seen = issuer.token(sub="clerk-seen")
    assert (await check.verify(seen)).sub == "clerk-seen"
    issuer.stop()
    # Past refresh_s the background refresh fails; the kept keys go on verifying.
    clock.now += 600
    assert (await check.verify(issuer.token(sub="clerk-b"))).sub == "clerk-b"
    clock.now += 2000
    assert (await check.verify(issuer.token(sub="clerk-c"))).sub == "clerk-c"
    # Past max_age_s since the last good fetch: nothing verifies, not even a token verified
    # before; a 503 auth_unavailable, never an open door.
    clock.now += 1001
    for token in (seen, issuer.token(sub="clerk-d")):
        failure = await refused(check, token)
        assert (failure.status, failure.code) == (503, "auth_unavailable")
    # The provider answers again: after min_refetch_s the keys are fetched and all is well.
    issuer.start()
    clock.now += 30
    assert (await check.verify(seen)).sub == "clerk-seen"


async def test_a_provider_never_reached_is_a_503_and_a_wrong_discovery_issuer_too(
        issuer: Issuer) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    check = verifier(issuer, Clock(), url=nobody)
    failure = await refused(check, issuer.token(issuer=nobody))
    assert (failure.status, failure.code) == (503, "auth_unavailable")
    assert "ConnectError" in failure.details["reason"]
    issuer.discovery_issuer = "https://somewhere.else"
    failure = await refused(verifier(issuer, Clock()), issuer.token())
    assert (failure.status, failure.code) == (503, "auth_unavailable")
    assert "discovery document names the issuer" in failure.details["reason"]
    assert issuer.jwks_fetches == 0


async def test_another_issuer_another_audience_or_another_algorithm_is_a_401(
        issuer: Issuer) -> None:
    check = verifier(issuer, Clock())
    failure = await refused(check, issuer.token(issuer="https://sso.elsewhere.example"))
    assert (failure.status, failure.code) == (401, "token_invalid")
    assert "OIDC_ISSUER" in failure.message
    assert issuer.jwks_fetches == 0, "a foreign issuer's token fetches nothing"
    failure = await refused(check, issuer.token(audience="another-app"))
    assert (failure.status, failure.code) == (401, "token_invalid") and "aud" in failure.message
    expired = issuer.token(ttl_s=-120)
    assert (await refused(check, expired)).code == "token_expired"
    # An EC key cannot check an RS256 token that names it.
    rsa_key, ec_key = issuer.keys
    forged = issuer.token(rsa_key, kid=ec_key.kid)
    assert (await refused(check, forged)).code == "token_invalid"
    # A token whose claims were edited fails its signature.
    head, _, sig = issuer.token(sub="clerk-017").split(".")
    body = jwt.encode({"iss": issuer.url, "aud": CLIENT_ID, "sub": "clerk-017",
                       "exp": 2**31, "roles": ["supervisor"], "center": "SH-PD-HUAMU"},
                      "x" * 40).split(".")[1]
    assert (await refused(check, f"{head}.{body}.{sig}")).code == "token_invalid"


async def test_a_token_without_the_role_or_the_center_claim_is_a_403_naming_it(
        issuer: Issuer) -> None:
    keycloak = ClaimMap("realm_access.roles", "center_code",
                        {"center-supervisor": Role.SUPERVISOR, "center-clerk": Role.CLERK})
    check = verifier(issuer, Clock(), keycloak)
    # Keycloak puts realm roles under realm_access.roles; a user attribute carries the center.
    principal = await check.verify(issuer.token(
        roles=None, center=None, realm_access={"roles": ["offline_access", "center-clerk",
                                                         "center-supervisor"]},
        center_code=["SH-PD-HUAMU"]))
    assert (principal.role, principal.center_id) == (Role.SUPERVISOR, "SH-PD-HUAMU")

    failure = await refused(check, issuer.token(roles=None, center=None,
                                                center_code="SH-PD-HUAMU"))
    assert (failure.status, failure.code) == (403, "claim_missing")
    assert failure.details == {"claim": "realm_access.roles", "setting": "OIDC_ROLE_CLAIM"}
    failure = await refused(check, issuer.token(
        roles=None, center=None, realm_access={"roles": ["center-clerk"]}))
    assert (failure.status, failure.code) == (403, "claim_missing")
    assert failure.details == {"claim": "center_code", "setting": "OIDC_CENTER_CLAIM"}
    failure = await refused(check, issuer.token(
        roles=None, center=None, realm_access={"roles": ["offline_access"]},
        center_code="SH-PD-HUAMU"))
    assert (failure.status, failure.code) == (403, "forbidden_role")
    failure = await refused(check, issuer.token(
        roles=None, center=None, realm_access={"roles": ["center-clerk"]},
        center_code=["SH-PD-HUAMU", "SH-PD-ZHANGJIANG"]))
    assert (failure.status, failure.code) == (403, "claim_invalid")

    # Unmapped, the claim holds sixstep's own names; an analyst needs no center.
    plain = verifier(issuer, Clock())
    analyst = await plain.verify(issuer.token(roles="analyst", center=None))
    assert (analyst.role, analyst.center_id) == (Role.ANALYST, None)
    assert (await refused(plain, issuer.token(roles=["resident"]))).code == "forbidden_role"


def oidc_settings(settings: Settings, issuer: Issuer) -> Settings:
    return Settings(**{**settings.model_dump(), "oidc_issuer": issuer.url,
                       "oidc_client_id": CLIENT_ID})


async def test_the_services_answer_the_provider_s_staff_with_the_same_rules_as_their_own(
        settings: Settings, issuer: Issuer) -> None:
    with_issuer = oidc_settings(settings, issuer)
    app = create_app(with_issuer)
    async with running(app, anonymous=True) as client:
        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        me = await client.get("/auth/me", headers=auth(issuer.token(sub="clerk-017")))
        assert me.status_code == 200, me.text
        assert me.json() == {"sub": "clerk-017", "role": "clerk", "center_id": "SH-PD-HUAMU"}
        listed = await client.get("/cases", headers=auth(issuer.token(center=TEST_CENTER)))
        assert listed.status_code == 200, listed.text
        other = await client.get("/cases", params={"center_id": TEST_CENTER},
                                 headers=auth(issuer.token(center="SH-PD-ZHANGJIANG")))
        assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden_center")

        r = await client.get("/cases", headers=auth(issuer.token(center=None)))
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "claim_missing"
        assert r.json()["error"]["details"]["claim"] == "center"
        r = await client.get("/cases", headers=auth(issuer.token(issuer="https://evil.example")))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "token_invalid")
        assert 'error="invalid_token"' in r.headers["www-authenticate"]

        # Production with a provider: a clerk's own-key token is refused, ops' still works.
        assert with_issuer.environment == "production"
        r = await client.get("/cases", headers=bearer(settings, role=Role.CLERK))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "token_invalid")
        assert "identity provider" in r.json()["error"]["message"]
        r = await client.get("/auth/me", headers=bearer(with_issuer, role=Role.OPS, center=None))
        assert r.status_code == 200 and r.json()["role"] == "ops"

        issuer.stop()
        app.state.verifier.oidc.keys._set = None  # as if the kept keys had aged out
        r = await client.get("/cases", headers=auth(issuer.token(sub="clerk-x")))
        assert (r.status_code, r.json()["error"]["code"]) == (503, "auth_unavailable")
        assert r.headers["retry-after"] == "5"


def test_own_key_staff_tokens_work_in_development_and_not_in_production_with_a_provider(
        settings: Settings, issuer: Issuer) -> None:
    production = oidc_settings(settings, issuer)
    keys = TokenKeys.from_settings(production)
    with pytest.raises(ValueError, match="identity provider"):
        keys.issue("clerk-017", Role.CLERK, TEST_CENTER)
    assert keys.verify(keys.issue("ops-1", Role.OPS)).role is Role.OPS
    development = production.model_copy(update={"environment": "development"})
    dev_keys = TokenKeys.from_settings(development)
    assert dev_keys.verify(dev_keys.issue("clerk-017", Role.CLERK, TEST_CENTER)).role is Role.CLERK
    without = TokenKeys.from_settings(settings)
    assert without.verify(without.issue("clerk-017", Role.CLERK, TEST_CENTER)).role is Role.CLERK


@pytest.mark.parametrize(("changes", "problem"), [
    ({"oidc_issuer": "http://sso.example.gov.cn/realms/pd"}, "https"),
    ({"oidc_issuer": "https://sso.example.gov.cn/realms/pd", "oidc_client_id": None},
     "OIDC_CLIENT_ID"),
    ({"oidc_algorithms": ["HS256"]}, "OIDC_ALGORITHMS"),
    ({"oidc_roles": {"citizen": "resident"}}, "OIDC_ROLES"),
])
def test_a_provider_configured_wrongly_stops_the_settings(changes: dict[str, object],
                                                           problem: str) -> None:
    base = {"oidc_issuer": "https://sso.example.gov.cn/realms/pd", "oidc_client_id": "pages"}
    with pytest.raises(ValueError, match=problem):
        Settings(**{**base, **changes})


def test_an_empty_issuer_means_no_provider() -> None:
    """``OIDC_ISSUER=`` (a deployment's empty default): sixstep's own tokens only."""
    assert Settings(oidc_issuer="", oidc_client_id="").oidc_issuer is None


async def test_a_key_refresh_under_way_at_shutdown_ends_with_the_app(
        settings: Settings, issuer: Issuer) -> None:
    """A request past ``refresh_s`` starts a refresh of the keys in the background and is
    answered with the kept ones. The app stopping while that fetch is under way (an issuer
    slow to answer) waits for it, cancelled (``IssuerKeys.close``): before, it had no owner
    once the app had stopped (``running``'s guard names it), its HTTP client still open."""
    app = create_app(oidc_settings(settings, issuer))
    fetching = asyncio.Event()

    async def slow_issuer() -> dict[str, object]:
        fetching.set()
        await asyncio.Event().wait()
        return {}

    async with running(app, anonymous=True) as client:
        token = {"Authorization": f"Bearer {issuer.token(sub='clerk-017')}"}
        assert (await client.get("/auth/me", headers=token)).status_code == 200
        keys = app.state.verifier.oidc.keys
        keys._fetch, keys._refresh_s = slow_issuer, 0.0  # the kept keys are due a refresh
        keys._last_attempt -= 3600  # and the last fetch is not a moment ago
        app.state.verifier.oidc._verified.clear()  # verified again, not remembered
        assert (await client.get("/auth/me", headers=token)).status_code == 200
        await fetching.wait()
    assert keys._inflight is None
