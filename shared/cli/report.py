"""``sixstep report``: the center's figures from an export, in the terminal and as HTML."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from shared.cli import app
from shared.cli.long_runs import (
    err,
    moment,
    out,
)
from shared.cli.servers import resolve


@app.command("report")
def report_command(
    export_dir: Annotated[Path, typer.Argument(help="A folder written by 'sixstep export'.")],
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD).")],
    center: Annotated[str | None, typer.Option(help="One center (default: all).")] = None,
    as_of: Annotated[str | None, typer.Option(
        help="Figures as they stood at this moment (events recorded later left out).")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write an HTML page here.")] = None,
    by: Annotated[str, typer.Option(
        help="Columns of the table beside the total: item or day.")] = "item",
) -> None:
    """The center's figures for a period, from an export: a table, and an HTML page."""
    from shared.analytics.export import ExportNotReadable
    from shared.analytics.figures import compute
    from shared.analytics.report import terminal_table, write_html

    settings = resolve().settings  # no server: an export
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter("--from and --to are dates, YYYY-MM-DD") from None
    if first > last:  # both days count: a reversed period counted nothing, silently
        raise typer.BadParameter(f"--from {first} is after --to {last}: both days count; "
                                 "give the first day first")
    try:
        figures = compute(export_dir, first, last, tz=settings.center_timezone, center=center,
                          as_of=moment(as_of, settings, end_of_day=True),
                          arrivals=settings.emotion_defusing_arrivals)
    except ExportNotReadable as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    out.print(terminal_table(figures, by="day" if by == "day" else "item", width=out.width))
    if html is not None:
        write_html(figures, html, source=str(export_dir))
        err.print(f"wrote {html}")
