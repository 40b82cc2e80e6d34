"""An ops script tells from `sixstep`'s exit code alone whether all was well: a status that
printed only part of what it was asked for exits 2, as a command whose servers do not answer
(docs/analysts.md)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from shared.bus.consumer import REFUSED_KEY, RETRYING_KEY
from shared.bus.jetstream import ServerTooOld, ensure_streams_when_ready
from shared.runtime import replan_pending
from shared.runtime.calendars import CalendarPublic, CalendarReloadPublic, Calendars
from shared.runtime.replan_pending import ReplanPendingPublic
from shared.settings import Settings
from tests.cli.in_process import ran
from tests.support import auth_env
from tools.devservers import NatsServer, free_port

ROOT = Path(__file__).resolve().parents[2]

#: No command here may reach a server the test did not start (the defaults are 5432 / 4222).
CLOSED = {"DATABASE_URL": f"postgresql://sixstep@127.0.0.1:{free_port()}/sixstep"}


def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a port of its own while the test runs: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def one_service() -> Iterator[str]:
    """A service answering ``GET /ops/calendar`` as on Sunday 20 December 2026."""
    yield from _answering("GET", Calendars(Settings(environment="development", log_json=False))
                          .status(date(2026, 12, 20)).model_dump_json().encode())


def _answering(method: str, body: bytes) -> Iterator[str]:
    """A service answering every ``method`` request 200 with the JSON ``body``."""

    class Answering(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    setattr(Answering, f"do_{method}", Answering.answer)  # http.server's name: do_GET ...
    yield from _serving(Answering)


def test_calendar_status_with_one_service_down_exits_2_after_printing_the_others(
        one_service: str) -> None:
    env = {**CLOSED, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    alone = ran(["calendar", "status", "--url", one_service], env=env)
    assert alone.code == 0, alone
    down = f"http://127.0.0.1:{free_port()}"
    both = ran(["calendar", "status", "--url", one_service, "--url", down], env=env)
    assert both.code == 2, both
    assert "provisional" in both.out, both  # what the one that answered said is printed
    assert f"{down}: not reachable" in both.out and "1 of 2 services did not answer" in both.out
    # a password in a URL given is never printed (a proxy's basic auth, say)
    secret = f"http://ops:s3cr3t-pw@127.0.0.1:{free_port()}"
    masked = ran(["calendar", "status", "--url", one_service, "--url", secret], env=env)
    assert masked.code == 2, masked
    assert "s3cr3t-pw" not in masked.out + masked.err, masked
    assert "ops:***@127.0.0.1" in masked.out, masked


def test_ops_status_on_a_server_without_the_streams_exits_2(nats_url: str) -> None:
    status = ran(["ops", "status"],
                 env={**CLOSED, "NATS_URL": nats_url, "STREAM_NAME": "ELSEWHERE"})
    assert status.code == 2, status
    assert "stream ELSEWHERE: missing at" in status.out, status


@pytest.fixture
def another_program() -> Iterator[str]:
    """Not a sixstep service: a 404 "Not Found" at /ops/calendar (a proxy's, or a port another
    program holds), and at /other/ops/calendar a 200 with a JSON that is no calendar."""

    yield from _another_program("GET", lambda _: b"Not Found")


def _another_program(method: str, not_found: Callable[[str], bytes]) -> Iterator[str]:
    """A program that is no sixstep service, answering ``method``: at /other/... a 200 with
    a JSON of its own, elsewhere a 404 saying ``not_found(path)``."""

    class Other(BaseHTTPRequestHandler):
        def answer(self) -> None:
            found = self.path.startswith("/other/")
            body = b'{"status": "ok"}' if found else not_found(self.path)
            self.send_response(200 if found else 404)
            self.send_header("content-type", "application/json" if found else "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    setattr(Other, f"do_{method}", Other.answer)  # http.server's name: do_GET, do_POST
    yield from _serving(Other)


def test_calendar_status_beside_another_program_exits_2_not_said_to_have_no_calendar(
        one_service: str, another_program: str) -> None:
    """Only the service's own 404 says it has no working-day calendar; a 404 of another
    program was printed as that and exited 0, and a 200 of another program ended in a
    traceback (exit 1)."""
    env = {**CLOSED, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    for other in (another_program, f"{another_program}/other"):
        both = ran(["calendar", "status", "--url", one_service, "--url", other], env=env)
        assert both.code == 2, both
        assert "provisional" in both.out, both  # the one that answered is printed
        assert "no working-day calendar" not in both.out, both
        assert "1 of 2 services did not answer" in both.out, both


def test_ops_status_with_a_consumer_that_applies_nothing_exits_2(nats_url: str) -> None:
    """A durable refused its stream (made anew under its tracking rows: it applies nothing
    until its read model is rebuilt): printed in red, and exit 2, not 0."""
    env = {**CLOSED, "NATS_URL": nats_url, "STREAM_NAME": "REFUSING"}
    assert ran(["ops", "apply"], env=env).code == 0
    assert ran(["ops", "status"], env=env).code == 0  # streams there, no consumer

    async def refused() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_consumer("REFUSING", ConsumerConfig(
                durable_name="intake-cases", ack_policy=AckPolicy.EXPLICIT,
                metadata={REFUSED_KEY: "recreated: first sequence 1, tracked 42"}))
        finally:
            await nc.close()

    asyncio.run(refused())
    status = ran(["ops", "status"], env=env)
    assert "consumer intake-cases applies nothing" in status.out, status
    assert status.code == 2, status


def test_ops_status_with_a_consumer_retrying_for_ever_exits_2(nats_url: str) -> None:
    """A durable whose consumer hands its batches back, retried for ever (a command refused
    as unavailable: the vault's key bucket missing): printed in red with since when and on
    what, and exit 2; before, a consumer merely behind, exit 0."""
    env = {**CLOSED, "NATS_URL": nats_url, "STREAM_NAME": "RETRYING",
           "SUBJECT_PREFIX": "retrying"}
    assert ran(["ops", "apply"], env=env).code == 0

    async def retrying() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_consumer("RETRYING", ConsumerConfig(
                durable_name="feedback-intake", ack_policy=AckPolicy.EXPLICIT,
                metadata={RETRYING_KEY: "since 2026-12-20T02:00:00+00:00: Unavailable: "
                                        "the vault's key bucket 3 is missing"}))
        finally:
            await nc.close()

    asyncio.run(retrying())
    status = ran(["ops", "status"], env=env)
    assert "consumer feedback-intake hands its batches back" in status.out, status
    assert "key bucket 3 is missing" in status.out, status
    assert status.code == 2, status


def test_ops_status_prints_a_durables_names_and_texts_as_they_are(nats_url: str) -> None:
    """What a durable's metadata says is the error's own text, brackets and all: printed as
    it is, not read as rich's markup. Before, "[/vault]" ended the command (MarkupError, exit
    1, nothing of the status said) and "[bucket 3]" vanished from the line."""
    env = {**CLOSED, "NATS_URL": nats_url, "STREAM_NAME": "BRACKETS",
           "SUBJECT_PREFIX": "brackets"}
    assert ran(["ops", "apply"], env=env).code == 0
    said = "since 2026-12-20T02:00:00+00:00: Unavailable: [bucket 3] missing [/vault]"

    async def retrying() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_consumer("BRACKETS", ConsumerConfig(
                durable_name="feedback-intake", ack_policy=AckPolicy.EXPLICIT,
                metadata={RETRYING_KEY: said}))
        finally:
            await nc.close()

    asyncio.run(retrying())
    status = ran(["ops", "status"], env=env)
    assert said in " ".join(status.out.split()), status
    assert status.code == 2, status


@pytest.fixture(scope="module")
def nats_2_9(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's nats-server (2.9.10, its package's binary: ``OLD_NATS_SERVER``, else
    /usr/sbin/nats-server) on a port of its own; skipped where there is none."""
    binary = Path(os.environ.get("OLD_NATS_SERVER", "/usr/sbin/nats-server"))
    if not binary.is_file():
        pytest.skip(f"no nats-server before 2.10 at {binary} (OLD_NATS_SERVER)")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    if not version.strip().startswith("nats-server: v2.9."):
        pytest.skip(f"{binary} is {version.strip()}, not a 2.9 server")
    server = NatsServer(tmp_path_factory.mktemp("nats29"), binary=binary)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_a_nats_server_that_drops_durables_filters_is_refused_not_run_on(
        nats_2_9: str) -> None:
    """nats-server 2.9 takes a durable's subject filters and metadata without an error and
    drops them: every consumer would read every event (a split worker every partition), and
    a consumer retrying for ever would look merely behind in ``ops status``, exit 0. Refused
    instead, by ``ops apply``, ``ops status`` (exit 2, saying why) and a service's start
    (``ensure_streams``); before, all three went on as on 2.14."""
    env = {**CLOSED, "NATS_URL": nats_2_9, "STREAM_NAME": "OLD", "SUBJECT_PREFIX": "old"}
    for command in (["ops", "apply"], ["ops", "status"]):
        said = ran(command, env=env)
        assert said.code == 2, said
        assert "nats-server 2.9." in said.out and "older than 2.10" in said.out, said

    async def start() -> None:
        settings = Settings(nats_url=nats_2_9, stream_name="OLD", subject_prefix="old",
                            environment="development", log_json=False)
        nc = await nats.connect(nats_2_9)
        try:
            with pytest.raises(ServerTooOld, match="drops a durable consumer's subject filters"):
                await ensure_streams_when_ready(nc.jetstream(), settings, within_s=1)
            with pytest.raises(NotFoundError):  # nothing made on it
                await nc.jetstream().stream_info("OLD")
        finally:
            await nc.close()

    asyncio.run(start())


def test_a_service_started_on_a_nats_server_before_2_10_refuses_in_one_line_and_exits_2(
        nats_2_9: str, settings: Settings) -> None:
    """What an operator reads when a service (``python -m services.<name>.main``, as
    ``make run``, compose and Kubernetes start it) meets Debian's 2.9: the refusal in one
    line, exit 2, as a start-up refusal of its settings does. It was a JSON-escaped
    traceback of some 40 frames (uvicorn's "Application startup failed", exit 3) with the
    reason in its last line, and ``make run`` printed the frames' tail."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NATS_", "DATABASE_", "STREAM_", "SUBJECT_", "SCHEMA_"))}
    env.update({**auth_env(settings), "DATABASE_URL": settings.database_url,
                "NATS_URL": nats_2_9, "STREAM_NAME": "OLD", "SUBJECT_PREFIX": "old",
                "SCHEMA_PREFIX": settings.schema_prefix, "FOLLOWUP_PORT": str(free_port()),
                "LOG_JSON": "true"})
    done = subprocess.run([sys.executable, "-m", "services.followup.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "sixstep followup: refusing to start: nats-server 2.9." in done.stderr, said
    assert "older than 2.10" in done.stderr, said
    assert "Traceback" not in said and "Application startup failed" not in said, said


@pytest.fixture
def an_echoing_program() -> Iterator[str]:
    """Not a sixstep service: a web framework's 404 that names the path (Express's "Cannot
    POST /ops/calendar/reload", Spring's, a proxy's), and at /other/ a 200 with a JSON that
    is no reload's answer."""

    yield from _another_program("POST", lambda path: f"Cannot POST {path}".encode())


def test_calendar_reload_at_another_program_exits_2_not_said_to_have_no_calendar(
        an_echoing_program: str) -> None:
    """Only the service's own 404 says it has no working-day calendar (nothing to reload), as
    ``calendar status`` reads it: a 404 of another program that names the path was printed as
    that and exited 0, a year's new schedule reloaded nowhere; a 200 of another program ended
    in a traceback (KeyError, exit 1)."""
    env = {**CLOSED, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    for other, said in ((an_echoing_program, "nothing changed: Cannot POST"),
                        (f"{an_echoing_program}/other", "another program")):
        reload = ran(["calendar", "reload", "--url", other], env=env)
        assert reload.code == 2, reload
        assert "no working-day calendar" not in reload.out, reload
        assert said in reload.out, reload


def test_the_services_own_404_still_says_it_has_no_working_day_calendar() -> None:
    """The problem body a service without a calendar answers (``shared.http.ops``) is read as
    such by ``calendar status`` and ``reload``; a text 404 naming the path is not."""
    import httpx

    from shared.cli.calendar import _no_calendar
    from shared.http.errors import error_response

    own = error_response(404, "not_found", "this service has no working-day calendar")
    assert _no_calendar(httpx.Response(404, content=own.body))
    assert not _no_calendar(httpx.Response(404, text="Cannot GET /ops/calendar"))
    assert not _no_calendar(httpx.Response(404, json=["working-day calendar"]))
    assert not _no_calendar(httpx.Response(200, content=own.body))


@pytest.fixture
def a_service_whose_replanning_failed() -> Iterator[str]:
    """Feedback answering ``POST /ops/calendar/reload`` on New Year's Eve 2026 at 23:30 in
    Shanghai: reloaded, one rectification's revision not taken in time, a retry scheduled."""
    status = Calendars(Settings(environment="development", log_json=False)).status(
        date(2026, 12, 31))
    body = CalendarReloadPublic(
        service="feedback", changed=["*"], failed=1, retry_scheduled=True,
        replanned={"feedback": {"rectifications_checked": 1, "deadlines_revised": 0,
                                "rectifications_failed": 1}},
        calendar=CalendarPublic(service="feedback", **status.model_dump())
    ).model_dump_json().encode()
    yield from _answering("POST", body)


def _calendar(command: str, url: str) -> tuple[Any, str]:
    """``sixstep calendar <command> --url <url>``: what it did, and its words on one line."""
    env = {**CLOSED, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    done = ran(["calendar", command, "--url", url], env=env)
    return done, " ".join(done.out.split())


def test_calendar_reload_with_an_item_not_re_planned_says_the_service_retries_and_exits_1(
        a_service_whose_replanning_failed: str) -> None:
    """A reload whose re-planning failed for an item (replan56): counted under its part and
    said in red with the service's own retry, exit 1 (2 stays for a service not reloaded).
    Before, the answer counted no failure and the command exited 0: a cron job read success."""
    reload, flat = _calendar("reload", a_service_whose_replanning_failed)
    assert reload.code == 1, reload
    assert "rectifications failed 1" in flat, reload
    assert "1 item(s) not re-planned" in flat and "retries by itself" in flat, reload


@pytest.fixture
def a_service_with_a_re_planning_pending() -> Iterator[str]:
    """Feedback answering ``GET /ops/calendar`` on Sunday 20 December 2026: a re-planning
    pending since the 18th, whose rectification is recounted into 2028, a year no calendar
    covers (CALENDAR_PROVISIONAL_YEARS=0), at every try."""
    status = Calendars(Settings(environment="development", log_json=False)).status(
        date(2026, 12, 20))
    at = datetime(2026, 12, 18, 2, 0, tzinfo=UTC)
    pending = ReplanPendingPublic(
        since=at, attempts=3, failed=1, last_error="CalendarNotCovered: no working-day "
        "calendar for year 2028 (1 item)", last_try_at=at + timedelta(minutes=2),
        next_try_at=at + timedelta(minutes=3), first_day=date(2027, 12, 31),
        last_day=date(2027, 12, 31), fingerprints={"*": "0123abcd"})
    yield from _answering("GET", CalendarPublic(
        service="feedback", replan_pending=pending, **status.model_dump()
    ).model_dump_json().encode())


def test_calendar_status_says_a_re_planning_pending_and_what_to_do(
        a_service_with_a_re_planning_pending: str) -> None:
    """A re-planning that fails at every try until a person acts (replan57): status says since
    when, the tries, the last error and what to do. Before, only the service's log said it,
    one line per item per try. Its moments in the center's time (02:00 UTC is ten in the
    morning in Shanghai; until stop 56 printed "02:00:00 UTC"), and exit 1 while it is
    pending (it exited 0: a cron job read success)."""
    env = {**CLOSED, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    status = ran(["calendar", "status", "--url", a_service_with_a_re_planning_pending],
                 env=env)
    assert status.code == 1, status
    flat = " ".join(status.out.split())
    assert ("re-planning pending since 2026-12-18 10:00:00+08:00: 3 tries, 1 item(s) failed "
            "at the last (2026-12-18 10:02:00+08:00), next try") in flat, status
    assert "official days to re-plan: 2027-12-31..2027-12-31" in flat, status
    assert "CalendarNotCovered: no working-day calendar for year 2028 (1 item)" in flat
    assert "add that year's official schedule to the holidays file" in flat, status


@pytest.fixture
def a_re_planning_nobody_tries() -> Iterator[str]:
    """Feedback answering ``GET /ops/calendar``: a re-planning whose next try was due an hour
    ago (its API replica scaled down; the worker that would lead calendar-replan down too)."""
    status = Calendars(Settings(environment="development", log_json=False)).status(
        date(2026, 12, 20))
    due = datetime.now(UTC) - timedelta(hours=1)
    pending = ReplanPendingPublic(
        since=due - timedelta(days=2), attempts=40, failed=1,
        last_error="TimeoutError:  (1 item)", last_try_at=due - timedelta(minutes=1),
        next_try_at=due, first_day=date(2026, 12, 31), last_day=date(2027, 1, 1),
        fingerprints={"*": "0123abcd"})
    yield from _answering("GET", CalendarPublic(
        service="feedback", replan_pending=pending, **status.model_dump()
    ).model_dump_json().encode())


def test_calendar_status_says_a_pending_re_planning_nobody_tries_is_overdue(
        a_re_planning_nobody_tries: str) -> None:
    """Its next try an hour late: nobody is trying it, and status says so with the day, not
    'next try 15:40:00' as if it were coming (redteam123: the time alone, a day or a month
    ago, read as the next try to come, and 'retried by the service' as all was well)."""
    status, flat = _calendar("status", a_re_planning_nobody_tries)
    assert status.code == 1, status  # pending: 1 (0 until stop 56)
    assert "no replica is trying it" in flat, status
    assert "calendar-replan" in flat and "calendar.replan_not_adopted" in flat, status


def test_ops_status_says_a_re_planning_pending_in_the_centers_time_and_exits_1(
        settings: Settings) -> None:
    """Feedback's re-planning failed at 23:30 on New Year's Eve in Shanghai (15:30 UTC) and is
    still pending: ``ops status`` prints it from the service's schema, in the center's time
    (the year's last day, not "15:30 UTC"), and exits 1 as ``calendar status`` does. Until
    stop 56 it said nothing of it (only ``calendar status``, over HTTP, and /ready did)."""
    schema = settings.schema_for("feedback")
    eve = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)

    async def failed(*, row: bool = True) -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            for statement in replan_pending.DDL:
                await conn.execute(statement)
            if not row:  # feedback ran, nothing pending
                return
            await replan_pending.failed(conn, "feedback", (date(2027, 1, 1), date(2027, 1, 4)),
                                        {"*": "0123abcd"}, 2, "TimeoutError: (2 items)",
                                        first_s=1.0, most_s=60.0)
            await conn.execute("UPDATE calendar_replan_pending SET since = $1, "
                               "last_try_at = $1", eve)
        finally:
            await conn.close()

    env = {**CLOSED, "DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url,
           "STREAM_NAME": settings.stream_name, "SUBJECT_PREFIX": settings.subject_prefix,
           "SCHEMA_PREFIX": settings.schema_prefix}
    assert ran(["ops", "apply"], env=env).code == 0
    asyncio.run(failed(row=False))
    quiet = ran(["ops", "status"], env=env)
    assert quiet.code == 0 and "calendar re-plannings pending: none" in quiet.out, quiet
    asyncio.run(failed())
    status = ran(["ops", "status"], env=env)
    flat = " ".join(status.out.split())
    assert status.code == 1, status
    assert ("feedback: re-planning pending since 2026-12-31 23:30:00+08:00: 1 tries, 2 item(s) "
            "failed at the last (2026-12-31 23:30:00+08:00)") in flat, status
    assert "official days to re-plan: 2027-01-01..2027-01-04" in flat, status
    assert "TimeoutError: (2 items)" in flat, status
