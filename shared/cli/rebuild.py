"""``sixstep rebuild`` (a read model from the log, switched over atomically) and ``sixstep
as-of`` (a case as it stood at a moment)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.markup import escape
from rich.table import Table

from shared.cli import app
from shared.cli.long_runs import (
    AFTER_THIS_BATCH,
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
from shared.readmodels.readmodel import REBUILD_BATCH, registered

if TYPE_CHECKING:
    from shared.analytics.rebuild import Rebuild


#: How often ``sixstep rebuild`` says again that a staging schema's drop (``--fresh``,
#: ``--discard``) still waits for the same sessions.
DROP_REPEAT_S = 10.0

#: ``sixstep rebuild``'s exit code when another run holds a read model's rebuild lock
#: (EX_TEMPFAIL: nothing was done; try again once it has ended, or give ``--wait``).
BUSY = 75


@app.command("rebuild")
def rebuild_command(
    read_model: Annotated[str | None, typer.Argument(
        help=f"A registered read model ({', '.join(sorted(registered()))}: "
             "pyproject.toml's sixstep.read_models) or module:ATTRIBUTE.")] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every registered read model, from one replay of the log (read and "
                      "decoded once), then each compared and switched.")] = False,
    dry_run: Annotated[bool, typer.Option(
        help="Build and compare with the live view; do not switch.")] = False,
    fresh: Annotated[bool, typer.Option(help="Discard an unfinished rebuild first.")] = False,
    discard: Annotated[bool, typer.Option(help="Only drop unfinished rebuilds.")] = False,
    samples: Annotated[int, typer.Option(help="Differences to show per table.")] = 5,
    batch: BatchOpt = REBUILD_BATCH,
    wait: Annotated[bool, typer.Option(
        "--wait", help="If another rebuild of a read model is running, wait for it to end "
                       f"(without it: say who runs it and exit {BUSY}).")] = False,
) -> None:
    """Rebuild a read model (or ``--all`` of them) from the log beside the live one, then
    switch over atomically."""
    import asyncpg
    import nats.errors

    from shared.analytics.rebuild import (
        FAILURES,
        DropStopped,
        Holder,
        Holding,
        Rebuild,
        RebuildBusy,
        RebuildError,
        RebuildStopped,
        catch_up_together,
        failed_at,
        hold_together,
        unless_stopped,
    )
    from shared.readmodels.readmodel import load_read_model

    if every == (read_model is not None):
        err.print("[red]name one read model, or give --all[/red]")
        raise typer.Exit(2)
    names = sorted(registered()) if every else [read_model or ""]
    models = [load_read_model(name) for name in names]
    servers = resolve()
    settings = servers.use("nats", "database")
    name_of = {model.consumer: name for name, model in zip(names, models, strict=True)}
    #: What the first Ctrl-C stops: the batch in hand, or the index builds.
    stopping = [AFTER_THIS_BATCH]

    def indexing(rb: Rebuild, indexes: Sequence[str]) -> None:
        stopping[0] = "stopping: cancelling the index builds (Ctrl-C again to stop now)"
        err.print(escape(f"{name_of[rb.model.consumer]}: making {len(indexes)} "
                         f"index{'es' if len(indexes) > 1 else ''} put off: "
                         f"{', '.join(indexes)}"))

    def waiting(rb: Rebuild, holder: Holder) -> None:
        err.print(escape(f"{name_of[rb.model.consumer]}: waiting for another rebuild of it "
                         f"to end ({holder})"))

    said_at: dict[str, float] = {}

    def dropping(rb: Rebuild, schema: str, holders: list[Holding], waited: float) -> None:
        # Said at once, then every DROP_REPEAT_S while the same sessions hold it: keyed by
        # their pids, not the line (its state and since change at each statement a DBA's
        # psql runs in its transaction: the line came back at every look, every 2 s).
        pids = ", ".join(str(h.holder.pid) for h in holders)
        key = f"{schema} {pids}"
        if said_at.get(key, -DROP_REPEAT_S) + DROP_REPEAT_S > waited:
            return
        said_at[key] = waited
        who = "; ".join(map(str, holders)) or "a session that has let go since"
        err.print(escape(f"{name_of[rb.model.consumer]}: dropping {schema} waits "
                         f"({waited:.0f} s so far) for {who}"
                         + (f" (pg_terminate_backend({pids}) ends it)" if pids else "")))

    def deadlocked(rb: Rebuild, attempt: int, tries: int) -> None:
        err.print(escape(f"{name_of[rb.model.consumer]}: the switch deadlocked with the live "
                         f"consumer and was rolled back, nothing switched; trying again "
                         f"({attempt + 1} of {tries})"))

    async def main() -> int:
        async with ctrl_c(lambda: stopping[0]) as stop, contextlib.AsyncExitStack() as stack:
            progress = stack.enter_context(progress_bar())
            tracker = Tracker(progress, f"rebuild {len(models)} read models, one replay"
                              if every else f"rebuild {models[0].consumer}")
            rebuilds = [await stack.enter_async_context(Rebuild(
                settings, model, batch_size=batch, stop=stop, on_start=tracker.start,
                on_batch=tracker.batch, on_index=indexing, wait=wait, on_wait=waiting,
                on_drop_wait=dropping, on_switch_retry=deadlocked))
                for model in models]
            stopping[0] = "stopping (Ctrl-C again to stop now)"
            await hold_together(rebuilds)  # all or none: no lock kept while refused or waiting
            if discard:
                for name, rb in zip(names, rebuilds, strict=True):
                    err.print(f"{name}: dropped {', '.join(await rb.discard()) or 'nothing'}")
                return 0
            for name, rb in zip(names, rebuilds, strict=True):
                staging = await rb.prepare(fresh=fresh)
                if rb.started_over:
                    err.print(escape(f"{name}: dropped {rb.started_over}, begun with another "
                                     "version of the read model's DDL (another release's)"))
                err.print(f"{name}: {'resuming' if rb.resumed else 'building'} {staging}")
            stopping[0] = AFTER_THIS_BATCH
            if every:
                await catch_up_together(rebuilds, batch_size=batch, stop=stop,
                                        on_start=tracker.start, on_batch=tracker.batch)
            else:
                await rebuilds[0].catch_up()
            stopping[0] = "stopping before the switch (Ctrl-C again to stop now)"

            def stopped(left: Sequence[tuple[str, Rebuild]]) -> int:
                for name, rb in left:
                    if rb.unbuilt:
                        err.print(escape(f"{name}: indexes not made yet: "
                                         f"{', '.join(rb.unbuilt)} (the next run makes them)"))
                err.print(f"stopped; {', '.join(str(rb.staging) for _, rb in left)} kept, "
                          "run again to resume")
                return 130

            pairs = list(zip(names, rebuilds, strict=True))
            if stop.is_set():
                return stopped(pairs)
            for name, rb in pairs:
                if every:
                    err.print(f"[bold]{name}[/bold]")
                # A comparison of a large view takes minutes, or waits behind a lock on a
                # live table: Ctrl-C cancels it (it went on, then exited 1, "not switched").
                if not await unless_stopped(compare(rb, samples), stop):
                    return stopped(pairs)
            if dry_run:
                err.print(f"dry run: {', '.join(str(rb.staging) for rb in rebuilds)} kept; "
                          "run without --dry-run to switch")
                return 0
            failed = []
            for n, (name, rb) in enumerate(pairs):
                if stop.is_set():  # during the switch before: that one is done, no more
                    return stopped(pairs[n:])
                if not await switch(name, rb):
                    if stop.is_set():  # stopped in its catch-up, before its swap
                        return stopped(pairs[n:])
                    failed.append(name)
            if failed:
                err.print(f"[red]not switched: {', '.join(failed)}[/red]; run again to "
                          "resume")
                return 1
        return 0

    try:
        code = run(main)
    except RebuildStopped as exc:  # Ctrl-C while waiting (--wait): nothing done
        err.print(escape(f"{name_of.get(exc.consumer, exc.consumer)}: stopped while waiting "
                         f"for another rebuild of it ({exc.holder}); nothing done"))
        raise typer.Exit(130) from None
    except DropStopped as exc:  # Ctrl-C while a staging schema's drop waited
        who = "; ".join(map(str, exc.holders)) or "another session"
        err.print(escape(f"{name_of.get(exc.consumer, exc.consumer)}: stopped while dropping "
                         f"{exc.schema}, waiting for {who}; it is kept as it was"))
        raise typer.Exit(130) from None
    except RebuildBusy as exc:  # nothing done: the other run goes on
        err.print(f"[red]{escape(busy(exc, name_of))}[/red]")
        raise typer.Exit(BUSY) from None
    except RebuildError as exc:  # a staging schema this run cannot go on with
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except FAILURES as exc:
        if failed_at(exc) is None and not isinstance(exc, (asyncpg.PostgresError,
                                                            nats.errors.Error)):
            raise  # neither the database's nor the bus's
        if servers.verbose:
            err.print_exception()
        err.print(f"[red]{escape(database_failed(exc, name_of, verbose=servers.verbose))}"
                  "[/red]")
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def busy(exc: Any, name_of: Mapping[str, str]) -> str:
    """One line for a rebuild refused because another run of the same read model holds its
    lock: who holds it (``pg_stat_activity``'s pid, application_name, client, since when)
    and what to do."""
    name = name_of.get(exc.consumer, exc.consumer)
    return (f"{name}: another rebuild of it is running ({exc.holder}); nothing done: wait "
            "for it to end, or run the same command with --wait to start once it has "
            f"(pg_terminate_backend({exc.holder.pid}) stops a run left hanging: its batches "
            "are kept)")


def database_failed(exc: BaseException, name_of: Mapping[str, str], *,
                    verbose: bool = False) -> str:
    """One line for a database error that stopped a rebuild: the read model, the phase, the
    PostgreSQL error code and what to do (``sixstep -v rebuild`` adds the traceback, and
    then the line does not offer it)."""
    import asyncpg
    import nats.errors

    from shared.analytics.rebuild import failed_at

    where = failed_at(exc)
    who = (f"{name_of.get(where.consumer, where.consumer)}: {where.phase}" if where
           else "rebuild")
    sqlstate = getattr(exc, "sqlstate", None)
    said = " ".join(str(exc).split())[:300] or type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError) and sqlstate:
        what = f"PostgreSQL error {sqlstate} ({said})"
    elif isinstance(exc, nats.errors.Error):  # a timeout too: it said "once PostgreSQL ..."
        what = f"NATS did not answer ({type(exc).__name__}: {said})"
    else:
        what = f"the database connection failed ({type(exc).__name__}: {said})"
    if isinstance(exc, nats.errors.Error):
        todo = "once NATS answers again, run the same command: it resumes"
    elif sqlstate is None or sqlstate.startswith(("08", "57P")):
        todo = "once PostgreSQL answers again, run the same command: it resumes"
    elif sqlstate.startswith("53"):
        todo = "free space or memory on the database server, then run again: it resumes"
    elif sqlstate == "42501":
        todo = ("give the role the right it lacks (or run as the role that owns the "
                "schemas), then run again: it resumes")
    elif sqlstate.startswith(("28", "3D")):  # the role, its password, the database's name
        todo = ("check DATABASE_URL (the database's name, the role and its password) and the"
                " server's pg_hba.conf, then run the same command (--fresh cannot help)")
    elif sqlstate == "57014":
        todo = "cancelled on the server (a DBA or a timeout); run again: it resumes"
    else:
        todo = "run again to resume; if it fails the same way, --fresh starts over"
    return (f"{who} failed: {what}; every batch committed is kept: {todo}"
            + ("" if verbose else " (sixstep -v rebuild ... shows the traceback)"))


async def compare(rb: Any, samples: int) -> None:
    """The rebuilt tables against the live ones, and what the handler refused."""
    print_diff(await rb.diff(samples=samples))
    state = await rb.state()
    if state["skipped"]:
        err.print(f"[yellow]{state['skipped']} events refused by the handler:[/yellow]")
        for r in await rb.skipped():
            err.print(f"  seq {r['seq']} {escape(str(r['type']))}: {escape(str(r['reason']))}")


async def switch(name: str, rb: Any) -> bool:
    """The rebuilt tables in place of the live ones; False when that failed."""
    from shared.analytics.rebuild import RebuildError

    try:
        switched = await rb.switch()
    except RebuildError as exc:
        err.print(f"[red]{escape(name)}: {escape(str(exc))}[/red]")
        return False
    err.print(f"[green]switched[/green] {name}: {', '.join(switched.tables)} now rebuilt up "
              f"to stream sequence {switched.last_seq:,}; the old tables are in schema "
              f"{switched.retired}")
    return True


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
            err.print(escape(f"  {t.table} {s['key']}: "
                             + (f"only in {s['only']}" if "only" in s else
                                ", ".join(f"{c}: live={a!r} rebuilt={b!r}"
                                          for c, (a, b) in s["columns"].items()))))
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
                    table.add_row(escape(k), "" if v is None else escape(str(v)))
            else:
                keep = [k for k in rows[0] if k not in ("case_id", "payload")]
                for k in keep:
                    table.add_column(escape(k))
                for row in rows:
                    table.add_row(*("" if row[k] is None else escape(str(row[k]))
                                    for k in keep))
            out.print(table)
        return 0

    code = run(main)
    if code:
        raise typer.Exit(code)
