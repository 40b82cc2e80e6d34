"""What every route of every service takes and answers: the write headers (Idempotency-Key,
If-Match) and the caller, the pool and settings, ``?after=`` for read-your-writes, and the
answer to every write (:class:`WrittenPublic`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Header, Query, Request
from pydantic import BaseModel

from shared.eventstore.group_commit import Written
from shared.http.auth import OptionalPrincipal
from shared.http.errors import problem
from shared.http.fast_route import SLOW, fast_dependency, principal_of
from shared.kernel.privacy.patterns import personal_number_in
from shared.security.principals import Principal
from shared.settings import Settings

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class WrittenPublic(BaseModel):
    """The answer to every write: where the aggregate now stands and where the write is in the log.

    Pass ``position`` as ``?after=`` on a read to see your own write.
    """

    id: str
    version: int
    position: int
    replayed: bool = False

    @classmethod
    def of(cls, written: Written) -> WrittenPublic:
        return cls(id=str(written.aggregate_id), version=written.version,
                   position=written.position, replayed=written.replayed)


async def _idempotency_key(
    idempotency_key: Annotated[str | None, Header(
        description="Unique per intended write (8-128 chars of A-Z a-z 0-9 _ . : -); "
                    "a retry with the same key returns the first answer.")] = None,
) -> str:
    if idempotency_key is None:
        raise problem(400, "idempotency_key_required",
                      "every write needs an Idempotency-Key header")
    if not KEY_PATTERN.fullmatch(idempotency_key):
        raise problem(400, "idempotency_key_invalid",
                      "Idempotency-Key must be 8-128 characters of A-Z a-z 0-9 _ . : -")
    if (what := personal_number_in(idempotency_key)) is not None:
        # It is every event's causation id, on the bus and in the exports, as it is.
        raise problem(422, "idempotency_key_personal_data",
                      f"Idempotency-Key must not hold {what}: it is recorded with every event "
                      "the write records; send a key of the app's own", holds=what)
    return idempotency_key


async def _expected_version(
    if_match: Annotated[str | None, Header(
        description="The version you last saw; the write is refused with 409 if it moved.")]
        = None,
) -> int | None:
    if if_match is None:
        return None
    version = _version_in(if_match)
    if version is None:
        raise problem(400, "if_match_invalid", "If-Match must be a case version number")
    return version


def _version_in(if_match: str) -> int | None:
    """``3``, ``"3"``, ``W/"3"`` -> 3; None when it is not a version number."""
    value = if_match.strip().strip('"').removeprefix("W/").strip('"')
    return int(value) if value.isascii() and value.isdigit() else None


async def _actor(principal: OptionalPrincipal) -> str:
    """Who acts: the bearer token's subject (``shared.auth``)."""
    return principal.actor if principal is not None else "anonymous"


@dataclass(frozen=True)
class WriteContext:
    """What every write carries besides its body: who, which attempt, and what version."""

    key: str
    actor: str
    expected_version: int | None
    principal: Principal | None = None


def _fast_write_context(request: Request) -> WriteContext:
    """``_write_context`` without FastAPI's solver (``shared.fast_route``): the ordinary
    case only; a missing or malformed header is left to the dependency to refuse."""
    raw_key = raw_if_match = None
    for name, value in request.scope["headers"]:  # the first of each, as Headers.get
        if name == b"idempotency-key":
            if raw_key is None:
                raw_key = value
        elif name == b"if-match" and raw_if_match is None:
            raw_if_match = value
    key = raw_key.decode("latin-1") if raw_key is not None else None
    if key is None or not KEY_PATTERN.fullmatch(key) or personal_number_in(key) is not None:
        return SLOW
    if_match = raw_if_match.decode("latin-1") if raw_if_match is not None else None
    expected: int | None = None
    if if_match is not None:
        expected = _version_in(if_match)
        if expected is None:
            return SLOW
    principal: Principal | None = principal_of(request)
    return WriteContext(key=key, actor=principal.actor if principal is not None else "anonymous",
                        expected_version=expected, principal=principal)


@fast_dependency(_fast_write_context)
async def _write_context(
    principal: OptionalPrincipal,
    idempotency_key: Annotated[str | None, Header(
        description="Unique per intended write (8-128 chars of A-Z a-z 0-9 _ . : -); "
                    "a retry with the same key returns the first answer.")] = None,
    if_match: Annotated[str | None, Header(
        description="The version you last saw; the write is refused with 409 if it moved.")]
        = None,
) -> WriteContext:
    """One dependency for the write headers and the caller (the token's subject acts)."""
    return WriteContext(key=await _idempotency_key(idempotency_key),
                        actor=await _actor(principal),
                        expected_version=await _expected_version(if_match),
                        principal=principal)


Write = Annotated[WriteContext, Depends(_write_context)]

async def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
"""The service's PostgreSQL pool (``app.state.pool``), for the read routes."""
SettingsDep = Annotated[Settings, Depends(_settings)]
#: The largest position a store can hand out (PostgreSQL's bigint): a larger ``?after=`` is
#: a 422 here, not an integer overflow in the read model's query (a 500: the fuzzer's 2**73).
POSITION_MAX = 2**63 - 1


def position_query(description: str) -> Any:
    """A query parameter holding a write's position (``?after=``, ``?after_intake=``): 0 to
    ``POSITION_MAX``, else a 422."""
    return Query(ge=0, le=POSITION_MAX, description=description)


After = Annotated[int | None, position_query(
    "A write's position: wait (bounded) until the read model has applied it.")]
"""``?after=``: read-your-writes (``shared.readmodels.positions.wait_for_write``)."""

IdempotencyKey = Annotated[str, Depends(_idempotency_key)]
ExpectedVersion = Annotated[int | None, Depends(_expected_version)]
Actor = Annotated[str, Depends(_actor)]
