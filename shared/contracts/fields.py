"""What each payload field holds, marked once in the contract: free text, a code, a moment, a day.

Every ``str`` in a contract is one of two kinds, and says which:

* :data:`FreeText` (and :data:`OptionalFreeText`, :data:`FreeTextList`): words a person typed
  or said (the request, notes, reasons, comments, descriptions, a summary). The scrubber
  (``shared.kernel.scrubbing``) takes personal data out of every such field before the event is
  stored, and the export (``shared.analytics.export``) does it again when it writes them out.
* :data:`Code` (and :data:`OptionalCode`, :data:`CodeList`): a value chosen from a list or
  minted by the system and checked by a pattern where it enters: ids of centers, counters,
  clerks and teams, catalogue codes, the origin of a follow-up, a rating level. Never scrubbed.

Enums, UUIDs, numbers, booleans, dates and moments need no mark. A field of another ``str``
kind does not exist: ``tests/unit/test_free_text.py`` walks every contract and fails on an
unmarked one, so a new free-text field cannot forget the scrubber.

Moments and days are bounded (:data:`Moment`, :data:`Day`): the contract accepts every value
the services' APIs can be configured to accept (``shared.kernel.moments.Moments``, whose settings
cannot go beyond these bounds), so an accepted event is never undecodable, and nothing in the
range overflows when converted to another time zone or moved by a few hundred days.
"""

from __future__ import annotations

import types
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field
from pydantic.fields import FieldInfo


class _Mark:
    """A marker object put in a field's ``Annotated`` metadata."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


FREE_TEXT = _Mark("free-text")
CODE = _Mark("code")

FreeText = Annotated[str, FREE_TEXT, Field(json_schema_extra={"x-sixstep": "free-text"})]
OptionalFreeText = Annotated[str | None, FREE_TEXT,
                             Field(json_schema_extra={"x-sixstep": "free-text"})]
FreeTextList = Annotated[list[str], FREE_TEXT,
                         Field(json_schema_extra={"x-sixstep": "free-text"})]
Code = Annotated[str, CODE]
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
"""What an id or a code a caller sends looks like where it enters (a center, a counter, a clerk
in a command; a token's center; a center in the settings or in a page's path): no slash, so no
other path can be reached through it, and 64 characters at most."""
OptionalCode = Annotated[str | None, CODE]
CodeList = Annotated[list[str], CODE]

# -- moments and days ---------------------------------------------------------------------

EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
"""No moment in a contract is earlier (the API's own floor, a setting, cannot go below it)."""
LATEST_MOMENT = datetime(2200, 1, 1, tzinfo=UTC)
"""Every moment in a contract is earlier than this."""
EARLIEST_DAY = EARLIEST_MOMENT.date()
LATEST_DAY = date(2199, 12, 31)


def _bounded_moment(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("a moment needs a time zone offset")
    if not EARLIEST_MOMENT <= value < LATEST_MOMENT:
        raise ValueError(f"a moment must lie between {EARLIEST_MOMENT.isoformat()} and "
                         f"{LATEST_MOMENT.isoformat()}")
    return value


def _bounded_day(value: date) -> date:
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValueError(f"a day must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


Moment = Annotated[datetime, AfterValidator(_bounded_moment)]
"""A moment with its offset, from 1970 to 2199 (UTC)."""
Day = Annotated[date, AfterValidator(_bounded_day)]
"""A calendar day from 1970-01-01 to 2199-12-31."""

# -- reading the marks --------------------------------------------------------------------

def _marks(annotation: Any) -> set[str]:
    """The marks inside an annotation, looking through unions and lists."""
    found: set[str] = set()
    if get_origin(annotation) is Annotated:
        found |= {m.kind for m in annotation.__metadata__ if isinstance(m, _Mark)}
        return found | _marks(get_args(annotation)[0])
    for arg in get_args(annotation):
        found |= _marks(arg)
    return found


def field_marks(info: FieldInfo) -> set[str]:
    """The marks of one pydantic field (pydantic keeps a top-level ``Annotated``'s metadata
    in ``info.metadata`` and the rest in ``info.annotation``)."""
    return {m.kind for m in info.metadata if isinstance(m, _Mark)} | _marks(info.annotation)


def free_text_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of a payload model's free-text fields (str, str | None or list[str])."""
    return tuple(name for name, info in model.model_fields.items()
                 if FREE_TEXT.kind in field_marks(info))


def plain_types(annotation: Any) -> set[Any]:
    """Every type an annotation can hold a value of, through unions, lists, dicts and
    ``Annotated`` (``dict[Aspect, int]`` gives ``{Aspect, int}``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return plain_types(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple, set, frozenset, dict):
        out: set[Any] = set()
        for arg in get_args(annotation):
            if arg is not Ellipsis:
                out |= plain_types(arg)
        return out
    return {annotation}


def _nested(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds (a payload may hold a small model, e.g. a due rule)."""
    return [t for t in plain_types(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]


def unmarked_text(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Fields that can hold a plain ``str`` (not an enum) without saying whether it is free
    text or a code, nested models' fields included: what the contract walk refuses."""
    out = []
    for name, info in model.model_fields.items():
        holds_str = any(isinstance(t, type) and issubclass(t, str) and not issubclass(t, Enum)
                        for t in plain_types(info.annotation))
        if holds_str and not field_marks(info) & {FREE_TEXT.kind, CODE.kind}:
            out.append(prefix + name)
        for inner in _nested(info.annotation):
            out += unmarked_text(inner, f"{prefix}{name}.")
    return out


def nested_free_text(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Free text inside a nested model: the scrubber looks at a payload's own fields only,
    so free text must be one of them (the contract walk refuses this)."""
    out = []
    for name, info in model.model_fields.items():
        for inner in _nested(info.annotation):
            out += [f"{prefix}{name}.{f}" for f in free_text_fields(inner)]
            out += nested_free_text(inner, f"{prefix}{name}.")
    return out


def unbounded_times(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Fields holding a date or a datetime without the contract's bounds, nested models'
    fields included."""
    out = []
    for name, info in model.model_fields.items():
        for inner in _nested(info.annotation):
            out += unbounded_times(inner, f"{prefix}{name}.")
        times = {t for t in plain_types(info.annotation)
                 if isinstance(t, type) and issubclass(t, date)}
        if not times:
            continue
        validators = [m for m in info.metadata if isinstance(m, AfterValidator)]
        inner_validators = _after_validators(info.annotation)
        bounded = {v.func for v in [*validators, *inner_validators]} & {_bounded_moment,
                                                                         _bounded_day}
        if not bounded:
            out.append(prefix + name)
    return out


def _after_validators(annotation: Any) -> list[AfterValidator]:
    if get_origin(annotation) is Annotated:
        return [m for m in annotation.__metadata__ if isinstance(m, AfterValidator)]
    out: list[AfterValidator] = []
    for arg in get_args(annotation):
        out += _after_validators(arg)
    return out
