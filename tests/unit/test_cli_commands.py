"""``sixstep`` imports only the module of the command it runs: the table that says which
module holds which command must name every command, each where it is registered."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

import shared.cli.commands  # noqa: F401  (every command registered)
from shared.cli import (
    COMMAND_LINES,
    COMMAND_MODULES,
    VALUED_ROOT_OPTIONS,
    app,
    command_named,
)


def _registered() -> dict[str, str]:
    """Each top-level command's name and the module that registered it."""
    names: dict[str, str] = {}
    for command in app.registered_commands:
        assert command.name and command.callback, command
        names[command.name] = command.callback.__module__
    for group in app.registered_groups:
        typer_app = group.typer_instance
        name = group.name or typer_app.info.name
        assert isinstance(name, str) and typer_app.registered_commands, group
        callback = typer_app.registered_commands[0].callback
        assert callback is not None
        names[name] = callback.__module__
    return names


def test_every_command_is_in_the_table_with_the_module_that_registers_it() -> None:
    registered = _registered()
    assert set(registered) == set(COMMAND_MODULES)
    for name, module in registered.items():
        assert module == f"shared.cli.{COMMAND_MODULES[name]}", name


def test_the_root_options_that_take_a_value_are_the_ones_skipped() -> None:
    root = typer.main.get_command(app)
    valued = {name for p in root.params if not getattr(p, "is_flag", False)
              for name in p.opts if name.startswith("--")}
    assert valued == VALUED_ROOT_OPTIONS


@pytest.mark.parametrize(("argv", "named"), [
    (["demo", "--residents", "2"], "demo"),
    (["-v", "calendar", "status"], "calendar"),
    (["--state-dir", "demo", "tail"], "tail"),  # a value that reads like a command
    (["--nats-url", "nats://x:1", "--database-url", "postgresql://y", "rebuild", "intake"],
     "rebuild"),
    (["--nats-url=nats://x:1", "as-of", "c", "2026-12-05"], "as-of"),
    (["--help"], None),
    ([], None),
    (["demos"], None),  # mistyped: every command is registered, so the error lists them
])
def test_the_command_a_line_runs_is_found_past_the_root_options(
        argv: list[str], named: str | None) -> None:
    assert command_named(argv) == named


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from shared.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_command_runs_with_only_its_own_module_and_the_help_lists_them_all() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from shared.cli import register; "
         "register(['-v', 'token', 'issue']); "
         "print(' '.join(m for m in sys.modules if m.startswith('shared.cli.')))"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert loaded == ["shared.cli.token"], loaded
    ran = _run("contracts", "--help")
    assert ran.returncode == 0 and "list" in ran.stdout, ran
    ran = _run("--help")
    assert ran.returncode == 0, ran
    for name in COMMAND_MODULES:
        assert name in ran.stdout, (name, ran.stdout)
    ran = _run("demos")
    assert ran.returncode == 2 and "demos" in ran.stderr, ran


#: What a service imports and a command that reads the log or an export does not need: the
#: HTTP stack (httpx: ~0.08 s of each start, only for the commands that ask a service), the
#: web framework, the write side, any service's own code.
SERVICES_HEAVY = ("httpx", "fastapi", "starlette", "uvicorn", "eventsourcing", "services")


def test_the_commands_that_read_the_log_start_without_the_services_heavy_modules() -> None:
    # All of them in one process: if none imports these together, none imports them alone.
    readers = ["tail", "replay", "export", "sql", "rebuild", "as-of", "report"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from shared.cli import register\n"
         f"for name in {readers!r}:\n"
         "    register([name, '--help'])\n"
         f"print(' '.join(m for m in sys.modules if m.split('.')[0] in {SERVICES_HEAVY!r}))"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert loaded == [], loaded


def test_the_help_lists_every_command_with_its_own_line_without_importing_any() -> None:
    # The list each command gives of itself once all are registered (this process), in order:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    listed = {}
    for name in root.list_commands(typer.Context(root)):
        command = root.get_command(typer.Context(root), name)
        assert command is not None
        listed[name] = (command.short_help or command.help or "").split("\n\n")[0]
    assert list(listed.items()) == list(COMMAND_LINES.items())
    # ... and `sixstep --help` (also after root options) prints it with no command imported.
    for argv in (["--help"], ["-v", "--state-dir", "demo", "--help"], []):
        loaded = subprocess.run(
            [sys.executable, "-c", "import sys; from shared.cli import register; "
             f"register({argv!r}); "
             "print(' '.join(m for m in sys.modules if m.startswith('shared.cli.')))"],
            capture_output=True, text=True, timeout=60, check=True).stdout.split()
        assert loaded == [], (argv, loaded)
