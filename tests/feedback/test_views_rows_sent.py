"""Feedback's views send a batch's rows as one array of a composite type a statement
(``bulk.RowType``), and leave the rows they left as column arrays: live with the plan made
ahead (``FeedbackViews.prepare``, as the consumer makes it while the batch before waits on
PostgreSQL) or without it, in batches of one, three and all, and rebuilt by the bulk path.

The story runs over the calendar's edges: Sunday 20 December 2026, 23:30 on New Year's Eve in
Shanghai (the UTC day before), a rectification whose deadline falls after 2027's Spring
Festival (a provisional calendar) and one revised to 29 February 2028; a resident's comment
with the characters a composite's text form would quote."""

from __future__ import annotations

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
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.readmodel_tables import ParamsSent, column_types, rows, with_tables

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


async def test_the_views_rows_go_as_one_array_a_statement_and_come_out_the_same(
        settings: Settings) -> None:
    """Every INSERT and UPDATE of ``surveys`` and ``rectifications`` has one parameter (as
    column arrays: up to 30), and the rows are those the bulk path leaves, however the
    batches end and whether or not the plan was made ahead."""
    envelopes = _story()
    schema = settings.schema_for("feedback")
    rebuilt = await with_tables(settings, f"{schema}_bulk", DDL)
    try:
        async with rebuilt.transaction():
            await FeedbackViews().copy_apply(rebuilt, envelopes)
        expected = await _dump(rebuilt)
    finally:
        await rebuilt.close()
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
