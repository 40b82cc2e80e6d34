"""Open311's GeoReport v2 routes: translation only. A POST becomes the submission use case
(``submission``), reads come from the read model (``service_requests``); every failure answers
in the spec's error format (``wire``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from services.intake.api import CatalogueDep, IntakeDep, PoolDep, SettingsDep
from services.intake.open311.api_keys import ApiKeys, Credential
from services.intake.open311.form import (
    FORM_FIELDS,
    check_fields,
    first_values,
    read_form,
)
from services.intake.open311.service_requests import (
    MAX_RESULTS,
    SELECT_REQUESTS,
    readable,
    service_request,
    split,
    window,
)
from services.intake.open311.submission import ServiceRequest, Submissions
from services.intake.open311.tokens import TOKEN, issue_token, signed
from services.intake.open311.wire import DEFAULT_FORMAT, MEDIA_TYPES, Open311Error, error, render
from services.intake.open311.wording import (
    LIFE_EVENTS,
    Lang,
    definition,
    language,
    service,
    service_notice,
)
from services.intake.projections import CONSUMER
from shared.catalogue.loader import shipped_file
from shared.contracts.vocabulary import Channel
from shared.http.dependencies import KEY_PATTERN
from shared.kernel.errors import CommandError, NotFound
from shared.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"

log = structlog.get_logger("sixstep.open311")


def _format_of(request: Request) -> str:
    suffix = request.url.path.rpartition(".")[2]
    return suffix if suffix in MEDIA_TYPES else DEFAULT_FORMAT


class Open311Route(APIRoute):
    """Every failure under /open311 answers in the spec's error format, in the asked format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            fmt = _format_of(request)
            try:
                return await handler(request)
            except Open311Error as exc:
                return error(fmt, exc.status, exc.description)
            except (RequestValidationError, ValidationError) as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                     for e in exc.errors())
                return error(fmt, 400, f"invalid request: {problems}")
            except NotFound as exc:
                return error(fmt, 404, exc.message)
            except CommandError as exc:
                return error(fmt, 400, exc.message)
            except HTTPException as exc:
                return error(fmt, 404 if exc.status_code == 404 else 400, str(exc.detail))
            except Exception:  # "400 - General Service Error ... Client will need to notify us"
                log.exception("open311.failed", method=request.method, path=request.url.path)
                return error(fmt, 400, "General service error: the request could not be "
                                       "processed now; it is safe to send it again.")

        return route


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


# -- dependencies -----------------------------------------------------------------------------


async def _out(fmt: Annotated[str, Path(description="xml or json")]) -> str:
    if fmt not in MEDIA_TYPES:
        raise Open311Error(400, f"format {fmt!r} is not offered; use .xml or .json")
    return fmt


async def _keys(request: Request) -> ApiKeys:
    state = request.app.state
    keys = getattr(state, "open311_keys", None)
    if keys is None:
        keys = state.open311_keys = ApiKeys(request.app.state.settings.open311_api_keys)
    return keys


async def _lang(accept_language: Annotated[str | None, Header()] = None) -> Lang:
    return language(accept_language)


Out = Annotated[str, Depends(_out)]
KeysDep = Annotated[ApiKeys, Depends(_keys)]
LangDep = Annotated[Lang, Depends(_lang)]
Jurisdiction = Annotated[str | None, Query(description=(
    "Optional: the api_key already names the center (jurisdiction)."))]
ApiKey = Annotated[str | None, Query(description="A counter-app credential for one center.")]


def _credential(keys: ApiKeys, api_key: str | None, action: str) -> Credential:
    credential = keys.credential(api_key)
    if credential is None:
        what = "Missing" if not api_key else "Invalid"
        raise Open311Error(403, f"{what} api_key received -- can't proceed with {action}.")
    return credential


def _check_jurisdiction(given: str | None, keys: ApiKeys, center: str | None) -> None:
    """Optional everywhere: the api_key (or the shared catalogue) already settles it."""
    if not given:
        return
    if (center is not None and given != center) or (center is None and given not in keys.centers):
        raise Open311Error(404, f"jurisdiction_id {given!r} was not found")


# -- discovery, services, service definitions ---------------------------------------------------


def _changeset(settings: Settings) -> str:
    """When the catalogue (the service list and definitions) last changed."""
    paths = [shipped_file(), *settings.catalogue_paths]
    latest = max(os.stat(p).st_mtime for p in paths)
    return datetime.fromtimestamp(int(latest), UTC).isoformat().replace("+00:00", "Z")


def public_url(settings: Settings) -> str:
    """Where apps reach this endpoint: ``INTAKE_PUBLIC_URL``, never the request's ``Host`` or
    ``X-Forwarded-Proto`` (a caller could make discovery point anywhere)."""
    base = settings.intake_public_url or f"http://{settings.host}:{settings.intake_port}"
    return base.rstrip("/") + router.prefix


@router.get("/discovery.{fmt}", summary="Open311 service discovery")
async def discovery(out: Out, settings: SettingsDep) -> Response:
    changeset = await asyncio.to_thread(_changeset, settings)
    url = public_url(settings)
    return render(out, "discovery", {
        "changeset": changeset,
        "contact": settings.open311_contact,
        "key_service": settings.open311_key_service,
        "endpoints": [{"specification": SPECIFICATION, "url": url, "changeset": changeset,
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    })


@router.get("/services.{fmt}", summary="GET Service List: the service catalogue")
async def services(out: Out, cat: CatalogueDep, keys: KeysDep, lang: LangDep,
                   settings: SettingsDep, jurisdiction_id: Jurisdiction = None) -> Response:
    _check_jurisdiction(jurisdiction_id, keys, None)
    listed = [service(cat, item, lang) | {"type": settings.open311_request_type}
              for item in cat.items()]
    return render(out, "services", listed)


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition")
async def service_definition(service_code: str, out: Out, cat: CatalogueDep, keys: KeysDep,
                             lang: LangDep, jurisdiction_id: Jurisdiction = None) -> Response:
    _check_jurisdiction(jurisdiction_id, keys, None)
    item = cat.get(service_code)
    if item is None:
        raise Open311Error(404, f"service_code {service_code!r} was not found")
    return render(out, "service_definition", definition(item, lang))


# -- POST a service request ---------------------------------------------------------------------


_POST_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["api_key", "service_code"],
        "properties": {name: {"type": "string"} for name in FORM_FIELDS}}}}}}


@router.post("/requests.{fmt}", summary="POST Service Request: open a case (channel open311)",
             openapi_extra=_POST_BODY)
async def create_request(request: Request, out: Out, intake: IntakeDep, pool: PoolDep,
                         cat: CatalogueDep, keys: KeysDep, lang: LangDep, settings: SettingsDep,
                         idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    pairs = await read_form(request)
    fields = first_values(pairs)
    api_key = fields.get("api_key") or request.query_params.get("api_key")
    credential = _credential(keys, api_key, "create_request")
    _check_jurisdiction(fields.get("jurisdiction_id"), keys, credential.center_id)
    code = check_fields(fields, pairs, cat, lang)
    if idempotency_key is not None and not KEY_PATTERN.fullmatch(idempotency_key):
        raise Open311Error(400, "Idempotency-Key must be 8-128 characters of A-Z a-z 0-9 _ . : -")

    written = await Submissions(intake, request.app.state.open311_forms,
                                settings.open311_forms_key()).submit(
        ServiceRequest(credential=credential, api_key=str(api_key), pairs=pairs,
                       service_code=code, description=fields.get("description") or None,
                       idempotency_key=idempotency_key))
    case_id = written.aggregate_id
    answer: dict[str, Any] = {}
    if settings.open311_request_type == "realtime" and await readable(
            pool, case_id, written.version, settings.read_wait_timeout_s):
        answer["service_request_id"] = str(case_id)
    else:
        answer["token"] = issue_token(settings, case_id, written.version, written.position)
    answer |= {"service_notice": service_notice(cat.get(code), lang), "account_id": None}
    return render(out, "service_requests", [answer])


# -- GET tokens, requests, a request ------------------------------------------------------------

@router.get("/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
async def token(token: str, out: Out, pool: PoolDep, keys: KeysDep, settings: SettingsDep,
                jurisdiction_id: Jurisdiction = None, api_key: ApiKey = None) -> Response:
    """A token is the case, the version the POST left it at and the POST's log position: it
    resolves once the read model shows the case as the POST left it, is pending (no
    service_request_id yet) while the read model is behind, and is not found otherwise.

    Without an api_key only a token this endpoint issued (its MAC checks) is looked at:
    anything else is "not found", so a made-up token confirms no case of any center. With an
    api_key, only that key's center's cases are found."""
    credential = keys.credential(api_key)
    center = credential.center_id if credential else None
    _check_jurisdiction(jurisdiction_id, keys, center)
    match = TOKEN.fullmatch(token)
    if match is None:
        raise Open311Error(404, f"token {token!r} was not found")
    case_id, version, position = UUID(match.group(1)), int(match.group(2)), int(match.group(3))
    if credential is None and not signed(settings, case_id, version, position,
                                         match.group(4)):
        raise Open311Error(404, f"token {token!r} was not found")
    # The case and the consumer's progress in one statement, so one snapshot: read apart,
    # the consumer could commit the case (and its progress past the token) between the two
    # reads, and a case that exists looked unknown (a 404 the app takes as final). The
    # progress is the last position applied, not one below which all is: while an event of
    # the case fails and is retried (its key blocked), later cases go on and pass it, so a
    # blocked case counts as not applied yet.
    found = await pool.fetchrow(
        "SELECT c.center_id, c.version, CASE WHEN t.blocked_seq IS NULL THEN p.position END"
        " AS applied FROM (SELECT) AS one"
        " LEFT JOIN cases AS c ON c.case_id = $1 AND c.channel = $2"
        " LEFT JOIN consumer_progress AS p ON p.consumer = $3 AND p.service = 'intake'"
        " LEFT JOIN consumer_tracking AS t ON t.consumer = $3 AND t.key = $1",
        case_id, Channel.OPEN311.value, CONSUMER)
    assert found is not None
    # Another center's case is answered as a case nobody has (pending while the position
    # is ahead of the read model, else not found): a key's app makes up tokens (no MAC is
    # asked of it), and a 404 for another center's where none's was pending told which
    # guessed ids are cases there.
    seen = found["center_id"] is not None and center in (None, found["center_id"])
    if seen and found["version"] is not None and found["version"] >= version:
        return render(out, "service_requests", [{"service_request_id": str(case_id),
                                                 "token": token}])
    # position 0: the POST was a copy answered in the same commit as the original.
    if seen or position == 0 or (found["applied"] or 0) < position:
        return render(out, "service_requests", [{"service_request_id": None, "token": token}])
    raise Open311Error(404, f"token {token!r} was not found")


@router.get("/requests.{fmt}", summary="GET Service Requests, with the spec's filters")
async def requests(
    request: Request, out: Out, pool: PoolDep, cat: CatalogueDep, keys: KeysDep, lang: LangDep,
    settings: SettingsDep, api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[str | None, Query(description="Comma separated; overrides "
                                                    "every other filter")] = None,
    service_code: Annotated[str | None, Query(description="Comma separated")] = None,
    start_date: Annotated[str | None, Query(description="W3C, e.g. 2010-01-01T00:00:00Z")] = None,
    end_date: Annotated[str | None, Query(description="W3C; at most 90 days after start")] = None,
    status: Annotated[str | None, Query(description="open, closed; comma separated")] = None,
) -> Response:
    credential = _credential(keys, api_key, "get_requests")
    _check_jurisdiction(jurisdiction_id, keys, credential.center_id)
    args: list[Any] = [list(LIFE_EVENTS), credential.center_id, Channel.OPEN311.value]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    if ids := split(service_request_id):
        wanted = []
        for ident in ids[:MAX_RESULTS]:
            try:
                wanted.append(UUID(ident))
            except ValueError:
                continue  # an id that cannot exist matches nothing
        where.append(f"c.case_id = ANY({arg(wanted)}::uuid[])")
    else:
        since, until = window(start_date, end_date, settings,
                              request.app.state.runtime.clock.now())
        where.append(f"c.opened_at BETWEEN {arg(since)} AND {arg(until)}")
        if codes := split(service_code):
            where.append(f"c.service_item = ANY({arg(codes)}::text[])")
        if statuses := split(status):
            unknown = set(statuses) - {"open", "closed"}
            if unknown:
                raise Open311Error(400, f"status {sorted(unknown)[0]!r} is not open or closed")
            mapped = ["resolved" if s == "closed" else "open" for s in statuses]
            where.append(f"c.status = ANY({arg(mapped)}::text[])")
    sql = (f"{SELECT_REQUESTS} AND {' AND '.join(where)}"
           f" ORDER BY c.opened_at DESC, c.case_id DESC LIMIT {MAX_RESULTS}")
    rows = await pool.fetch(sql, *args)
    today = request.app.state.runtime.clock.now().astimezone(settings.tz).date()
    return render(out, "service_requests",
                  [service_request(r, cat, lang, settings, today) for r in rows])


@router.get("/requests/{service_request_id}.{fmt}", summary="GET Service Request")
async def one_request(service_request_id: str, request: Request, out: Out, pool: PoolDep,
                      cat: CatalogueDep, keys: KeysDep, lang: LangDep, settings: SettingsDep,
                      api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None) -> Response:
    credential = _credential(keys, api_key, "get_request")
    _check_jurisdiction(jurisdiction_id, keys, credential.center_id)
    try:
        case_id = UUID(service_request_id)
    except ValueError:
        raise Open311Error(404, f"service_request_id {service_request_id!r} was not found") \
            from None
    row = await pool.fetchrow(f"{SELECT_REQUESTS} AND c.case_id = $4", list(LIFE_EVENTS),
                              credential.center_id, Channel.OPEN311.value, case_id)
    if row is None:
        raise Open311Error(404, f"service_request_id {service_request_id!r} was not found")
    today = request.app.state.runtime.clock.now().astimezone(settings.tz).date()
    return render(out, "service_requests", [service_request(row, cat, lang, settings, today)])


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
async def elsewhere(request: Request, rest: str) -> Response:
    resource = rest.removesuffix(f".{_format_of(request)}")
    raise Open311Error(404, f"no GeoReport v2 resource at {request.method} /{resource}")
