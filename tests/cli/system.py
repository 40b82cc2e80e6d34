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
import psycopg

from tools.devservers import NatsServer, free_port

REPO = Path(__file__).resolve().parents[2]  # tools/ is not installed: make run runs from here
#: A command that has not finished by then hangs: the test fails instead of waiting.
HANG_S = 30.0


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
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from shared.cli import main; main()", *args],
            cwd=cwd, env={"COLUMNS": "200", **(env or {})}, capture_output=True, text=True,
            timeout=HANG_S, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"sixstep {' '.join(args)} hung for {HANG_S:g} s; it printed "
                             f"{exc.stdout!r} {exc.stderr!r}") from None
    return Ran(done.returncode, done.stdout, done.stderr)


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
