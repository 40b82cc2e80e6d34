"""The ``sixstep`` command: play a demo day, inspect and replay the log, operate the system
(``make run`` starts it; ``tools/run.py``)."""

from __future__ import annotations

import typer

app = typer.Typer(name="sixstep", no_args_is_help=True, add_completion=False,
                  help="sixstep: the six-step reception method, event-sourced.")


@app.callback()
def _root() -> None:
    """sixstep: the six-step reception method, event-sourced."""


def _register() -> None:
    from shared.cli import commands  # noqa: F401  (each module adds its commands to ``app``)


def main() -> None:
    _register()
    app()
