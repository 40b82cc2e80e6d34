"""Small self-contained SVG charts (no script, no network): bars, lines, horizontal bars."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 44, 16, 44
PALETTE = ("#2f6fb0", "#d9822b", "#3c9d5d", "#a23b72", "#6b5b95")


def _frame(name: str, title: str, body: list[str], height: int = H) -> str:
    return (f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {W} {height}" '
            f'width="{W}" height="{height}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _axes(y_max: float, fmt: str, height: int = H) -> list[str]:
    out = []
    plot_h = height - TOP - BOTTOM
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e3e3e3"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#555">{fmt.format(value)}</text>')
    return out


def _x_labels(labels: Sequence[str], xs: Sequence[float], height: int = H) -> list[str]:
    step = max(1, len(labels) // 10)
    return [f'<text x="{x:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#555">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, xs, strict=True)) if i % step == 0]


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """Vertical bars, one per label (e.g. visits per day)."""
    if not values:
        return _frame(name, title, ['<text x="20" y="40">no data</text>'])
    top = max(math.ceil(max(values) / 4) * 4, 4)  # four whole-number steps
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / len(values)
    body = _axes(top, "{:,.0f}")
    xs = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = LEFT + i * slot + slot * 0.15
        xs.append(x + slot * 0.35)
        body.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
                    f'width="{max(slot * 0.7, 1):.1f}" height="{max(h, 0.5):.1f}" '
                    f'fill="{PALETTE[0]}"><title>{escape(label)}: {value:,.0f}</title></rect>')
    return _frame(name, title, body + _x_labels(labels, xs))


def line_chart(name: str, title: str, labels: Sequence[str],
               series: dict[str, Sequence[float | None]]) -> str:
    """Lines of rates (0..1) over the labels, with a legend; gaps where a value is None."""
    if not labels:
        return _frame(name, title, ['<text x="20" y="40">no data</text>'])
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    xs = [LEFT + i * step for i in range(len(labels))]
    body = _axes(1.0, "{:.0%}")
    for n, (label, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [(x, TOP + plot_h - plot_h * v) for x, v in zip(xs, values, strict=True)
                  if v is not None]
        if len(points) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
                         for i, (x, y) in enumerate(points))
            body.append(f'<path class="series" data-series="{escape(label)}" d="{d}" '
                        f'fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle class="point" data-series="{escape(label)}" cx="{x:.1f}" '
                 f'cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
        body.append(f'<rect x="{LEFT + 10 + n * 190}" y="{H - 14}" width="12" height="4" '
                    f'fill="{colour}"/><text x="{LEFT + 26 + n * 190}" y="{H - 9}" '
                    f'font-size="11">{escape(label)}</text>')
    return _frame(name, title, body + _x_labels(labels, xs))


def hbar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """Horizontal bars, one per label (e.g. visits by service item)."""
    row = 22
    height = TOP + BOTTOM + row * max(len(values), 1)
    if not values:
        return _frame(name, title, ['<text x="20" y="40">no data</text>'], height)
    top = max(max(values), 1)
    left = 220
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row
        w = (W - left - RIGHT - 60) * value / top
        body.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="11">'
                    f'{escape(label)}</text>')
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
                    f'height="{row - 6}" fill="{PALETTE[0]}"><title>{escape(label)}: '
                    f'{value:,.0f}</title></rect>')
        body.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11">'
                    f'{value:,.0f}</text>')
    return _frame(name, title, body, height)
