"""kill -9 each service in turn, mid-load, and start it again: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio

from shared.settings import Settings
from tests.faults.harness import Load, System, audit, available_services
from tests.support import bearer


async def test_kill_9_each_service_in_turn_mid_load(system: System, settings: Settings) -> None:
    services = available_services()
    for service in services:
        system.add(service)
    await system.start()
    load = Load(system["intake"].url, headers=bearer(settings))
    load.start()
    try:
        for service in services:
            await load.until_writes(load.writes + 40)
            system[service].kill9()
            await asyncio.sleep(0.3)  # writes keep coming while it is down
            await system[service].start()
        await load.until_writes(load.writes + 40)
    finally:
        await load.stop()
    report = await audit(settings, load, services=services)
    print(f"kill -9 {', '.join(services)}: {report}")
    assert report["writes"] >= 160
