"""``sixstep contracts``: the event contracts as JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shared.cli import app
from shared.contracts import REGISTRY

contracts = typer.Typer(help="Event contracts: list them, export their JSON Schemas.",
                        no_args_is_help=True)
app.add_typer(contracts, name="contracts")
console = Console()


@contracts.command("list")
def list_contracts() -> None:
    """Every event type with its service and current version."""
    for c in sorted(REGISTRY, key=lambda c: (c.service, c.type)):
        console.print(f"{c.service:<9} {c.type:<24} v{c.version}  {c.summary.splitlines()[0]}")


@contracts.command("export")
def export(out: Annotated[Path, typer.Argument(help="Folder for <Type>.v<N>.json files")]
           = Path("contracts")) -> None:
    """Write one JSON Schema per event type and version (envelope included)."""
    out.mkdir(parents=True, exist_ok=True)
    schemas = REGISTRY.json_schemas()
    for name, schema in schemas.items():
        (out / f"{name}.json").write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
    console.print(f"wrote {len(schemas)} schemas to {out}/")
