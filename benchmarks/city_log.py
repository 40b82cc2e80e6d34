"""The city's month log on every core: written in slices of days by a process each, and
published by several processes (``city_month.py``).

:func:`generate` hands the month's working days, each in :data:`SLICES` slices of its office
minutes, to a pool of processes (``synthetic.write_part``: each slice's visits and stories
drawn from the seed, the day and the slice alone), and appends every finished slice, in day
and slice order, to the log (gzip members concatenated are one gzip file); the slice that
reaches ``events`` is cut there. The log is the same for the same parameters, whatever the
number of processes; :func:`synthetic.read_log` numbers each service's positions on across the
slices, as a relay numbers its outbox.

:func:`publish` starts ``processes`` publishers (``synthetic.Publisher``), each reading the
whole log and publishing the partitions that are its share, in the log's order: every
partition's events reach the stream in the log's order, as one publisher would put them
there; only the partitions' interleaving differs, as between relays. It says how far the
stream has got every ``every_s`` seconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import Progress, say
from benchmarks.synthetic import (
    EVENTS_PER_VISIT,
    OFFICE_HOURS,
    PER_DAY,
    Publisher,
    cut_log,
    read_log,
    working_days,
    write_part,
)
from shared.bus.jetstream import connect, ensure_streams, partition_of
from shared.settings import Settings

SLICES = 4  # a day in four slices of its office minutes: ~390,000 events each for 220 centers


def generate(path: Path, year: int, month: int, centers: list[str], seed: int, events: int,
             processes: int = 0) -> Counter[str]:
    """The month's log into ``path`` (``events``: its first that many; 0: the whole month),
    on ``processes`` processes (0: one a core); returns ``synthetic.write_log``'s counts."""
    processes = processes or os.cpu_count() or 1
    slices = [(day, k) for day in working_days(year, month) for k in range(SLICES)]
    per_slice = len(centers) * PER_DAY * EVENTS_PER_VISIT / SLICES  # about, to plan with
    total = events or round(per_slice * len(slices))
    progress = Progress(f"generating ({processes} processes)", total)
    counts: Counter[str] = Counter()
    made = 0
    whole = path.with_name(path.name + ".part")
    pending: deque[tuple[Path, Future[Counter[str]]]] = deque()
    context = multiprocessing.get_context("fork")  # before any thread or event loop
    with ProcessPoolExecutor(processes, mp_context=context) as pool, open(whole, "wb") as out:
        try:
            queued = 0
            while True:
                while (queued < len(slices) and len(pending) < processes + 1
                       and (not events or made + len(pending) * per_slice < events)):
                    day, k = slices[queued]
                    file = path.with_name(f"{path.name}.{day:%Y%m%d}-{k}")
                    pending.append((file, pool.submit(write_part, file, day, k, SLICES,
                                                      centers, seed, OFFICE_HOURS)))
                    queued += 1
                if not pending:
                    break
                file, done = pending.popleft()
                part = done.result()
                n = sum(part[s] for s in ("intake", "followup", "feedback"))
                if events and made + n > events:
                    cut = file.with_name(file.name + ".cut")
                    part = cut_log(file, cut, events - made)
                    n = events - made
                    cut.replace(file)
                with open(file, "rb") as f:
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
                file.unlink()
                made += n
                counts += part
                progress(made, force=True)
                if events and made >= events:
                    break
            if events and made < events:
                say(f"the month holds {made:,} events, fewer than the {events:,} asked")
        finally:
            for _, done in pending:
                done.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for file, _ in pending:
                file.unlink(missing_ok=True)
                file.with_name(file.name + ".part").unlink(missing_ok=True)
    whole.rename(path)
    return counts


@dataclass
class Published:
    """What the publishers put on the stream, all of them together."""

    events: int = 0
    bytes: int = 0
    refused: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _publish_share(settings: Settings, path: Path, share: int, shares: int
                   ) -> tuple[int, int, int, Counter[str]]:
    """One publisher process: the log's events whose partition is ``share`` modulo
    ``shares``, in the log's order; (events, bytes, refused, by service)."""
    log = Publisher(settings, shared=True)
    partitions = settings.partitions
    asyncio.run(log.publish_records(
        r for r in read_log(path)
        if partition_of(r.partition_key, partitions) % shares == share))
    return log.events, log.bytes, log.refused, log.by_service


async def publish(settings: Settings, path: Path, events: int, processes: int = 0,
                  every_s: float = 30.0) -> Published:
    """The log at ``path`` (``events`` events) onto ``settings``' stream by ``processes``
    publishers (0: one a core); fails unless the stream then holds every event once."""
    processes = processes or os.cpu_count() or 1
    nc = await connect(settings, "bench-publish")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        before = (await js.stream_info(settings.stream_name)).state.messages
        progress = Progress(f"publishing ({processes} processes)", events, every_s=every_s)
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        with ProcessPoolExecutor(processes,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            shares = [loop.run_in_executor(pool, _publish_share, settings, path, share,
                                           processes) for share in range(processes)]
            waiting = asyncio.gather(*shares)
            while not waiting.done():
                await asyncio.wait([waiting], timeout=every_s)
                stored = (await js.stream_info(settings.stream_name)).state.messages
                progress(stored - before, force=True)
            results = await waiting
        f = Published(seconds=time.perf_counter() - start)
        for n, size, refused, by_service in results:
            f.events += n
            f.bytes += size
            f.refused += refused
            f.by_service += by_service
        stored = (await js.stream_info(settings.stream_name)).state.messages - before
    finally:
        await nc.close()
    if f.refused or stored != f.events or f.events != events:
        raise SystemExit(f"the stream holds {stored} events of the {f.events} published of "
                         f"{events} ({f.refused} refused)")
    return f
