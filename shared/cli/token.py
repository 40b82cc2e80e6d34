"""``sixstep token issue``: a bearer token for a person or a system (ops hands these out)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated
from uuid import UUID

import typer

from shared.cli import app
from shared.security.principals import Role
from shared.security.tokens import TokenKeys

token = typer.Typer(name="token", no_args_is_help=True, help="Bearer tokens for the APIs.")
app.add_typer(token)

_DURATION = re.compile(r"^(\d+)([mhd])$")


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter("a duration like 30m, 8h or 90d")
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount),
            "d": timedelta(days=amount)}[unit]


@token.command("issue")
def issue(
    sub: Annotated[str, typer.Option("--sub", help=(
        "Who: a staff id (clerk-017), a system (open311-app), never a name."))],
    role: Annotated[Role, typer.Option("--role", case_sensitive=False, help=(
        "clerk, supervisor, analyst, ops or resident"))],
    center: Annotated[str | None, typer.Option(
        "--center", help="The center the token is scoped to (clerk, supervisor, resident; "
                         "optional for analyst and ops: all centers).")] = None,
    case: Annotated[str | None, typer.Option(
        "--case", help="The one case a resident token answers for.")] = None,
    ttl: Annotated[str | None, typer.Option(
        "--ttl", help="Lifetime, e.g. 30m, 8h, 90d (default AUTH_TOKEN_MINUTES).")] = None,
) -> None:
    """Print a token signed with the first of AUTH_KEYS (the environment's settings)."""
    from shared.cli.servers import resolve

    settings = resolve().settings  # no server: the keys
    lifetime = _duration(ttl) if ttl else timedelta(minutes=settings.auth_token_minutes)
    try:
        case_id = UUID(case) if case else None
        text = TokenKeys.from_settings(settings).issue(sub, role, center, case_id, lifetime)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if settings.environment == "development":
        typer.echo("warning: a development token (ENVIRONMENT=development)", err=True)
    typer.echo(text)
