"""``sixstep rebuild`` (a read model from the log, switched over atomically) and ``sixstep
as-of`` (a case as it stood at a moment)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from shared.cli import app
from shared.cli.long_runs import (
    BatchOpt,
    ClockOpt,
    Tracker,
    _clock,
    ctrl_c,
    err,
    moment,
    out,
    progress_bar,
    run,
)
from shared.cli.servers import resolve
from shared.readmodels.readmodel import registered


@app.command("rebuild")
def rebuild_command(
    read_model: Annotated[str, typer.Argument(
        help=f"A registered read model ({', '.join(sorted(registered()))}: "
             "pyproject.toml's sixstep.read_models) or module:ATTRIBUTE.")],
    dry_run: Annotated[bool, typer.Option(
        help="Build and compare with the live view; do not switch.")] = False,
    fresh: Annotated[bool, typer.Option(help="Discard an unfinished rebuild first.")] = False,
    discard: Annotated[bool, typer.Option(help="Only drop unfinished rebuilds.")] = False,
    samples: Annotated[int, typer.Option(help="Differences to show per table.")] = 5,
    batch: BatchOpt = 1000,
) -> None:
    """Rebuild a read model from the log beside the live one, then switch over atomically."""
    from shared.analytics.rebuild import Rebuild, RebuildError
    from shared.readmodels.readmodel import load_read_model

    model = load_read_model(read_model)
    settings = resolve().use("nats", "database")

    async def main() -> int:
        async with ctrl_c() as stop:
            with progress_bar() as progress:
                tracker = Tracker(progress, f"rebuild {model.consumer}")
                async with Rebuild(settings, model, batch_size=batch, stop=stop,
                                   on_start=tracker.start, on_batch=tracker.batch) as rb:
                    if discard:
                        err.print(f"dropped {', '.join(await rb.discard()) or 'nothing'}")
                        return 0
                    staging = await rb.prepare(fresh=fresh)
                    err.print(f"{'resuming' if rb.resumed else 'building'} {staging}")
                    await rb.catch_up()
                    if stop.is_set():
                        err.print(f"stopped; {staging} kept, run again to resume")
                        return 130
                    diff = await rb.diff(samples=samples)
                    print_diff(diff)
                    state = await rb.state()
                    if state["skipped"]:
                        err.print(f"[yellow]{state['skipped']} events refused by the handler:"
                                  "[/yellow]")
                        for r in await rb.skipped():
                            err.print(f"  seq {r['seq']} {r['type']}: {r['reason']}")
                    if dry_run:
                        err.print(f"dry run: {staging} kept; run without --dry-run to switch")
                        return 0
                    try:
                        switched = await rb.switch()
                    except RebuildError as exc:
                        err.print(f"[red]{exc}[/red]")
                        return 1
                    err.print(f"[green]switched[/green]: {', '.join(switched.tables)} now "
                              f"rebuilt up to stream sequence {switched.last_seq:,}; the old "
                              f"tables are in schema {switched.retired}")
        return 0

    code = run(main)
    if code:
        raise typer.Exit(code)


def print_diff(diff: Any) -> None:
    table = Table(title=f"rebuilt {diff.staging} vs live {diff.live}", title_justify="left")
    for name in ("table", "live rows", "rebuilt rows", "only live", "only rebuilt", "changed"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for t in diff.tables:
        table.add_row(t.table, f"{t.live_rows:,}", f"{t.rebuilt_rows:,}", f"{t.only_live:,}",
                      f"{t.only_rebuilt:,}", f"{t.changed:,}",
                      style=None if t.same else "yellow")
    err.print(table)
    if diff.lagging_keys:
        err.print(f"{diff.lagging_keys:,} cases left out: the live consumer has not applied "
                  "the same events for them yet")
    for t in diff.tables:
        for s in t.samples:
            err.print(f"  {t.table} {s['key']}: "
                      + (f"only in {s['only']}" if "only" in s else
                         ", ".join(f"{c}: live={a!r} rebuilt={b!r}"
                                   for c, (a, b) in s["columns"].items())))
    err.print("[green]identical[/green]" if diff.same else "[yellow]differences found[/yellow]")


# ----------------------------------------------------------------------------------- as-of


@app.command("as-of")
def as_of_command(
    case_id: Annotated[UUID, typer.Argument(help="The case.")],
    at: Annotated[str, typer.Argument(help="The moment (ISO time or date = end of that day).")],
    clock: ClockOpt = "recorded",
    read_model: Annotated[str, typer.Option(help="Read model to fold with.")] = "intake",
) -> None:
    """One case as it stood at a moment, folded from the log by the live projection."""
    from shared.analytics.timetravel import state_as_of
    from shared.readmodels.readmodel import load_read_model

    model = load_read_model(read_model)
    settings = resolve().use("nats", "database")
    when = moment(at, settings, end_of_day=True)
    assert when is not None

    async def main() -> int:
        state = await state_as_of(settings, model, case_id, when, clock=_clock(clock))
        if not state.exists:
            err.print(f"case {case_id} had no events {clock} by {when.isoformat()}")
            return 1
        out.print(f"case {case_id} as of {when.isoformat()} ({clock}): {state.events} events, "
                  f"last {state.last_type}")
        for name, rows in state.tables.items():
            table = Table(title=name, title_justify="left")
            if not rows:
                continue
            if len(rows) == 1:
                table.add_column("column")
                table.add_column("value")
                for k, v in rows[0].items():
                    table.add_row(k, "" if v is None else str(v))
            else:
                keep = [k for k in rows[0] if k not in ("case_id", "payload")]
                for k in keep:
                    table.add_column(k)
                for row in rows:
                    table.add_row(*("" if row[k] is None else str(row[k]) for k in keep))
            out.print(table)
        return 0

    code = run(main)
    if code:
        raise typer.Exit(code)
