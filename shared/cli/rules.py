"""``sixstep rules``: the eligibility hints' rules: check a center's files, try a resident.

    sixstep rules check center-rules.json           # the rules in force, or the error
    sixstep rules try --age 53 --fact special_work_type

Both read the shipped rules amended by the files given (else ``ELIGIBILITY_RULES_PATHS``), on
the catalogue amended by ``CATALOGUE_PATHS``, exactly as intake does at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.catalogue import CatalogueError, load_catalogue
from shared.catalogue.eligibility import FACTS, Profile, Rules, RulesError, load_rules
from shared.cli import app
from shared.settings import Settings

rules = typer.Typer(help="Eligibility hints' rules: check a center's files, try a resident.",
                    no_args_is_help=True)
app.add_typer(rules, name="rules")
console = Console()

Files = Annotated[list[Path] | None, typer.Argument(
    help="A center's rules files, in order (default: ELIGIBILITY_RULES_PATHS).")]


def _load(files: list[Path] | None) -> Rules:
    settings = Settings()
    try:
        catalogue = load_catalogue(settings.catalogue_paths)
        return load_rules(catalogue, files if files else settings.eligibility_rules_paths)
    except (CatalogueError, RulesError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


@rules.command("check")
def check(files: Files = None) -> None:
    """Load the rules as intake would at start: the rules in force, or what is wrong."""
    loaded = _load(files)
    table = Table(title=f"{len(loaded)} eligibility rules")
    for column in ("rule", "v", "when", "suggests"):
        table.add_column(column)
    for rule in loaded.rules:
        when = rule.when.model_dump(exclude_defaults=True, exclude_none=True)
        table.add_row(rule.id, str(rule.version), str(when), ", ".join(rule.suggest))
    console.print(table)


@rules.command("try")
def try_profile(
    age: Annotated[int | None, typer.Option(min=0, max=150)] = None,
    sex: Annotated[Literal["male", "female"] | None, typer.Option()] = None,
    fact: Annotated[list[str] | None, typer.Option(
        help=f"A declared fact (repeat): {', '.join(FACTS)}.")] = None,
    past: Annotated[list[str] | None, typer.Option(
        help="The item of a past case (repeat).")] = None,
    files: Files = None,
) -> None:
    """What the counter would suggest for such a resident, and why."""
    unknown = sorted(set(fact or ()) - set(FACTS))
    if unknown:
        raise typer.BadParameter(f"unknown facts {unknown}; known: {', '.join(FACTS)}")
    hints = _load(files).suggest(Profile(age=age, sex=sex, facts=frozenset(fact or ()),
                                         past_items=frozenset(past or ())))
    if not hints:
        console.print("no rule fires")
    for h in hints:
        console.print(f"{h.service_item}  ({h.rule_id} v{h.rule_version}: {h.because.en})")
