"""A PostgreSQL outage under keyed load, as a counter app sees it (issue 22).

``KeyedLoad`` writes case stories (open, hear) through intake's HTTP API with an
Idempotency-Key per write and a client timeout above ``WRITE_TIMEOUT_S``. Each write is tried
once while the load runs: a 2xx is kept, a 503 (``store_unavailable`` or ``outcome_unknown``)
or a client timeout parks the write to be retried afterwards with the same key, and the story
ends there. ``run_outage`` stops PostgreSQL (``-m immediate``) under the load for a while,
brings it back, waits until writes sent after that are answered (so the writer has left every
older batch behind), and then looks in the store for each parked key *before* retrying it.
Used by tests/faults/test_bounded_writes.py and benchmarks/postgres_outage.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from shared.settings import Settings
from tools.devservers import PostgresServer

CENTER = "SH-PD-HUAMU"


@dataclass
class Answer:
    key: str
    status: int | None  # None: the client gave up (timeout) or could not connect
    code: str | None
    seconds: float
    replayed: bool = False
    retry_after: str | None = None
    during_outage: bool = False

    @property
    def kind(self) -> str:
        if self.status is None:
            return self.code or "timeout"
        if 200 <= self.status < 300:
            return "2xx"
        return f"{self.status} {self.code}"


@dataclass
class Parked:
    key: str
    url: str
    body: dict[str, Any]
    first: Answer


@dataclass
class KeyedLoad:
    intake_url: str
    headers: dict[str, str]
    client_timeout_s: float
    workers: int = 6
    answers: list[Answer] = field(default_factory=list)
    parked: list[Parked] = field(default_factory=list)
    outage: bool = False
    _stories: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def accepted(self) -> int:
        return sum(1 for a in self.answers if a.kind == "2xx")

    async def until_accepted(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted() < n:
            for task in self._tasks:
                if task.done():
                    task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.accepted()} of {n} writes accepted")
            await asyncio.sleep(0.05)

    async def _worker(self) -> None:
        async with httpx.AsyncClient(timeout=self.client_timeout_s, trust_env=False,
                                     headers=self.headers) as client:
            while not self._stop.is_set():
                i = self._stories
                self._stories += 1
                key = f"outage-{i:06d}-open"
                url = f"{self.intake_url}/cases"
                body: dict[str, Any] = {
                    "center_id": CENTER, "counter_id": f"w{i % 4}", "clerk_id": f"clerk-{i % 7}",
                    "service_item": "MI-MEDICAL-REIMBURSEMENT", "correlation_id": f"visit-{i}"}
                answer = await self.write(client, url, key, body)
                if answer is None:
                    continue
                key = f"outage-{i:06d}-hear"
                await self.write(client, f"{url}/{answer['id']}/hear", key,
                                 {"words": f"第{i}位居民：报销还没到账"})

    async def write(self, client: httpx.AsyncClient, url: str, key: str,
                    body: dict[str, Any]) -> dict[str, Any] | None:
        """Try once; park what was not accepted."""
        answer, data = await attempt(client, url, key, body)
        answer.during_outage = self.outage
        self.answers.append(answer)
        if answer.kind == "2xx":
            return data
        if answer.status is not None and answer.status not in (503,):
            raise AssertionError(f"{key}: {answer.status} {answer.code}")
        self.parked.append(Parked(key, url, body, answer))
        return None


async def attempt(client: httpx.AsyncClient, url: str, key: str,
                  body: dict[str, Any]) -> tuple[Answer, dict[str, Any]]:
    t0 = time.monotonic()
    try:
        r = await client.post(url, json=body, headers={"Idempotency-Key": key})
    except httpx.TimeoutException:
        return Answer(key, None, "timeout", time.monotonic() - t0), {}
    except httpx.TransportError as exc:
        return Answer(key, None, f"transport {type(exc).__name__}", time.monotonic() - t0), {}
    seconds = time.monotonic() - t0
    data: dict[str, Any] = r.json()
    if r.status_code < 300:
        return Answer(key, r.status_code, None, seconds, bool(data.get("replayed"))), data
    return (Answer(key, r.status_code, data.get("error", {}).get("code"), seconds,
                   retry_after=r.headers.get("Retry-After")), data)


async def events_of(settings: Settings, keys: list[str]) -> dict[str, int]:
    """How many stored intake events carry each key as their causation id."""
    schema = settings.schema_for("intake")
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            f'SELECT k, count(e.notification_id) AS n FROM unnest($1::text[]) AS k '
            f'LEFT JOIN "{schema}"."intake_events" AS e '
            f"ON position(convert_to('\"causation_id\":\"' || k || '\"', 'UTF8') in e.state) > 0 "
            f"GROUP BY k", keys)
    finally:
        await conn.close()
    return {r["k"]: r["n"] for r in rows}


@dataclass
class OutageReport:
    outage_s: float
    back_s: float                           # from the store accepting again to a 2xx
    first: Counter[str]                     # first answers while the store was down
    slowest_s: float                        # the slowest answer of the whole run
    stored_before_retry: dict[str, Counter[int]]  # per first answer: events found, by count
    retried: Counter[str]                   # how the retries of parked keys were answered
    stored_after_retry: dict[str, Counter[int]]
    accepted_stored: Counter[int]           # every 2xx key: events found, by count

    def lines(self) -> list[str]:
        return [
            f"outage {self.outage_s:.1f} s; first answers during it: {dict(self.first)}",
            f"first write accepted {self.back_s:.1f} s after the store accepted connections",
            f"slowest answer {self.slowest_s:.2f} s",
            "in the store before their retry (events per key: keys): "
            + "; ".join(f"{k}: {dict(v)}" for k, v in self.stored_before_retry.items()),
            f"retries with the same key: {dict(self.retried)}",
            "in the store after the retry: "
            + "; ".join(f"{k}: {dict(v)}" for k, v in self.stored_after_retry.items()),
            f"every key answered 2xx: {dict(self.accepted_stored)}",
        ]


async def run_outage(settings: Settings, postgres: PostgresServer, load: KeyedLoad, *,
                     outage_s: float, before: int = 30, after: int = 30) -> OutageReport:
    load.start()
    try:
        await load.until_accepted(before)
        load.outage = True
        t0 = time.monotonic()
        await asyncio.to_thread(postgres.stop_immediately)
        await asyncio.sleep(outage_s)  # the outage itself: how long the store stays away
        await asyncio.to_thread(postgres.start)
        down = time.monotonic() - t0
        load.outage = False
        # Writes sent after the store came back are answered: the writer has left every
        # batch from the outage behind.
        since = load.accepted()
        await load.until_accepted(since + 1, timeout=120)
        back = time.monotonic() - t0 - down
        await load.until_accepted(since + after, timeout=120)
    finally:
        await load.stop()
    during = [a for a in load.answers if a.during_outage]
    parked = list(load.parked)
    before_retry = await events_of(settings, [p.key for p in parked])
    stored_before: dict[str, Counter[int]] = {}
    for p in parked:
        stored_before.setdefault(p.first.kind, Counter())[before_retry[p.key]] += 1
    retried: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=load.client_timeout_s, trust_env=False,
                                 headers=load.headers) as client:
        for p in parked:
            for _ in range(20):
                answer, _data = await attempt(client, p.url, p.key, p.body)
                if answer.kind == "2xx":
                    break
                await asyncio.sleep(0.5)
            retried[f"{p.first.kind} -> {answer.kind}"
                    f"{' replayed' if answer.replayed else ''}"] += 1
    after_retry = await events_of(settings, [p.key for p in parked])
    stored_after: dict[str, Counter[int]] = {}
    for p in parked:
        stored_after.setdefault(p.first.kind, Counter())[after_retry[p.key]] += 1
    accepted_keys = [a.key for a in load.answers if a.kind == "2xx"]
    accepted = await events_of(settings, accepted_keys)
    return OutageReport(
        outage_s=down, back_s=back, first=Counter(a.kind for a in during),
        slowest_s=max(a.seconds for a in load.answers),
        stored_before_retry=stored_before, retried=retried, stored_after_retry=stored_after,
        accepted_stored=Counter(accepted.values()))
