"""Running a service's background loops: restart on failure with back-off, stop on shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog

log = structlog.get_logger("sixstep.runtime")


#: The first pause before a failed loop starts again (doubled at each failure in a row).
FIRST_BACKOFF_S = 0.5


async def supervise(name: str, loop_factory: Callable[[], Awaitable[None]],
                    *, max_backoff: float = 10.0,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``loop_factory()`` forever; when it fails, log and start it again after a pause.

    The pause doubles with each failure in a row, up to ``max_backoff``. A loop that ran longer
    than ``max_backoff`` before failing was healthy: its pause starts again from the first (a
    relay that failed at start for a minute, then ran for a day, waited 10 s after its next
    failure)."""
    backoff = FIRST_BACKOFF_S
    while True:
        started = clock()
        try:
            await loop_factory()
            backoff = FIRST_BACKOFF_S
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if clock() - started > max_backoff:
                backoff = FIRST_BACKOFF_S
            log.error("task.failed", task=name, error=f"{type(exc).__name__}: {exc}",
                      retry_in=backoff)
            await sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


class Background:
    """The set of supervised loops a service runs beside its HTTP API."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop_factory: Callable[[], Awaitable[None]]) -> None:
        self.tasks[name] = asyncio.create_task(supervise(name, loop_factory), name=name)

    async def stop(self, timeout: float = 10.0, names: Iterable[str] | None = None) -> None:
        """Cancel every loop (or those named) and wait for them, at most ``timeout`` seconds: a
        shutdown never hangs on a loop stuck in a network call; the stragglers are named in
        the log. The cancel is repeated: nats-py swallows a CancelledError that lands in its
        flush (``Client._flush_pending``), and a loop that lost it would go on for ever."""
        chosen = {n: t for n, t in self.tasks.items() if names is None or n in set(names)}
        pending = set(chosen.values())
        deadline = asyncio.get_running_loop().time() + timeout
        while pending and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            log.error("task.stop_timeout", task=task.get_name(), waited_s=timeout)
        for name in chosen:
            del self.tasks[name]
