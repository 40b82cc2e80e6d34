"""PostgreSQL restarts under the running services (a throwaway server this test starts, never
the machine's): writes during the outage are refused with 503 and retried, /ready says the
store is down, and afterwards nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.settings import Settings
from tests.faults.harness import SERVICES, Load, System, audit
from tests.support import bearer, wait_until
from tools.devservers import PostgresServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    # fsync off (tests only, see PostgresServer): a fast shutdown checkpoints to the page
    # cache, which the restart reads; no OS crash is part of this test.
    server = PostgresServer(tmp_path / "pg", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_postgres_restarts_under_the_services_mid_load(
        postgres: PostgresServer, settings: Settings, tmp_path: Path) -> None:
    admin = await asyncpg.connect(postgres.url)
    await admin.execute("CREATE DATABASE sixstep")
    await admin.close()
    settings = settings.model_copy(update={"database_url": postgres.url.rsplit("/", 1)[0]
                                           + "/sixstep"})
    system = System(settings, tmp_path)
    services = SERVICES
    for service in services:
        system.add(service)
    try:
        await system.start()
        t0 = time.monotonic()
        marks: dict[str, float] = {}
        load = Load(system["intake"].url, headers=bearer(settings))
        load.start()
        try:
            await load.until_writes(40)
            await asyncio.to_thread(postgres.stop)  # fast shutdown: every connection is cut
            async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                ready = await client.get(f"{system['intake'].url}/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["store"] != "ok"
            retried = load.retries

            async def refused() -> bool:
                return load.retries > retried
            await wait_until(refused, timeout=10, what="a write refused (and retried) while "
                                                         "PostgreSQL is down")
            await asyncio.to_thread(postgres.start)
            marks["postgres back"] = time.monotonic() - t0
            await load.until_writes(load.writes + 60, timeout=90)
            marks["60 more writes"] = time.monotonic() - t0
        finally:
            await load.stop()
        for replica in system.replicas.values():
            await replica.wait_ready(30)
        marks["ready"] = time.monotonic() - t0
        report = await audit(settings, load, services=services, timeout=90)
        marks["audited"] = time.monotonic() - t0
        assert load.retries > 0, "some writes met the outage"
        print(f"postgres restarted under {', '.join(services)}: {report}, seconds: "
              + ", ".join(f"{k} {v:.1f}" for k, v in marks.items()))
    except BaseException:
        print(system.tails())
        raise
    finally:
        await system.stop()
