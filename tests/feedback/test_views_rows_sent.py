"""Feedback's views send a batch's rows as one array of a composite type a statement
(``bulk.RowType``), and leave the rows they left as column arrays: live with the plan made
ahead (``FeedbackViews.prepare``, as the consumer makes it while the batch before waits on
PostgreSQL) or without it, in batches of one, three and all, and rebuilt by the bulk path.

The story runs over the calendar's edges: Sunday 20 December 2026, 23:30 on New Year's Eve in
Shanghai (the UTC day before), a rectification whose deadline falls after 2027's Spring
Festival (a provisional calendar) and one revised to 29 February 2028; a resident's comment
with the characters a composite's text form would quote."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from services.feedback.projections import (
    DDL,
    RECTIFICATION_CHANGE,
    RECTIFICATION_ROW,
    SURVEY_CHANGE,
    SURVEY_ROW,
    FeedbackViews,
)
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import Envelope
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.readmodel_tables import ParamsSent, column_types, rows, with_tables
from tests.support import schema_pool, wait_until

CENTER = "SH-PD-HUAMU"
WORDS = '他说："不行"，（再问问）a\\b "q" (x, y) {z} ,, NULL \\N 😀 行一\n行二'


def _story() -> list[Envelope]:
    history = History(CENTER)

    def requested(case_id: uuid.UUID, at: str, channel: str, expires: str) -> uuid.UUID:
        survey_id = uuid.uuid4()
        history.add("feedback", "SurveyRequested", at, {
            "survey_id": str(survey_id), "purpose": "resolution", "channel": channel,
            "resident_id": str(uuid.uuid4()), "counter_id": "window-3",
            "clerk_id": "clerk-017", "service_item": "SA-HARDSHIP-SUBSIDY", "send_at": at,
            "expires_at": expires}, case_id=case_id, aggregate_id=survey_id,
            actor="system:feedback")
        return survey_id

    def survey(type_: str, case_id: uuid.UUID, survey_id: uuid.UUID, at: str,
               actor: str = "system:feedback", **payload: Any) -> None:
        history.add("feedback", type_, at, {"survey_id": str(survey_id), **payload},
                    case_id=case_id, aggregate_id=survey_id, actor=actor)

    def rect(type_: str, case_id: uuid.UUID, rect_id: uuid.UUID, at: str,
             actor: str = "supervisor-02", **payload: Any) -> None:
        history.add("feedback", type_, at, {"rectification_id": str(rect_id), **payload},
                    case_id=case_id, aggregate_id=rect_id, actor=actor)

    # Sunday 20 December, the weekend desk: asked on the tablet, sent, rated badly.
    sunday = uuid.uuid4()
    tablet = requested(sunday, "2026-12-20T09:20:00+08:00", "tablet",
                       "2026-12-27T18:00:00+08:00")
    survey("SurveySent", sunday, tablet, "2026-12-20T09:20:00+08:00", channel="tablet",
           expires_at="2026-12-27T18:00:00+08:00")
    survey("RatingGiven", sunday, tablet, "2026-12-20T09:25:00+08:00", actor="resident",
           purpose="resolution", level="dissatisfied", comment=WORDS,
           aspects={"listened": 2}, via="token", verdict="not_solved",
           reason_tags=["slow", "unclear"])
    rect_id = uuid.uuid4()
    rect("RectificationOpened", sunday, rect_id, "2026-12-20T09:26:00+08:00",
         actor="system:feedback", resident_id=None, rating="dissatisfied",
         deadline_on="2026-12-25", summary=WORDS, survey_id=str(tablet),
         reason_tags=["slow"])
    rect("RectificationTriaged", sunday, rect_id, "2026-12-21T10:00:00+08:00",
         track="limited", working_days=30, counted_from="2026-12-21",
         deadline_on="2027-02-18", previous_deadline_on="2026-12-25", basis="provisional")
    rect("RectificationAppealed", sunday, rect_id, "2026-12-22T10:00:00+08:00",
         actor="clerk-017", reasons=WORDS)
    rect("RectificationAppealDecided", sunday, rect_id, "2026-12-23T10:00:00+08:00",
         decision="rejected", reasons="复核", appealed_by="clerk-017")
    # 23:30 on New Year's Eve in Shanghai: an SMS survey moved to a phone call, then expired.
    eve = uuid.uuid4()
    sms = requested(eve, "2026-12-31T23:30:00+08:00", "sms", "2027-01-07T18:00:00+08:00")
    survey("SurveyRedirected", eve, sms, "2026-12-31T23:40:00+08:00", from_channel="sms",
           channel="phone_callback", send_at="2027-01-04T09:00:00+08:00",
           expires_at="2027-01-11T18:00:00+08:00")
    survey("SurveyExpired", eve, sms, "2027-01-11T18:00:00+08:00", purpose="resolution",
           was_sent=False)
    rect("RectificationDeadlineRevised", sunday, rect_id, "2027-01-02T08:00:00+08:00",
         deadline_on="2028-02-29", previous_deadline_on="2027-02-18", basis="official",
         published_deadline_on="2028-02-29")
    revisit = uuid.uuid4()
    rect("RevisitRequested", sunday, rect_id, "2027-01-03T08:00:00+08:00",
         survey_id=str(revisit), attempt=1)
    rect("RectificationCompleted", sunday, rect_id, "2028-02-29T17:00:00+08:00",
         outcome="rectified", actions=WORDS, deadline_on="2028-02-29", completed_on="2028-02-29",
         on_time=True)
    return history.envelopes


async def test_each_row_type_has_its_tables_columns_and_their_types(
        settings: Settings) -> None:
    """A column added to ``surveys`` and not to its type would be left empty by the live
    INSERT: each row type has its table's columns (``projected_at`` aside, jsonb sent as
    text), each change type a subset, each of the column's own type."""
    conn = await with_tables(settings, settings.schema_for("feedback"), DDL)
    try:
        for table, row, change in (("surveys", SURVEY_ROW, SURVEY_CHANGE),
                                   ("rectifications", RECTIFICATION_ROW,
                                    RECTIFICATION_CHANGE)):
            columns = await column_types(conn, table)
            assert await column_types(conn, row.name) == {
                c: "text" if t == "jsonb" else t for c, t in columns.items()
                if c != "projected_at"}
            changed = {c: t for c, t in (await column_types(conn, change.name)).items()
                       if c != "?patched"}
            assert changed == {c: columns[c] for c in changed}
    finally:
        await conn.close()


async def _dump(conn: asyncpg.Connection) -> dict[str, list[dict[str, object]]]:
    return {"surveys": await rows(conn, "surveys", "survey_id"),
            "rectifications": await rows(conn, "rectifications", "rectification_id")}


async def _rebuilt(settings: Settings, schema: str, envelopes: list[Envelope]
                   ) -> dict[str, list[dict[str, object]]]:
    """The rows the rebuild's bulk path leaves of ``envelopes``, in ``schema``."""
    conn = await with_tables(settings, schema, DDL)
    try:
        async with conn.transaction():
            await FeedbackViews().copy_apply(conn, envelopes)
        return await _dump(conn)
    finally:
        await conn.close()


async def test_the_views_rows_go_as_one_array_a_statement_and_come_out_the_same(
        settings: Settings) -> None:
    """Every INSERT and UPDATE of ``surveys`` and ``rectifications`` has one parameter (as
    column arrays: up to 30), and the rows are those the bulk path leaves, however the
    batches end and whether or not the plan was made ahead."""
    envelopes = _story()
    schema = settings.schema_for("feedback")
    expected = await _rebuilt(settings, f"{schema}_bulk", envelopes)
    assert expected["surveys"][0]["comment"] == WORDS or expected["surveys"][1][
        "comment"] == WORDS
    seen: set[str] = set()
    for size in (1, 3, len(envelopes)):
        for ahead in (False, True):
            conn = await with_tables(settings, f"{schema}_{size}_{int(ahead)}", DDL)
            try:
                views = FeedbackViews()
                for i in range(0, len(envelopes), size):
                    batch = envelopes[i:i + size]
                    sent = ParamsSent(conn)
                    async with conn.transaction():
                        await views.apply(sent, batch,  # type: ignore[arg-type]
                                          views.prepare(batch) if ahead else None)
                    for statement, n in sent.sent:
                        words = statement.split()
                        if words[0] in ("INSERT", "UPDATE"):
                            target = words[2 if words[0] == "INSERT" else 1].strip('"')
                            assert n == 1, (target, n, size)
                            seen.add(f"{words[0]} {target}")
                assert await _dump(conn) == expected, (size, ahead)
            finally:
                await conn.close()
    assert seen == {"INSERT surveys", "UPDATE surveys", "INSERT rectifications",
                    "UPDATE rectifications"}, seen


# -- an upgraded deployment, and what people type ------------------------------------------
# Feedback's views on a deployment upgraded from the release before their composite types:
# the tables full of that release's rows, no type yet, three replicas of the new release
# starting at once (each runs the DDL under the schema's migration lock: the types made once,
# no ``duplicate_object``; ``RowType.ddl`` alone races: three unlocked at once fail), then the
# live handler going on over the old rows, with and without its plan made ahead, leaving what
# a rebuild of the whole log leaves. What residents and clerks type goes through the
# composites' fields untouched: an empty comment stays empty (not NULL), and so do control
# characters, the line and paragraph separators, a byte-order mark, a right-to-left
# override, a family emoji joined by zero-width joiners, the characters a composite's text
# form quotes, and 10 kB of text.

TYPES = (SURVEY_ROW, RECTIFICATION_ROW, SURVEY_CHANGE, RECTIFICATION_CHANGE)
#: The release before: the same tables, no composite type.
BEFORE = [s for s in DDL if s not in {t.ddl for t in TYPES}]
TYPED = ["", " ", "\\", "a\\", '"', "'", "()", '("")', ",", "{}", "NULL", "\\N",
         "\x01\x02\x1f\x7f", "\u2028\u2029\ufeff\u202e反向", "👨\u200d👩\u200d👧\u200d👦🧧",
         "窗口说材料不全，让我明天再来（第三次了）\r\n\t“能不能一次说清楚？”", "长" * 5000,
         "x" * 10240]
EDGES = ["2026-12-20T09:20:00+08:00", "2026-12-31T23:30:00+08:00", "2027-02-03T10:00:00+08:00",
        "2028-02-29T09:00:00+08:00"]


def _typed_story() -> list[Envelope]:
    """A bad review a resident's words, its rectification's appeal and completion in the
    clerk's, for each of ``TYPED``, on the calendar's edges."""
    history = History(CENTER)
    for i, words in enumerate(TYPED):
        case_id, survey_id, rect_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        at = EDGES[i % len(EDGES)]
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


async def _types_in(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The views' types in ``schema`` or ``public`` (where a start must not make them)."""
    return sorted(r["at"] for r in await conn.fetch(
        "SELECT n.nspname || '.' || t.typname AS at FROM pg_type t JOIN pg_namespace n"
        " ON n.oid = t.typnamespace WHERE t.typname = ANY($1::text[])"
        " AND n.nspname IN ($2, 'public')", [t.name for t in TYPES], schema))


async def test_the_views_go_on_after_an_upgrade_whose_replicas_start_together(
        settings: Settings) -> None:
    envelopes = _typed_story()
    live = settings.schema_for("feedback")
    expected = await _rebuilt(settings, f"{live}_rebuilt", envelopes)
    assert sorted(r["comment"] for r in expected["surveys"]) == sorted(TYPED)
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


async def _applied(settings: Settings, schema: str, envelopes: list[Envelope], size: int,
                   ahead: bool) -> dict[str, list[dict[str, object]]]:
    """The rows the live handler leaves of ``envelopes`` in batches of ``size``, each with
    its plan made ahead (``ahead``) or not, in ``schema``."""
    conn = await with_tables(settings, schema, DDL)
    try:
        views = FeedbackViews()
        for i in range(0, len(envelopes), size):
            batch = envelopes[i:i + size]
            async with conn.transaction():
                await views.apply(conn, batch, views.prepare(batch) if ahead else None)
        return await _dump(conn)
    finally:
        await conn.close()


async def test_what_residents_and_clerks_type_comes_back_as_typed_in_any_batches(
        settings: Settings) -> None:
    envelopes = _typed_story()
    schema = settings.schema_for("feedback")
    for size in (1, 3, len(envelopes)):
        for ahead in (False, True):
            got = await _applied(settings, f"{schema}_{size}_{int(ahead)}", envelopes, size,
                                 ahead)
            assert sorted(r["comment"] for r in got["surveys"]) == sorted(TYPED)
            assert sorted(r["summary"] for r in got["rectifications"]) == sorted(TYPED)
            assert sorted(r["actions"] for r in got["rectifications"]) == sorted(
                w or "上门致歉" for w in TYPED)
            assert {r["deadline_on"].isoformat() for r in got["rectifications"]} == {
                "2028-02-29"}


class _FailingAfterItsStatements(FeedbackViews):
    """The views whose first batches (of more than one event) fail once all their
    statements are sent, each waiting on PostgreSQL a moment first, as a busy server makes
    it wait: the next batch is read and prepared ahead meanwhile."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.prepared_used = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        self.prepared_used += prepared is not None
        await conn.execute("SELECT pg_sleep(0.05)")
        await super().apply(conn, events, prepared)
        if len(events) > 1 and self.failures:
            self.failures -= 1
            raise RuntimeError("the batch before fails after its statements")


async def test_a_batch_prepared_while_the_one_before_fails_leaves_what_a_rebuild_leaves(
        settings: Settings) -> None:
    """On the stream and the consumer: three batches fail after writing every row (rolled
    back, their events applied again one by one) while the batch after each was prepared
    from the rows as they were then; nothing of a plan made ahead reads the tables, so the
    views end as a rebuild of the log leaves them."""
    envelopes = _typed_story()
    expected = await _rebuilt(settings, f"{settings.schema_prefix}rebuilt", envelopes)
    nc = await connect(settings, "test-views")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for e in envelopes:
            await js.publish(event_subject(settings, e.service, e.type, e.case_id),
                             orjson.dumps(e.model_dump(mode="json")),
                             headers={"Nats-Msg-Id": f"{e.service}:{e.position}"})
        views = _FailingAfterItsStatements(3)
        async with schema_pool(settings, "views", [*TRACKING_DDL, *DDL]) as pool:
            consumer = Consumer(settings=settings, nc=nc, pool=pool, name="feedback-views",
                                handler=views, batch=5, max_deliver=3,
                                backoff=(0.05, 0.1, 0.2),
                                filter_subjects=[f"{settings.subject_prefix}.feedback.*.*"])
            task = asyncio.create_task(consumer.run())
            try:
                async def all_applied() -> bool:
                    return consumer.stats.applied >= len(envelopes)
                await wait_until(all_applied, what="every event applied")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            async with pool.acquire() as c:
                assert await _dump(c) == expected
    finally:
        await nc.close()
    assert views.failures == 0 and views.prepared_used >= 1
    assert consumer.stats.dead_lettered == 0
