"""Where every ``sixstep`` command finds its servers: one resolution, said out loud, never a hang.

Each server (NATS, PostgreSQL, the three services) is taken from the first of:

1. the command line: ``sixstep --nats-url ... --database-url ... --intake-url ... COMMAND``
   (and a command's own ``--url`` / ``--intake``);
2. the environment: ``NATS_URL``, ``DATABASE_URL``, ``SIXSTEP_INTAKE_URL`` /
   ``SIXSTEP_FOLLOWUP_URL`` / ``SIXSTEP_FEEDBACK_URL`` (or ``HOST`` / ``INTAKE_PORT`` ...);
3. the endpoints ``make run`` wrote (``.state/endpoints.env``, or ``SIXSTEP_STATE_DIR``,
   or ``--state-dir``);
4. the settings' defaults (127.0.0.1 and the usual ports).

A command that uses servers says which on the first line of stderr (``--verbose``: where each
came from, and the ops token's). Before any client library gets a chance to retry forever,
each server the command needs is asked to answer (NATS: its ``INFO`` line; PostgreSQL: the
answer to an SSL request; a service: ``GET /health``) within ``PROBE_TIMEOUT_S``; one that does
not is an error naming the URL and what to do, exit code 2.

The ops routes need a token with the ops role: ``--token`` / ``SIXSTEP_TOKEN``, else
``OPS_TOKEN``, else (``ENVIRONMENT=development`` only) one minted here with the development
signing key, which is the key a ``make run`` without ``AUTH_KEYS`` verifies with.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from shared.settings import ServiceName, Settings, without_password

ENDPOINTS_FILE = "endpoints.env"
PROBE_TIMEOUT_S = 3.0
SERVICES: tuple[ServiceName, ...] = ("intake", "followup", "feedback")
EXIT_UNREACHABLE = 2

Part = Literal["nats", "database", "intake", "followup", "feedback"]
PARTS: tuple[Part, ...] = ("nats", "database", "intake", "followup", "feedback")
LABELS: dict[Part, str] = {"nats": "NATS", "database": "PostgreSQL", "intake": "intake",
                           "followup": "followup", "feedback": "feedback"}
#: The environment variable (and endpoints-file line) of each part.
VARIABLES: dict[Part, str] = {"nats": "NATS_URL", "database": "DATABASE_URL",
                              "intake": "SIXSTEP_INTAKE_URL",
                              "followup": "SIXSTEP_FOLLOWUP_URL",
                              "feedback": "SIXSTEP_FEEDBACK_URL"}
FLAGS: dict[Part, str] = {"nats": "--nats-url", "database": "--database-url",
                          "intake": "--intake-url", "followup": "--followup-url",
                          "feedback": "--feedback-url"}

err = Console(stderr=True, highlight=False, soft_wrap=True)


class ServerUnreachable(Exception):
    """A server the command needs did not answer in time."""


@dataclass
class Flags:
    """What the root command's options said (``sixstep --nats-url ... COMMAND``)."""

    urls: dict[Part, str] = field(default_factory=dict)
    state_dir: Path | None = None
    verbose: bool = False


@dataclass(frozen=True)
class Endpoint:
    part: Part
    url: str
    source: str  # "--nats-url", "environment NATS_URL", ".state/endpoints.env, ...", ...

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return without_password(self.url)


def write_endpoints(state_dir: Path, database_url: str, nats_url: str,
                    services: dict[ServiceName, str] | None = None) -> Path:
    """Where ``make run`` tells later commands its servers are. The URLs as given: a server
    given by the environment with its password in the URL (``nats://intake:pw@...``) keeps
    it here, for the later commands, so only the owner may read the file (redteam125: it was
    world-readable)."""
    state_dir.mkdir(parents=True, exist_ok=True)  # servers given by the environment: none yet
    path = state_dir / ENDPOINTS_FILE
    lines = [f"DATABASE_URL={database_url}", f"NATS_URL={nats_url}"]
    lines += [f"{VARIABLES[name]}={url}" for name, url in (services or {}).items()]
    path.touch(mode=0o600)
    path.chmod(0o600)  # an older make run's file, made readable by all
    path.write_text("\n".join(lines) + "\n")
    return path


def read_endpoints(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.strip().partition("=")
        if name and value and not name.startswith("#"):
            found[name] = value
    return found


_given = Flags()


def remember(flags: Flags) -> None:
    """The root command's options, for :func:`resolve` (one command per process; the root
    callback runs before each, so a test's CliRunner starts afresh each time)."""
    global _given
    _given = flags


def _flags() -> Flags:
    return _given


@dataclass
class Servers:
    """The settings a command runs with, and where each server in them came from."""

    settings: Settings
    endpoints: dict[Part, Endpoint]
    endpoints_file: Path
    verbose: bool = False

    def url(self, part: Part) -> str:
        return self.endpoints[part].url.rstrip("/")

    def service_urls(self, only: ServiceName | None = None) -> list[tuple[ServiceName, str]]:
        return [(s, self.url(s)) for s in SERVICES if only is None or s == only]

    def use(self, *parts: Part) -> Settings:
        """Say which servers the command uses (first line on stderr), make sure each answers
        within ``PROBE_TIMEOUT_S``, and return the settings; exit 2 naming the one that does
        not answer."""
        self.announce(*parts)
        for part in parts:
            try:
                probe(self.endpoints[part])
            except ServerUnreachable as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}")
                raise typer.Exit(EXIT_UNREACHABLE) from None
        return self.settings

    def announce(self, *parts: Part) -> None:
        chosen = [self.endpoints[p] for p in parts]
        sources = {e.source for e in chosen}
        if len(sources) == 1:
            listed = ", ".join(f"{LABELS[e.part]} {e.shown}" for e in chosen)
            err.print(f"servers from {sources.pop()}: {escape(listed)}")
        else:
            listed = ", ".join(f"{LABELS[e.part]} {e.shown} ({e.source})" for e in chosen)
            err.print(f"servers: {escape(listed)}")
        if self.verbose:
            err.print(f"  endpoints file: {self.endpoints_file}"
                      f"{'' if self.endpoints_file.is_file() else ' (none)'}; "
                      f"stream {self.settings.stream_name!r}, subjects "
                      f"{self.settings.subject_prefix}.>")

    def ops_headers(self, token: str | None = None) -> dict[str, str]:
        """Authorization for the ops routes: the given token, else OPS_TOKEN, else (in
        development only) a token with the ops role signed with the configured key."""
        source = "--token / SIXSTEP_TOKEN"
        if not token and self.settings.ops_token is not None:
            token, source = self.settings.ops_token.get_secret_value(), "OPS_TOKEN"
        if not token and self.settings.environment == "development":
            from shared.security.principals import Role
            from shared.security.tokens import issue_token

            token = issue_token(self.settings, "sixstep-cli", Role.OPS, None,
                                ttl=timedelta(minutes=10))
            source = "minted with the development signing key (ENVIRONMENT=development)"
        if self.verbose:
            err.print(f"  ops token: {source if token else 'none'}")
        return {"Authorization": f"Bearer {token}"} if token else {}


def resolve(**given: str | None) -> Servers:
    """The servers, by the rule at the top of this module; ``given``: a command's own flags
    (``intake="http://..."``) that override the root command's."""
    flags = _flags()
    folder = flags.state_dir or Path(os.environ.get("SIXSTEP_STATE_DIR") or ".state")
    path = folder / ENDPOINTS_FILE
    written = read_endpoints(path)
    defaults = Settings()
    file_label = f"{path}, written by make run"
    endpoints: dict[Part, Endpoint] = {}
    for part in PARTS:
        variable = VARIABLES[part]
        command_flag = given.get(part)
        if command_flag:
            endpoints[part] = Endpoint(part, command_flag, "the command line")
        elif part in flags.urls:
            endpoints[part] = Endpoint(part, flags.urls[part], FLAGS[part])
        elif os.environ.get(variable):
            endpoints[part] = Endpoint(part, os.environ[variable], f"environment {variable}")
        elif part in SERVICES and (set_by := _service_in_environment(part)):
            endpoints[part] = Endpoint(part, _service_default(defaults, part),
                                       f"environment {set_by}")
        elif written.get(variable):
            endpoints[part] = Endpoint(part, written[variable], file_label)
        else:
            url = (defaults.nats_url if part == "nats" else defaults.database_url
                   if part == "database" else _service_default(defaults, part))
            endpoints[part] = Endpoint(part, url, "the defaults")
    settings = defaults.model_copy(update={"nats_url": endpoints["nats"].url,
                                           "database_url": endpoints["database"].url})
    return Servers(settings, endpoints, path, flags.verbose)


def _service_in_environment(service: ServiceName) -> str | None:
    for name in (f"{service.upper()}_PORT", "HOST"):
        if os.environ.get(name):
            return name
    return None


def _service_default(settings: Settings, service: ServiceName) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port_for(service)}"


# ------------------------------------------------------------------------------- probes


def probe(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ServerUnreachable` unless the server answers within ``timeout``."""
    if endpoint.part == "nats":
        urls = [u.strip() for u in endpoint.url.split(",") if u.strip()]
        failures = []
        for url in urls:
            try:
                _probe_nats(url, timeout)
                return
            except OSError as exc:
                failures.append(_reason(exc))
        why = "; ".join(failures)
    elif endpoint.part == "database":
        try:
            _probe_postgres(endpoint.url, timeout)
            return
        except OSError as exc:
            why = _reason(exc)
    else:
        import httpx  # here: tail, replay, export, sql and rebuild ask no service (~0.08 s CPU)

        try:
            with httpx.Client(timeout=timeout, trust_env=False) as client:
                client.get(f"{endpoint.url.rstrip('/')}/health")
            return
        except httpx.HTTPError as exc:
            why = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    raise ServerUnreachable(
        f"{LABELS[endpoint.part]} at {endpoint.shown} did not answer within {timeout:g} s "
        f"({why}). It came from {endpoint.source}. {_advice(endpoint)}")


def _advice(endpoint: Endpoint) -> str:
    flag, variable = FLAGS[endpoint.part], VARIABLES[endpoint.part]
    if ENDPOINTS_FILE in endpoint.source:
        first = "Is `make run` still running? Start it again (it rewrites that file)"
    else:
        first = "Start the system with `make run`"
    return f"{first}, or name a running server with {flag} or {variable}."


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return exc.strerror or type(exc).__name__


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"x://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _probe_nats(url: str, timeout: float) -> None:
    """A NATS server greets every connection with its INFO line."""
    host, port = _host_port(url, 4222)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        greeting = sock.recv(5)
    if not greeting.startswith(b"INFO"):
        raise OSError(0, f"not a NATS server (it said {greeting[:20]!r})")


def _probe_postgres(url: str, timeout: float) -> None:
    """A PostgreSQL server answers an SSLRequest with one byte, S or N."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or host.startswith("/"):
        return  # a Unix socket (or libpq's defaults): the client library's own timeout holds
    with socket.create_connection((host, parts.port or 5432), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack("!ii", 8, 80877103))
        answer = sock.recv(1)
    if answer not in (b"S", b"N"):
        raise OSError(0, f"not a PostgreSQL server (it said {answer!r})")
