"""The identity provider over HTTP: its discovery document and its keys (JWKS).

``shared.security.oidc`` keeps, refreshes and uses the keys; this module only fetches them:
``<OIDC_ISSUER>/.well-known/openid-configuration`` names the ``jwks_uri`` (and must name the
issuer exactly as configured, or nothing from it is used), then the JWKS itself. Whatever goes
wrong (no answer within ``OIDC_TIMEOUT_S``, a status other than 200, not JSON) is a
``KeysUnavailable`` with the reason, never a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from shared.security.oidc import ClaimMap, IssuerKeys, KeysFetch, KeysUnavailable, OidcVerifier
from shared.security.principals import Role

if TYPE_CHECKING:
    from shared.settings import Settings

DISCOVERY = "/.well-known/openid-configuration"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY


async def _get_json(client: httpx.AsyncClient, url: str) -> Mapping[str, Any]:
    try:
        answer = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise KeysUnavailable(f"{url}: {type(exc).__name__}") from None
    if answer.status_code != 200:
        raise KeysUnavailable(f"{url} answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise KeysUnavailable(f"{url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise KeysUnavailable(f"{url} did not answer a JSON object")
    return body


def jwks_fetch(issuer: str, timeout_s: float = 3.0) -> KeysFetch:
    """A fetch of the issuer's JWKS, found through its discovery document (looked up again
    whenever a fetch of the JWKS fails, in case the issuer moved it)."""
    jwks_uri: str | None = None

    async def fetch() -> Mapping[str, Any]:
        nonlocal jwks_uri
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            if jwks_uri is None:
                metadata = await _get_json(client, discovery_url(issuer))
                if metadata.get("issuer") != issuer:
                    raise KeysUnavailable(
                        f"the discovery document names the issuer {metadata.get('issuer')!r}, "
                        f"not {issuer!r} (OIDC_ISSUER must be the issuer exactly)")
                uri = metadata.get("jwks_uri")
                if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                    raise KeysUnavailable("the discovery document has no jwks_uri")
                jwks_uri = uri
            try:
                return await _get_json(client, jwks_uri)
            except KeysUnavailable:
                jwks_uri = None
                raise

    return fetch


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier of the issuer's tokens the settings describe, or None without an issuer."""
    if settings.oidc_issuer is None:
        return None
    keys = IssuerKeys(
        jwks_fetch(settings.oidc_issuer, settings.oidc_timeout_s),
        algorithms=settings.oidc_algorithms, refresh_s=settings.oidc_jwks_refresh_s,
        max_age_s=settings.oidc_jwks_max_age_s, min_refetch_s=settings.oidc_jwks_min_refetch_s)
    claims = ClaimMap(settings.oidc_role_claim, settings.oidc_center_claim,
                      {value: Role(role) for value, role in settings.oidc_roles.items()},
                      subject_claim=settings.oidc_subject_claim)
    return OidcVerifier(keys, issuer=settings.oidc_issuer,
                        audience=settings.oidc_audience or settings.oidc_client_id or "",
                        algorithms=settings.oidc_algorithms, claims=claims)
