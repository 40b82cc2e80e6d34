"""Re-planning after the calendar changed: every candidate a read model names, a page at a time.

When an official holiday schedule replaces a provisional year, each service works out again
what it planned on that year (follow-up: the follow-ups waiting to fall due; feedback: the
open rectifications' deadlines). :func:`replan_each` walks the candidates in id order, a page
of ``batch`` at a time, and re-plans a page at once through the service's use case, which
answers True when something moved. A version conflict is another replica re-planning the same
aggregate at the same moment (the store settles it); any other failure (the write not taken
within WRITE_TIMEOUT_S, the store away) is logged, counted in ``failed`` and the walk goes on:
a re-planning with a failed item is not remembered as done, and the service runs it again
(``Runtime.keep_replanning``) until none fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from shared.kernel.errors import VersionConflict


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
                log.error("replan.failed", **{key: str(row[0])},
                          error=f"{type(outcome).__name__}: {outcome}")
        after = rows[-1][0]
        if len(rows) < batch:
            break
    return Replanned(checked, moved, conflicts, failed)


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
    one's), so whichever ends last says whether one is still pending."""

    service: str
    log: Any
    since: float | None = None
    failed: int = 0
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    #: How a pause is waited (a test records them instead).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def went(self, failed: int) -> None:
        """A re-planning ended with ``failed`` items failed: said once when it starts
        failing and once when it goes through, not at every try."""
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
