"""Once, after the release where follow-up's rules read ``RectificationCompleted``: the
rectifications completed before it.

A durable whose subjects grow goes on from where it was (``Consumer.ensure`` aligns its
filters): the completions recorded before the upgrade never reach the rules, and their
rectification and verification follow-ups stay open, fall due, are missed and escalate a bad
review already put right. This sweep reads those completions from the stream, at or below the
ack floor of the rules' durables (every earlier event of their cases is applied by then, so
nothing is applied out of its case's order), and applies the rules' own effect to each (its
effect keys make a completion the rules also took harmless). It records that it ran
(``upgrade_steps``) and does nothing at later starts; each worker may run it, the effects are
the same commands under the same keys.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from shared.bus.consumer import Consumer
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import decode_envelope
from shared.settings import Settings

log = structlog.get_logger("sixstep.followup.upgrade")

STEP = "followup-rules:rectification-completed"
DDL = [
    "CREATE TABLE IF NOT EXISTS upgrade_steps (name text PRIMARY KEY,"
    " applied bigint NOT NULL, done_at timestamptz NOT NULL DEFAULT now())",
]


class CompletionRule(Protocol):
    async def rectification_completed(self, e: Envelope) -> None:
        ...


class CompletedBefore:
    """``run``: the sweep, then nothing (a background loop that must not end)."""

    def __init__(self, pool: asyncpg.Pool, nc: NATS, settings: Settings,
                 rules: CompletionRule, consumer: Consumer) -> None:
        self.pool, self.nc, self.settings = pool, nc, settings
        self.rules, self.consumer = rules, consumer

    async def run(self) -> None:
        await self.sweep()
        await asyncio.Event().wait()

    async def floor(self) -> int:
        """The lowest ack floor of the rules' durables (a partitioned worker's too); 0 when
        there is none yet (a new durable reads every completion itself)."""
        return min((info.ack_floor.stream_seq if info.ack_floor else 0
                    for info in await self.consumer.durables()), default=0)

    async def sweep(self) -> int | None:
        """Apply the rule to every completion at or below the floor; how many (None: ran
        before)."""
        if await self.pool.fetchval("SELECT applied FROM upgrade_steps WHERE name = $1",
                                    STEP) is not None:
            return None
        floor = await self.floor()
        js = self.nc.jetstream()
        subject = f"{self.settings.subject_prefix}.feedback.RectificationCompleted.*"
        applied, seq = 0, 1
        while seq <= floor:
            try:
                msg = await js.get_msg(self.settings.stream_name, seq=seq, subject=subject,
                                       next=True)
            except NotFoundError:
                break
            if msg.seq is None or msg.seq > floor:
                break
            seq = msg.seq + 1
            if msg.data is None:
                continue
            await self.rules.rectification_completed(REGISTRY.current(decode_envelope(msg.data)))
            applied += 1
        await self.pool.execute(
            "INSERT INTO upgrade_steps (name, applied) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            STEP, applied)
        log.info("upgrade.rectifications_completed_before", applied=applied, floor=floor)
        return applied
