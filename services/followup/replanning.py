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

from uuid import UUID

import asyncpg
import structlog

from services.followup.application import FollowUps
from shared.runtime.replanning import replan_each

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

        async def replan(follow_up_id: UUID) -> bool:
            return await self.followups.replan(follow_up_id, now)

        done = await replan_each(self.pool, CANDIDATES, replan, batch=self.batch, log=log,
                                 key="follow_up_id")
        if done.checked:
            log.info("replan.done", checked=done.checked, moved=done.moved,
                     conflicts=done.conflicts)
        return {"followups_checked": done.checked, "followups_replanned": done.moved}
