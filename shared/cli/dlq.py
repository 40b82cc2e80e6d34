"""``sixstep dlq``: list, replay and drop dead letters.

``list`` reads the dead-letter stream directly. ``replay`` asks the service that owns the
consumer to apply its dead letters (``POST /ops/dlq/replay``): only that service has the
consumer's handler, and it applies each letter once, in one transaction with a replay record,
before deleting it (``shared/bus/deadletters.py``). Nothing is re-published to the event stream.
What is applied is the log's event at the letter's stream sequence: a letter that is not it
(any service may publish a letter for any consumer) is refused, and ``list`` marks it.
``drop`` deletes a letter that must never be applied.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import httpx
import typer
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.bus.deadletters import (
    drop_dead_letter,
    read_dead_letters,
    repeats,
    unlike_the_log,
)
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import connect, dead_letter_stream
from shared.cli import app
from shared.cli.servers import PROBE_TIMEOUT_S, SERVICES, resolve
from shared.settings import Settings, without_password

dlq = typer.Typer(help="Dead letters: list them, replay them after a fix, drop them.",
                  no_args_is_help=True)
app.add_typer(dlq, name="dlq")
console = Console(highlight=False)


def _list(settings: Settings, consumer: str | None) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        nc = await connect(settings, "sixstep-dlq")
        try:
            await _require_stream(nc, settings)
            whole = consumer is not None and base_consumer(consumer) == consumer
            letters = [letter for letter in await read_dead_letters(
                           nc, settings, None if whole else consumer)
                       if not whole or base_consumer(letter.consumer) == consumer]
            unlike = await unlike_the_log(nc, settings, letters)
            # a true letter is no repeat of a refused one before it
            again = repeats([letter for letter in letters if letter.seq not in unlike])
            return [{**letter.summary(), "same_event_as": again.get(letter.seq),
                     "matches_log": letter.seq not in unlike,
                     "not_the_log_because": unlike.get(letter.seq)}
                    for letter in letters]
        finally:
            await nc.close()

    return asyncio.run(read())


async def _require_stream(nc: Any, settings: Settings) -> None:
    """Every service creates the dead-letter stream when it starts: none means another server
    (or a system that never ran), said as such rather than as "0 dead letters"."""
    stream = dead_letter_stream(settings)
    try:
        await nc.jetstream().stream_info(stream)
    except NotFoundError:
        console.print(f"[red]no stream {escape(repr(stream))} at "
                      f"{escape(without_password(settings.nats_url))}[/red];"
                      " has a service started there? (`sixstep ops status` lists the streams)")
        raise typer.Exit(2) from None


@dlq.command("list")
def list_letters(
    consumer: Annotated[str | None, typer.Option(
        help="Only this consumer's letters (named without a partition suffix: those of all "
             "its partitioned durables).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every dead letter: its sequence, consumer, reason and where it came from; a letter of
    an event dead-lettered before (a redelivery given up on again after the dead-letter
    stream's duplicate window, another durable of the consumer) says which letter it
    repeats (``same_event_as`` in --json): replay applies the event once and drops both.
    A letter that is not the log's event at its stream sequence (forged: any service may
    publish a letter for any consumer; of another stream; its event no longer in the log) is
    marked NOT THE LOG'S EVENT (``matches_log`` false, ``not_the_log_because`` in --json):
    replay refuses it; drop it."""
    letters = _list(resolve().use("nats"), consumer)
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(letter, ensure_ascii=False))
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("seq", "consumer", "type", "aggregate", "stream seq", "tries", "reason"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        again, unlike = letter["same_event_as"], letter["not_the_log_because"]
        table.add_row(str(letter["seq"]), escape(str(letter["consumer"])),
                      escape(str(letter["type"])), escape(str(letter["aggregate_id"])[:8]),
                      str(letter["stream_seq"]),
                      str(letter["delivered"]),
                      (f"[red]NOT THE LOG'S EVENT, replay refuses it: {escape(unlike)}[/red] "
                       if unlike else "")
                      + (f"(the same event as dead letter {again}: replayed once) "
                         if again else "") + escape(str(letter["reason"])[:160]))
    console.print(table)


def _owner(client: httpx.Client, headers: dict[str, str], consumer: str,
           candidates: list[str]) -> str:
    """The first service URL whose /ops/consumers knows ``consumer`` (or its handler)."""
    base = base_consumer(consumer)
    asked: list[str] = []
    for url in candidates:
        try:
            answer = client.get(f"{url}/ops/consumers", headers=headers)
        except httpx.HTTPError as exc:
            asked.append(f"{url} ({type(exc).__name__})")
            continue
        if answer.status_code != 200:
            asked.append(f"{url} ({answer.status_code})")
            continue
        for known in answer.json()["consumers"]:
            if consumer in (known["name"], known["handler"]) or base == known["handler"]:
                return url
        asked.append(url)
    raise typer.BadParameter(f"no service owns consumer {consumer!r}; asked {', '.join(asked)} "
                             "(is `make run` running? else --url or --intake-url ...)")


@dlq.command("replay")
def replay(
    consumer: Annotated[str, typer.Option(
        help="The consumer named in the letters; without a partition suffix it covers its "
             "partitioned durables too (intake-cases: intake-cases-p0_1, -p2_3, ...).")],
    seq: Annotated[list[int] | None, typer.Option(
        help="Dead-letter sequence(s) to replay; all of the consumer's when omitted.")] = None,
    service: Annotated[str | None, typer.Option(
        help="The owning service (intake, followup, feedback); found by asking when "
             "omitted.")] = None,
    url: Annotated[str | None, typer.Option(
        help="The owning service's base URL, e.g. http://127.0.0.1:8002.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="SIXSTEP_TOKEN", help="Bearer token with the ops role, when the services "
                                     "check tokens (else OPS_TOKEN, else none).")] = None,
) -> None:
    """Apply a consumer's dead letters through its handler, once each, in the order of the
    event stream, and drop them. A letter that fails again holds back the later letters of
    its case. What is applied is the log's event at the letter's stream sequence: a letter
    that is not it is refused and kept (exit 1)."""
    if service is not None and service not in SERVICES:
        raise typer.BadParameter(f"service is one of {', '.join(SERVICES)}")
    servers = resolve(**({service or "intake": url} if url else {}))
    asked = [service] if service else (["intake"] if url else list(SERVICES))
    if len(asked) == 1:
        servers.use(asked[0])  # type: ignore[arg-type]
    else:  # the owner is the one that answers and knows the consumer (_owner)
        servers.announce(*asked)  # type: ignore[arg-type]
    headers = servers.ops_headers(token)
    with httpx.Client(timeout=httpx.Timeout(120.0, connect=PROBE_TIMEOUT_S),
                      trust_env=False) as client:
        target = url or _owner(client, headers, consumer,
                               [u for s, u in servers.service_urls() if s in asked])
        answer = client.post(f"{target}/ops/dlq/replay", headers=headers,
                             json={"consumer": consumer, "seqs": seq})
    if answer.status_code != 200:
        console.print(f"[red]replay refused ({answer.status_code}):[/red] {escape(answer.text)}")
        raise typer.Exit(2)
    report = answer.json()
    refused = report.get("refused", [])  # a service of an older release says none
    console.print(f"{escape(consumer)} via {escape(target)}: replayed {len(report['replayed'])}, "
                  f"already applied {len(report['already_applied'])}, "
                  f"failed {len(report['failed'])}"
                  + (f", refused {len(refused)} (not the log's event)" if refused else ""))
    for failure in report["failed"]:
        console.print(f"  seq {failure['seq']}: {escape(str(failure['reason']))}")
    if report["late"]:
        console.print(f"  applied after later events of their case: seq "
                      f"{', '.join(map(str, report['late']))}; if the view depends on the "
                      "order of a case's events, rebuild it (sixstep rebuild)")
    for letter in refused:
        console.print(f"  seq {letter['seq']}: [red]refused[/red], "
                      f"{escape(str(letter['reason']))}")
    if refused:
        console.print("  a refused letter was not applied and is kept: see who could have "
                      "written it (docs/security.md, \"A dead letter is replayed only as the "
                      "log's event\"), then drop it (sixstep dlq drop --seq N)")
    if report["failed"] or refused:
        raise typer.Exit(1)


@dlq.command("drop")
def drop(
    seq: Annotated[list[int], typer.Option(help="Dead-letter sequence(s) to delete.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete dead letters for good (an event that must never be applied)."""
    settings = resolve().use("nats")
    if not yes:
        typer.confirm(f"delete dead letter(s) {', '.join(map(str, seq))} for good?", abort=True)

    async def run() -> list[bool]:
        nc = await connect(settings, "sixstep-dlq")
        try:
            await _require_stream(nc, settings)
            return [await drop_dead_letter(nc, settings, s) for s in seq]
        finally:
            await nc.close()

    for s, dropped in zip(seq, asyncio.run(run()), strict=True):
        console.print(f"seq {s}: {'dropped' if dropped else 'not found'}")
