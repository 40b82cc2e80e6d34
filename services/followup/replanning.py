"""Re-planning: when an official holiday schedule replaces a provisional year, the follow-ups
still waiting to fall due whose moment was worked out on it are worked out again.

Runs when the service starts (a holidays file added, the package upgraded) and after
``POST /ops/calendar/reload``. Candidates come from the worklist (``followups``: scheduled,
``basis = 'provisional'``), a page at a time; each is re-planned by its aggregate
(``FollowUp.replan``), which records ``FollowUpRescheduled`` (cause ``calendar_published``)
only when the moment really moves, never earlier than now. Exactly once over any number of
replicas: the command's key is the calendar's fingerprint (a second replica's attempt is a
replay) and the store's optimistic concurrency settles two at the same instant. Follow-ups
that follow a rectification's deadline move with ``RectificationDeadlineRevised`` instead.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import structlog

from services.followup.application import FollowUps
from shared.kernel.errors import VersionConflict

log = structlog.get_logger("sixstep.followup.replanning")

CANDIDATES = (
    "SELECT follow_up_id FROM followups WHERE status = 'scheduled' AND basis = 'provisional'"
    " AND ($1::uuid IS NULL OR follow_up_id > $1) ORDER BY follow_up_id LIMIT $2")


class Replanning:
    def __init__(self, pool: asyncpg.Pool, followups: FollowUps, *, batch: int = 500) -> None:
        self.pool = pool
        self.followups = followups
        self.batch = batch

    async def run(self) -> dict[str, int]:
        """Re-plan every provisional follow-up that is waiting; returns what was done."""
        now = self.followups.clock.now()
        checked = moved = conflicts = 0
        after: UUID | None = None
        while True:
            rows = await self.pool.fetch(CANDIDATES, after, self.batch)
            if not rows:
                break
            outcomes = await asyncio.gather(
                *(self.followups.replan(r["follow_up_id"], now) for r in rows),
                return_exceptions=True)
            for row, outcome in zip(rows, outcomes, strict=True):
                checked += 1
                if outcome is True:
                    moved += 1
                elif isinstance(outcome, VersionConflict):
                    conflicts += 1  # another replica re-planned it at the same moment
                elif isinstance(outcome, BaseException):
                    log.error("replan.failed", follow_up_id=str(row["follow_up_id"]),
                              error=f"{type(outcome).__name__}: {outcome}")
            after = rows[-1]["follow_up_id"]
            if len(rows) < self.batch:
                break
        if checked:
            log.info("replan.done", checked=checked, moved=moved, conflicts=conflicts)
        return {"followups_checked": checked, "followups_replanned": moved}
