"""A calendar re-planning with failed items, kept in the service's schema until one goes through.

The process whose re-planning failed (often an API replica that answered the reload) retries it
at once, backing off (``shared.runtime.replanning.Pending``); but it may go (scaled down,
killed) before it gets through. So the failure is written here, one row per service: the
official days still to re-plan (``first_day``..``last_day``, the union over every failed run;
NULL: provisional dates only), the calendars it ran on (``fingerprints``, per center), since
when, how many tries, the items failed at the last one and the last error, when the next try
is due. Every worker's ``calendar-replan`` loop takes a row its process
has stopped trying (``next_try_at`` passed by ``ADOPT_AFTER_S``) and runs it again.

A try (the failing process's retry or a worker's) holds the advisory lock ``try_key`` for as
long as it runs, so two replicas never retry at once; a session that ends (kill -9) frees it.
A reload's or a start's re-planning runs beside a try, without the lock (a reload must not
wait minutes for a city's retry), as before: each covers the row's days too (merged into
``Calendars.changed_official`` before it starts), and a run during which the calendars changed
runs again on the new ones (redteam120). A run that goes through deletes the row only if it
is the one the run read (``revision``, from a sequence: a row made after it went never has the
revision of one before): a failure recorded meanwhile by another replica stays. Until
redteam123 a new row began again at revision 1: a run that had read the row before another
run took it away took the next replica's new row too, and that replica's retry, finding it
gone, stopped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg
from pydantic import BaseModel, Field

from shared.kernel.privacy import redact

#: The leader takes a row whose next try is this late (its process stopped trying: gone).
ADOPT_AFTER_S = 10.0
#: How often the leader looks for such a row.
POLL_S = 5.0
#: The last error kept at most this long (a store's message can be long).
ERROR_CHARS = 500

DDL = [
    # A row's revisions are never used again, also by a row made after one was taken away:
    # a run that read the old row must not take the new one (another replica's failure).
    # Past the revisions a row made before it counted (1, 2, ...: an upgraded deployment's).
    "CREATE SEQUENCE IF NOT EXISTS calendar_replan_pending_revision START 1000000",
    "CREATE TABLE IF NOT EXISTS calendar_replan_pending ("
    " service text PRIMARY KEY, first_day date, last_day date, fingerprints jsonb NOT NULL,"
    " since timestamptz NOT NULL, attempts int NOT NULL, failed int NOT NULL,"
    " last_error text, last_try_at timestamptz NOT NULL, next_try_at timestamptz NOT NULL,"
    " revision bigint NOT NULL)",
]


class ReplanPendingPublic(BaseModel):
    """A re-planning with failed items, retried until it goes through (``GET /ops/calendar``,
    ``sixstep calendar status``)."""

    since: datetime = Field(description="When its first try failed")
    attempts: int = Field(description="Tries so far (the first included), by any replica")
    failed: int = Field(description="Items whose re-plan failed at the last try")
    last_error: str | None = Field(description="The last try's error(s), with how many items "
                                   "each: 'CalendarNotCovered ...' wants a schedule added")
    last_try_at: datetime
    next_try_at: datetime = Field(description="When the next try is due (backing off to a "
                                  "minute); any worker's calendar-replan takes it once "
                                  "the process that failed stops trying")
    first_day: date | None = Field(description="The first official day changed and not yet "
                                   "re-planned (None: provisional dates only)")
    last_day: date | None
    fingerprints: dict[str, str] = Field(description="The calendars the last try ran on, per "
                                         "center ('*': every center without its own)")


@dataclass(frozen=True)
class Row:
    public: ReplanPendingPublic
    revision: int
    #: Whether its next try is late by ADOPT_AFTER_S (nobody is trying it: the leader may).
    orphaned: bool

    @property
    def span(self) -> tuple[date, date] | None:
        p = self.public
        return (p.first_day, p.last_day) if p.first_day and p.last_day else None


_COLUMNS = ("since, attempts, failed, last_error, last_try_at, next_try_at, first_day, "
            "last_day, fingerprints, revision")


def _row(record: asyncpg.Record | None) -> Row | None:
    if record is None:
        return None
    fingerprints = record["fingerprints"]
    if isinstance(fingerprints, str):
        fingerprints = json.loads(fingerprints)
    public = ReplanPendingPublic(
        since=record["since"], attempts=record["attempts"], failed=record["failed"],
        last_error=record["last_error"], last_try_at=record["last_try_at"],
        next_try_at=record["next_try_at"], first_day=record["first_day"],
        last_day=record["last_day"], fingerprints=fingerprints)
    return Row(public, record["revision"], bool(record.get("orphaned", False)))


async def read(pool: asyncpg.Pool | asyncpg.Connection, service: str) -> Row | None:
    """The service's pending re-planning, if any (the table as the search path finds it)."""
    return _row(await pool.fetchrow(
        f"SELECT {_COLUMNS}, next_try_at < now() - make_interval(secs => $2) AS orphaned"
        " FROM calendar_replan_pending WHERE service = $1", service, ADOPT_AFTER_S))


async def failed(pool: asyncpg.Pool, service: str, span: tuple[date, date] | None,
                 fingerprints: dict[str, str], items: int, error: str | None, *,
                 first_s: float, most_s: float) -> Row | None:
    """A try ended with ``items`` failed: the row made, or its days widened and its count,
    error and next try (``first_s`` doubled at each try, up to ``most_s``) set."""
    first, last = span if span is not None else (None, None)
    return _row(await pool.fetchrow(
        "INSERT INTO calendar_replan_pending AS p (service, first_day, last_day, fingerprints,"
        " since, attempts, failed, last_error, last_try_at, next_try_at, revision)"
        " VALUES ($1, $2, $3, $4::jsonb, now(), 1, $5, $6, now(),"
        "         now() + make_interval(secs => $7), nextval('calendar_replan_pending_revision'))"
        " ON CONFLICT (service) DO UPDATE SET"
        "  first_day = LEAST(p.first_day, EXCLUDED.first_day),"  # LEAST and GREATEST skip NULLs
        "  last_day = GREATEST(p.last_day, EXCLUDED.last_day),"
        "  fingerprints = EXCLUDED.fingerprints, attempts = p.attempts + 1,"
        "  failed = EXCLUDED.failed, last_error = EXCLUDED.last_error, last_try_at = now(),"
        "  next_try_at = now() + make_interval(secs => LEAST($8, $7 * power(2, p.attempts))),"
        "  revision = nextval('calendar_replan_pending_revision')"
        f" RETURNING {_COLUMNS}",
        service, first, last, json.dumps(fingerprints, sort_keys=True), items,
        stored_error(error), first_s, most_s))


async def done(pool: asyncpg.Pool, service: str, revision: int) -> bool:
    """A run that read the row at ``revision`` went through: the row goes, unless a failure
    was recorded since (another replica's: its days may not be this run's). Whether one was
    (the row kept)."""
    return bool(await pool.fetchval(
        "WITH gone AS (DELETE FROM calendar_replan_pending WHERE service = $1"
        "              AND revision = $2 RETURNING 1)"
        " SELECT EXISTS (SELECT 1 FROM calendar_replan_pending WHERE service = $1"
        "                AND revision <> $2)", service, revision))


@contextlib.asynccontextmanager
async def trying(pool: asyncpg.Pool, key: str) -> AsyncIterator[bool]:
    """Hold the try's advisory lock while the block runs: True if this process got it, False
    if another replica's try runs now. The lock lives with its session (a process killed
    frees it); the connection's reset when given back frees it too, if the unlock failed."""
    async with pool.acquire() as conn:
        got = bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key))
        try:
            yield got
        finally:
            if got:
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)


def stored_error(error: str | None) -> str | None:
    """The error as the row keeps it: redacted as a log line is (an exception's text may quote a
    value it was given: a phone number, an ID number) and cut to ``ERROR_CHARS``. The row is
    read back by ``/ops/calendar`` and ``sixstep calendar status``, which do not scrub it."""
    return redact(error)[:ERROR_CHARS] if error else None
