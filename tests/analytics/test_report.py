"""The center's figures for a period, from an export: right numbers, a table, a page that draws."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from rich.console import Console

from services.feedback.figures import FIGURE_NAMES
from shared.analytics.export import export
from shared.analytics.figures import RATES, Figures, Row, compute
from shared.analytics.replay import Replay
from shared.analytics.report import terminal_table, write_html
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.analytics.support import (
    HARDSHIP,
    HUAMU,
    SHANGHAI,
    UNEMPLOYMENT,
    CaseStory,
    aftercare,
    at,
    month_of_march_stories,
    publish,
)
from tests.cli.in_process import ran

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MARCH_2, MARCH_3, MARCH_6 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 6)
CASE_COUNTS = ("cases", "resolved", "resolved_as_resolved", "upset_resolved", "defused")


def of_cases(counts: dict[str, int]) -> dict[str, int]:
    return {c: counts[c] for c in CASE_COUNTS}


async def folded_figures(settings: Settings, start: date, end: date) -> dict[str, int]:
    """The same definitions, folded case by case from a replay: an oracle for the SQL."""
    cases: dict[object, dict[str, object]] = {}
    async with Replay(settings) as replay:
        async for batch in replay:
            for e in batch.events:
                c = cases.setdefault(e.case_id, {})
                day = e.occurred_at.astimezone(SHANGHAI).date()
                if e.type == "CaseOpened":
                    c["opened_on"] = day
                elif e.type == "ConcernsNoted":
                    c.setdefault("emotion", e.payload["emotion"])
                elif e.type == "CaseResolved":
                    c.update(resolved_on=day, outcome=e.payload["outcome"],
                             defused=e.payload["emotion_defused"])
                elif e.type == "CaseReopened":
                    c.pop("resolved_on", None)
    out = dict.fromkeys(CASE_COUNTS, 0)
    for c in cases.values():
        out["cases"] += start <= c["opened_on"] <= end  # type: ignore[operator]
        if "resolved_on" in c and start <= c["resolved_on"] <= end:  # type: ignore[operator]
            out["resolved"] += 1
            out["resolved_as_resolved"] += c["outcome"] == "resolved"
            upset = c.get("emotion") in ("upset", "angry", "distressed")
            out["upset_resolved"] += upset
            out["defused"] += upset and bool(c["defused"])
    return out


async def test_figures_for_a_period_from_the_export(settings: Settings, tmp_path: Path) -> None:
    await publish(settings, month_of_march_stories())
    root = tmp_path / "export"
    await export(settings, root)

    figures = compute(root, MARCH_2, MARCH_3, tz="Asia/Shanghai")
    assert of_cases(figures.total.counts) == {"cases": 9, "resolved": 8,
                                              "resolved_as_resolved": 7, "upset_resolved": 4,
                                              "defused": 3}
    assert figures.total.rates["declared_resolution_rate"] == 7 / 8
    assert figures.total.rates["resolution_rate"] is None  # no resident was asked here
    assert figures.total.rates["emotion_defused_rate"] == 3 / 4
    assert figures.total.rates["satisfaction_rate"] is None  # no surveys in this history
    assert of_cases(figures.total.counts) == await folded_figures(settings, MARCH_2, MARCH_3)

    by_day = {r.key: r.counts for r in figures.by_day}
    assert by_day[MARCH_2]["cases"] == 7 and by_day[MARCH_3]["cases"] == 2
    assert by_day[MARCH_3]["resolved"] == 1
    by_item = {r.key: r for r in figures.by_item}
    assert by_item[HARDSHIP].counts["cases"] == 5
    assert by_item[UNEMPLOYMENT].rates["declared_resolution_rate"] == 2 / 3

    huamu = compute(root, MARCH_2, MARCH_3, tz="Asia/Shanghai", center=HUAMU)
    assert (huamu.total.counts["cases"],
            huamu.total.rates["declared_resolution_rate"]) == (6, 4 / 5)

    # As they stood at 10:15 on 2 March: later events (recorded after it) do not count yet.
    then = compute(root, MARCH_2, MARCH_3, tz="Asia/Shanghai", as_of=at("2026-03-02", 10, 15))
    assert of_cases(then.total.counts) == {"cases": 5, "resolved": 3,
                                           "resolved_as_resolved": 3, "upset_resolved": 3,
                                           "defused": 3}

    # The same figures from a CSV export and from one wide table. The CSV one as written
    # before the backdating rule (December 2026): no judged_at column (read as null).
    for fmt, layout in (("csv", "per-type"), ("parquet", "wide")):
        other = tmp_path / f"{fmt}-{layout}"
        await export(settings, other, fmt=fmt, layout=layout)
        parts = sorted((other / "CaseResolved").glob("**/*.csv"))
        assert bool(parts) == (fmt == "csv")
        for part in parts:
            pacsv.write_csv(pacsv.read_csv(part).drop_columns(["judged_at"]), part)
        again = compute(other, MARCH_2, MARCH_3, tz="Asia/Shanghai")
        assert again.total == figures.total and again.by_item == figures.by_item

    console = Console(record=True, width=320)  # every rate: the residents' and the clerks'
    console.print(terminal_table(figures))
    text = console.export_text()
    assert "87.5%" in text and "75.0%" in text and HARDSHIP in text


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="needs Debian's chromium (apt-get install -y chromium)")
async def test_the_report_page_renders_its_charts_in_a_real_browser(
        settings: Settings, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    stories = month_of_march_stories()
    await publish(settings, stories, aftercare(stories))
    await export(settings, tmp_path / "export")
    figures = compute(tmp_path / "export", date(2026, 2, 27), MARCH_3, tz="Asia/Shanghai")
    page_path = write_html(figures, tmp_path / "report.html", source="test export")
    assert "<script" not in page_path.read_text() and "http" not in page_path.read_text()\
        .replace("http://www.w3.org/2000/svg", "")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking"])
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 1400})
            await page.goto(page_path.as_uri())
            charts = await page.eval_on_selector_all("svg.chart", """svgs => svgs.map(s => {
                const box = s.getBoundingClientRect();
                const marks = [...s.querySelectorAll('rect.bar, path.series, circle.point')];
                return {name: s.dataset.chart, width: box.width, height: box.height,
                        marks: marks.length,
                        drawn: marks.filter(m => {
                            const b = m.getBBox(); return b.width > 0 || b.height > 0;
                        }).length};
            })""")
            by_name = {c["name"]: c for c in charts}
            assert set(by_name) == {"visits-per-day", "rates-over-time", "visits-by-item",
                                    "satisfaction-over-time"}
            for chart in charts:
                assert chart["width"] > 300 and chart["height"] > 100, chart
                assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], chart
            assert by_name["visits-per-day"]["marks"] == len(figures.by_day) == 3
            # Resolution rate on 2 and 3 March (a line and its points), emotion-defused rate
            # on 2 March only (a point); 27 February resolved nothing: no point.
            assert by_name["rates-over-time"]["marks"] == 1 + 2 + 1
            # Satisfaction 2/3 on 2 March, 0/1 on 3 March; response 3/3 and 1/1: two lines.
            assert by_name["satisfaction-over-time"]["marks"] == (1 + 2) * 2
            tile = await page.text_content("[data-figure=declared_resolution_rate] b")
            assert tile == "87.5%"
            assert await page.text_content("[data-figure=satisfaction_rate] b") == "50.0%"
            assert await page.text_content("[data-figure=bad_reviews] b") == "2"
            await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            await browser.close()


def _theirs_as_ours(ours: Row, theirs: dict[str, Any]) -> dict[str, Any]:
    """Our row in the feedback service's shape: counts, or numerator/denominator/rate."""
    out: dict[str, Any] = {}
    for name in FIGURE_NAMES:
        if name in ours.counts:
            out[name] = ours.counts[name]
        else:
            rate = next(r for r in RATES if r.name == name)
            out[name] = {"numerator": ours.counts[rate.numerator],
                         "denominator": ours.counts[rate.denominator],
                         "rate": ours.rates[name]}
    for name, value in theirs.items():  # the service rounds rates to 6 places
        if isinstance(value, dict) and value["rate"] is not None:
            out[name]["rate"] = pytest.approx(value["rate"], abs=1e-6)
    return out


async def test_export_figures_agree_with_the_feedback_services_figures(
        settings: Settings, tmp_path: Path) -> None:
    """The same events (visits, surveys answered good and bad, expired and withdrawn, two
    rectifications, follow-ups done, missed, moved and cancelled) through the feedback
    service's figures projection and queries, and through the export and DuckDB."""
    import asyncpg

    from services.feedback import figures as feedback

    stories = month_of_march_stories()
    await publish(settings, stories, aftercare(stories))
    await export(settings, tmp_path / "export")
    as_of, end_of_6_march = MARCH_6, at("2026-03-06", 23, 59)

    def ours(center: str | None = None) -> Figures:
        return compute(tmp_path / "export", MARCH_2, MARCH_6, tz="Asia/Shanghai",
                       center=center, as_of=end_of_6_march)

    total = ours().total
    assert (total.counts["survey_answers"], total.counts["own_answers"],
            total.counts["satisfied_own_answers"]) == (4, 4, 2)
    assert total.rates["response_rate"] == 4 / 5 and total.counts["bad_reviews"] == 2
    assert total.counts["no_consent"] == 1  # not asked: neither an answer nor a no answer
    assert total.rates["revisit_satisfaction_rate"] == 1.0
    assert total.counts["rectifications_opened"] == 2
    assert total.rates["rectification_on_time_rate"] == 1 / 2
    # Not reached at the last attempt is closed but not on time, and counted apart.
    assert total.rates["followups_on_time_rate"] == 2 / 4
    assert total.counts["followups_unreachable"] == 1
    # Cancelled by its own clerk: in no rate, counted apart (one cancelled by the system not);
    # one by the clerk its case was handed over to (FollowUpReassigned), whose it was then.
    assert total.counts["followups_cancelled_by_assignee"] == 2

    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        await make_tables(conn, f"{settings.schema_prefix}figures_check", feedback.DDL, local=True)
        projection = feedback.FiguresProjection(SHANGHAI)
        async with Replay(settings) as replay:
            async for batch in replay:
                await projection.apply(conn, batch.events)

        for center, group_by in ((None, ()), (HUAMU, ("center_id",))):
            query = feedback.FigureQuery(period="all", date_from=MARCH_2, date_to=MARCH_6,
                                         as_of=as_of, group_by=group_by)  # type: ignore[arg-type]
            rows = [r for r in await feedback.compute(conn, query)
                    if center is None or r["center_id"] == center]
            [theirs] = rows
            figures = {k: v for k, v in theirs.items() if k in FIGURE_NAMES}
            assert _theirs_as_ours(ours(center).total, figures) == figures, center

        query = feedback.FigureQuery(period="all", date_from=MARCH_2, date_to=MARCH_6,
                                     as_of=as_of, group_by=("service_item",))
        theirs_by_item = {r["service_item"]: r for r in await feedback.compute(conn, query)}
        ours_by_item = {r.key: r for r in ours().by_item}
        assert set(ours_by_item) == set(theirs_by_item) == {HARDSHIP, UNEMPLOYMENT}
        for item, row in ours_by_item.items():
            figures = {k: v for k, v in theirs_by_item[item].items() if k in FIGURE_NAMES}
            assert _theirs_as_ours(row, figures) == figures, item

        query = feedback.FigureQuery(period="day", date_from=MARCH_2, date_to=MARCH_6,
                                     as_of=as_of, group_by=())
        theirs_by_day = {r["period_start"]: r for r in await feedback.compute(conn, query)}
        ours_by_day = {r.key: r for r in ours().by_day}
        assert set(ours_by_day) == set(theirs_by_day)
        for day, row in ours_by_day.items():
            figures = {k: v for k, v in theirs_by_day[day].items() if k in FIGURE_NAMES}
            assert _theirs_as_ours(row, figures) == figures, day
    finally:
        await tx.rollback()
        await conn.close()


async def test_a_report_over_the_years_turn_typed_backwards_is_refused_not_empty(
        settings: Settings, tmp_path: Path) -> None:
    """A visit at 23:30 on New Year's Eve and one a second past midnight, reported from 1
    December 2026 to 31 January 2027: both days count, each on its Shanghai day. Typed the
    wrong way round (--from 2027-01-31 --to 2026-12-01), the report printed every figure as
    nothing, as if no resident had come, and exited 0."""
    await publish(settings, [
        CaseStory(HUAMU, HARDSHIP, datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)),
        CaseStory(HUAMU, HARDSHIP, datetime(2027, 1, 1, 0, 0, 1, tzinfo=SHANGHAI))])
    root = tmp_path / "export"
    await export(settings, root)
    figures = compute(root, date(2026, 12, 1), date(2027, 1, 31), tz="Asia/Shanghai")
    assert [(r.key, r.counts["cases"]) for r in figures.by_day] == [
        (date(2026, 12, 31), 1), (date(2027, 1, 1), 1)]
    out = ran(["report", str(root), "--from", "2027-01-31", "--to", "2026-12-01"])
    assert out.code == 2, out
    assert "--from 2027-01-31 is after --to 2026-12-01" in out.err
