"""The rectifications completed before follow-up's rules took ``RectificationCompleted`` get
the rule once, after the upgrade (``services/followup/completed_before.py``).

A durable whose subjects grow goes on from where it was: the old release's ``followup-rules``
never saw those completions, and their follow-ups stayed open, fell due and escalated a bad
review already put right. The sweep applies the rule to the completions at or below the rules'
ack floor (every earlier event of their cases applied by then), the ones after it are the
durable's own under its new subjects, and it runs once."""

from __future__ import annotations

import uuid

from services.followup.completed_before import DDL, STEP, CompletedBefore
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.feedback.helpers import History
from tests.intake.test_log_guarantees import stream_made
from tests.support import (
    TEST_CENTER,
    bus_connection,
    consumer_running,
    schema_pool,
    wait_until,
)


class Completions:
    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []

    async def rectification_completed(self, e: Envelope) -> None:
        self.seen.append(uuid.UUID(e.payload["rectification_id"]))


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
    await stream_made(settings)
    await history.publish_new(settings)
    async with schema_pool(settings, "upgrade", [*TRACKING_DDL, *DDL]) as pool, \
            bus_connection(settings, "upgrade") as nc:
        # The old release's rules: intake's events, no RectificationCompleted.
        old = Recorder()
        rules = Consumer(settings=settings, nc=nc, pool=pool, name="followup-rules",
                         handler=old, filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                         batch=10)
        async with consumer_running(rules):
            async def all_applied() -> bool:
                return len(old.applied) == 3
            await wait_until(all_applied, what="the old rules through the log")

            async def floor_acked() -> bool:
                info = await nc.jetstream().consumer_info(settings.stream_name,
                                                          "followup-rules")
                return info.num_ack_pending == 0
            await wait_until(floor_acked, what="the old rules' acks")
        later = completed(history, 3)  # after the floor: the rules' own under the new subjects
        await history.publish_new(settings)

        rule = Completions()
        sweep = CompletedBefore(pool, nc, settings, rule, rules)
        assert await sweep.sweep() == 2
        assert rule.seen == [first, second] and later not in rule.seen
        assert await pool.fetchval("SELECT applied FROM upgrade_steps WHERE name = $1",
                                   STEP) == 2
        # Once: the next start finds it done and reads nothing.
        assert await sweep.sweep() is None and rule.seen == [first, second]


async def test_a_new_durable_leaves_the_sweep_nothing(settings: Settings) -> None:
    history = History(TEST_CENTER)
    completed(history, 1)
    await stream_made(settings)
    await history.publish_new(settings)
    async with schema_pool(settings, "fresh", DDL) as pool, \
            bus_connection(settings, "fresh") as nc:
        rule = Completions()
        rules = Consumer(settings=settings, nc=nc, pool=pool, name="followup-rules",
                         handler=Recorder(), filter_subjects=[], batch=10)  # never started
        assert await CompletedBefore(pool, nc, settings, rule, rules).sweep() == 0
        assert rule.seen == []
