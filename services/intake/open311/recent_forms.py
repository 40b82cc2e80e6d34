"""The forms civic apps posted without an Idempotency-Key in the last retry window: the only
place an identical POST is recognised, and nothing of a form leaves it.

A form holds the resident's phone, e-mail and name. What travels (the case id, the causation
and correlation ids, on the bus and in the stream for good) is a random key drawn when a form
is first seen (:func:`~services.intake.open311.form.fresh_key`); this table alone maps the
form, as a MAC under a server secret (``SURVEY_TOKEN_SECRET``'s own derived key, never the
api_key an app's vendor holds), to that key, and forgets it once the window is over: by the
next POST, and by the workers' loop when none comes. Whoever holds the api_key and reads the
stream has nothing to try phone numbers against; whoever also holds the secret and the
database finds at most the forms of the last window, which intake itself was handed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from services.intake.open311.form import fresh_key
from shared.kernel.clock import Clock

DDL = [
    "CREATE TABLE IF NOT EXISTS open311_recent_forms ("
    " digest bytea PRIMARY KEY, request_key text NOT NULL, first_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS open311_recent_forms_first_at"
    " ON open311_recent_forms (first_at)",
    # ANALYZE would copy sample digests into pg_statistic, which the purge does not reach.
    "ALTER TABLE open311_recent_forms ALTER COLUMN digest SET STATISTICS 0",
]

_SEEN = (
    "INSERT INTO open311_recent_forms AS f (digest, request_key, first_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (digest) DO UPDATE SET request_key = EXCLUDED.request_key,"
    " first_at = EXCLUDED.first_at WHERE f.first_at <= $4"
    " RETURNING request_key")
_FORGET = (
    "DELETE FROM open311_recent_forms WHERE digest IN (SELECT digest FROM open311_recent_forms"
    " WHERE first_at <= $1 ORDER BY first_at LIMIT $2 FOR UPDATE SKIP LOCKED)")

#: Rows one purge deletes at most: a POST never waits on a long delete (the workers' loop
#: takes the rest).
FORGET_BATCH = 200


class RecentForms:
    """Form digest -> the request's key, for one retry window (``OPEN311_RETRY_WINDOW_S``)."""

    def __init__(self, pool: asyncpg.Pool, window_s: int, clock: Clock) -> None:
        self.pool = pool
        self.window = timedelta(seconds=window_s)
        self.clock = clock

    async def key_for(self, digest: bytes) -> str:
        """The key of the first POST of this form less than a window ago, else a new one.
        Copies racing each other meet one row: the loser's insert finds the winner's."""
        await self.forget_expired()
        while True:
            now = self.clock.now()
            key = await self.pool.fetchval(_SEEN, digest, fresh_key(), now, now - self.window)
            if key is None:  # seen less than a window ago: that POST's key
                key = await self.pool.fetchval(
                    "SELECT request_key FROM open311_recent_forms WHERE digest = $1", digest)
            if key is not None:  # None: forgotten in between by a replica a moment ahead
                return key

    async def forget_expired(self, batch: int = FORGET_BATCH) -> int:
        """Forget forms first seen a window ago or longer (at most ``batch``); how many."""
        status = await self.pool.execute(_FORGET, self.clock.now() - self.window, batch)
        return int(status.split()[-1])

    async def keep_forgetting(self, every_s: float = 60.0) -> None:
        """The workers' loop: forms forgotten when their window ends, POSTs or none."""
        while True:
            while await self.forget_expired() == FORGET_BATCH:
                pass
            await asyncio.sleep(min(every_s, self.window.total_seconds()))
