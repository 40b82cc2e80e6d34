"""Stored events encoded by orjson, byte for byte as eventsourcing's ``JSONTranscoder`` does.

The library's transcoder encodes an event's state with the standard library's ``json`` and
calls back into Python for every id and moment (``default=``): some 14 us of a follow-up's
``FollowUpScheduled``, paid on the group-commit thread for every event a service stores
(benchmarks/README.md, issue 23 target 2). :class:`OrjsonTranscoder` first turns the state
into plain JSON values, each registered type into the library's ``{"_type_": name, "_data_":
...}`` object, then has orjson write them: the same bytes (``tests/unit/test_transcoding.py``
compares the two). Whatever orjson might write otherwise goes to the library's encoder
unchanged: a float (the two spell some differently, ``1e+16`` and ``1e16``), an integer beyond
64 bits, a subclass of a JSON type (the library writes it as its base type without asking the
transcodings), a key that is not a ``str``, a type no transcoding knows (the library's error),
a string orjson refuses (a lone surrogate), nesting deeper than orjson goes.

Decoding is the same the other way: the library's ``json.JSONDecoder`` with an ``object_hook``
(a Python call for every object, and the standard library's pure-Python scanner around the C
one) was ~14 us of the ~65 us the outbox relay spends on a case's event, and is paid again for
every event of every aggregate a command loads. :meth:`OrjsonTranscoder.decode` has orjson read
the bytes, then gives every object, innermost first, to the library's own hook, as its decoder
does. What orjson might read otherwise goes to the library's decoder unchanged: any number with
a fraction or an exponent (orjson reads an integer beyond 64 bits as a float, so a float in
what it read may not be one in the bytes), and whatever orjson refuses (NaN and Infinity, a
lone surrogate, bytes that are not UTF-8: the library's answer or error).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding, UUIDAsHex

_MIN_INT, _MAX_INT = -(2 ** 63), 2 ** 64 - 1
"""The integers orjson writes (int64 and uint64); the library writes any."""
_JSON_TYPES = (str, int, float, dict, list, tuple)
#: The library's transcodings whose ``decode`` of a text is one call: the call itself.
_LIBRARY_READERS: dict[type, Callable[[str], Any]] = {
    UUIDAsHex: UUID, DatetimeAsISO: datetime.fromisoformat}


class _Unusual(Exception):
    """A value whose bytes only the library's encoder is trusted with."""


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder`` whose ``encode`` gives the same bytes through orjson, and whose
    ``decode`` reads them through orjson into the same objects."""

    def __init__(self) -> None:
        super().__init__()
        self._encoders: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        #: Each name's decoding of a text, the library's own function where its transcoding
        #: is the library's class (``UUID(data)``, ``datetime.fromisoformat(data)``).
        self._readers: dict[str, Callable[[str], Any]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._readers[transcoding.name] = _LIBRARY_READERS.get(
            type(transcoding), transcoding.decode)
        if issubclass(transcoding.type, _JSON_TYPES):  # the library never asks for these
            self._encoders.pop(transcoding.type, None)
        else:
            self._encoders[transcoding.type] = (transcoding.name, transcoding.encode)

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        except (_Unusual, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            return self._typed(orjson.loads(data))
        except (_Unusual, orjson.JSONDecodeError, RecursionError):
            return super().decode(data)

    def _typed(self, o: Any) -> Any:
        """What orjson read, as the library's decoder reads it: every object through the
        library's ``object_hook`` after its values (module doc)."""
        kind = type(o)
        if kind is dict:
            return self._typed_dict(o)
        if kind is list:
            for i, v in enumerate(o):
                if type(v) is dict or type(v) is list or type(v) is float:
                    o[i] = self._typed(v)
            return o
        if kind is float:
            raise _Unusual
        return o

    def _typed_dict(self, o: dict[str, Any]) -> Any:
        readers = self._readers
        for key, value in o.items():
            kind = type(value)
            if kind is dict:
                # A typed value (an id, a moment) read at once: the hook's own answer.
                if (len(value) == 2 and type(name := value.get("_type_")) is str
                        and type(data := value.get("_data_")) is str
                        and (read := readers.get(name)) is not None):
                    o[key] = read(data)
                else:
                    o[key] = self._typed_dict(value)
            elif kind is list:
                o[key] = self._typed(value)
            elif kind is float:
                raise _Unusual
        return self._decode_obj(o) if len(o) == 2 else o

    def _plain(self, o: Any) -> Any:
        kind = type(o)
        if kind is dict:
            return self._plain_dict(o)
        if kind is str or kind is bool or o is None:
            return o
        if kind is int:
            if _MIN_INT <= o <= _MAX_INT:
                return o
            raise _Unusual
        if kind is list or kind is tuple:
            return [self._plain(v) for v in o]
        if isinstance(o, _JSON_TYPES):  # float, or a subclass the library writes as its base
            raise _Unusual
        encoder = self._encoders.get(kind)
        if encoder is None:
            raise _Unusual
        data = encoder[1](o)
        return {"_type_": encoder[0], "_data_": data if type(data) is str else self._plain(data)}

    def _plain_dict(self, o: dict[Any, Any]) -> dict[str, Any]:
        """A dict's values made plain: ``str``, ``bool``, None and the registered types (an
        event's ids and moments) without a call each."""
        out: dict[str, Any] = {}
        encoders = self._encoders
        for key, value in o.items():
            if type(key) is not str:
                raise _Unusual
            kind = type(value)
            if kind is str or kind is bool or value is None:
                out[key] = value
            elif (encoder := encoders.get(kind)) is not None:
                data = encoder[1](value)
                out[key] = {"_type_": encoder[0],
                            "_data_": data if type(data) is str else self._plain(data)}
            else:
                out[key] = self._plain(value)
        return out
