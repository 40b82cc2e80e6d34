"""``sixstep report``'s headings: visits, which no service item owns, are not shown as "None"."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.console import Console

from shared.analytics.figures import COUNTS, RATES, SHOWN, Figures, Row
from shared.analytics.report import NO_ITEM, terminal_table, write_html
from shared.analytics.sql import COUNT_FIGURES


def _row(key: object, **counts: int) -> Row:
    return Row(key, {**dict.fromkeys(COUNTS, 0), **counts}, dict.fromkeys(r.name for r in RATES))


def _figures() -> Figures:
    total = _row(None, visits=40, cases=3)
    return Figures(date(2026, 12, 1), date(2026, 12, 31), None, None, total,
                   by_item=[_row("SA-HARDSHIP-SUBSIDY", cases=3), _row(None, visits=40)])


def test_the_visits_column_has_a_name_in_the_terminal_and_on_the_page(tmp_path: Path) -> None:
    console = Console(record=True, width=400)
    console.print(terminal_table(_figures()))
    text = console.export_text()
    assert NO_ITEM in text and "None" not in text
    page = write_html(_figures(), tmp_path / "report.html", source="test").read_text()
    assert NO_ITEM in page and ">None<" not in page


def test_the_report_shows_every_count_the_live_figures_answer(tmp_path: Path) -> None:
    """A December with two cases still open past their due day: GET /figures answered
    ``overdue_open_cases: 2`` (and ``no_consent``) but ``sixstep report`` over the same export
    showed neither, only an on-time rate of 100% (redteam65, the year's turn). Every count
    figure of the service is a line of the table and a column of the page."""
    assert set(COUNT_FIGURES) <= set(SHOWN)
    total = _row(None, cases=3, overdue_open_cases=2, no_consent=1)
    figures = Figures(date(2026, 12, 1), date(2026, 12, 31), None, None, total,
                      by_item=[_row("SA-HARDSHIP-SUBSIDY", cases=3, overdue_open_cases=2,
                                    no_consent=1)])
    console = Console(record=True, width=400)
    console.print(terminal_table(figures))
    lines = {line.split("│")[1].strip(): line for line in console.export_text().splitlines()
             if line.count("│") > 2}
    assert "2" in lines["overdue open cases"].split("│")[2]
    assert "1" in lines["no consent"].split("│")[2]
    page = write_html(figures, tmp_path / "report.html", source="test").read_text()
    assert 'data-figure="overdue_open_cases"' in page
    assert "<th>overdue open cases</th>" in page and "<th>no consent</th>" in page
