"""Horizontal scale: two replicas each of follow-up and feedback, one owning partitions 0-1
and the other 2-3 (CONSUMER_PARTITIONS), share the work: every event applied once, by exactly
one of them, and both do work. (Not a fault test, but the same harness and audit.)"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
from datetime import datetime

import asyncpg
import httpx

from shared.analytics.reading import subject_matches
from shared.bus.jetstream import partition_of
from shared.settings import Settings
from tests.faults.harness import (
    SERVICES,
    Load,
    System,
    audit,
    durable_consumers,
    read_log,
)
from tests.feedback.totals_check import assert_totals_are_the_scans

SHARES = {"a": "0-1", "b": "2-3"}
METRIC = re.compile(r'^sixstep_events_applied_total\{consumer="([^"]+)",service="([^"]+)"\} '
                    r"([0-9.e+]+)$")


async def applied_counts(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        text = (await client.get(f"{url}/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if m := METRIC.match(line):
            out[m.group(1)] = float(m.group(3))
    return out


async def test_two_replicas_share_the_work_by_partition(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    scaled = [s for s in SERVICES if s != "intake"]
    system.add("intake")
    for service in scaled:
        system.add(service, f"{service}-a", CONSUMER_PARTITIONS=SHARES["a"])
        system.add(service, f"{service}-b", CONSUMER_PARTITIONS=SHARES["b"],
                   ROLES="workers")
    await system.start()
    load = Load(system["intake"].url, headers=auth_headers)
    load.start()
    try:
        await load.until_writes(150)
    finally:
        await load.stop()
    report = await audit(settings, load, services=["intake", *scaled])

    log = await read_log(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        # both replicas of the figures added to the same days' counts: still the fact rows'
        await conn.execute(f'SET search_path TO "{settings.schema_for("feedback")}"')
        # The center's today, which the figures count by (the machine's date differs from
        # Shanghai's from 16:00 UTC on: the range ran from tomorrow to today, and was empty)
        await assert_totals_are_the_scans(conn, datetime.now(settings.tz).date())
        await conn.execute("RESET search_path")
        for service in scaled:
            counts = {share: await applied_counts(system[f"{service}-{share}"].url)
                      for share in SHARES}
            schema = settings.schema_for(service)  # type: ignore[arg-type]
            rows = await conn.fetch(f'SELECT consumer, key FROM "{schema}".consumer_tracking')
            keys: dict[str, set[uuid.UUID]] = defaultdict(set)
            for r in rows:
                keys[r["consumer"]].add(r["key"])
            bases = {name.rsplit("-p", 1)[0] for name in keys}
            assert bases, f"{service} has consumers"
            for base in bases:
                names = {share: f"{base}-p{spec.replace('-', '_')}"
                         for share, spec in {"a": "0_1", "b": "2_3"}.items()}
                a, b = keys[names["a"]], keys[names["b"]]
                assert a and b, f"both replicas of {base} did work"
                assert not a & b, f"no case of {base} is tracked by both replicas"
                for share, owned in (("a", {0, 1}), ("b", {2, 3})):
                    assert {partition_of(k, settings.partitions) for k in keys[names[share]]} \
                        <= owned, f"{names[share]} kept to its partitions"
                # Each event of the base consumer's subjects was applied exactly once in all:
                # the replicas' counters add up to the number of such events on the stream.
                # The services keep working (the scheduler sends due surveys), so the log and
                # the counters are read again until they are read at a quiet moment.
                filters = await durable_filters(settings, names)
                deadline = asyncio.get_running_loop().time() + 15
                while True:
                    expected = {share: float(sum(
                        1 for e in log if any(subject_matches(f, e.subject) for f in fs)))
                        for share, fs in filters.items()}
                    got = {share: counts[share].get(names[share], 0.0) for share in SHARES}
                    if got == expected or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.5)
                    log = await read_log(settings)
                    counts = {share: await applied_counts(system[f"{service}-{share}"].url)
                              for share in SHARES}
                assert got == expected, f"{base}: applied {got}, events {expected}"
    finally:
        await conn.close()
    print(f"scale-out: {report}")


async def durable_filters(settings: Settings, names: dict[str, str]) -> dict[str, list[str]]:
    consumers = await durable_consumers(settings)
    return {share: consumers[name] for share, name in names.items()}


async def test_workers_share_a_services_consumers_by_name(
        system: System, settings: Settings, auth_headers: dict[str, str]) -> None:
    """Feedback as make run and the deployments may lay it out: its API (ROLES=api), the
    surveys' path in one worker and the figures in another (CONSUMERS): each consumer is
    driven by the worker that names it, and only there; every event applied once (audit)."""
    shares = {"surveys": "feedback-views,feedback-intake",
              "figures": "feedback-figures,feedback-people"}
    system.add("intake")
    system.add("followup")
    system.add("feedback", ROLES="api")
    for share, consumers in shares.items():
        system.add("feedback", f"feedback-{share}", ROLES="workers", CONSUMERS=consumers)
    await system.start()
    load = Load(system["intake"].url, headers=auth_headers)
    load.start()
    try:
        await load.until_writes(100)
    finally:
        await load.stop()
    report = await audit(settings, load, services=list(SERVICES))
    for share, consumers in shares.items():
        applied = await applied_counts(system[f"feedback-{share}"].url)
        ran = {name for name, n in applied.items() if n > 0}
        assert ran and ran <= set(consumers.split(",")), f"feedback-{share} applied {applied}"
    print(f"consumers by name: {report}")
