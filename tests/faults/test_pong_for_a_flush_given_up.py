"""A flush given up on before its PONG came (its caller cancelled: a puller's bounded
``sub.drain()`` as a consumer stops under load; or past its own timeout) must not deafen the
connection. nats-py 2.16 set the result of that waiter when the PONG came; the
``InvalidStateError`` ended the client's read loop, silently: "connected", every request and
pull timing out for good (feedback's four consumers after a PostgreSQL restart, in two loaded
CI runs of stop 56)."""

from __future__ import annotations

import asyncio

from shared.bus.connection import connect_to
from shared.runtime.lifecycle import _reading_ended


async def test_a_pong_for_a_flush_given_up_on_leaves_the_connection_reading(
        nats_url: str) -> None:
    nc = await connect_to(nats_url, "pong-given-up")
    try:
        flushing = asyncio.ensure_future(nc.flush(timeout=5))
        # Given up on as soon as its PING is out (its waiter queued), before the loop has
        # had a turn to read the PONG: a few steps of this task, no wait.
        for _ in range(1000):
            await asyncio.sleep(0)
            if nc._pongs or flushing.done():
                break
        assert nc._pongs and not flushing.done(), "the PONG came before the flush was given up"
        flushing.cancel()  # its PONG is on its way
        await asyncio.gather(flushing, return_exceptions=True)
        await nc.flush(timeout=5)  # the next round trip is answered: the read loop reads
        assert not nc._reading_task.done()
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish(inbox, b"still reading")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"still reading"
    finally:
        await nc.close()


async def test_a_client_whose_read_loop_ended_is_said_deaf_not_ready(nats_url: str) -> None:
    """Any other error nats-py does not expect ends its read loop the same way: /ready's
    ``nats`` check says ``deaf`` then, not ``ok`` (``is_connected`` still says True)."""
    nc = await connect_to(nats_url, "read-loop-ended")
    try:
        assert not _reading_ended(nc)
        nc._reading_task.cancel()
        await asyncio.gather(nc._reading_task, return_exceptions=True)
        assert nc.is_connected and _reading_ended(nc)
    finally:
        await nc.close()
