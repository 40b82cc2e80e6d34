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
a string orjson refuses (a lone surrogate), nesting deeper than orjson goes. Decoding is the
library's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding

_MIN_INT, _MAX_INT = -(2 ** 63), 2 ** 64 - 1
"""The integers orjson writes (int64 and uint64); the library writes any."""
_JSON_TYPES = (str, int, float, dict, list, tuple)


class _Unusual(Exception):
    """A value whose bytes only the library's encoder is trusted with."""


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder`` whose ``encode`` gives the same bytes through orjson."""

    def __init__(self) -> None:
        super().__init__()
        self._encoders: dict[type, tuple[str, Callable[[Any], Any]]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        if issubclass(transcoding.type, _JSON_TYPES):  # the library never asks for these
            self._encoders.pop(transcoding.type, None)
        else:
            self._encoders[transcoding.type] = (transcoding.name, transcoding.encode)

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        except (_Unusual, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

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
