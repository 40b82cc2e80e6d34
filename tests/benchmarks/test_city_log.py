"""The city's month log written in slices on several processes and published by several
(``benchmarks/city_log.py``): the same log whatever the number of processes, cut exactly,
each service's positions counted on across the slices; on the stream every event once and
every partition in the log's order."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.city_log import generate, publish
from benchmarks.synthetic import SERVICES, Record, city, read_log
from shared.bus.jetstream import connect, partition_of
from shared.contracts.decoding import decode_envelope
from shared.settings import Settings

EVENTS = 9_000  # two centers: ~3,500 events a slice, so the third slice is cut


def log(folder: Path, processes: int) -> tuple[list[Record], Counter[str]]:
    path = folder / f"month-{processes}.log.gz"
    counts = generate(path, 2025, 3, city(2), seed=7, events=EVENTS, processes=processes)
    return list(read_log(path)), counts


def test_the_same_log_on_one_process_or_two(tmp_path: Path) -> None:
    one, counted_one = log(tmp_path, 1)
    two, counted_two = log(tmp_path, 2)
    assert one == two and counted_one == counted_two
    assert len(one) == EVENTS
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".log.gz")]  # no parts
    positions: Counter[str] = Counter()
    versions: dict[object, int] = defaultdict(int)
    causes: set[str | None] = set()
    for r in one:
        positions[r.service] += 1
        e = decode_envelope(r.body)
        assert (e.service, e.type, e.position) == (r.service, r.type, positions[r.service])
        assert e.partition_key == r.partition_key
        versions[e.aggregate_id] += 1
        assert e.aggregate_version == versions[e.aggregate_id]  # every aggregate in order
        causes.add(e.causation_id)
    assert len(causes) == EVENTS  # every slice's own causation ids
    assert {s: counted_one[s] for s in SERVICES} == dict(positions)
    opened = sum(v for k, v in counted_one.items() if k.startswith("visits:"))
    assert opened == sum(r.type == "CaseOpened" for r in one)


async def test_published_once_each_partition_in_the_log_order(tmp_path: Path,
                                                               settings: Settings) -> None:
    path = tmp_path / "month.log.gz"
    generate(path, 2025, 3, city(2), seed=7, events=EVENTS, processes=2)
    published = await publish(settings, path, EVENTS, processes=2, every_s=1.0)
    assert published.events == EVENTS and not published.refused

    expected: dict[int, list[str]] = defaultdict(list)
    for r in read_log(path):
        expected[partition_of(r.partition_key, settings.partitions)].append(
            f"{r.service}:{r.position}")
    nc = await connect(settings, "test-city-log")
    try:
        sub = await nc.jetstream().subscribe(f"{settings.subject_prefix}.>",
                                             ordered_consumer=True)
        seen: dict[int, list[str]] = defaultdict(list)
        for _ in range(EVENTS):
            msg = await sub.next_msg(timeout=10)
            seen[int(msg.subject.rsplit(".p", 1)[1])].append(msg.headers["Nats-Msg-Id"])
        await sub.unsubscribe()
    finally:
        await nc.close()
    assert seen == expected
