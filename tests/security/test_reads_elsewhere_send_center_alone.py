"""Every by-id read sends another center's row as its center alone: the statement itself
(``public.in_reach``) keeps each other column (and any subquery of it) from a caller out of
the row's reach, so asyncpg decodes a handful of NULLs, and the HTTP answer is the one an id
nobody has gets (status and body). Until stop 49 (reach49b) only the case read did: the
follow-up, plan, policy, obligation, help task, referral, survey, a case's feedback and the
rectification sent their whole row and refused it after decoding it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from services.feedback import queries as feedback_queries
from services.feedback import survey_qr
from services.feedback.main import create_app as create_feedback
from services.followup import queries as followup_queries
from services.followup.main import create_app as create_followup
from services.intake import plan_views
from services.intake import queries as intake_queries
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.readmodels.public import Elsewhere
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at
from tests.support import bearer, error_words, running

OTHER = "SH-PD-ZHANGJIANG"
FILLER = {"text": "'x'", "uuid": "gen_random_uuid()", "timestamp with time zone": "now()",
          "date": "current_date", "integer": "1", "bigint": "1", "smallint": "1",
          "boolean": "false", "jsonb": "'{}'", "json": "'{}'", "ARRAY": "'{}'",
          "numeric": "1", "USER-DEFINED": "NULL"}


async def a_row(pool: asyncpg.Pool, table: str, **given: Any) -> None:
    """A row of ``table`` with ``given`` and every other column that must have a value
    filled (its type's filler): the by-id read sees a row of our center."""
    must = await pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1"
        " AND table_schema = current_schema() AND is_nullable = 'NO' AND column_default IS NULL",
        table)
    names = list(given) + [m["column_name"] for m in must if m["column_name"] not in given]
    values = [f"${i + 1}" for i in range(len(given))] + [
        FILLER[m["data_type"]] for m in must if m["column_name"] not in given]
    await pool.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})",
                       *given.values())


def spying(pool: asyncpg.Pool, rows: list[Any], sent: list[tuple[str, tuple[Any, ...]]] | None
           = None) -> Any:
    class Spy:
        async def fetchrow(self, sql: str, *args: Any) -> Any:
            if sent is not None:
                sent.append((sql, args))
            rows.append(await pool.fetchrow(sql, *args))
            return rows[-1]

        async def fetch(self, sql: str, *args: Any) -> Any:
            if sent is not None:
                sent.append((sql, args))
            rows.extend(found := await pool.fetch(sql, *args))
            return found

        def __getattr__(self, name: str) -> Any:
            return getattr(pool, name)

    return Spy()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


async def planned_by_key(pool: asyncpg.Pool, sql: str, args: tuple[Any, ...]) -> None:
    """The statement reads its row by the table's index (no scan of the table), and each
    subquery once (``SubPlan``: as many as the statement has ``SELECT``s, not one per
    guarded column): a subquery's column guarded by ``CASE`` is not copied elsewhere."""
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # a tiny table: the index if it can
        try:
            [[text]] = await conn.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        finally:
            await conn.execute("RESET enable_seqscan")
    nodes = _nodes(orjson.loads(text)[0]["Plan"])
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (sql, nodes)
    subplans = [n for n in nodes if n.get("Subplan Name", "").startswith("SubPlan")]
    assert len(subplans) == sql.count("SELECT") - 1, (sql, nodes)


Read = Callable[[Any, uuid.UUID, str | None], Awaitable[Any]]
TODAY = date(2026, 12, 20)
FOLLOWUP: list[tuple[str, str, str, Read, dict[str, Any]]] = [
    ("followups", "follow_up_id", "/followups/{}", followup_queries.follow_up, {}),
    ("policy_changes", "policy_id", "/policy-changes/{}", followup_queries.policy_change,
     {"all_centers": False}),
    ("obligations", "obligation_id", "/obligations/{}", followup_queries.obligation, {}),
    ("help_tasks", "task_id", "/help-tasks/{}", followup_queries.help_task, {}),
    ("referrals", "referral_id", "/referrals/{}", followup_queries.referral, {}),
]
FEEDBACK: list[tuple[str, str, str, Read, dict[str, Any]]] = [
    ("surveys", "survey_id", "/surveys/{}", feedback_queries.survey, {}),
    ("surveys", "case_id", "/cases/{}/feedback",
     lambda pool, id_, reach: feedback_queries.case_feedback(pool, id_, TODAY, reach), {}),
    ("rectifications", "rectification_id", "/rectifications/{}",
     lambda pool, id_, reach: feedback_queries.rectification(pool, id_, TODAY, reach), {}),
]
INTAKE: list[tuple[str, str, str, Read, dict[str, Any]]] = [
    ("plans", "plan_id", "/plans/{}", plan_views.plan, {}),
    ("cases", "case_id", "/cases/{}", intake_queries.case, {}),
]


@pytest.mark.parametrize(("make", "reads"), [
    (lambda s: create_followup(s, ManualClock(at(2026, 12, 20, 9))), FOLLOWUP),
    (create_feedback, FEEDBACK),
    (lambda s: create_intake(s, clock=ManualClock(at(2026, 12, 20, 9))), INTAKE),
], ids=["followup", "feedback", "intake"])
async def test_another_centers_row_comes_back_as_its_center_alone(
        settings: Settings, make: Callable[[Settings], Any],
        reads: list[tuple[str, str, str, Read, dict[str, Any]]]) -> None:
    app = make(settings)
    async with running(app) as api:
        pool = app.state.pool
        there = bearer(settings, role=Role.SUPERVISOR, sub="director-9", center=OTHER)
        for table, key, path, read, more in reads:
            ours = uuid.uuid4()
            extra = {"survey_id": uuid.uuid4()} if (table, key) == ("surveys", "case_id") else {}
            await a_row(pool, table, **{key: ours, "center_id": CENTER, **extra, **more})
            rows: list[Any] = []
            sent: list[tuple[str, tuple[Any, ...]]] = []
            assert isinstance(await read(spying(pool, rows, sent), ours, OTHER), Elsewhere), path
            await planned_by_key(pool, *sent[0])
            assert [{k: v for k, v in dict(r).items() if v is not None} for r in rows] == [
                {"center_id": CENTER}], path
            for reach in (CENTER, None):  # ours, and the city's: every column sent
                rows.clear()
                with contextlib.suppress(Exception):  # a filler row: maybe no valid answer
                    await read(spying(pool, rows), ours, reach)
                assert rows and sum(v is not None for v in dict(rows[0]).values()) > 2, path
            nobodys = uuid.uuid4()
            theirs = await api.get(path.format(ours), headers=there)
            none = await api.get(path.format(nobodys), headers=there)
            assert (theirs.status_code, none.status_code) == (404, 404), (path, theirs.text)
            assert error_words(theirs.json(), str(ours)) == error_words(none.json(),
                                                                       str(nobodys)), path


async def test_another_centers_waiting_survey_is_not_joined_to_its_case(
        settings: Settings) -> None:
    """The QR code's read (``/cases/{id}/survey/qr``) sends another center's waiting survey
    as its center alone, without looking up who served its case (intake's row), and answers
    as for a case nobody has. It joined the case's row and sent the whole survey first."""
    app = create_feedback(settings)
    async with running(app) as api:
        pool = app.state.pool
        ours, since = uuid.uuid4(), datetime.now(UTC) - timedelta(minutes=5)
        await a_row(pool, "surveys", survey_id=uuid.uuid4(), case_id=ours, center_id=CENTER,
                    channel="tablet", purpose="resolution", status="sent",
                    sent_at=datetime.now(UTC))
        rows: list[Any] = []
        sent: list[tuple[str, tuple[Any, ...]]] = []
        found = await survey_qr.waiting(spying(pool, rows, sent), ours, since, OTHER)
        assert found is not None and {k: v for k, v in dict(found).items()
                                      if v is not None} == {"center_id": CENTER}
        await planned_by_key(pool, *sent[0])
        mine = await survey_qr.waiting(pool, ours, since, CENTER)
        assert mine is not None and mine["status"] == "sent" and mine["served_by"] == []
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        nobodys = uuid.uuid4()
        theirs = await api.get(f"/cases/{ours}/survey/qr", headers=there)
        none = await api.get(f"/cases/{nobodys}/survey/qr", headers=there)
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), str(ours)) == error_words(none.json(), str(nobodys))
