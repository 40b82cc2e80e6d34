"""What a read route answers: typed models (``<Thing>Public``) built from a read model's rows.

The models say in the OpenAPI document what comes back; their JSON is what the routes wrote
when they answered plain dicts: a moment as Python's ``isoformat()`` (``+00:00``, never ``Z``).
"""

from __future__ import annotations

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
