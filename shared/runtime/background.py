"""Running a service's background loops: restart on failure with back-off, stop on shutdown
(gracefully, and past the deadline, hard: what the loop waits on ended)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog

from shared.readmodels.holdings import HOLDINGS, EndSessions, Holdings

log = structlog.get_logger("sixstep.runtime")


#: The first pause before a failed loop starts again (doubled at each failure in a row).
FIRST_BACKOFF_S = 0.5

#: How often a loop that keeps failing the same way says so again, with how many times.
REPEAT_SAID_EVERY_S = 60.0

#: How often a loop still running after its hard stop is said again (``Background.stop``).
STILL_STOPPING_SAID_EVERY_S = 5.0

#: The longest a hard stop waits for PostgreSQL to end an overdue loop's sessions.
END_SESSIONS_S = 2.0


class _Failures:
    """What ``supervise`` says of a loop's failures: the first of a run, and each new error,
    at once (``task.failed``); the same error again at most every ``REPEAT_SAID_EVERY_S``,
    with how many times it came (``times``: in the run; ``since_said``: since the last
    line); and, when the loop goes well again, how many the run had (``task.recovered``).
    Before, every failure was a line: a loop failing every 10 s for a night of a store
    outage wrote thousands of identical errors, and a new error among them was lost."""

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        self.name = name
        self.clock = clock
        self.error: str | None = None
        self.times = 0
        self.unsaid = 0
        self.said_at = 0.0

    def failed(self, error: str, retry_in: float) -> None:
        now = self.clock()
        self.times += 1
        if error == self.error and now - self.said_at < REPEAT_SAID_EVERY_S:
            self.unsaid += 1
            return
        if error == self.error:
            log.error("task.failed", task=self.name, error=error, retry_in=retry_in,
                      times=self.times, since_said=self.unsaid + 1)
        else:
            self._said_so_far()
            log.error("task.failed", task=self.name, error=error, retry_in=retry_in,
                      times=self.times)
        self.error, self.said_at, self.unsaid = error, now, 0

    def went_well(self) -> None:
        """The loop ran well (returned, or ran longer than the longest pause): the next
        failure starts a new run."""
        if self.error is not None:
            self._said_so_far()
            log.info("task.recovered", task=self.name, failures=self.times)
        self.error, self.times, self.unsaid = None, 0, 0

    def _said_so_far(self) -> None:
        if self.unsaid:
            log.warning("task.failed_again", task=self.name, error=self.error,
                        since_said=self.unsaid, times=self.times - 1)
            self.unsaid = 0


async def supervise(name: str, loop_factory: Callable[[], Awaitable[None]],
                    *, max_backoff: float = 10.0,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``loop_factory()`` forever; when it fails, log and start it again after a pause.

    The pause doubles with each failure in a row, up to ``max_backoff``. A loop that ran longer
    than ``max_backoff`` before failing was healthy: its pause starts again from the first (a
    relay that failed at start for a minute, then ran for a day, waited 10 s after its next
    failure). The same failure again and again is said once with a count (``_Failures``)."""
    backoff = FIRST_BACKOFF_S
    failures = _Failures(name, clock)
    while True:
        started = clock()
        try:
            await loop_factory()
            backoff = FIRST_BACKOFF_S
            failures.went_well()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if clock() - started > max_backoff:
                backoff = FIRST_BACKOFF_S
                failures.went_well()
            failures.failed(f"{type(exc).__name__}: {exc}", backoff)
            await sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


class Background:
    """The set of supervised loops a service runs beside its HTTP API."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: The pool connections each loop holds (``shared.readmodels.holdings``), by name.
        self.holdings: dict[str, Holdings] = {}

    def start(self, name: str, loop_factory: Callable[[], Awaitable[None]]) -> None:
        holdings = self.holdings[name] = Holdings(name)
        context = contextvars.copy_context()
        context.run(HOLDINGS.set, holdings)  # the loop's tasks inherit it
        self.tasks[name] = asyncio.create_task(supervise(name, loop_factory), name=name,
                                               context=context)

    async def stop(self, timeout: float = 10.0, names: Iterable[str] | None = None, *,
                   end_sessions: EndSessions | None = None) -> None:
        """Cancel every loop (or those named) and return once they have all ended.

        Gracefully first, for ``timeout`` seconds: the cancel is repeated (nats-py swallows a
        CancelledError that lands in its flush, ``Client._flush_pending``, and a loop that lost
        it would go on for ever). A loop still running then is stopped hard: the pool
        connections it holds are closed (its statement or rollback fails at once) and their
        sessions ended (``end_sessions``, for at most ``END_SESSIONS_S``: a backend busy on a
        statement or a lock wait never notices its client gone; the transaction rolls back,
        the session's lock is freed and a standby replica takes it), said in the log
        (``task.stop_overdue``, with the backends ended), and it is cancelled again until it
        has ended (``task.hard_stopped``; ``task.still_stopping``
        every few seconds while it has not). Before, the stop returned with the loop still
        running: the runtime then drained NATS and closed the pool under a batch
        mid-statement, with no owner."""
        chosen = {n: t for n, t in self.tasks.items() if names is None or n in set(names)}
        pending = set(chosen.values())
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        while pending and loop.time() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            await self._stop_hard(task.get_name(), timeout, end_sessions)
        overdue, said = set(pending), loop.time()
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
            if pending and loop.time() - said >= STILL_STOPPING_SAID_EVERY_S:
                said = loop.time()
                for task in pending:
                    log.error("task.still_stopping", task=task.get_name(),
                              waited_s=round(said - started, 1))
        for task in overdue:
            log.warning("task.hard_stopped", task=task.get_name(),
                        after_s=round(loop.time() - started, 1))
        for name in chosen:
            del self.tasks[name]
            self.holdings.pop(name, None)

    async def _stop_hard(self, name: str, waited_s: float,
                         end_sessions: EndSessions | None) -> None:
        """End what the loop ``name`` waits on: its PostgreSQL sessions, its connections."""
        holdings = self.holdings.get(name)
        if holdings is None:
            log.error("task.stop_overdue", task=name, waited_s=waited_s, backends=[])
            return
        # The connections closed in the same step as their ids are taken, before any await:
        # one the loop gave back while its sessions were being ended went to the next caller
        # (the relay, still running; a request) alive, and that caller's session was ended.
        # Closed, it is replaced in the pool by a new one (another backend).
        backends = holdings.backends()
        holdings.terminate()
        error = None
        if backends and end_sessions is not None:
            try:
                async with asyncio.timeout(END_SESSIONS_S):
                    await end_sessions(backends)
            except Exception as exc:  # closed all the same: PostgreSQL ends them later
                error = f"{type(exc).__name__}: {exc}"
        log.error("task.stop_overdue", task=name, waited_s=waited_s, backends=backends,
                  **({"end_sessions_failed": error} if error else {}))
