"""Signed bearer tokens (JWT, HS256) with a subject, a role and a center scope: sixstep's own,
signed with ``AUTH_KEYS``. (Staff of a center with an identity provider bring its tokens
instead: ``shared.security.oidc``; in production these keys then sign no staff token.)

* **Keys** come from ``settings.auth_keys``: the first signs, every one verifies, so a key is
  rotated by putting the new one first and dropping the old one once its tokens have expired.
  A token names its key (``kid``: a fingerprint, never the key), so verifying costs one HMAC.
  The development key is refused unless ``ENVIRONMENT=development`` (``shared.settings``).
* **Verified tokens are remembered** (a bounded LRU per key set, keyed by the whole token): a
  counter app sends the same token all day, so its signature and claims are checked once, and
  each later request checks only ``exp``. Keys never change inside a ``TokenKeys``: rotating
  them is a new settings object, hence a new, empty cache.

Requests are authenticated with them in ``shared.http.auth``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt

from shared.contracts.fields import CODE_PATTERN
from shared.kernel.meta import by_a_worker
from shared.kernel.privacy.patterns import personal_data_in
from shared.security.principals import CENTER_SCOPED, STAFF, Principal, Role
from shared.settings import DEV_AUTH_KEY

if TYPE_CHECKING:
    from shared.settings import Settings

AUDIENCE = "sixstep"
ALGORITHM = "HS256"
LEEWAY_S = 30
#: How many verified tokens a process remembers (about 0.5 KB each).
VERIFIED_TOKENS = 4096
SUBJECT = re.compile(r"^[A-Za-z0-9_.:@\-]{1,64}$")
"""What a token's subject may look like. It is also never a person's phone number, ID number
or e-mail address (``personal_data_in``; refused with :func:`personal_subject`): it is the
actor of every event its holder records, on the bus, in the logs and the exports, and no
erasure could take it out of them."""
CENTER = re.compile(CODE_PATTERN)


class AuthError(Exception):
    """Why a caller is not let in: 401 (no valid token), 403 (a valid token that lacks what
    sixstep needs, e.g. a claim) or 503 (the issuer's keys cannot be had)."""

    def __init__(self, code: str, message: str, status: int = 401,
                 **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details


def _kid(key: str) -> str:
    return hashlib.sha256(b"sixstep-kid\x00" + key.encode()).hexdigest()[:12]


class TokenKeys:
    """Signs with the first key, verifies with any: rotation with two valid keys at once."""

    def __init__(self, keys: Sequence[str], issuer: str = "sixstep",
                 remember: int = VERIFIED_TOKENS,
                 roles: frozenset[Role] = frozenset(Role)) -> None:
        if not keys:
            raise ValueError("auth_keys needs at least one key")
        self.roles = roles
        self._keys = {_kid(k): k for k in keys}
        self._signing = (_kid(keys[0]), keys[0])
        self.issuer = issuer
        self._remember = remember
        self._now: Callable[[], float] = time.time
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys:
        """The keys of ``AUTH_KEYS``. In production with an identity provider
        (``OIDC_ISSUER``), clerks and supervisors sign in there: these keys then sign and
        verify only the other roles' tokens (ops, analysts, the city, survey links)."""
        roles = frozenset(Role)
        if settings.environment != "development" and settings.oidc_issuer:
            roles = roles - set(STAFF)
        return cls([k.get_secret_value() for k in settings.auth_keys], settings.auth_issuer,
                   roles=roles)

    @property
    def uses_dev_key(self) -> bool:
        return DEV_AUTH_KEY in self._keys.values()

    def issue(self, sub: str, role: Role | str, center_id: str | None = None,
              case_id: UUID | None = None, ttl: timedelta = timedelta(hours=8),
              now: datetime | None = None) -> str:
        role = Role(role)
        _check_claims(sub, role, center_id, case_id)
        if role not in self.roles:
            raise ValueError(f"a {role.value} signs in through the identity provider "
                             "(OIDC_ISSUER) outside development")
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": AUDIENCE, "sub": sub, "role": role.value,
            "iat": int(issued.timestamp()), "exp": int((issued + ttl).timestamp()),
            "jti": secrets.token_hex(8)}
        if center_id is not None:
            claims["center"] = center_id
        if case_id is not None:
            claims["case"] = str(case_id)
        kid, key = self._signing
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    def verify(self, token: str) -> Principal:
        """The token's principal, or ``AuthError`` (token_invalid / token_expired).

        A token verified before is not decoded again: only its ``exp`` is checked, against
        the clock and with the leeway PyJWT applies (``exp <= now - leeway`` is expired).
        Only valid tokens are remembered; an expired one is forgotten when seen.
        """
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if expires > self._now() - LEEWAY_S:
                with contextlib.suppress(KeyError):  # another thread may have evicted it
                    self._verified.move_to_end(token)
                return principal
            self._verified.pop(token, None)
            raise AuthError("token_expired", "the bearer token has expired")
        principal, expires = self._decode(token)
        self._verified[token] = (principal, expires)
        while len(self._verified) > self._remember:
            with contextlib.suppress(KeyError):
                self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        """Signature, issuer, audience, times and claims: the principal and its ``exp``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("token_invalid", "the bearer token is not a valid token") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError("token_invalid", "the bearer token is not a valid token")
        kid = header.get("kid")
        candidates = [self._keys[kid]] if kid in self._keys else list(self._keys.values())
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=self.issuer,
                    leeway=LEEWAY_S, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
                break
            except jwt.ExpiredSignatureError:
                raise AuthError("token_expired", "the bearer token has expired") from None
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise AuthError("token_invalid", "the bearer token is not valid") from None
        if claims is None:
            raise AuthError("token_invalid", "the bearer token is not signed by a known key")
        try:
            role = Role(claims.get("role"))
            case = UUID(claims["case"]) if claims.get("case") else None
            principal = Principal(sub=str(claims["sub"]), role=role,
                                  center_id=claims.get("center"), case_id=case,
                                  token_id=str(claims.get("jti", "")))
            if (held := personal_data_in(principal.sub)) is not None:
                raise personal_subject(held, "sub", "sixstep token issue --sub")
            _check_claims(principal.sub, role, principal.center_id, case)
            expires = int(claims["exp"])
        except (ValueError, TypeError):
            raise AuthError("token_invalid", "the bearer token's claims are not valid") from None
        if role not in self.roles:
            raise AuthError("token_invalid", f"a {role.value}'s token comes from the identity "
                            "provider (OIDC_ISSUER) outside development")
        return principal, expires


SYSTEM_SUBJECT = ("sub must not be system or begin with system: (the actor of the services' own "
                  "workers, whose copies are not checked again); use an opaque staff id")


def personal_subject(held: str, claim: str, setting: str) -> AuthError:
    """The 403 for a token whose subject is a person's phone number, ID number or e-mail
    address (``held`` says which; the value itself is never repeated, nor logged): the
    ``setting`` that names the subject has to name an opaque staff id instead."""
    return AuthError("claim_personal", f"the token's {claim!r} claim holds {held}; sixstep "
                     "records the subject as the actor of every event, so it must be an opaque "
                     f"id (a staff number, the identity provider's user id): change {setting}",
                     status=403, claim=claim, setting=setting, holds=held)


def _check_claims(sub: str, role: Role, center_id: str | None, case_id: UUID | None) -> None:
    if not SUBJECT.fullmatch(sub):
        raise ValueError("sub must be 1-64 characters of A-Z a-z 0-9 _.:@-")
    if (held := personal_data_in(sub)) is not None:
        raise ValueError(f"sub must not be {held}: it is the actor of every event the token's "
                         "holder records; use an opaque staff id (clerk-017)")
    if by_a_worker(sub):
        raise ValueError(SYSTEM_SUBJECT)
    if center_id is not None and not CENTER.fullmatch(center_id):
        raise ValueError(f"center {center_id!r} is not a valid center code")
    if role in CENTER_SCOPED and center_id is None:
        raise ValueError(f"a {role.value} token needs a center")
    if role is Role.RESIDENT and case_id is None:
        raise ValueError("a resident token needs a case")
    if role is not Role.RESIDENT and case_id is not None:
        raise ValueError("only a resident token is bound to a case")


def issue_token(settings: Settings, sub: str, role: Role | str, center_id: str | None = None,
                case_id: UUID | None = None, ttl: timedelta | None = None) -> str:
    """A token signed with the current key (``sixstep token issue``, the demo, tests)."""
    minutes = settings.auth_token_minutes
    return TokenKeys.from_settings(settings).issue(
        sub, role, center_id, case_id, ttl or timedelta(minutes=minutes))
