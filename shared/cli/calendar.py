"""``sixstep calendar``: which years the working-day calendar covers, and reloading it.

``status`` asks each running service (``GET /ops/calendar``) which years each center's calendar
covers and on what source (``package``: the chinese-calendar package; ``file``: a holidays
file; ``provisional``: the statutory rules alone, no make-up days), and warns when the official
schedules end within ``CALENDAR_WARN_DAYS`` (60). ``--local`` works it out from this shell's
settings instead, without any service: the way to check a new holidays file before deploying it.

``reload`` tells every service to read its holidays files again (``POST /ops/calendar/reload``,
each on the replica it reaches; that replica tells the others over NATS). A file that cannot be
used changes nothing and is named with its line. What was provisional is then re-planned: the
follow-ups still waiting, the open rectifications' deadlines. Exits 2 when a service did not
reload, 1 when one reloaded but some items' re-plan failed (counted per part, ``..._failed``):
that service runs the re-planning again by itself until they go through (any replica of it,
should the one that answered go); ``status`` shows such a re-planning still pending: since
when, the tries, the items failed at the last, the last error and what to do, and exits 1
while one is (2 stays for a service that did not answer). Its moments are the center's time
(``CENTER_TIMEZONE``), with the offset, as every ``sixstep`` command prints them.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.cli import app
from shared.cli.replannings import EXIT_REPLAN_PENDING, pending_lines
from shared.cli.servers import PROBE_TIMEOUT_S, Servers, resolve
from shared.kernel.holidays import HolidaysFileError
from shared.runtime.calendars import (
    CalendarReloadPublic,
    Calendars,
    CalendarStatusPublic,
    ClockAheadUntilRefused,
)
from shared.runtime.replan_pending import ReplanPendingPublic
from shared.settings import Settings, without_password

calendar = typer.Typer(help="The working-day calendar: coverage per center, reload after a new "
                            "holidays file.", no_args_is_help=True)
app.add_typer(calendar, name="calendar")
console = Console(highlight=False)

TokenOption = Annotated[str | None, typer.Option(
    envvar="SIXSTEP_TOKEN", help="Bearer token with the ops role, when the services check "
                                 "tokens (else OPS_TOKEN, else none).")]


def _today(settings: Settings, given: str | None) -> date:
    if given is not None:
        try:
            return date.fromisoformat(given)
        except ValueError:
            raise typer.BadParameter("give the day as YYYY-MM-DD") from None
    return datetime.now(settings.tz).date()


def _print_status(title: str, status: CalendarStatusPublic, tz: tzinfo,
                  pending: ReplanPendingPublic | None = None) -> None:
    table = Table(title=title)
    for column in ("center", "years", "official until", "covers until", "office hours",
                   "holidays file"):
        table.add_column(column, overflow="fold")
    for c in status.centers:
        years = ", ".join(f"{y.first_year}-{y.last_year} {y.source.value}"
                          if y.first_year != y.last_year else f"{y.first_year} {y.source.value}"
                          for y in c.years)
        table.add_row(escape(c.center_id), years,
                      f"{c.official_until} ({c.official_days_left} days)",
                      str(c.covers_until), escape(c.office_hours),
                      escape(c.holidays_file or "-"))
    console.print(table)
    for warning in status.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if pending is not None:
        for line in pending_lines(pending, tz):
            console.print(f"[red]{escape(line)}[/red]")


def _targets(servers: Servers, url: list[str] | None) -> list[tuple[str, str]]:
    """The given URLs, else the three services (said on stderr, as every command does)."""
    if url:  # named as they may be shown: a password in one as ***
        return [(without_password(u), u.rstrip("/")) for u in url]
    servers.announce("intake", "followup", "feedback")
    return [(name, base) for name, base in servers.service_urls()]


def _no_calendar(answer: httpx.Response) -> bool:
    """Whether the service said it has no working-day calendar (its own 404 problem, from
    ``/ops/calendar`` and its reload): another program's 404 is no such answer, also one that
    names the path it was asked (a web framework's "Cannot POST /ops/calendar/reload")."""
    if answer.status_code != 404:
        return False
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):  # not JSON, or JSON but no object
        return False
    return (isinstance(error, dict) and error.get("code") == "not_found"
            and "working-day calendar" in str(error.get("message", "")))


def _unreachable(name: str, base: str, exc: httpx.HTTPError) -> str:
    return (f"{name}: not reachable at {without_password(base)} within {PROBE_TIMEOUT_S:g} s "
            f"({type(exc).__name__}); is `make run` running? else name the services with "
            "--url, --intake-url ... or SIXSTEP_INTAKE_URL ...")


@calendar.command("status")
def status(
    local: Annotated[bool, typer.Option(
        "--local", help="Work it out from this shell's settings (HOLIDAYS_FILE, ...), without "
                        "asking the services: checks a holidays file before it is deployed.")]
        = False,
    today: Annotated[str | None, typer.Option(
        help="Judge the warnings as of this day (YYYY-MM-DD); default today.")] = None,
    url: Annotated[list[str] | None, typer.Option(
        help="A service's base URL (repeat); default the three services of the settings.")]
        = None,
    token: TokenOption = None,
) -> None:
    """Years covered per center and their source (package / file / provisional); warnings."""
    servers = resolve()
    settings = servers.settings
    if local:
        try:  # CLOCK_AHEAD_UNTIL as feedback reads it: refused there, refused here
            calendars = Calendars(settings, settings.clock_ahead_until)
        except (HolidaysFileError, ClockAheadUntilRefused) as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from None
        _print_status("working-day calendar (this shell's settings)",
                      calendars.status(_today(settings, today)), settings.tz)
        return
    asked: list[str] = []
    answered = failed = pending_in = 0
    targets = _targets(servers, url)
    headers = servers.ops_headers(token)
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=PROBE_TIMEOUT_S),
                      trust_env=False) as client:
        for name, base in targets:
            try:
                answer = client.get(f"{base}/ops/calendar", headers=headers)
            except httpx.HTTPError as exc:
                asked.append(_unreachable(name, base, exc))
                failed += 1
                continue
            if _no_calendar(answer):
                # the service said so (``/ops/calendar``), as reload reads it: another
                # server's 404 (a proxy's, a port another program holds) is no answer
                asked.append(f"{name}: no working-day calendar")
                continue
            if answer.status_code != 200:
                asked.append(f"{name}: answered {answer.status_code} {answer.text[:200]}")
                failed += 1
                continue
            try:
                said = CalendarStatusPublic.model_validate_json(answer.content)
                pending = (ReplanPendingPublic.model_validate(raw)
                           if (raw := answer.json().get("replan_pending")) else None)
            except ValueError:  # pydantic's ValidationError is one: not sixstep's answer
                asked.append(f"{name}: answered 200 without a calendar's status (another "
                             f"program at {without_password(base)}?): {answer.text[:200]}")
                failed += 1
                continue
            answered += 1
            pending_in += pending is not None
            _print_status(f"{name} ({without_password(base)})", said, settings.tz, pending)
    for line in asked:
        console.print(escape(line))
    if not answered:
        console.print("no service answered; `sixstep calendar status --local` works it out "
                      "from this shell's settings")
        raise typer.Exit(2)  # as every command whose servers do not answer, and as reload
    if failed:
        # Some answered, some did not: what was printed is not every service's calendar, and
        # a script checking the exit code (a cron job before a year's end) must see it, as
        # reload's does. Before, a service down among answering ones exited 0.
        console.print(f"{failed} of {len(targets)} services did not answer")
        raise typer.Exit(2)
    if pending_in:
        # A cron job before a year's end reads the exit code: 0 said all was well while a
        # service had items not re-planned for days (until stop 56).
        raise typer.Exit(EXIT_REPLAN_PENDING)


@calendar.command("reload")
def reload(
    url: Annotated[list[str] | None, typer.Option(
        help="A service's base URL (repeat); default the three services of the settings.")]
        = None,
    token: TokenOption = None,
) -> None:
    """Every service reads its holidays files again and re-plans what was provisional."""
    servers = resolve()
    failed = replan_failed = False
    targets = _targets(servers, url)
    headers = servers.ops_headers(token)
    with httpx.Client(timeout=httpx.Timeout(300.0, connect=PROBE_TIMEOUT_S),
                      trust_env=False) as client:
        for name, base in targets:
            try:
                answer = client.post(f"{base}/ops/calendar/reload", headers=headers)
            except httpx.HTTPError as exc:
                console.print(f"[red]{escape(_unreachable(name, base, exc))}[/red]")
                failed = True
                continue
            if _no_calendar(answer):  # only the service's own 404 says so: a 404 of
                # another program naming the path ("calendar" in it) exited 0 here
                console.print(f"{name}: no working-day calendar (nothing to reload)")
                continue
            if answer.status_code != 200:
                try:
                    body: Any = answer.json()
                except ValueError:
                    body = {}
                error = body.get("error", {}) if isinstance(body, dict) else {}
                message = error.get("message") if isinstance(error, dict) else None
                console.print(f"[red]{escape(name)}: nothing changed: "
                              f"{escape(message or answer.text[:300])}[/red]")
                failed = True
                continue
            try:
                said = CalendarReloadPublic.model_validate_json(answer.content)
            except ValueError:  # pydantic's ValidationError is one: not sixstep's answer
                console.print(f"[red]{escape(name)}: answered 200 without a reload's outcome "
                              f"(another program at {escape(base)}?): "
                              f"{escape(answer.text[:200])}[/red]")
                failed = True
                continue
            console.print(escape(f"{name}: reloaded; official schedules changed for "
                                 f"{', '.join(said.changed) if said.changed else 'no center'}"))
            for part, counts in said.replanned.items():
                console.print(escape(f"  {part}: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                               for k, v in counts.items())))
            for warning in said.calendar.warnings:
                console.print(f"  [yellow]warning:[/yellow] {escape(warning)}")
            if said.failed:
                console.print(f"[red]{escape(name)}: {said.failed} item(s) not re-planned "
                              "(see its log, replan.failed); the service retries by itself "
                              "until they go through (/ready degraded, "
                              "sixstep_calendar_replan_pending meanwhile)[/red]")
                if said.calendar.replan_pending is not None:
                    for line in pending_lines(said.calendar.replan_pending,
                                              servers.settings.tz):
                        console.print(f"[red]{escape(line)}[/red]")
                replan_failed = True
    if failed:
        raise typer.Exit(2)
    if replan_failed:
        raise typer.Exit(1)
