"""`sixstep demo` against a system that is still starting (`make run` just started: intake
answers /health before it is ready) waits for it, with a bound, and a request that fails
mid-day is said in a sentence: never a bare exit 1 with a traceback."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.cli.system import sixstep
from tests.support import serving


class _Intake(BaseHTTPRequestHandler):
    """Answers /health at once and /ready 503 ``not_ready_for`` times; then drops every write
    without an answer (a service that stopped mid-request)."""

    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/ready":
            with self.server.lock:
                self.server.ready_asked += 1
                starting = self.server.ready_asked <= self.server.not_ready_for
            if starting:
                self._answer(503, b'{"status": "starting"}')
            else:
                self._answer(200, b'{"status": "ready"}')
        else:
            self._answer(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.close_connection = True  # no answer at all


class _Server(ThreadingHTTPServer):
    def __init__(self, not_ready_for: int) -> None:
        super().__init__(("127.0.0.1", 0), _Intake)
        self.not_ready_for = not_ready_for
        self.ready_asked = 0
        self.lock = threading.Lock()


def intake(not_ready_for: int) -> contextlib.AbstractContextManager[_Server]:
    return serving(_Server(not_ready_for))


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_the_demo_waits_for_a_starting_intake_then_says_why_a_request_failed(
        tmp_path: Path) -> None:
    with intake(not_ready_for=3) as server:
        ran = sixstep(tmp_path, "demo", "--intake", _url(server), "--residents", "1",
                      "--ready-wait", "60")
    assert server.ready_asked == 4, "asked until it was ready"
    assert ran.code == 1, ran
    assert "Traceback" not in ran.out + ran.err
    assert "the demo stopped" in ran.out and "failed a request" in ran.out, ran


def test_the_demo_gives_up_on_an_intake_never_ready_with_the_reason(tmp_path: Path) -> None:
    with intake(not_ready_for=10**9) as server:
        ran = sixstep(tmp_path, "demo", "--intake", _url(server), "--residents", "1",
                      "--ready-wait", "1")
    assert ran.code == 2, ran
    assert "Traceback" not in ran.out + ran.err
    assert "was not ready after 1 s" in ran.out and "starting" in ran.out, ran
