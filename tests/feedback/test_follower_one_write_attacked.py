"""redteam130 on feed59 (the intake follower's lone survey requests asked in one command,
``Feedback.request_surveys``): a morning's resolutions at the windows, against the real store.

* One of the surveys refused by the store (a row PostgreSQL will not take): the whole
  command goes back, and the batch applied again one event at a time gives every other case
  its survey; the refused one gets its own once the store takes it, and the batch delivered
  once more asks nothing twice.
* What is stored for each survey is what one command each recorded before: the same ids,
  channel, times, actor, causation and correlation ids and moment, each in the trace of the
  message that caused it.
* A resident erased in the batch merged into the one that asks their survey: withdrawn."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from services.feedback.consumer import IntakeFollower
from services.feedback.domain import survey_id_for_resolution
from services.feedback.main import create_app
from shared import tracing
from shared.contracts import Envelope
from shared.kernel.errors import VersionConflict
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.support import bare_envelope, running
from tests.tracing.memory import traced

#: The calendar's edges: a Sunday window, New Year's Eve at 23:30 in Shanghai, a year the
#: holiday package does not know (provisional), a leap day.
MOMENTS = [datetime(2026, 12, 20, 2, tzinfo=UTC), datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
           datetime(2027, 3, 8, 2, tzinfo=UTC), datetime(2028, 2, 29, 2, tzinfo=UTC)]
IDS = ["sunday", "new-years-eve", "2027", "leap-day"]


def resolved(case_id: uuid.UUID, at: datetime, resident: uuid.UUID | None = None,
             channel: str = "counter") -> list[Envelope]:
    return [bare_envelope("CaseOpened", at, case_id=case_id, payload={
                "counter_id": "window-3", "clerk_id": "clerk-017", "channel": channel,
                "service_item": "SA-HARDSHIP-SUBSIDY",
                "resident_id": str(resident or uuid.uuid4())}),
            bare_envelope("CaseResolved", at, case_id=case_id,
                          payload={"outcome": "resolved"})]


def _with_correlation(events: list[Envelope]) -> list[Envelope]:
    return [e.model_copy(update={"correlation_id": f"corr-{e.case_id}"}) for e in events]


async def _requested_rows(app: Any, settings: Settings, survey_ids: list[uuid.UUID]
                          ) -> dict[uuid.UUID, int]:
    """How many SurveyRequested the store holds for each survey."""
    table = f'"{settings.schema_for("feedback")}".feedback_events'
    rows = await app.state.pool.fetch(
        f"SELECT originator_id, count(*) AS n FROM {table} WHERE originator_id = ANY($1)"
        " AND topic LIKE '%SurveyRequested' GROUP BY originator_id", survey_ids)
    return {uuid.UUID(str(r["originator_id"])): r["n"] for r in rows}


async def _merged(app: Any, follower: IntakeFollower, batch_a: list[Envelope],
                  batch_b: list[Envelope]) -> bool:
    """``batch_a`` applied, and ``batch_b`` in its transaction while its round waits (what
    ``Merging`` does with the batch read ahead); whether B was taken in."""
    merged: list[bool] = []
    async with app.state.pool.acquire() as conn, conn.transaction():
        async def more(waiting: Any) -> None:
            merged.append(True)
            await follower.apply(conn, batch_b)

        await follower.apply(conn, batch_a, more=more)
    return merged == [True]


@pytest.mark.parametrize("at", MOMENTS, ids=IDS)
async def test_a_survey_the_store_refuses_leaves_every_other_case_its_survey_once(
        settings: Settings, at: datetime) -> None:
    app = create_app(settings, sender=KeptSender(), clock=Clock(at))
    async with running(app, anonymous=True):
        follower = IntakeFollower(app.state.feedback)
        cases = [uuid.uuid4() for _ in range(4)]
        batch = [e for case in cases for e in resolved(case, at)]
        surveys = [survey_id_for_resolution(e.event_id) for e in batch[1::2]]
        refused = surveys[1]
        schema = settings.schema_for("feedback")
        # The store refuses the second case's survey (as a row taken meanwhile would be).
        await app.state.pool.execute(f"""
            CREATE OR REPLACE FUNCTION "{schema}".redteam130_refuse() RETURNS trigger AS $$
            BEGIN
              IF NEW.originator_id = '{refused}'::uuid THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'unique_violation';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER redteam130_refuse BEFORE INSERT ON "{schema}".feedback_events
              FOR EACH ROW EXECUTE FUNCTION "{schema}".redteam130_refuse();""")
        async with app.state.pool.acquire() as conn:
            with pytest.raises(VersionConflict):  # the store's refusal, for the command
                async with conn.transaction():
                    await follower.apply(conn, batch)
            assert await _requested_rows(app, settings, surveys) == {}, "all or nothing"
            # What the consumer does next: the batch one event at a time.
            failed: list[uuid.UUID] = []
            for e in batch:
                try:
                    async with conn.transaction():
                        await follower.apply(conn, [e])
                except VersionConflict:
                    failed.append(e.case_id)  # type: ignore[arg-type]
            assert failed == [cases[1]]
            assert await _requested_rows(app, settings, surveys) == {
                s: 1 for s in surveys if s != refused}
            await app.state.pool.execute(
                f'DROP TRIGGER redteam130_refuse ON "{schema}".feedback_events')
            async with conn.transaction():  # its retry, once the store takes it
                await follower.apply(conn, [batch[3]])
            async with conn.transaction():  # the whole batch delivered once more
                await follower.apply(conn, batch)
        assert await _requested_rows(app, settings, surveys) == {s: 1 for s in surveys}


def _stored(app: Any, survey_id: uuid.UUID) -> tuple[Any, list[Any]]:
    repository = app.state.runtime.committer.app.repository
    survey = repository.get(survey_id)
    events = list(repository.event_store.get(survey_id))
    return survey, events


@pytest.mark.parametrize("late_h", [0, 30], ids=["read-at-once", "read-30h-late"])
@pytest.mark.parametrize("at", MOMENTS, ids=IDS)
async def test_each_survey_in_one_command_is_stored_as_one_command_each_stored_it(
        settings: Settings, at: datetime, late_h: int) -> None:
    """The same morning applied twice: through ``request_surveys`` (one command) and as
    before feed59 (``request_survey`` each): each survey's id, channel, times and meta the
    same, by the resolution it answers. Read 30 hours late too (a text planned for a day
    gone: its answer window moved by the days it was late)."""
    read_at = at + timedelta(hours=late_h)
    app = create_app(settings, sender=KeptSender(), clock=Clock(read_at))
    async with running(app, anonymous=True):
        feedback = app.state.feedback
        one = IntakeFollower(feedback)
        each = IntakeFollower(feedback)

        class OneEach:
            def __getattr__(self, name: str) -> Any:
                return getattr(feedback, name)

            def request_surveys(self, asked: list[tuple[Any, Any, Any]]) -> Any:
                sent = [feedback.request_survey(*ask) for ask in asked]
                return asyncio.gather(*(s for s in sent))

        each.feedback = OneEach()  # type: ignore[assignment]
        mornings: list[list[Envelope]] = []
        for follower in (one, each):
            batch = _with_correlation([
                e for channel in ("counter", "phone", "counter", "home_visit")
                for e in resolved(uuid.uuid4(), at, channel=channel)])
            async with app.state.pool.acquire() as conn, conn.transaction():
                await follower.apply(conn, batch)
            mornings.append(batch)
        seen: list[list[tuple[Any, ...]]] = []
        for batch in mornings:
            shapes: list[tuple[Any, ...]] = []
            for e in batch[1::2]:
                survey, events = await asyncio.to_thread(
                    _stored, app, survey_id_for_resolution(e.event_id))
                (first,) = events[:1]
                meta = first.meta
                assert meta["actor"] == "system:feedback"
                assert meta["causation_id"] == str(e.event_id)
                assert meta["correlation_id"] == f"corr-{e.case_id}"
                assert meta["case_id"] == e.case_id and survey.case_id == e.case_id
                assert meta["occurred_at"] == read_at
                # As requested: the running survey scheduler may have sent a tablet survey
                # due now by the time it is read (one morning's, not the other's), so its
                # status and its events after the request are not compared.
                shapes.append((survey.channel, survey.send_at, survey.expires_at,
                               type(first).__name__,
                               sorted(k for k in meta if k != "traceparent")))
            seen.append(shapes)
        assert seen[0] == seen[1]


@pytest.mark.parametrize("at", MOMENTS[:2], ids=IDS[:2])
async def test_a_resident_erased_in_the_merged_batch_is_asked_nothing(
        settings: Settings, at: datetime) -> None:
    """Batch A resolves two residents' cases (one command); batch B, applied in A's
    transaction while A's round waits (``Merging``), is one resident's erasure: their survey
    is withdrawn, the other stands, each asked once."""
    app = create_app(settings, sender=KeptSender(), clock=Clock(at))
    async with running(app, anonymous=True):
        follower = IntakeFollower(app.state.feedback)
        erased, kept = uuid.uuid4(), uuid.uuid4()
        first, second = uuid.uuid4(), uuid.uuid4()
        batch_a = [*resolved(first, at, erased), *resolved(second, at, kept)]
        batch_b = [bare_envelope("ResidentErased", at, case_id=None,
                                 payload={"resident_id": str(erased)})]
        assert await _merged(app, follower, batch_a, batch_b)
        survey_first, _ = await asyncio.to_thread(
            _stored, app, survey_id_for_resolution(batch_a[1].event_id))
        survey_second, _ = await asyncio.to_thread(
            _stored, app, survey_id_for_resolution(batch_a[3].event_id))
        assert survey_first.status == "withdrawn"
        assert survey_second.status == "requested"
        surveys = [survey_id_for_resolution(e.event_id) for e in batch_a[1::2]]
        assert await _requested_rows(app, settings, surveys) == {s: 1 for s in surveys}


class _Message(NamedTuple):
    event_id: uuid.UUID
    type: str
    case_id: uuid.UUID | None
    traceparent: str | None


def _header() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


async def test_each_survey_asked_in_one_command_goes_on_in_its_resolutions_trace(
        settings: Settings) -> None:
    """One command for the batch's surveys, one trace per resolution still: each survey's
    ``SurveyRequested`` carries the trace of the message that caused it, not one for all."""
    at = MOMENTS[0]
    app = create_app(settings, sender=KeptSender(), clock=Clock(at))
    async with running(app, anonymous=True):
        follower = IntakeFollower(app.state.feedback)
        batch = [e for _ in range(3) for e in resolved(uuid.uuid4(), at)]
        messages = [_Message(e.event_id, e.type, e.case_id, _header()) for e in batch]
        with traced():
            async with app.state.pool.acquire() as conn, conn.transaction():
                with tracing.consuming("consume feedback-intake", messages):
                    await follower.apply(conn, batch)
        for e, message in zip(batch, messages, strict=True):
            if e.type != "CaseResolved":
                continue
            _, events = await asyncio.to_thread(
                _stored, app, survey_id_for_resolution(e.event_id))
            assert events[0].meta.get("traceparent") == message.traceparent


@pytest.mark.parametrize("at", MOMENTS, ids=IDS)
async def test_a_case_reopened_and_resolved_in_the_merged_batch_is_asked_once_each_time(
        settings: Settings, at: datetime) -> None:
    """Batch A resolves three cases at the window (one command); batch B, merged into A's
    transaction while A's round waits, reopens the first by staff and resolves it again the
    same minute: the survey A asked is withdrawn unsent (B waits for A's answer first), the
    new resolution asks one of its own; every survey stored once."""
    app = create_app(settings, sender=KeptSender(), clock=Clock(at))
    async with running(app, anonymous=True):
        follower = IntakeFollower(app.state.feedback)
        cases = [uuid.uuid4() for _ in range(3)]
        batch_a = [e for case in cases for e in resolved(case, at)]
        again = bare_envelope("CaseResolved", at, case_id=cases[0],
                              payload={"outcome": "resolved"})
        batch_b = [bare_envelope("CaseReopened", at, case_id=cases[0],
                                 payload={"reason": "staff"}), again]
        assert await _merged(app, follower, batch_a, batch_b)
        first = survey_id_for_resolution(batch_a[1].event_id)
        fresh = survey_id_for_resolution(again.event_id)
        surveys = [*(survey_id_for_resolution(e.event_id) for e in batch_a[1::2]), fresh]
        assert await _requested_rows(app, settings, surveys) == {s: 1 for s in surveys}
        withdrawn, _ = await asyncio.to_thread(_stored, app, first)
        asked, _ = await asyncio.to_thread(_stored, app, fresh)
        assert (withdrawn.status, asked.status) == ("withdrawn", "requested")
        row = await app.state.pool.fetchrow(
            "SELECT last_survey_id FROM intake_cases WHERE case_id = $1", cases[0])
        assert row is not None and row["last_survey_id"] == fresh
