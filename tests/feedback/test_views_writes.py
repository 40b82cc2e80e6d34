"""What feedback's views write for a batch: each survey and rectification the batch opens once.

A tablet's survey is requested at the resolution and sent at once, mostly in the same batch.
The views fold the batch's later changes into the new row and write it once, where they
inserted it and then updated it in the same transaction (a second row version, and an entry
in every index, since the status is in each one's predicate). Only rows of earlier batches
are updated. PostgreSQL's own count of the transaction's rows (``pg_stat_xact_user_tables``)
says which; the rebuild's bulk path (``copy_apply``) leaves the same rows.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.feedback.projections import DDL, FeedbackViews
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.readmodel_tables import rows, with_tables, written

CENTER = "SH-PD-HUAMU"


def t(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-12-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def _requested(history: History, case_id: uuid.UUID, at: str, channel: str) -> uuid.UUID:
    survey_id = uuid.uuid4()
    history.add("feedback", "SurveyRequested", at, {
        "survey_id": str(survey_id), "purpose": "resolution", "channel": channel,
        "resident_id": None, "counter_id": "window-3", "clerk_id": "clerk-017",
        "service_item": "SA-HARDSHIP-SUBSIDY", "send_at": at, "expires_at": t(27, 18)},
        case_id=case_id, aggregate_id=survey_id, actor="system:feedback")
    return survey_id


def _sent(history: History, case_id: uuid.UUID, survey_id: uuid.UUID, at: str,
          channel: str) -> None:
    history.add("feedback", "SurveySent", at, {
        "survey_id": str(survey_id), "channel": channel, "expires_at": t(27, 18)},
        case_id=case_id, aggregate_id=survey_id, actor="system:feedback")


def _rated(history: History, case_id: uuid.UUID, survey_id: uuid.UUID, at: str) -> None:
    history.add("feedback", "RatingGiven", at, {
        "survey_id": str(survey_id), "purpose": "resolution", "level": "very_satisfied",
        "aspects": {"listened": 5}, "via": "token", "verdict": "solved"},
        case_id=case_id, aggregate_id=survey_id, actor="resident")


async def _applied(conn: Any, views: FeedbackViews, batch: list[Any]) -> tuple[int, int]:
    """The batch applied in a transaction of its own: (surveys inserted, surveys updated)."""
    async with conn.transaction():
        before = await written(conn, "surveys")
        await views.apply(conn, batch)
        after = await written(conn, "surveys")
    return after[0] - before[0], after[1] - before[1]


async def _status(conn: Any, survey_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT status, channel, sent_at IS NOT NULL AS sent, level,"
                              " aspects::text, version FROM surveys WHERE survey_id = $1",
                              survey_id)
    assert row is not None
    return dict(row)


async def test_a_tablet_survey_asked_and_sent_at_once_is_written_once(
        settings: Settings) -> None:
    history = History(CENTER)
    # Sunday 20 December, the weekend desk: resolved, asked on the tablet, sent at once.
    tablet_case, sms_case = uuid.uuid4(), uuid.uuid4()
    tablet = _requested(history, tablet_case, t(20, 9, 20), "tablet")
    _sent(history, tablet_case, tablet, t(20, 9, 20), "tablet")
    sms = _requested(history, sms_case, t(20, 9, 40), "sms")
    first = history.take().envelopes
    _sent(history, sms_case, sms, t(20, 11), "sms")
    _rated(history, tablet_case, tablet, t(20, 9, 25))
    second = history.take().envelopes

    live = await with_tables(settings, settings.schema_for("feedback"), DDL)
    bulk = await with_tables(settings, f"{settings.schema_for('feedback')}_bulk", DDL)
    try:
        views = FeedbackViews()
        # Two rows, no second version of either.
        assert await _applied(live, views, first) == (2, 0)
        assert await _status(live, tablet) == {
            "status": "sent", "channel": "tablet", "sent": True, "level": None,
            "aspects": None, "version": 2}

        # The next batch: the rows of the batch before are updated, nothing inserted.
        assert await _applied(live, views, second) == (0, 2)
        assert await _status(live, tablet) == {
            "status": "answered", "channel": "tablet", "sent": True,
            "level": "very_satisfied", "aspects": '{"listened": 5}', "version": 3}
        assert (await _status(live, sms))["status"] == "sent"

        # A rebuild's bulk path, batch by batch, leaves the same rows.
        bulk_views = FeedbackViews()
        for batch in (first, second):
            async with bulk.transaction():
                await bulk_views.copy_apply(bulk, batch)
        assert await rows(bulk, "surveys", "survey_id") == await rows(
            live, "surveys", "survey_id")
    finally:
        await live.close()
        await bulk.close()


async def test_a_request_redelivered_with_its_sending_keeps_its_row_and_is_sent(
        settings: Settings) -> None:
    """A survey's request again on the stream (a relay's retry past its dedupe window) beside
    its sending: the row is there, so it stays as it is (ON CONFLICT DO NOTHING) and the
    sending is applied to it, as the INSERT and then UPDATE did."""
    history = History(CENTER)
    case_id = uuid.uuid4()
    survey = _requested(history, case_id, t(31, 23, 30), "sms")  # New Year's Eve, late
    requested = history.take().envelopes
    _sent(history, case_id, survey, t(31, 23, 40), "sms")
    sent = history.take().envelopes

    conn = await with_tables(settings, settings.schema_for("feedback"), DDL)
    try:
        views = FeedbackViews()
        async with conn.transaction():
            await views.apply(conn, requested)
        await conn.execute("UPDATE surveys SET counter_id = 'window-9' WHERE survey_id = $1",
                           survey)
        async with conn.transaction():
            await views.apply(conn, [*requested, *sent])
        row = await conn.fetchrow("SELECT counter_id, status, version FROM surveys"
                                  " WHERE survey_id = $1", survey)
        assert dict(row) == {"counter_id": "window-9", "status": "sent", "version": 2}
    finally:
        await conn.close()
