"""Authentication and authorization of every request, with the tokens of ``shared.security``.

* **Authentication** is a step of the front door (:func:`install_auth`,
  ``shared.http.front_door``): every request needs a valid
  token except the operations probes (``/health``, ``/ready``, ``/metrics``), the API docs, and
  Open311 (its own ``api_key``). A route added later is authenticated without anyone
  remembering to. No token: 401 ``token_missing``; a bad signature, a wrong issuer, a malformed
  token: 401 ``token_invalid``; past ``exp``: 401 ``token_expired`` (all with
  ``WWW-Authenticate``). A token of the identity provider (``OIDC_ISSUER``,
  ``shared.security.oidc``) without the role or center claim: 403 ``claim_missing`` naming the
  claim; its keys out of reach past their lifetime: 503 ``auth_unavailable``. The verified
  principal is the request's caller (``shared.security.principals.current_caller``) while it
  is handled; ``GET /auth/me`` answers who that is (the pages ask it after signing in).
  ``POST /auth/sign-out`` ends the caller's token in every service (``shared.bus.revocations``):
  a signed-out token is then answered as an expired one (401 ``token_expired``).
* **Authorization** is per route, with the dependencies below: ``require_roles(...)``, and
  :func:`check_center` for the center scope (403 ``forbidden_center``). Writes are also checked
  where the aggregate is loaded: ``GroupCommitter`` refuses to let a caller scoped to center A
  touch an aggregate of center B, whatever the route forgot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

import jwt
import orjson
import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.bus.revocations import keep_s, revoke
from shared.http.fast_route import SLOW, fast_dependency, principal_of
from shared.http.middleware import HttpHandler
from shared.http.oidc import oidc_verifier
from shared.kernel.errors import OutOfReach
from shared.security.oidc import OidcVerifier
from shared.security.principals import STAFF, Principal, Role, acting_as
from shared.security.revocations import revocation_key, token_digest
from shared.security.tokens import AuthError, TokenKeys

if TYPE_CHECKING:
    from shared.settings import Settings

log = structlog.get_logger("sixstep.auth")

#: Paths any caller may ask without a token (probes and the API's description).
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect", "/redoc"})
#: Path prefixes answered without a bearer token: Open311 authenticates with its own api_key
#: (checked by its router, ``services/intake/open311/api_keys.py``); ``/ui/`` is the staff pages'
#: static files (scripts and styles, no data: the pages call the API with the user's token).
OWN_SCHEME_PREFIXES = ("/open311/", "/ui/")
#: Where a caller ends its own token (:func:`sign_out`).
SIGN_OUT = "/auth/sign-out"


#: Path prefixes that only some roles may call at all, whoever wrote the routes under them:
#: the operations routes (``shared/ops.py``: dead-letter replay) are the ops team's.
ROLE_PREFIXES: dict[str, frozenset[Role]] = {"/ops/": frozenset({Role.OPS})}


def _auth_error(failure: AuthError) -> tuple[dict[str, Any], list[Any]]:
    body = {"error": {"code": failure.code, "message": failure.message,
                      "details": failure.details}}
    if failure.status == 503:
        return body, [(b"retry-after", b"5")]
    if failure.status != 401:
        return body, []
    challenge = 'Bearer realm="sixstep"'
    if failure.code != "token_missing":
        challenge += f', error="invalid_token", error_description="{failure.message}"'
    return body, [(b"www-authenticate", challenge.encode())]


#: The ``alg`` of a token's header, by the header's text (tokens of one key share it).
_ALGS: dict[str, str | None] = {}


def _alg(token: str) -> str | None:
    head = token.partition(".")[0]
    alg = _ALGS.get(head, "")
    if alg == "":
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            return None
        if len(_ALGS) < 256:
            _ALGS[head] = alg if isinstance(alg, str) else None
    return alg if isinstance(alg, str) else None


class Verifier:
    """Who a bearer token names: the identity provider's tokens (RS256/ES256, when
    ``OIDC_ISSUER`` is set) by ``shared.security.oidc``, sixstep's own (HS256) by
    ``shared.security.tokens``."""

    def __init__(self, keys: TokenKeys, oidc: OidcVerifier | None) -> None:
        self.keys = keys
        self.oidc = oidc

    async def verify(self, token: str) -> Principal:
        if self.oidc is not None and self.oidc.handles(_alg(token)):
            return await self.oidc.verify(token)
        return self.keys.verify(token)


def _issuer_keys_closed_at_the_end(app: FastAPI, oidc: OidcVerifier) -> None:
    """Around the app's lifespan: once it has stopped, the issuer's keys' fetch still under
    way (a background refresh a request started) is ended (``IssuerKeys.close``)."""
    serving = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        try:
            async with serving(app_) as state:
                yield state
        finally:
            await oidc.close()

    app.router.lifespan_context = lifespan


def install_auth(app: FastAPI, settings: Settings, optional: Iterable[str] = (),
                 public: Iterable[str] = ()) -> HttpHandler:
    """How every request of ``app`` is authenticated (see the module's docstring): the
    handler the front door (``shared.http.front_door``) hands each request to.

    ``optional``: path patterns (regular expressions) where a token is verified when given but
    may be absent; the route then decides (the survey answer with its link's own token).
    ``public``: path patterns answered without a token (a page's HTML, which holds no data).
    """
    keys = TokenKeys.from_settings(settings)
    if keys.uses_dev_key:
        log.warning("auth.development_key", hint="set AUTH_KEYS outside development")
    verifier = Verifier(keys, oidc_verifier(settings))
    app.state.auth = keys
    app.state.verifier = verifier
    if verifier.oidc is not None:
        _issuer_keys_closed_at_the_end(app, verifier.oidc)
    optional_path = PathPatterns(optional)
    public_path = PathPatterns(public, exact=PUBLIC_PATHS)

    async def authenticate(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith(OWN_SCHEME_PREFIXES) or public_path.holds(path):
            await inner(scope, receive, send)
            return
        token = _bearer(scope)
        principal: Principal | None = None
        failure: AuthError | None = None
        if token is None:
            if not optional_path.holds(path):
                failure = AuthError("token_missing", "this endpoint needs Authorization: "
                                    "Bearer <token> (sixstep token issue)")
        else:
            try:
                principal = await verifier.verify(token)
            except AuthError as exc:
                failure = exc
            else:
                runtime = app.state.runtime
                token_id = principal.token_id or token_digest(token)
                if runtime is not None and runtime.revoked.revoked(token_id):
                    if path != SIGN_OUT:
                        principal, failure = None, _revoked()
                    elif scope["method"] != "POST":  # the route's 405, as for a live token
                        principal = None  # (no caller is named)
                    elif runtime.revoked.on_bus(token_id):  # signed out already: idempotent
                        await send({"type": "http.response.start", "status": 204,
                                    "headers": []})
                        await send({"type": "http.response.body", "body": b""})
                        return
                    # else refused here only (the bus did not take it, 503): asked again,
                    # the sign-out tries the bus again, not a 204 that says it is done
        if failure is not None:
            body, headers = _auth_error(failure)
            await send({"type": "http.response.start", "status": failure.status,
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
        with acting_as(principal):
            await inner(scope, receive, send)

    app.include_router(_whoami)
    return authenticate


#: What ends a regular expression's plain text: the characters special outside a class.
_SPECIAL = re.compile(r"[.^$*+?{}\[\]\\|()]")


class PathPatterns:
    """Whether a path fully matches one of some patterns (regular expressions), as
    ``any(re.fullmatch(p, path) for p in patterns)``, asked once per request: a pattern
    that is plain text (``/counter``) is looked up in a set, and a pattern's regular
    expression is tried only on a path that starts with the plain text the pattern starts
    with (``/internal/`` of ``/internal/(case|resident)-texts/[^/]+``). Most requests (a
    write to ``/cases``) then cost a set lookup and one ``startswith``, not one regular
    expression per pattern."""

    __slots__ = ("_exact", "_patterns", "_starts")

    def __init__(self, patterns: Iterable[str], exact: Iterable[str] = ()) -> None:
        plain = set(exact)
        tried: list[tuple[str, re.Pattern[str]]] = []
        for pattern in patterns:
            special = _SPECIAL.search(pattern)
            if special is None:
                plain.add(pattern)
            else:
                tried.append((_plain_start(pattern, special.start()), re.compile(pattern)))
        self._exact = frozenset(plain)
        self._starts = tuple({start for start, _ in tried})
        self._patterns = tuple(tried)

    def holds(self, path: str) -> bool:
        if path in self._exact:
            return True
        if not self._patterns or not path.startswith(self._starts):
            return False
        return any(path.startswith(start) and pattern.fullmatch(path) is not None
                   for start, pattern in self._patterns)


def _plain_start(pattern: str, special: int) -> str:
    """The plain text every path ``pattern`` fully matches starts with, given where its first
    special character is: the text before it, less its last character when a quantifier
    follows (``/ab?``: ``/a``). Nothing when the pattern has an alternative at its top level
    (``/a|/b``), which may start otherwise, or a group of another kind (``(?...)``: a flag,
    a comment) that this reading does not follow: such a pattern is tried on every path."""
    if "(?" in pattern:
        return ""
    depth, at = 0, 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            at += 1  # the escaped character, whatever it is
        elif char == "[":  # a class: to its first ']' that is not its first character
            at += 1
            if pattern[at:at + 1] == "^":
                at += 1
            if pattern[at:at + 1] == "]":
                at += 1
            while at < len(pattern) and pattern[at] != "]":
                at += 2 if pattern[at] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return ""
        at += 1
    if pattern[special] in "*?{+":
        special -= 1
    return pattern[:max(special, 0)]


def _revoked() -> AuthError:
    """A signed-out token's refusal: the very one of an expired token (it is one, early)."""
    return AuthError("token_expired", "the bearer token has expired")


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
        refused = forbidden("forbidden_center",
                            "this belongs to another center than the token's",
                            token_center=principal.center_id)
        refused.out_of_reach = OutOfReach("center", None, center_id)  # type: ignore[attr-defined]
        raise refused


def not_found_elsewhere(principal: Principal, center_id: str | None, what: str,
                        id: object, message: str | None = None,
                        code: str = "not_found") -> None:
    """404 ``code`` worded as for a ``what`` nobody has (``message``, default "<what> <id>
    not found") unless the caller may see ``center_id``'s data: another center's case, plan,
    survey, follow-up ... is not there for them. A 403 said the id is one, somewhere: an
    existence oracle, since these ids are worked out from a center and an Idempotency-Key
    (a case, a plan: ``case_id_for``) or from a case's events (a survey from its
    resolution's event id, a rule's follow-up, a help task), which another center can work
    out from a case id it guessed. ``Unit.get`` answers the same for every write."""
    if principal.center_id is not None and center_id != principal.center_id:
        refused = HTTPException(404, {"code": code,
                                      "message": message or f"{what} {id} not found",
                                      "details": {"id": str(id)}})
        refused.out_of_reach = OutOfReach(what, str(id), center_id)  # type: ignore[attr-defined]
        raise refused


def center_filter(principal: Principal, asked: str | None) -> str | None:
    """The center a list is limited to: the token's own (asking for another is a 403)."""
    if principal.center_id is None:
        return asked
    if asked is not None:
        check_center(principal, asked)
    return principal.center_id


# -- who am I --------------------------------------------------------------------------------

_whoami = APIRouter(tags=["auth"])


class CallerPublic(BaseModel):
    """The caller as the service sees it: the identity provider's claims already mapped."""

    sub: str
    role: Role
    center_id: str | None


@_whoami.get("/auth/me", response_model=CallerPublic)
async def who_am_i(principal: CurrentPrincipal) -> CallerPublic:
    """Who the bearer token names: subject, role and center (the pages ask this after signing
    in, so the role and center mapping lives in one place, here)."""
    return CallerPublic(sub=principal.sub, role=principal.role, center_id=principal.center_id)


@_whoami.post(SIGN_OUT, status_code=204)
async def sign_out(request: Request, principal: CurrentPrincipal) -> Response:
    """End the caller's own token on the server, in every service and replica, before its
    ``exp``: from then on it is answered as an expired one (401 ``token_expired``). The pages
    call it when their user signs out, then forget the token. Idempotent: signing out again
    with the same token answers 204 again (and nothing more is done).

    Only the token's id goes on the bus (its ``jti``, else a digest of the token), never who
    held it. 503 ``auth_unavailable`` when the bus does not take it: the token stays valid
    until its ``exp``, and the page says so."""
    token = _bearer(request.scope) or ""
    token_id = principal.token_id or token_digest(token)
    try:
        expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        expires = time.time() + 24 * 3600
    runtime = request.app.state.runtime
    if runtime is None:
        raise HTTPException(503, {"code": "auth_unavailable", "message": (
            "the service is starting: sign out again in a moment"), "details": {}},
            headers={"Retry-After": "5"})
    key, within = revocation_key(token_id), keep_s(runtime.settings)
    # This replica refuses it at once, for no longer than the bucket keeps it for the others.
    runtime.revoked.add(key, expires, within_s=within, on_bus=False)
    try:
        async with asyncio.timeout(5.0):
            await revoke(runtime.nc, runtime.settings, token_id, expires)
        runtime.revoked.add(key, expires, within_s=within)  # taken: again, a plain 204
    except Exception as exc:
        log.warning("auth.sign_out_not_shared", error=f"{type(exc).__name__}: {exc}")
        raise HTTPException(503, {"code": "auth_unavailable", "message": (
            "the sign-out could not reach the other services: the token stays valid there "
            "until it expires"), "details": {}}, headers={"Retry-After": "5"}) from None
    log.info("auth.signed_out", role=principal.role.value)
    return Response(status_code=204)
