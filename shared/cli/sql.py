"""``sixstep sql``: SQL over the history, DuckDB over an export (``shared/analytics/sql.py``).

``sixstep sql EXPORT -c "SELECT ..."`` prints the result as a table, or writes it with
``--out result.csv`` / ``result.parquet``. Without ``-c``: an interactive shell when stdin is a
terminal, else the statements read from stdin (a script; nothing there is an error, never a
wait). ``--export`` first brings the export up to date from the log (the servers as every
command finds them). A SQL error is printed as DuckDB words it, exit 1; an export written by a
newer sixstep is refused, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shared.cli import app
from shared.cli.long_runs import err, out
from shared.cli.servers import resolve

SQL_ERROR = 1
NOT_READABLE = 2


@app.command("sql")
def sql_command(
    export_dir: Annotated[Path, typer.Argument(
        help="A folder written by 'sixstep export' (made or brought up to date with --export).")],
    command: Annotated[list[str] | None, typer.Option(
        "--command", "-c", help="SQL to run (repeat for several); the last result is shown.")]
        = None,
    output: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the last result here instead: .csv or .parquet.")] = None,
    export_first: Annotated[bool, typer.Option(
        "--export", help="Export from the log first (resumes: only new events are read).")]
        = False,
    max_rows: Annotated[int, typer.Option(help="Rows printed at most (--out writes all).")]
        = 200,
) -> None:
    """SQL over an export: a view per event type, 'events', the facts and every figure."""
    import duckdb

    from shared.analytics.export import ExportNotReadable
    from shared.analytics.sql import open_history

    if output is not None and output.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter("--out names a .csv or a .parquet file")
    servers = resolve()
    if export_first:
        _export(servers.use("nats"), export_dir)
    try:
        con = open_history(export_dir, tz=servers.settings.center_timezone)
    except ExportNotReadable as exc:
        err.print(f"[red]refused:[/red] {escape(str(exc))}")
        raise typer.Exit(NOT_READABLE) from None
    try:
        if command:
            script = ";\n".join(command)
        elif sys.stdin.isatty():
            _shell(con, max_rows)
            return
        else:
            script = sys.stdin.read()
            if not script.strip():
                err.print("[red]no SQL:[/red] give it with -c, or pipe statements in; "
                          "run in a terminal for the interactive shell")
                raise typer.Exit(NOT_READABLE)
        try:
            result = _run(con, script)
        except duckdb.Error as exc:
            err.print(f"[red]SQL error:[/red] {escape(str(exc))}")
            raise typer.Exit(SQL_ERROR) from None
        if result is None:
            return
        if output is not None:
            _write(result, output)
            err.print(f"wrote {result.num_rows:,} rows to {output}")
        else:
            out.print(_table(result, max_rows))
    finally:
        con.close()


def _export(settings: Any, root: Path) -> None:
    from shared.analytics.export import export
    from shared.cli.long_runs import run

    async def main() -> None:
        result = await export(settings, root)
        err.print(f"exported up to stream sequence {result.last_seq:,} "
                  f"({result.events:,} new events) to {root}")

    run(main)


def _run(con: Any, script: str) -> Any:
    """Every statement of ``script`` in order, each run to its end; the last one's result
    (Arrow), None when it has none. Each runs as a relation: Arrow taken from a DB-API cursor
    is an extra copy of every row, and DuckDB said so on the analyst's terminal (a
    UserWarning) at every query."""
    last = None
    for statement in con.extract_statements(script):
        result = con.sql(statement.query)
        last = None if result is None else result.to_arrow_table()
    return last


def _write(table: Any, path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from shared.analytics.export import csv_ready

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pacsv.write_csv(csv_ready(table), path)


def _table(result: Any, max_rows: int) -> Table:
    table = Table(show_lines=False, title_justify="left",
                  caption=f"{result.num_rows:,} row(s)"
                  + (f", the first {max_rows:,} shown (--out writes all)"
                     if result.num_rows > max_rows else ""))
    for name in result.column_names:
        table.add_column(escape(name), overflow="fold")
    for row in result.slice(0, max_rows).to_pylist():
        table.add_row(*(escape("NULL" if v is None else str(v)) for v in row.values()))
    return table


def _shell(con: Any, max_rows: int) -> None:
    """Read statements (ending with ';') at a prompt; .tables lists the views, .quit ends."""
    import duckdb

    from shared.analytics.sql import views

    err.print("sixstep sql: DuckDB over the export. End a statement with ';'. "
              ".tables lists the views, .quit (or Ctrl-D) ends.")
    buffer = ""
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except (EOFError, KeyboardInterrupt):
            err.print("")
            return
        if not buffer and line.strip() in (".quit", ".exit"):
            return
        if not buffer and line.strip() == ".tables":
            out.print(", ".join(views(con)))
            continue
        buffer += line + "\n"
        if not buffer.rstrip().endswith(";"):
            continue
        script, buffer = buffer, ""
        try:
            result = _run(con, script)
        except duckdb.Error as exc:
            err.print(f"[red]SQL error:[/red] {escape(str(exc))}")
            continue
        if result is not None:
            out.print(_table(result, max_rows))
