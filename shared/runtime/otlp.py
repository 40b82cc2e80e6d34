"""A batch of spans encoded for OTLP/HTTP straight to protobuf bytes: the same bytes as the
SDK's exporter sends, a few times cheaper to make.

The SDK's encoder (``encode_spans(spans).SerializePartialToString()``) builds a protobuf
message object for every span, every attribute (a ``KeyValue`` and an ``AnyValue`` each),
link and status, and hashes each span's ``Resource`` (a JSON dump of its attributes) to
group the spans: ~15 us a span on the exporter's thread, holding the GIL the request's
event loop waits for (benchmarks/README.md, intake55). Here a span of the ordinary kind
(attributes of text, bool, int, float or sequences of them; no events, though the counts a
span limit dropped) is written as its wire format directly, the resource and the
instrumentation scope once per batch (grouped as the SDK's dicts group them); any other
span is encoded by the SDK's own functions, and its bytes put in the same place. The
fields are written in the order the SDK's encoder writes them (by field number), so the
request's bytes equal the SDK's (``tests/unit/test_otlp_encoding.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from struct import Struct
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

_logger = logging.getLogger(__name__)

_FIXED64 = Struct("<Q").pack
_FIXED32 = Struct("<I").pack
_DOUBLE = Struct("<d").pack
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
#: ``Span.kind``'s field by the SpanKind's number (``SPAN_KIND_INTERNAL`` is 1, the SDK's 0).
_KIND = tuple(b"\x30" + bytes((n + 1,)) for n in range(max(k.value for k in SpanKind) + 1))
#: ``SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK``, and with ``..._IS_REMOTE_MASK``.
_LOCAL_PARENT = b"\x85\x01" + _FIXED32(0x100)
_REMOTE_PARENT = b"\x85\x01" + _FIXED32(0x300)
_LINK_LOCAL = b"\x35" + _FIXED32(0x100)
_LINK_REMOTE = b"\x35" + _FIXED32(0x300)
_EMPTY_STATUS = b"\x7a\x00"


class _Unusual(Exception):
    """A span this module does not write itself: the SDK's encoder writes it."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: its tag, the body's length, the body."""
    n = len(body)
    return tag + (bytes((n,)) if n < 0x80 else _varint(n)) + body


_KEYS: dict[str, bytes] = {}
_KEYS_KEPT = 4096


def _key(key: str) -> bytes:
    """``KeyValue.key``'s field, kept per key (a process has a few dozen)."""
    made = _KEYS.get(key)
    if made is None:
        made = _field(b"\x0a", key.encode()) if key else b""
        if len(_KEYS) < _KEYS_KEPT:
            _KEYS[key] = made
    return made


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``'s body, as the SDK's ``_encode_value`` chooses its kind."""
    kind = type(value)
    if kind is str:
        return _field(b"\x0a", value.encode())
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unusual  # the SDK logs and leaves the attribute out
        return b"\x18" + _varint(value if value >= 0 else value + (1 << 64))
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if kind is tuple or kind is list:
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    raise _Unusual


def _attributes(tag: bytes, attributes: Any) -> bytes:
    if not attributes:
        return b""
    # A BoundedAttributes' own dict: its Mapping methods are Python, a lock's turn a key
    items = getattr(attributes, "_dict", attributes).items()
    return b"".join([_field(tag, _key(key) + _field(b"\x12", _any_value(value)))
                     for key, value in items])


def _span(span: ReadableSpan) -> bytes:
    """A ``Span``'s body, in the SDK's field order; :class:`_Unusual` for what it does not
    write (events; an attribute of another kind)."""
    if span._events:
        raise _Unusual
    context = span._context
    trace_state = context.trace_state
    parent = span._parent
    out = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"),
           b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if trace_state:
        out.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items()).encode()))
    if parent:
        out += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    if span._name:
        out.append(_field(b"\x2a", span._name.encode()))
    out.append(_KIND[span._kind._value_])  # the enum's value, without its property
    if span._start_time:
        out += (b"\x39", _FIXED64(span._start_time))
    if span._end_time:
        out += (b"\x41", _FIXED64(span._end_time))
    attributes = span._attributes
    if attributes:
        out.append(_attributes(b"\x4a", attributes))
    dropped = getattr(attributes, "dropped", 0)
    if dropped:
        out += (b"\x50", _varint(dropped))
    if span.dropped_events:  # none kept (a limit of 0), yet counted
        out += (b"\x60", _varint(span.dropped_events))
    for link in span._links:
        linked = link.context
        out.append(_field(b"\x6a", b"".join((
            b"\x0a\x10", linked.trace_id.to_bytes(16, "big"),
            b"\x12\x08", linked.span_id.to_bytes(8, "big"),
            _attributes(b"\x22", link.attributes),
            b"\x28" + _varint(link.dropped_attributes) if link.dropped_attributes else b"",
            _LINK_REMOTE if linked.is_remote else _LINK_LOCAL))))
    if span.dropped_links:
        out += (b"\x70", _varint(span.dropped_links))
    status = span._status
    code = status._status_code._value_
    if code or status.description:
        out.append(_field(b"\x7a", (_field(b"\x12", status.description.encode())
                                    if status.description else b"")
                          + (b"\x18" + _varint(code) if code else b"")))
    else:
        out.append(_EMPTY_STATUS)
    out.append(_REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT)
    return b"".join(out)


def _span_field(span: ReadableSpan) -> bytes:
    """``ScopeSpans.spans``'s field for ``span``: written here, or by the SDK's encoder."""
    try:
        body = _span(span)
    except Exception:  # _Unusual, or a text it cannot write (a lone surrogate)
        body = _encode_span(span).SerializePartialToString()
    return _field(b"\x12", body)


def _grouped(spans: Sequence[ReadableSpan]) -> dict[Any, dict[Any, list[bytes]]]:
    """The spans' fields by resource, then by scope, as the SDK groups them: dicts keyed by
    them (equal and of one hash: the SDK's resource ``{"n": 1}`` is not ``{"n": True}``'s,
    though equal), each span in the batch's order; a distinct pair of objects is hashed once."""
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    by_object: dict[tuple[int, int], list[bytes]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        ids = (id(resource), id(scope))  # alive as long as the batch
        fields = by_object.get(ids)
        if fields is None:
            fields = by_object[ids] = groups.setdefault(resource, {}).setdefault(scope, [])
        fields.append(_span_field(span))
    return groups


def encoded(spans: Sequence[ReadableSpan]) -> bytes:
    """``ExportTraceServiceRequest`` of ``spans`` as bytes: what
    ``encode_spans(spans).SerializePartialToString()`` gives."""
    out = []
    for resource, scopes in _grouped(spans).items():
        parts = [_field(b"\x0a", _encode_resource(resource).SerializePartialToString())]
        for scope, fields in scopes.items():
            scope_spans = [_field(b"\x0a", _encode_instrumentation_scope(
                scope).SerializePartialToString()), *fields]
            schema = scope.schema_url if scope else None
            if schema:
                scope_spans.append(_field(b"\x1a", schema.encode()))
            parts.append(_field(b"\x12", b"".join(scope_spans)))
        if resource.schema_url:
            parts.append(_field(b"\x1a", resource.schema_url.encode()))
        out.append(_field(b"\x0a", b"".join(parts)))
    return b"".join(out)


class DirectOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter (its transport, retries, limits, shutdown and
    metrics), sending :func:`encoded` bytes."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return super().export(spans)  # its warning, its failure
        with self._metrics.export_operation(len(spans)) as result:
            try:
                serialized = encoded(spans)
            except Exception as error:  # as the SDK's exporter answers it
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if trace_exporter._is_request_too_large(serialized, self._max_request_size):
                _logger.warning("Dropping span batch: serialized size %d bytes exceeds "
                                "max_request_size %d bytes.", len(serialized),
                                self._max_request_size)
                result.error = trace_exporter.RequestPayloadTooLargeError(
                    f"Serialized span request size {len(serialized)} bytes exceeds "
                    f"max_request_size {self._max_request_size} bytes.")
                return SpanExportResult.FAILURE
            sent = self._client.export(serialized)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = ({trace_exporter.HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                                      if sent.status_code is not None else None)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
