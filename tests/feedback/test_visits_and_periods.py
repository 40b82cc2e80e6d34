"""Visits counted as trips (人次), the emotion on leaving, and a reported month that stays put.

A hand-built May 2026 at one center, every number worked out by hand below:

    case a  opened 5 May, angry; resolved the same day, left calm           trips 1
    case b  opened 6 May, anxious; came back about it on 8 May (a visit
            naming it), resolved then, left anxious                         trips 2
    case c  opened 7 May, upset; resolved on a CaseResolved v1 (recorded
            before the emotion on leaving was): the clerk said not defused   trips 1
    case d  opened 7 May in the same sitting as c (no visit of its own),
            distressed; resolved leaving upset (the clerk ticked defused:
            the emotion on leaving wins)                                    trips 1
    case e  opened 11 May, promised for 20 May, came back about it on 12 and 13 May; still
            open: an overdue open case once the 20th has passed (a's due date was kept)
    a visit on 14 May for information only (no case), after 12 minutes' wait

    visits (trips) 8: a 5th, b 6th, b 8th, c 7th (naming c, same day), e 11th, 12th, 13th, 14th
    cases 5; resolved 4 (a, b, c, d); trips 1 + 2 + 1 + 1 = 5 -> 5/4 per resolved case
    一次办成率 3/4 (a, c, d); emotion-defused 1/3 (a of a, c, d); with anxious arrivals 1/4

Then May is closed by a supervisor on 3 June; a paper survey answered on 30 May is typed in on
4 June (a late answer): May is not changed silently, the scheduler records a revision that
names the late event. June closes by itself five days after it ends. The public page shows the
closed months, without personal data or free text.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from services.feedback import public
from services.feedback.figures import TABLES, FigureQuery, FiguresProjection, compute
from services.feedback.figures.projection import LATE, LATE_COLUMNS
from services.feedback.main import create_app
from services.feedback.periods import month_end
from shared.analytics import figures as analytics
from shared.analytics.export import export
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, figures_schema
from tests.feedback.totals_check import assert_totals_are_the_scans
from tests.support import TEST_CENTER, running, stream_envelopes, token_for, wait_until

CENTER = TEST_CENTER
ITEM = "SA-HARDSHIP-SUBSIDY"
RESIDENT = uuid.UUID("6a1f9a7e-0000-4000-8000-00000000beef")
COMMENT = "王秀英说电话13812345678很满意"


def at(day: str, hhmm: str = "10:00", month: str = "05") -> str:
    return f"2026-{month}-{day}T{hhmm}:00+08:00"


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator,
            "rate": round(numerator / denominator, 6) if denominator else None}


class May:
    """The month's events, and the ids a test asserts on."""

    def __init__(self) -> None:
        self.h = History(CENTER)
        self.cases: dict[str, UUID] = {}

    def case(self, name: str, when: str) -> UUID:
        case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"may-case-{name}")
        self.cases[name] = case_id
        self.h.add("intake", "CaseOpened", when, {
            "center_id": CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
            "channel": "counter", "service_item": ITEM, "resident_id": str(RESIDENT)},
            case_id=case_id, actor="clerk-001")
        return case_id

    def step(self, case_id: UUID, type_: str, when: str, version: int | None = None,
             **payload: Any) -> None:
        self.h.add("intake", type_, when, payload, case_id=case_id, version=version,
                   actor="clerk-001")

    def visit(self, name: str, when: str, case_id: UUID | None = None,
              wait: int | None = None) -> None:
        visit_id = uuid.uuid5(uuid.NAMESPACE_URL, f"may-visit-{name}")
        self.h.add("intake", "VisitRecorded", when, {
            "visit_id": str(visit_id), "center_id": CENTER, "counter_id": "window-1",
            "clerk_id": "clerk-001", "channel": "counter",
            "case_id": str(case_id) if case_id else None, "ticket": "A017",
            "wait_minutes": wait}, case_id=case_id, aggregate_id=visit_id, actor="clerk-001")

    def build(self) -> History:
        a = self.case("a", at("05", "09:00"))
        self.visit("a", at("05", "08:58"))
        self.step(a, "ConcernsNoted", at("05", "09:05"), emotion="angry", urgency="normal")
        self.step(a, "CaseResolved", at("05", "09:40"), outcome="resolved", explanation="…",
                  emotion_defused=True, emotion_on_leaving="calm")
        b = self.case("b", at("06", "09:00"))
        self.visit("b1", at("06", "08:55"))
        self.step(b, "ConcernsNoted", at("06", "09:05"), emotion="anxious", urgency="normal")
        self.visit("b2", at("08", "14:00"), b)
        self.step(b, "CaseResolved", at("08", "14:30"), outcome="resolved", explanation="…",
                  emotion_defused=True, emotion_on_leaving="anxious")
        c = self.case("c", at("07", "10:00"))
        self.visit("c", at("07", "09:59"), c)  # the opening day: not a return trip
        self.step(c, "ConcernsNoted", at("07", "10:05"), emotion="upset", urgency="normal")
        self.step(c, "CaseResolved", at("07", "10:30"), version=1,  # as stored before v2
                  outcome="resolved", explanation="…", emotion_defused=False)
        d = self.case("d", at("07", "10:35"))
        self.step(d, "ConcernsNoted", at("07", "10:36"), emotion="distressed", urgency="high")
        self.step(d, "CaseResolved", at("07", "11:00"), outcome="partly_resolved",
                  explanation="…", emotion_defused=True, emotion_on_leaving="upset")
        e = self.case("e", at("11", "09:00"))
        self.visit("e1", at("11", "08:50"))
        self.step(e, "ConcernsNoted", at("11", "09:05"), emotion="calm", urgency="normal")
        self.step(e, "CaseDueDateSet", at("11", "09:10"), due_on="2026-05-20",
                  source="promised", cause="promised")  # still open after the 20th: overdue
        self.step(a, "CaseDueDateSet", at("05", "09:10"), due_on="2026-05-06",
                  source="promised", cause="promised")  # resolved the 5th: not overdue
        self.visit("e2", at("12", "09:00"), e)
        self.visit("e3", at("13", "09:00"), e)
        self.visit("info", at("14", "15:00"), wait=12)
        # a's survey, asked at the window; its answer comes late (see the test)
        self.survey = uuid.uuid5(uuid.NAMESPACE_URL, "may-survey-a")
        self.h.add("feedback", "SurveyRequested", at("05", "09:41"), {
            "survey_id": str(self.survey), "purpose": "resolution", "channel": "tablet",
            "resident_id": str(RESIDENT), "counter_id": "window-1", "clerk_id": "clerk-001",
            "service_item": ITEM, "send_at": at("05", "09:41"),
            "expires_at": at("30", "23:00", month="06"), "rectification_id": None},
            case_id=a, aggregate_id=self.survey)
        return self.h


MAY = {
    "visits": 8, "cases": 5,
    "trips_per_resolved_case": rate(5, 4), "first_trip_rate": rate(3, 4),
    "emotion_defused_rate": rate(1, 3),
    "satisfaction_rate": rate(0, 0), "response_rate": rate(0, 0),
    "overdue_open_cases": 1,
}


def subset(row: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in names}


async def month_row(client: httpx.AsyncClient, month: str, **params: Any) -> dict[str, Any]:
    first = date.fromisoformat(f"{month}-01")
    r = await client.get("/figures", params={"period": "month", "from": str(first),
                                             "to": str(month_end(first)), **params})
    assert r.status_code == 200, r.text
    (row,) = r.json()["rows"]
    return row


async def applied_up_to(pool: asyncpg.Pool, seq: int,
                        caught_up: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Wait until the figures consumer has applied the stream up to ``seq`` and, given the
    scheduler's ``caught_up``, until the server has its acks too: the progress row commits
    before the batch's acks reach NATS, and a tick asked in between waits as catching up
    (it did so once at load 20)."""
    async def done() -> bool:
        got = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                  " WHERE consumer = 'feedback-figures'")
        return got is not None and got >= seq
    await wait_until(done, what="the figures consumer")
    if caught_up is not None:
        await wait_until(caught_up, what="the figures consumer's acks")


async def test_a_month_counted_by_trips_closed_and_revised_openly(settings: Settings,
                                                                 tmp_path: Path) -> None:
    may = May()
    history = may.build()
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool = app.state.pool
        scheduler = app.state.period_scheduler

        await applied_up_to(pool, await history.publish_new(settings))

        live = await month_row(client, "2026-05", live="true")
        assert subset(live, MAY) == MAY and "reported" not in live
        # anxious counted among the arrivals to defuse: b left anxious, not defused
        (with_anxious,) = await compute(pool, FigureQuery(
            period="month", date_from=date(2026, 5, 1), date_to=date(2026, 5, 31),
            as_of=date(2026, 6, 1), arrivals=("anxious", "upset", "angry", "distressed")))
        assert with_anxious["emotion_defused_rate"] == rate(1, 4)
        await assert_totals_are_the_scans(pool, date(2026, 6, 3))
        # by window: a visit has its own counter and clerk
        (by_clerk,) = (await client.get("/figures", params={
            "period": "month", "group_by": "clerk_id", "from": "2026-05-01"})).json()["rows"]
        assert by_clerk["clerk_id"] == "clerk-001" and by_clerk["visits"] == 8

        # -- closing ------------------------------------------------------------------------
        r = await client.post("/periods/SH-PD-HUAMU/2026-06/close",
                              headers={"Idempotency-Key": "close-june-early"})
        assert r.status_code == 409 and r.json()["error"]["details"]["rule"] == \
            "period_not_ended", r.text
        other = token_for(settings, "supervisor", "SH-XH-OTHER")
        r = await client.post("/periods/SH-PD-HUAMU/2026-05/close", headers={
            "Idempotency-Key": "close-may-other", "Authorization": f"Bearer {other}"})
        assert r.status_code == 403, r.text
        r = await client.post("/periods/SH-PD-HUAMU/2026-05/close",
                              headers={"Idempotency-Key": "close-may"})
        assert r.status_code in (200, 201), r.text
        closed = r.json()
        again = await client.post("/periods/SH-PD-HUAMU/2026-05/close",
                                  headers={"Idempotency-Key": "close-may"})
        assert again.json()["replayed"] is True and again.json()["id"] == closed["id"]

        async def reported() -> dict[str, Any]:
            row = await month_row(client, "2026-05")
            return row if "reported" in row else {}
        await wait_until(lambda: _true(reported), what="May's report")
        report = await reported()
        assert subset(report, MAY) == MAY
        assert report["reported"]["revision"] == 0
        assert report["reported"]["closed_by"] == "supervisor"

        # -- a late answer: the paper form of 30 May, typed in on 4 June -------------------
        clock.advance(days=1)
        late = history.add("feedback", "RatingGiven", at("30", "16:00"), {
            "survey_id": str(may.survey), "purpose": "resolution", "level": "satisfied",
            "comment": COMMENT, "via": "clerk", "clerk_id": "clerk-001",
            "staff_channel": "paper_form"},
            case_id=may.cases["a"], aggregate_id=may.survey, actor="clerk-001")
        # stored now, after the close (the store stamps recorded_at with its own time)
        late = history.envelopes[-1] = late.model_copy(update={"recorded_at": datetime.now(UTC)})
        await applied_up_to(pool, await history.publish_new(settings))

        # Never silently: the report stands until a revision is recorded; live shows the change.
        assert subset(await month_row(client, "2026-05"), MAY) == MAY
        now_live = await month_row(client, "2026-05", live="true")
        assert now_live["staff_recorded_satisfaction_rate"] == rate(1, 1)  # a paper form
        assert now_live["response_rate"] == rate(1, 1)

        assert await scheduler.tick() == (0, 1)
        assert await scheduler.tick() == (0, 0), "a revision is recorded once"

        async def revised() -> bool:
            return (await month_row(client, "2026-05")).get("reported", {}).get("revision") == 1
        await wait_until(revised, what="May's revision")
        row = await month_row(client, "2026-05")
        assert row["staff_recorded_satisfaction_rate"] == rate(1, 1)
        assert sorted(row["reported"]["changed"]) == [
            "response_rate", "staff_recorded_answers", "staff_recorded_satisfaction_rate"]
        (named,) = row["reported"]["late_events"]
        assert named["event_id"] == str(late.event_id) and named["type"] == "RatingGiven"
        part = (await client.get("/figures", params={"period": "month", "from": "2026-05-10",
                                                     "to": "2026-05-31"})).json()["rows"]
        assert "reported" not in part[0] and part[0]["cases"] == 1, "part of May: counted now"
        revisions = [e for e in await stream_envelopes(settings)
                     if e.type in ("PeriodClosed", "PeriodRevised")]
        assert [(e.type, e.actor) for e in revisions] == [
            ("PeriodClosed", "test-supervisor"), ("PeriodRevised", "system:feedback-periods")]

        # -- June closes by itself five days after it ends -----------------------------------
        may.visit("june", at("15", "10:00", month="06"))
        await applied_up_to(pool, await history.publish_new(settings))
        clock.set(datetime.fromisoformat("2026-07-05T12:00:00+08:00"))
        assert await scheduler.tick() == (0, 0), "30 June + 5 days: not yet"
        clock.set(datetime.fromisoformat("2026-07-06T08:00:00+08:00"))
        assert await scheduler.tick() == (1, 0)

        async def june_closed() -> bool:
            return "reported" in await month_row(client, "2026-06")
        await wait_until(june_closed, what="June's report")
        june = await month_row(client, "2026-06")
        assert june["visits"] == 1 and june["reported"]["closed_by"] == "automatic"

        # -- the public page (公示): no token, closed months only, no personal data ----------
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://feedback") as anyone:
            page = await anyone.get(f"/public/{CENTER}")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            assert "max-age" in page.headers["cache-control"]
            html = page.text
            assert "服务数据公示" in html and "2026年5月" in html and "2026年6月" in html
            assert "来访人次" in html and "一次办成率" in html and "第1次修订" in html
            for private in (str(RESIDENT), *map(str, may.cases.values()), "clerk-001",
                            "window-1", str(late.event_id), "王秀英", "13812345678", "很满意",
                            "A017"):
                assert private not in html, private
            english = await anyone.get(f"/public/{CENTER}", params={"lang": "en"})
            assert "Published figures" in english.text
            nothing = await anyone.get("/public/SH-XH-NOBODY")
            assert nothing.status_code == 200 and "暂无已结账公示的月份" in nothing.text
            assert (await anyone.get("/public/-not-a-center")).status_code == 422
            app.state.public_limits = public.limits(2)
            codes = [(await anyone.get(f"/public/{CENTER}")).status_code for _ in range(3)]
            assert codes == [200, 200, 429]

        live_tables = await _tables(pool)
        service_may = await month_row(client, "2026-05", live="true")

    # -- the analysts' report from an export agrees with the service --------------------------
    await export(settings, tmp_path / "export")
    report = analytics.compute(tmp_path / "export", date(2026, 5, 1), date(2026, 5, 31),
                               tz=settings.center_timezone, center=CENTER)
    counts, rates = report.total.counts, report.total.rates
    assert (counts["visits"], counts["cases"]) == (service_may["visits"], 5)
    assert counts["overdue_open_cases"] == service_may["overdue_open_cases"] == 1
    for name in ("trips_per_resolved_case", "first_trip_rate", "emotion_defused_rate",
                 "staff_recorded_satisfaction_rate", "response_rate"):
        rate_of = next(r for r in analytics.RATES if r.name == name)
        assert {"numerator": counts[rate_of.numerator],
                "denominator": counts[rate_of.denominator]} == {
            k: service_may[name][k] for k in ("numerator", "denominator")}, name
        assert rates[name] == pytest.approx(service_may[name]["rate"], abs=1e-6), name
    anxious = analytics.compute(tmp_path / "export", date(2026, 5, 1), date(2026, 5, 31),
                                tz=settings.center_timezone, center=CENTER,
                                arrivals=("anxious", "upset", "angry", "distressed"))
    assert (anxious.total.counts["defused"], anxious.total.counts["upset_resolved"]) == (1, 4)

    # -- rebuilt from the log in other batch sizes, the bulk way: the same tables -----------
    envelopes = [REGISTRY.current(e) for e in await stream_envelopes(settings)]
    for batch in (1, 5, 1000):
        async with figures_schema(settings, f"rebuild{batch}") as rebuilt:
            projection = FiguresProjection(settings.tz)
            for i in range(0, len(envelopes), batch):
                async with rebuilt.acquire() as conn, conn.transaction():
                    await projection.copy_apply(conn, envelopes[i:i + batch])
            assert await _tables(rebuilt) == live_tables, batch


async def _true(check: Any) -> bool:
    return bool(await check())


async def _tables(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in TABLES:
        rows = await pool.fetch(f"SELECT {', '.join(table.names)} FROM {table.name}"
                                f" ORDER BY {table.key}")
        out[table.name] = [tuple(r) for r in rows]
    rows = await pool.fetch(f"SELECT {', '.join(LATE_COLUMNS)} FROM {LATE}"
                            " ORDER BY event_id, month")
    out[LATE] = [tuple(r) for r in rows]
    return out


@pytest.mark.parametrize("arrival,leaving,defused", [
    ("angry", "calm", True), ("angry", "anxious", True), ("anxious", "upset", False),
    ("upset", "upset", False), ("calm", "anxious", False), (None, "calm", True)])
def test_the_emotion_on_leaving_says_whether_it_was_defused(
        arrival: str | None, leaving: str, defused: bool) -> None:
    from services.intake.domain import defused_on_leaving
    assert defused_on_leaving(arrival, leaving) is defused


def test_a_resolution_recorded_before_the_emotion_on_leaving_reads_as_unknown() -> None:
    contract = REGISTRY.get("CaseResolved")
    v1 = {"outcome": "resolved", "explanation": "…", "emotion_defused": True}
    assert contract.version == 2
    assert contract.upcast(v1, 1) == {**v1, "emotion_on_leaving": None}


async def test_a_log_written_before_trips_and_the_emotion_on_leaving_gives_its_old_figures(
        settings: Settings) -> None:
    """Events as stored before this change (CaseResolved v1, ConcernsNoted v1, no trips),
    read through their upcasters: the emotion-defused rate is the clerk's word as it was, the
    old count of visits is ``cases``, and every case took one trip."""
    h = History(CENTER)
    expected_defused = 0
    for n, (emotion, defused) in enumerate((("angry", True), ("upset", False),
                                            ("distressed", True), ("calm", False))):
        case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"old-{n}")
        h.add("intake", "CaseOpened", at("04", f"1{n}:00"), {
            "center_id": CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
            "channel": "counter", "service_item": ITEM, "resident_id": None},
            case_id=case_id, version=1)
        h.add("intake", "ConcernsNoted", at("04", f"1{n}:05"),
              {"emotion": emotion, "urgency": "normal"}, case_id=case_id, version=1)
        h.add("intake", "CaseResolved", at("04", f"1{n}:30"), {
            "outcome": "resolved", "explanation": "…", "emotion_defused": defused},
            case_id=case_id, version=1)
        expected_defused += defused and emotion != "calm"
    async with figures_schema(settings, "oldlog") as pool:
        async with pool.acquire() as conn, conn.transaction():
            await FiguresProjection(settings.tz).apply(
                conn, [REGISTRY.current(e) for e in h.envelopes])
        (row,) = await compute(pool, FigureQuery(period="month", as_of=date(2026, 6, 1)))
    assert (row["cases"], row["visits"]) == (4, 0)
    assert row["emotion_defused_rate"] == rate(expected_defused, 3) == rate(2, 3)
    assert row["trips_per_resolved_case"] == rate(4, 4)
    assert row["first_trip_rate"] == rate(4, 4)
