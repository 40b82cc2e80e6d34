"""More consumers on the stream than the server lists at once (256 a page, by name): a city's
split workers, each with its own durable of every consumer, and the durables old splits left.

``Consumer.durables`` read the first page only, so a durable named after 256 others was taken
for one that is not there: the figures' ``caught_up`` said no for good (every close of a month
503 ``figures_catching_up``), and a rebuild did not pause a live durable it could not see."""

from __future__ import annotations

from nats.js.api import AckPolicy, ConsumerConfig

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import every_consumer
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import stream_made
from tests.support import bus_connection, schema_pool


async def test_the_figures_count_as_caught_up_past_the_first_page_of_consumers(
        settings: Settings) -> None:
    await stream_made(settings)
    prefix = settings.subject_prefix
    async with schema_pool(settings, "many", TRACKING_DDL) as pool, \
            bus_connection(settings, "many") as nc:
        js = nc.jetstream()
        # Named before the figures' durable: the server's first page holds only these.
        for n in range(260):
            await js.add_consumer(settings.stream_name, ConsumerConfig(
                durable_name=f"audit-{n:03}", ack_policy=AckPolicy.EXPLICIT,
                filter_subject=f"{prefix}.audit.Noted.p{n}"))
        figures = Consumer(settings=settings, nc=nc, pool=pool, name="feedback-figures",
                           handler=Recorder(), filter_subjects=[f"{prefix}.feedback.*.*"])
        await figures.ensure()  # nothing on its subjects: it has applied everything
        assert len(await every_consumer(js, settings.stream_name)) == 261
        assert [info.name for info in await figures.durables()] == ["feedback-figures"]
        assert await figures.caught_up()
