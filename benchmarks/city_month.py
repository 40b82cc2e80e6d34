"""A city's month on one small machine: 220 centers at their real daily rate, every read model
rebuilt from it, the city's figures for the month, the disk it takes, the morning peak.

    .venv/bin/python benchmarks/city_month.py                      # 20,000,000 events
    .venv/bin/python benchmarks/city_month.py --events 1000000     # a quick run
    .venv/bin/python benchmarks/city_month.py --events 0           # the whole month

The log is ``benchmarks/synthetic.py``'s: ``--centers`` centers (220 by default) at their real
daily rate (127,467 visits a year each) over the working days of ``--month`` (2025-03), the
office day shaped by ``OFFICE_HOURS`` (the morning peak), visit by visit with what follows
each visit, until ``--events`` (0: the month's last visit). It is generated once per set of
parameters (and version of synthetic.py and city_log.py) into a gzip file in ``--cache``
(SIXSTEP_BENCH_CACHE, /tmp/sixstep-city-cache; ``--no-cache``: generated into the run's own
folder and deleted with it), in slices of days on ``--processes`` processes (one a core),
then published to a stream of its own by as many publishers, each its share of the
partitions in the log's order (``city_log.py``). Every long phase (generating, publishing,
rebuilding) says on stderr how far it got, its rate and the time it has left. On servers it
starts itself, in this order:

  a. the morning peak. The rate needed is stated from the log: centers x visits a working day
     x the share of visits opened 9:00-11:00 / 7,200 s x events per visit (every event a visit
     leads to counted as if it happened in the peak, though answers and follow-ups come hours
     or days later). Measured against it: the outbox relay (store -> stream) publishing
     intake's day stored through its own write path, and every live consumer of the three
     services draining the first morning of the month (``consumers.py``'s machinery, time
     order), each needing its own share of the peak; all of them together need the sum of
     their shares of a core (the ratio printed is 1 / that sum).
  b. ``sixstep rebuild --all`` over the month: every registered read model from one replay
     (``shared.analytics.rebuild.catch_up_together``, staging schemas): events/s and this
     process's peak RSS.
  c. the figures of every center for the month from the rebuilt figures read model
     (``services.feedback.figures.compute``, the SQL behind GET /figures): best of three.
  d. disk per million events: JetStream (stream bytes, and the store's folder), PostgreSQL
     (intake's event store table + indexes + outbox position, as its write path stored them;
     the read models rebuilt in b), and the retention that follows for a year on given disks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from benchmarks import city_log
from benchmarks.common import Progress, machine, say, servers, target
from benchmarks.consumers import Measured, lifespan, measure_service
from benchmarks.feedback_figures import PeakRSS
from benchmarks.synthetic import (
    OFFICE_HOURS,
    PEAK_HOURS,
    PER_DAY,
    YEAR_VISITS,
    Publisher,
    city,
    in_time_order,
    read_log,
    visit_times,
)
from services.feedback import main as feedback_main
from services.feedback.figures import FIGURES, FigureQuery, FiguresProjection, compute, totals
from services.feedback.figures.queries import SCANS
from services.followup import main as followup_main
from services.intake import commands as c
from services.intake import main as intake_main
from services.intake.application import Intake, IntakeApplication
from shared.analytics.rebuild import Rebuild, catch_up_together
from shared.bus.jetstream import connect, ensure_streams
from shared.catalogue import load_catalogue
from shared.contracts import REGISTRY, Envelope
from shared.contracts.decoding import decode_envelope
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.kernel.clock import ManualClock
from shared.readmodels.pool import create_pool
from shared.readmodels.readmodel import REBUILD_BATCH, load_read_model, make_tables, registered
from shared.runtime.logs import configure_logging
from shared.settings import Settings

MODELS = tuple(sorted(registered()))  # every read model, as ``sixstep rebuild --all``
WORKING_DAYS = 250  # a year's, as YEAR_VISITS / PER_DAY
TARGET_RSS_MB = 300
TARGET_QUERY_S = 1.0
DISKS_GB = (500, 1000, 2000, 4000)
MiB = 2**20


def settings_for(srv: Any, name: str, **extra: Any) -> Settings:
    return Settings(database_url=srv.database_url, nats_url=srv.nats_url,
                    stream_name=name.upper(), subject_prefix=name, schema_prefix=f"{name}_",
                    partitions=16, log_level="WARNING", log_json=False, **extra)


# -- the log ---------------------------------------------------------------------------------

def log_path(folder: Path, args: argparse.Namespace) -> Path:
    version = hashlib.sha1(b"".join(Path(__file__).with_name(name).read_bytes()
                                    for name in ("synthetic.py", "city_log.py"))).hexdigest()
    return folder / (f"city-{args.month}-{args.centers}c-{args.events}e-seed{args.seed}"
                     f"-{version[:10]}.log.gz")


def month_log(args: argparse.Namespace, folder: Path) -> tuple[Path, dict[str, int], float]:
    """(the log file, its counts, seconds spent generating it: 0 when it was cached)."""
    path = log_path(folder, args)
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text()), 0.0
    folder.mkdir(parents=True, exist_ok=True)
    year, month = map(int, args.month.split("-"))
    say(f"generating {path.name}")
    start = time.perf_counter()
    counts = city_log.generate(path, year, month, city(args.centers), args.seed, args.events,
                               args.processes)
    seconds = time.perf_counter() - start
    meta.write_text(json.dumps(counts))
    return path, dict(counts), seconds


def visits_in_peak(counts: dict[str, int]) -> tuple[int, int]:
    """(visits, of them opened 9:00-11:00) in the log."""
    hours = {int(k.split(":")[1]): v for k, v in counts.items() if k.startswith("visits:")}
    return sum(hours.values()), sum(v for h, v in hours.items() if 9 <= h < 9 + PEAK_HOURS)


# -- b and c: the rebuild and the figures ----------------------------------------------------

async def rebuild_month(settings: Settings, batch: int, first: date, last: date
                        ) -> dict[str, Any]:
    """Every registered read model rebuilt into staging schemas from one replay, as
    ``sixstep rebuild --all`` does (``catch_up_together``); the figures query over the rebuilt
    figures; the staging schemas' size; then the staging schemas dropped."""
    f: dict[str, Any] = {}
    place = 0

    def on_batch(replay: Any, batch: Any) -> None:
        nonlocal place
        place = batch.last_seq

    async with contextlib.AsyncExitStack() as stack:
        rebuilds = [await stack.enter_async_context(
            Rebuild(settings, load_read_model(m), batch_size=batch)) for m in MODELS]
        for rb in rebuilds:
            await rb.discard()
            await rb.prepare(fresh=True)
        nc = await connect(settings, "bench-rebuild-progress")
        stream_end = (await nc.jetstream().stream_info(settings.stream_name)).state.last_seq
        await nc.close()
        progress = Progress(f"rebuilding {len(MODELS)} read models from one replay", stream_end)

        async def say_progress() -> None:
            while True:
                await asyncio.sleep(30)
                progress(place, force=True)

        start = time.perf_counter()
        async with PeakRSS() as rss:
            saying = asyncio.create_task(say_progress())
            try:
                f["rebuild_scanned"] = await catch_up_together(rebuilds, batch_size=batch,
                                                               on_batch=on_batch)
            finally:
                saying.cancel()
        f["rebuild_s"] = time.perf_counter() - start
        f["rebuild_rss_mb"] = rss.mb
        states = [await rb.state() for rb in rebuilds]
        f["rebuild_read"] = sum(s["applied"] + s["skipped"] for s in states)
        f["rebuild_skipped"] = sum(s["skipped"] for s in states)
        conn = await asyncpg.connect(settings.database_url)
        try:
            staging = [rb.staging for rb in rebuilds]
            f["readmodel_bytes"] = int(await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'm')", staging))
            figures = rebuilds[MODELS.index("feedback.figures")].staging
            await conn.execute(f'SET search_path TO "{figures}"')
            f.update(await month_figures(conn, first, last))
        finally:
            await conn.close()
        for rb in rebuilds:
            await rb.discard()
    return f


async def month_figures(conn: asyncpg.Connection, first: date, last: date,
                        rounds: int = 3) -> dict[str, Any]:
    """The month's figures of every center from the figures read model on ``conn``'s
    search path: from the counts per center and day (``compute``, as GET /figures), against
    one scan of the fact rows per table and anchor (``SCANS``, before) and one per figure;
    alternately, best of ``rounds``; the same rows asked of all three."""
    f: dict[str, Any] = {}
    await conn.execute("ANALYZE")
    query = FigureQuery(period="month", date_from=first, date_to=last, as_of=last,
                        group_by=("center_id",))
    ways: dict[str, list[tuple[Any, ...]] | None] = {
        "per day": None, "scans": SCANS, "scan per figure": [(fig,) for fig in FIGURES]}
    times: dict[str, list[float]] = {name: [] for name in ways}
    rows: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for name, scans in ways.items():
            start = time.perf_counter()
            rows[name] = await compute(conn, query, scans)  # type: ignore[arg-type]
            times[name].append(time.perf_counter() - start)
    f["query_s"], f["query_cold_s"] = min(times["per day"]), times["per day"][0]
    f["query_scans_s"] = min(times["scans"])
    f["query_per_figure_s"] = min(times["scan per figure"])
    f["query_identical"] = rows["per day"] == rows["scans"] == rows["scan per figure"]
    f["query_rows"] = len(rows["per day"])
    f["query_cases"] = sum(r["cases"] for r in rows["per day"])
    f["totals_rows"] = await conn.fetchval(
        f"SELECT count(*) FROM {totals.TABLE} WHERE day BETWEEN $1 AND $2", first, last)
    slowest = []
    for scan in SCANS:  # what the time of the scans went to
        start = time.perf_counter()
        await compute(conn, query, [scan])
        slowest.append((time.perf_counter() - start, ", ".join(x.name for x in scan)))
    f["query_slowest"] = sorted(slowest, reverse=True)[:3]
    return f


async def figures_from_log(settings: Settings, path: Path, batch: int, first: date,
                           last: date, copies: int = 1, copy_days: int = 18
                           ) -> dict[str, Any]:
    """The figures read model folded straight from the log file through the bulk path
    (``FiguresProjection.copy_apply`` in batches, each its own transaction, as a rebuild
    writes its staging tables; no stream: the month's publishing and the other three read
    models left out), then the month's figures from it."""
    f: dict[str, Any] = {}
    model = load_read_model("feedback.figures")
    wanted = {(s.split(".")[1], s.split(".")[2]) for s in model.subjects(settings)}
    schema = f"{settings.schema_prefix}figures_bulk"
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, schema, model.ddl)
        projection = FiguresProjection(settings.tz)
        read = applied = 0
        start = time.perf_counter()
        async with PeakRSS() as rss:
            events: list[Envelope] = []
            for r in read_log(path):
                read += 1
                if (r.service, r.type) not in wanted:
                    continue
                events.append(REGISTRY.current(decode_envelope(r.body)))
                if len(events) == batch:
                    async with conn.transaction():
                        await projection.copy_apply(conn, events)
                    applied += len(events)
                    events = []
                    if applied % 1_000_000 < batch:
                        say(f"figures: {applied:,} of {read:,} events applied, "
                            f"{applied / (time.perf_counter() - start):,.0f}/s")
            if events:
                async with conn.transaction():
                    await projection.copy_apply(conn, events)
                applied += len(events)
        f["bulk_s"] = time.perf_counter() - start
        f["bulk_rss_mb"], f["bulk_read"], f["bulk_applied"] = rss.mb, read, applied
        f["readmodel_bytes"] = int(await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')", schema))
        f.update(await month_figures(conn, first, last))
        if copies > 1:
            say(f"the figures read model copied to {copies} x its rows")
            f["copied"] = await copied(conn, copies, copy_days, first, last)
    finally:
        await conn.close()
    return f


async def copied(conn: asyncpg.Connection, copies: int, days: int, first: date, last: date
                 ) -> dict[str, Any]:
    """The figures read model on ``conn``'s search path made ``copies`` times as big without
    folding more events: every fact row copied ``copies - 1`` times, copy k with new ids
    (md5 of the id and k, the same in every table, so surveys still find their
    rectifications) and every day k mod ``days`` days later; the counts per center and day
    then filled from the fact rows by the migration's statement (the set-based fill); then
    the month's figures again. What it measures is the query over tables of that size, not the
    projection."""
    f: dict[str, Any] = {}
    tables = await conn.fetch(
        "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) AS cols,"
        " array_agg(data_type::text ORDER BY ordinal_position) AS types"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ANY($1::text[]) GROUP BY 1",
        ["fig_cases", "fig_surveys", "fig_rectifications", "fig_followups", "fig_visits"])
    start = time.perf_counter()
    for t in tables:
        cols = []
        for col, type_ in zip(t["cols"], t["types"], strict=True):
            if type_ == "uuid":
                cols.append(f"md5({col}::text || k)::uuid")
            elif type_ == "date":
                cols.append(f"{col} + k % {days}")
            else:
                cols.append(col)
        await conn.execute(
            f"INSERT INTO {t['table_name']} SELECT {', '.join(cols)} FROM {t['table_name']},"
            f" generate_series(1, {copies - 1}) AS k")
    await conn.execute(f"TRUNCATE {totals.TABLE}, {totals.FILLED}")
    await conn.execute(totals.DDL[-1])  # the migration's fill, from the fact rows
    f["copy_s"] = time.perf_counter() - start
    f["copy_cases"] = await conn.fetchval(
        "SELECT count(*) FROM fig_cases WHERE opened_on BETWEEN $1 AND $2", first, last)
    f["copy_rows"] = {t["table_name"]: await conn.fetchval(
        f"SELECT count(*) FROM {t['table_name']}") for t in tables}
    f.update(await month_figures(conn, first, last))
    return f


# -- a: the morning peak ---------------------------------------------------------------------

async def fill(settings: Settings, stories: int) -> None:
    """Intake's day, stored through its write path (not yet published): ``stories`` cases of
    four events each."""
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    committer.start()
    intake = Intake(committer, load_catalogue())

    async def story(i: int) -> None:
        opened = await intake.open_case(c.OpenCase(
            center_id="SH-PD-HUAMU", counter_id=f"w{i % 6}", clerk_id=f"clerk-{i % 11}",
            service_item="MI-MEDICAL-REIMBURSEMENT"), "bench", f"open-{i:07d}")
        case = opened.aggregate_id
        await intake.hear_request(case, c.HearRequest(words="报销还没到账"), "bench",
                                  f"hear-{i:07d}")
        await intake.note_concerns(case, c.NoteConcerns(emotion="anxious"), "bench",
                                   f"concerns-{i:07d}")
        await intake.resolve_case(case, c.ResolveCase(outcome="resolved", emotion_defused=True),
                                  "bench", f"resolve-{i:07d}")

    try:
        for start in range(0, stories, 250):
            await asyncio.gather(*(story(i) for i in range(start, min(start + 250, stories))))
    finally:
        await committer.close()
        app.close()


async def relay_rate(settings: Settings, stories: int) -> dict[str, Any]:
    """Intake's day stored through its write path (four events a case), its disk, then the
    outbox relay publishing all of it: events/s."""
    f: dict[str, Any] = {}
    await fill(settings, stories)
    schema = settings.schema_for("intake")
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    pool = await create_pool(settings, schema, max_size=4)
    nc = await connect(settings, "bench-relay")
    try:
        await ensure_streams(nc.jetstream(), settings)
        relay = Relay(settings, "intake", app, pool)
        stored = int(await pool.fetchval(
            f'SELECT max(notification_id) FROM "{schema}"."{relay.table}"'))
        start = time.perf_counter()
        task = asyncio.create_task(relay.run())
        while relay.position < stored:
            await asyncio.sleep(0.02)
        f["relay_per_s"] = stored / (time.perf_counter() - start)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        f["pg_events"] = stored
        f["pg_bytes"] = int(await pool.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
            " AND c.relkind = 'r' AND c.relname IN ($2, 'outbox_position')", schema,
            relay.table))
        info = await nc.jetstream().stream_info(settings.stream_name)
        f["pg_body_bytes"] = info.state.bytes / max(1, info.state.messages)
    finally:
        await nc.close()
        await pool.close()
        app.close()
    return f


async def consumers_at_peak(settings: Settings, centers: list[str], first: date,
                            events: int) -> tuple[list[Measured], int]:
    """Every live consumer draining the month's first morning in time order, as
    ``consumers.py`` measures them: (each consumer, the events published)."""
    nc = await connect(settings, "bench-setup")
    await ensure_streams(nc.jetstream(), settings)
    await nc.close()
    _, envelopes = in_time_order(
        visit_times(random.Random(7), PER_DAY, first, centers, OFFICE_HOURS), seed=7,
        events=events)
    log = Publisher(settings)
    await log.publish(envelopes)
    start_at, last_moment = envelopes[0].occurred_at, envelopes[-1].occurred_at
    del envelopes
    apps = [intake_main.create_app(settings),
            followup_main.create_app(settings, clock=ManualClock(last_moment.astimezone(UTC))),
            feedback_main.create_app(settings, clock=ManualClock(start_at.astimezone(UTC)))]
    measured: list[Measured] = []
    for app in apps:
        async with lifespan(app) as runtime:
            measured += await measure_service(runtime, None, 0, None)
    return measured, log.events


# -- d: disk ---------------------------------------------------------------------------------

def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def retention_table(js_per_m: float, pg_per_m: float, rm_per_m: float, year_m: float,
                    configured_gb: float) -> list[str]:
    per_year = (js_per_m + pg_per_m + rm_per_m) * year_m
    lines = [f"  a year of the city: {year_m:,.0f} M events -> JetStream "
             f"{js_per_m * year_m / 1e9:,.0f} GB, PostgreSQL event stores "
             f"{pg_per_m * year_m / 1e9:,.0f} GB, read models {rm_per_m * year_m / 1e9:,.0f} GB"
             f" = {per_year / 1e9:,.0f} GB a year",
             f"  the deploy's JetStream max_file_store {configured_gb:g} GB holds "
             f"{configured_gb * 1e9 / (js_per_m * year_m) * 365:,.0f} days of the stream",
             "  | disk | years kept (stream + event stores + read models) |", "  |---|---|"]
    lines += [f"  | {gb:,} GB | {gb * 1e9 / per_year:,.1f} |" for gb in DISKS_GB]
    return lines


def configured_max_file_store() -> float:
    text = (Path(__file__).resolve().parent.parent / "deploy/nats/nats.conf").read_text()
    for line in text.splitlines():
        if line.strip().startswith("max_file_store"):
            value = line.split(":", 1)[1].strip().upper()
            unit = {"T": 1000, "G": 1, "M": 0.001}[value.rstrip("B")[-1]]
            return float(value.rstrip("B")[:-1]) * unit
    return 0.0


# -- the run ---------------------------------------------------------------------------------

def month_days(month: str) -> tuple[date, date]:
    year, number = map(int, month.split("-"))
    return date(year, number, 1), date(year + number // 12, number % 12 + 1, 1) - timedelta(1)


async def run(args: argparse.Namespace, srv: Any, path: Path, events: int
              ) -> dict[str, Any]:
    f: dict[str, Any] = {}
    first, last = month_days(args.month)
    month_settings = settings_for(srv, "city")
    if args.figures_only:
        say("folding the figures read model from the log")
        return await figures_from_log(month_settings, path, args.batch, first, last,
                                      args.copies, args.copy_days)
    say("publishing the month")
    published = await city_log.publish(month_settings, path, events, args.processes)
    f["publish_s"], f["publish_processes"] = published.seconds, args.processes or os.cpu_count()
    f["events"], f["body_bytes"] = published.events, published.bytes
    nc = await connect(month_settings, "bench-info")
    info = await nc.jetstream().stream_info(month_settings.stream_name)
    f["js_bytes"], f["js_folder_bytes"] = info.state.bytes, folder_bytes(srv.folder / "nats")
    say("rebuilding every read model from the month")
    f.update(await rebuild_month(month_settings, args.batch, first, last))
    await nc.jetstream().delete_stream(month_settings.stream_name)  # its disk, for what follows
    await nc.close()
    say("the relay")
    f.update(await relay_rate(settings_for(srv, "relay"), args.stories))
    say("the consumers at the morning peak")
    f["consumers"], f["peak_events"] = await consumers_at_peak(
        settings_for(srv, "peak", roles={"api"}), city(args.centers), first, args.peak_events)
    return f


def print_figures(args: argparse.Namespace, f: dict[str, Any]) -> None:
    print(f"c. figures of every center for {args.month} from the read model: {f['query_rows']}"
          f" rows ({f['query_cases']:,} cases) in {f['query_s'] * 1000:,.0f} ms (first of "
          f"three: {f['query_cold_s'] * 1000:,.0f} ms) from the counts per center and day "
          f"({f['totals_rows']:,} rows for the month) and the rectifications' rows; over the "
          f"fact rows, one scan per table and anchor (before): "
          f"{f['query_scans_s'] * 1000:,.0f} ms = {f['query_scans_s'] / f['query_s']:,.1f} x "
          f"slower; one scan per figure: {f['query_per_figure_s'] * 1000:,.0f} ms = "
          f"{f['query_per_figure_s'] / f['query_s']:,.1f} x; same figures all three ways: "
          f"{'yes' if f['query_identical'] else 'NO'}; the slowest scans: "
          + "; ".join(f"{s * 1000:,.0f} ms ({names})" for s, names in f["query_slowest"]))


def figures_target(args: argparse.Namespace, f: dict[str, Any]) -> str:
    return target(f"city month figures query ({args.centers} centers; the same figures as "
                  "the scans)", f["query_s"] if f["query_identical"] else float("inf"),
                  TARGET_QUERY_S, "s", at_most=True)


def report_figures_only(args: argparse.Namespace, counts: dict[str, int], generated_s: float,
                        path: Path, f: dict[str, Any]) -> None:
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start of the "
          "report (the machine may be shared)")
    gen = (f"generated in {generated_s:,.0f} s = {f['bulk_read'] / generated_s:,.0f} events/s"
           if generated_s else "cached")
    print(f"the month: {args.centers} centers from {args.month}-01, {f['bulk_read']:,} events "
          f"(intake {counts['intake']:,}, followup {counts['followup']:,}, feedback "
          f"{counts['feedback']:,}); log {path.name}: {path.stat().st_size / MiB:,.0f} MiB "
          f"gzip, {gen}")
    print(f"\nb'. the figures read model alone, folded straight from the log through the bulk "
          f"path (copy_apply, batch {args.batch}; no stream, the other read models left out):"
          f" {f['bulk_applied']:,} of the {f['bulk_read']:,} events in {f['bulk_s']:,.0f} s = "
          f"{f['bulk_applied'] / f['bulk_s']:,.0f} events/s ({f['bulk_read'] / f['bulk_s']:,.0f}"
          f" of the log's/s, decoding included); peak RSS {f['bulk_rss_mb']:,.0f} MB; its "
          f"tables {f['readmodel_bytes'] / MiB:,.0f} MiB = "
          f"{f['readmodel_bytes'] / f['bulk_read'] * 1e6 / MiB:,.0f} MiB per million events")
    print()
    print_figures(args, f)
    if "copied" in f:
        c = f["copied"]
        rows = ", ".join(f"{t} {n:,}" for t, n in sorted(c["copy_rows"].items()))
        print(f"\nc'. the same read model copied to {args.copies} x its fact rows (copy k: new "
              f"ids, every day k mod {args.copy_days} days later; the counts per center and day"
              f" filled from them by the migration's set-based fill; {c['copy_s']:,.0f} s): "
              f"{rows}; "
              f"{c['copy_cases']:,} cases opened in {args.month} (a {args.copies} x bigger "
              f"month; not folded by the projection)")
        print_figures(args, c)
        f = c
    print(figures_target(args, f))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def report(args: argparse.Namespace, counts: dict[str, int], generated_s: float, path: Path,
           f: dict[str, Any]) -> None:
    events = f["events"]
    visits, peak_visits = visits_in_peak(counts)
    per_visit = events / visits
    share = sum(OFFICE_HOURS[:PEAK_HOURS]) / sum(OFFICE_HOURS)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start of the "
          "report (the machine may be shared)")
    print(f"the month: {args.centers} centers x {PER_DAY} visits a working day from "
          f"{args.month}-01: {visits:,} visits, {events:,} events ({per_visit:.1f} a visit; "
          f"intake {counts['intake']:,}, followup {counts['followup']:,}, feedback "
          f"{counts['feedback']:,}), {f['body_bytes'] / events:,.0f} B a body")
    gen = (f"generated in {generated_s:,.0f} s = {events / generated_s:,.0f} events/s"
           if generated_s else "cached")
    print(f"  log {path.name}: {path.stat().st_size / MiB:,.0f} MiB gzip, {gen} "
          f"({args.processes or os.cpu_count()} processes); published in {f['publish_s']:,.0f} s"
          f" = {events / f['publish_s']:,.0f} events/s ({f['publish_processes']} publishers, "
          "each its share of the partitions in the log's order)")

    # a. the morning peak
    visits_s = args.centers * PER_DAY * share / (PEAK_HOURS * 3600)
    needed = visits_s * per_visit
    print(f"\na. morning peak: {args.centers} centers x {PER_DAY} visits a day x "
          f"{share:.0%} opened 9:00-11:00 (OFFICE_HOURS; in the log {peak_visits / visits:.0%}"
          f") / 7,200 s = {visits_s:.1f} visits/s x {per_visit:.1f} events a visit = "
          f"{needed:,.0f} events/s needed")
    relay = f["relay_per_s"] / needed
    print(f"  outbox relay (store -> stream), intake's day of {f['pg_events']:,} events: "
          f"{f['relay_per_s']:,.0f} events/s = {relay:,.1f} x needed")
    share_of_core = needed / f["relay_per_s"]
    for m in f["consumers"]:
        need = needed * m.events / f["peak_events"]
        share_of_core += need / m.rate
        print(f"  {m.consumer:<20} {m.rate:>8,.0f} events/s of its {m.events:,}; needs "
              f"{need:>6,.0f} /s = {m.rate / need:,.1f} x needed")
    together = 1 / share_of_core
    print(f"  relay and every consumer on one core: {share_of_core:.1%} of it at the peak = "
          f"{together:,.1f} x needed")

    # b. rebuild
    rate = f["rebuild_read"] / f["rebuild_s"]
    print(f"\nb. sixstep rebuild --all over the month ({', '.join(MODELS)}, one replay): "
          f"the log's {f['rebuild_scanned']:,} events read and decoded once, "
          f"{f['rebuild_read']:,} applied (each model its own subjects) in "
          f"{f['rebuild_s']:,.0f} s = {rate:,.0f} applied/s, the month's {events:,} events "
          f"into every read model at {events / f['rebuild_s']:,.0f} /s; peak RSS "
          f"{f['rebuild_rss_mb']:,.0f} MB" + (f"; {f['rebuild_skipped']:,} refused"
                                              if f["rebuild_skipped"] else ""))

    # c. figures
    print()
    print_figures(args, f)

    # d. disk
    js_per_m = f["js_bytes"] / events * 1e6
    pg_measured = f["pg_bytes"] / f["pg_events"] * 1e6
    pg_per_m = pg_measured * (f["body_bytes"] / events) / f["pg_body_bytes"]
    rm_per_m = f["readmodel_bytes"] / events * 1e6
    year_m = args.centers * YEAR_VISITS * per_visit / 1e6
    print(f"\nd. disk per million events: JetStream {js_per_m / MiB:,.0f} MiB (stream bytes; "
          f"its folder {f['js_folder_bytes'] / events * 1e6 / MiB:,.0f} MiB); PostgreSQL "
          f"event store + outbox {pg_measured / MiB:,.0f} MiB for intake's own events "
          f"({f['pg_body_bytes']:,.0f} B a body), {pg_per_m / MiB:,.0f} MiB scaled to the "
          f"month's bodies; the {len(MODELS)} read models {rm_per_m / MiB:,.0f} MiB")
    for line in retention_table(js_per_m, pg_per_m, rm_per_m, year_m,
                                configured_max_file_store()):
        print(line)

    print(target("peak RSS of the month's rebuild (every read model, one replay)",
                 f["rebuild_rss_mb"], TARGET_RSS_MB, "MB", at_most=True))
    print(figures_target(args, f))
    print(target("relay and consumers at the morning peak (together, one core) vs needed",
                 together, 1.0))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int,
                        default=int(os.environ.get("SIXSTEP_BENCH_CITY_EVENTS", 20_000_000)),
                        help="events in the month's log (0: the whole month)")
    parser.add_argument("--centers", type=int, default=220)
    parser.add_argument("--month", default="2025-03")
    parser.add_argument("--seed", type=int, default=202503)
    parser.add_argument("--batch", type=int, default=REBUILD_BATCH,
                        help=f"rebuild batch size (sixstep rebuild's: {REBUILD_BATCH})")
    parser.add_argument("--stories", type=int, default=10_000,
                        help="intake cases stored for the relay (four events each)")
    parser.add_argument("--peak-events", type=int, default=100_000,
                        help="events of the first morning the consumers drain")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "SIXSTEP_BENCH_CACHE", "/tmp/sixstep-city-cache")))
    parser.add_argument("--figures-only", action="store_true",
                        help="only the figures read model, folded from the log file through "
                             "the bulk path, and the month's figures from it (no stream)")
    parser.add_argument("--copies", type=int, default=1,
                        help="with --figures-only: then every fact row copied to this many "
                             "(new ids, k days later) and the month's figures measured again")
    parser.add_argument("--copy-days", type=int, default=18,
                        help="with --copies: copy k is k mod this many days later (a 20 M log "
                             "covers the month's first 18 days)")
    parser.add_argument("--processes", type=int, default=0,
                        help="processes generating the log and publishing it (0: one a core)")
    parser.add_argument("--no-cache", action="store_true",
                        help="generate into a folder of the run's own, deleted at the end")
    args = parser.parse_args()
    configure_logging("WARNING", json=False)
    logging.getLogger().setLevel(logging.WARNING)
    own = Path(tempfile.mkdtemp(prefix="sixstep-city-")) if args.no_cache else None
    try:
        path, counts, generated_s = month_log(args, own or args.cache)
        counts = Counter(counts)
        with servers() as srv:
            f = asyncio.run(run(args, srv, path, sum(
                counts[s] for s in ("intake", "followup", "feedback"))))
        (report_figures_only if args.figures_only else report)(args, counts, generated_s,
                                                                 path, f)
    finally:
        if own is not None:
            shutil.rmtree(own, ignore_errors=True)


if __name__ == "__main__":
    main()
