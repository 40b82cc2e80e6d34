"""kill -9 each service in turn, mid-load, and start it again: nothing lost, nothing doubled."""

from __future__ import annotations

from shared.settings import Settings
from tests.faults.harness import SERVICES, Load, System, audit
from tests.support import bearer, wait_until


async def while_down(load: Load, service: str) -> None:
    """The load goes on while ``service`` is down: with intake down, until a write was refused
    and retried; with another service down, until more writes were accepted."""
    if service == "intake":
        before = load.retries

        async def refused() -> bool:
            return load.retries > before
        await wait_until(refused, what="a write refused while intake is down")
    else:
        await load.until_writes(load.writes + 10)


async def test_kill_9_each_service_in_turn_mid_load(system: System, settings: Settings) -> None:
    for service in SERVICES:
        system.add(service)
    await system.start()
    load = Load(system["intake"].url, headers=bearer(settings))
    load.start()
    try:
        for service in SERVICES:
            await load.until_writes(load.writes + 40)
            system[service].kill9()
            await while_down(load, service)
            await system[service].start()
        await load.until_writes(load.writes + 40)
    finally:
        await load.stop()
    report = await audit(settings, load, services=SERVICES)
    print(f"kill -9 {', '.join(SERVICES)}: {report}")
    assert report["writes"] >= 160
