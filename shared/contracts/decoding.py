"""An envelope from its JSON bytes at about half of pydantic's cost, with pydantic's answer.

``Envelope.model_validate_json`` spends some 10 us an event, and almost half of it in the two
``AfterValidator`` calls that bound the moments (pydantic-core calling back into Python is
dear). :func:`decode_envelope` validates the bytes against the same model without its after
validators (:data:`_UNBOUNDED`, made from ``Envelope``'s own fields, so that nothing else can
differ: same parsing, types, constraints, field order and fields set), then calls those
validators itself, from Python, on the values, and moves the result into an ``Envelope``.
Whatever fails on that path, valid or not, is decoded again with
``Envelope.model_validate_json``: what does not validate is refused with pydantic's own error,
exactly as before (``tests/unit/test_envelope_decoding.py`` compares the two, field by field).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import TzInfo

from shared.contracts.envelope import Envelope
from shared.contracts.fields import _bounded_moment


def _moment_surely_bounded(value: Any) -> bool:
    """True when ``_bounded_moment(value)`` surely returns ``value`` as it is: an offset
    pydantic parsed (its ``TzInfo`` is never None and lies within a day) and a year well
    inside the bounds. Some 0.1 us where the validator's two comparisons of aware moments
    take 1.8 us; the rest (1970, 2199, naive) goes through the validator itself."""
    return type(value.tzinfo) is TzInfo and 1970 < value.year < 2199


#: Per after validator, a test that says, cheaply, that it would return its value unchanged.
_SHORTCUTS: dict[Callable[[Any], Any], Callable[[Any], bool]] = {
    _bounded_moment: _moment_surely_bounded}


After = tuple[str, Callable[[Any], Any], Callable[[Any], bool] | None]


def _unbounded(model: type[BaseModel]) -> tuple[type[BaseModel], tuple[After, ...]]:
    """``model`` without its after validators (a copy, each field as it is otherwise), and
    those validators in the order pydantic runs them: (field, function, its shortcut)."""
    fields: dict[str, Any] = {}
    after: list[After] = []
    for name, info in model.model_fields.items():
        bare = copy.copy(info)
        bare.metadata = [m for m in info.metadata if not isinstance(m, AfterValidator)]
        after += [(name, m.func, _SHORTCUTS.get(m.func)) for m in info.metadata
                  if isinstance(m, AfterValidator)]
        fields[name] = (info.annotation, bare)
    config = ConfigDict(extra=model.model_config.get("extra"))
    if model.__pydantic_decorators__.field_validators or \
            model.__pydantic_decorators__.model_validators:
        raise TypeError(f"{model.__name__} has validators this decoder does not repeat")
    return create_model(f"_Unbounded{model.__name__}", __config__=config, **fields), tuple(after)


_UNBOUNDED, _AFTER = _unbounded(Envelope)
_validate_json = _UNBOUNDED.__pydantic_validator__.validate_json
_new = object.__new__
_set = object.__setattr__


def decode_envelope(data: bytes | str) -> Envelope:
    """``Envelope.model_validate_json(data)``: the same envelope, or the same error."""
    try:
        bare = _validate_json(data)
        values = bare.__dict__
        for name, check, surely in _AFTER:
            value = values[name]
            if surely is None or not surely(value):
                values[name] = check(value)
    except (ValidationError, ValueError, AssertionError):
        return Envelope.model_validate_json(data)
    envelope = _new(Envelope)
    _set(envelope, "__dict__", values)
    _set(envelope, "__pydantic_fields_set__", bare.__pydantic_fields_set__)
    _set(envelope, "__pydantic_extra__", None)
    _set(envelope, "__pydantic_private__", None)
    return envelope

