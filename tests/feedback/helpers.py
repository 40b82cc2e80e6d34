"""What the feedback tests share: a hand-set clock, a sender that keeps what it sent, and a way
to write a hand-built history straight onto the stream."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from services.feedback.sending import SurveyMessage
from shared.bus import connect, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.settings import Settings


class Clock:
    """Stands still until moved: ``clock.now = ...`` or ``clock.advance(...)``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


class History:
    """Events of every service as their relays would publish them, built by hand."""

    def __init__(self, center_id: str) -> None:
        self.center_id = center_id
        self.envelopes: list[Envelope] = []
        self._positions: dict[str, int] = defaultdict(int)
        self._versions: dict[UUID, int] = defaultdict(int)

    def add(self, service: str, type_: str, at: str, payload: dict[str, Any], *,
            case_id: UUID | None, aggregate_id: UUID | None = None,
            version: int | None = None) -> Envelope:
        """``version`` older than the contract's: the payload as it was stored back then."""
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
            center_id=self.center_id, occurred_at=when, recorded_at=when,
            actor="test", payload=payload)
        self.envelopes.append(envelope)
        return envelope

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
