"""``make run`` (``python -m tools.run``): the whole system on this machine, starting NATS and
PostgreSQL if needed.

Servers come from DATABASE_URL / NATS_URL when those are set, else they are started under the
state folder (``nats/``, ``pg/``) and kept there between runs. The three services run as child
processes, feedback as two (``feedback``: its API, ``ROLES=api``; ``feedback-workers``: its
relay, consumers and schedulers, ``ROLES=workers``, on a free port of its own for /health and
/metrics), as compose and k8s run it, so what is measured is what runs: requested surveys
need not wait behind feedback's HTTP requests on one event loop (on two cores no layout was
measurably faster: ``benchmarks/end_to_end.py --layout``, benchmarks/README.md). Follow-up's
policy fan-out runs in a process of its own too (``followup-fanout``, ``ROLES=fanout``;
``followup`` has ``ROLES=api,workers``), as the deployments run it: its bursts of writes wait
behind no relay and no consumer (``benchmarks/followup_fanout.py``).
Each line a process prints goes to stdout prefixed with its name, and is also appended to
``<state-dir>/logs/<name>.log``. Ctrl-C or SIGTERM stops the services, then the
servers this command started, and exits 0; a service that dies on its own stops everything and
exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, TextIO

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.bus.jetstream import connect, ensure_streams_when_ready
from shared.bus.revocations import bucket_stream, ensure_bucket
from shared.cli.servers import write_endpoints
from shared.settings import ServiceName, Settings, without_password
from tools.devservers import (
    DevServerError,
    ManagedServer,
    ensure_servers,
    free_port,
    port_is_free,
)

SERVICES: tuple[ServiceName, ...] = ("intake", "followup", "feedback")
#: The processes of a service that is split, as the deployments run it: (name suffix,
#: ``ROLES``) each, the first on the service's port. Feedback's workers apart from its API
#: (benchmarks/end_to_end.py ``--layout``); follow-up's policy fan-out apart from its API and
#: workers (benchmarks/followup_fanout.py). A service not named runs as one process.
SPLIT: dict[ServiceName, tuple[tuple[str, str], ...]] = {
    "followup": (("", "api,workers"), ("-fanout", "fanout")),
    "feedback": (("", "api"), ("-workers", "workers")),
}
STOP_GRACE_S = 10.0
TAIL_LINES = 40



class ServiceFailed(Exception):
    """A service did not come up, or went away while it should have been running."""


class _Service:
    """One service child process: its output pump, its log tail and its health URL.
    ``roles``: ``ROLES`` for the process (empty: the service's default, both)."""

    def __init__(self, name: str, service: ServiceName, port: int, log_path: Path,
                 roles: str = "") -> None:
        self.name = name
        self.service = service
        self.port = port
        self.log_path = log_path
        self.roles = roles
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.proc: asyncio.subprocess.Process | None = None
        self.pump: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def failure(self, what: str) -> ServiceFailed:
        tail = "\n".join(self.tail) or "(it printed nothing)"
        return ServiceFailed(f"service {self.name} {what}; last lines of its output "
                             f"({self.log_path}):\n{tail}")

    async def spawn(self, env: dict[str, str]) -> None:
        if self.roles:
            env = {**env, "ROLES": self.roles, f"{self.service.upper()}_PORT": str(self.port)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{self.service}.main",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, limit=1 << 20)
        self.pump = asyncio.create_task(self._pump(self.proc.stdout))

    async def _pump(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        prefix = f"{self.name:<17}| "
        # Line-buffered: an operator's ``tail -f`` sees each line as the service writes it.
        with self.log_path.open("a", encoding="utf-8", buffering=1) as log_file:
            while raw := await stream.readline():
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(line)
                log_file.write(line + "\n")
                _write(sys.stdout, prefix + line)

    async def wait_healthy(self, within_s: float) -> None:
        """Until ``GET /health`` answers 200; raises if the process exits or time runs out."""
        try:
            async with asyncio.timeout(within_s):
                await self._poll_health()
        except TimeoutError:
            raise self.failure(
                f"did not answer GET /health with 200 within {within_s:.0f} s") from None

    async def _poll_health(self) -> None:
        assert self.proc is not None
        async with httpx.AsyncClient(trust_env=False, timeout=1.0) as client:
            while self.proc.returncode is None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise self.failure(f"exited with code {self.proc.returncode} while starting")

    async def stop(self) -> None:
        """SIGTERM, wait, SIGKILL; then let the output pump drain."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                _write(sys.stderr, f"{self.name} ignored SIGTERM for {STOP_GRACE_S:.0f} s; "
                                   "killing it")
                proc.kill()
                await proc.wait()
        if self.pump is not None:
            await self.pump


def _write(stream: TextIO, line: str) -> None:
    with contextlib.suppress(BrokenPipeError):
        stream.write(line + "\n")
        stream.flush()


def _table(database_url: str, nats_url: str, servers: list[ManagedServer],
           services: list[_Service]) -> Table:
    table = Table(title="sixstep is running (Ctrl-C stops it)")
    table.add_column("part", no_wrap=True)
    table.add_column("listens on", no_wrap=True,
                     min_width=len(without_password(database_url)))
    table.add_column("also")
    table.add_column("pid", no_wrap=True)
    for service in services:
        pid = str(service.proc.pid) if service.proc else ""
        also = "/docs" if not service.roles or "api" in service.roles else "/metrics"
        table.add_row(service.name, f"{service.base_url}", f"{service.base_url}{also}", pid)
    started = {server.url: server for server in servers}
    for part, url in (("NATS", nats_url), ("PostgreSQL", database_url)):
        server = started.get(url)
        also = f"data in {server.data_dir}" if server else "given by the environment"
        table.add_row(part, without_password(url), also, str(server.pid) if server else "")
    return table


class _Runner:
    def __init__(self, settings: Settings, state_dir: Path, with_services: bool,
                 startup_timeout: float) -> None:
        self.settings = settings
        self.state_dir = state_dir.resolve()
        self.with_services = with_services
        self.startup_timeout = startup_timeout
        self.stop_requested = asyncio.Event()
        self.servers: list[ManagedServer] = []
        self.services: list[_Service] = []
        self.console = Console()
        if not self.console.is_terminal:  # piped: do not cut URLs at 80 columns
            self.console = Console(width=120)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP (the terminal closed) stops it as Ctrl-C does: by default it would end at
        # once and leave its servers and services running. Under nohup (SIGHUP ignored) it
        # runs on.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if sig is signal.SIGHUP and signal.getsignal(sig) is signal.SIG_IGN:
                continue
            loop.add_signal_handler(sig, self.stop_requested.set)
        try:
            await self._start_and_watch()
            return 0
        except (DevServerError, ServiceFailed) as error:
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
            return 1
        finally:
            await self._stop_all()

    async def _start_and_watch(self) -> None:
        if self.with_services:
            self._check_ports()
        given = self.settings.model_fields_set
        database_url, nats_url, self.servers = await asyncio.to_thread(
            ensure_servers, self.state_dir,
            self.settings.database_url if "database_url" in given else None,
            self.settings.nats_url if "nats_url" in given else None)
        write_endpoints(self.state_dir, database_url, nats_url,
                        {name: f"http://127.0.0.1:{self.settings.port_for(name)}"
                         for name in SERVICES} if self.with_services else None)
        if not self.stop_requested.is_set():
            await self._unless_stopped(self._apply_streams(nats_url))
        if self.with_services and not self.stop_requested.is_set():
            await self._start_services(database_url, nats_url)
        if self.stop_requested.is_set():
            return
        self.console.print(_table(database_url, nats_url, self.servers, self.services))
        exits = [asyncio.create_task(s.proc.wait()) for s in self.services if s.proc]
        if not exits:  # --no-services: the servers run until we are stopped
            await self.stop_requested.wait()
            return
        try:
            await self._unless_stopped(asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED))
        finally:
            for task in exits:
                task.cancel()
        for service in self.services:
            if service.proc and service.proc.returncode is not None:
                raise service.failure(f"exited unexpectedly with code {service.proc.returncode}")

    async def _apply_streams(self, nats_url: str) -> None:
        """What `sixstep ops apply` does before the services in compose and Kubernetes: the
        streams created, or aligned with this checkout's definitions. A service creates a
        missing stream but never updates one (the shipped NATS forbids it: docs/security.md),
        and `.state` kept from an older checkout may hold streams defined otherwise (a subject
        added since: its events refused)."""
        settings = self.settings.model_copy(update={"nats_url": nats_url})
        try:
            nc = await connect(settings, "sixstep-make-run", reconnect=False)
            try:
                done = await ensure_streams_when_ready(nc.jetstream(), settings)
                # and the signed-out tokens bucket (one made the old way: docs/security.md)
                done[bucket_stream(settings)] = await ensure_bucket(nc.jetstream(), settings)
            finally:
                await nc.close()
        except Exception as exc:  # said in one line, as a server that does not start
            raise ServiceFailed(f"the streams could not be made on NATS "
                                f"{without_password(nats_url)}: {type(exc).__name__}: {exc}"
                                ) from None
        _write(sys.stdout, "streams: " + ", ".join(f"{name} {what}"
                                                  for name, what in done.items()))

    def _check_ports(self) -> None:
        for name in SERVICES:
            port = self.settings.port_for(name)
            if not port_is_free(port):
                raise ServiceFailed(f"port {port} for service {name} is already in use "
                                    f"(set {name.upper()}_PORT to use another)")

    async def _start_services(self, database_url: str, nats_url: str) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.services = []
        for name in SERVICES:
            port = self.settings.port_for(name)
            if name not in SPLIT:
                self.services.append(_Service(name, name, port, logs / f"{name}.log"))
                continue
            for i, (suffix, roles) in enumerate(SPLIT[name]):
                process = f"{name}{suffix}"
                self.services.append(_Service(process, name, port if i == 0 else free_port(),
                                              logs / f"{process}.log", roles))
        env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url,
               "HOST": self.settings.host, "PYTHONUNBUFFERED": "1",
               **{f"{name.upper()}_PORT": str(self.settings.port_for(name))
                  for name in SERVICES}}
        if "survey_link_base" not in self.settings.model_fields_set:
            # The links the workers send and the clerk's QR code lead to feedback's API, on
            # the port it was given here: the setting's default names 8003, which with
            # FEEDBACK_PORT set is nobody's, or another `make run`'s feedback on this machine.
            env["SURVEY_LINK_BASE"] = f"http://127.0.0.1:{self.settings.port_for('feedback')}/s"
        for service in self.services:
            await service.spawn(env)
        waits = [asyncio.create_task(s.wait_healthy(self.startup_timeout))
                 for s in self.services]
        try:
            await self._unless_stopped(asyncio.gather(*waits))
        finally:
            for task in waits:
                task.cancel()

    async def _unless_stopped(self, work: Awaitable[object]) -> None:
        """Await ``work`` (re-raising its error) unless a stop is requested first."""
        work_task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait([work_task, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work_task.done():
            work_task.result()
            return
        work_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work_task

    async def _stop_all(self) -> None:
        if self.services:
            self.console.print("stopping services…")
            await asyncio.gather(*(s.stop() for s in self.services))
        for server in reversed(self.servers):
            self.console.print(f"stopping {server.name}…")
            await asyncio.to_thread(server.stop)


app = typer.Typer(name="run", add_completion=False)


@app.command()
def run(
    state_dir: Annotated[Path, typer.Option(
        help="Where started servers keep their data, and where service logs go.")] = Path(".state"),
    no_services: Annotated[bool, typer.Option(
        "--no-services",
        help="Only make sure NATS (with the streams) and PostgreSQL are there.")] = False,
    startup_timeout: Annotated[float, typer.Option(
        help="Seconds each service gets to answer GET /health.")] = 60.0,
) -> None:
    """Run NATS, PostgreSQL and the three services here; print where each listens."""
    runner = _Runner(Settings(), state_dir, not no_services, startup_timeout)
    raise typer.Exit(asyncio.run(runner.run()))


if __name__ == "__main__":
    app()
