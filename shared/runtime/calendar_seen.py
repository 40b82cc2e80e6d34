"""The official working days each center's calendar had when this service last re-planned.

A reload knows which official days it changed (``Calendars.reload``); a start does not, so a
holidays file corrected while the service was stopped (or a package upgrade that corrects a
published day) would re-plan only its provisional dates. ``recall`` compares the calendars
with what was last re-planned on and adds the changed days to ``Calendars.changed_official``;
``remember`` records the calendars once a re-planning has run over them. One row per center
(``'*'``: every center without its own file), some 6,000 day numbers each; a center given
its own file since is compared with the default's row, one whose file was dropped with its
own row.
"""

from __future__ import annotations

import asyncpg

from shared.kernel.calendar import WorkingCalendar
from shared.runtime.calendars import DEFAULT_CENTER, Calendars

DDL = [
    "CREATE TABLE IF NOT EXISTS calendar_seen ("
    " center_id text PRIMARY KEY, fingerprint text NOT NULL, official_until int NOT NULL,"
    " working int[] NOT NULL)",
]


async def recall(pool: asyncpg.Pool, calendars: Calendars) -> None:
    rows = {row["center_id"]: row for row in await pool.fetch(
        "SELECT center_id, fingerprint, official_until, working FROM calendar_seen")}
    seen: dict[str, tuple[int, list[int]]] = {}
    fingerprints = calendars.fingerprints()
    for center, fingerprint in fingerprints.items():
        # A center given its own file since: compared with the calendar it had, the default.
        row = rows.get(center, rows.get(DEFAULT_CENTER))
        if row is not None and row["fingerprint"] != fingerprint:
            seen[center] = (row["official_until"], row["working"])
    for center, row in rows.items():
        # A center whose own file was dropped since: on the default calendar now, compared
        # with the one it had.
        if center not in fingerprints and row["fingerprint"] != fingerprints[DEFAULT_CENTER]:
            seen[center] = (row["official_until"], row["working"])
    calendars.changed_since(seen)


async def remember(pool: asyncpg.Pool, calendars: dict[str, WorkingCalendar]) -> None:
    """``calendars`` (``Calendars.centers()``) were re-planned on."""
    rows = [(center, calendar.fingerprint, calendar.official_until,
             calendar.official_working_days())
            for center, calendar in calendars.items()]
    await pool.executemany(
        "INSERT INTO calendar_seen (center_id, fingerprint, official_until, working)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (center_id) DO UPDATE SET"
        " fingerprint = EXCLUDED.fingerprint, official_until = EXCLUDED.official_until,"
        " working = EXCLUDED.working WHERE calendar_seen.fingerprint <> EXCLUDED.fingerprint",
        rows)
    # A center without its own file any more is on the default calendar's row.
    await pool.execute("DELETE FROM calendar_seen WHERE center_id <> ALL($1::text[])",
                       [center for center, *_ in rows])
