"""A URL list whose first server is down (one node of a cluster restarting): the connection
goes to the next, and what the client met is said in one line, not nats-py's traceback."""

from __future__ import annotations

import logging

import pytest

from shared.bus.connection import connect_to
from shared.settings import Settings
from tools.devservers import free_port


async def test_a_server_down_in_the_list_is_one_line_not_a_traceback(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    down = f"nats://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING):
        nc = await connect_to(f"{down},{settings.nats_url}", "one-down", dont_randomize=True)
        try:
            assert nc.is_connected
        finally:
            await nc.close()
    said = [r for r in caplog.records if r.name.startswith(("nats", "shared.bus"))]
    assert said, "the server down is said"
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in said), [
        (r.name, r.getMessage(), bool(r.exc_info)) for r in said]
