"""``sixstep replay`` and ``sixstep export``: the log, read or flattened, resumable."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from shared.analytics.checkpoint import Checkpoint
from shared.analytics.replay import Replay
from shared.cli import app
from shared.cli.long_runs import (
    BatchOpt,
    Cases,
    Centers,
    ClockOpt,
    Services,
    Since,
    Strict,
    Tracker,
    Types,
    Until,
    ctrl_c,
    err,
    progress_bar,
    report_unreadable,
    run,
    selection_of,
)
from shared.cli.servers import resolve


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
    settings = resolve().use("nats")
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
                # reader="auto": a long replay is read in a child process while this one
                # decodes and writes.
                async with Replay(settings, selection, from_seq=start, batch_size=batch,
                                  max_rate=max_rate, stop=stop, reader="auto") as replay:
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
            table.add_row(escape(name), f"{n:,}")
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
    settings = resolve().use("nats")
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
