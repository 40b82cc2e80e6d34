"""The fault tests' harness: services as real processes, a steady load, and the final audit.

* ``System`` runs services with ``python -m services.<name>.main`` (each replica its own
  process, port and log file) and can SIGKILL, restart or stop any of them.
* ``Load`` writes case stories (open, hear, concerns, resolve, reopen, resolve) through intake's
  HTTP API at a steady pace. A write that fails (service down, store down, timeout) is retried
  with the same Idempotency-Key until it is accepted, so every story finishes, and every
  accepted write is remembered with the position intake answered.
* ``audit`` is the final check: every accepted write is on the stream exactly once, each
  service's log is on the stream once and in order, every durable consumer has applied every
  event of its subjects (its tracking records reach the last event of every case), nothing
  was dead-lettered, and intake's read model shows each event applied exactly once (one
  timeline row per event, ``reopen_count`` equal to the reopenings: a second application of
  an event would add to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from shared.analytics.reading import subject_matches
from shared.bus.jetstream import connect
from shared.contracts import Envelope
from shared.settings import Settings
from tests.support import auth_env, dead_letters, stream_messages
from tools.devservers import adopt_process, free_port

ROOT = Path(__file__).resolve().parents[2]
#: Every service: a fault test runs them all (a missing one is an import error, never a
#: quietly smaller test).
SERVICES = ("intake", "followup", "feedback")
CENTER = "SH-PD-HUAMU"


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process for one test's settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "NATS_URL", "CONSUMER_PARTITIONS", "ROLES")}
    env.update({
        "DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url,
        "STREAM_NAME": settings.stream_name, "SUBJECT_PREFIX": settings.subject_prefix,
        "SCHEMA_PREFIX": settings.schema_prefix, "PARTITIONS": str(settings.partitions),
        "STREAM_REPLICAS": str(settings.stream_replicas),
        "CONSUMER_MAX_DELIVER": str(settings.consumer_max_deliver),
        "CONSUMER_BACKOFF_S": "[" + ",".join(map(str, settings.consumer_backoff_s)) + "]",
        "CONSUMER_BATCH": "200", "LOG_LEVEL": "INFO", "LOG_JSON": "true",
        "FOLLOWUP_SCHEDULER_INTERVAL_S": "2", "FEEDBACK_TICK_S": "2",
        "SURVEY_TOKEN_SECRET": "fault-tests-survey-token-secret-0123456789",
        "PYTHONUNBUFFERED": "1",
        **auth_env(settings),  # the services accept the tests' tokens (tests.support.bearer)
    })
    env.update(extra)
    return env


#: The services are forks of one process that imported them once (``tests/faults/forkserver.py``:
#: ~1.5 s of CPU less at every start); ``FAULT_SERVICES_FORKED=0`` starts each as
#: ``python -m services.<name>.main`` again.
FORKED = os.environ.get("FAULT_SERVICES_FORKED", "1") != "0"


class Forked:
    """A service process forked by the fork server, as much of ``subprocess.Popen`` as the
    harness and ``adopt_process`` use: its exit status comes from the server, its parent."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid, timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._server.exit_code(self.pid, timeout)
            if code is None:
                gone = " (its fork server is gone: its end cannot be known)" \
                    if self._server.told_all else ""
                raise subprocess.TimeoutExpired(f"services pid {self.pid}{gone}", timeout or 0)
            self.returncode = code
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The test run's fork server (``python -m tests.faults.forkserver``), started with the
    first service and stopped at exit; its children are stopped at exit by their PIDs before
    it (``adopt_process``, newest first)."""

    def __init__(self) -> None:
        self._proc = adopt_process(subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkserver"], cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        self._lock = threading.Lock()  # one request at a time: answers come in order
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._exited: dict[int, int] = {}
        self.ready = False  # it has imported the services
        self._told_all = False  # its stdout is closed: every answer it gave has been read
        assert self._proc.stdout is not None
        threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True,
                         name="fault-forkserver").start()

    def _read(self, out: IO[bytes]) -> None:
        for raw in out:
            word, *rest = raw.decode().split()
            with self._changed:
                if word == "ready":
                    self.ready = True
                elif word == "started":
                    self._started.append(int(rest[0]))
                elif word == "exited":
                    self._exited[int(rest[0])] = int(rest[1])
                self._changed.notify_all()
        with self._changed:
            self._told_all = True
            self._changed.notify_all()

    def _alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def told_all(self) -> bool:
        with self._changed:
            return self._told_all

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_ready(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.ready or not self._alive(), timeout)

    def close(self) -> None:
        """As the test run's end does (killed with -9 included): its stdin closed."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()

    def wait(self, timeout: float) -> int:
        return self._proc.wait(timeout)

    def spawn(self, service: str, env: dict[str, str], log: Path) -> Forked:
        request = json.dumps({"service": service, "env": env, "cwd": str(ROOT),
                              "log": str(log)}) + "\n"
        with self._lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(request.encode())
            self._proc.stdin.flush()
            with self._changed:
                if not self._changed.wait_for(lambda: self._started or not self._alive(), 120):
                    raise AssertionError("the fork server did not answer within 120 s")
                if not self._started:
                    raise AssertionError(f"the fork server exited with {self._proc.poll()}")
                return Forked(self, self._started.pop(0))

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            # Its end read, or the server gone and every answer of it read (not its exit alone:
            # the reader may not have got to its last lines yet).
            self._changed.wait_for(lambda: pid in self._exited or self._told_all, timeout)
            return self._exited.get(pid)


_FORK_SERVER: list[ForkServer] = []


def forkserver() -> ForkServer:
    """The run's fork server, started on first use (again if it is gone)."""
    if not _FORK_SERVER or not _FORK_SERVER[0]._alive():
        _FORK_SERVER[:] = [ForkServer()]
    return _FORK_SERVER[0]


@dataclass
class ServiceProcess:
    """One replica of one service, as its own OS process."""

    service: str
    label: str
    env: dict[str, str]
    port: int
    log_path: Path
    #: A fork of the fork server (the tests), or ``python -m`` of its own (the benchmarks).
    forked: bool = FORKED
    proc: subprocess.Popen[bytes] | Forked | None = None
    starts: int = 0
    #: Where the log stood when the last start began: what that start said follows it.
    log_from: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        env = {**self.env, f"{self.service.upper()}_PORT": str(self.port)}
        try:
            self.log_from = self.log_path.stat().st_size
        except OSError:
            self.log_from = 0
        if self.forked:
            self.proc = adopt_process(forkserver().spawn(self.service, env, self.log_path))
            self.starts += 1
            return
        log = self.log_path.open("ab")
        try:
            # Stopped at exit however the test run ends (Ctrl-C included).
            self.proc = adopt_process(subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}.main"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        finally:
            log.close()
        self.starts += 1

    def _port_taken(self) -> bool:
        """Whether the last start ended because its port was bound meanwhile: ``free_port``
        finds a free port, and another process of the run (an xdist worker's server) may
        bind it before this one does (a CI run of stop 55: intake exited with 3, "address
        already in use", at the run's busy start)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_from)
                return b"address already in use" in log.read()
        except OSError:
            return False

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        moved = 0
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    if moved < 3 and self._port_taken():
                        moved += 1  # started again on another port, said in its log
                        self.port = free_port()
                        self.spawn()
                        continue
                    raise AssertionError(f"{self.label} exited with {self.proc.returncode}:\n"
                                         f"{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.label} not ready after {timeout:.0f} s:\n"
                                         f"{self.tail()}")
                await asyncio.sleep(0.1)

    async def start(self) -> None:
        self.spawn()
        await self.wait_ready()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: drain), then SIGKILL after ``timeout``; the exit code."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        return proc.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class System:
    settings: Settings
    logs: Path
    replicas: dict[str, ServiceProcess] = field(default_factory=dict)
    forked: bool = FORKED

    def add(self, service: str, label: str | None = None, **env: str) -> ServiceProcess:
        label = label or service
        replica = ServiceProcess(service, label, service_env(self.settings, **env), free_port(),
                                 self.logs / f"{label}.log", forked=self.forked)
        self.replicas[label] = replica
        return replica

    def __getitem__(self, label: str) -> ServiceProcess:
        return self.replicas[label]

    async def start(self) -> None:
        for replica in self.replicas.values():
            replica.spawn()
        await asyncio.gather(*(r.wait_ready() for r in self.replicas.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas.values()))

    def tails(self) -> str:
        return "\n".join(f"--- {label} ---\n{r.tail(25)}" for label, r in self.replicas.items())


# ---------------------------------------------------------------------------------- the load


@dataclass
class Accepted:
    case_id: str
    version: int
    position: int
    step: str


@dataclass
class Load:
    """Case stories written at a steady pace, each write retried until it is accepted."""

    intake_url: str
    headers: dict[str, str] = field(default_factory=dict)  # Authorization: tests.support.bearer
    workers: int = 3
    pause_s: float = 0.08
    give_up_s: float = 60.0
    accepted: dict[str, Accepted] = field(default_factory=dict)
    retries: int = 0
    stories: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    STORY = (
        ("open", "", lambda i: {"center_id": CENTER, "counter_id": f"w{i % 4}",
                                "clerk_id": f"clerk-{i % 7}",
                                "service_item": "MI-MEDICAL-REIMBURSEMENT",
                                "correlation_id": f"visit-{i}"}),
        ("hear", "/hear", lambda i: {"words": f"第{i}位居民：报销还没到账"}),
        ("concerns", "/concerns", lambda i: {"emotion": "anxious", "needs": ["reimbursement"]}),
        ("resolve", "/resolve", lambda i: {"outcome": "resolved", "emotion_defused": True}),
        ("reopen", "/reopen", lambda i: {"reason": "the money still did not arrive"}),
        ("resolve-again", "/resolve", lambda i: {"outcome": "resolved",
                                                 "emotion_defused": True}),
    )

    @property
    def writes(self) -> int:
        return len(self.accepted)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(w)) for w in range(self.workers)]

    async def stop(self) -> None:
        """Finish the stories under way (their writes retried until accepted), then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def until_writes(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.writes < n:
            for task in self._tasks:
                if task.done():
                    task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.writes} of {n} writes accepted")
            await asyncio.sleep(0.05)

    async def _worker(self, worker: int) -> None:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False,
                                     headers=self.headers) as client:
            while not self._stop.is_set():
                i = self.stories
                self.stories += 1
                case_id = ""
                for step, path, body in self.STORY:
                    key = f"story-{i:05d}-{step}"
                    url = (f"{self.intake_url}/cases" if step == "open"
                           else f"{self.intake_url}/cases/{case_id}{path}")
                    answer = await self._write(client, url, key, body(i))
                    case_id = answer["id"]
                    self.accepted[key] = Accepted(answer["id"], answer["version"],
                                                  answer["position"], step)
                    await asyncio.sleep(self.pause_s)

    async def _write(self, client: httpx.AsyncClient, url: str, key: str,
                     body: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.give_up_s
        while True:
            try:
                r = await client.post(url, json=body, headers={"Idempotency-Key": key})
                if r.status_code in (200, 201):
                    return dict(r.json())
                if r.status_code < 500 and r.status_code != 409:
                    raise AssertionError(f"{key}: {r.status_code} {r.text}")
                # 409 only as a lost race with our own retry; 5xx: the store or bus is away.
            except httpx.HTTPError:
                pass
            self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} not accepted within {self.give_up_s:.0f} s")
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------- the audit


@dataclass
class LogEntry:
    seq: int
    subject: str
    envelope: Envelope


async def read_log(settings: Settings) -> list[LogEntry]:
    return [LogEntry(m.metadata.sequence.stream, m.subject, Envelope.model_validate_json(m.data))
            for m in await stream_messages(settings)]


async def durable_consumers(settings: Settings) -> dict[str, list[str]]:
    """Every durable consumer on the test's stream with its filter subjects."""
    nc = await connect(settings, "fault-audit")
    try:
        try:
            infos = await nc.jetstream().consumers_info(settings.stream_name)
        except NotFoundError:
            return {}
        return {i.name: list(i.config.filter_subjects or [i.config.filter_subject or ">"])
                for i in infos if i.config.durable_name}
    finally:
        await nc.close()


async def durable_states(settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """What the server says of each durable: delivered, pending, waiting for an ack, handed
    out again (what a test that found a consumer behind needs to tell why)."""
    nc = await connect(settings, "fault-audit")
    try:
        js = nc.jetstream()
        out: dict[str, str] = {}
        for name in names:
            try:
                i = await js.consumer_info(settings.stream_name, name)
            except NatsError as exc:
                out[name] = f"{type(exc).__name__}: {exc}"
                continue
            out[name] = (f"delivered up to {i.delivered.stream_seq if i.delivered else 0}, "
                         f"ack floor {i.ack_floor.stream_seq if i.ack_floor else 0}, "
                         f"pending {i.num_pending}, unacked {i.num_ack_pending}, "
                         f"redelivered {i.num_redelivered}, "
                         f"max_deliver {i.config.max_deliver}")
        return out
    finally:
        await nc.close()


def service_of(consumer: str) -> str:
    return consumer.split("-", 1)[0]


async def unapplied(settings: Settings, log: list[LogEntry],
                    consumers: dict[str, list[str]]) -> dict[str, int]:
    """Per durable consumer: how many cases' last event it has not applied yet."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        behind: dict[str, int] = {}
        for name, filters in consumers.items():
            expected: dict[uuid.UUID, int] = {}
            for entry in log:
                if any(subject_matches(f, entry.subject) for f in filters):
                    expected[entry.envelope.partition_key] = entry.seq
            schema = settings.schema_for(service_of(name))  # type: ignore[arg-type]
            rows = await conn.fetch(
                f'SELECT key, seq FROM "{schema}".consumer_tracking WHERE consumer = $1', name)
            tracked = {r["key"]: r["seq"] for r in rows}
            behind[name] = sum(1 for k, s in expected.items() if tracked.get(k, 0) < s)
        return behind
    finally:
        await conn.close()


#: How often the audit looks again while the log settles. Each look reads the whole log and
#: every consumer's tracking, and "settled" is two looks in a row that agree, so a look every
#: 0.5 s made every audit wait 0.5-1 s after the log had settled.
AUDIT_POLL_S = 0.1


@dataclass
class Settling:
    """When the audit's looks say the log has settled: two looks in a row that each found
    everything published and applied, with the log the same length in both.

    One clean look is not enough, nor one clean look after a look that merely counted as many
    events: a look reads the log, then the stores, then the consumers' tracking, so a consumer
    that commits an event's effect and the derived event it records (one transaction) between
    the store's read and the tracking's read is seen caught up with the derived event neither
    on the stream nor in the store. The look before that one found the consumer behind."""

    last_len: int = -1
    last_clean: bool = False

    def look(self, log_len: int, clean: bool) -> bool:
        settled = clean and self.last_clean and log_len == self.last_len
        self.last_len, self.last_clean = log_len, clean
        return settled


async def wait_all_applied(settings: Settings, services: Iterable[str],
                           timeout: float = 60.0) -> tuple[list[LogEntry], dict[str, list[str]]]:
    """Until every service's stored events are on the stream and every consumer has applied
    everything of its subjects (derived events of follow-up and feedback included, so also
    until the log has settled)."""
    deadline = time.monotonic() + timeout
    settling = Settling()
    services = list(services)
    while True:
        try:
            log = await read_log(settings)
            consumers = await durable_consumers(settings)
        except NatsError:  # a cluster still electing leaders after a fault: ask again
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        unpublished: dict[str, int] = {}
        for service in services:
            on_stream = {e.envelope.position for e in log if e.envelope.service == service}
            unpublished[service] = len(set(await stored_positions(settings, service))
                                       - on_stream)
        behind = await unapplied(settings, log, consumers) if consumers else {}
        clean = not any(unpublished.values()) and not any(behind.values())
        if settling.look(len(log), clean):
            return log, consumers
        if time.monotonic() > deadline:
            states = await durable_states(settings, [n for n, b in behind.items() if b])
            raise AssertionError(f"not everything applied after {timeout:.0f} s: stored but "
                                 f"not on the stream {unpublished}; cases behind per "
                                 f"consumer: {behind}; the server's view of those: {states}")
        await asyncio.sleep(AUDIT_POLL_S)


async def audit(settings: Settings, load: Load, *, services: Iterable[str],
                timeout: float = 60.0, late_cases: Iterable[uuid.UUID] = ()) -> dict[str, Any]:
    """The final check of a fault test; returns a few figures for the test's report."""
    services = list(services)
    log, consumers = await wait_all_applied(settings, services, timeout)

    # Every accepted write is on the stream exactly once, where intake said it is.
    by_version: dict[tuple[str, int], list[LogEntry]] = defaultdict(list)
    for entry in log:
        e = entry.envelope
        by_version[(e.service + ":" + str(e.aggregate_id), e.aggregate_version)].append(entry)
    for key, write in load.accepted.items():
        found = by_version.get((f"intake:{write.case_id}", write.version), [])
        assert len(found) == 1, f"accepted write {key} is on the stream {len(found)} times"
        assert found[0].envelope.position == write.position, \
            f"{key} answered {write} but is at position {found[0].envelope.position}"

    # Each service's log: every stored event on the stream once, in the store's order.
    for service in services:
        # The services keep working (schedulers, follow-on events) while we look: take the
        # store's positions now, then wait until the stream has caught up with that snapshot,
        # and compare everything up to it.
        stored = await stored_positions(settings, service)
        deadline = time.monotonic() + timeout
        while True:
            current = await read_log(settings)
            positions = [e.envelope.position for e in current
                         if e.envelope.service == service and e.envelope.position <= max(
                             stored, default=0)]
            if set(positions) >= set(stored) or time.monotonic() > deadline:
                break
            await asyncio.sleep(AUDIT_POLL_S)
        assert positions == stored, (
            f"{service}'s stream differs from its store: missing "
            f"{sorted(set(stored) - set(positions))[:10]}, extra "
            f"{sorted(set(positions) - set(stored))[:10]}, in order "
            f"{positions == sorted(positions)}, unique {len(set(positions)) == len(positions)}"
            f"{_first_disorder(positions)}")
    assert all(len(v) == 1 for v in by_version.values()), "an event is on the stream twice"

    # Each consumer has applied all of its events (checked by wait_all_applied), and none
    # was given up on.
    letters = await dead_letters(settings)
    assert letters == [], [(m.headers or {}).get("Sixstep-Reason") for m in letters]
    assert {service_of(c) for c in consumers} >= set(services), consumers

    # Intake's read model: each event applied exactly once.
    intake = [e.envelope for e in log if e.envelope.service == "intake"]
    await assert_intake_view_exact(settings, intake, late_cases)
    return {"writes": load.writes, "events": len(log), "consumers": len(consumers),
            "retries": load.retries}


async def stored_positions(settings: Settings, service: str) -> list[int]:
    """The positions of a service's stored events (its outbox), in order. A position can be
    skipped by a transaction that rolled back, so the stream must match these, not 1..n."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            f'SELECT notification_id FROM "{settings.schema_for(service)}".'  # type: ignore[arg-type]
            f'"{service}_events" ORDER BY notification_id')
    finally:
        await conn.close()
    return [r["notification_id"] for r in rows]


async def assert_intake_view_exact(settings: Settings, events: list[Envelope],
                                   late_cases: Iterable[uuid.UUID] = ()) -> None:
    """One timeline row per event; each case row at its last version with its reopenings.
    ``late_cases`` had an event applied after their later ones (a dead letter replayed):
    their row is left out of the version check."""
    schema = settings.schema_for("intake")
    conn = await asyncpg.connect(settings.database_url)
    try:
        timeline = {(r["case_id"], r["version"]) for r in await conn.fetch(
            f'SELECT case_id, version FROM "{schema}".case_timeline')}
        cases = {r["case_id"]: r for r in await conn.fetch(
            f'SELECT case_id, version, reopen_count, status FROM "{schema}".cases')}
    finally:
        await conn.close()
    on_log = {(e.case_id, e.aggregate_version) for e in events}
    assert timeline == on_log, (
        f"intake's timeline differs from the log: missing {sorted(on_log - timeline)[:10]}, "
        f"extra {sorted(timeline - on_log)[:10]}")
    last: dict[uuid.UUID, Envelope] = {}
    reopened: dict[uuid.UUID, int] = defaultdict(int)
    for e in events:
        assert e.case_id is not None
        last[e.case_id] = e
        reopened[e.case_id] += e.type == "CaseReopened"
    assert set(cases) == set(last), "one row per case"
    late = set(late_cases)
    for case_id, e in last.items():
        if case_id in late:
            continue
        row = cases[case_id]
        assert row["version"] == e.aggregate_version, f"case {case_id} misses an event"
        assert row["reopen_count"] == reopened[case_id], \
            f"case {case_id}: reopen applied {row['reopen_count']} times, " \
            f"{reopened[case_id]} on the log"


def _first_disorder(positions: list[int]) -> str:
    """Where the stream's order first departs from the store's, with what is around it."""
    for i in range(1, len(positions)):
        if positions[i] < positions[i - 1]:
            return f"; first out of order at stream index {i}: {positions[max(0, i - 8):i + 8]}"
    return ""
