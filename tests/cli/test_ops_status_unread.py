"""``sixstep ops status`` and ``ops apply`` where what they read does not answer as asked:
exit 1 says "a calendar re-planning is pending" since stop 56, so a crash's exit 1 (a
traceback) and a false "none" (exit 0) are both read wrongly by a cron job (redteam127).

- A DATABASE_URL whose password holds a '#' not percent-encoded: the status of the bus, then
  a traceback quoting part of the password ("Port could not be cast to integer value as
  's3'"), exit 1. Now: "not read", no piece of the password, the bus's exit code.
- The database of another system, or a SCHEMA_PREFIX that is not the services': "pending:
  none", exit 0, while the services' rows wait elsewhere. Now: "not read", naming the schemas.
- A service's migration holding the table (ACCESS EXCLUSIVE): ``ops status`` waited for as
  long as it ran. Now: "could not be read" after ``READ_WAIT_S``.
- A NATS cluster with no quorum (one node of three up: it takes connections and answers no
  JetStream request): ``ops apply`` waited, then a traceback, exit 1; ``ops status`` a
  traceback at once. Now: one line each, exit 2, as a server that does not answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from shared.bus import jetstream
from shared.cli import ops
from shared.runtime import replan_pending
from shared.settings import Settings
from tests.cli.in_process import ran
from tools.devservers import NatsServer, free_port

#: No command here may reach a server the test did not start (the defaults are 5432 / 4222).
CLOSED = {"DATABASE_URL": f"postgresql://sixstep@127.0.0.1:{free_port()}/sixstep"}


def _env(settings: Settings, **changes: str) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url,
            "STREAM_NAME": settings.stream_name, "SUBJECT_PREFIX": settings.subject_prefix,
            "SCHEMA_PREFIX": settings.schema_prefix, **changes}


def test_ops_status_with_a_password_that_does_not_parse_says_not_read_and_no_piece_of_it(
        settings: Settings) -> None:
    port = settings.database_url.rpartition(":")[2].partition("/")[0]
    env = _env(settings, DATABASE_URL=f"postgresql://sixstep:s3#c@ret@127.0.0.1:{port}/x")
    assert ran(["ops", "apply"], env=env).code == 0
    status = ran(["ops", "status"], env=env)
    flat = " ".join(status.out.split())
    assert status.code == 0, status  # the bus's: healthy
    assert "calendar re-plannings pending: not read" in flat, status
    assert "percent-encode" in flat, status
    assert "s3" not in status.out + status.err and "c@ret" not in status.out + status.err


def test_ops_status_in_a_database_without_the_services_schemas_does_not_say_none(
        settings: Settings) -> None:
    env = _env(settings)
    assert ran(["ops", "apply"], env=env).code == 0
    status = ran(["ops", "status"], env=env)  # no service ever ran on these schemas
    flat = " ".join(status.out.split())
    assert "pending: none" not in flat, status
    assert "calendar re-plannings pending: not read" in flat, status
    assert settings.schema_for("feedback") in flat and "SCHEMA_PREFIX" in flat, status
    assert status.code == 0, status  # the bus's, as when PostgreSQL does not answer


@pytest.fixture(scope="module")
def cluster_without_quorum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One node of a three-node cluster whose two others never come: clients connect,
    JetStream has no meta leader."""
    node = NatsServer(Path(tmp_path_factory.mktemp("lone")) / "n1", cluster_name="sixstep",
                      routes=[f"nats://127.0.0.1:{free_port()}" for _ in range(2)])
    node.start(wait_healthy=False)
    try:
        yield node.url
    finally:
        node.stop()


def test_ops_apply_and_status_on_a_cluster_without_quorum_exit_2_in_one_line(
        cluster_without_quorum: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jetstream, "JETSTREAM_WAIT_S", 1.0, raising=False)  # of 30 s
    env = {**CLOSED, "NATS_URL": cluster_without_quorum, "STREAM_NAME": "LONE",
           "SUBJECT_PREFIX": "lone"}
    for command in (["ops", "apply"], ["ops", "status"]):
        said = ran(command, env=env)  # a traceback raises here
        flat = " ".join(said.out.split())
        assert said.code == 2, said
        assert f"JetStream at {cluster_without_quorum} did not answer" in flat, said
        assert "no meta leader" in flat, said


def test_ops_status_beside_a_migration_holding_the_table_says_it_could_not_read_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "READ_WAIT_S", 0.5, raising=False)
    schema = settings.schema_for("feedback")
    held, done = threading.Event(), threading.Event()

    async def migrating() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            for statement in replan_pending.DDL:
                await conn.execute(statement)
            async with conn.transaction():
                await conn.execute("LOCK TABLE calendar_replan_pending IN ACCESS EXCLUSIVE MODE")
                held.set()
                await asyncio.to_thread(done.wait)
        finally:
            await conn.close()

    migration = threading.Thread(target=asyncio.run, args=(migrating(),))
    migration.start()
    asking = ThreadPoolExecutor(1)
    try:
        assert held.wait(30), "the migration's lock"
        env = _env(settings)
        assert ran(["ops", "apply"], env=env).code == 0
        status = asking.submit(ran, ["ops", "status"], env=env).result(timeout=120)
    finally:
        done.set()  # a status still waiting (before) goes on once the lock is gone
        migration.join()
        asking.shutdown(wait=True)
    flat = " ".join(status.out.split())
    assert "feedback: a re-planning pending could not be read (LockNotAvailableError" in flat, \
        status
    assert status.code == 0, status  # the bus's
