"""The ``sixstep`` command run inside the test's own process (typer's CliRunner), printed at a
width the test gives.

The command modules make their rich consoles when they are imported, and a console made while
COLUMNS is set keeps that width for good: pytest-xdist's workers set COLUMNS=80 before the test
files import ``shared.cli``, and an earlier test's ``invoke(env={"COLUMNS": ...})`` may be the
one that imports a command module. A width given only in the environment of one call would then
hold for some consoles and not others, depending on which file ran first in the process. So
each call sets the width of every console of ``shared.cli`` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import shared.cli.commands  # noqa: F401  (each command module registers on import)
from shared.cli import app
from tests.cli.system import Ran

#: Wide enough that no line the tests look for is wrapped (a tmp path is in some of them).
COLUMNS = 400


def _consoles() -> list[Console]:
    modules = [module for name, module in list(sys.modules.items())
               if module is not None and (name == "shared.cli" or name.startswith("shared.cli."))]
    return [value for module in modules for value in vars(module).values()
            if isinstance(value, Console)]


def invoke(args: Sequence[str], *, columns: int = COLUMNS,
           env: Mapping[str, str] | None = None) -> Result:
    """``sixstep ARGS`` in this process, every line up to ``columns`` wide."""
    for console in _consoles():
        console.width = columns
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns), **(env or {})})


def ran(args: Sequence[str], *, stdin: str | None = None,
        env: Mapping[str, str] | None = None) -> Ran:
    """``sixstep ARGS`` in this process, answered as ``tests.cli.system.sixstep`` answers a
    process of its own (exit code, stdout, stderr; ``stdin`` is not a terminal). What would
    have been a traceback on the process's stderr is raised here, so the test fails."""
    for console in _consoles():
        console.width = COLUMNS
    result = CliRunner().invoke(app, list(args), input=stdin,
                                env={"COLUMNS": str(COLUMNS), **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)
