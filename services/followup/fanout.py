"""Policy-change fan-out: one outreach follow-up per affected resident, once, resumable.

A published policy change (``policy_changes`` row, from its event) is walked over
``resident_items`` (and ``hinted_items``: residents an eligibility hint suggested the item to)
in resident-id order, ``followup_fanout_batch`` residents at a time: for each
resident whose past cases touch the policy's service items (at the publishing center, or at
every center), a follow-up with the id ``uuid5(policy_id, resident_id)`` is scheduled through the
GroupCommitter, the whole batch as one command (``FollowUps.schedule_each``: the batch's
follow-ups looked up in one query, the new ones saved in one transaction). After each batch
the cursor (the last resident id) and the count move together in one compare-and-set, so:

* the reach is the publisher's: every center only for a policy the city role published to all
  centers (``domain.fan_out_center``), and the writes go through the GroupCommitter *as the
  publisher* (``shared.security.principals.acting_as``), so the write path refuses a follow-up
  outside their scope as it would refuse their request;
* no erased resident and no resident who has not agreed to be contacted is reached (they are
  not counted either);

* a retried publish command is the same policy (same Idempotency-Key, same id): one fan-out;
* a crash or restart resumes after the last saved cursor; a batch that was written but whose
  cursor was not saved is written again, and each follow-up already there is a no-op;
* each resident is counted once, and memory holds two batches (one committing, the next
  being built and sent: the cursor still moves batch by batch, in order), whatever the
  history's length;
* with several replicas, an advisory lock per policy lets one of them fan it out at a time,
  held through ``shared.leadership.Leadership``: the walk looks at the lock's session before
  each batch and before it finishes, and stops (``LeadershipLost``) once PostgreSQL ended
  that session (a restart, a failover, a proxy's idle cut): another replica may have taken the
  lock and walk the policy; the next pass waits its turn like any other replica.

When the walk ends, ``PolicyChangeFannedOut`` records how many residents were reached.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import orjson
import structlog

from services.followup.application import FollowUps, Plan
from services.followup.domain import POLICY_OUTREACH, fan_out_center, policy_follow_up_id
from shared.contracts.followup import PublisherScope, Reason
from shared.kernel.calendar import Basis, DueRule
from shared.kernel.tasks import cancel_and_wait
from shared.leadership import Leadership
from shared.security.principals import Principal, Role, acting_as

log = structlog.get_logger("sixstep.followup.fanout")

_WHERE = (
    " WHERE service_item = ANY($1::text[]) AND ($2::text IS NULL OR center_id = $2)"
    " AND resident_id > $3")
_REACHABLE = (
    "NOT EXISTS (SELECT 1 FROM resident_consent c WHERE c.resident_id = i.resident_id"
    " AND (c.erased OR NOT c.contact))")
RESIDENTS = (
    "WITH firsts AS ("
    f"(SELECT DISTINCT resident_id FROM resident_items i{_WHERE} AND {_REACHABLE}"
    " ORDER BY resident_id LIMIT $4) UNION"
    f" (SELECT DISTINCT resident_id FROM hinted_items i{_WHERE} AND {_REACHABLE}"
    " ORDER BY resident_id LIMIT $4)),"
    " batch AS (SELECT resident_id AS last FROM (SELECT resident_id FROM firsts"
    " ORDER BY resident_id LIMIT $4) r ORDER BY resident_id DESC LIMIT 1)"
    " SELECT DISTINCT ON (resident_id) resident_id, case_id, center_id FROM ("
    f" SELECT resident_id, case_id, center_id, opened_at FROM resident_items{_WHERE}"
    f" UNION ALL SELECT resident_id, NULL, center_id, shown_at FROM hinted_items{_WHERE}"
    f") i WHERE resident_id <= (SELECT last FROM batch) AND {_REACHABLE}"
    " ORDER BY resident_id, case_id IS NULL, opened_at DESC, case_id")
"""The next ``$4`` residents after ``$3`` whose past cases touch the items, or to whom a hint
suggested one (no case: the follow-up names none); a case of theirs first. The batch's last
resident is found first, each table's primary key walked in order as far as the batch goes,
so that a batch reads its own rows and no more (a ``LIMIT`` over the ``DISTINCT ON`` read and
sorted every remaining row, every batch: quadratic in the history)."""

FIRST = UUID(int=0)
"""The cursor before the first resident (residents' ids are random UUIDs, never this one)."""


class FanOut:
    def __init__(self, pool: asyncpg.Pool, followups: FollowUps, *, batch: int,
                 interval_s: float, locks: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        #: Where a walk's lock is held (the runtime's lock pool), else ``pool``.
        self.locks = locks or pool
        self.followups = followups
        self.batch = batch
        self.interval_s = interval_s
        self.team = followups.settings.followup_team

    async def run(self) -> None:
        while True:
            await self.once()
            await asyncio.sleep(self.interval_s)

    async def once(self) -> int:
        """Fan out every unfinished policy change; returns how many were finished now."""
        rows = await self.pool.fetch(
            "SELECT policy_id FROM policy_changes WHERE finished_at IS NULL"
            " ORDER BY published_at")
        finished = 0
        for row in rows:
            finished += await self.fan_out(row["policy_id"])
        return finished

    async def fan_out(self, policy_id: UUID) -> int:
        # ``confirm_s=0``: ``pg_locks`` asked before every batch. A batch's writes go through
        # the pool, not the lock's session, so the look is the walk's only fence; one query
        # against a batch of up to FOLLOWUP_FANOUT_BATCH follow-ups. With the loops' 10 s, a
        # walk wrote its next batch when the session's end had not yet reached the
        # connection's termination listener (stop 51's CI run).
        async with Leadership(self.locks, f"sixstep-fanout:{policy_id}", what="fan-out",
                              wait=False, confirm_s=0) as lead:
            if not lead.leading:
                return 0  # another replica is on it
            return await self._walk(policy_id, lead)

    async def _walk(self, policy_id: UUID, lead: Leadership) -> int:
        policy = await self.pool.fetchrow("SELECT * FROM policy_changes WHERE policy_id = $1",
                                          policy_id)
        if policy is None or policy["finished_at"] is not None:
            return 0
        cursor: UUID | None = policy["cursor"]
        residents: int = policy["residents"]
        center = fan_out_center(policy["center_id"], policy["all_centers"], policy["scope"])
        log.info("fanout.started", policy_id=str(policy_id), resume_after=str(cursor))
        after = asyncio.ensure_future(self._residents(policy, center, cursor))
        # Batches written and not yet counted, oldest first: the next batch is built and sent
        # while the one before commits; the cursor still moves batch by batch, in order, each
        # only once it is written.
        in_flight: list[tuple[asyncio.Future[None], UUID, int]] = []
        try:
            while True:
                batch = await after
                full = len(batch) == self.batch
                if full:  # the next batch is looked up while this one is written
                    after = asyncio.ensure_future(self._residents(
                        policy, center, batch[-1]["resident_id"]))
                await lead.check()  # before each batch: the lock still ours?
                if batch:
                    in_flight.append((asyncio.ensure_future(self._write(policy, batch)),
                                      batch[-1]["resident_id"], len(batch)))
                while len(in_flight) > (1 if full else 0):
                    writing, last, count = in_flight[0]
                    await writing
                    in_flight.pop(0)
                    if not await self._save_progress(policy_id, cursor, last, count):
                        return 0  # someone else moved the cursor; they go on from there
                    cursor, residents = last, residents + count
                if not full:
                    break
        finally:
            # A look-up ahead that was not needed (a failure, a lost cursor), and the writes
            # not counted: withdrawn, or written and a no-op next time. Waited for, also when
            # cancelled again meanwhile (a shutdown's next cancel): a write only cancelled
            # went on rolling back past the walk, its lock given up and its loop closing.
            await cancel_and_wait(after, *(writing for writing, _, _ in in_flight))
        await lead.check()
        await self.followups.finish_fan_out(policy_id, residents)
        await self.pool.execute(
            "UPDATE policy_changes SET finished_at = COALESCE(finished_at, now())"
            " WHERE policy_id = $1", policy_id)
        log.info("fanout.finished", policy_id=str(policy_id), residents=residents)
        return 1

    async def _residents(self, policy: asyncpg.Record, center: str | None,
                         cursor: UUID | None) -> list[asyncpg.Record]:
        return await self.pool.fetch(RESIDENTS, policy["service_items"], center,
                                     cursor or FIRST, self.batch)

    async def _write(self, policy: asyncpg.Record, batch: list[asyncpg.Record]) -> None:
        policy_id = UUID(str(policy["policy_id"]))
        with acting_as(publisher_of(policy)):  # the write path checks their scope
            await self._schedule(policy, policy_id, batch)

    async def _schedule(self, policy: asyncpg.Record, policy_id: UUID,
                        batch: list[asyncpg.Record]) -> None:
        rule = (DueRule.from_dict(orjson.loads(policy["due_rule"])) if policy["due_rule"]
                else None)
        basis, due_at = Basis(policy["basis"]), policy["outreach_due_at"]
        causation = f"policy:{policy_id}"
        plans = []
        for r in batch:  # asyncpg's UUIDs as plain ones (the store encodes only those)
            resident = UUID(int=r["resident_id"].int)
            case = r["case_id"]
            plans.append(Plan(
                follow_up_id=policy_follow_up_id(policy_id, resident), center_id=r["center_id"],
                case_id=UUID(int=case.int) if case is not None else None,
                reason=Reason.POLICY_CHANGE, resident_id=resident, due_at=due_at,
                assigned_clerk=None, assigned_team=self.team,
                source=POLICY_OUTREACH, source_id=policy_id,
                causation_id=causation, correlation_id=str(policy_id), basis=basis,
                due_rule=rule))
        await self.followups.schedule_each(plans)

    async def _save_progress(self, policy_id: UUID, old: UUID | None, new: UUID,
                             count: int) -> bool:
        status = await self.pool.execute(
            "UPDATE policy_changes SET cursor = $3, residents = residents + $4, moved_at = now()"
            " WHERE policy_id = $1 AND cursor IS NOT DISTINCT FROM $2", policy_id, old, new, count)
        return status.endswith(" 1")


async def stalled(pool: asyncpg.Pool, stall_s: float) -> list[str]:
    """What /ready says while a published policy change stands still: not fanned out, and
    neither its arrival nor a batch of its fan-out for ``stall_s`` (no process runs the
    fan-out, ``ROLES=fanout``, or it fails; the service still serves: 200 degraded)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, min(moved_at) AS since FROM policy_changes"
        " WHERE finished_at IS NULL AND moved_at < now() - make_interval(secs => $1)",
        stall_s)
    if not row["n"]:
        return []
    return [f"{row['n']} policy change(s) not fanned out, standing still since "
            f"{row['since'].isoformat(timespec='seconds')}: is a follow-up process with "
            "ROLES=fanout running? (its log says why a fan-out fails)"]


def publisher_of(policy: asyncpg.Record) -> Principal:
    """Who published the policy, with the reach they had: the city role (every center), or a
    supervisor of the publishing center."""
    if policy["scope"] == PublisherScope.CITY.value:
        return Principal(sub=policy["published_by"] or "system:city", role=Role.CITY)
    return Principal(sub=policy["published_by"] or "system:center", role=Role.SUPERVISOR,
                     center_id=policy["center_id"])
