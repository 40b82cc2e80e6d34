"""Re-planning after the calendar changed: every candidate a read model names, a page at a time.

When an official holiday schedule replaces a provisional year, each service works out again
what it planned on that year (follow-up: the follow-ups waiting to fall due; feedback: the
open rectifications' deadlines). :func:`replan_each` walks the candidates in id order, a page
of ``batch`` at a time, and re-plans a page at once through the service's use case, which
answers True when something moved. A version conflict is another replica re-planning the same
aggregate at the same moment (the store settles it); any other failure is logged and the walk
goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from shared.kernel.errors import VersionConflict


@dataclass(frozen=True)
class Replanned:
    checked: int = 0
    moved: int = 0
    conflicts: int = 0


async def replan_each(pool: asyncpg.Pool, candidates: str,
                      replan: Callable[..., Awaitable[bool]], *, batch: int,
                      log: Any, key: str, args: tuple[Any, ...] = ()) -> Replanned:
    """``candidates`` takes the last id seen (None at first), the page size and ``args``, and
    answers ids in order, each row's columns handed to ``replan`` (the id first: feedback's
    rectifications come with their center); ``key`` names the id in a failure's log line."""
    checked = moved = conflicts = 0
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
                log.error("replan.failed", **{key: str(row[0])},
                          error=f"{type(outcome).__name__}: {outcome}")
        after = rows[-1][0]
        if len(rows) < batch:
            break
    return Replanned(checked, moved, conflicts)
