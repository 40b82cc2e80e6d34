"""The relay encodes an envelope by its own serializer in one pass, and gets the bytes the
two-pass ``orjson.dumps(model_dump(mode="json"))`` gave: what is on the stream does not
change with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.contracts import Envelope
from shared.eventstore.outbox import encode
from tests.unit.test_envelope_decoding import ACCEPTED, stored

PAYLOADS: list[dict[str, Any]] = [
    {"item": "SA-X", "n": [1, 2.5, -0.0, 1e16, 1.5e-7, 123456789.123456789, 2**63 - 1]},
    {"words": "第3位居民：我想问一下医疗报销的材料还差什么 \u2028 \"quoted\" \\ tab\t", "ok": True},
    {"nested": {"due": {"days": 2, "at": None}}, "list": [], "empty": {}},
    {"emoji": "🙂", "control": "\x00\x1f"},
]


@pytest.mark.parametrize("body", ACCEPTED + [stored(payload=p) for p in PAYLOADS])
def test_an_envelope_is_encoded_as_before(body: dict[str, Any]) -> None:
    envelope = Envelope.model_validate(body)
    assert encode(envelope) == orjson.dumps(envelope.model_dump(mode="json"))


def test_an_event_published_as_stored_is_encoded_as_before() -> None:
    """``as_stored``: a contract refused it, so it goes unvalidated (here a year-1 moment)."""
    body = stored()
    envelope = Envelope.model_construct(**{
        **Envelope.model_validate(body).__dict__,
        "occurred_at": datetime(1, 1, 1, tzinfo=UTC), "payload": {"words": "x" * 3}})
    assert encode(envelope) == orjson.dumps(envelope.model_dump(mode="json"))


def test_the_relay_reads_each_contracts_payload_fields_once_and_in_order() -> None:
    """``to_envelope`` takes an event's payload by its contract's fields, in their order, read
    once per payload class (pydantic's ``model_fields`` class property, ~5 % of it per
    event)."""
    from shared.contracts import REGISTRY
    from shared.eventstore.outbox import _payload_fields

    for contract in REGISTRY:
        names = _payload_fields(contract.payload)
        assert names == tuple(contract.payload.model_fields)
        assert _payload_fields(contract.payload) is names
