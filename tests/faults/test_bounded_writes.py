"""PostgreSQL stops (``-m immediate``) for longer than WRITE_TIMEOUT_S under keyed load: every
write is answered within the bound (a client that waits the bound plus a little never times
out), a 503 ``store_unavailable`` write is not in the store until it is retried, and an
``outcome_unknown`` one is settled by its retry, with exactly one event for every key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.settings import Settings
from tests.faults.harness import System
from tests.faults.outage import KeyedLoad, run_outage
from tests.support import bearer
from tools.devservers import PostgresServer

pytestmark = pytest.mark.timeout(300)

BOUND_S = 2.0
#: What the client allows beyond the bound before it calls a write hung (network, scheduling
#: on a busy machine); not a claim about the server's speed.
SLACK_S = 4.0


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    # fsync off (tests only, see PostgresServer): the outage is a stop_immediately, a process
    # crash; what was committed is in the page cache and the restart recovers it.
    server = PostgresServer(tmp_path / "pg", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_store_outage_longer_than_the_bound_answers_every_write_honestly_and_in_time(
        postgres: PostgresServer, settings: Settings, system: System) -> None:
    admin = await asyncpg.connect(postgres.url)
    await admin.execute("CREATE DATABASE sixstep")
    await admin.close()
    settings = settings.model_copy(update={
        "database_url": postgres.url.rsplit("/", 1)[0] + "/sixstep"})
    system.settings = settings
    intake = system.add("intake", WRITE_TIMEOUT_S=str(BOUND_S))
    await system.start()
    load = KeyedLoad(intake.url, bearer(settings), client_timeout_s=BOUND_S + SLACK_S)
    report = await run_outage(settings, postgres, load, outage_s=3 * BOUND_S)
    print("\n".join(report.lines()))

    # Nothing hung: every attempt was answered, none by the client giving up.
    assert all(a.status is not None for a in load.answers), report.first
    assert all(p.first.kind in ("503 store_unavailable", "503 outcome_unknown")
               for p in load.parked), report.first
    assert all(p.first.retry_after for p in load.parked)
    assert report.first["503 store_unavailable"] > 0, "writes met the outage"
    # 503 store_unavailable: nothing was recorded (looked up once the writer had left every
    # batch of the outage behind, and before the retry).
    assert set(report.stored_before_retry.get("503 store_unavailable", {})) == {0}
    # Every parked key was accepted on retry, and is stored exactly once, as is every
    # key answered 2xx.
    assert all(kind.endswith(("-> 2xx", "-> 2xx replayed")) for kind in report.retried)
    assert all(set(v) == {1} for v in report.stored_after_retry.values())
    assert set(report.accepted_stored) == {1}
    # A store_unavailable key was absent, so its retry recorded it: not a replay.
    assert not any(k.startswith("503 store_unavailable") and k.endswith("replayed")
                   for k in report.retried)
