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
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import typer
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.analytics.replay import NoSuchStream, Replay, Selection, subject_matches
from shared.bus.consumer import APPLIED_SEQ, REFUSED_KEY, RETRYING_KEY
from shared.bus.deadletters import read_dead_letters, repeats, unlike_the_log
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import (
    JETSTREAM_NOT_READY,
    JETSTREAM_WAIT_S,
    ServerTooOld,
    apply_streams,
    check_server,
    connect,
    dead_letter_stream,
    every_consumer,
)
from shared.bus.stream_identity import forget_stream, stream_seen
from shared.cli import app
from shared.cli.long_runs import Tracker, ctrl_c, progress_bar, report_unreadable
from shared.cli.replannings import EXIT_REPLAN_PENDING, pending_lines
from shared.cli.servers import EXIT_UNREACHABLE, SERVICES, ServerUnreachable, probe, resolve
from shared.kernel.serving import HELP_WORK
from shared.readmodels.readmodel import read_model_of
from shared.runtime import replan_pending
from shared.settings import ServiceName, Settings, without_password

ops = typer.Typer(help="Operations: apply the stream definitions, show their state.",
                  no_args_is_help=True)
app.add_typer(ops, name="ops")
console = Console(highlight=False)


@ops.command("apply")
def apply(
    replicas: Annotated[int | None, typer.Option(
        help="Stream replicas (default STREAM_REPLICAS): 3 on a three-node cluster.")] = None,
) -> None:
    """Create or align the event stream, the dead-letter stream and the signed-out tokens
    bucket's stream (idempotent)."""
    settings = resolve().use("nats")
    if replicas is not None:
        settings = settings.model_copy(update={"stream_replicas": replicas})
    try:
        outcome = asyncio.run(apply_streams(settings, "sixstep-ops"))
    except ServerTooOld as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except JETSTREAM_NOT_READY as exc:
        # A cluster whose quorum is down (or a server without JetStream) takes connections and
        # answers no JetStream request: after the wait, a traceback and exit 1 (redteam127).
        console.print(f"[red]{_jetstream_silent(settings, exc, JETSTREAM_WAIT_S)}[/red]")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    for name, what in outcome.items():
        console.print(f"stream {escape(name)}: {what}")


@ops.command("status")
def status() -> None:
    """The streams (messages, replicas, cluster) and every durable consumer's backlog, and
    each service's calendar re-planning still pending (its row in the service's schema);
    exit 2 when a stream is missing (as ``dlq`` and ``tail`` refuse to run without theirs) or a
    consumer applies nothing (a stream made anew under its tracking rows; or its batches
    handed back for more than ``RETRYING_SAID_AFTER_S``, a hung statement or a command the
    store or the vault refuses as unavailable: retried for ever, ``RETRYING_KEY``), or the
    nats-server is older than ``OLDEST_SERVER`` (it drops the durables' filters and the
    metadata that says all this); else exit 1 while a re-planning is pending (the service
    retries it), as ``sixstep calendar status``. The re-plannings are read when PostgreSQL
    answers (``DATABASE_URL``); when it does not, the status says it did not read them and
    its exit code is the bus's. Names and texts from the servers are printed as they are
    (``escape``), never read as rich's markup."""
    servers = resolve()
    settings = servers.use("nats")
    missing: list[str] = []
    refusing: list[str] = []

    async def show() -> None:
        nc = await connect(settings, "sixstep-ops")
        try:
            js = nc.jetstream()
            try:
                check_server(js)
            except ServerTooOld as exc:
                console.print(f"[red]{escape(str(exc))}[/red]")
                missing.append("a nats-server that keeps durables' filters and metadata")
                return
            for name in (settings.stream_name, dead_letter_stream(settings)):
                try:
                    info = await js.stream_info(name)
                except NotFoundError:
                    console.print(f"stream {escape(name)}: missing at "
                                  f"{escape(without_password(settings.nats_url))} (has a "
                                  "service started? else `sixstep ops apply`)")
                    missing.append(name)
                    continue
                cluster = info.cluster
                peers = ", ".join(
                    f"{escape(r.name)}{'' if r.current else ' (catching up)'}"
                    for r in (cluster.replicas or [])) if cluster else ""
                console.print(
                    f"stream {escape(name)}: {info.state.messages} messages, seq "
                    f"{info.state.first_seq}-{info.state.last_seq}, "
                    f"{info.config.num_replicas} replica(s)"
                    + (f", leader {escape(cluster.leader)}" if cluster and cluster.leader else "")
                    + (f", followers {peers}" if peers else ""))
            await _dead_letters_said(nc, settings)
            table = Table(title=f"consumers of {escape(settings.stream_name)}")
            for column in ("consumer", "pending", "ack pending", "redelivered", "ack floor"):
                table.add_column(column)
            try:
                consumers = await every_consumer(js, settings.stream_name)
            except NotFoundError:
                consumers = []
            for c in sorted(consumers, key=lambda c: c.name):
                table.add_row(escape(c.name), str(c.num_pending), str(c.num_ack_pending),
                              str(c.num_redelivered),
                              str(c.ack_floor.stream_seq if c.ack_floor else 0))
            console.print(table)
            for c in sorted(consumers, key=lambda c: c.name):
                metadata = c.config.metadata or {}
                if refused := metadata.get(REFUSED_KEY):
                    console.print(f"[red]consumer {escape(c.name)} applies nothing[/red]: the "
                                  "stream is not the one its tracking rows were written "
                                  f"against ({escape(refused)}). Rebuild its read model: "
                                  "`sixstep rebuild <read model>` (or `--all`; "
                                  "deploy/README, 'A stream made anew').")
                if retrying := metadata.get(RETRYING_KEY):
                    console.print(f"[red]consumer {escape(c.name)} hands its batches back, "
                                  f"retried for ever[/red] ({escape(retrying)}); nothing is "
                                  "dead-lettered for it and nothing applied past it. Its "
                                  "service's /ready says the same (deploy/README, 'A "
                                  "consumer retrying for ever').")
                if refused or retrying:
                    refusing.append(c.name)
        finally:
            await nc.close()

    try:
        asyncio.run(show())
    except JETSTREAM_NOT_READY as exc:
        # Exit 2 as a server that does not answer, after the re-plannings below: a traceback
        # exited 1, which this command says for a re-planning pending (redteam127).
        console.print(f"[red]{_jetstream_silent(settings, exc)}[/red]")
        missing.append("JetStream")
    pending: list[str] = []
    try:
        probe(servers.endpoints["database"])
    except ServerUnreachable as exc:
        console.print(f"[yellow]calendar re-plannings pending: not read[/yellow] "
                      f"({escape(str(exc))})")
    except ValueError:
        # Its text may hold a piece of the password ("Port could not be cast to integer
        # value as 's3'" for a '#' in it): not shown. Was a traceback, exit 1 (redteam127).
        console.print(f"[yellow]calendar re-plannings pending: not read[/yellow] ({_UNPARSED})")
    else:
        pending = asyncio.run(_replannings_said(settings))
    if missing or refusing:
        # Before, exit 0: a deployment's check (``ops status`` after ``ops apply``, a probe)
        # could not tell a server without the log, or a read model that applies nothing
        # (printed in red, its /ready degraded), from a healthy one.
        raise typer.Exit(2)
    if pending:
        raise typer.Exit(EXIT_REPLAN_PENDING)


async def _replannings_said(settings: Settings) -> list[str]:
    """Each service's calendar re-planning still pending (``calendar_replan_pending`` in its
    schema: since when, the tries, the last error, what to do), in the center's time: until
    stop 56 only ``sixstep calendar status`` (asking every service over HTTP) and /ready said
    one. A schema without the table (a service not run in this deployment) has none. Returns
    the services with one pending; one whose row could not be read is said so."""
    pending: list[str] = []
    unread = tables = 0
    limit = READ_WAIT_S
    try:
        # Bounded: a service's migration (or a rebuild) holding the table in ACCESS EXCLUSIVE
        # mode kept this command waiting for as long as it ran (redteam127), and a command
        # that hangs says nothing to the cron job that runs it.
        conn = await asyncpg.connect(
            settings.database_url, timeout=limit, command_timeout=limit + 1,
            server_settings={"application_name": "sixstep-ops",
                             "lock_timeout": f"{round(limit * 500)}ms",
                             "statement_timeout": f"{round(limit * 1000)}ms"})
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # refused sign-in
        console.print(f"[yellow]calendar re-plannings pending: not read[/yellow] "
                      f"({escape(type(exc).__name__)}: {escape(str(exc))})")
        return pending
    except ValueError:  # a DSN asyncpg cannot read (its text may quote the password)
        console.print(f"[yellow]calendar re-plannings pending: not read[/yellow] ({_UNPARSED})")
        return pending
    try:
        for service in SERVICES:
            schema = settings.schema_for(service)
            try:
                if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                           f'"{schema}".calendar_replan_pending'):
                    continue
                tables += 1
                await conn.execute(f'SET search_path TO "{schema}"')
                row = await replan_pending.read(conn, service)
            except (asyncpg.PostgresError, TimeoutError) as exc:  # no right to it; locked
                console.print(f"[yellow]{service}: a re-planning pending could not be read "
                              f"({escape(type(exc).__name__)}: {escape(str(exc))})[/yellow]")
                unread += 1
                continue
            if row is None:
                continue
            pending.append(service)
            for line in pending_lines(row.public, settings.tz):
                console.print(f"[red]{escape(service)}: {escape(line.strip())}[/red]")
    finally:
        await conn.close()
    if not tables and not unread:
        # Another database, or SCHEMA_PREFIX not the services': "none" was a false all-clear
        # (exit 0) while their rows waited elsewhere (redteam127).
        schemas = ", ".join(settings.schema_for(s) for s in SERVICES)
        console.print(f"[yellow]calendar re-plannings pending: not read[/yellow] (no service's "
                      f"schema ({escape(schemas)}) in the database at "
                      f"{escape(without_password(settings.database_url))}: is DATABASE_URL the "
                      "services' database, SCHEMA_PREFIX theirs?)")
    elif not pending and not unread:
        console.print("calendar re-plannings pending: none")
    return pending


#: The longest ``ops status`` waits for PostgreSQL: the connection, then each statement (a
#: lock on the table ends at half of it: "could not be read", the bus's exit code).
READ_WAIT_S = 5.0

#: Said for a DATABASE_URL that does not parse, instead of the parser's words.
_UNPARSED = ("DATABASE_URL does not parse as a PostgreSQL URL: percent-encode the password's "
             "special characters (# @ / ? : %), as `postgresql://user:p%23ss@host/db`")


def _jetstream_silent(settings: Settings, exc: Exception, waited_s: float | None = None) -> str:
    """A JetStream that did not answer, in one line (``JETSTREAM_NOT_READY``)."""
    waited = f" within {waited_s:g} s" if waited_s else ""
    return escape(f"JetStream at {without_password(settings.nats_url)} did not answer{waited} "
                  f"({type(exc).__name__}): a cluster with no meta leader (a quorum of its "
                  "nodes down or still starting: `nats server report jetstream`), or a "
                  "nats-server started without JetStream (-js)")


async def _dead_letters_said(nc: NATS, settings: Settings) -> None:
    """How many dead letters wait, per consumer, and how many of them repeat an earlier
    letter of their event (``repeats``: replayed once with it)."""
    letters = await read_dead_letters(nc, settings)
    if not letters:
        return
    # A letter that is not the log's event is what a service's NATS user wrote (redteam128:
    # counted with the others, it was not said anywhere but in ``dlq list``).
    unlike = await unlike_the_log(nc, settings, letters)
    again = repeats([letter for letter in letters if letter.seq not in unlike])
    per: dict[str, int] = {}
    for letter in letters:
        name = base_consumer(letter.consumer)
        per[name] = per.get(name, 0) + 1
    console.print(f"[yellow]{len(letters)} dead letter(s)[/yellow]: "
                  + ", ".join(f"{escape(name)} {n}" for name, n in sorted(per.items()))
                  + (f"; {len(again)} repeat an earlier letter of their event (replayed once "
                     "with it)" if again else "")
                  + (f"; [red]{len(unlike)} not the log's event[/red] (a replay refuses them: "
                     "who wrote them? docs/security.md)" if unlike else "")
                  + ". `sixstep dlq list`, then `sixstep dlq replay --consumer NAME` "
                    "(deploy/README, 'Dead letters')")


@ops.command("forget-stream")
def forget(
    consumer: Annotated[str, typer.Argument(
        help="A durable that builds no read model (intake-verdicts, followup-rules, "
             "feedback-intake, or a partitioned one of them).")],
) -> None:
    """Let a consumer that writes commands go on on a stream made anew: drop its tracking
    rows (written against the old stream) so that it applies every event of the new one
    again. Its commands are keyed by the upstream event id: what it did already is found and
    not done twice. A read model's consumer is rebuilt instead (``sixstep rebuild``)."""
    base = base_consumer(consumer)
    model = read_model_of(base)
    service = base.split("-", 1)[0]
    refused = (f"{consumer} builds the read model {model}: run `sixstep rebuild {model}` "
               "(forgetting would apply its events twice)" if model is not None else
               f"no service owns {consumer!r}"
               if service not in SERVICES else None)
    if refused:
        console.print(f"[red]{escape(refused)}[/red]")
        raise typer.Exit(2)
    settings = resolve().use("nats", "database")

    async def run() -> str:
        nc = await connect(settings, "sixstep-ops")
        try:
            seen = await stream_seen(nc.jetstream(), settings.stream_name)
        finally:
            await nc.close()
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'SET search_path TO "{settings.schema_for(service)}"')
            return await forget_stream(conn, consumer, seen, applied_seq_sql=APPLIED_SEQ)
        finally:
            await conn.close()

    try:
        why = asyncio.run(run())
    except LookupError as exc:
        console.print(escape(str(exc)))
        raise typer.Exit(1) from None
    console.print(f"{escape(consumer)}: forgot its tracking rows ({escape(why)}); it applies "
                  "the new stream from its first event within a few seconds")



class MissingTables(LookupError):
    """The tables or columns a backfill writes that its services' schemas lack."""


@dataclass(frozen=True)
class Backfill:
    """What one service keeps of a selection of the log, read again from its first event by
    ``sixstep ops backfill``: ``apply(conn, events, stream_seqs)`` for each batch, then
    ``done(conn)`` (returning how many rows it filled) once all is read; named as
    ``module:function`` rather than imported (``shared`` imports no service), each run in its
    service's schema, each batch in a transaction."""

    service: ServiceName
    what: str
    subjects: tuple[str, ...]  # below the subject prefix
    apply: str
    done: str | None = None
    #: The (table, column) pairs it writes, which the release adds when its service starts:
    #: looked for before anything is read, so that a schema the services do not use (another
    #: ``SCHEMA_PREFIX``) or a service still on the old release is said, not half written.
    needs: tuple[tuple[str, str], ...] = ()


#: What the consumers of a service read only from the release that taught them to on (a
#: durable whose subjects grow goes on from where it was; ``sixstep rebuild`` does not reach
#: tables a command writer keeps).
BACKFILLS = (
    Backfill("intake", "case_helpers (who worked a case's help tasks)",
             tuple(f"followup.{t}.*" for t in HELP_WORK), "services.intake.helpers:backfill",
             needs=(("case_helpers", "actor"),)),
    Backfill("feedback", "case_help_tasks and intake_cases.served_by (help-task work)",
             tuple(f"followup.{t}.*" for t in HELP_WORK),
             "services.feedback.consumer:backfill_help_work",
             needs=(("case_help_tasks", "read_up_to"), ("intake_cases", "served_by"))),
    Backfill("followup", "case_refs.due_source (the last CaseDueDateSet's source)",
             ("intake.CaseDueDateSet.*",), "services.followup.consumer:backfill_due_sources",
             "services.followup.consumer:due_sources_filled",
             needs=(("case_refs", "due_source"),)),
)


async def _missing(conn: asyncpg.Connection, schema: str, b: Backfill) -> list[str]:
    """What of ``b.needs`` the schema lacks, as ``schema.table.column``."""
    return [f"{schema}.{table}.{column}" for table, column in b.needs
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = $1"
                " AND table_name = $2 AND column_name = $3)", schema, table, column)]


def _named(ref: str) -> Callable[..., Awaitable[Any]]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


@ops.command("backfill")
def backfill(
    batch: Annotated[int, typer.Option(help="Events read and written at a time.")] = 1000,
) -> None:
    """Read into the tables that a release added what the log held before it, in one replay
    of the log: follow-up's help-task work (帮办: accepted, started, done, handed back) into
    intake's ``case_helpers`` and feedback's ``case_help_tasks`` and ``served_by``, and each
    case's last due-date source into follow-up's ``case_refs.due_source``. Their consumers
    read them only from that release on: until this runs, a supervisor who did a team's help
    task before it may lower that case's urgency, approve its extension or record its
    survey's answer. Idempotent, safe beside the running services and another run of it;
    run it once after that upgrade, with the new release started (deploy/README, 'Upgrade
    the software')."""
    settings = resolve().use("nats", "database")
    prefix = settings.subject_prefix
    subjects = tuple(dict.fromkeys(f"{prefix}.{s}" for b in BACKFILLS for s in b.subjects))

    async def run() -> tuple[Replay, dict[str, int]]:
        filled: dict[str, int] = {}
        conns = [await asyncpg.connect(settings.database_url) for _ in BACKFILLS]
        try:
            here = [(b, conn) for b, conn in zip(BACKFILLS, conns, strict=True)
                    if await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace"
                                           " WHERE nspname = $1)", settings.schema_for(b.service))]
            missing = [m for b, conn in here
                       for m in await _missing(conn, settings.schema_for(b.service), b)]
            if missing or not here:
                raise MissingTables(missing or [settings.schema_for(b.service)
                                                for b in BACKFILLS])
            for b in BACKFILLS:
                if all(b is not h for h, _ in here):
                    console.print(f"[yellow]{b.service}: no schema "
                                  f"{escape(settings.schema_for(b.service))} (not run in this "
                                  "deployment): skipped[/yellow]")
            ran.update(b.service for b, _ in here)
            for b, conn in here:
                await conn.execute(f'SET search_path TO "{settings.schema_for(b.service)}"')
            steps = [(b, conn, _named(b.apply), {f"{prefix}.{s}" for s in b.subjects})
                     for b, conn in here]
            async with ctrl_c() as stop:
                with progress_bar() as progress:
                    tracker = Tracker(progress, "backfill")
                    async with Replay(settings, Selection(subjects=subjects),
                                      batch_size=batch, stop=stop) as replay:
                        tracker.start(replay)
                        async for got in replay:
                            for _, conn, apply, own in steps:
                                mine = [i for i, s in enumerate(got.subjects)
                                        if any(subject_matches(f, s) for f in own)]
                                async with conn.transaction():
                                    await apply(conn, [got.events[i] for i in mine],
                                                [got.seqs[i] for i in mine])
                            tracker.batch(replay, got)
            if replay.stopped:
                # What was staged is the last due source of part of the log only: written,
                # it would be an older source where a later event (unread) says another,
                # and a rerun fills only the NULL ones (it could not put it right).
                return replay, filled
            for b, conn, _, _ in steps:
                if b.done is not None:
                    async with conn.transaction():
                        filled[b.what] = await _named(b.done)(conn)
        finally:
            for conn in conns:
                await conn.close()
        return replay, filled

    ran: set[str] = set()

    try:
        replay, filled = asyncio.run(run())
    except NoSuchStream as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except MissingTables as exc:
        console.print(f"[red]nothing read: not found {escape(', '.join(exc.args[0]))}[/red]. "
                      "Start the services of the new release first (they add these when they "
                      "start), and give this command the services' SCHEMA_PREFIX "
                      f"({escape(repr(settings.schema_prefix))} here).")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[yellow]stopped at once[/yellow]: what was written is kept (each batch "
                      "in a transaction); run `sixstep ops backfill` again, it reads the log "
                      "from its start")
        raise typer.Exit(130) from None
    if replay.stopped:
        console.print(f"[yellow]stopped after stream sequence {replay.last_seq:,}[/yellow]; "
                      "follow-up's due sources not written. Run `sixstep ops backfill` again: "
                      "it reads the log from its start (what is there already is not doubled)")
        raise typer.Exit(130)
    console.print(f"read {replay.matched:,} events of the log into: "
                  + "; ".join(f"{b.service} {b.what}" for b in BACKFILLS if b.service in ran))
    for what, n in filled.items():
        console.print(f"{what}: {n:,} rows filled")
    # An event not converted is work not read in (a helper, a due source): exit 3, as
    # ``--strict`` long runs do, not a success.
    if code := report_unreadable(replay.undecodable, replay.unreadable, strict=True):
        raise typer.Exit(code)
