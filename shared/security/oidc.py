"""Tokens from the center's identity provider (OpenID Connect): RS256 / ES256 signatures checked
against the keys the issuer publishes (its JWKS), claims mapped onto a sixstep principal.

* **Keys** (:class:`IssuerKeys`) are fetched through a port (``fetch``: the HTTP side lives in
  ``shared.http.oidc``) and kept. Every ``OIDC_JWKS_REFRESH_S`` they are fetched again in the
  background while the kept ones go on verifying. A token naming a key (``kid``) the set does
  not hold fetches it at once (the issuer rotated its keys), at most every
  ``OIDC_JWKS_MIN_REFETCH_S``, so tokens with made-up kids cannot make us hammer the issuer.
  When the JWKS cannot be reached, the kept keys verify for ``OIDC_JWKS_MAX_AGE_S`` after their
  last good fetch; after that every issuer token is a 503 ``auth_unavailable`` (never let in
  unverified). Concurrent fetches are one fetch.
* **Claims** (:class:`ClaimMap`): the actor is ``OIDC_SUBJECT_CLAIM`` (``sub``, or another
  claim that holds an opaque staff id); one that holds a phone number, an ID number or an
  e-mail address, as some providers make ``sub`` of them, is a 403 ``claim_personal`` naming
  the setting (it would be the actor of every event, and no erasure could remove it: a keyed
  pseudonym would not be erasable either, and a vault of them would put intake on every
  service's sign-in path); the role comes from
  ``OIDC_ROLE_CLAIM`` (a name or a dotted path, a string or a list) through ``OIDC_ROLES``; the
  center from ``OIDC_CENTER_CLAIM``. A token without them is a 403 naming the claim
  (``claim_missing``); a value sixstep cannot use is a 403 too (``claim_invalid``,
  ``forbidden_role``).
* **Checks** (:class:`OidcVerifier`): the algorithm is one of ``OIDC_ALGORITHMS`` and the key's
  own; ``iss`` is the configured issuer (another issuer's token is refused before any key is
  fetched); ``aud`` holds ``OIDC_AUDIENCE``; ``exp`` with the leeway local tokens have. A
  verified token is remembered (bounded LRU) as local tokens are, and checked again only for
  ``exp`` and for its keys still being usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import structlog

from shared.kernel.meta import by_a_worker
from shared.kernel.privacy.patterns import personal_data_in
from shared.kernel.tasks import cancel_and_wait
from shared.security.principals import CENTER_SCOPED, Principal, Role
from shared.security.tokens import (
    CENTER,
    LEEWAY_S,
    SUBJECT,
    VERIFIED_TOKENS,
    AuthError,
    personal_subject,
)

log = structlog.get_logger("sixstep.auth.oidc")

#: The port the keys come through: the issuer's JWKS document (``{"keys": [...]}``), or
#: :class:`KeysUnavailable`.
KeysFetch = Callable[[], Awaitable[Mapping[str, Any]]]

#: The roles an identity provider may grant, in the order an unmapped list claim is read
#: (the first one found wins). A resident's token is a survey link's, never the issuer's.
ISSUER_ROLES = (Role.SUPERVISOR, Role.CLERK, Role.CITY, Role.ANALYST, Role.OPS)
#: Which key type and curve each accepted algorithm needs.
KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched (the reason, for the log)."""


def unavailable(reason: str) -> AuthError:
    return AuthError("auth_unavailable", "the identity provider's keys cannot be fetched now; "
                     "try again shortly", status=503, reason=reason)


@dataclass(frozen=True)
class _KeySet:
    by_kid: dict[str, jwt.PyJWK]
    all: tuple[tuple[dict[str, Any], jwt.PyJWK], ...]
    fetched_at: float


def parse_jwks(document: Mapping[str, Any], algorithms: Sequence[str], fetched_at: float
               ) -> _KeySet:
    """The signing keys of a JWKS document that can check one of ``algorithms``."""
    raw = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(raw, list):
        raise KeysUnavailable("the JWKS document has no 'keys' list")
    by_kid: dict[str, jwt.PyJWK] = {}
    usable: list[tuple[dict[str, Any], jwt.PyJWK]] = []
    for jwk in raw:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kty, crv = jwk.get("kty"), jwk.get("crv")
        fits = [alg for alg in algorithms if KEY_TYPES[alg] == (kty, crv if kty == "EC" else None)
                and jwk.get("alg", alg) == alg]
        if not fits:
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=fits[0])
        except jwt.PyJWTError:
            log.warning("oidc.jwks_key_unusable", kid=jwk.get("kid"), kty=kty)
            continue
        usable.append((jwk, key))
        if isinstance(jwk.get("kid"), str):
            by_kid[jwk["kid"]] = key
    if not usable:
        raise KeysUnavailable(f"the JWKS holds no {'/'.join(algorithms)} signing key")
    return _KeySet(by_kid, tuple(usable), fetched_at)


class IssuerKeys:
    """The issuer's signing keys, kept, refreshed and rotated (see the module's docstring)."""

    def __init__(self, fetch: KeysFetch, *, algorithms: Sequence[str] = ("RS256", "ES256"),
                 refresh_s: float = 300.0, max_age_s: float = 3600.0,
                 min_refetch_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._algorithms = tuple(algorithms)
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._set: _KeySet | None = None
        self._last_attempt = -math.inf
        self._inflight: asyncio.Future[None] | None = None
        self.fetches = 0  # successful fetches (tests and logs)

    def usable(self) -> bool:
        """Keys fetched within ``max_age_s``: what they verify may be trusted."""
        return self._set is not None and self._clock() - self._set.fetched_at < self._max_age_s

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that checks a token of ``alg`` naming ``kid``; ``AuthError`` 401 when the
        issuer publishes no such key, 503 when its keys cannot be had."""
        now = self._clock()
        if not self.usable():
            if now - self._last_attempt < self._min_refetch_s and self._inflight is None:
                raise unavailable("the last fetch of the JWKS failed moments ago")
            try:
                await self._refresh()
            except KeysUnavailable as exc:
                raise unavailable(str(exc)) from None
            if not self.usable():
                raise unavailable("the JWKS fetched is already too old")
        elif now - self._set.fetched_at >= self._refresh_s:  # type: ignore[union-attr]
            self._refresh_in_background()
        found = self._find(kid, alg)
        if found is None and kid is not None and (
                self._inflight is not None or now - self._last_attempt >= self._min_refetch_s):
            with contextlib.suppress(KeysUnavailable):  # keys kept still verify what they can
                await self._refresh()
            found = self._find(kid, alg)
        if found is None:
            raise AuthError("token_invalid", "the bearer token is signed by a key the identity "
                            "provider does not publish")
        return found

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        keys = self._set
        if keys is None:
            return None
        if kid is not None:
            key = keys.by_kid.get(kid)
        else:  # no kid: only a set with a single key of this algorithm is unambiguous
            fitting = [k for _, k in keys.all if k.algorithm_name == alg]
            key = fitting[0] if len(fitting) == 1 else None
        return key if key is not None and key.algorithm_name == alg else None

    async def _refresh(self) -> None:
        """Fetch the JWKS once, however many callers ask at the same moment."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch_once())
        inflight = self._inflight
        await asyncio.shield(inflight)

    async def close(self) -> None:
        """At the app's shutdown: a fetch still under way (a refresh started in the background
        by a request, or one whose callers gave up: it is shielded) is cancelled and waited
        for. Left alone it had no owner once the app had stopped, its HTTP client open, until
        the loop closed under it ("Task was destroyed but it is pending!")."""
        if self._inflight is not None:
            await cancel_and_wait(self._inflight)

    def _refresh_in_background(self) -> None:
        if self._inflight is not None:
            return
        if self._clock() - self._last_attempt < self._min_refetch_s:
            return  # the last attempt failed moments ago: the kept keys go on
        self._inflight = asyncio.ensure_future(self._fetch_once())
        self._inflight.add_done_callback(
            lambda f: f.cancelled() or f.exception())  # logged in _fetch_once

    async def _fetch_once(self) -> None:
        self._last_attempt = self._clock()
        try:
            document = await self._fetch()
            self._set = parse_jwks(document, self._algorithms, self._clock())
            self.fetches += 1
            log.info("oidc.jwks_fetched", keys=len(self._set.all))
        except KeysUnavailable as exc:
            log.warning("oidc.jwks_unavailable", reason=str(exc),
                        keys_usable=self.usable())
            raise
        finally:
            self._inflight = None


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name, else by dotted path (``realm_access.roles``); None when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class ClaimMap:
    """Which claims say the role and the center, and which of the issuer's roles are whose."""

    role_claim: str = "roles"
    center_claim: str = "center"
    roles: Mapping[str, Role] = field(default_factory=dict)
    subject_claim: str = "sub"

    def role_of(self, claims: Mapping[str, Any]) -> Role:
        raw = claim(claims, self.role_claim)
        if raw is None or raw == "" or raw == []:
            raise AuthError("claim_missing", f"the token has no {self.role_claim!r} claim "
                            "(the role; OIDC_ROLE_CLAIM)", status=403,
                            claim=self.role_claim, setting="OIDC_ROLE_CLAIM")
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise AuthError("claim_invalid", f"the token's {self.role_claim!r} claim is not a "
                            "string or a list of strings", status=403, claim=self.role_claim)
        mapping = self.roles or {r.value: r for r in ISSUER_ROLES}
        for value, role in mapping.items():
            if value in values:
                return role
        raise AuthError("forbidden_role", f"the token's {self.role_claim!r} claim holds no role "
                        "sixstep knows (OIDC_ROLES)", status=403, claim=self.role_claim,
                        known=sorted(mapping))

    def center_of(self, claims: Mapping[str, Any], role: Role) -> str | None:
        raw = claim(claims, self.center_claim)
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if raw is None or raw == "" or raw == []:
            if role in CENTER_SCOPED:
                raise AuthError("claim_missing", f"the token has no {self.center_claim!r} claim "
                                f"(a {role.value}'s center; OIDC_CENTER_CLAIM)", status=403,
                                claim=self.center_claim, setting="OIDC_CENTER_CLAIM")
            return None  # an analyst or ops without a center: every center
        if not isinstance(raw, str) or not CENTER.fullmatch(raw):
            raise AuthError("claim_invalid", f"the token's {self.center_claim!r} claim is not "
                            "one center's code", status=403, claim=self.center_claim)
        return raw

    def subject_of(self, claims: Mapping[str, Any]) -> str:
        """The actor: ``subject_claim``'s value, an opaque id (never a person's phone number,
        ID number or e-mail address; the value is never repeated in the answer)."""
        name = self.subject_claim
        sub = claim(claims, name)
        if isinstance(sub, list) and len(sub) == 1:
            sub = sub[0]  # a user attribute mapped as multivalued, as the center claim may be
        if sub is None or sub == "":
            raise AuthError("claim_missing", f"the token has no {name!r} claim (the staff "
                            "member's id; OIDC_SUBJECT_CLAIM)", status=403, claim=name,
                            setting="OIDC_SUBJECT_CLAIM")
        if isinstance(sub, int) and not isinstance(sub, bool):
            sub = str(sub)  # a staff number given as a JSON number
        if not isinstance(sub, str) or not SUBJECT.fullmatch(sub):
            raise AuthError("claim_invalid", f"the token's {name!r} claim is not one value of "
                            "1-64 characters of A-Z a-z 0-9 _.:@-", status=403, claim=name,
                            setting="OIDC_SUBJECT_CLAIM")
        if (held := personal_data_in(sub)) is not None:
            raise personal_subject(held, name, "OIDC_SUBJECT_CLAIM")
        if by_a_worker(sub):
            raise AuthError("claim_invalid", f"the token's {name!r} claim names one of "
                            "sixstep's own workers (system, system:...); it must be an opaque "
                            "staff id: change OIDC_SUBJECT_CLAIM or the provider's ids",
                            status=403, claim=name, setting="OIDC_SUBJECT_CLAIM")
        return sub

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        sub = self.subject_of(claims)
        role = self.role_of(claims)
        return Principal(sub=sub, role=role, center_id=self.center_of(claims, role),
                         token_id=str(claims.get("jti") or ""))


class OidcVerifier:
    """Verifies the issuer's tokens (see the module's docstring)."""

    def __init__(self, keys: IssuerKeys, *, issuer: str, audience: str,
                 algorithms: Sequence[str] = ("RS256", "ES256"),
                 claims: ClaimMap | None = None, remember: int = VERIFIED_TOKENS) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.claims = claims or ClaimMap()
        self._remember = remember
        self._now: Callable[[], float] = time.time
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    async def close(self) -> None:
        await self.keys.close()

    def handles(self, alg: str | None) -> bool:
        return alg in self.algorithms

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and self.keys.usable():
            principal, expires = known
            if expires > self._now() - LEEWAY_S:
                with contextlib.suppress(KeyError):
                    self._verified.move_to_end(token)
                return principal
            self._verified.pop(token, None)
            raise AuthError("token_expired", "the bearer token has expired")
        principal, expires = await self._decode(token)
        self._verified[token] = (principal, expires)
        while len(self._verified) > self._remember:
            with contextlib.suppress(KeyError):
                self._verified.popitem(last=False)
        return principal

    async def _decode(self, token: str) -> tuple[Principal, int]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("token_invalid", "the bearer token is not a valid token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError("token_invalid", "the bearer token is not a valid token")
        if unverified.get("iss") != self.issuer:
            raise AuthError("token_invalid", "the bearer token was not issued by the configured "
                            "identity provider (OIDC_ISSUER)")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=LEEWAY_S, options={"require": ["exp", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token_invalid", "the bearer token is not meant for sixstep "
                            "(aud; OIDC_AUDIENCE)") from None
        except jwt.PyJWTError:
            raise AuthError("token_invalid", "the bearer token is not valid") from None
        try:
            expires = int(claims["exp"])
        except (TypeError, ValueError):
            raise AuthError("token_invalid", "the bearer token's exp is not valid") from None
        return self.claims.principal(claims), expires
