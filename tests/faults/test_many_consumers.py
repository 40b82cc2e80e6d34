"""More consumers on the stream than the server lists at once (256 a page, by name): a city's
split workers, each with its own durable of every consumer, and the durables old splits left.

``Consumer.durables`` read the first page only, so a durable named after 256 others was taken
for one that is not there: the figures' ``caught_up`` said no for good (every close of a month
503 ``figures_catching_up``), and a rebuild did not pause a live durable it could not see."""

from __future__ import annotations

from typing import cast

from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo
from nats.js.client import JetStreamContext

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


class DeletingBetweenPages:
    """The JetStream API, where some consumers of the first page end (ephemeral readers time
    out, a forgotten split is deleted) right after it is read."""

    def __init__(self, js: JetStreamContext, stream: str, ending: list[str]) -> None:
        self.js, self.stream, self.ending = js, stream, ending
        self.pages = 0

    async def consumers_info(self, stream: str, offset: int | None = None
                             ) -> list[ConsumerInfo]:
        page = await self.js.consumers_info(stream, offset=offset)
        self.pages += 1
        if self.pages == 1:
            for name in self.ending:
                await self.js.delete_consumer(self.stream, name)
        return page


async def test_consumers_ending_between_two_pages_skip_nobody(settings: Settings) -> None:
    """Paged by a plain offset, every consumer ending between two pages moved one after it
    onto the page already read: the figures' durable, named after them, was not seen (a
    month's close then counts its figures as caught up without it)."""
    await stream_made(settings)
    prefix = settings.subject_prefix
    async with bus_connection(settings, "ending") as nc:
        js = nc.jetstream()
        for n in range(257):
            await js.add_consumer(settings.stream_name, ConsumerConfig(
                durable_name=f"audit-{n:03}", ack_policy=AckPolicy.EXPLICIT,
                filter_subject=f"{prefix}.audit.Noted.p{n}"))
        await js.add_consumer(settings.stream_name, ConsumerConfig(
            durable_name="feedback-figures", ack_policy=AckPolicy.EXPLICIT,
            filter_subject=f"{prefix}.feedback.*.*"))
        ending = [f"audit-{n:03}" for n in range(10)]
        paging = DeletingBetweenPages(js, settings.stream_name, ending)
        names = {info.name for info in await every_consumer(
            cast(JetStreamContext, paging), settings.stream_name)}
        assert "feedback-figures" in names
        assert {f"audit-{n:03}" for n in range(10, 257)} <= names
