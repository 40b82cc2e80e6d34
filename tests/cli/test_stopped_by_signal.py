"""A test run or `make run` that is SIGTERM'd or SIGHUP'd (a CI job cancelled, a terminal
closed) stops the NATS and PostgreSQL it started, as Ctrl-C does: nothing is left running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import process_gone

REPO = Path(__file__).resolve().parents[2]

INNER_TEST = '''
import json, os, signal
from pathlib import Path

from tools import devservers


def test_waits_to_be_stopped(nats_url, postgres_server_url):
    pids = Path(os.environ["SERVER_PIDS"])
    Path(f"{pids}.part").write_text(json.dumps(list(devservers._ADOPTED)))
    Path(f"{pids}.part").rename(pids)
    while True:
        signal.pause()  # until the run is stopped
'''


def _alive(pid: int) -> bool:
    return not process_gone(pid)


def _wait_for(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes],
              log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, f"ended before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} in {timeout:g} s:\n{log.read_text()}"
        time.sleep(0.1)


def _assert_gone(pids: list[int], proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.wait(90)  # an xdist controller gives its workers up to 60 s (tests/conftest.py)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"servers still running: {left}\n{log.read_text()}"


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _started(args: list[str], log: Path, *, sigint_ignored: bool = False
             ) -> Iterator[subprocess.Popen[bytes]]:
    """``sigint_ignored``: as a shell without job control starts `cmd &` (CI's `.ci/run`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env["SERVER_PIDS"] = str(log.with_suffix(".pids"))
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_ignore_sigint if sigint_ignored else None)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGTERM, []), (signal.SIGHUP, []),
                                              (signal.SIGTERM, ["-n", "1"])],
                         ids=["SIGTERM", "SIGHUP", "SIGTERM-xdist-controller"])
# The xdist run starts with SIGINT ignored, as CI starts the tests: its workers, told to exit,
# interrupt themselves with SIGINT; ignoring it, they were SIGKILLed with their servers left.
# One worker: the one test runs on one, and only it starts servers; a second (make test's
# -n) got no test, started none, and cost the run its start (~5 s of its 30 on CI's cores).
def test_a_test_run_stopped_by_a_signal_stops_its_servers(tmp_path: Path, sig: signal.Signals,
                                                          workers: list[str]) -> None:
    test = tmp_path / "test_inner.py"
    test.write_text(INNER_TEST)
    log = tmp_path / "pytest.log"
    pids_file = log.with_suffix(".pids")
    pids: list[int] = []
    with _started([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "tests.conftest", "-c", str(REPO / "pyproject.toml"),
                   *workers, "--basetemp", str(tmp_path / "inner"), str(test)],
                  log, sigint_ignored=bool(workers)) as proc:
        try:
            _wait_for(pids_file.exists, "servers", proc, log)
            pids = json.loads(pids_file.read_text())
            assert len(pids) == 2 and all(_alive(pid) for pid in pids)
            proc.send_signal(sig)
            _assert_gone(pids, proc, log)
        finally:
            _kill_leftovers(pids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_make_run_stopped_by_a_signal_stops_its_servers(tmp_path: Path,
                                                        sig: signal.Signals) -> None:
    state = tmp_path / "state"
    log = tmp_path / "make-run.log"
    pids: list[int] = []
    postmaster = state / "pg" / "pgdata" / "postmaster.pid"
    nats = state / "nats" / "nats-server.pid"
    with _started([sys.executable, "-m", "tools.run", "--no-services",
                   "--state-dir", str(state)], log) as proc:
        try:
            _wait_for(lambda: b"sixstep is running" in log.read_bytes(), "servers", proc, log)
            pids = [int(nats.read_text().split()[0]), int(postmaster.read_text().split()[0])]
            assert all(_alive(pid) for pid in pids)
            proc.send_signal(sig)
            _assert_gone(pids, proc, log)
            assert proc.returncode == 0, log.read_text()
        finally:
            _kill_leftovers(pids)
