"""``make run`` writes each service's lines to ``.state/logs/<name>.log`` as they come: an
operator's ``tail -f`` of a running service sees its last line, not a block kept back until
the buffer fills or the service stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tools.run import _Service


async def test_a_line_is_in_the_log_file_while_the_service_still_runs(tmp_path: Path) -> None:
    log = tmp_path / "intake.log"
    service = _Service("intake", "intake", 8001, log)
    stream = asyncio.StreamReader()
    pump = asyncio.create_task(service._pump(stream))
    stream.feed_data(b"service.started port=8001\n")
    try:
        async with asyncio.timeout(5):
            while not service.tail:
                await asyncio.sleep(0.01)
        assert log.read_text(encoding="utf-8") == "service.started port=8001\n"
    finally:
        stream.feed_eof()
        await pump
