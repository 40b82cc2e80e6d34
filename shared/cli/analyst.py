"""Analysts' commands: ``replay``, ``export``, ``rebuild``, ``as-of``, ``report``.

Long runs show a progress bar (events/s and time left) on stderr. The first Ctrl-C finishes
the batch in hand, saves where it got to and exits 130; a rerun of the same command resumes
there. A second Ctrl-C stops at once (the checkpoint still holds the last finished batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from shared.analytics.checkpoint import Checkpoint, CheckpointMismatch
from shared.analytics.replay import Batch, NoSuchStream, Replay, Selection, Unreadable
from shared.cli import app
from shared.settings import Settings

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

Services = Annotated[list[str], typer.Option("--service", "-s", help="Origin service (repeat).")]
Types = Annotated[list[str], typer.Option("--type", "-t", help="Event type (repeat).")]
Centers = Annotated[list[str], typer.Option("--center", "-c", help="Center id (repeat).")]
Cases = Annotated[list[UUID], typer.Option("--case", help="Case id (repeat).")]
Since = Annotated[str | None, typer.Option(
    help="From this moment (date or ISO time; the center's zone unless given).")]
Until = Annotated[str | None, typer.Option(help="Up to this moment, inclusive.")]
ClockOpt = Annotated[str, typer.Option(
    help="Which clock --since/--until/--as-of read: 'recorded' (stored) or 'occurred'.")]
BatchOpt = Annotated[int, typer.Option(help="Events per fetch from the stream.", min=1)]


def moment(text: str | None, settings: Settings, *, end_of_day: bool = False) -> datetime | None:
    """A date (start of that day, or its end) or an ISO time; the center's zone by default."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a date nor an ISO time") from None
    return at if at.tzinfo else at.replace(tzinfo=settings.tz)


def _clock(text: str) -> Literal["recorded", "occurred"]:
    if text not in ("recorded", "occurred"):
        raise typer.BadParameter("--clock is 'recorded' or 'occurred'")
    return "recorded" if text == "recorded" else "occurred"


def selection_of(settings: Settings, services: list[str], types: list[str],
                 centers: list[str], cases: list[UUID], since: str | None, until: str | None,
                 clock: str) -> Selection:
    return Selection(services=tuple(services), types=tuple(types), centers=tuple(centers),
                     cases=tuple(cases), since=moment(since, settings),
                     until=moment(until, settings, end_of_day=True), clock=_clock(clock))


class RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("  —  ev/s" if speed is None else f"{speed:>9,.0f} ev/s", style="cyan")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(),
                    console=err, transient=False, refresh_per_second=4)


class Tracker:
    """Feeds a replay's progress into a rich progress bar."""

    def __init__(self, progress: Progress, what: str) -> None:
        self.progress = progress
        self.what = what
        self.task: Any = None

    def start(self, replay: Replay) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.what, total=replay.total or None)
        else:
            self.progress.update(self.task, total=(self.progress.tasks[0].completed
                                                   + replay.total) or None)

    def batch(self, replay: Replay, batch: Batch) -> None:
        self.progress.update(self.task, advance=batch.scanned)


@contextlib.asynccontextmanager
async def ctrl_c() -> AsyncIterator[asyncio.Event]:
    """First Ctrl-C (or SIGTERM) sets the event; the second cancels the command."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
            return
        stop.set()
        err.print("[yellow]stopping after this batch (Ctrl-C again to stop now)[/yellow]")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


Strict = Annotated[bool, typer.Option(
    help="Exit 3 when an event could not be converted (it is reported and skipped either way).")]
STRICT_EXIT = 3


def report_unreadable(count: int, events: list[Unreadable], *, strict: bool) -> int:
    """Say how many events could not be converted and which; the exit code ``--strict``
    asks for (0 otherwise: they are skipped and the run goes on)."""
    if not count:
        return 0
    err.print(f"[yellow]{count:,} event(s) could not be converted and were skipped:[/yellow]")
    for u in events[:20]:
        err.print(f"  seq {u.seq}  event {u.event_id or '?'}  {u.reason}")
    if count > 20:
        err.print(f"  ... and {count - 20:,} more (an export's manifest names the first "
                  f"{len(events):,} under 'unreadable')")
    return STRICT_EXIT if strict else 0


def run(main: Callable[[], Any]) -> Any:
    try:
        return asyncio.run(main())
    except NoSuchStream as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except (CheckpointMismatch, ValueError, LookupError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("[yellow]stopped[/yellow]")
        raise typer.Exit(130) from None


# ----------------------------------------------------------------------------------- replay


@app.command("replay")
def replay_command(
    output: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the events as JSON Lines here ('-' for stdout).")] = None,
    service: Services = [],  # noqa: B006
    type_: Types = [],  # noqa: B006
    center: Centers = [],  # noqa: B006
    case: Cases = [],  # noqa: B006
    since: Since = None,
    until: Until = None,
    clock: ClockOpt = "recorded",
    from_seq: Annotated[int | None, typer.Option(help="Start at this stream sequence.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        help="Resume file (default: <out>.checkpoint.json when --out is a file).")] = None,
    restart: Annotated[bool, typer.Option(help="Ignore the checkpoint, start over.")] = False,
    batch: BatchOpt = 1000,
    max_rate: Annotated[float | None, typer.Option(
        help="At most this many events/s (spare a busy cluster).")] = None,
    strict: Strict = False,
) -> None:
    """Replay the log (or a selection of it) in order, upcast to current versions.

    Writes JSON Lines (the envelope plus ``stream_seq``) or, without --out, counts events by
    type. Resumable: with a checkpoint, a rerun continues after the last finished batch.
    An event that cannot be converted is skipped and reported (stream sequence, event id,
    reason); --strict then exits 3.
    """
    settings = Settings()
    selection = selection_of(settings, service, type_, center, case, since, until, clock)
    to_file = output is not None and str(output) != "-"
    if checkpoint is None and to_file:
        assert output is not None
        checkpoint = output.with_name(output.name + ".checkpoint.json")
    mark = (Checkpoint(checkpoint, stream=settings.stream_name, selection=selection.fingerprint())
            if checkpoint else None)

    async def main() -> int:
        start = from_seq
        written = 0
        state = None if (mark is None or restart) else mark.load()
        if state is not None:
            start = state["seq"] + 1
            written = state.get("output_bytes", 0)
            err.print(f"resuming after stream sequence {state['seq']:,}")
        sink: Any = None
        if to_file:
            assert output is not None
            output.parent.mkdir(parents=True, exist_ok=True)
            sink = output.open("r+b" if state is not None and output.exists() else "wb")
            sink.truncate(written)  # drop whatever followed the last checkpoint
            sink.seek(written)
        elif output is not None:
            sink = sys.stdout.buffer
        counts: Counter[str] = Counter()
        async with ctrl_c() as stop:
            with progress_bar() as progress:
                tracker = Tracker(progress, "replay")
                async with Replay(settings, selection, from_seq=start, batch_size=batch,
                                  max_rate=max_rate, stop=stop) as replay:
                    tracker.start(replay)
                    async for b in replay:
                        if sink is not None:
                            sink.write(b"".join(
                                orjson.dumps({**e.model_dump(mode="json"), "stream_seq": s})
                                + b"\n" for e, s in zip(b.events, b.seqs, strict=True)))
                            sink.flush()
                            if to_file:
                                written = sink.tell()
                        counts.update(e.type for e in b.events)
                        if mark is not None:
                            mark.save(b.last_seq, output_bytes=written)
                        tracker.batch(replay, b)
        if to_file and sink is not None:
            sink.close()
        table = Table(title=f"replayed {selection.describe()}", title_justify="left")
        table.add_column("event type")
        table.add_column("events", justify="right")
        for name, n in sorted(counts.items()):
            table.add_row(name, f"{n:,}")
        table.add_row("[bold]total[/bold]", f"{sum(counts.values()):,}")
        err.print(table)
        code = report_unreadable(replay.undecodable, replay.unreadable, strict=strict)
        if replay.stopped:
            err.print(f"stopped after stream sequence {replay.last_seq:,}; "
                      "run the same command again to resume")
            return 130
        return code

    code = run(main)
    if code:
        raise typer.Exit(code)


# ----------------------------------------------------------------------------------- export


@app.command("export")
def export_command(
    output: Annotated[Path, typer.Argument(help="Folder for the export (and its manifest).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet or csv")] = "parquet",
    layout: Annotated[str, typer.Option(help="per-type (one table per event type) or wide")]
        = "per-type",
    service: Services = [],  # noqa: B006
    type_: Types = [],  # noqa: B006
    center: Centers = [],  # noqa: B006
    case: Cases = [],  # noqa: B006
    since: Since = None,
    until: Until = None,
    clock: ClockOpt = "recorded",
    restart: Annotated[bool, typer.Option(help="Delete what is there, start over.")] = False,
    batch: BatchOpt = 2000,
    strict: Strict = False,
) -> None:
    """Export events (envelope + payload, no personal data) partitioned by month.

    Resumable: the manifest is the checkpoint; a rerun continues after it. An event that
    cannot be converted is skipped, counted and named in the manifest (``unreadable``);
    --strict then exits 3. CSV cells that would start a spreadsheet formula get a leading '.
    """
    from shared.analytics.export import Exporter

    if fmt not in ("parquet", "csv") or layout not in ("per-type", "wide"):
        raise typer.BadParameter("--format parquet|csv, --layout per-type|wide")
    settings = Settings()
    selection = selection_of(settings, service, type_, center, case, since, until, clock)

    async def main() -> int:
        async with ctrl_c() as stop:
            with progress_bar() as progress:
                tracker = Tracker(progress, "export")
                exporter = Exporter(settings, output, fmt=fmt, layout=layout,  # type: ignore[arg-type]
                                    selection=selection, batch_size=batch, stop=stop,
                                    on_start=tracker.start, on_batch=tracker.batch)
                result = await exporter.run(restart=restart)
        table = Table(title=f"export to {output} ({fmt}, {layout})", title_justify="left")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in sorted(result.rows_by_table.items()):
            table.add_row(name, f"{rows:,}")
        err.print(table)
        if result.resumed_from:
            err.print(f"resumed at stream sequence {result.resumed_from:,}")
        err.print(f"{result.files} files, stream sequences up to {result.last_seq:,}")
        code = report_unreadable(result.unreadable, result.unreadable_events, strict=strict)
        if result.stopped:
            err.print("stopped; run the same command again to resume")
            return 130
        return code

    code = run(main)
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------------- rebuild


@app.command("rebuild")
def rebuild_command(
    read_model: Annotated[str, typer.Argument(
        help="A registered read model (intake, followup, feedback, feedback.figures: "
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

    settings = Settings()
    model = load_read_model(read_model)

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

    settings = Settings()
    model = load_read_model(read_model)
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


# ----------------------------------------------------------------------------------- report


@app.command("report")
def report_command(
    export_dir: Annotated[Path, typer.Argument(help="A folder written by 'sixstep export'.")],
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD).")],
    center: Annotated[str | None, typer.Option(help="One center (default: all).")] = None,
    as_of: Annotated[str | None, typer.Option(
        help="Figures as they stood at this moment (events recorded later left out).")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write an HTML page here.")] = None,
    by: Annotated[str, typer.Option(help="Rows of the table: item or day.")] = "item",
) -> None:
    """The center's figures for a period, from an export: a table, and an HTML page."""
    from shared.analytics.figures import compute
    from shared.analytics.report import terminal_table, write_html

    settings = Settings()
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter("--from and --to are dates, YYYY-MM-DD") from None
    figures = compute(export_dir, first, last, tz=settings.center_timezone, center=center,
                      as_of=moment(as_of, settings, end_of_day=True))
    out.print(terminal_table(figures, by="day" if by == "day" else "item"))
    if html is not None:
        write_html(figures, html, source=str(export_dir))
        err.print(f"wrote {html}")
