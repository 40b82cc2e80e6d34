"""Re-planning after the calendar changed: every candidate a read model names, a page at a time.

When an official holiday schedule replaces a provisional year, each service works out again
what it planned on that year (follow-up: the follow-ups waiting to fall due; feedback: the
open rectifications' deadlines). :func:`replan_each` walks the candidates in id order, a page
of ``batch`` at a time, and re-plans a page at once through the service's use case, which
answers True when something moved. A version conflict is another replica re-planning the same
aggregate at the same moment (the store settles it); any other failure (the write not taken
within WRITE_TIMEOUT_S, the store away) is counted in ``failed`` and the walk goes on: a
re-planning with a failed item is not remembered as done, and the service runs it again
(``Runtime.keep_replanning``, and every worker's ``calendar-replan`` loop once that process
is gone: ``shared.runtime.replan_pending``) until none fails.

The failures are logged ``replan.failed``, one line per distinct error (how many items, the
first ids), and an error said once is said again at most every ``REPEAT_S`` with how many
times it came meanwhile (``FailureLog``): an item that cannot go through until a person acts
(a recount into a year no calendar covers) failed at every try, one line per item per minute.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from shared.kernel.errors import VersionConflict
from shared.runtime.replan_pending import Row


@dataclass(frozen=True)
class Replanned:
    checked: int = 0
    moved: int = 0
    conflicts: int = 0
    #: Items whose re-plan failed (not a conflict): the re-planning must be run again.
    failed: int = 0


async def replan_each(pool: asyncpg.Pool, candidates: str,
                      replan: Callable[..., Awaitable[bool]], *, batch: int,
                      log: Any, key: str, args: tuple[Any, ...] = ()) -> Replanned:
    """``candidates`` takes the last id seen (None at first), the page size and ``args``, and
    answers ids in order, each row's columns handed to ``replan`` (the id first: feedback's
    rectifications come with their center); ``key`` names the id in a failure's log line."""
    checked = moved = conflicts = failed = 0
    errors: dict[str, list[str]] = {}
    after: UUID | None = None
    while True:
        rows = await pool.fetch(candidates, after, batch, *args)
        if not rows:
            break
        outcomes = await asyncio.gather(*(replan(*row) for row in rows),
                                        return_exceptions=True)
        for row, outcome in zip(rows, outcomes, strict=True):
            checked += 1
            if outcome is True:
                moved += 1
            elif isinstance(outcome, VersionConflict):
                conflicts += 1  # another replica re-planned it at the same moment
            elif isinstance(outcome, BaseException):
                failed += 1
                errors.setdefault(f"{type(outcome).__name__}: {outcome}", []).append(
                    str(row[0]))
        after = rows[-1][0]
        if len(rows) < batch:
            break
    said = FAILURES.get() or FailureLog()
    for error, ids in errors.items():
        said.say(log, "replan.failed", error, ids, key)
    return Replanned(checked, moved, conflicts, failed)


#: An error said once is said again at most this often (with how many times it came since).
REPEAT_S = 3600.0
#: At most this many ids of the items an error failed named in its line.
IDS_SAID = 5


class FailureLog:
    """``replan.failed`` once per distinct error, then at most every ``REPEAT_S`` (``again``:
    how many tries it came at since it was last said); what the run failed with, for the
    pending re-planning's ``last_error``. A runtime keeps one and hands it to its runs
    (``FAILURES``); without one every error of the walk is said."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: error -> (when last said, tries it came at since)
        self.said: dict[str, tuple[float, int]] = {}
        #: This run's errors -> items
        self.run: dict[str, int] = {}

    def say(self, log: Any, event: str, error: str, ids: list[str], key: str) -> None:
        self.run[error] = self.run.get(error, 0) + len(ids)
        now = self.clock()
        last = self.said.get(error)
        if last is not None and now - last[0] < REPEAT_S:
            self.said[error] = (last[0], last[1] + 1)
            return
        if len(self.said) >= 1000:  # errors naming something new at each try: said anew
            self.said.clear()
        self.said[error] = (now, 0)
        log.error(event, error=error, items=len(ids), **{key: ids[0]},
                  **({"more": ids[1:IDS_SAID]} if len(ids) > 1 else {}),
                  **({"again": last[1], "repeat_s": REPEAT_S} if last is not None else {}))

    def begin(self) -> None:
        self.run = {}

    def summary(self) -> str | None:
        """This run's errors, the most frequent first: ``TimeoutError: ... (3 items); ...``."""
        if not self.run:
            return None
        return "; ".join(f"{error} ({n} item{'' if n == 1 else 's'})" for error, n in
                         sorted(self.run.items(), key=lambda kv: -kv[1]))


#: The runtime's FailureLog while one of its re-plannings runs (``Runtime._replan``).
FAILURES: contextvars.ContextVar[FailureLog | None] = contextvars.ContextVar(
    "replan_failures", default=None)


#: The pause before a failed re-planning is run again, doubled after each one that fails too.
RETRY_FIRST_S = 1.0
RETRY_MOST_S = 60.0


def failures(hooks: dict[str, dict[str, int]]) -> int:
    """The items the hooks' counts say failed (``rectifications_failed``, ``hook_failed`` ...)."""
    return sum(n for counts in hooks.values() for key, n in counts.items()
               if key.endswith("_failed"))


@dataclass
class Pending:
    """Whether a re-planning had failed items and is to be run again: ``failed`` (what the last
    one counted), since when (``time.time()``), and the wake-up of :meth:`keep_retrying`.
    Re-plannings may overlap (a reload during the retry, as a reload during a start's): each
    covers the changed days not yet re-planned (``Calendars.changed_official`` keeps a failed
    one's), so whichever ends last says whether one is still pending.

    ``row``: the service's pending re-planning as the database holds it
    (``shared.runtime.replan_pending``), as this process last wrote or, in a
    worker's ``calendar-replan``, read it: also another replica's, which this one retries once that
    replica has stopped (/ready and ``sixstep_calendar_replan_pending`` say it here then)."""

    service: str
    log: Any
    since: float | None = None
    failed: int = 0
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    #: How a pause is waited (a test records them instead).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    row: Row | None = None
    #: Counts the re-plannings that ended here: a row read before one ended is not shown.
    ended: int = 0

    def seen(self, row: Row | None, ended: int) -> None:
        """A worker's ``calendar-replan`` read ``row`` (``ended`` as it began to): shown
        here unless this process has one pending (its own says more) or a re-planning ended
        here during the read (the row it read may be gone)."""
        if self.since is None and self.ended == ended:
            self.row = row

    @property
    def shown(self) -> int:
        """Items failed at the last try, here or (as the database says) on any replica."""
        return max(self.failed, self.row.public.failed if self.row is not None else 0)

    def went(self, failed: int, row: Row | None = None) -> None:
        """A re-planning ended with ``failed`` items failed: said once when it starts
        failing and once when it goes through, not at every try."""
        self.row = row if failed else None
        self.ended += 1
        if failed:
            if self.since is None:
                self.since = time.time()
                self.log.warning("calendar.replan_pending", service=self.service, failed=failed,
                                 hint="retried by the service itself, with back-off")
            self.failed = failed
            self.wanted.set()
        elif self.since is not None:
            self.log.info("calendar.replan_caught_up", service=self.service,
                          pending_s=round(time.time() - self.since, 1))
            self.since, self.failed = None, 0

    async def keep_retrying(self, replan: Callable[[], Awaitable[Any]]) -> None:
        """Run ``replan`` again after a pause (``RETRY_FIRST_S``, doubled up to
        ``RETRY_MOST_S``) while one failed; a reload that went through meanwhile ends it."""
        pause = RETRY_FIRST_S
        while True:
            await self.wanted.wait()
            await self.sleep(pause)
            self.wanted.clear()
            if self.since is None:  # a reload (or a start) went through meanwhile
                pause = RETRY_FIRST_S
                continue
            try:
                await replan()
            except Exception as exc:  # the store away while remembering: tried again
                self.log.debug("calendar.replan_retry_failed",
                               error=f"{type(exc).__name__}: {exc}")
                self.wanted.set()
            pause = RETRY_FIRST_S if self.since is None else min(pause * 2, RETRY_MOST_S)
