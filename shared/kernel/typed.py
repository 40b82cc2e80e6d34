"""What a person types into a command, as every service takes it: ``Typed``, the base of the
APIs' request bodies.

Each text is trimmed at both ends of whitespace (full-width spaces too) and of the characters
nobody sees that come pasted with text: zero-width spaces and joiners, a word joiner, a
byte-order mark, a soft hyphen, direction marks and embeddings (a WeChat message copied whole
brings some). A need, a reason or a restatement made only of them is blank, and refused as an
empty one is, rather than recorded and printed as an empty bullet. Inside a text they stay:
the scrubbing reads them as spaces (``shared.kernel.privacy.patterns``). Which characters
they are is said once, in ``shared.kernel.invisible``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.kernel.invisible import INVISIBLE, SELECTORS
from shared.kernel.meta import CorrelationId

# At the end a variation selector belongs to the character before it (an emoji's presentation).
_TRAILING = "".join(ch for ch in INVISIBLE if ch not in SELECTORS)
_EDGES = re.compile(f"^[\\s{INVISIBLE}]+|[\\s{_TRAILING}]+$")
_FIRST = re.compile(f"[\\s{INVISIBLE}]")
_LAST = re.compile(f"[\\s{_TRAILING}]")
#: What shows nothing on its own: marks that only change the character before them (a
#: variation selector, an accent) and format characters (tags). Kept after a character (an
#: emoji's presentation); a text made only of them is blank.
_NOTHING_ALONE = frozenset({"Mn", "Me", "Cf"})


#: Characters a text that begins and ends with one is left as it is by: none is whitespace
#: or invisible, and each shows itself (most of a command's codes and words end in them).
_SHOWN = frozenset(string.ascii_letters + string.digits)


def trimmed(text: str) -> str:
    """``text`` without whitespace or invisible characters at either end; "" when what is
    left shows nothing (only marks or format characters)."""
    if text and text[0] in _SHOWN and text[-1] in _SHOWN:
        return text
    if text and (_FIRST.match(text[0]) or _LAST.match(text[-1])):
        text = _EDGES.sub("", text)
    if text and unicodedata.category(text[0]) in _NOTHING_ALONE and all(
            unicodedata.category(ch) in _NOTHING_ALONE for ch in text):
        return ""
    return text


def _trim(value: Any) -> Any:
    if isinstance(value, str):
        return trimmed(value)
    if isinstance(value, list):
        return [trimmed(v) if isinstance(v, str) else v for v in value]
    return value


class Typed(BaseModel):
    """A request body: no field it does not know, and every text (and each text of a list)
    trimmed of whitespace and invisible characters at both ends before it is checked."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _trimmed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: _trim(value) for name, value in data.items()}
        return data


class Command(Typed):
    """The base of every service's commands: when it happened and what visit it belongs to.
    Every moment a command gives has its offset (a moment without one is no moment: 09:15 in
    Shanghai or on a laptop left on UTC). ``sent_at`` comes first, so that a sender's clock
    set wrong is named before the ``occurred_at`` it made (``Moments.check`` goes in field
    order)."""

    sent_at: datetime | None = Field(None, description=(
        "The sender's own clock as it sends this request (ISO 8601 with offset), on every "
        "attempt: when it is more than 5 s off the service's clock as the request came in "
        "at its front door, occurred_at is moved by that much (a counter's clock running fast "
        "or slow, a step queued offline and sent later); more than OCCURRED_AT_MAX_FUTURE_S "
        "off is a 422. Not read on a resident's own answer (dated by the service's clock). "
        "Not part of the command (a retry under its Idempotency-Key may send another)."))
    occurred_at: datetime | None = Field(
        None, description=(
        "When it happened (ISO 8601 with offset); default: when the request came in at the "
        "service's front door (not when its body was read)."))
    correlation_id: CorrelationId | None = Field(None, description=(
        "Shared by everything one visit caused: 1-128 of A-Z a-z 0-9 _ . : - (it is "
        "recorded on every event, so never a name or a number of the resident's)."))

    @model_validator(mode="after")
    def _aware(self) -> Command:
        # A validated model's ``__dict__`` is its fields' values, in ``model_fields``' order
        # (extras and private attributes are kept apart): read as it is, not through
        # pydantic's deprecated class property and a ``getattr`` per field (~11 a command).
        for name, value in self.__dict__.items():
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"{name} needs a time zone offset, e.g. "
                                 "2026-03-02T09:15:00+08:00")
        return self
