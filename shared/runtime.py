"""Running a service's background loops: restart on failure with back-off, stop on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("sixstep.runtime")


async def supervise(name: str, loop_factory: Callable[[], Awaitable[None]],
                    *, max_backoff: float = 10.0) -> None:
    """Run ``loop_factory()`` forever; when it fails, log and start it again after a pause."""
    backoff = 0.5
    while True:
        try:
            await loop_factory()
            backoff = 0.5
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("task.failed", task=name, error=f"{type(exc).__name__}: {exc}",
                      retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


class Background:
    """The set of supervised loops a service runs beside its HTTP API."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop_factory: Callable[[], Awaitable[None]]) -> None:
        self.tasks[name] = asyncio.create_task(supervise(name, loop_factory), name=name)

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel every loop and wait for them, at most ``timeout`` seconds: a shutdown never
        hangs on a loop stuck in a network call; the stragglers are named in the log."""
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks.values(), timeout=timeout)
            for task in pending:
                log.error("task.stop_timeout", task=task.get_name(), waited_s=timeout)
        self.tasks.clear()
