"""What a read route answers: typed models (``<Thing>Public``) built from a read model's rows.

The models say in the OpenAPI document what comes back; their JSON is what the routes wrote
when they answered plain dicts: a moment as Python's ``isoformat()`` (``+00:00``, never ``Z``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, PlainSerializer, WithJsonSchema


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


Moment = Annotated[datetime, PlainSerializer(_isoformat, return_type=str, when_used="json"),
                   WithJsonSchema({"type": "string", "format": "date-time"})]
"""A timestamptz column, answered as the API always wrote it."""


class Public(BaseModel):
    """Base of every read route's answer; ``of(row)`` builds one from a row (or a dict)."""

    @classmethod
    def of(cls, row: Any, **more: Any) -> Self:
        return cls.model_validate({**dict(row), **more})


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """What a by-id read answers for a row of another center than the caller's: its center
    alone, read from the raw row's column before anything of the row is decoded, for the
    route to refuse as for none (``shared.http.auth.not_found_elsewhere`` reads
    ``center_id``) and for the probe line to say whose it was. Before December 2026 the row
    was built into its ``<Thing>Public`` first: the caller who may not see it had it
    decoded, and paid for it in the answer's time (ours answered later than an id nobody
    has)."""

    center_id: str | None


def elsewhere(row: Mapping[str, Any], reach: str | None) -> Elsewhere | None:
    """``Elsewhere`` when ``row`` (a raw record with a ``center_id`` column) is out of
    ``reach`` (the caller's center; None: every center's), else None."""
    if reach is None or row["center_id"] == reach:
        return None
    return Elsewhere(row["center_id"])


def _top_level(text: str) -> list[int]:
    """Where each character of ``text`` is at the select list's top level (outside
    brackets, string literals, quoted names), as a list of flags 1/0."""
    flags, depth, quote = [], 0, ""
    for ch in text:
        if quote:
            flags.append(0)
            if ch == quote:
                quote = ""  # a doubled quote ('it''s') closes and reopens: same answer
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        flags.append(int(depth == 0 and not quote and ch not in ")]"))
    return flags


def columns_of(select_list: str) -> list[str]:
    """A select list (``"a, b, coalesce(c, 'x') AS c"``) split at its top-level commas: not
    at a comma inside brackets, a string literal (``'a, b'``) or a quoted name."""
    out, start = [], 0
    for i, top in enumerate(_top_level(select_list)):
        if top and select_list[i] == ",":
            out.append(select_list[start:i].strip())
            start = i + 1
    out.append(select_list[start:].strip())
    return [c for c in out if c]


_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"')
_COLUMN = re.compile(r'(?:[A-Za-z_][A-Za-z0-9_$]*\.)?([A-Za-z_][A-Za-z0-9_$]*)')


def _named(column: str) -> tuple[str, str]:
    """``column`` (``name``, ``table.name``, or ``<expression> AS <name>``, ``AS`` in any
    case, at the top level) as its expression and the name it is answered under. Anything
    else (an expression with no name) is refused at import: wrapped in ``CASE`` it made
    either a statement PostgreSQL refuses or a column under another name."""
    flags = _top_level(column)
    for match in reversed(list(re.finditer(r"\s+AS\s+", column, re.IGNORECASE))):
        if flags[match.start()] and flags[match.end() - 1]:
            expression, name = column[:match.start()].strip(), column[match.end():].strip()
            if _NAME.fullmatch(name):
                return expression, name
            break
    if plain := _COLUMN.fullmatch(column):
        return column, plain.group(1)
    raise ValueError(f"a select list's column needs a name (<expression> AS <name>): {column!r}")


def in_reach(columns: Iterable[str] | str, reach: str, *, center: str = "center_id",
             shared: str | None = None) -> str:
    """A by-id read's select list that sends the row's ``center_id`` always and each other
    column (a name, ``<table>.<name>``, or ``<expression> AS <name>``; or one select list
    string) only when the row is in ``reach`` (a statement parameter, ``$2``: the caller's
    center; NULL: every center's), NULL otherwise: another center's row then costs asyncpg
    no more to decode than a handful of NULLs, and an expression (a subquery) is not run for
    it. ``center``: the center column as the statement names it (``r.center_id`` beside a
    join); ``shared``: a condition that puts a row in everyone's reach (a policy published
    for every center). Sending the whole row and refusing after, another center's case
    answered 4-10 us of CPU later than an id nobody has (``benchmarks/elsewhere_paired.py``,
    stop 49); the other by-id reads did the same until stop 49 (reach49b)."""
    if isinstance(columns, str):
        columns = columns_of(columns)
    when = f"{reach}::text IS NULL OR {center} = {reach}"
    if shared:
        when += f" OR {shared}"
    out = [f"{center} AS center_id" if center != "center_id" else center]
    for column in columns:
        expression, name = _named(column)
        if name == "center_id":
            if not _COLUMN.fullmatch(expression):
                raise ValueError(f"center_id is the center column (center=): {column!r}")
            continue
        out.append(f"CASE WHEN {when} THEN {expression} END AS {name}")
    return ", ".join(out)
