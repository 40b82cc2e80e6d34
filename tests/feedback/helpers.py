"""What the feedback tests share: a hand-set clock, a sender that keeps what it sent, and a way
to write a hand-built history straight onto the stream."""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.feedback.figures import DDL as FIGURES_DDL
from services.feedback.figures import FiguresProjection
from services.feedback.sending import SurveyMessage
from shared.bus.jetstream import connect, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.support import schema_pool


class Clock(ManualClock):
    """The kernel's hand-set clock, moved by keywords: ``clock.advance(hours=2)``."""

    def advance(self, by: timedelta | None = None, **delta: float) -> None:
        super().advance(by if by is not None else timedelta(**delta))


class KeptSender:
    """The SMS gateway and the counter tablet, as a test can have them: it keeps every message."""

    def __init__(self) -> None:
        self.sent: list[SurveyMessage] = []

    async def send(self, message: SurveyMessage) -> None:
        self.sent.append(message)

    def for_survey(self, survey_id: str | UUID) -> SurveyMessage | None:
        return next((m for m in self.sent if str(m.survey_id) == str(survey_id)), None)

    def for_case(self, case_id: str | UUID) -> SurveyMessage | None:
        return next((m for m in self.sent if str(m.case_id) == str(case_id)), None)


@contextlib.asynccontextmanager
async def figures_schema(settings: Settings, name: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a schema of the test's own holding the figures read model's empty tables."""
    async with schema_pool(settings, name, FIGURES_DDL) as pool:
        yield pool


async def fold_figures(pool: asyncpg.Pool, settings: Settings, envelopes: list[Envelope],
                       batch: int, rebuilding: bool) -> None:
    """``envelopes`` through a new figures projection, ``batch`` at a time, each batch in its
    own transaction: the live handler's ``apply``, or the rebuild's ``copy_apply``."""
    projection = FiguresProjection(settings.tz)
    apply = projection.copy_apply if rebuilding else projection.apply
    for i in range(0, len(envelopes), batch):
        async with pool.acquire() as c, c.transaction():
            await apply(c, envelopes[i:i + batch])


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


class History:
    """Events of every service as their relays would publish them, built by hand."""

    def __init__(self, center_id: str) -> None:
        self.center_id = center_id
        self.envelopes: list[Envelope] = []
        self._positions: dict[str, int] = defaultdict(int)
        self._versions: dict[UUID, int] = defaultdict(int)
        self._centers: dict[UUID, str] = {}

    def add(self, service: str, type_: str, at: str, payload: dict[str, Any], *,
            case_id: UUID | None, aggregate_id: UUID | None = None,
            version: int | None = None, actor: str = "test",
            center_id: str | None = None, recorded_at: datetime | None = None) -> Envelope:
        """``version`` older than the contract's: the payload as it was stored back then.
        ``recorded_at``: when its service stored it (its place in the log), else ``at``."""
        aggregate = aggregate_id or case_id
        assert aggregate is not None
        self._positions[service] += 1
        self._versions[aggregate] += 1
        when = datetime.fromisoformat(at)
        contract = REGISTRY.get(type_)
        if version is None or version == contract.version:
            version = contract.version
            payload = contract.payload.model_validate(payload).model_dump(mode="json")
        envelope = Envelope(
            event_id=event_id_for(service, aggregate, self._versions[aggregate]),
            type=type_, version=version, service=service,
            position=self._positions[service], aggregate_id=aggregate,
            aggregate_version=self._versions[aggregate], case_id=case_id,
            center_id=center_id or self.center_id, occurred_at=when,
            recorded_at=recorded_at or when,
            actor=actor, payload=payload)
        self.envelopes.append(envelope)
        return envelope

    # -- a resident, as intake's relay publishes it (no personal data, partitioned by the
    #    resident's id: the resident is the aggregate, there is no case) --------------------

    def consent(self, resident_id: UUID, at: str, *, contact: bool, surveys: bool,
                reason: str = "changed", actor: str = "clerk-017") -> Envelope:
        """``ConsentChanged`` at registration or a later change, by the clerk who took it."""
        return self.add("intake", "ConsentChanged", at, {
            "resident_id": str(resident_id), "contact": contact, "surveys": surveys,
            "reason": reason}, case_id=None, aggregate_id=resident_id, actor=actor)

    def erased(self, resident_id: UUID, at: str, actor: str = "director-01") -> Envelope:
        """``ResidentErased`` by a supervisor of the registering center (``center_id``)."""
        return self.add("intake", "ResidentErased", at, {"resident_id": str(resident_id)},
                        case_id=None, aggregate_id=resident_id, actor=actor)

    def case(self, at: str, *, resident_id: UUID | None, channel: str = "counter",
             clerk_id: str = "clerk-017", item: str = "SA-HARDSHIP-SUBSIDY",
             center_id: str | None = None) -> UUID:
        """``CaseOpened``: a new case (of this center unless ``center_id``); returns its id."""
        case_id = uuid.uuid4()
        center = center_id or self.center_id
        self._centers[case_id] = center
        self.add("intake", "CaseOpened", at, {
            "center_id": center, "counter_id": "window-3", "clerk_id": clerk_id,
            "channel": channel, "service_item": item,
            "resident_id": str(resident_id) if resident_id else None},
            case_id=case_id, actor=clerk_id, center_id=center)
        return case_id

    def step(self, case_id: UUID, type_: str, at: str, **payload: Any) -> Envelope:
        """Another step of a case opened with :meth:`case` (its center, its clerk)."""
        return self.add("intake", type_, at, payload, case_id=case_id, actor="clerk-017",
                        center_id=self._centers.get(case_id))

    def resolved(self, case_id: UUID, at: str, *, outcome: str = "resolved",
                 defused: bool = True) -> Envelope:
        return self.step(case_id, "CaseResolved", at, outcome=outcome,
                         explanation="当场办结", emotion_defused=defused)

    def take(self) -> History:
        """The events added so far, as a History of their own; this one goes on from here
        (positions and versions continue), empty."""
        taken = History(self.center_id)
        taken.envelopes, self.envelopes = self.envelopes, []
        return taken

    async def publish_new(self, settings: Settings) -> int:
        """Publish what was added since the last ``publish_new`` (and keep going on)."""
        return await self.take().publish(settings)

    async def publish(self, settings: Settings) -> int:
        """Onto the test's stream, in order; returns the last stream sequence."""
        nc = await connect(settings, "test-history")
        try:
            js = nc.jetstream()
            last = 0
            for e in self.envelopes:
                ack = await js.publish(
                    event_subject(settings, e.service, e.type, e.partition_key),
                    orjson.dumps(e.model_dump(mode="json")),
                    headers={"Nats-Msg-Id": f"history:{e.service}:{e.position}"})
                last = ack.seq
            return last
        finally:
            await nc.close()
