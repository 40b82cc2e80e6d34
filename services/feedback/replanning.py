"""Re-planning: when an official holiday schedule replaces a provisional year, every open
rectification whose deadline was worked out on it gets its working days counted again.

Runs when the service starts (a holidays file added, the package upgraded) and after
``POST /ops/calendar/reload``. Candidates come from the supervisor's board
(``rectifications``: open, ``basis = 'provisional'``), a page at a time; each rectification
records ``RectificationDeadlineRevised`` only when its deadline really moves or its basis
changes (a day the published schedule keeps is confirmed official), never to a day before
today (the center's day as a triage judges it, ``judged_day``: a clock set back moves no
missed deadline), and exactly once over any number of replicas (see ``Feedback.revise_deadline``).
The follow-up service moves the rectification's follow-up with it; the figures judge the
on-time rate against the revised deadline. A completed rectification is never rewritten.
"""

from __future__ import annotations

import asyncio
from datetime import date
from uuid import UUID

import asyncpg
import structlog

from services.feedback.application import Feedback
from shared.runtime.replanning import replan_each

log = structlog.get_logger("sixstep.feedback.replanning")

# $3: the first official day the reload changed (NULL: none; ``Calendars.changed_official``).
# One missed on a provisional day the published schedule moves is kept, said once
# (``deadline_kept``), and read no more, but when a reload changes an official day up to it
# (a notice that corrects the first).
CANDIDATES = (
    "SELECT rectification_id, center_id FROM rectifications WHERE status = 'open'"
    " AND (deadline_kept IS NOT TRUE OR deadline_on >= $3::date)"
    " AND (basis = 'provisional' OR deadline_on >= $3::date)"
    " AND ($1::uuid IS NULL OR rectification_id > $1) ORDER BY rectification_id LIMIT $2")


class Replanning:
    def __init__(self, pool: asyncpg.Pool, feedback: Feedback, *, batch: int = 500) -> None:
        self.pool = pool
        self.feedback = feedback
        self.batch = batch

    async def run(self) -> dict[str, int]:
        changed = self.feedback.calendars.changed_official
        # Whether a deadline was missed is judged on the center's day, as a triage judges it
        # (``Feedback.revise_deadline``): the day its last survey closed on, asked once per
        # center and run (a page of 500 asks it at once, on one look each).
        seen: dict[str, asyncio.Future[date | None]] = {}

        async def revise(rectification_id: UUID, center_id: str) -> bool:
            if center_id not in seen:
                seen[center_id] = asyncio.ensure_future(self.feedback.center_seen_on(center_id))
            return await self.feedback.revise_deadline(rectification_id,
                                                       await asyncio.shield(seen[center_id]))

        done = await replan_each(self.pool, CANDIDATES, revise,
                                 batch=self.batch, log=log, key="rectification_id",
                                 args=(changed[0] if changed else None,))
        if done.checked:
            log.info("replan.done", checked=done.checked, moved=done.moved, failed=done.failed)
        return {"rectifications_checked": done.checked, "deadlines_revised": done.moved,
                "rectifications_failed": done.failed}
