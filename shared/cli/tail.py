"""``sixstep tail``: watch the one replayable log, event by event."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import orjson
import typer
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.markup import escape

from shared.bus.jetstream import connect
from shared.cli import app
from shared.cli.servers import resolve
from shared.settings import without_password

console = Console(highlight=False)


def _line(seq: int, data: bytes) -> str:
    try:
        e = orjson.loads(data)
    except orjson.JSONDecodeError:
        return f"{seq:>8}  [red]undecodable message[/red]"
    # Everything of the event is printed as it is, never read as rich's markup: a clerk's
    # words "[/b]" ended the command (MarkupError), "[急]" vanished.
    case = escape(str(e.get("case_id") or "-")[:8])
    payload = ", ".join(f"{k}={v}" for k, v in list(e.get("payload", {}).items())[:4])
    return (f"{seq:>8}  {escape(str(e.get('occurred_at', ''))[:19])}  "
            f"[cyan]{escape(str(e.get('service'))):<8}[/cyan] "
            f"[bold]{escape(str(e.get('type'))):<20}[/bold] case {case} "
            f"v{escape(str(e.get('aggregate_version')))}  "
            f"{escape(str(e.get('center_id')))}  {escape(payload[:120])}")


@app.command("tail")
def tail(
    from_start: Annotated[bool, typer.Option("--from-start", help="Begin at the first event.")]
        = False,
    subject: Annotated[str | None, typer.Option(help="Subject filter, e.g. 'sixstep.intake.>'")]
        = None,
    count: Annotated[int, typer.Option(help="Stop after this many events (0: follow).")] = 0,
) -> None:
    """Print events as they arrive on the stream (Ctrl-C to stop)."""
    settings = resolve().use("nats")

    async def follow() -> None:
        nc = await connect(settings, "sixstep-tail")
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(settings.stream_name)
            except NotFoundError:
                raise typer.BadParameter(
                    f"no stream {settings.stream_name!r} at {without_password(settings.nats_url)}; "
                    "has a service started?") from None
            sub = await js.pull_subscribe(
                subject or f"{settings.subject_prefix}.>", stream=settings.stream_name,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
                    deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW))
            seen = 0
            while count == 0 or seen < count:
                try:
                    msgs = await sub.fetch(min(256, count - seen) if count else 256, timeout=1)
                except TimeoutError:
                    continue
                for m in msgs:
                    console.print(_line(m.metadata.sequence.stream, m.data))
                    seen += 1
        finally:
            await nc.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow())
