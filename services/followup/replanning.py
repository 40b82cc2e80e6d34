"""Re-planning: when the official holiday schedules change, what follow-up planned on the days
that changed is worked out again: the follow-ups still waiting to fall due, and the watched
obligations' "missed at" moments (the current period's grace).

Runs when the service starts (a holidays file added, the package upgraded) and after
``POST /ops/calendar/reload``. Candidates come from the read models a page at a time:

* planned on a provisional year (``basis = 'provisional'``; an obligation row from before the
  column, ``basis`` NULL, too), which an official schedule may now replace;
* after a reload that changed days of a year already official (a published day corrected, a
  notice's New Year reaching back into December: ``Calendars.changed_official``, first and
  last day), those whose counting may run over them: a follow-up due on or after the first
  changed day (counted forwards) or due from today up to the last (counted back to it), an
  obligation whose period is due by the last changed day and missed from the first on.

The help tasks (帮办) and referrals (派单) still waiting for their deadline, provisional or
due on or after the first changed official day, have their working days counted again from
the day they were counted from (``HelpTask.replan``, ``Referral.replan``: ``HelpTaskReplanned``,
``ReferralReplanned``); one opened before the count was kept in its event is left as it is.

Each is re-planned by its aggregate (``FollowUp.replan``, ``Obligation.replan``), which
records ``FollowUpRescheduled`` / ``ObligationReplanned`` (cause ``calendar_published``) only
when the moment really moves or its basis changes (a moment the published schedule keeps is
confirmed official: the same moment, once), never earlier than now. Exactly once over any
number of replicas: the command's key is the calendar's fingerprint and the aggregate's version (a
second replica's attempt is a replay) and the store's optimistic concurrency settles two at
the same instant. Follow-ups that follow a rectification's deadline move with
``RectificationDeadlineRevised`` instead.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import asyncpg
import structlog

from services.followup.application import FollowUps
from shared.runtime.replanning import replan_each

log = structlog.get_logger("sixstep.followup.replanning")

# $3, $4: the first and last official day the reload changed (NULL: none); $5: today.
# Due, missed or escalated on a provisional day too: never moved, confirmed when the published
# schedule gives the same moment, kept (said once, ``due_kept``) when it gives another
# (``FollowUp._confirm``): read until then, and after only when a notice changes an official
# day up to its day (one that corrects the first).
CANDIDATES = (
    "SELECT follow_up_id FROM followups WHERE ((status = 'scheduled'"
    " AND (basis = 'provisional' OR (due_on >= $3::date OR due_on BETWEEN $5::date AND $4::date)))"
    " OR (status IN ('due', 'missed', 'escalated') AND basis = 'provisional'"
    "     AND (NOT due_kept OR due_on >= $3::date)))"
    " AND ($1::uuid IS NULL OR follow_up_id > $1) ORDER BY follow_up_id LIMIT $2")
OBLIGATIONS = (
    "SELECT aggregate_id FROM obligations WHERE active AND missed_at IS NOT NULL"
    " AND (basis IS DISTINCT FROM 'official' OR (next_due_on <= $4::date"
    "      AND missed_at >= $3::date::timestamp AT TIME ZONE $5::text))"
    " AND ($1::uuid IS NULL OR aggregate_id > $1) ORDER BY aggregate_id LIMIT $2")

# Help tasks and referrals still waiting for their deadline, counted forwards from their day:
# provisional, or due on or after the first changed official day. $3: that day; $4: the zone.
# Escalated (still open) or overdue ones with a provisional deadline too: never moved, their
# basis confirmed when the published count gives the same moment (``Count.again``, settled),
# kept (said once: ``deadline_kept``, ``reply_due_kept``) when it gives another: read until
# then, and after only when a notice changes an official day up to that deadline (one that
# corrects the first: confirmed official if it gives the law's day after all, or the new
# moment said; ``Count.again``'s ``said``).
KEPT_CHANGED = "{at} >= $3::date::timestamp AT TIME ZONE $4::text"
HELP_TASKS = (
    "SELECT task_id FROM help_tasks WHERE status IN ('open', 'accepted', 'in_progress')"
    f" AND (NOT deadline_kept OR {KEPT_CHANGED.format(at='deadline_at')})"
    " AND (basis = 'provisional' OR (escalated_to IS NULL"
    "      AND deadline_at >= $3::date::timestamp AT TIME ZONE $4::text))"
    " AND ($1::uuid IS NULL OR task_id > $1) ORDER BY task_id LIMIT $2")
REFERRALS = (
    "SELECT referral_id FROM referrals WHERE ((status = 'awaiting_reply'"
    " AND (basis = 'provisional' OR reply_due_at >= $3::date::timestamp AT TIME ZONE $4::text))"
    " OR (status = 'overdue' AND basis = 'provisional'"
    f"     AND (NOT reply_due_kept OR {KEPT_CHANGED.format(at='reply_due_at')})))"
    " AND ($1::uuid IS NULL OR referral_id > $1) ORDER BY referral_id LIMIT $2")


class Replanning:
    def __init__(self, pool: asyncpg.Pool, followups: FollowUps, *, batch: int = 500) -> None:
        self.pool = pool
        self.followups = followups
        self.batch = batch

    async def run(self) -> dict[str, int]:
        """Re-plan every follow-up and obligation the calendar's change may move; returns
        what was done."""
        now = self.followups.clock.now()
        changed = self.followups.calendars.changed_official
        first, last = changed if changed is not None else (None, None)
        tz = self.followups.settings.tz
        today: date = now.astimezone(tz).date()

        async def replan(follow_up_id: UUID) -> bool:
            return await self.followups.replan(follow_up_id, now)

        async def replan_obligation(aggregate_id: UUID) -> bool:
            return await self.followups.replan_obligation(aggregate_id, now)

        async def replan_help_task(task_id: UUID) -> bool:
            return await self.followups.replan_help_task(task_id, now)

        async def replan_referral(referral_id: UUID) -> bool:
            return await self.followups.replan_referral(referral_id, now)

        done = await replan_each(self.pool, CANDIDATES, replan, batch=self.batch, log=log,
                                 key="follow_up_id", args=(first, last, today))
        duties = await replan_each(self.pool, OBLIGATIONS, replan_obligation,
                                   batch=self.batch, log=log, key="obligation_aggregate_id",
                                   args=(first, last, tz.key))
        tasks = await replan_each(self.pool, HELP_TASKS, replan_help_task,
                                  batch=self.batch, log=log, key="task_id",
                                  args=(first, tz.key))
        referrals = await replan_each(self.pool, REFERRALS, replan_referral,
                                      batch=self.batch, log=log, key="referral_id",
                                      args=(first, tz.key))
        if done.checked or duties.checked or tasks.checked or referrals.checked:
            log.info("replan.done", checked=done.checked, moved=done.moved,
                     conflicts=done.conflicts, obligations_checked=duties.checked,
                     obligations_moved=duties.moved, help_tasks_checked=tasks.checked,
                     help_tasks_moved=tasks.moved, referrals_checked=referrals.checked,
                     referrals_moved=referrals.moved, changed_official=changed,
                     failed=done.failed + duties.failed + tasks.failed + referrals.failed)
        return {"followups_checked": done.checked, "followups_replanned": done.moved,
                "obligations_checked": duties.checked, "obligations_replanned": duties.moved,
                "help_tasks_checked": tasks.checked, "help_tasks_replanned": tasks.moved,
                "referrals_checked": referrals.checked,
                "referrals_replanned": referrals.moved, "followups_failed": done.failed,
                "obligations_failed": duties.failed, "help_tasks_failed": tasks.failed,
                "referrals_failed": referrals.failed}
