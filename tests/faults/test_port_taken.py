"""The harness starts a service on a port ``free_port`` found free; another process of the run
may bind it first (an xdist worker's server at the run's busy start: a CI run of stop 55 lost
a fault test to intake's "address already in use", exit 3). The harness starts it again on
another port rather than failing the test that asked for it."""

from __future__ import annotations

import socket

from tests.faults.harness import System


async def test_a_service_whose_port_was_taken_meanwhile_starts_on_another(
        system: System) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        first = taken.getsockname()[1]
        intake = system.add("intake")
        intake.port = first  # as if free_port's answer were bound since
        await system.start()
        assert intake.port != first and intake.starts == 2, (intake.port, intake.starts)
