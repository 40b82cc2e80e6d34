"""The fork server's own ends (tests/faults/forkserver.py): a Ctrl-C at the terminal and a
test run killed with -9 must leave no service behind and no service unwaited for."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx

from shared.settings import Settings
from tests.faults.harness import ForkServer, service_env
from tools.devservers import free_port


def test_a_ctrl_c_at_the_terminal_leaves_the_fork_server_to_its_test_run() -> None:
    """A terminal's Ctrl-C reaches the whole process group, the fork server too: it must not
    die of it (its test run would learn no service's end and SIGKILL each at once instead of
    waiting for its drain); it ends when the test run closes its stdin."""
    server = ForkServer()
    assert server.wait_ready(120), "the fork server did not start"
    os.kill(server.pid, signal.SIGINT)
    server.close()
    assert server.wait(60) == 0


def test_a_test_run_killed_with_9_leaves_no_service_of_the_fork_server(
    settings: Settings, tmp_path: Path
) -> None:
    """Its stdin closed (the test run gone without its exit handlers), the fork server stops
    its services before it ends: none is left running, orphaned."""
    server = ForkServer()
    port = free_port()
    env = {**service_env(settings), "INTAKE_PORT": str(port)}
    service = server.spawn("intake", env, tmp_path / "intake.log")
    try:
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            for _ in range(600):  # up to 60 s: the first answer is the barrier
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                        break
                assert service.poll() is None, (tmp_path / "intake.log").read_text()
                time.sleep(0.1)
            else:
                raise AssertionError("intake not ready")
        server.close()
        assert server.wait(60) == 0
        # Drained on SIGTERM (uvicorn re-raises it once stopped), its end told to the test run.
        assert service.wait(60) in (0, -15)
        try:
            os.kill(service.pid, 0)
        except ProcessLookupError:
            pass
        else:
            raise AssertionError(f"service {service.pid} outlived its fork server")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(service.pid, signal.SIGKILL)
