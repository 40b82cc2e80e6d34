"""What the analysts' long-running commands (``replay``, ``export``, ``rebuild``, ``as-of``,
``report``) share: their options, a progress bar, Ctrl-C that stops cleanly, unreadable events
reported, errors as messages.

Long runs show a progress bar (events/s and time left) on stderr. The first Ctrl-C finishes
the batch in hand, saves where it got to and exits 130; a rerun of the same command resumes
there (``rebuild`` making its indexes or comparing cancels that on the server instead: the
indexes made stay). A second Ctrl-C stops at once (the checkpoint still holds the last
finished batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape
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
from rich.text import Text

from shared.analytics.checkpoint import CheckpointMismatch
from shared.analytics.replay import Batch, NoSuchStream, Replay, Selection, Unreadable
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


def _known(option: str, given: list[str], known: set[str]) -> None:
    """A service or event type the log cannot hold is a typo: refused (exit 2), not an empty
    result that reads as "nothing happened"."""
    for name in given:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=3)
            hint = (f"; did you mean {', '.join(near)}?" if near
                    else f"; one of {', '.join(sorted(known))}")
            raise typer.BadParameter(f"{option} {name!r} is unknown{hint}")


def selection_of(settings: Settings, services: list[str], types: list[str],
                 centers: list[str], cases: list[UUID], since: str | None, until: str | None,
                 clock: str) -> Selection:
    from shared.contracts.registry import REGISTRY

    _known("--service", services, {c.service for c in REGISTRY})
    _known("--type", types, {c.type for c in REGISTRY})
    for name in types if services else ():
        # Both given, an event must be of both: a type no service named records matched
        # nothing, an empty replay or export as silent as a misspelt name's.
        origin = sorted({c.service for c in REGISTRY if c.type == name})
        if not set(origin) & set(services):
            raise typer.BadParameter(
                f"--type {name} is recorded by {', '.join(origin)}, not by --service "
                f"{', '.join(services)}: nothing would match; add -s {origin[0]} or leave "
                "--service out")
    first, last = moment(since, settings), moment(until, settings, end_of_day=True)
    if first is not None and last is not None and first > last:
        # Typed backwards, the selection matched nothing: an empty export or replay, silently
        # (as `sixstep report` refuses a reversed period).
        raise typer.BadParameter(f"--since {since} is after --until {until}: both are "
                                 "included; give the earlier one as --since")
    return Selection(services=tuple(services), types=tuple(types), centers=tuple(centers),
                     cases=tuple(cases), since=first, until=last, clock=_clock(clock))


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


#: What the first Ctrl-C says by default: a long run stops at its next batch.
AFTER_THIS_BATCH = "stopping after this batch (Ctrl-C again to stop now)"


@contextlib.asynccontextmanager
async def ctrl_c(saying: Callable[[], str] = lambda: AFTER_THIS_BATCH
                 ) -> AsyncIterator[asyncio.Event]:
    """First Ctrl-C (or SIGTERM) sets the event and prints ``saying()`` (what the command
    does now); the second cancels the command."""
    stop = asyncio.Event()
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread is given signals (a command run in a worker thread, as a
        # test's in-process call or a service's ``asyncio.to_thread`` does): nothing to catch.
        yield stop
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
            return
        stop.set()
        err.print(f"[yellow]{escape(saying())}[/yellow]")

    # remove_signal_handler leaves the default action: put back what was there (a test
    # run's handler that stops its servers on SIGTERM, say).
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)


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
        err.print(escape(f"  seq {u.seq}  event {u.event_id or '?'}  {u.reason}"))
    if count > 20:
        err.print(f"  ... and {count - 20:,} more (an export's manifest names the first "
                  f"{len(events):,} under 'unreadable')")
    return STRICT_EXIT if strict else 0


def run(main: Callable[[], Any]) -> Any:
    try:
        return asyncio.run(main())
    except NoSuchStream as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except (CheckpointMismatch, ValueError, LookupError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("[yellow]stopped[/yellow]")
        raise typer.Exit(130) from None
