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
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from shared.kernel.invisible import INVISIBLE

_EDGES = re.compile(f"^[\\s{INVISIBLE}]+|[\\s{INVISIBLE}]+$")
_EDGE = re.compile(f"[\\s{INVISIBLE}]")


def trimmed(text: str) -> str:
    """``text`` without whitespace or invisible characters at either end."""
    if text and (_EDGE.match(text[0]) or _EDGE.match(text[-1])):
        return _EDGES.sub("", text)
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
