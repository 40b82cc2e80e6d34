"""Once per rules durable, after the release where follow-up's rules read ``PlanCaseLinked``
(stop 47): the links recorded before it.

The rules' durable has always taken intake's ``PlanCaseLinked`` (``intake.*.*``), but until
that release the rules only tracked it (``IGNORED``): a step drawn up before its case and
linked to it later kept its reminder with the plan's author at normal priority, remembered
with no case, so no handover of the case moved it, no urgency raised it, and its worklist row
named no case. Those links are below the durable's ack floor: nothing brings them back.

This sweep applies the rules' own rule (``Rules.apply``, the link alone) to each link of this
durable's partitions at or below its ack floor, read once this process drives the durable
(``Consumer.leads``: no older release acks anything past it, so every later link is this
release's to apply). Each in a transaction of its own, which meets a live handover or urgency
of the link's case (``consumer._meet``). The rule reads the case as it is now: the reminder
goes to whoever has the case now (after the handovers it missed), high priority when the case
is urgent, remembered with the case (``rule_followups``) and naming it on its worklist row
(``FollowUpReassigned.case_id``). A reminder ended since is left as it is; a link the live
rules applied already changes nothing (its effect keys: a second run, or a replay, records
nothing). It records that it ran (``upgrade_steps``, ``followup-rules:plan-case-linked:
<durable>``); a later start finds it done. As ``completed_before.py``, a link it can never
apply is dead-lettered under the durable's name and the sweep goes on.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from services.followup.completed_before import CompletedBefore
from services.followup.consumer import Rules
from shared.bus.consumer import Consumer
from shared.contracts import Envelope
from shared.settings import Settings

log = structlog.get_logger("sixstep.followup.upgrade")

STEP = "followup-rules:plan-case-linked"
LINKED = "PlanCaseLinked"


class LinkedBefore(CompletedBefore):
    """``run``: the sweep of the links the rules ignored, then nothing."""

    STEP = STEP
    SAID = "upgrade.plan_links_before"

    def __init__(self, pool: asyncpg.Pool, nc: NATS, settings: Settings, rules: Rules,
                 consumer: Consumer, look_every_s: float = 1.0) -> None:
        super().__init__(pool, nc, settings, rules, consumer, look_every_s)
        self.linking = rules

    def subjects(self) -> list[str]:
        """The consumer's subjects of ``PlanCaseLinked`` (its partitions')."""
        prefix = f"{self.settings.subject_prefix}.intake."
        found: dict[str, None] = {}
        for f in self.consumer.filter_subjects:
            if f.startswith(prefix):
                kind, _, partition = f[len(prefix):].partition(".")
                if kind in ("*", LINKED):
                    found[f"{prefix}{LINKED}.{partition}"] = None
        return list(found)

    async def floor(self) -> int | None:
        """The ack floor of this worker's rules durable once this process drives it; None
        before (an older release may still ack links past it without applying them)."""
        if not self.consumer.leads:
            return None
        try:
            info = await self.nc.jetstream().consumer_info(self.settings.stream_name,
                                                           self.consumer.name)
        except NotFoundError:
            return None
        return info.ack_floor.stream_seq if info.ack_floor else 0

    async def apply(self, e: Envelope) -> None:
        """The link's rule, alone in its transaction (as a batch of one of the rules)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self.linking.apply(conn, [e])


NAMED = "followup-worklist:linked-case-named"


class LinkedCasesNamed:
    """Once per worklist durable, after rulesrace48 (``FollowUpReassigned.case_id``): the
    worklist rows of linked steps' reminders that name no case. In a rolling upgrade a
    worklist replica of the release before applied the new rules' ``FollowUpReassigned``
    and ignored its optional ``case_id`` (that release's worklist knew none): the reminder
    was reassigned on the row, which named no case until a rebuild (``GET
    /followups?case_id=`` left it out). Once this process drives the durable (no older
    release applies its events any more), each such row takes the case the rules
    remembered its step's reminder with (``rule_followups``, written with the reassignment).
    A row whose reassignment is not applied yet takes the case it will name anyway."""

    def __init__(self, pool: asyncpg.Pool, consumer: Consumer,
                 look_every_s: float = 1.0) -> None:
        self.pool, self.consumer, self.look_every_s = pool, consumer, look_every_s

    @property
    def step(self) -> str:
        return f"{NAMED}:{self.consumer.name}"

    async def run(self) -> None:
        """Each time this process takes the durable: the first time anywhere, the repair
        (recorded); after it, the rows a replica of the release before left caseless while
        it drove the durable again (this release restarted in the mixed window, an older
        replica still running took the durable back): found by no repair, recorded before."""
        while True:
            while not self.consumer.leads:
                await asyncio.sleep(self.look_every_s)
            if await self.repair() is None:
                await self.name_again()
            while self.consumer.leads:
                await asyncio.sleep(self.look_every_s)

    async def name_again(self) -> int:
        """The repair once more, not recorded again: how many rows took their case."""
        named = await self._name(self.pool)
        if named:
            log.info("upgrade.linked_cases_named", named=named, consumer=self.consumer.name,
                     again=True)
        return named

    @staticmethod
    async def _name(db: asyncpg.Pool | asyncpg.Connection) -> int:
        return int((await db.execute(
            "UPDATE followups f SET case_id = r.case_id FROM rule_followups r"
            " WHERE r.follow_up_id = f.follow_up_id AND r.rule = 'plan_step'"
            " AND r.case_id IS NOT NULL AND f.case_id IS NULL")).split()[-1])

    async def repair(self) -> int | None:
        """How many rows took their case (None: done before)."""
        if await self.pool.fetchval("SELECT applied FROM upgrade_steps WHERE name = $1",
                                    self.step) is not None:
            return None
        while not self.consumer.leads:
            await asyncio.sleep(self.look_every_s)
        async with self.pool.acquire() as conn, conn.transaction():
            named = await self._name(conn)
            await conn.execute("INSERT INTO upgrade_steps (name, applied) VALUES ($1, $2)"
                               " ON CONFLICT DO NOTHING", self.step, named)
        log.info("upgrade.linked_cases_named", named=named, consumer=self.consumer.name)
        return named
