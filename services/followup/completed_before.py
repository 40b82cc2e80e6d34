"""Once per rules durable, after the release where follow-up's rules read
``RectificationCompleted``: the rectifications completed before it.

A durable whose subjects grow goes on from where it was (``Consumer.ensure`` aligns its
filters): the completions recorded before the upgrade never reach the rules, and their
rectification and verification follow-ups stay open, fall due, are missed and escalate a bad
review already put right. This sweep reads those completions from the stream, at or below the
ack floor of this worker's rules durable (every earlier event of their cases is applied by
then, so nothing is applied out of its case's order), and applies the rules' own effect to
each (its effect keys make a completion the rules also took harmless).

The floor is read only once the durable takes ``RectificationCompleted`` (this release's
consumer made it so, and reset it to that floor): until then whoever drives it is the old
release (a standby behind it, the other worker of a split not upgraded yet), whose acks pass
the completions recorded meanwhile without applying them, so a floor read earlier left those
to nobody. A completion the rule can never apply is dead-lettered under the durable's name
(as the consumer would), and the sweep goes on. Each durable is swept for its own partitions
and records that it ran (``upgrade_steps``, under its name); a later start finds it done.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from shared.bus.consumer import Consumer, PermanentError
from shared.bus.jetstream import publish_dead_letter
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

    #: The ``upgrade_steps`` name of the sweep (with the durable's), and what it logs.
    STEP = STEP
    SAID = "upgrade.rectifications_completed_before"

    def __init__(self, pool: asyncpg.Pool, nc: NATS, settings: Settings,
                 rules: CompletionRule, consumer: Consumer, look_every_s: float = 1.0) -> None:
        self.pool, self.nc, self.settings = pool, nc, settings
        self.rules, self.consumer = rules, consumer
        self.look_every_s = look_every_s

    @property
    def step(self) -> str:
        """The ``upgrade_steps`` name of this durable's sweep."""
        return f"{self.STEP}:{self.consumer.name}"

    async def apply(self, e: Envelope) -> None:
        """The rule, on one event the sweep found."""
        await self.rules.rectification_completed(e)

    def subjects(self) -> list[str]:
        """The consumer's subjects of ``RectificationCompleted`` (its partitions')."""
        completions = f"{self.settings.subject_prefix}.feedback.RectificationCompleted"
        return [f for f in self.consumer.filter_subjects if f.rsplit(".", 1)[0] == completions]

    async def run(self) -> None:
        await self.sweep()
        await asyncio.Event().wait()

    async def floor(self) -> int | None:
        """The ack floor of this worker's rules durable once it takes every completion
        subject of this consumer; None before (not made yet, or still the old release's
        filters: its floor would pass completions it never applied)."""
        try:
            info = await self.nc.jetstream().consumer_info(self.settings.stream_name,
                                                           self.consumer.name)
        except NotFoundError:
            return None
        config = info.config
        taken = set(config.filter_subjects or []) | (
            {config.filter_subject} if config.filter_subject else set())
        if not set(self.subjects()) <= taken:
            return None
        return info.ack_floor.stream_seq if info.ack_floor else 0

    async def sweep(self) -> int | None:
        """Apply the rule to every completion of this durable's partitions at or below its
        floor, once it takes them; how many (None: ran before)."""
        if await self.pool.fetchval("SELECT applied FROM upgrade_steps WHERE name = $1",
                                    self.step) is not None:
            return None
        while (floor := await self.floor()) is None:
            await asyncio.sleep(self.look_every_s)
        js = self.nc.jetstream()
        applied = 0
        for subject in self.subjects():
            seq = 1
            while seq <= floor:
                try:
                    msg = await js.get_msg(self.settings.stream_name, seq=seq,
                                           subject=subject, next=True)
                except NotFoundError:
                    break
                if msg.seq is None or msg.seq > floor:
                    break
                seq = msg.seq + 1
                if msg.data is None:
                    continue
                try:
                    await self.apply(REGISTRY.current(decode_envelope(msg.data)))
                except (LookupError, ValueError, PermanentError) as exc:
                    # One it can never apply (undecodable, a version this release does not
                    # know, a payload without its rectification) goes where the consumer
                    # puts such events, once; raised, it would stop the sweep at the same
                    # message at every start, and the completions after it with it.
                    await self.dead_letter(msg.seq, subject, msg.data, exc)
                    continue
                applied += 1
        await self.pool.execute(
            "INSERT INTO upgrade_steps (name, applied) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.step, applied)
        log.info(self.SAID, applied=applied, floor=floor, consumer=self.consumer.name)
        return applied

    async def dead_letter(self, seq: int, subject: str, data: bytes, exc: Exception) -> None:
        """The consumer's dead letter for a completion the sweep cannot apply (``sixstep dlq``
        lists it under the rules durable, and replays it through the rules)."""
        reason = f"not applied by the upgrade sweep: {type(exc).__name__}: {str(exc)[:500]}"
        await publish_dead_letter(self.nc.jetstream(), self.settings, self.consumer.name,
                                  seq=seq, subject=subject, data=data, reason=reason, tries=1)
        log.error("upgrade.completion_dead_lettered", consumer=self.consumer.name, seq=seq,
                  reason=reason)
