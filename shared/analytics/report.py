"""The center's figures as a terminal table and as one self-contained HTML page with charts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup
from rich.console import Group
from rich.table import Table

from shared.analytics.charts import bar_chart, hbar_chart, line_chart
from shared.analytics.figures import DEFINITIONS, SHOWN, Figures, Row


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _cells(row: Row, figures: Figures) -> list[str]:
    """One column of the table: the counts, then the rates, of one row of the figures."""
    return ([f"{row.counts[c]:,}" for c in SHOWN]
            + [r.shown(row.rates[r.name]) for r in figures.rates])


def _labels(figures: Figures) -> list[str]:
    return [c.replace("_", " ") for c in SHOWN] + [r.short or r.label for r in figures.rates]


LABEL_WIDTH = 28
"""Room for the longest figure's label (``staff-recorded satisfied %``) and the borders."""
COLUMN_WIDTH = 11
"""Room for one column of figures: ``1,234,567`` or ``100.0%``, a service item's code folded."""


NO_ITEM = "trips, no item"
"""The column of counts no service item owns: visits (trips to the center) are counted once a
trip whatever was asked, so under ``by="item"`` they stand in their own column, not "None"."""


def column_name(key: object) -> str:
    """A row's key as a column or row heading: a service item's code, a day, or ``NO_ITEM``."""
    return NO_ITEM if key is None else str(key)


def terminal_table(figures: Figures, *, by: str = "item", width: int = 80) -> Group:
    """One row per figure (counts, then rates), a column for the total and one per service
    item (``by="item"``) or per day (``by="day"``), in as many tables as ``width`` needs:
    twenty figures side by side do not fit a terminal, twenty rows always do."""
    period = f"{figures.start} – {figures.end}"
    scope = figures.center or "all centers"
    title = f"Center figures, {scope}, {period}"
    if figures.as_of:
        title += f" (as of {figures.as_of.isoformat()})"
    rows = figures.by_item if by == "item" else figures.by_day
    columns = [("total", _cells(figures.total, figures))]
    columns += [(column_name(row.key), _cells(row, figures)) for row in rows]
    per_table = max(1, (width - LABEL_WIDTH) // COLUMN_WIDTH)
    labels = _labels(figures)
    tables = []
    for first in range(0, len(columns), per_table):
        part = columns[first:first + per_table]
        table = Table(title=title if first == 0 else None, title_justify="left")
        table.add_column("figure", no_wrap=True)
        for key, _ in part:
            table.add_column(f"[bold]{key}[/bold]" if key == "total" else key, justify="right",
                             overflow="fold")
        for i, label in enumerate(labels):
            table.add_row(label, *(cells[i] for _, cells in part))
            if i == len(SHOWN) - 1:
                table.add_section()
        tables.append(table)
    return Group(*tables)


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #222; }
 h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
 .tiles { display: flex; gap: 1rem; flex-wrap: wrap; }
 .tile { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
 .tile b { display: block; font-size: 1.4rem; }
 table { border-collapse: collapse; font-size: .85rem; }
 td, th { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: right; }
 td:first-child, th:first-child { text-align: left; }
 .note { color: #666; font-size: .8rem; }
</style></head>
<body>
<h1>{{ title }}</h1>
<p class="note">Generated {{ generated }} from the export at {{ source }}
{%- if figures.as_of %}; events recorded after {{ figures.as_of }} left out{% endif %}.</p>
<div class="tiles">
 <div class="tile" data-figure="visits">Visits (trips)
  <b>{{ "{:,}".format(figures.total.counts.visits) }}</b></div>
 <div class="tile" data-figure="cases">Cases
  <b>{{ "{:,}".format(figures.total.counts.cases) }}</b></div>
 {% for r in figures.rates %}
 <div class="tile" data-figure="{{ r.name }}">{{ r.label }}
  <b>{{ r.shown(figures.total.rates[r.name]) }}</b></div>
 {% endfor %}
 {% for name in ("overdue_open_cases", "bad_reviews", "rectifications_opened", "appeals_upheld") %}
 <div class="tile" data-figure="{{ name }}">{{ name.replace("_", " ") | capitalize }}
  <b>{{ "{:,}".format(figures.total.counts[name]) }}</b></div>
 {% endfor %}
</div>
<h2>Visits per day</h2>
{{ visits_chart }}
<h2>Rates over time</h2>
{{ rates_chart }}
<h2>Satisfaction over time</h2>
<p class="note">On the day each survey was answered or expired.</p>
{{ satisfaction_chart }}
<h2>By service item</h2>
{{ items_chart }}
<table>
 <tr><th>service item</th>{% for c in counts %}<th>{{ c.replace("_", " ") }}</th>{% endfor %}
 {% for r in figures.rates %}<th>{{ r.label }}</th>{% endfor %}</tr>
 {% for row in figures.by_item %}
 <tr><td>{{ column_name(row.key) }}</td>
  {%- for cell in cells(row) %}<td>{{ cell }}</td>{% endfor %}</tr>
 {% endfor %}
</table>
<h2>Definitions</h2>
<ul class="note">{% for name, text in definitions.items() %}
 <li><b>{{ name }}</b>: {{ text }}</li>{% endfor %}</ul>
</body></html>
"""


CASE_RATES = ("resolution_rate", "declared_resolution_rate", "emotion_defused_rate")
SATISFACTION_RATES = ("satisfaction_rate", "staff_recorded_satisfaction_rate", "response_rate")


def html_page(figures: Figures, *, source: str) -> str:
    days = [str(r.key) for r in figures.by_day]
    env = Environment(autoescape=True)
    return env.from_string(PAGE).render(
        title=f"Center figures — {figures.center or 'all centers'}, "
              f"{figures.start} to {figures.end}",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), source=source,
        figures=figures, counts=SHOWN, definitions=DEFINITIONS, pct=pct,
        cells=lambda row: _cells(row, figures), column_name=column_name,
        visits_chart=Markup(bar_chart("visits-per-day", "Visits per day", days,
                                      [r.counts["visits"] for r in figures.by_day])),
        rates_chart=Markup(line_chart("rates-over-time", "Rates over time", days, {
            r.label: [d.rates[r.name] for d in figures.by_day] for r in figures.rates
            if r.name in CASE_RATES})),
        satisfaction_chart=Markup(line_chart(
            "satisfaction-over-time", "Satisfaction over time", days, {
                r.label: [d.rates[r.name] for d in figures.by_day] for r in figures.rates
                if r.name in SATISFACTION_RATES})),
        items_chart=Markup(hbar_chart("visits-by-item", "Cases by service item",
                                      [column_name(r.key) for r in figures.by_item],
                                      [r.counts["cases"] for r in figures.by_item])),
    )


def write_html(figures: Figures, path: Path, *, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(figures, source=source), encoding="utf-8")
    return path
