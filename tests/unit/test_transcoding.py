"""What a service stores is encoded by orjson, byte for byte as eventsourcing's own JSON
transcoder encodes it: events stored before and after read the same, and anything orjson
would spell otherwise (a float, a huge integer, a subclass, an unknown type, a lone
surrogate) goes to the library's encoder, with the library's answer or error."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from services.followup.application import FollowUpApplication
from shared.eventstore.application import ServiceApplication
from shared.eventstore.transcoding import OrjsonTranscoder


class Level(enum.StrEnum):
    HIGH = "high"


class Count(enum.IntEnum):
    ONE = 1


class Unknown:
    pass


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    """The library's and ours, with the transcodings every service registers."""
    app = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    ours = app.mapper.transcoder
    assert type(ours) is OrjsonTranscoder
    theirs = JSONTranscoder()
    app.register_transcodings(theirs)
    return theirs, ours


THEIRS, OURS = transcoders()

scalars = st.one_of(
    st.none(), st.booleans(), st.text(), st.integers(), st.integers(-2 ** 70, 2 ** 70),
    st.floats(allow_nan=True), st.uuids(), st.dates(), st.decimals(allow_nan=False),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=8))])),
    st.sampled_from([Level.HIGH, Count.ONE, "\ud800", "\x00\x1f\x7f\u2028\"\\/é中"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 3)), inner, max_size=4)),
    max_leaves=20)


def encoded(transcoder: JSONTranscoder, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", transcoder.encode(value)
    except Exception as exc:  # the same error type, as the library raises it
        return "error", type(exc)


@given(st.dictionaries(st.text(max_size=8), values, max_size=8))
def test_any_state_is_stored_as_the_library_stores_it(state: dict[str, Any]) -> None:
    assert encoded(OURS, state) == encoded(THEIRS, state)


@pytest.mark.parametrize("value", [
    {"due_at": datetime(2025, 3, 3, 9, tzinfo=UTC), "id": uuid.UUID(int=7),
     "day": date(2025, 3, 3), "amount": Decimal("12.50"), "meta": {"case_id": None}},
    {"level": Level.HIGH, "count": Count.ONE, "float": 1e16, "tiny": 1e-7, "nan": float("nan")},
    {"big": 2 ** 64, "edge": 2 ** 64 - 1, "low": -(2 ** 63), "lower": -(2 ** 63) - 1},
    {1: "an int key"}, {"x": Unknown()}, {"lone": "\udc00"}, {"deep": [[[[[[[[]]]]]]]]},
])
def test_the_edges_are_stored_as_the_library_stores_them(value: dict[str, Any]) -> None:
    assert encoded(OURS, value) == encoded(THEIRS, value)


def test_a_stored_follow_up_reads_back_as_it_was() -> None:
    app = FollowUpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    state = {"due_at": datetime(2025, 3, 3, 9, tzinfo=UTC), "resident_id": uuid.UUID(int=5),
             "due_rule": {"day": date(2025, 3, 4), "working_days": 3}, "contact": True}
    stored = app.mapper.transcoder.encode(state)
    assert stored == THEIRS.encode(state)
    assert app.mapper.transcoder.decode(stored) == state


def decoded(transcoder: JSONTranscoder, data: bytes) -> tuple[str, Any]:
    """What a transcoder reads from ``data``: its value (by ``repr``, which tells 1, 1.0 and
    True apart and shows a NaN), or its error's type."""
    try:
        return "value", repr(transcoder.decode(data))
    except Exception as exc:  # the same error type, as the library raises it
        return "error", type(exc)


@given(st.dictionaries(st.text(max_size=8), values, max_size=8))
def test_any_stored_state_is_read_as_the_library_reads_it(state: dict[str, Any]) -> None:
    kind, data = encoded(THEIRS, state)
    if kind == "bytes":
        assert decoded(OURS, data) == decoded(THEIRS, data)


@pytest.mark.parametrize("data", [
    b'{"big":123456789012345678901234567890,"edge":18446744073709551615,'
    b'"low":-9223372036854775809}',  # orjson reads the first and the last as floats
    b'{"f":1.5,"e":1e400,"n":NaN,"i":-Infinity}', b'[1.0,{"_type_":"uuid_hex","_data_":"ab"}]',
    b'{"lone":"\\ud800"}', b'{"bad":"\xff"}', b'\xef\xbb\xbf{}', b' {"a" : [ ] } ',
    b'{"a":1,"a":2}',
    b'{"_type_":"nobody_knows","_data_":"x"}', b'{"_type_":5,"_data_":"x"}',
    b'{"_type_":["uuid_hex"],"_data_":"x"}', b'{"_type_":"uuid_hex","_data_":"not hex"}',
    b'{"_type_":"uuid_hex","_data_":5}', b'{"_type_":"uuid_hex"}', b'{"_data_":"x","y":1}',
    b'{"_type_":"uuid_hex","_data_":"x","more":1}', b'{"x":{"_data_":"y","_type_":"date_iso"}}',
    b'{"d":{"_type_":"date_iso","_data_":"2026-12-20"},"l":[[{"_type_":"datetime_iso",'
    b'"_data_":"2028-02-29T23:30:00+08:00"}]],"u":{"_type_":"uuid_hex",'
    b'"_data_":"00000000000000000000000000000007"}}',
    b'{"_type_":"decimal_str","_data_":"12.50"}', b'"just text"', b'null',
    b'[' * 2000 + b']' * 2000,
])
def test_the_edges_are_read_as_the_library_reads_them(data: bytes) -> None:
    assert decoded(OURS, data) == decoded(THEIRS, data)


def test_a_stored_case_is_read_without_the_librarys_json_decoder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's decoder (the standard library's scanner, a Python call per object) is
    only the way out for what orjson may read otherwise, never a stored event's way."""
    state = {"timestamp": datetime(2026, 12, 20, 9, tzinfo=UTC), "center_id": "SH-PD-HUAMU",
             "resident_id": None, "tags": ["money", {"id": uuid.UUID(int=3)}],
             "meta": {"occurred_at": datetime(2026, 12, 31, 23, 30, tzinfo=timezone(
                 timedelta(hours=8))), "case_id": uuid.UUID(int=5), "actor": "clerk-017",
                 "day": date(2028, 2, 29), "count": 3, "kept": True}}
    stored = OURS.encode(state)
    monkeypatch.setattr(JSONTranscoder, "decode", lambda self, data: pytest.fail(
        "a stored state went to the library's decoder"))
    assert OURS.decode(stored) == state
