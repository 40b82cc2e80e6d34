"""The center's figures as a terminal table and as one self-contained HTML page with charts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup
from rich.table import Table

from shared.analytics.charts import bar_chart, hbar_chart, line_chart
from shared.analytics.figures import DEFINITIONS, SHOWN, Figures, Row


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _row_cells(row: Row, figures: Figures) -> list[str]:
    return ([f"{row.counts[c]:,}" for c in SHOWN]
            + [r.shown(row.rates[r.name]) for r in figures.rates])


def terminal_table(figures: Figures, *, by: str = "item") -> Table:
    """Totals, then one line per service item (``by="item"``) or per day (``by="day"``)."""
    period = f"{figures.start} – {figures.end}"
    scope = figures.center or "all centers"
    title = f"Center figures, {scope}, {period}"
    if figures.as_of:
        title += f" (as of {figures.as_of.isoformat()})"
    table = Table(title=title, title_justify="left")
    table.add_column("service item" if by == "item" else "day", no_wrap=True)
    for c in SHOWN:  # the counts' headings are never cut, however many rates follow
        table.add_column(c.replace("_", " "), justify="right", min_width=len(c))
    for r in figures.rates:
        table.add_column(r.short or r.label, justify="right")
    rows = figures.by_item if by == "item" else figures.by_day
    for row in rows:
        table.add_row(str(row.key), *_row_cells(row, figures))
    table.add_section()
    table.add_row("[bold]total[/bold]", *_row_cells(figures.total, figures))
    return table


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
 {% for name in ("bad_reviews", "rectifications_opened", "appeals_upheld") %}
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
 <tr><td>{{ row.key }}</td>{% for cell in cells(row) %}<td>{{ cell }}</td>{% endfor %}</tr>
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
        cells=lambda row: _row_cells(row, figures),
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
                                      [str(r.key) for r in figures.by_item],
                                      [r.counts["cases"] for r in figures.by_item])),
    )


def write_html(figures: Figures, path: Path, *, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(figures, source=source), encoding="utf-8")
    return path
