"""Who is calling: signed bearer tokens (JWT, HS256) with a subject, a role and a center scope.

* **Keys** come from ``settings.auth_keys``: the first signs, every one verifies, so a key is
  rotated by putting the new one first and dropping the old one once its tokens have expired.
  A token names its key (``kid``: a fingerprint, never the key), so verifying costs one HMAC.
  The development key is refused unless ``ENVIRONMENT=development`` (``shared.settings``).
* **Verified tokens are remembered** (a bounded LRU per key set, keyed by the whole token): a
  counter app sends the same token all day, so its signature and claims are checked once, and
  each later request checks only ``exp``. Keys never change inside a ``TokenKeys``: rotating
  them is a new settings object, hence a new, empty cache.
* **Authentication** is an ASGI middleware (:func:`install_auth`): every request needs a valid
  token except the operations probes (``/health``, ``/ready``, ``/metrics``), the API docs, and
  Open311 (its own ``api_key``). A route added later is authenticated without anyone
  remembering to. No token: 401 ``token_missing``; a bad signature, a wrong issuer, a malformed
  token: 401 ``token_invalid``; past ``exp``: 401 ``token_expired`` (all with
  ``WWW-Authenticate``).
* **Authorization** is per route, with the dependencies below: ``require_roles(...)``, and
  :func:`check_center` for the center scope (403 ``forbidden_center``). Writes are also checked
  where the aggregate is loaded: ``GroupCommitter`` refuses to let a caller scoped to center A
  touch an aggregate of center B (:func:`current_caller`), whatever the route forgot.

Roles (:class:`Role`): a counter ``clerk`` writes and reads its own center's cases; a
``supervisor`` does the same plus rectifications, escalations, the audit trail and erasure; an
``analyst`` reads figures (no personal data); ``ops`` runs the operations routes; a
``resident`` token answers one case's survey; ``city`` is the city's (or district's) own
supervisor above the centers: what reaches every center at once (a policy change published to
all centers) and the city-wide view of cross-center access (audit entries the city must see).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import jwt
import orjson
import structlog
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.fast_route import SLOW, fast_dependency, principal_of
from shared.settings import DEV_AUTH_KEY

if TYPE_CHECKING:
    from shared.settings import Settings

log = structlog.get_logger("sixstep.auth")

AUDIENCE = "sixstep"
ALGORITHM = "HS256"
LEEWAY_S = 30
#: How many verified tokens a process remembers (about 0.5 KB each).
VERIFIED_TOKENS = 4096
SUBJECT = re.compile(r"^[A-Za-z0-9_.:@\-]{1,64}$")
CENTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

#: Paths any caller may ask without a token (probes and the API's description).
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect", "/redoc"})
#: Path prefixes answered without a bearer token: Open311 authenticates with its own api_key
#: (checked by its router, ``services/intake/open311_keys.py``); ``/ui/`` is the staff pages'
#: static files (scripts and styles, no data: the pages call the API with the user's token).
OWN_SCHEME_PREFIXES = ("/open311/", "/ui/")


class Role(StrEnum):
    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    OPS = "ops"
    RESIDENT = "resident"
    CITY = "city"


#: Path prefixes that only some roles may call at all, whoever wrote the routes under them:
#: the operations routes (``shared/ops.py``: dead-letter replay) are the ops team's.
ROLE_PREFIXES: dict[str, frozenset[Role]] = {"/ops/": frozenset({Role.OPS})}


#: Roles whose tokens must name a center (their data is one center's).
CENTER_SCOPED = frozenset({Role.CLERK, Role.SUPERVISOR, Role.RESIDENT})
STAFF = (Role.CLERK, Role.SUPERVISOR)


@dataclass(frozen=True)
class Principal:
    """The verified caller. ``center_id`` None: every center (analyst, ops)."""

    sub: str
    role: Role
    center_id: str | None = None
    case_id: UUID | None = None
    token_id: str = ""

    @property
    def actor(self) -> str:
        """What the envelope records as ``actor``: the subject, never a name."""
        return self.sub


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _kid(key: str) -> str:
    return hashlib.sha256(b"sixstep-kid\x00" + key.encode()).hexdigest()[:12]


class TokenKeys:
    """Signs with the first key, verifies with any: rotation with two valid keys at once."""

    def __init__(self, keys: Sequence[str], issuer: str = "sixstep",
                 remember: int = VERIFIED_TOKENS) -> None:
        if not keys:
            raise ValueError("auth_keys needs at least one key")
        self._keys = {_kid(k): k for k in keys}
        self._signing = (_kid(keys[0]), keys[0])
        self.issuer = issuer
        self._remember = remember
        self._now: Callable[[], float] = time.time
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys:
        return cls([k.get_secret_value() for k in settings.auth_keys], settings.auth_issuer)

    @property
    def uses_dev_key(self) -> bool:
        return DEV_AUTH_KEY in self._keys.values()

    def issue(self, sub: str, role: Role | str, center_id: str | None = None,
              case_id: UUID | None = None, ttl: timedelta = timedelta(hours=8),
              now: datetime | None = None) -> str:
        role = Role(role)
        _check_claims(sub, role, center_id, case_id)
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
            _check_claims(principal.sub, role, principal.center_id, case)
            expires = int(claims["exp"])
        except (ValueError, TypeError):
            raise AuthError("token_invalid", "the bearer token's claims are not valid") from None
        return principal, expires


def _check_claims(sub: str, role: Role, center_id: str | None, case_id: UUID | None) -> None:
    if not SUBJECT.fullmatch(sub):
        raise ValueError("sub must be 1-64 characters of A-Z a-z 0-9 _.:@-")
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


# -- the request's caller ---------------------------------------------------------------------

_CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "sixstep_caller", default=None)


def current_caller() -> Principal | None:
    """The principal of the HTTP request being handled here, if any (the write path checks
    an aggregate's center against it)."""
    return _CALLER.get()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run work begun by ``principal`` outside their request (a background fan-out of what
    they published) under their scope: the write path checks it as it checks a request's."""
    reset = _CALLER.set(principal)
    try:
        yield principal
    finally:
        _CALLER.reset(reset)


def _auth_error(status: int, code: str, message: str) -> tuple[dict[str, Any], list[Any]]:
    body = {"error": {"code": code, "message": message, "details": {}}}
    challenge = 'Bearer realm="sixstep"'
    if code != "token_missing":
        challenge += f', error="invalid_token", error_description="{message}"'
    return body, [(b"www-authenticate", challenge.encode())]


def install_auth(app: FastAPI, settings: Settings, optional: Iterable[str] = (),
                 public: Iterable[str] = ()) -> TokenKeys:
    """Authenticate every request of ``app`` (see the module's docstring).

    ``optional``: path patterns (regular expressions) where a token is verified when given but
    may be absent; the route then decides (the survey answer with its link's own token).
    ``public``: path patterns answered without a token (a page's HTML, which holds no data).
    """
    keys = TokenKeys.from_settings(settings)
    if keys.uses_dev_key:
        log.warning("auth.development_key", hint="set AUTH_KEYS outside development")
    app.state.auth = keys
    optional_paths = [re.compile(p) for p in optional]
    public_paths = [re.compile(p) for p in public]

    class _Authenticate:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            path: str = scope["path"]
            if (path in PUBLIC_PATHS or path.startswith(OWN_SCHEME_PREFIXES)
                    or any(p.fullmatch(path) for p in public_paths)):
                await self.inner(scope, receive, send)
                return
            token = _bearer(scope)
            principal: Principal | None = None
            failure: tuple[str, str] | None = None
            if token is None:
                if not any(p.fullmatch(path) for p in optional_paths):
                    failure = ("token_missing", "this endpoint needs Authorization: Bearer "
                                                "<token> (sixstep token issue)")
            else:
                try:
                    principal = keys.verify(token)
                except AuthError as exc:
                    failure = (exc.code, exc.message)
            if failure is not None:
                body, headers = _auth_error(401, *failure)
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), *headers]})
                await send({"type": "http.response.body", "body": orjson.dumps(body)})
                return
            for prefix, roles in ROLE_PREFIXES.items():
                if path.startswith(prefix) and (principal is None or principal.role not in roles):
                    body = {"error": {"code": "forbidden_role", "message": (
                        f"{prefix} is for the roles {', '.join(sorted(roles))}"), "details": {}}}
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"application/json")]})
                    await send({"type": "http.response.body", "body": orjson.dumps(body)})
                    return
            scope.setdefault("state", {})["principal"] = principal
            reset = _CALLER.set(principal)
            try:
                await self.inner(scope, receive, send)
            finally:
                _CALLER.reset(reset)

    app.add_middleware(_Authenticate)
    return keys


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


# -- dependencies -----------------------------------------------------------------------------

_bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer",
                            description="A token from `sixstep token issue`.")


def forbidden(code: str, message: str, **details: Any) -> HTTPException:
    return HTTPException(403, {"code": code, "message": message, "details": details})


async def _optional_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)] = None,
) -> Principal | None:
    return getattr(request.state, "principal", None)


async def _principal(
    principal: Annotated[Principal | None, Depends(_optional_principal)],
) -> Principal:
    if principal is None:
        raise HTTPException(401, {"code": "token_missing", "message": (
            "this endpoint needs Authorization: Bearer <token>"), "details": {}},
            headers={"WWW-Authenticate": 'Bearer realm="sixstep"'})
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(_optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def require_roles(*roles: Role) -> Callable[..., Any]:
    """A dependency: the caller, when its role is one of ``roles`` (else 403 forbidden_role)."""
    allowed = frozenset(roles)

    def fast(request: Request) -> Principal:
        principal: Principal | None = principal_of(request)
        return principal if principal is not None and principal.role in allowed else SLOW

    @fast_dependency(fast)
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise forbidden("forbidden_role",
                            f"a {principal.role.value} token cannot do this",
                            role=principal.role.value,
                            allowed=sorted(r.value for r in allowed))
        return principal

    return dependency


Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
Supervisor = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR))]
Figures = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.ANALYST))]
Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]


def check_center(principal: Principal, center_id: str | None) -> None:
    """403 ``forbidden_center`` unless the caller may see ``center_id``'s data."""
    if principal.center_id is not None and center_id != principal.center_id:
        raise forbidden("forbidden_center",
                        "this belongs to another center than the token's",
                        token_center=principal.center_id)


def center_filter(principal: Principal, asked: str | None) -> str | None:
    """The center a list is limited to: the token's own (asking for another is a 403)."""
    if principal.center_id is None:
        return asked
    if asked is not None:
        check_center(principal, asked)
    return principal.center_id
