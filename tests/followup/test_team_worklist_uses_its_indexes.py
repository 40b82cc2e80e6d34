"""A team's worklist (``GET /worklists/teams/{team}``: what is assigned to the team or
escalated to it, ``assigned_team = $2 OR escalated_to = $2``) is read off the team's index
and the escalations' index (a BitmapOr), not off the center's every open follow-up: the
escalations' index held status 'escalated' only, so no index served the OR's second arm, and
PostgreSQL read the center's rows off followups_by_status (center alone), while
followups_of_team, kept up on every write, was read by nothing. On a table of 100,000
generated follow-ups the indexes answer exactly what reading the table answers: the same
rows, in the same order, for every limit, on the calendar's edges (Sun 20 Dec 2026, New
Year's Eve at 23:30 in Shanghai, a provisional 2027 day, 29 Feb 2028)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg

from services.followup import queries
from services.followup.domain import WorkDay
from services.followup.projections import DDL
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.followup.test_worklist_indexes_upgrade import _Explained

TEAM = "(assigned_team = $2 OR escalated_to = $2)"  # as services/followup/api.py asks

# Each worklist's day (its boundaries in UTC; the center's offices close at 17:00 Shanghai).
DAYS = [
    # Sunday 20 Dec 2026: nothing due today, overdue from Friday's closing.
    WorkDay(date(2026, 12, 20), datetime(2026, 12, 18, 9, tzinfo=UTC),
            datetime(2026, 12, 18, 9, tzinfo=UTC)),
    # 31 Dec 2026 at 23:30 in Shanghai (15:30 UTC): the day's closing passed.
    WorkDay(date(2026, 12, 31), datetime(2026, 12, 31, 9, tzinfo=UTC),
            datetime(2026, 12, 31, 9, tzinfo=UTC)),
    # A provisional 2027 working day, at 10:00 in Shanghai.
    WorkDay(date(2027, 6, 15), datetime(2027, 6, 14, 9, tzinfo=UTC),
            datetime(2027, 6, 15, 9, tzinfo=UTC)),
    # Tuesday 29 Feb 2028, at 10:00 in Shanghai.
    WorkDay(date(2028, 2, 29), datetime(2028, 2, 28, 9, tzinfo=UTC),
            datetime(2028, 2, 29, 9, tzinfo=UTC)),
]


async def test_a_teams_worklist_is_read_off_its_two_indexes_and_answers_as_the_table_does(
        settings: Settings) -> None:
    schema = settings.schema_for("followup")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, DDL)
        # Ten centers; a seventh of the rows a team's (three teams), an eleventh escalated to
        # team-0 or the supervisors (escalated_to stays when rescheduled: every status), some
        # both a team's and escalated to it; ties on due_at (follow_up_id decides); a
        # thirteenth high priority; dues from Dec 2026 into 2029.
        await conn.execute(
            "INSERT INTO followups (follow_up_id, center_id, reason, priority, status, due_at,"
            " due_on, basis, assigned_clerk, assigned_team, escalated_to, source,"
            " scheduled_at, updated_at, version, position)"
            " SELECT gen_random_uuid(), 'C' || (i % 10), 'deadline_reminder',"
            " CASE WHEN i % 13 = 0 THEN 'high' ELSE 'normal' END,"
            " (ARRAY['scheduled', 'due', 'missed', 'escalated', 'completed', 'cancelled'])"
            "[1 + (i / 10) % 6], d, (d AT TIME ZONE 'Asia/Shanghai')::date, 'official',"
            " CASE WHEN i % 7 <> 0 THEN 'clerk-' || (i % 97) END,"
            " CASE WHEN i % 7 = 0 THEN 'team-' || (i % 3) END,"
            " CASE WHEN i % 11 = 0 THEN (ARRAY['team-0', 'supervisors'])[1 + i % 2] END,"
            " 'rule', now(), now(), 1, i"
            " FROM generate_series(1, 100000) i,"
            " LATERAL (SELECT timestamptz '2026-12-10 01:00Z'"
            " + ((i / 10) % 1000) * interval '20 hours' AS d) due")
        await conn.execute("ANALYZE followups")
        assert await conn.fetchval(
            "SELECT count(*) FROM followups WHERE assigned_team = 'team-0'"
            " AND escalated_to = 'team-0' AND status IN ('scheduled', 'due', 'missed')") > 0

        # The plan: each of the three lists reads both indexes, not the center's rows.
        await conn.execute("SET enable_seqscan = off")
        explained = _Explained(conn)
        await queries.worklist(explained, DAYS[0], "C0", TEAM, "team-0", 14, 200)
        assert len(explained.indexes) == 3
        for found in explained.indexes:
            assert {"followups_of_team", "followups_escalated_to"} <= found, found
            assert "followups_by_status" not in found and "Seq Scan" not in found, found
        await conn.execute("SET enable_seqscan = on")

        # The answers: every team, day, horizon and limit, the same off the indexes as off
        # the table read from end to end (no index at all).
        answered = 0
        for team in ("team-0", "team-1", "supervisors", "nobody"):
            for day in DAYS:
                for days, limit in ((14, 200), (60, 200), (400, 3), (400, 1)):
                    for center in ("C0", "C3"):
                        indexed = await queries.worklist(conn, day, center, TEAM, team,
                                                         days, limit)
                        await conn.execute("SET enable_indexscan = off;"
                                           " SET enable_bitmapscan = off")
                        scanned = await queries.worklist(conn, day, center, TEAM, team,
                                                         days, limit)
                        await conn.execute("RESET enable_indexscan; RESET enable_bitmapscan")
                        assert indexed == scanned, (team, day, days, limit, center)
                        answered += len(indexed.overdue) + len(indexed.due_today) \
                            + len(indexed.upcoming)
        assert answered > 1000  # the lists compared were not empty
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
