"""What a read route answers: typed models (``<Thing>Public``) built from a read model's rows.

The models say in the OpenAPI document what comes back; their JSON is what the routes wrote
when they answered plain dicts: a moment as Python's ``isoformat()`` (``+00:00``, never ``Z``).
"""

from __future__ import annotations

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


def columns_of(select_list: str) -> list[str]:
    """A select list (``"a, b, coalesce(c, 'x') AS c"``) split at its top-level commas."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(select_list):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(select_list[start:i].strip())
            start = i + 1
    out.append(select_list[start:].strip())
    return [c for c in out if c]


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
        expression, _, name = column.rpartition(" AS ")
        if not expression:
            expression, name = column, column.rpartition(".")[2]
        name = name.strip()
        if name == "center_id":
            continue
        out.append(f"CASE WHEN {when} THEN {expression} END AS {name}")
    return ", ".join(out)
