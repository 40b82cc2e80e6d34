"""`make run` for the CLI's tests: the whole system started by ``tools/run.py`` (its own NATS,
its own database on the test run's PostgreSQL, the three services on free ports), and the
``sixstep`` command run as a user runs it: a process of its own, in the folder `make run` was
started in, with an empty environment."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg

from tools.devservers import NatsServer, free_port

REPO = Path(__file__).resolve().parents[2]  # tools/ is not installed: make run runs from here
#: A command that used no CPU for this long (nor did what it started) hangs: the test fails
#: instead of waiting. Not the wall time since it started: four commands side by side on a host
#: at load 25 each had a fifteenth of a core, ~1 s of start-up and work took them over 30 s, and
#: the guard called export and sql hung while they were still busy (in their work, or their
#: interpreter's finalization after the last line was printed). A stuck command (waiting on a
#: server that never answers, a thread or a child holding the pipes) uses none.
HANG_S = 30.0
#: A command still busy after this long is stuck in a loop: it fails too.
RUNAWAY_S = 300.0


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def first_err_line(self) -> str:
        return self.err.splitlines()[0] if self.err else ""

    @property
    def flat(self) -> str:
        return " ".join((self.out + " " + self.err).split())


def sixstep(cwd: Path, *args: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> Ran:
    """``sixstep ARGS`` in ``cwd`` with nothing in the environment but ``env``."""
    done = run_watched([sys.executable, "-c", "from shared.cli import main; main()", *args],
                       cwd=cwd, env={"COLUMNS": "200", **(env or {})}, stdin=stdin,
                       what=f"sixstep {' '.join(args)}")
    return Ran(done.returncode, done.stdout, done.stderr)


def _cpu_s(proc: psutil.Process) -> float:
    """CPU seconds of ``proc`` and of every process it started that is still there (or that
    it waited for)."""
    total = 0.0
    for one in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = one.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def run_watched(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                stdin: str | None = None, what: str = "", hang_s: float = HANG_S,
                runaway_s: float = RUNAWAY_S) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end, its output captured; an AssertionError (what it printed
    so far in it) once it used no CPU for ``hang_s`` (``HANG_S``), or after ``runaway_s``.
    It runs in a session of its own: a hung one is killed with all it started."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    watched = psutil.Process(proc.pid)
    started = last_progress = time.monotonic()
    used = -1.0
    given: str | None = stdin
    while True:
        try:
            out, err = proc.communicate(input=given, timeout=0.5)
            return subprocess.CompletedProcess(argv, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            given = None  # sent once: communicate keeps sending the rest
        now, cpu = time.monotonic(), _cpu_s(watched)
        if cpu > used:
            used, last_progress = cpu, now
        if now - last_progress >= hang_s or now - started >= runaway_s:
            why = (f"used no CPU for {hang_s:g} s" if now - last_progress >= hang_s
                   else f"was still busy after {runaway_s:g} s")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"{what or argv} hung: it {why} ({now - started:.0f} s "
                                 f"after it started, {used:.1f} s of CPU); it printed "
                                 f"{out!r} {err!r}")


def sixstep_each(cwd: Path, commands: Iterable[tuple[str, ...]],
                 env: dict[str, str] | None = None) -> list[Ran]:
    """``sixstep`` once per command, the processes side by side (each is ~0.5 s of start-up
    CPU, and a closed port's wait: 16 in a row were most of a serial CI run's slowest CLI
    test); the answers in the commands' order. Only for commands that do not depend on each
    other."""
    commands = list(commands)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: sixstep(cwd, *args, env=env), commands))


@dataclass(frozen=True)
class System:
    folder: Path  # where `make run` was started: .state/endpoints.env is there
    services: dict[str, str]
    nats_url: str
    database_url: str


def _create_database(server_url: str) -> str:
    name = f"sixstep_cli_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rpartition('/')[0]}/{name}"


def _drop_database(server_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def make_run(folder: Path, postgres_server_url: str) -> Iterator[System]:
    """``python -m tools.run`` in ``folder``, on a NATS and a database of its own."""
    nats = NatsServer(folder / "nats-data")
    nats.start()
    database_url = _create_database(postgres_server_url)
    ports = {name: free_port() for name in ("intake", "followup", "feedback")}
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats.url,
           "LOG_JSON": "false", "PYTHONPATH": str(REPO),
           **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()}}
    for name in ("ENVIRONMENT", "AUTH_KEYS", "OPS_TOKEN", "STREAM_NAME", "SUBJECT_PREFIX",
                 "SCHEMA_PREFIX"):
        env.pop(name, None)
    log = (folder / "make-run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tools.run"], cwd=folder, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    services = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    try:
        deadline = time.monotonic() + 90
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            for url in services.values():
                while True:
                    assert proc.poll() is None, (folder / "make-run.log").read_text()
                    assert time.monotonic() < deadline, (folder / "make-run.log").read_text()
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{url}/health").status_code == 200:
                            break
                    time.sleep(0.2)
        yield System(folder, services, nats.url, database_url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # tools.run stops its services, then itself
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        nats.stop()
        _drop_database(postgres_server_url, database_url)
