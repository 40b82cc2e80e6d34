"""Feedback's views on a deployment upgraded from the release before their composite types
(``survey_row``, ``rectification_row``, ``survey_change``, ``rectification_change``): the
tables full of that release's rows, no type yet, three replicas of the new release starting
at once (each runs the DDL under the schema's migration lock: the types made once, no
``duplicate_object``), then the live handler going on over the old rows, with and without
its plan made ahead, leaving what a rebuild of the whole log leaves.

What residents and clerks type goes through the composites' fields untouched: an empty
comment stays empty (not NULL), and so do control characters, the line and paragraph
separators, a byte-order mark, a right-to-left override, a family emoji joined by
zero-width joiners, the characters a composite's text form quotes, and 10 kB of text. The
days are the calendar's edges: Sunday 20 December 2026, 23:30 on New Year's Eve in
Shanghai, a deadline in 2027 (a provisional calendar) and 29 February 2028."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from services.feedback.projections import (
    DDL,
    RECTIFICATION_CHANGE,
    RECTIFICATION_ROW,
    SURVEY_CHANGE,
    SURVEY_ROW,
    FeedbackViews,
)
from shared.contracts import Envelope
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.readmodel_tables import rows, with_tables

CENTER = "SH-PD-HUAMU"
TYPES = (SURVEY_ROW, RECTIFICATION_ROW, SURVEY_CHANGE, RECTIFICATION_CHANGE)
#: The release before: the same tables, no composite type.
BEFORE = [s for s in DDL if s not in {t.ddl for t in TYPES}]
WORDS = ["", " ", "\\", "a\\", '"', "'", "()", '("")', ",", "{}", "NULL", "\\N",
         "\x01\x02\x1f\x7f", "\u2028\u2029\ufeff\u202e反向", "👨\u200d👩\u200d👧\u200d👦🧧",
         "窗口说材料不全，让我明天再来（第三次了）\r\n\t“能不能一次说清楚？”", "长" * 5000,
         "x" * 10240]
DAYS = ["2026-12-20T09:20:00+08:00", "2026-12-31T23:30:00+08:00", "2027-02-03T10:00:00+08:00",
        "2028-02-29T09:00:00+08:00"]


def _story() -> list[Envelope]:
    """A bad review a resident's words, its rectification's appeal and completion in the
    clerk's, for each of ``WORDS``, on the calendar's edges."""
    history = History(CENTER)
    for i, words in enumerate(WORDS):
        case_id, survey_id, rect_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        at = DAYS[i % len(DAYS)]
        history.add("feedback", "SurveyRequested", at, {
            "survey_id": str(survey_id), "purpose": "resolution", "channel": "tablet",
            "resident_id": None, "counter_id": "window-3", "clerk_id": "clerk-017",
            "service_item": "SA-HARDSHIP-SUBSIDY", "send_at": at,
            "expires_at": "2028-03-07T18:00:00+08:00"}, case_id=case_id,
            aggregate_id=survey_id, actor="system:feedback")
        history.add("feedback", "RatingGiven", at, {
            "survey_id": str(survey_id), "purpose": "resolution", "level": "dissatisfied",
            "comment": words, "aspects": {"listened": 2}, "via": "token",
            "verdict": "not_solved", "reason_tags": ["slow"]},
            case_id=case_id, aggregate_id=survey_id, actor="resident")
        history.add("feedback", "RectificationOpened", at, {
            "rectification_id": str(rect_id), "resident_id": None, "rating": "dissatisfied",
            "deadline_on": "2028-02-29", "summary": words, "survey_id": str(survey_id),
            "reason_tags": ["slow"]}, case_id=case_id, aggregate_id=rect_id,
            actor="system:feedback")
        history.add("feedback", "RectificationAppealed", at, {
            "rectification_id": str(rect_id), "reasons": words or "复核"}, case_id=case_id,
            aggregate_id=rect_id, actor="clerk-017")
        history.add("feedback", "RectificationCompleted", "2028-02-29T17:00:00+08:00", {
            "rectification_id": str(rect_id), "outcome": "rectified",
            "actions": words or "上门致歉", "deadline_on": "2028-02-29",
            "completed_on": "2028-02-29", "on_time": True}, case_id=case_id,
            aggregate_id=rect_id, actor="supervisor-02")
    return history.envelopes


async def _dump(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {"surveys": await rows(conn, "surveys", "survey_id"),
            "rectifications": await rows(conn, "rectifications", "rectification_id")}


async def _types_in(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The views' types in ``schema`` or ``public`` (where a start must not make them)."""
    return sorted(r["at"] for r in await conn.fetch(
        "SELECT n.nspname || '.' || t.typname AS at FROM pg_type t JOIN pg_namespace n"
        " ON n.oid = t.typnamespace WHERE t.typname = ANY($1::text[])"
        " AND n.nspname IN ($2, 'public')", [t.name for t in TYPES], schema))


async def test_the_views_go_on_after_an_upgrade_whose_replicas_start_together(
        settings: Settings) -> None:
    envelopes = _story()
    live = settings.schema_for("feedback")
    rebuilt = await with_tables(settings, f"{live}_rebuilt", DDL)
    try:
        async with rebuilt.transaction():
            await FeedbackViews().copy_apply(rebuilt, envelopes)
        expected = await _dump(rebuilt)
    finally:
        await rebuilt.close()
    assert sorted(r["comment"] for r in expected["surveys"]) == sorted(WORDS)
    # Each survey's first two steps, and each rectification opened, by the release before
    # (its rows as its batches left them); the rest of the log comes after the upgrade.
    before = [e for e in envelopes if e.type in ("SurveyRequested", "RatingGiven",
                                                 "RectificationOpened")]
    after = [e for e in envelopes if e not in before]
    for ahead in (False, True):
        schema = f"{live}_{int(ahead)}"
        conn = await with_tables(settings, schema, BEFORE)
        try:
            async with conn.transaction():
                await FeedbackViews().copy_apply(conn, before)
            assert await _types_in(conn, schema) == []
            pools = [await asyncpg.create_pool(
                settings.database_url, min_size=1, max_size=1,
                server_settings={"search_path": f'"{schema}", public'}) for _ in range(3)]
            try:
                await asyncio.gather(*(run_migrations(p, schema, DDL) for p in pools))
            finally:
                for pool in pools:
                    await pool.close()
            assert await _types_in(conn, schema) == sorted(f"{schema}.{t.name}" for t in TYPES)
            views = FeedbackViews()
            for i in range(0, len(after), 4):
                batch = after[i:i + 4]
                async with conn.transaction():
                    await views.apply(conn, batch, views.prepare(batch) if ahead else None)
            assert await _dump(conn) == expected, ahead
        finally:
            await conn.close()


async def test_what_residents_and_clerks_type_comes_back_as_typed_in_any_batches(
        settings: Settings) -> None:
    envelopes = _story()
    schema = settings.schema_for("feedback")
    for size in (1, 3, len(envelopes)):
        for ahead in (False, True):
            conn = await with_tables(settings, f"{schema}_{size}_{int(ahead)}", DDL)
            try:
                views = FeedbackViews()
                for i in range(0, len(envelopes), size):
                    batch = envelopes[i:i + size]
                    async with conn.transaction():
                        await views.apply(conn, batch,
                                          views.prepare(batch) if ahead else None)
                got = await _dump(conn)
            finally:
                await conn.close()
            assert sorted(r["comment"] for r in got["surveys"]) == sorted(WORDS)
            assert sorted(r["summary"] for r in got["rectifications"]) == sorted(WORDS)
            assert sorted(r["actions"] for r in got["rectifications"]) == sorted(
                w or "上门致歉" for w in WORDS)
            assert {r["deadline_on"].isoformat() for r in got["rectifications"]} == {
                "2028-02-29"}
