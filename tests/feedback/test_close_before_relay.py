"""A month closed before an event of it reached the figures is revised, once.

The close waits until the figures have counted every event *on the bus*
(test_close_waits_for_figures.py), but an event intake recorded on 31 May and still in its
outbox (its relay behind, NATS down for the night) is not on the bus. Once relayed it changes
May's figures. It was no late event (recorded in May) and, had it been one, its
``recorded_at`` was before the close's, where the scheduler looked from: May stayed as
reported, and differed from the live figures and ``sixstep report`` for good (redteam65).
Now the close marks the month before it counts, every event applied to a marked month's rows
after that is noted whatever its ``recorded_at``, and the scheduler counts the month again
from where its last count stood in those notes: the same for a no answer recorded at its
deadline before the close and relayed after it, for a visit of May typed in from the paper
register in June before the close and relayed after it (redteam67, who first fixed that one
with a ``seen_at`` the notes' numbers replaced), for a batch another figures worker was
applying while the month was counted, for a December closed in the new year, and for a
rebuild of the figures run before the scheduler's next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.feedback.closing import PeriodScheduler
from services.feedback.figures import FiguresProjection
from services.feedback.figures.projection import DDL, READ_MODEL
from services.feedback.main import create_app
from shared.analytics.rebuild import Rebuild
from shared.contracts import Envelope
from shared.kernel.errors import Unavailable
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.release48 import release48
from tests.feedback.test_visits_and_periods import May, applied_up_to, at, month_row
from tests.support import TEST_CENTER, running, wait_until


async def _revision(client: httpx.AsyncClient, month: str, revision: int) -> dict[str, Any]:
    async def revised() -> bool:
        got = await month_row(client, month)
        return got.get("reported", {}).get("revision") == revision
    await wait_until(revised, what=f"{month}'s revision {revision}")
    return await month_row(client, month)


async def _close(client: httpx.AsyncClient, month: str) -> None:
    r = await client.post(f"/periods/{TEST_CENTER}/{month}/close",
                          headers={"Idempotency-Key": f"close-{month}"})
    assert r.status_code in (200, 201), r.text
    await wait_until(lambda: _reported(client, month), what=f"{month}'s report")


async def _reported(client: httpx.AsyncClient, month: str) -> bool:
    return "reported" in await month_row(client, month)


async def _apply(pool: asyncpg.Pool, settings: Settings, *events: Envelope) -> None:
    """What a figures worker does with a batch: applied in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await FiguresProjection(settings.tz).apply(conn, list(events))


@dataclass
class ClosedMay:
    """May of ``test_visits_and_periods`` closed at 00:30 on 1 June (unless ``close=False``),
    a visit of 23:50 on 31 May (``held``) still in intake's outbox."""

    app: FastAPI
    client: httpx.AsyncClient
    history: History
    held: Envelope
    month: May
    clock: Clock

    async def typed_in(self, settings: Settings, name: str, when: str,
                       recorded_at: str) -> Envelope:
        """A May visit from the paper register, typed in (``recorded_at``) and relayed."""
        self.month.visit(name, when)
        slip = self.history.envelopes[-1] = self.history.envelopes[-1].model_copy(
            update={"recorded_at": datetime.fromisoformat(recorded_at)})
        await applied_up_to(self.app.state.pool, await self.history.publish_new(settings))
        return slip

    async def relay(self, settings: Settings) -> None:
        """The relay catches up: the visit reaches the figures (recorded_at 31 May 23:50)."""
        self.history.envelopes.append(self.held)
        await applied_up_to(self.app.state.pool, await self.history.publish_new(settings))


@contextlib.asynccontextmanager
async def _may_closed(settings: Settings, *, close: bool = True,
                      now: str = "2026-06-01T00:30:00+08:00", visit_at: str = at("31", "23:50"),
                      recorded_at: str | None = None) -> AsyncIterator[ClosedMay]:
    """``now``, ``visit_at``, ``recorded_at``: the close's moment, the held visit's and when
    intake recorded it (then, unless a slip was typed in later)."""
    may = May()
    history = may.build()
    may.visit("relayed-late", visit_at)
    held = history.envelopes.pop()
    if recorded_at is not None:
        held = held.model_copy(update={"recorded_at": datetime.fromisoformat(recorded_at)})
    clock = Clock(datetime.fromisoformat(now))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        await applied_up_to(app.state.pool, await history.publish_new(settings))
        if close:
            await _close(client, "2026-05")
        yield ClosedMay(app, client, history, held, may, clock)


async def _the_slip_alone_named(settings: Settings, may: ClosedMay, *, revision: int) -> None:
    """A May visit typed in on 4 June from the paper register: the next tick records
    ``revision`` (10 visits), which names that slip and nothing before it."""
    slip = await may.typed_in(settings, "slip", at("14", "11:00"), "2026-06-04T10:00:00+08:00")
    assert await may.app.state.period_scheduler.tick() == (0, 1)
    row = await _revision(may.client, "2026-05", revision)
    assert row["visits"] == 10
    assert [e["event_id"] for e in row["reported"]["late_events"]] == [str(slip.event_id)]


async def _rebuilt(settings: Settings) -> None:
    """``sixstep rebuild feedback.figures``, switched in."""
    async with Rebuild(settings, READ_MODEL) as rebuild:
        await rebuild.prepare(fresh=True)
        await rebuild.catch_up(stoppable=False)
        await rebuild.switch()


class Gone(Exception):
    """The process killed between a record and the move of its month's marks."""


async def _gone(*args: Any, **kwargs: Any) -> None:
    raise Gone


@contextlib.contextmanager
def _while_counting(may: ClosedMay, monkeypatch: pytest.MonkeyPatch,
                    between: Callable[[], Awaitable[None]]) -> Iterator[None]:
    """Each count of May (a close's, a revision's) does ``between`` after it has counted
    and before its record."""
    periods = may.app.state.periods
    counted = periods.figures_of

    async def then(*args: Any, **kwargs: Any) -> Any:
        figures = await counted(*args, **kwargs)
        await between()
        return figures
    with monkeypatch.context() as m:
        m.setattr(periods, "figures_of", then)
        yield


async def _reported_8_revised_to_9(may: ClosedMay) -> None:
    """May reported 8 visits while the live figures say 9: the next tick revises it (9)."""
    assert (await month_row(may.client, "2026-05"))["visits"] == 8
    assert (await month_row(may.client, "2026-05", live="true"))["visits"] == 9
    assert await may.app.state.period_scheduler.tick() == (0, 1)
    assert (await _revision(may.client, "2026-05", 1))["visits"] == 9


async def test_a_visit_recorded_in_may_relayed_after_the_close_revises_may(
        settings: Settings) -> None:
    async with _may_closed(settings) as may:
        client, held, pool = may.client, may.held, may.app.state.pool
        scheduler = may.app.state.period_scheduler
        assert (await month_row(client, "2026-05"))["visits"] == 8
        await may.relay(settings)
        assert (await month_row(client, "2026-05", live="true"))["visits"] == 9

        assert await scheduler.tick() == (0, 1)
        row = await _revision(client, "2026-05", 1)
        assert row["visits"] == 9 and row["reported"]["changed"] == ["visits"]
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [str(held.event_id)]
        assert await scheduler.tick() == (0, 0), "a revision is recorded once"

        # the scheduler started again (nothing in memory), the visit delivered again
        again = PeriodScheduler(pool, may.app.state.periods, settings.period_close_after_days,
                                schema=settings.schema_for("feedback"))
        await _apply(pool, settings, held)
        assert await again.tick() == (0, 0)
        assert (await month_row(client, "2026-05"))["reported"]["revision"] == 1


async def test_a_may_visit_typed_in_on_4_june_relayed_after_the_close_revises_may(
        settings: Settings) -> None:
    """A late event (redteam67): a visit of 14 May typed in from the paper register on 4 June
    10:00, intake's relay behind, the supervisor closes May at 10:30. Relayed after, it was
    noted with its ``recorded_at`` (10:00), before the close's, where the scheduler looked
    from: May was never revised. It is noted after the close's mark, and named at its own
    time."""
    async with _may_closed(settings, now="2026-06-04T10:30:00+08:00", visit_at=at("14", "11:00"),
                           recorded_at="2026-06-04T10:00:00+08:00") as may:
        await may.relay(settings)
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        row = await _revision(may.client, "2026-05", 1)
        assert row["visits"] == 9
        assert [e["recorded_at"][:19] for e in row["reported"]["late_events"]] == [
            "2026-06-04T02:00:00"], "the revision names the late event, at its own time"


async def test_a_paper_slip_applied_before_the_close_reached_the_figures_revises_may(
        settings: Settings) -> None:
    """What redteam67 left: the May visit typed in on 4 June 10:00 reaches the figures after
    May was counted and closed at 10:30, but before the figures applied that close (their
    worker on May's record held back here). Nothing told it May was closed: it was seen at
    its ``recorded_at``, before the close, and May was never revised. The close's mark is
    written when it counts, not when its record reaches the figures."""
    async with _may_closed(settings, close=False, now="2026-06-04T10:30:00+08:00",
                           visit_at=at("14", "11:00"),
                           recorded_at="2026-06-04T10:00:00+08:00") as may:
        client, pool = may.client, may.app.state.pool
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("LOCK TABLE fig_reported IN EXCLUSIVE MODE")
            r = await client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                                  headers={"Idempotency-Key": "close-2026-05"})
            assert r.status_code in (200, 201), r.text

            async def held_back() -> bool:  # the figures' worker waits on May's record
                return bool(await pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'fig_reported'::regclass"
                    " AND NOT granted"))
            await wait_until(held_back, what="the close held back from the figures")
            await _apply(pool, settings, may.held)
        await wait_until(lambda: _reported(client, "2026-05"), what="May's report")
        assert (await month_row(client, "2026-05"))["visits"] == 8
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        assert (await _revision(client, "2026-05", 1))["visits"] == 9


async def test_a_revision_owed_under_redteam67s_seen_at_is_kept_by_the_upgrade(
        settings: Settings) -> None:
    """A database the redteam67 release ran: the visit relayed after May's close was noted
    with no number and seen just after May's record (``seen_at``), where that release's
    scheduler looked from, and the service was upgraded before its next tick. The upgrade's
    DDL numbers that note and drops the column: May is still revised, once."""
    async with _may_closed(settings) as may:
        pool = may.app.state.pool
        await may.relay(settings)
        await pool.execute(
            "ALTER TABLE fig_late_events ADD COLUMN seen_at timestamptz;"
            " CREATE INDEX fig_late_seen ON fig_late_events (center_id, month, seen_at);"
            " UPDATE fig_late_events l SET noted_seq = NULL, seen_at = r.recorded_at"
            " + interval '1 microsecond' FROM fig_reported r WHERE r.month = l.month"
            " AND r.center_id = l.center_id")
        await run_migrations(pool, settings.schema_for("feedback"), DDL)
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9
        assert not await pool.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND column_name = 'seen_at'")


@pytest.mark.parametrize("gone", [False, True], ids=["", "gone-after-the-record"])
async def test_a_close_that_failed_names_in_may_s_revision_only_what_its_retry_missed(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, gone: bool) -> None:
    """The store away at 00:30: the close marked May, counted, and recorded nothing (503).
    The visit of 23:50 is relayed, then the close's retry counts it (9). A slip typed in on
    4 June revises May: its revision names the slip, not the visit the retry counted. The
    failed close's mark was kept as where May's record stood: the visit, noted after it, was
    named late in the revision too. ``gone``: the retry records May and the process is gone
    before the marks move (months48: they stood at the failed close's, and the visit the
    close had counted was named again)."""
    async with _may_closed(settings, close=False) as may:
        periods = may.app.state.periods

        async def store_away(*args: Any, **kwargs: Any) -> None:
            raise Unavailable("the store did not take the write")
        with monkeypatch.context() as m:
            m.setattr(periods.path, "create", store_away)
            r = await may.client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                                      headers={"Idempotency-Key": "close-2026-05"})
            assert r.status_code == 503, r.text
        await may.relay(settings)
        if gone:
            with monkeypatch.context() as m:
                m.setattr(periods, "_counted", _gone)
                with pytest.raises(Gone):
                    await periods.close(TEST_CENTER, date(2026, 5, 1), "supervisor",
                                        "supervisor-1", "close-2026-05")
            await wait_until(lambda: _reported(may.client, "2026-05"), what="May's report")
        else:
            await _close(may.client, "2026-05")
        assert (await month_row(may.client, "2026-05"))["visits"] == 9
        await may.app.state.period_scheduler.tick()

        await _the_slip_alone_named(settings, may, revision=1)


async def test_a_no_answer_recorded_at_its_deadline_before_the_close_and_relayed_after_it(
        settings: Settings) -> None:
    """Feedback's own relay behind: the survey expired at 23:00 on 31 May and was recorded at
    00:10 on 1 June, a late event, but recorded before the close of 00:30: the scheduler, which
    looked for late events recorded after the close, never counted it."""
    may = May()
    history = may.build()
    survey = uuid.uuid5(uuid.NAMESPACE_URL, "may-survey-deadline")
    history.add("feedback", "SurveyRequested", at("24", "09:41"), {
        "survey_id": str(survey), "purpose": "resolution", "channel": "sms",
        "resident_id": None, "counter_id": "window-1", "clerk_id": "clerk-001",
        "service_item": "SA-HARDSHIP-SUBSIDY", "send_at": at("24", "10:00"),
        "expires_at": at("31", "23:00"), "rectification_id": None},
        case_id=may.cases["a"], aggregate_id=survey)
    expired = history.add("feedback", "SurveyExpired", at("31", "23:00"), {
        "survey_id": str(survey), "purpose": "resolution", "was_sent": True},
        case_id=may.cases["a"], aggregate_id=survey)
    expired = expired.model_copy(update={
        "recorded_at": datetime.fromisoformat("2026-06-01T00:10:00+08:00")})
    history.envelopes.pop()
    clock = Clock(datetime.fromisoformat("2026-06-01T00:30:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool = app.state.pool
        await applied_up_to(pool, await history.publish_new(settings))
        await _close(client, "2026-05")
        assert (await month_row(client, "2026-05"))["response_rate"]["denominator"] == 0

        history.envelopes.append(expired)
        await applied_up_to(pool, await history.publish_new(settings))
        assert await app.state.period_scheduler.tick() == (0, 1)
        row = await _revision(client, "2026-05", 1)
        assert row["response_rate"] == {"numerator": 0, "denominator": 1, "rate": 0.0}
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [
            str(expired.event_id)]


async def test_a_close_waits_for_the_batch_another_worker_is_applying(
        settings: Settings) -> None:
    """Partitioned figures workers: one of them is in the middle of a batch holding the late
    visit (its transaction open) while a supervisor closes May. Either the close counts it
    (it waits for that batch), or the batch sees the close and the month is revised: never a
    closed May that differs from the live one with nothing to say so."""
    async with _may_closed(settings, close=False) as may:
        client, held, pool = may.client, may.held, may.app.state.pool
        async with pool.acquire() as worker:
            batch = worker.transaction()
            await batch.start()
            await FiguresProjection(settings.tz).apply(worker, [held])
            closing = asyncio.create_task(_close(client, "2026-05"))

            async def waiting_or_done() -> bool:
                return closing.done() or bool(await pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND NOT granted"))
            await wait_until(waiting_or_done, what="the close, or its wait for the batch")
            await batch.commit()
        await closing
        assert (await month_row(client, "2026-05", live="true"))["visits"] == 9
        await may.app.state.period_scheduler.tick()

        async def agrees() -> bool:
            return (await month_row(client, "2026-05"))["visits"] == 9
        await wait_until(agrees, what="May as reported, as it is counted")


@pytest.mark.parametrize("year", [2026, 2027])
async def test_new_years_eve_relayed_on_the_second_revises_the_closed_december(
        settings: Settings, year: int) -> None:
    """The year's turn (the calendar trap): a visit of Sunday 20 December and one at 23:50 on
    31 December (Shanghai; 15:50 UTC) relayed on 2 January, after December was closed on the
    1st, in the provisional 2027 and in 2028, a year the holiday package does not know."""
    history = History(TEST_CENTER)

    def visit(name: str, when: str) -> Envelope:
        visit_id = uuid.uuid5(uuid.NAMESPACE_URL, f"dec-{year}-{name}")
        return history.add("intake", "VisitRecorded", when, {
            "visit_id": str(visit_id), "center_id": TEST_CENTER, "counter_id": "window-1",
            "clerk_id": "clerk-001", "channel": "counter", "case_id": None, "ticket": "A001",
            "wait_minutes": 3}, case_id=None, aggregate_id=visit_id, actor="clerk-001")

    visit("sunday", f"{year}-12-20T10:00:00+08:00")
    held = visit("eve", f"{year}-12-31T23:50:00+08:00")
    history.envelopes.pop()
    new_year = datetime.fromisoformat(f"{year + 1}-01-01T00:30:00+08:00")
    clock = Clock(new_year)
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool = app.state.pool
        await applied_up_to(pool, await history.publish_new(settings))
        await _close(client, f"{year}-12")
        assert (await month_row(client, f"{year}-12"))["visits"] == 1

        clock.set(new_year + timedelta(days=1))
        history.envelopes.append(held)
        await applied_up_to(pool, await history.publish_new(settings))
        assert await app.state.period_scheduler.tick() == (0, 1)
        row = await _revision(client, f"{year}-12", 1)
        assert row["visits"] == 2
        january = await client.get("/figures", params={
            "period": "month", "from": f"{year + 1}-01-01", "to": f"{year + 1}-01-31"})
        assert january.json()["rows"] == [], "31 December in Shanghai, not January in UTC"


async def test_a_rebuild_before_the_next_tick_keeps_the_revision_owed(
        settings: Settings) -> None:
    """``sixstep rebuild feedback.figures`` switched in after the late visit was applied and
    before the scheduler counted May again: the rebuilt notes follow the log's order (the
    visit came after May's close), so May is still revised, once."""
    async with _may_closed(settings) as may:
        await may.relay(settings)
        await _rebuilt(settings)
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9
        assert await may.app.state.period_scheduler.tick() == (0, 0)


async def test_after_a_rebuild_the_notes_are_numbered_after_the_rebuilt_marks(
        settings: Settings) -> None:
    """The live numbering behind the rebuilt one (upgraded from a release that numbered no
    note, every note of before numbered by the rebuild alone): the switch goes on from the
    larger, or a visit relayed after it was noted below May's rebuilt mark, never counted."""
    async with _may_closed(settings) as may:
        await may.app.state.pool.execute("ALTER SEQUENCE fig_noted_seq RESTART")
        await _rebuilt(settings)
        await may.relay(settings)
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9


async def test_a_rebuild_switched_in_while_may_is_closing_keeps_the_close_s_mark(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sixstep rebuild feedback.figures`` switched in while a supervisor's close of May was
    between its count (8 visits) and its record: the rebuilt marks come from the log, where
    May's close is not yet. The visit of 23:50 relayed then changes May all the same: May is
    revised (9), not left as reported while the live figures say otherwise."""
    async with _may_closed(settings, close=False) as may:
        async def rebuilt_and_relayed() -> None:
            await _rebuilt(settings)
            await may.relay(settings)
        with _while_counting(may, monkeypatch, rebuilt_and_relayed):
            await _close(may.client, "2026-05")
        await _reported_8_revised_to_9(may)


async def _revision_1_and_gone(may: ClosedMay, monkeypatch: pytest.MonkeyPatch, *,
                               before: bool = False) -> None:
    """The scheduler revises May for the visit of 23:50 (9), records revision 1 and its
    process is gone before May's marks move (``before``: a replica of the release before)."""
    periods = may.app.state.periods
    with contextlib.ExitStack() as stack:
        if before:
            stack.enter_context(release48(periods, monkeypatch))
        m = stack.enter_context(monkeypatch.context())
        m.setattr(periods, "_counted", _gone)
        with pytest.raises(Gone):
            await may.app.state.period_scheduler.tick()
    assert (await _revision(may.client, "2026-05", 1))["visits"] == 9


async def test_a_revision_recorded_then_the_process_gone_names_its_late_events_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The visit of 23:50 relayed after May's close: revision 1 is recorded, and the
    process is gone before May's marks move to it. The next ticks record nothing again
    (9 visits as revised), and the slip typed in on 4 June is revision 2, naming the slip
    alone: the marks stood at the close, and revision 2 named the visit a second time."""
    async with _may_closed(settings) as may:
        scheduler = may.app.state.period_scheduler
        await may.relay(settings)
        await _revision_1_and_gone(may, monkeypatch)
        assert await scheduler.tick() == (0, 0), "recorded once"

        may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
        await _the_slip_alone_named(settings, may, revision=2)


async def _relayed_and_revised_at(settings: Settings, may: ClosedMay, now: str
                                  ) -> PeriodScheduler:
    """The visit of 23:50 relayed, May revised (revision 1) by the tick at ``now``."""
    scheduler: PeriodScheduler = may.app.state.period_scheduler
    await may.relay(settings)
    may.clock.set(datetime.fromisoformat(now))
    assert await scheduler.tick() == (0, 1)
    await _revision(may.client, "2026-05", 1)
    return scheduler


async def test_slips_typed_in_one_by_one_after_the_close_are_one_revision_an_hour(
        settings: Settings) -> None:
    """May closed, the visit of 23:50 relayed: revision 1 at once. Then slips of the paper
    register typed in one by one on 4 June from 10:00: each minute's tick made a revision of
    its own (a report version, and a notice to the center, a slip each). Within an hour of
    revision 1 they wait (``PERIOD_REVISE_EVERY_MINUTES``, 60), and then are one revision
    naming them all."""
    async with _may_closed(settings) as may:
        scheduler = await _relayed_and_revised_at(settings, may, "2026-06-04T09:30:00+08:00")
        slips = []
        for n, minute in enumerate(("10:00", "10:01", "10:02")):
            may.clock.set(datetime.fromisoformat(f"2026-06-04T{minute}:00+08:00"))
            slips.append(await may.typed_in(settings, f"slip-{n}", at("14", f"11:0{n}"),
                                            f"2026-06-04T{minute}:00+08:00"))
            assert await scheduler.tick() == (0, 0), f"the slip of {minute} waits"
        may.clock.set(datetime.fromisoformat("2026-06-04T10:30:00+08:00"))
        assert await scheduler.tick() == (0, 1), "an hour after revision 1"
        row = await _revision(may.client, "2026-05", 2)
        assert row["visits"] == 12
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [
            str(s.event_id) for s in slips]
        assert await scheduler.tick() == (0, 0)


async def _slip_while_revising(settings: Settings, may: ClosedMay,
                               monkeypatch: pytest.MonkeyPatch,
                               then: Callable[[], Awaitable[None]] | None = None) -> Envelope:
    """The visit of 23:50 relayed; the scheduler counts May again (9) and, before it records
    revision 1, a slip of 14 May typed in on 4 June is applied (then ``then``): the slip."""
    await may.relay(settings)
    slips = []

    async def typed_in() -> None:
        if slips:  # a count again, after a switch
            return
        slips.append(await may.typed_in(settings, "slip", at("14", "11:00"),
                                        "2026-06-04T10:00:00+08:00"))
        if then is not None:
            await then()
    may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
    with _while_counting(may, monkeypatch, typed_in):
        assert await may.app.state.period_scheduler.tick() == (0, 1)
    return slips[0]


async def test_a_visit_applied_while_may_is_closing_and_a_rebuild_switches_in_revises_may(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The close of May has counted (8 visits) and not recorded yet; the visit of 23:50 is
    relayed and applied (noted against the close's mark), then ``sixstep rebuild
    feedback.figures`` switches in. The rebuilt notes come from the log, where the visit is
    before any close of May: not noted. The switch kept the close's mark but not the note,
    and May stayed at 8 as reported while the live figures said 9."""
    async with _may_closed(settings, close=False) as may:
        async def relayed_and_rebuilt() -> None:
            await may.relay(settings)
            await _rebuilt(settings)
        with _while_counting(may, monkeypatch, relayed_and_rebuilt):
            await _close(may.client, "2026-05")
        await _reported_8_revised_to_9(may)


async def test_a_revision_stamped_by_a_clock_a_day_fast_holds_no_slip_back_after_ntp_steps_it(
        settings: Settings) -> None:
    """Feedback's host ran a day fast on 4 June: revision 1 of May is stamped 5 June 09:30.
    NTP steps the clock back to 4 June; a slip typed in at 10:00 waited for the clock to
    pass 5 June 10:30, a day and a half, where the window is an hour: a revision stamped
    more than a window ahead of the clock was stamped by a clock since stepped back, and
    holds nothing back (a step back of minutes still waits, at most two windows)."""
    async with _may_closed(settings) as may:
        scheduler = await _relayed_and_revised_at(settings, may, "2026-06-05T09:30:00+08:00")
        may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
        slip = await may.typed_in(settings, "slip", at("14", "11:00"),
                                  "2026-06-04T10:00:00+08:00")
        assert await scheduler.tick() == (0, 1)
        row = await _revision(may.client, "2026-05", 2)
        assert row["visits"] == 10
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [str(slip.event_id)]
        may.clock.set(datetime.fromisoformat("2026-06-04T10:10:00+08:00"))
        await may.typed_in(settings, "slip-2", at("14", "11:01"), "2026-06-04T10:10:00+08:00")
        assert await scheduler.tick() == (0, 0), "stamped on the stepped clock: it waits"


async def test_a_slip_applied_while_may_is_revised_and_a_rebuild_switches_in_revises_may(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """May closed (8), the visit of 23:50 relayed: the scheduler counts May again (9) and
    has not recorded revision 1 yet when a slip of 14 May is typed in and applied (noted
    after the count's mark), then ``sixstep rebuild feedback.figures`` switches in. The
    rebuild numbers every note anew from 1: the slip's note stood below the revision's mark,
    taken on the live numbering, and the revision moved May's marks to that mark, so May
    stayed at 9 as reported while the live figures said 10. A count taken before a switch
    moves no rebuilt mark (stop 48): May was revised to 9 naming the slip it had not
    counted, and again to 10 naming the visit and the slip a second time. A revision whose
    marks a switch replaced before it read its late events counts again: one revision, 10,
    naming each once."""
    async with _may_closed(settings) as may:
        slip = await _slip_while_revising(settings, may, monkeypatch,
                                          lambda: _rebuilt(settings))
        row = await _revision(may.client, "2026-05", 1)
        assert row["visits"] == 10
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [
            str(may.held.event_id), str(slip.event_id)]
        may.clock.set(datetime.fromisoformat("2026-06-04T11:00:00+08:00"))
        assert await may.app.state.period_scheduler.tick() == (0, 0)


async def test_a_note_kept_at_the_switch_is_numbered_above_the_rebuilt_marks(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live numbering behind the rebuilt one (upgraded from a release that numbered no
    note: April's three slips typed in on 2 May are numbered by the rebuild alone). May's
    close counts (8), the visit of 23:50 is applied and noted against its mark (live note
    2), the close is recorded; then ``sixstep rebuild feedback.figures`` switches in. The
    rebuild saw the visit before May's close on the log and did not note it, so the switch
    kept the live note, numbered 2, below May's rebuilt mark (4, after April's notes): May
    was never counted again, reported 8 while the live figures said 9. A note kept at the
    switch is numbered after every rebuilt one."""
    async with _may_closed(settings, close=False) as may:
        for n in range(3):
            await may.typed_in(settings, f"april-{n}", at(f"2{n}", "11:00", month="04"),
                               "2026-05-02T10:00:00+08:00")
        await may.app.state.pool.execute("ALTER SEQUENCE fig_noted_seq RESTART")
        with _while_counting(may, monkeypatch, lambda: may.relay(settings)):
            await _close(may.client, "2026-05")
        await _rebuilt(settings)
        assert (await month_row(may.client, "2026-05"))["visits"] == 8
        assert (await month_row(may.client, "2026-05", live="true"))["visits"] == 9
        assert (await may.app.state.period_scheduler.tick())[1] == 1, "April closes, May revised"
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9



async def test_a_may_slip_typed_in_while_may_is_closing_and_a_rebuild_switches_in_revises_may(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The close of May has counted (8 visits) and not recorded yet; a slip of 14 May typed
    in on 4 June is applied (noted against the close's mark), then ``sixstep rebuild
    feedback.figures`` switches in. The rebuild notes the slip too (recorded in a later
    month), numbered anew from 1; the switch kept the close's mark, on the live numbering,
    above it: May was never counted again, reported 8 while the live figures said 9. A
    mark kept at the switch stands before every rebuilt note."""
    async with _may_closed(settings, close=False) as may:
        await may.app.state.pool.execute("SELECT setval('fig_noted_seq', 1000)")

        async def typed_in_and_rebuilt() -> None:
            await may.typed_in(settings, "slip", at("14", "11:00"), "2026-06-04T10:00:00+08:00")
            await _rebuilt(settings)
        with _while_counting(may, monkeypatch, typed_in_and_rebuilt):
            await _close(may.client, "2026-05")
        await _reported_8_revised_to_9(may)


async def test_a_close_counted_before_a_switch_and_gone_after_its_record_names_the_slip(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The close of May has counted (8 visits) on the live numbering (at 1001); a slip of 14
    May typed in on 4 June is applied, then ``sixstep rebuild feedback.figures`` switches in
    (the slip noted anew at 1). The close says it is recording (``_pending``, at 1001 on
    the rebuilt marks), records, and the process is gone before May's marks move. The next
    revision settled the record at 1001, above the slip's note: May was revised to 9 naming
    nothing, and a close retried then left May at 8 for good. A record counted against the
    marks a switch replaced is pending from 0: the slip is named."""
    async with _may_closed(settings, close=False) as may:
        periods = may.app.state.periods
        await may.app.state.pool.execute("SELECT setval('fig_noted_seq', 1000)")
        slips = []

        async def typed_in_and_rebuilt() -> None:
            slips.append(await may.typed_in(settings, "slip", at("14", "11:00"),
                                            "2026-06-04T10:00:00+08:00"))
            await _rebuilt(settings)
        with _while_counting(may, monkeypatch, typed_in_and_rebuilt), \
                monkeypatch.context() as m:
            m.setattr(periods, "_counted", _gone)
            r = await may.client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                                      headers={"Idempotency-Key": "close-2026-05"})
            assert r.status_code == 500, "gone after its record"
        await wait_until(lambda: _reported(may.client, "2026-05"), what="May's report")
        assert (await month_row(may.client, "2026-05"))["visits"] == 8
        may.clock.set(datetime.fromisoformat("2026-06-04T11:00:00+08:00"))
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        row = await _revision(may.client, "2026-05", 1)
        assert row["visits"] == 9
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [
            str(slips[0].event_id)]


async def test_a_slip_applied_while_may_is_revised_then_a_rebuild_before_the_next_tick(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """May closed (8), the visit of 23:50 relayed: the scheduler counts May again (9), and a
    slip of 14 May is typed in and applied (noted after the count's mark) before revision 1
    is recorded. Revision 1 (9) is on the log after the slip. ``sixstep rebuild
    feedback.figures`` then switches in before the next tick: the rebuild, going by the
    log's order, took the slip as counted by revision 1 (its mark after the slip's note):
    May stayed at 9 as reported while the live figures said 10. The switch puts a month's
    rebuilt marks back before its first note the live marks still owed a count."""
    async with _may_closed(settings) as may:
        slips = [await _slip_while_revising(settings, may, monkeypatch)]
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9
        await _rebuilt(settings)
        assert (await month_row(may.client, "2026-05", live="true"))["visits"] == 10
        may.clock.set(datetime.fromisoformat("2026-06-04T11:00:00+08:00"))
        assert await may.app.state.period_scheduler.tick() == (0, 1)
        row = await _revision(may.client, "2026-05", 2)
        assert row["visits"] == 10
        assert [e["event_id"] for e in row["reported"]["late_events"]] == [
            str(slips[0].event_id)]
        assert await may.app.state.period_scheduler.tick() == (0, 0)


async def test_a_rebuild_keeps_the_window_of_may_s_last_revision(settings: Settings) -> None:
    """Revision 1 of May at 09:30; ``sixstep rebuild feedback.figures`` switches in; a slip
    typed in at 10:00 waits for the window's end (10:30), as it would have without the
    rebuild: the rebuilt marks had no ``revised_at`` (on no log), and each slip typed in
    after a switch was a revision (a report version and a notice) of its own."""
    async with _may_closed(settings) as may:
        scheduler = await _relayed_and_revised_at(settings, may, "2026-06-04T09:30:00+08:00")
        await _rebuilt(settings)
        may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
        await may.typed_in(settings, "slip", at("14", "11:00"), "2026-06-04T10:00:00+08:00")
        assert await scheduler.tick() == (0, 0), "the slip waits for the window's end"
        may.clock.set(datetime.fromisoformat("2026-06-04T10:30:00+08:00"))
        assert await scheduler.tick() == (0, 1)
        assert (await _revision(may.client, "2026-05", 2))["visits"] == 10


async def test_two_closes_of_may_racing_keep_each_one_s_pending_record(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor closes May on one feedback worker (8 visits counted) while the
    visit of 23:50 is relayed and the scheduler's close on another worker counts May (9),
    records it and is gone before May's marks move. The supervisor's close then says it
    is recording: both records shared one pending slot, the supervisor's overwrote the
    scheduler's, found its own not recorded and cleared it. The scheduler's record was
    never settled, and May's revision named the visit it had counted as late besides the
    slip. Each record keeps its own pending entry: the slip alone is named."""
    async with _may_closed(settings, close=False) as may:
        periods = may.app.state.periods
        raced: list[bool] = []

        async def scheduler_closes_and_is_gone() -> None:
            if raced:  # the scheduler's own count
                return
            raced.append(True)
            await may.relay(settings)
            with monkeypatch.context() as m:
                m.setattr(periods, "_counted", _gone)
                with pytest.raises(Gone):
                    await periods.close(TEST_CENTER, date(2026, 5, 1), "automatic",
                                        "system:feedback-periods",
                                        f"period-close:{TEST_CENTER}:2026-05")
        with _while_counting(may, monkeypatch, scheduler_closes_and_is_gone):
            await _close(may.client, "2026-05")
        assert (await month_row(may.client, "2026-05"))["visits"] == 9, "the scheduler's"

        await _the_slip_alone_named(settings, may, revision=1)



async def test_a_record_left_pending_by_the_release_before_is_still_settled(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The release before kept one pending record per month (``pending_through``,
    ``pending_key``). Its close failed at 00:30 (the store away) after marking May; the
    visit of 23:50 was relayed; the retry counted it (9), recorded May and was gone before
    the marks moved, its record pending in the old slot. Upgraded, the next revision
    settles it there: the slip alone is named, not the visit the retry counted."""
    async with _may_closed(settings, close=False) as may:
        periods, pool = may.app.state.periods, may.app.state.pool

        async def store_away(*args: Any, **kwargs: Any) -> None:
            raise Unavailable("the store did not take the write")

        async def pending_before(center_id: str, month: date, mark: Any, key: str,
                                 **kwargs: Any) -> None:
            await pool.execute(
                "UPDATE fig_closed_marks SET pending_through = $3, pending_key = $4"
                " WHERE center_id = $1 AND month = $2", center_id, month, mark.seq, key)
        with monkeypatch.context() as m:
            m.setattr(periods, "_pending", pending_before)
            m.setattr(periods.path, "create", store_away)
            with pytest.raises(Unavailable):
                await periods.close(TEST_CENTER, date(2026, 5, 1), "supervisor",
                                    "supervisor-1", "close-2026-05")
        await may.relay(settings)
        with monkeypatch.context() as m:
            m.setattr(periods, "_pending", pending_before)
            m.setattr(periods, "_counted", _gone)
            with pytest.raises(Gone):
                await periods.close(TEST_CENTER, date(2026, 5, 1), "supervisor",
                                    "supervisor-1", "close-2026-05")
        await wait_until(lambda: _reported(may.client, "2026-05"), what="May's report")
        assert (await month_row(may.client, "2026-05"))["visits"] == 9

        await _the_slip_alone_named(settings, may, revision=1)


async def test_a_revision_under_way_while_another_worker_settles_may_is_still_settled(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The visit of 23:50 relayed after May's close: the scheduler counts May again (9),
    says its revision is under way and is about to record it, when another worker (its
    figures behind, May not yet reported there) closes May and finds it closed: it settles
    May's records under way, found the revision's not recorded yet and cleared it. The
    revision was then recorded and its process gone before May's marks moved: nothing was
    left to settle, and revision 2 named the visit revision 1 had counted besides the slip
    typed in on 4 June. A record under way is its own until its process is gone."""
    async with _may_closed(settings) as may:
        periods = may.app.state.periods
        await may.relay(settings)
        under_way, go = asyncio.Event(), asyncio.Event()
        on, counted = periods.path.on, periods._counted

        async def held_before_recording(*args: Any, **kwargs: Any) -> Any:
            if str(args[5] if len(args) > 5 else kwargs.get("key")).startswith(
                    "period-revise:"):  # the revision's record, not a settle's look
                under_way.set()
                await go.wait()
            return await on(*args, **kwargs)

        async def gone_after_the_revision(*args: Any, **kwargs: Any) -> None:
            if kwargs.get("revised"):
                raise Gone
            await counted(*args, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(periods.path, "on", held_before_recording)
            m.setattr(periods, "_counted", gone_after_the_revision)
            revising = asyncio.create_task(periods.revise(TEST_CENTER, date(2026, 5, 1)))
            await under_way.wait()
            await periods.close(TEST_CENTER, date(2026, 5, 1), "automatic",
                                "system:feedback-periods", f"period-close:{TEST_CENTER}:2026-05")
            go.set()
            with pytest.raises(Gone):
                await revising
        assert (await _revision(may.client, "2026-05", 1))["visits"] == 9

        await _the_slip_alone_named(settings, may, revision=2)


async def test_the_scheduler_s_close_again_after_its_recorded_one_was_gone_keeps_its_mark(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler's close of May counts 8 visits, records them and its process is gone
    before May's marks move. The visit of 23:50 is relayed. The next worker's scheduler,
    its figures not showing May's report yet, closes May again under the same key: it
    counted again (9) and said its record under way stood at that count, over the one
    recorded, then found May closed under its key and settled it there. The visit counted
    by no record was taken as counted: May stayed at 8 as reported, revised never, while
    the live figures said 9. A close finds its month closed before it says anything is
    under way."""
    async with _may_closed(settings, close=False) as may:
        periods, key = may.app.state.periods, f"period-close:{TEST_CENTER}:2026-05"
        with monkeypatch.context() as m:
            m.setattr(periods, "_counted", _gone)
            with pytest.raises(Gone):
                await periods.close(TEST_CENTER, date(2026, 5, 1), "automatic",
                                    "system:feedback-periods", key)
        await may.relay(settings)
        again = await periods.close(TEST_CENTER, date(2026, 5, 1), "automatic",
                                    "system:feedback-periods", key)
        assert again.replayed
        await wait_until(lambda: _reported(may.client, "2026-05"), what="May's report")
        await _reported_8_revised_to_9(may)


async def _may_marks(pool: asyncpg.Pool) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT pending, pending_key, pending_through, revised_at FROM fig_closed_marks"
        " WHERE center_id = $1 AND month = $2", TEST_CENTER, date(2026, 5, 1))


async def test_a_revision_begun_by_the_release_before_is_settled_once_by_this_one(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rolling upgrade: a replica of the release before (one pending slot per month)
    revises May for the visit of 23:50 relayed after the close (9), records it and is gone
    before May's marks move. This release's scheduler takes over: it settles the record
    from the old slot once (nothing is revised again, the slot is free), and the slip typed
    in on 4 June is revision 2, naming the slip alone."""
    async with _may_closed(settings) as may:
        periods, scheduler, pool = (may.app.state.periods, may.app.state.period_scheduler,
                                    may.app.state.pool)
        await may.relay(settings)
        await _revision_1_and_gone(may, monkeypatch, before=True)
        assert (await _may_marks(pool))["pending_key"] is not None, "in the old slot"

        assert await scheduler.tick() == (0, 0), "settled, not revised again"
        settled = await _may_marks(pool)
        assert (settled["pending"], settled["pending_key"]) == ("{}", None)
        may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
        await periods._settle(TEST_CENTER, date(2026, 5, 1))
        assert (await _may_marks(pool))["revised_at"] == settled["revised_at"], "once"
        await _the_slip_alone_named(settings, may, revision=2)


async def test_a_revision_begun_by_this_release_is_settled_once_by_the_release_before(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rolling upgrade the other way: this release revises May for the visit of 23:50
    (9), records it and is gone before May's marks move; a replica of the release before,
    which reads the old pending slot alone, takes the scheduler over on 4 June. It found
    nothing pending (this release wrote its jsonb entry only), and its revision 2 named the
    visit revision 1 had counted besides the slip. The record is written in the old slot
    too: the release before settles it there, revision 2 names the slip alone, and this
    release, back on 5 June, finds it settled (its entry dropped, May's window as the
    release before left it), not settled a second time."""
    async with _may_closed(settings) as may:
        periods, scheduler, pool = (may.app.state.periods, may.app.state.period_scheduler,
                                    may.app.state.pool)
        await may.relay(settings)
        await _revision_1_and_gone(may, monkeypatch)

        may.clock.set(datetime.fromisoformat("2026-06-04T10:00:00+08:00"))
        with release48(periods, monkeypatch):
            await _the_slip_alone_named(settings, may, revision=2)
        by_the_release_before = await _may_marks(pool)
        assert by_the_release_before["pending_key"] is None

        may.clock.set(datetime.fromisoformat("2026-06-05T10:00:00+08:00"))
        await periods._settle(TEST_CENTER, date(2026, 5, 1))
        settled = await _may_marks(pool)
        assert settled["pending"] == "{}"
        assert settled["revised_at"] == by_the_release_before["revised_at"], "settled once"
        assert await scheduler.tick() == (0, 0)
