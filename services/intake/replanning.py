"""Re-planning: when an official holiday schedule replaces a provisional year, every open case
whose due date (办结时限) was counted from its item's usual working days on that year gets them
counted again.

Runs when the service starts (a holidays file added, the package upgraded) and after
``POST /ops/calendar/reload``. Candidates come from the cases read model (open,
``due_basis = 'provisional'``, ``due_source = 'item_days'``), a page at a time; each case
records ``CaseDueDateSet`` with ``cause: calendar_published`` only when its due date or its
basis changes, never to a day before today, and exactly once over any number of replicas (see
``Intake.replan_due_date``). A promised day, a deadline and a day set by hand stay as they
are: they are days, whatever the calendar. A resolved case is never rewritten.
"""

from __future__ import annotations

import asyncpg
import structlog

from services.intake.application import Intake
from shared.runtime.replanning import replan_each

log = structlog.get_logger("sixstep.intake.replanning")

# $3: the first official day the reload changed (NULL: none; ``Calendars.changed_official``).
CANDIDATES = (
    "SELECT case_id FROM cases WHERE status = 'open' AND due_source = 'item_days'"
    " AND (due_basis = 'provisional' OR due_on >= $3::date)"
    " AND ($1::uuid IS NULL OR case_id > $1) ORDER BY case_id LIMIT $2")


class Replanning:
    def __init__(self, pool: asyncpg.Pool, intake: Intake, *, batch: int = 500) -> None:
        self.pool = pool
        self.intake = intake
        self.batch = batch

    async def run(self) -> dict[str, int]:
        changed = self.intake.calendars.changed_official if self.intake.calendars else None
        done = await replan_each(self.pool, CANDIDATES, self.intake.replan_due_date,
                                 batch=self.batch, log=log, key="case_id",
                                 args=(changed[0] if changed else None,))
        if done.checked:
            log.info("replan.done", checked=done.checked, moved=done.moved, failed=done.failed)
        return {"due_dates_checked": done.checked, "due_dates_replanned": done.moved,
                "due_dates_failed": done.failed}
