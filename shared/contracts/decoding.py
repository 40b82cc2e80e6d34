"""An envelope from its JSON bytes at about half of pydantic's cost, with pydantic's answer.

``Envelope.model_validate_json`` spends some 10 us an event, and almost half of it in the two
``AfterValidator`` calls that bound the moments (pydantic-core calling back into Python is
dear). :func:`decode_envelope` validates the bytes against the same model without its after
validators (:data:`_UNBOUNDED`, made from ``Envelope``'s own fields, so that nothing else can
differ: same parsing, types, constraints, field order and fields set), then calls those
validators' work itself, from Python, on the values, and makes the result an ``Envelope``.
Whatever fails on that path, valid or not, is decoded again with
``Envelope.model_validate_json``: what does not validate is refused with pydantic's own error,
exactly as before (``tests/unit/test_envelope_decoding.py`` compares the two, field by field).

:func:`decode_head` reads only an envelope's head (:class:`EnvelopeHead`): what a consumer
needs of an event its handler ignores, to track it, hold it back and trace it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timezone
from typing import Any, cast
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import TzInfo

from shared.contracts.envelope import Envelope
from shared.contracts.fields import Code, OptionalCode, _bounded_moment
from shared.contracts.registry import REGISTRY

After = tuple[str, Callable[[Any], Any]]


def _unbounded(model: type[BaseModel]) -> tuple[type[BaseModel], tuple[After, ...]]:
    """``model`` without its after validators (a copy, each field as it is otherwise), and
    those validators in the order pydantic runs them: (field, function)."""
    fields: dict[str, Any] = {}
    after: list[After] = []
    for name, info in model.model_fields.items():
        bare = copy.copy(info)
        bare.metadata = [m for m in info.metadata if not isinstance(m, AfterValidator)]
        after += [(name, m.func) for m in info.metadata if isinstance(m, AfterValidator)]
        fields[name] = (info.annotation, bare)
    config = ConfigDict(extra=model.model_config.get("extra"))
    if model.__pydantic_decorators__.field_validators or \
            model.__pydantic_decorators__.model_validators:
        raise TypeError(f"{model.__name__} has validators this decoder does not repeat")
    return create_model(f"_Unbounded{model.__name__}", __config__=config, **fields), tuple(after)


_UNBOUNDED, _AFTER = _unbounded(Envelope)
#: The fields bounded by ``_bounded_moment``, checked inline (see :func:`decode_envelope`).
_MOMENTS = tuple(name for name, _ in _AFTER)
if any(check is not _bounded_moment for _, check in _AFTER):
    raise TypeError("Envelope has after validators this decoder does not repeat")
_validate_json = _UNBOUNDED.__pydantic_validator__.validate_json
_validate_python = _UNBOUNDED.__pydantic_validator__.validate_python
_set_class = object.__setattr__


def decode_envelope(data: bytes | str) -> Envelope:
    """``Envelope.model_validate_json(data)``: the same envelope, or the same error.

    A moment is surely returned unchanged by ``_bounded_moment`` when its offset is one
    pydantic parsed (its ``TzInfo`` is never None and lies within a day) and its year lies
    well inside the bounds: two tests (0.1 us) where the validator's comparisons of aware
    moments take 1.8 us; the rest (1970, 2199, naive) goes through the validator itself. The
    instance pydantic made is then made an ``Envelope`` by its class alone: both are
    ``BaseModel``s with nothing of their own in their layout, it holds exactly what
    ``Envelope``'s validator would have set (``__dict__`` in the fields' order, the fields
    set, no extra, no private), and one assignment replaces a new object and four attribute
    writes (1 us of 6)."""
    try:
        return _as_envelope(_validate_json(data), _PARSED)
    except _OFF_THE_FAST_PATH:
        return Envelope.model_validate_json(data)


def _as_envelope(bare: BaseModel, surely_aware: tuple[type, ...]) -> Envelope:
    """``bare`` (an ``_UNBOUNDED``) with its moments bounded as ``_bounded_moment`` bounds
    them, made an ``Envelope``: a moment whose offset is of a type that is never None and
    whose year lies well inside the bounds is surely returned unchanged by it."""
    values = bare.__dict__
    for name in _MOMENTS:
        value = values[name]
        if type(value.tzinfo) not in surely_aware or not 1970 < value.year < 2199:
            values[name] = _bounded_moment(value)
    _set_class(bare, "__class__", Envelope)  # TypeError if a pydantic changed the layout
    return cast(Envelope, bare)


#: What sends a fast path back to pydantic's own (its answer, or its error).
_OFF_THE_FAST_PATH = (ValidationError, ValueError, AssertionError, TypeError, AttributeError)
#: pydantic's parsed offsets; and those with the standard library's fixed ones (the store's).
_PARSED: tuple[type, ...] = (TzInfo,)
_FIXED: tuple[type, ...] = (TzInfo, timezone)


def envelope_of(fields: dict[str, Any]) -> Envelope:
    """``Envelope(**fields)``: the same envelope, or the same error, as
    :func:`decode_envelope` makes one from bytes. The relay's moments are the store's
    (``datetime.fromisoformat``'s fixed offsets, a ``timezone``): such an offset is never
    None, so a year well inside the bounds is surely returned unchanged by
    ``_bounded_moment``; any other moment goes through it."""
    try:
        return _as_envelope(_validate_python(fields), _FIXED)
    except _OFF_THE_FAST_PATH:
        return Envelope(**fields)


class EnvelopeHead(BaseModel):
    """The head of an envelope: what a consumer reads of an event its handler ignores
    (``shared.bus.consumer``: ``Handler.ignores``) to track it (its case, its service's
    position), hold it behind a retry, dead-letter it and log it. Each field as
    :class:`Envelope` declares it (checked at import); the rest of the envelope (its moments,
    its payload: half of a decoding's cost and most of the objects it makes) is skipped
    unread."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: Code
    version: int = Field(ge=1)
    service: Code
    position: int = Field(ge=1)
    aggregate_id: UUID
    case_id: UUID | None
    correlation_id: OptionalCode = None

    @property
    def partition_key(self) -> UUID:
        return self.case_id or self.aggregate_id


def _same_fields(head: type[BaseModel], whole: type[BaseModel]) -> None:
    """Each field of ``head`` is ``whole``'s, with the same type and constraints."""
    for name, info in head.model_fields.items():
        of = whole.model_fields[name]
        if (info.annotation, repr(info.metadata), info.is_required()) != \
                (of.annotation, repr(of.metadata), of.is_required()):
            raise TypeError(f"EnvelopeHead.{name} is not Envelope.{name}")


_same_fields(EnvelopeHead, Envelope)
_validate_head = EnvelopeHead.__pydantic_validator__.validate_json


def decode_head(data: bytes | str) -> EnvelopeHead | None:
    """The head of a current event (its type known, at its contract's version); None when
    that cannot be said from the head alone (an unknown type, an older version to upcast,
    a head that does not validate): the caller decodes the whole envelope, which refuses or
    upcasts it as before."""
    try:
        head = _validate_head(data)
    except (ValidationError, ValueError):
        return None
    if head.type not in REGISTRY or REGISTRY.get(head.type).version != head.version:
        return None
    return cast(EnvelopeHead, head)
