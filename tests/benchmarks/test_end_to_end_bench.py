"""``benchmarks/end_to_end.py`` drives whole cases from wrk and counts, for the maximum and for
each step alike, the writes answered in the run's middle (wrk's ``done`` reads the window the
script counted)."""

from __future__ import annotations

import contextlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from benchmarks.common import wrk
from benchmarks.end_to_end import drive_cases

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class Counter(BaseHTTPRequestHandler):
    """A counter's intake, as far as wrk sees it: each write answered with the case's id and
    its version; what each case was sent is kept in order."""

    protocol_version = "HTTP/1.1"
    cases: dict[str, list[str]]
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        parts = self.path.strip("/").split("/")
        with self.lock:
            if parts == ["cases"]:
                case_id = str(uuid.uuid4())
                self.cases[case_id] = ["open"]
            else:
                case_id = parts[1]
                self.cases[case_id].append(parts[2])
            version = len(self.cases[case_id])
        body = orjson.dumps({"id": case_id, "version": version})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Quiet(ThreadingHTTPServer):
    request_queue_size = 128  # wrk opens every connection at once

    def handle_error(self, *args: object) -> None:
        pass  # wrk hangs up on the writes in flight when its run ends


@contextlib.contextmanager
def counter() -> Iterator[tuple[str, dict[str, list[str]]]]:
    cases: dict[str, list[str]] = {}
    handler = type("Handler", (Counter,), {"cases": cases})
    server = Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", cases
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_wrk_reports_the_answers_a_script_counted_in_its_own_window() -> None:
    script = 'window_answers, window_ms = 7, 500\nrequest = function() return wrk.format("POST",' \
             ' "/cases", {["Content-Type"] = "application/json"}, "{}") end\n'
    with counter() as (base, _):
        result = wrk(base, script, seconds=1, connections=1)
    assert result.window_rate == 14.0
    assert result.requests > 0


@pytest.mark.parametrize("writes_per_s", [0.0, 300.0], ids=["maximum", "paced"])
def test_the_benchmark_drives_whole_cases_and_counts_only_the_runs_middle(
        writes_per_s: float) -> None:
    with counter() as (base, cases):
        run = drive_cases(base, '"resident-1"', writes_per_s, 1, "bench-test")
        answered = sum(len(steps) for steps in cases.values())
    assert all(steps == ["open", "hear", "resolve"][:len(steps)] for steps in cases.values())
    assert 0 < run.resolved <= sum(steps == ["open", "hear", "resolve"]
                                   for steps in cases.values())
    # The window is 3/4 of the run: fewer answers than the whole run's, never more.
    assert 0 < run.rate * 0.75 <= run.writes <= answered
    assert run.failed == 0
