"""The ``sixstep`` command: play a demo day, inspect and replay the log, operate the system
(``make run`` starts it; ``tools/run.py``). Every command finds its servers the same way
(``shared/cli/servers.py``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(name="sixstep", no_args_is_help=True, add_completion=False,
                  help="sixstep: the six-step reception method, event-sourced.")


@app.callback()
def _root(
    nats_url: Annotated[str | None, typer.Option(
        "--nats-url", help="NATS server(s) (else NATS_URL, else make run's, else :4222).")]
        = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="PostgreSQL (else DATABASE_URL, else make run's).")] = None,
    intake_url: Annotated[str | None, typer.Option(
        "--intake-url", help="The intake service (else SIXSTEP_INTAKE_URL, else make run's).")]
        = None,
    followup_url: Annotated[str | None, typer.Option(
        "--followup-url", help="The follow-up service (else SIXSTEP_FOLLOWUP_URL, ...).")]
        = None,
    feedback_url: Annotated[str | None, typer.Option(
        "--feedback-url", help="The feedback service (else SIXSTEP_FEEDBACK_URL, ...).")]
        = None,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where make run wrote endpoints.env (else SIXSTEP_STATE_DIR, "
                            "else .state).")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Say where each server (and the ops token) came from.")]
        = False,
) -> None:
    """sixstep: the six-step reception method, event-sourced."""
    from shared.cli.servers import Flags, Part, remember

    given: dict[Part, str | None] = {"nats": nats_url, "database": database_url,
                                     "intake": intake_url, "followup": followup_url,
                                     "feedback": feedback_url}
    remember(Flags(urls={k: v for k, v in given.items() if v}, state_dir=state_dir,
                   verbose=verbose))


#: The module of each command (``shared/cli/<module>.py``), so that a run imports the one it
#: runs: all of them together take ~0.7 s to import (httpx, nats, asyncpg, jwt, the contracts),
#: paid by every ``sixstep`` call before this. tests/unit/test_cli_commands.py keeps it whole.
COMMAND_MODULES = {
    "calendar": "calendar", "contracts": "contracts", "demo": "demo", "dlq": "dlq",
    "ops": "ops", "rebuild": "rebuild", "as-of": "rebuild", "replay": "replay",
    "export": "replay", "report": "report", "rules": "rules", "sql": "sql", "tail": "tail",
    "token": "token",
}
#: The root options that take a value (``--state-dir DIR``): their values are no command.
VALUED_ROOT_OPTIONS = frozenset({"--nats-url", "--database-url", "--intake-url", "--followup-url",
                             "--feedback-url", "--state-dir"})


def command_named(argv: list[str]) -> str | None:
    """The command a command line runs (the first word that is no root option nor its value),
    or None (``--help``, a mistyped command: every command is then registered, for the
    list)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in VALUED_ROOT_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMAND_MODULES else None
    return None


#: What ``sixstep --help`` lists, in its order: each command's first paragraph of help, so
#: that the list is printed without importing every command (0.6 s of CPU, twice a
#: command's start). tests/unit/test_cli_commands.py keeps the list the same as the one the
#: commands give themselves.
COMMAND_LINES = {
    "demo": "Play a day at the counter: residents across service items, emotions and "
            "deadlines.",
    "rebuild": "Rebuild a read model (or ``--all`` of them) from the log beside the live one, "
               "then\nswitch over atomically.",
    "as-of": "One case as it stood at a moment, folded from the log by the live projection.",
    "replay": "Replay the log (or a selection of it) in order, upcast to current versions.",
    "export": "Export events (envelope + payload, no personal data) partitioned by month.",
    "report": "The center's figures for a period, from an export: a table, and an HTML page.",
    "sql": "SQL over an export: a view per event type, 'events', the facts and every figure.",
    "tail": "Print events as they arrive on the stream (Ctrl-C to stop).",
    "calendar": "The working-day calendar: coverage per center, reload after a new holidays "
                "file.",
    "contracts": "Event contracts: list them, export their JSON Schemas.",
    "dlq": "Dead letters: list them, replay them after a fix, drop them.",
    "ops": "Operations: apply the stream definitions, show their state.",
    "rules": "Eligibility hints' rules: check a center's files, try a resident.",
    "token": "Bearer tokens for the APIs.",
}


def _only_the_list(argv: list[str]) -> bool:
    """Whether ``argv`` asks for the root's help and nothing else (no command, no other word:
    a mistyped command registers every command, for typer's error)."""
    return (not argv or "--help" in argv) and all(
        arg.startswith("-") or before in VALUED_ROOT_OPTIONS
        for before, arg in zip(["", *argv], argv, strict=False))


def register(argv: list[str] | None = None) -> None:
    """Registers the command ``argv`` runs on ``app``, or every command (``argv`` None); for
    the root's help, only each command's name and line (``COMMAND_LINES``)."""
    named = command_named(argv) if argv is not None else None
    if argv is not None and named is None and _only_the_list(argv):
        for name, line in COMMAND_LINES.items():
            app.command(name, help=line)(_listed_only)
    elif named is None:
        from shared.cli import commands  # noqa: F401  (each module adds its commands)
    else:
        importlib.import_module(f"shared.cli.{COMMAND_MODULES[named]}")


def _listed_only() -> None:
    """Never run: ``sixstep --help`` prints and exits before any command."""


def main() -> None:
    register(sys.argv[1:])
    try:
        app()
    except Exception as exc:
        # NATS refused the sign-in (shared.bus.connection.SignInRefused): said in one line,
        # no URL (it may hold the password), exit 2 as for a server that does not answer.
        # By name: importing nats here would slow every command's start.
        if type(exc).__name__ == "SignInRefused":
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        if _refused_settings(exc):
            # The settings refused (production's development keys, a value that does not
            # parse): the settings at fault in one line, as a service's start says them; not
            # a traceback of pydantic's, whose text quotes the values given.
            from shared.settings import settings_problem

            print(f"error: the settings are refused: {settings_problem(exc)}", file=sys.stderr)
            raise SystemExit(2) from None
        raise


def _refused_settings(exc: Exception) -> bool:
    """Whether ``exc`` is the settings refused: pydantic's ValidationError of ``Settings`` or
    pydantic-settings' SettingsError (an environment value it cannot parse). By name, as
    above."""
    name = type(exc).__name__
    return name == "SettingsError" or (name == "ValidationError"
                                       and getattr(exc, "title", "") == "Settings")
