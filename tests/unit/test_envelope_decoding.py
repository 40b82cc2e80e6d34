"""A replay decodes an event on a faster path, and gets exactly what pydantic gives: the same
envelope, field by field, or the same error for what does not validate."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import ValidationError

from services.intake.domain import Case
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import EnvelopeHead, decode_envelope, decode_head, envelope_of
from shared.eventstore.application import ServiceApplication
from shared.eventstore.outbox import _envelope_fields, to_envelope


def stored(**changes: Any) -> dict[str, Any]:
    case = str(uuid4())
    body: dict[str, Any] = {
        "event_id": str(uuid4()), "type": "CaseOpened", "version": 3, "service": "intake",
        "position": 7, "aggregate_id": case, "aggregate_version": 1, "case_id": case,
        "center_id": "SH-PD-HUAMU", "occurred_at": "2025-01-02T09:51:00+08:00",
        "recorded_at": "2025-01-02T09:51:00.019000+08:00", "causation_id": "key-1",
        "correlation_id": case, "actor": "clerk-7", "payload": {"item": "SA-X", "n": [1, 2.5]},
    }
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def same_envelope(a: Envelope, b: Envelope) -> None:
    assert type(a) is type(b) is Envelope
    assert a == b
    assert list(a.__dict__) == list(b.__dict__)
    assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
    for name, value in a.__dict__.items():
        other = b.__dict__[name]
        assert type(value) is type(other) and repr(value) == repr(other), name
        if isinstance(value, datetime):
            assert type(value.tzinfo) is type(other.tzinfo)
            assert value.tzname() == other.tzname()
    assert a.model_dump_json() == b.model_dump_json()
    assert a.event_id.is_safe == b.event_id.is_safe
    assert (a.__pydantic_extra__, a.__pydantic_private__) == (b.__pydantic_extra__,
                                                              b.__pydantic_private__)
    assert pickle.loads(pickle.dumps(a)) == b
    assert a.model_copy(update={"version": 9}) == b.model_copy(update={"version": 9})


ACCEPTED = [
    stored(),
    stored(occurred_at="2025-01-02T01:51:00Z", recorded_at="2025-01-02T01:51:00.1-05:30"),
    stored(causation_id=..., correlation_id=...),
    stored(case_id=None),
    stored(event_id=str(uuid4()).upper().replace("-", "")),
    stored(occurred_at="1970-01-01T00:00:00+00:00", recorded_at="2199-12-31T23:59:59Z"),
    stored(occurred_at="1970-01-01T08:00:00+08:00"),
    stored(recorded_at="2199-12-31T20:00:00-03:59"),
    stored(version="3", position=7.0),
    stored(occurred_at=1735782660),
]

REFUSED = [
    stored(occurred_at="2025-01-02T09:51:00"),  # no offset
    stored(occurred_at="1969-12-31T23:59:59Z"),
    stored(occurred_at="1970-01-01T07:59:59+08:00"),
    stored(recorded_at="2200-01-01T00:00:00Z"),
    stored(recorded_at="2199-12-31T20:00:00-04:00"),
    stored(extra="no"),
    stored(actor=...),
    stored(case_id=...),
    stored(version=0),
    stored(event_id="not-a-uuid"),
    stored(payload=[1, 2]),
    stored(center_id=12),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_a_stored_event_is_decoded_as_pydantic_decodes_it(body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    same_envelope(decode_envelope(data), Envelope.model_validate_json(data))


@pytest.mark.parametrize("body", REFUSED)
def test_an_event_that_does_not_validate_is_refused_with_pydantic_s_own_error(
        body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    with pytest.raises(ValidationError) as expected:
        Envelope.model_validate_json(data)
    with pytest.raises(ValidationError) as got:
        decode_envelope(data)
    assert str(got.value) == str(expected.value)


def test_bytes_that_are_not_json_are_refused_the_same_way() -> None:
    data = b'{"event_id": '
    with pytest.raises(ValidationError) as expected:
        Envelope.model_validate_json(data)
    with pytest.raises(ValidationError) as got:
        decode_envelope(data)
    assert str(got.value) == str(expected.value)


def test_a_decoded_envelope_is_frozen_as_pydantic_s_is() -> None:
    data = orjson.dumps(stored())
    with pytest.raises(ValidationError) as expected:
        Envelope.model_validate_json(data).version = 4  # type: ignore[misc]
    with pytest.raises(ValidationError) as got:
        decode_envelope(data).version = 4  # type: ignore[misc]
    assert str(got.value) == str(expected.value)


def test_a_valid_event_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing on the fast path fails for an ordinary event (e.g. a pydantic whose models
    cannot swap their class), which would silently cost pydantic's full price each time."""
    def refused(data: bytes | str) -> Envelope:
        raise AssertionError("decoded again by pydantic")

    monkeypatch.setattr(Envelope, "model_validate_json", refused)
    for body in ACCEPTED[:5]:
        assert type(decode_envelope(orjson.dumps(body))) is Envelope


def test_the_head_of_an_event_a_consumer_ignores_is_what_its_envelope_says() -> None:
    body = stored(type="RequestHeard", version=REGISTRY.get("RequestHeard").version)
    head = decode_head(orjson.dumps(body))
    whole = decode_envelope(orjson.dumps(body))
    assert head is not None
    for name in EnvelopeHead.model_fields:
        assert getattr(head, name) == getattr(whole, name), name
    assert head.partition_key == whole.partition_key
    no_case = stored(type="RequestHeard", version=REGISTRY.get("RequestHeard").version,
                     case_id=None)
    assert decode_head(orjson.dumps(no_case)).partition_key == UUID(no_case["aggregate_id"])


@pytest.mark.parametrize("changes", [
    {"type": "NoSuchEvent"},  # refused whole, as an unknown type: dead-lettered
    {"type": "RequestHeard", "version": 0},
    {"event_id": "not-a-uuid"},
    {"position": 0},
    {"case_id": ...},
])
def test_a_head_that_cannot_say_leaves_the_event_to_be_decoded_whole(
        changes: dict[str, Any]) -> None:
    assert decode_head(orjson.dumps(stored(**changes))) is None
    assert decode_head(b"{not json") is None


def test_an_older_version_is_decoded_whole_to_be_upcast() -> None:
    older = [c for c in REGISTRY if c.version > 1]
    assert older, "a contract with an older version to upcast"
    body = stored(type=older[0].type, version=older[0].version - 1)
    assert decode_head(orjson.dumps(body)) is None


def as_stored_values(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the relay hands it to the envelope: ids as ``UUID``, moments as the store
    reads them back (``datetime.fromisoformat``: a fixed ``timezone`` offset)."""
    out = dict(body)
    for name in ("event_id", "aggregate_id", "case_id"):
        if isinstance(out.get(name), str) and len(out[name]) == 36:
            out[name] = UUID(out[name])
    for name in ("occurred_at", "recorded_at"):
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


SHANGHAI = ZoneInfo("Asia/Shanghai")
RELAYED = [*ACCEPTED, *map(as_stored_values, ACCEPTED), as_stored_values(stored(
    occurred_at=datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI),
    recorded_at=datetime(2028, 2, 29, 12, tzinfo=UTC))), as_stored_values(stored(
        occurred_at=datetime(2026, 12, 20, 9, tzinfo=timezone(timedelta(hours=8)))))]
NOT_RELAYED = [*REFUSED, *map(as_stored_values, REFUSED), as_stored_values(stored(
    occurred_at=datetime(2026, 12, 20, 9))), as_stored_values(stored(
        occurred_at=datetime(1970, 1, 1, 7, 59, tzinfo=SHANGHAI))), as_stored_values(stored(
            recorded_at=datetime(2199, 12, 31, 20, tzinfo=timezone(timedelta(hours=-4)))))]


@pytest.mark.parametrize("fields", RELAYED)
def test_the_relays_envelope_is_the_one_pydantic_makes(fields: dict[str, Any]) -> None:
    same_envelope(envelope_of(fields), Envelope(**fields))


@pytest.mark.parametrize("fields", NOT_RELAYED)
def test_the_relays_envelope_is_refused_with_pydantic_s_own_error(
        fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as expected:
        Envelope(**fields)
    with pytest.raises(ValidationError) as got:
        envelope_of(fields)
    assert str(got.value) == str(expected.value)


def test_a_stored_case_leaves_the_relay_without_pydantic_s_after_validators(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's envelope of an ordinary event (a case opened at the counter, moments as
    the store reads them back) takes the fast path: ``Envelope(**...)`` runs the two moments'
    validators as Python calls from pydantic-core, some 2 us of the relay's ~50 an event."""
    app = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    case_id = uuid4()
    meta = {"actor": "clerk-017", "occurred_at": datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI),
            "causation_id": "step-" + "a" * 32, "correlation_id": None,
            "center_id": "SH-PD-HUAMU", "case_id": case_id}
    case = Case(id=case_id, center_id="SH-PD-HUAMU", counter_id="w3", clerk_id="clerk-017",
                channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                meta=meta)
    stored_event = app.mapper.to_stored_event(case.collect_events()[0])
    event = app.mapper.to_domain_event(stored_event)
    expected = Envelope(**_envelope_fields("intake", 1, event, "CaseOpened",
                                           REGISTRY.get("CaseOpened").version,
                                           to_envelope("intake", 1, event).payload))

    def refused(self: Envelope, **fields: Any) -> None:
        raise AssertionError("validated again by pydantic")

    monkeypatch.setattr(Envelope, "__init__", refused)
    same_envelope(to_envelope("intake", 1, event), expected)
