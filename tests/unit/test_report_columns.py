"""``sixstep report``'s headings: visits, which no service item owns, are not shown as "None"."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.console import Console

from shared.analytics.figures import COUNTS, RATES, Figures, Row
from shared.analytics.report import NO_ITEM, terminal_table, write_html


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
