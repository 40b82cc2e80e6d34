"""``sixstep ops``: the streams as code, applied idempotently; their state at a glance.

``sixstep ops apply`` creates the event stream and the dead-letter stream from
``shared/bus/jetstream.py`` (``stream_config``, ``dead_letter_stream_config``), or brings their
mutable settings (replicas, age limit, duplicate window, subjects) in line, and prints what it did.
Run it before a deployment (the compose file and the Kubernetes Job do); every service also
applies the same definitions when it starts, so it is never wrong to skip it.

Durable consumers are defined where their handlers are, in each service's ``main.py``, and
each service creates or aligns its own when it starts (``Consumer.ensure``): defining them a
second time here would only let the two drift apart. ``sixstep ops status`` lists them, and
names those that apply nothing because the stream is not the one their tracking rows were
written against (the durable's metadata says why: ``shared.bus.stream_identity``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.table import Table

from shared.bus.consumer import REFUSED_KEY
from shared.bus.jetstream import connect, dead_letter_stream, ensure_streams
from shared.cli import app
from shared.cli.servers import resolve, without_password
from shared.settings import Settings

ops = typer.Typer(help="Operations: apply the stream definitions, show their state.",
                  no_args_is_help=True)
app.add_typer(ops, name="ops")
console = Console(highlight=False)


async def apply_streams(settings: Settings) -> dict[str, str]:
    nc = await connect(settings, "sixstep-ops")
    try:
        return await ensure_streams(nc.jetstream(), settings)
    finally:
        await nc.close()


@ops.command("apply")
def apply(
    replicas: Annotated[int | None, typer.Option(
        help="Stream replicas (default STREAM_REPLICAS): 3 on a three-node cluster.")] = None,
) -> None:
    """Create or align the event stream and the dead-letter stream (idempotent)."""
    settings = resolve().use("nats")
    if replicas is not None:
        settings = settings.model_copy(update={"stream_replicas": replicas})
    outcome = asyncio.run(apply_streams(settings))
    for name, what in outcome.items():
        console.print(f"stream {name}: {what}")


@ops.command("status")
def status() -> None:
    """The streams (messages, replicas, cluster) and every durable consumer's backlog."""
    settings = resolve().use("nats")

    async def show() -> None:
        nc = await connect(settings, "sixstep-ops")
        try:
            js = nc.jetstream()
            for name in (settings.stream_name, dead_letter_stream(settings)):
                try:
                    info = await js.stream_info(name)
                except NotFoundError:
                    console.print(f"stream {name}: missing at "
                                  f"{without_password(settings.nats_url)} (has a "
                                  "service started? else `sixstep ops apply`)")
                    continue
                cluster = info.cluster
                peers = ", ".join(
                    f"{r.name}{'' if r.current else ' (catching up)'}"
                    for r in (cluster.replicas or [])) if cluster else ""
                console.print(
                    f"stream {name}: {info.state.messages} messages, seq "
                    f"{info.state.first_seq}-{info.state.last_seq}, "
                    f"{info.config.num_replicas} replica(s)"
                    + (f", leader {cluster.leader}" if cluster and cluster.leader else "")
                    + (f", followers {peers}" if peers else ""))
            table = Table(title=f"consumers of {settings.stream_name}")
            for column in ("consumer", "pending", "ack pending", "redelivered", "ack floor"):
                table.add_column(column)
            try:
                consumers = await js.consumers_info(settings.stream_name)
            except NotFoundError:
                consumers = []
            for c in sorted(consumers, key=lambda c: c.name):
                table.add_row(c.name, str(c.num_pending), str(c.num_ack_pending),
                              str(c.num_redelivered),
                              str(c.ack_floor.stream_seq if c.ack_floor else 0))
            console.print(table)
            for c in sorted(consumers, key=lambda c: c.name):
                refused = (c.config.metadata or {}).get(REFUSED_KEY)
                if refused:
                    console.print(f"[red]consumer {c.name} applies nothing[/red]: the stream "
                                  f"is not the one its tracking rows were written against "
                                  f"({refused}). Rebuild its read model: `sixstep rebuild "
                                  f"<read model>` (or `--all`; deploy/README, 'A stream "
                                  "made anew').")
        finally:
            await nc.close()

    asyncio.run(show())
