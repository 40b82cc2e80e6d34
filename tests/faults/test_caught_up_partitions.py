"""Whether the figures counted every partition reads which partitions each durable takes
from its filter subjects, not its name: a worker of more than four partitions is named by the
first, the last and how many (``-p0to15x5`` for 0-3 and 15), and the name read as a range took
every partition between as that worker's. With the other worker (4-14) stopped, the figures
were caught up and a month closed with its partitions uncounted."""

from __future__ import annotations

import orjson

from shared.bus.consumer import TRACKING_DDL, Consumer, partitioned_name
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import stream_made
from tests.support import bus_connection, schema_pool, wait_until


async def test_a_worker_of_scattered_partitions_does_not_count_the_others_between(
        settings: Settings) -> None:
    sixteen = settings.model_copy(update={"partitions": 16})
    prefix = settings.subject_prefix
    await stream_made(settings)
    async with schema_pool(settings, "scattered", TRACKING_DDL) as pool, \
            bus_connection(settings, "scattered") as nc:
        def worker(owned: list[int]) -> Consumer:
            return Consumer(settings=sixteen, nc=nc, pool=pool,
                            name=partitioned_name("feedback-figures", owned),
                            handler=Recorder(),
                            filter_subjects=[f"{prefix}.intake.*.p{p}" for p in owned])

        a = worker([0, 1, 2, 3, 15])
        b = worker(list(range(4, 15)))
        assert a.name == "feedback-figures-p0to15x5"
        await a.ensure()
        await b.ensure()
        # An event of partition 7: worker b, stopped, has not counted it.
        await nc.jetstream().publish(f"{prefix}.intake.CaseOpened.p7", orjson.dumps({}))

        async def b_has_it_pending() -> bool:  # the server counts it after the publish's ack
            return any(info.num_pending for info in await b.durables()
                       if info.name == b.name)
        await wait_until(b_has_it_pending, what="worker b's durable to count the event")
        assert not await a.caught_up()
