"""Ctrl-C stops every server it started: a benchmark, `make bench` (run_all) and a test run,
each interrupted with one SIGINT once its servers and services are up, leave none of the
processes they started running (checked by PID, with its start time against PID reuse)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(400)


def _as_at_a_terminal() -> None:
    """Ctrl-C as a person's terminal delivers it: a test run started in the background by a
    non-interactive shell (``bash .ci/run &``) ignores SIGINT, and its children inherit that,
    so the command under test would never see the signal this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    """A command in its own session (the test's SIGINT is the only one it gets), its stderr
    read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     env=env if env is not None else dict(os.environ),
                                     preexec_fn=_as_at_a_terminal)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no line with {text!r}; exit {self.proc.poll()}:\n"
                                         + "\n".join(self.lines[-30:]))
                self._seen.wait(min(left, 1.0))

    def interrupt(self, timeout: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def descendants(self) -> dict[int, tuple[float, str]]:
        """Every process below this one now: pid -> (start time, command line and name: a
        fault test's service is a fork named after its module, tests/faults/forkserver.py)."""
        out: dict[int, tuple[float, str]] = {}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                out[child.pid] = (child.create_time(),
                                  " ".join(child.cmdline())[:120] + f" ({child.name()})")
            except psutil.NoSuchProcess:
                continue
        return out


@pytest.fixture
def commands() -> Iterator[list[Started]]:
    """The commands a test started; whatever a failed test left running is stopped by PID."""
    started: list[Started] = []
    yield started
    for command in started:
        if command.proc.poll() is None:
            below = command.descendants()
            command.interrupt(60)
            for pid, (created, _) in below.items():
                try:
                    child = psutil.Process(pid)
                    if child.create_time() == created:
                        child.kill()
                except psutil.NoSuchProcess:
                    continue


def still_running(started: dict[int, tuple[float, str]]) -> list[str]:
    alive = []
    for pid, (created, command) in started.items():
        try:
            child = psutil.Process(pid)
            if child.create_time() == created and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {command}")
        except psutil.NoSuchProcess:
            continue
    return alive


def assert_all_gone(started: dict[int, tuple[float, str]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (alive := still_running(started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"still running after Ctrl-C: {alive}"


def kinds(started: dict[int, tuple[float, str]]) -> set[str]:
    commands = [command for _, command in started.values()]
    found = {kind for kind in ("nats-server", "postgres", "services.")
             if any(kind in command for command in commands)}
    return found


def test_a_benchmark_stopped_with_ctrl_c_stops_its_servers_and_services(
        commands: list[Started]) -> None:
    bench = Started("benchmarks/scale_out.py", "--events", "1200", "--services", "followup",
                    "--repeat", "1")
    commands.append(bench)
    bench.wait_for_line("bench: followup worker up", timeout=240)
    started = bench.descendants()
    assert kinds(started) == {"nats-server", "postgres", "services."}, started
    code = bench.interrupt()
    assert code != 0, "interrupted, not finished"
    assert_all_gone(started)


def test_make_bench_stopped_with_ctrl_c_stops_the_benchmark_and_its_servers(
        commands: list[Started]) -> None:
    readme = (ROOT / "benchmarks" / "README.md").read_bytes()
    bench = Started("benchmarks/run_all.py", "--only", "scale_out.py")
    commands.append(bench)
    bench.wait_for_line("bench: servers up", timeout=240)
    started = bench.descendants()
    assert {"nats-server", "postgres"} <= kinds(started), started
    assert bench.interrupt() != 0
    assert_all_gone(started)
    assert (ROOT / "benchmarks" / "README.md").read_bytes() == readme, "figures left as they were"


def test_a_test_run_stopped_with_ctrl_c_stops_its_servers_and_services(
        tmp_path: Path, commands: list[Started]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    run = Started("-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
                  "tests/faults/test_kill9.py", env={**env, "PYTEST_DEBUG_TEMPROOT": str(tmp_path)})
    commands.append(run)
    deadline = time.monotonic() + 240
    while kinds(started := run.descendants()) != {"nats-server", "postgres", "services."}:
        assert run.proc.poll() is None and time.monotonic() < deadline, run.lines[-30:]
        time.sleep(0.2)
    assert run.interrupt() != 0
    assert_all_gone(started)
