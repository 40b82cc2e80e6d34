"""One event dead-lettered more than once: by a partitioned replica's durable and by another
durable of the same consumer (an old split's), or by the same durable again after the
dead-letter stream's duplicate window (a redelivery given up on again). ``sixstep dlq list``
says which letters repeat which; ``dlq replay`` applies the event once and drops every letter
of it.

Before: the replay record was keyed by the letter's own durable, so a replay of the consumer
applied the event once per durable (a figure counted twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from shared.bus.consumer import TRACKING_DDL
from shared.bus.deadletters import REPLAY_DDL, read_dead_letters, repeats, replay_dead_letters
from shared.bus.jetstream import dead_letter_subject, publish_dead_letter
from shared.cli.dlq import _list as dlq_list
from shared.contracts import Envelope
from shared.settings import Settings
from tests.cli.in_process import invoke
from tests.faults.harness import service_env
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import bus_connection, dead_letters, schema_pool


class Counts:
    def __init__(self) -> None:
        self.applied: list[str] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.applied.extend(str(e.event_id) for e in events)


async def test_an_event_dead_lettered_three_times_is_listed_as_repeats_and_replayed_once(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    async with bus_connection(settings, "repeats") as nc, \
            schema_pool(settings, "repeats", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        js = nc.jetstream()
        event = await js.get_msg(settings.stream_name, seq=1)
        assert event.subject and event.data
        for durable in ("figures-p0_1", "figures-p0to3x4"):  # two splits' durables
            await publish_dead_letter(js, settings, durable, seq=1, subject=event.subject,
                                      data=event.data, reason="RuntimeError: a bug", tries=3)
        # The first durable again, after the duplicate window (its message id forgotten).
        await js.publish(dead_letter_subject(settings, "figures-p0_1"), event.data, headers={
            "Nats-Msg-Id": "dlq:figures-p0_1:1:after-the-window",
            "Sixstep-Consumer": "figures-p0_1", "Sixstep-Reason": "RuntimeError: a bug",
            "Sixstep-Subject": event.subject, "Sixstep-Stream-Seq": "1",
            "Sixstep-Delivered": "3"})

        letters = await read_dead_letters(nc, settings)
        assert len(letters) == 3
        first = min(letter.seq for letter in letters)
        assert repeats(letters) == {letter.seq: first for letter in letters
                                    if letter.seq != first}
        listed = await asyncio.to_thread(dlq_list, settings, "figures")  # sixstep dlq list
        assert sorted((x["seq"], x["same_event_as"]) for x in listed) == [
            (first, None), (first + 1, first), (first + 2, first)]
        status = await asyncio.to_thread(invoke, ["ops", "status"], env=service_env(settings))
        assert ("3 dead letter(s): figures 3; 2 repeat an earlier letter of their event"
                in " ".join(status.output.split())), status.output

        handler = Counts()
        report = await replay_dead_letters(nc, pool, settings, "figures", handler)
        assert len(handler.applied) == 1, handler.applied  # applied once, not per durable
        assert report.replayed == [first] and len(report.already_applied) == 2, report
        assert await dead_letters(settings) == []
