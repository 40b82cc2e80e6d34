"""One pydantic TypeAdapter per distinct parameter or response field, per process.

FastAPI describes every parameter, body and response model of a route with a ``ModelField``,
and each ``ModelField`` builds a pydantic ``TypeAdapter`` (a core schema, a validator and a
serializer) of its annotation, metadata and field attributes. The routes of the routers an
app includes are analysed when the app first answers, so every app built in a process paid
for ~500 adapters again (intake: ~160 ms CPU of the ~250 ms its routes cost), though the
routers, their endpoints and their annotations are the same module-level objects each time:
the test run builds an app or three per test.

:func:`share_field_adapters` makes a ``ModelField`` take the adapter an earlier field with
the same annotation, metadata and attributes built (each compared with its type: a default
``False`` is not a default ``0``). A field with its own pydantic config, a callable
attribute (a default factory: it might hold an app) or anything unhashable builds its own,
as before. An adapter is immutable once built, so sharing it changes nothing a field
validates or serializes, nor the OpenAPI document; and the cache holds only annotations and
the adapters built from them, never an app or an endpoint.

With another FastAPI, whose ``ModelField`` is not the one this was written against, nothing
is changed.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Hashable
from typing import Annotated, Any, cast

from annotated_types import BaseMetadata
from pydantic import Field, TypeAdapter

try:  # FastAPI 0.165's pydantic-2 field (what every parameter and response goes through)
    from fastapi._compat import shared as _compat_shared
    from fastapi._compat import v2 as _compat_v2
except ImportError:  # pragma: no cover - another FastAPI: its own fields, unchanged
    _compat_v2 = None  # type: ignore[assignment]

_ADAPTERS: dict[Hashable, TypeAdapter[Any]] = {}
_LOCK = threading.Lock()
_installed = False
#: FastAPI's own ``ModelField.__post_init__``, which :func:`_post_init` does as it does
#: (tests/unit/test_field_adapters.py holds its source to the one this was written against).
replaced: Any = None


def _typed(value: Any) -> Any:
    """``value`` with its type, and the types of what it holds: a constraint ``Gt(1)`` equals
    ``Gt(1.0)`` in Python but is written ``1.0`` into the OpenAPI document, and pydantic's own
    general metadata (``Field(pattern=...)``'s) compares by identity though FastAPI makes a new
    one at each analysis (one more adapter kept per app built, never found again)."""
    if isinstance(value, tuple):
        return (tuple, tuple(_typed(v) for v in value))
    if isinstance(value, BaseMetadata) and not isinstance(value, type):
        if dataclasses.is_dataclass(value):
            held = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        elif type(value).__eq__ is object.__eq__ and hasattr(value, "__dict__"):
            held = vars(value)
        else:
            return (type(value), value)
        return (type(value), tuple(sorted((n, _typed(v)) for n, v in held.items())))
    return (type(value), value)


def field_key(annotation: Any, metadata: list[Any], attributes: dict[str, Any]
              ) -> Hashable | None:
    """What makes two fields' adapters the same, or None when it cannot be said."""
    if any(callable(v) and not isinstance(v, type) for v in attributes.values()):
        return None
    key = (annotation, tuple(_typed(m) for m in metadata),
           tuple(sorted((name, _typed(v)) for name, v in attributes.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _post_init(self: Any) -> None:
    """``ModelField.__post_init__`` (FastAPI 0.165), taking a shared adapter when it can."""
    with warnings.catch_warnings():
        if _compat_shared.PYDANTIC_VERSION_MINOR_TUPLE >= (2, 12):
            from pydantic.warnings import UnsupportedFieldAttributeWarning

            warnings.simplefilter("ignore", category=UnsupportedFieldAttributeWarning)
        described = _compat_v2.asdict(self.field_info)
        key = None if self.config is not None else field_key(
            described["annotation"], described["metadata"], described["attributes"])
        if key is not None:
            with _LOCK:
                adapter = _ADAPTERS.get(key)
            if adapter is not None:
                self._type_adapter = adapter
                return
        annotated = (described["annotation"], *described["metadata"],
                     Field(**described["attributes"]))
        self._type_adapter = TypeAdapter(cast(Any, Annotated[annotated]), config=self.config)
        if key is not None:
            with _LOCK:
                _ADAPTERS.setdefault(key, self._type_adapter)


def share_field_adapters() -> None:
    """Install the sharing (once per process; idempotent)."""
    global _installed, replaced
    if _installed or _compat_v2 is None:
        return
    model_field = getattr(_compat_v2, "ModelField", None)
    if model_field is None or not hasattr(_compat_v2, "asdict"):
        return  # pragma: no cover - another FastAPI
    replaced = model_field.__post_init__
    model_field.__post_init__ = _post_init
    _installed = True
