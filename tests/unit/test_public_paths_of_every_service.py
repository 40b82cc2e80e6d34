"""Nobody reaches a service's data without a token: the paths each service's ``main.py`` names
public (a page's HTML, a survey's or a reply's link, the probes) are let through by the very
authenticator the app runs, exactly as trying every pattern on the path did before intake53's
``PathPatterns``, and every other route of every service (its OpenAPI and its pages) is asked
for a token, however the path is spelled: a slash more or less, ``//``, ``/./``, ``..``,
``%2F`` left encoded, another case, a NUL, a query glued on, any method, a ``root_path``.

(The server hands the app a decoded path, and auth and routing read the same one: a path
auth lets through is routed as auth read it.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import compile_path

import shared.http.app as http_app
from services.feedback.main import create_app as feedback
from services.followup.main import create_app as followup
from services.intake.main import create_app as intake
from shared.http.auth import OWN_SCHEME_PREFIXES, PUBLIC_PATHS
from shared.settings import Settings

#: The routes that are not in a service's OpenAPI (pages, links, the API's own description),
#: as its routers declare them.
UNLISTED = {
    "intake": ["/", "/counter", "/counter/survey-qr/{case_id}", "/counter/case-work/{case_id}",
               "/internal/case-texts/{case_id}", "/internal/resident-texts/{resident_id}",
               "/open311/v2/{rest}", "/ui/shared/{path}", "/ui/intake/{path}"],
    "followup": [],
    "feedback": ["/public/{center_id}", "/", "/s/{survey_id}", "/pad", "/board",
                 "/board/worklist", "/ui/shared/{path}", "/ui/feedback/{path}"],
}
COMMON = ["/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/health",
          "/ready"]
#: What each service answers without a token, and why: a page's HTML (no data), a link that
#: carries its own token, a call signed by a service, Open311's own api_key, static files.
MEANT_PUBLIC = {
    "intake": {"/", "/counter", "/internal/case-texts/{case_id}",
               "/internal/resident-texts/{resident_id}", "/open311/v2/discovery.{fmt}",
               "/open311/v2/services.{fmt}", "/open311/v2/services/{service_code}.{fmt}",
               "/open311/v2/requests.{fmt}", "/open311/v2/tokens/{token}.{fmt}",
               "/open311/v2/requests/{service_request_id}.{fmt}", "/open311/v2/{rest}",
               "/ui/shared/{path}", "/ui/intake/{path}"},
    "followup": {"/referrals/{id}/unit-reply"},
    "feedback": {"/", "/board", "/s/{survey_id}", "/pad", "/pads/pair", "/pads/next",
                 "/public/{center_id}", "/ui/shared/{path}", "/ui/feedback/{path}"},
}
#: Where a token may be absent and the route decides (the survey link's own token).
MEANT_OPTIONAL = {"intake": set(), "followup": set(),
                  "feedback": {"/surveys/{survey_id}/rating", "/surveys/{survey_id}/decline"}}
VALUES = ["x", "abc", "1", "..", ".", "%2F", "a%2Fb", "pair", "next", "rating", "decline",
          "unit-reply", "case-texts", "COUNTER", "00000000-0000-0000-0000-000000000000",
          "a.json", "%00", "\x00", "a?b=1", "a#b", "\u2215", " ", "a b"]


class Service:
    """A service's app as its ``main.py`` builds it, with the authenticator its front door
    calls and the path patterns it was given."""

    def __init__(self, name: str, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        given: dict[str, Any] = {}
        install_auth = http_app.install_auth

        def recording(app: Any, settings: Settings, optional: Any = (), public: Any = ()):
            given.update(optional=list(optional), public=list(public))
            given["authenticate"] = install_auth(app, settings, optional=given["optional"],
                                                 public=given["public"])
            return given["authenticate"]

        monkeypatch.setattr(http_app, "install_auth", recording)
        self.name = name
        self.app = make(Settings(environment="development", log_json=False))
        self.authenticate = given["authenticate"]
        self.public: list[str] = given["public"]
        self.optional: list[str] = given["optional"]
        listed = list(self.app.openapi()["paths"])
        self.templates = sorted(set(listed + UNLISTED[name] + COMMON))
        self.regexes = {t: compile_path(t)[0] for t in self.templates}
        self.runner = asyncio.Runner()

    def old_public(self, path: str) -> bool:
        """Auth's reading before intake53: the probes, the own-scheme prefixes, then every
        public pattern tried in turn."""
        return (path in PUBLIC_PATHS or path.startswith(OWN_SCHEME_PREFIXES)
                or any(re.fullmatch(p, path) for p in self.public))

    def old_optional(self, path: str) -> bool:
        return any(re.fullmatch(p, path) for p in self.optional)

    def routes_of(self, path: str) -> set[str]:
        return {t for t, regex in self.regexes.items() if regex.match(path)}

    def let_through(self, path: str, method: str, root_path: str = "") -> bool:
        """Whether a request without a token reaches the app's routes (else: a 401)."""
        reached: list[bool] = []
        sent: list[dict[str, Any]] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            reached.append(True)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "root_path": root_path,
                 "raw_path": path.encode("utf-8", "surrogatepass"), "query_string": b"",
                 "headers": [], "app": self.app}
        self.runner.run(self.authenticate(inner, scope, receive, send))
        if reached:
            return True
        assert sent and sent[0]["status"] == 401, (path, sent)
        return False


SERVICES = [("intake", intake), ("followup", followup), ("feedback", feedback)]


@pytest.fixture(params=SERVICES, ids=[name for name, _ in SERVICES])
def service(request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    name, make = request.param
    service = Service(name, make, monkeypatch)
    with service.runner:
        yield service


def _instances(template: str) -> Iterator[str]:
    """The template's path with each value in every parameter (one value for all at once)."""
    params = re.findall(r"{[^}]+}", template)
    if not params:
        yield template
        return
    for value in VALUES:
        path = template
        for param in params:
            path = path.replace(param, value)
        yield path


def _spellings(path: str) -> Iterator[str]:
    """The path as a caller may spell it to slip past a pattern."""
    yield path
    yield path + "/"
    yield path.rstrip("/") or "/"
    yield "/" + path
    yield path.replace("/", "//")
    yield path.replace("/", "/./", 1)
    yield path + "/.."
    yield path + "/../cases"
    yield path + "/x/../../cases"
    yield path.replace("/", "%2F")
    yield path[:1] + path[1:].replace("/", "%2F", 1)
    yield path.upper()
    yield path.title()
    yield path + "\x00"
    yield path + "\x00/../cases"
    yield path + "?token=x"
    yield path + "#x"
    yield path + "\n"
    yield path + " "
    yield "/." + path
    yield path.replace("/", "\\")


def _paths(service: Service) -> list[str]:
    seeds = {p for t in service.templates for p in _instances(t)}
    seeds |= {"", "/", "/counterfeit", "/counter-x", "/surveys-admin", "/surveys/x/rating-x",
              "/s", "/s/", "/public", "/public/", "/pads", "/pads/", "/padx", "/boardx",
              "/internal/case-texts", "/internal/case-texts/", "/internal/x-texts/1",
              "/internal/case-texts/1/2", "/referrals//unit-reply", "/ui", "/uix/a",
              "/open311", "/open311x/a", "/ops/consumers", "/auth/me"}
    return sorted({s for p in seeds for s in _spellings(p)})


def test_a_path_without_a_token_is_let_through_as_every_pattern_tried_let_it(service):
    paths = _paths(service)
    assert len(paths) > 1000
    differ = [(path, method) for path in paths for method in ("GET", "POST")
              if service.let_through(path, method)
              != (service.old_public(path) or service.old_optional(path))]
    assert differ == []


def test_no_route_but_the_ones_meant_public_is_reached_without_a_token(service):
    reached_private = []
    for path in _paths(service):
        if not service.let_through(path, "GET"):
            continue
        meant = MEANT_PUBLIC[service.name] | MEANT_OPTIONAL[service.name] | set(COMMON)
        if service.routes_of(path) - meant:
            reached_private.append((path, sorted(service.routes_of(path) - meant)))
    assert reached_private == []


def test_every_route_not_meant_public_asks_for_a_token_by_any_method(service):
    meant = MEANT_PUBLIC[service.name] | MEANT_OPTIONAL[service.name] | set(COMMON)
    for template in service.templates:
        if template in meant:
            continue
        for path in _instances(template):
            for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"):
                assert not service.let_through(path, method), (template, path, method)


def test_a_root_path_does_not_open_a_route(service):
    # uvicorn puts its root_path before the path it hands the app; auth reads the whole
    # path, so a public pattern never matches a private route's path behind a prefix
    for template in service.templates:
        for path in _instances(template):
            for root in ("/api", "/s", "/public", "/ui"):
                through = service.let_through(root + path, "GET", root_path=root)
                assert through == (service.old_public(root + path)
                                   or service.old_optional(root + path)), (root, path)
