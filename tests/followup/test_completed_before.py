"""The rectifications completed before follow-up's rules took ``RectificationCompleted`` get
the rule once, after the upgrade (``services/followup/completed_before.py``).

A durable whose subjects grow goes on from where it was: the old release's ``followup-rules``
never saw those completions, and their follow-ups stayed open, fell due and escalated a bad
review already put right. The sweep applies the rule to the completions at or below the rules'
ack floor (every earlier event of their cases applied by then), the ones after it are the
durable's own under its new subjects, and it runs once per durable.

The floor is read once the durable takes ``RectificationCompleted``: while the old release still
drives it (the new worker standing by behind it, or the other worker of a split not upgraded
yet), its acks pass the completions recorded meanwhile without applying them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg
from nats.aio.client import Client as NATS

from services.followup.completed_before import DDL, STEP, CompletedBefore
from shared.bus.consumer import TRACKING_DDL, Consumer, partitioned_name
from shared.bus.deadletters import read_dead_letters
from shared.bus.jetstream import partition_of
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.feedback.helpers import History
from tests.intake.test_log_guarantees import stream_made
from tests.support import (
    TEST_CENTER,
    bus_connection,
    consumer_running,
    nothing_left_running,
    schema_pool,
    wait_until,
)


class Completions:
    """The rule of a completion, swept or (as the new release's rules) consumed."""

    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []
        self.others = 0

    async def rectification_completed(self, e: Envelope) -> None:
        self.seen.append(uuid.UUID(e.payload["rectification_id"]))

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            if e.type == "RectificationCompleted":
                await self.rectification_completed(e)
            else:
                self.others += 1


def rules_of(settings: Settings, nc: NATS, pool: asyncpg.Pool, handler: Recorder | Completions,
             *, new: bool, owned: list[int] | None = None) -> Consumer:
    """``followup-rules`` of the old release (intake's events) or of the new (completions too);
    ``owned``: a split worker's, on those partitions (as ``Runtime.add_consumer`` makes it)."""
    prefix = settings.subject_prefix
    subjects = [f"{prefix}.intake.*.*",
                *([f"{prefix}.feedback.RectificationCompleted.*"] if new else [])]
    name = "followup-rules"
    if owned is not None:
        name = partitioned_name(name, owned)
        subjects = [f"{s.rsplit('.', 1)[0]}.p{p}" for s in subjects for p in owned]
    return Consumer(settings=settings, nc=nc, pool=pool, name=name,
                    handler=handler, filter_subjects=subjects, batch=10)


@contextlib.asynccontextmanager
async def published(settings: Settings, history: History, name: str
                    ) -> AsyncIterator[tuple[asyncpg.Pool, NATS]]:
    """``history`` on the stream; a schema of the rules' bookkeeping and a connection."""
    await stream_made(settings)
    await history.publish_new(settings)
    async with schema_pool(settings, name, [*TRACKING_DDL, *DDL]) as pool, \
            bus_connection(settings, name) as nc:
        yield pool, nc


def through(settings: Settings, nc: NATS, old: Recorder, name: str = "followup-rules"
            ) -> Callable[[int], Awaitable[bool]]:
    """Whether the old rules have applied ``n`` events and acked everything on their subjects."""

    async def applied(n: int) -> bool:
        if len(old.applied) != n:
            return False
        info = await nc.jetstream().consumer_info(settings.stream_name, name)
        return info.num_ack_pending == 0 and info.num_pending == 0

    return applied


def completed(history: History, n: int) -> uuid.UUID:
    rectification = uuid.uuid5(uuid.NAMESPACE_URL, f"rectification-{n}")
    history.add("feedback", "RectificationCompleted", "2026-11-20T15:00:00+08:00", {
        "rectification_id": str(rectification), "outcome": "rectified",
        "actions": "当面致歉并补办", "deadline_on": "2026-11-24", "completed_on": "2026-11-20",
        "on_time": True}, case_id=uuid.uuid5(uuid.NAMESPACE_URL, f"case-{n}"),
        aggregate_id=rectification, actor="supervisor-001")
    return rectification


def opened(history: History, n: int) -> None:
    case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"case-{n}")
    history.add("intake", "CaseOpened", "2026-11-20T09:00:00+08:00", {
        "center_id": TEST_CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY"}, case_id=case_id,
        actor="clerk-001")


async def test_completions_the_old_rules_passed_get_the_rule_once(settings: Settings) -> None:
    history = History(TEST_CENTER)
    opened(history, 1)
    first = completed(history, 1)
    opened(history, 2)
    second = completed(history, 2)
    opened(history, 3)  # the old rules' last event: their ack floor
    async with published(settings, history, "upgrade") as (pool, nc):
        # The old release's rules: intake's events, no RectificationCompleted.
        old = Recorder()
        async with consumer_running(rules_of(settings, nc, pool, old, new=False)):
            await wait_until(lambda: through(settings, nc, old)(3),
                             what="the old rules through the log")
        later = completed(history, 3)  # after the floor: the rules' own under the new subjects
        await history.publish_new(settings)

        # The new release's rules take the durable (and the completions) first.
        rules = rules_of(settings, nc, pool, Completions(), new=True)
        await rules.ensure()
        rule = Completions()
        sweep = CompletedBefore(pool, nc, settings, rule, rules)
        assert await sweep.sweep() == 2
        assert rule.seen == [first, second] and later not in rule.seen
        assert await pool.fetchval("SELECT applied FROM upgrade_steps WHERE name = $1",
                                   f"{STEP}:followup-rules") == 2
        # Once: the next start finds it done and reads nothing.
        assert await sweep.sweep() is None and rule.seen == [first, second]


async def test_a_completion_the_rule_can_never_apply_is_dead_lettered_and_the_sweep_goes_on(
        settings: Settings) -> None:
    """An undecodable message, or one of a version this release does not know, below the floor:
    raised, it stopped the sweep at the same message at every start (the background loop
    restarting it for ever) and the completions after it never got the rule. It goes to the
    rules durable's dead letters, once, and the sweep finishes."""
    history = History(TEST_CENTER)
    opened(history, 1)
    first = completed(history, 1)
    async with published(settings, history, "unappliable") as (pool, nc):
        js = nc.jetstream()
        subject = f"{settings.subject_prefix}.feedback.RectificationCompleted.p0"
        garbled = (await js.publish(subject, b'{"not": "an envelope"')).seq
        newer = uuid.uuid5(uuid.NAMESPACE_URL, "rectification-2")
        history.add("feedback", "RectificationCompleted", "2026-11-20T15:00:00+08:00",
                    {"rectification_id": str(newer), "outcome": "rectified"},
                    case_id=uuid.uuid5(uuid.NAMESPACE_URL, "case-2"), aggregate_id=newer,
                    version=99, actor="supervisor-001")
        opened(history, 2)
        second = completed(history, 3)
        opened(history, 3)
        await history.publish_new(settings)
        old = Recorder()
        async with consumer_running(rules_of(settings, nc, pool, old, new=False)):
            await wait_until(lambda: through(settings, nc, old)(3),
                             what="the old rules through the log")
        rules = rules_of(settings, nc, pool, Completions(), new=True)
        await rules.ensure()
        rule = Completions()
        sweep = CompletedBefore(pool, nc, settings, rule, rules)
        assert await asyncio.wait_for(sweep.sweep(), 15) == 2
        assert rule.seen == [first, second] and newer not in rule.seen
        letters = await read_dead_letters(nc, settings, "followup-rules")
        assert garbled in {letter.stream_seq for letter in letters}
        assert len(letters) == 2 and all(letter.consumer == "followup-rules"
                                         for letter in letters)
        assert any("99" in letter.reason for letter in letters)
        # A sweep run again by a second worker racing the first: no second letter.
        await pool.execute("DELETE FROM upgrade_steps")
        assert await sweep.sweep() == 2
        assert len(await read_dead_letters(nc, settings, "followup-rules")) == 2


async def test_completions_the_old_release_passes_while_the_new_one_waits_get_the_rule(
        settings: Settings) -> None:
    """A rolling update (or the other worker of a split still on the old release): the new
    worker starts while the old one still drives the rules' durable. The old rules pass every
    completion recorded until they stop, and the new durable goes on from their floor."""
    history = History(TEST_CENTER)
    opened(history, 1)
    first = completed(history, 1)
    opened(history, 2)
    # The new worker's sweep starts beside the old rules and ends beside the new ones: one
    # guard over both consumers (``nothing_left_running``), not one over each.
    async with published(settings, history, "rolling") as (pool, nc), \
            nothing_left_running("a rolling update's two releases"):
        old = Recorder()
        async with consumer_running(rules_of(settings, nc, pool, old, new=False)):
            old_through = through(settings, nc, old)
            await wait_until(lambda: old_through(2), what="the old rules through the log")
            # The new worker starts: its rules stand by behind the old ones; its sweep begins.
            rule = Completions()
            new_rules = Completions()
            sweeping = asyncio.ensure_future(
                CompletedBefore(pool, nc, settings, rule,
                                rules_of(settings, nc, pool, new_rules, new=True)).sweep())
            # Meanwhile a supervisor records another outcome; the old rules pass it.
            second = completed(history, 2)
            opened(history, 3)
            await history.publish_new(settings)
            await wait_until(lambda: old_through(3), what="the old rules past the completion")
        # The old worker stops; the new one drives the durable.
        async with consumer_running(rules_of(settings, nc, pool, new_rules, new=True)):
            await asyncio.wait_for(sweeping, 15)
            opened(history, 4)  # a barrier: the new rules have read what comes to them
            await history.publish_new(settings)

            async def new_through() -> bool:
                return new_rules.others == 1
            await wait_until(new_through, what="the new rules at the barrier")
        assert first in rule.seen
        assert second in rule.seen + new_rules.seen


async def test_each_worker_of_a_split_sweeps_its_own_partitions_when_it_is_upgraded(
        settings: Settings) -> None:
    """Two workers share the partitions (the shipped layout) and are upgraded one after the
    other: the second one's completions, passed by its old release after the first worker's
    sweep, are swept when the second worker takes its durable."""
    half = settings.partitions // 2
    a_parts, b_parts = list(range(half)), list(range(half, settings.partitions))
    cases = [n for n in range(1, 60) if partition_of(
        uuid.uuid5(uuid.NAMESPACE_URL, f"case-{n}"), settings.partitions) in b_parts]
    history = History(TEST_CENTER)
    opened(history, cases[0])
    b_name = partitioned_name("followup-rules", b_parts)
    async with published(settings, history, "split") as (pool, nc):
        old_b = Recorder()
        async with consumer_running(rules_of(settings, nc, pool, old_b, new=False,
                                             owned=b_parts)):
            b_through = through(settings, nc, old_b, b_name)
            await wait_until(lambda: b_through(1), what="worker b's old rules through the log")
            # Worker a is upgraded first: its durable takes the completions, it sweeps.
            a_rules = rules_of(settings, nc, pool, Completions(), new=True, owned=a_parts)
            await a_rules.ensure()
            a_rule = Completions()
            await CompletedBefore(pool, nc, settings, a_rule, a_rules).sweep()
            # Worker b, still the old release, passes an outcome recorded meanwhile.
            done = completed(history, cases[0])
            opened(history, cases[1])
            await history.publish_new(settings)
            await wait_until(lambda: b_through(2), what="worker b's old rules past it")
        # Worker b is upgraded.
        b_rules = rules_of(settings, nc, pool, Completions(), new=True, owned=b_parts)
        await b_rules.ensure()
        b_rule = Completions()
        assert await CompletedBefore(pool, nc, settings, b_rule, b_rules).sweep() == 1
        assert b_rule.seen == [done] and a_rule.seen == []


async def test_a_new_durable_leaves_the_sweep_nothing(settings: Settings) -> None:
    history = History(TEST_CENTER)
    completed(history, 1)
    await stream_made(settings)
    await history.publish_new(settings)
    async with schema_pool(settings, "fresh", DDL) as pool, \
            bus_connection(settings, "fresh") as nc:
        rule = Completions()
        rules = rules_of(settings, nc, pool, Completions(), new=True)
        await rules.ensure()  # made by the new release: it reads every completion itself
        assert await CompletedBefore(pool, nc, settings, rule, rules).sweep() == 0
        assert rule.seen == []
