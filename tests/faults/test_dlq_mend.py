"""A dead letter mended and replayed: counter apps of an older release sent emotions the
contract never knew ("livid", "furious"), so the consumer could not decode two of a case's
events and dead-lettered them at once while the rest flowed. An upcaster that maps the old words
mends them; ``replay_dead_letters`` (behind ``sixstep dlq replay``) then applies each once, in
the order the case's events were recorded, drops them from the dead-letter stream, and a second
replay applies nothing. Half a fix keeps the case's order: the letter still unreadable holds back
the later letter of its case."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.deadletters import REPLAY_DDL, replay_dead_letters
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, Envelope
from shared.contracts.intake import concerns_noted_v1_to_v2
from shared.settings import Settings
from tests.support import TEST_CENTER, dead_letters, schema_pool, wait_until

SEEN_DDL = ["CREATE TABLE IF NOT EXISTS concerns_seen (n bigserial PRIMARY KEY, "
            "case_id uuid NOT NULL, event_id uuid NOT NULL, emotion text NOT NULL)"]


class ConcernsSeen:
    """The consumer's effect: one row per applied event, in the order applied."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for event in events:
            await conn.execute(
                "INSERT INTO concerns_seen (case_id, event_id, emotion) VALUES ($1, $2, $3)",
                event.partition_key, event.event_id, event.payload["emotion"])


def mending(old_words: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The fixed v1 -> v2 upcaster: the old release's words first, then the usual step."""
    def upcast(payload: dict[str, Any]) -> dict[str, Any]:
        emotion = payload.get("emotion")
        return concerns_noted_v1_to_v2({**payload,
                                        "emotion": old_words.get(emotion, emotion)})
    return upcast


class Stories:
    def __init__(self, settings: Settings, nc: Any) -> None:
        self.settings, self.js, self.position = settings, nc.jetstream(), 0
        self.versions: dict[uuid.UUID, int] = {}

    async def concerns(self, case: uuid.UUID, emotion: str, version: int) -> uuid.UUID:
        self.position += 1
        self.versions[case] = self.versions.get(case, 0) + 1
        payload: dict[str, Any] = {"needs": [], "worries": [], "emotion": emotion,
                                   "urgency": "normal"}
        if version == 2:
            payload["needs_defusing"] = False
        now = datetime.now(UTC)
        envelope = Envelope(event_id=uuid.uuid4(), type="ConcernsNoted", version=version,
                            service="intake", position=self.position, aggregate_id=case,
                            aggregate_version=self.versions[case], case_id=case,
                            center_id=TEST_CENTER, occurred_at=now, recorded_at=now,
                            actor="clerk-1", payload=payload)
        await self.js.publish(event_subject(self.settings, "intake", "ConcernsNoted", case),
                              orjson.dumps(envelope.model_dump(mode="json")))
        return envelope.event_id


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(settings, "mend", [*TRACKING_DDL, *REPLAY_DDL, *SEEN_DDL]) as pool:
        yield pool


async def test_a_mended_dead_letter_is_replayed_once_in_its_cases_order(
        settings: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = await connect(settings, "mend")
    await ensure_streams(nc.jetstream(), settings)
    stories = Stories(settings, nc)
    case, other = uuid.uuid4(), uuid.uuid4()
    first = await stories.concerns(case, "calm", 2)
    livid = await stories.concerns(case, "livid", 1)  # the old release's words
    furious = await stories.concerns(case, "furious", 1)
    last = await stories.concerns(case, "anxious", 2)
    await stories.concerns(other, "upset", 2)
    consumer = Consumer(settings=settings, nc=nc, pool=pool, name="mend", handler=ConcernsSeen(),
                        filter_subjects=[f"{settings.subject_prefix}.intake.ConcernsNoted.*"],
                        batch=10)
    running = asyncio.create_task(consumer.run())
    try:
        async def settled() -> bool:
            return consumer.stats.applied == 3 and consumer.stats.dead_lettered == 2
        await wait_until(settled, timeout=30, what="3 applied, 2 dead-lettered")
    finally:
        await consumer.drain()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    async def seen(of: uuid.UUID) -> list[uuid.UUID]:
        return [r["event_id"] for r in await pool.fetch(
            "SELECT event_id FROM concerns_seen WHERE case_id = $1 ORDER BY n", of)]

    assert await seen(case) == [first, last], "the rest of the case flowed past the letters"
    assert len(await dead_letters(settings)) == 2
    contract = REGISTRY.get("ConcernsNoted")

    # Half a fix: "furious" is mended, "livid" is not. The mended letter is the later of the
    # case's two: it must not overtake the one still unreadable.
    monkeypatch.setitem(contract.upcasters, 1, mending({"furious": "angry"}))
    report = await replay_dead_letters(nc, pool, settings, "mend", ConcernsSeen())
    assert report.replayed == [] and len(report.failed) == 2, report
    assert "waits behind dead letter" in str(report.failed[1]["reason"]), report
    assert await seen(case) == [first, last] and len(await dead_letters(settings)) == 2

    # The whole fix: both applied once, in the order they were recorded, and dropped.
    monkeypatch.setitem(contract.upcasters, 1, mending({"furious": "angry", "livid": "angry"}))
    report = await replay_dead_letters(nc, pool, settings, "mend", ConcernsSeen())
    assert len(report.replayed) == 2 and report.failed == [], report
    assert sorted(report.late) == sorted(report.replayed), "the case went on without them"
    assert await seen(case) == [first, last, livid, furious]
    assert await dead_letters(settings) == []

    again = await replay_dead_letters(nc, pool, settings, "mend", ConcernsSeen())
    assert (again.replayed, again.already_applied, again.failed) == ([], [], [])
    assert await seen(case) == [first, last, livid, furious], "nothing applied twice"
    assert await pool.fetchval("SELECT count(*) FROM consumer_replays") == 2
    await nc.close()
