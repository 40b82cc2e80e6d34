"""SIGTERM mid-load: the service finishes what it holds before it goes. Accepted writes are
committed and published, the batch a consumer was applying is applied and acknowledged, NATS
is drained, and the process exits well within a pod's grace period."""

from __future__ import annotations

from shared.bus.jetstream import connect
from shared.settings import Settings
from tests.faults.harness import Load, System, stored_positions
from tests.support import stream_envelopes


async def test_sigterm_mid_load_finishes_in_flight_work_and_exits_cleanly(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    intake = system.add("intake")
    await system.start()
    load = Load(intake.url, headers=auth_headers, pause_s=0.01, workers=6, give_up_s=5.0)
    load.start()
    await load.until_writes(120)
    # SIGTERM while writes are still coming; a process still there after 15 s (half a pod's
    # grace period) is killed, and its exit code says so (-9): no clock read here.
    code = await intake.stop(timeout=15)
    load._stop.set()
    for task in load._tasks:  # the writers lose their service: that is expected here
        task.cancel()
    assert code in (0, -15), intake.tail()  # uvicorn re-raises SIGTERM once it has stopped

    # Everything the store accepted before the stop is on the stream (the relay flushed).
    stored = await stored_positions(settings, "intake")
    published = sorted(e.position for e in await stream_envelopes(settings))
    assert published == stored, "every stored event published before exit"
    # The consumer acknowledged what it had fetched: nothing waits for ack_wait.
    nc = await connect(settings, "test-graceful")
    try:
        info = await nc.jetstream().consumer_info(settings.stream_name, "intake-cases")
    finally:
        await nc.close()
    assert info.num_ack_pending == 0, ("no batch left half done", info)
    log = intake.tail(400)
    assert '"event": "service.stopped"' in log and "Application shutdown complete" in log
