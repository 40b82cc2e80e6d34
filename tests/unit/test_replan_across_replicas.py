"""Two replicas of one service, server-free: replica A's re-planning (its own retry of a failed
one, replan56, or its start's) runs on A's calendars, which learn of a reload on replica B only
when B tells them (core NATS). What A re-plans on the calendars B's reload replaced is a date
counted on the old schedule, written over what B's re-planning counted on the new one (a
re-planning's command key names the schedules, so both are taken), and A's run, going through,
ended the retry and remembered the old calendars: the deadline stayed on the old schedule.

* B tells the other replicas before it re-plans, not after: a retry of A's that ran during B's
  re-planning (minutes for a city) and ended before B's word came was one on the old calendars.
* A re-planning during which the calendars changed runs again on the new ones before it is
  done (and remembers those)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared.runtime.calendars import Calendars
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings
from tests.support import wait_until

#: Illustrative 2027 schedules (not the State Council's): 5 January off, then corrected to 6.
FIFTH_OFF = {"2027": {"source": "illustrative", "holidays": ["2027-01-01..2027-01-03",
                                                           "2027-01-05"], "workdays": []}}
SIXTH_OFF = {"2027": {"source": "illustrative", "holidays": ["2027-01-01..2027-01-03",
                                                           "2027-01-06"], "workdays": []}}


class Bus:
    """Core NATS between the replicas: a message reaches every other subscriber."""

    def __init__(self) -> None:
        self.subscribers: list[Callable[[Any], Awaitable[None]]] = []
        self.delivered: list[asyncio.Task[None]] = []

    def client(self) -> Client:
        return Client(self)


class Message:
    def __init__(self, data: bytes) -> None:
        self.data = data


class Client:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def subscribe(self, _: str, cb: Callable[[Any], Awaitable[None]]) -> None:
        self.bus.subscribers.append(cb)

    async def publish(self, _: str, data: bytes) -> None:
        self.bus.delivered += [asyncio.create_task(cb(Message(data)))
                               for cb in self.bus.subscribers]


class Seen:
    """``calendar_seen`` on the replicas' one database: the fingerprints last remembered."""

    def __init__(self) -> None:
        self.remembered: list[str] = []

    async def executemany(self, _: str, rows: list[tuple[Any, ...]]) -> None:
        self.remembered += [fingerprint for _, fingerprint, *_ in rows]

    async def execute(self, *_: Any) -> None:
        return None


async def _replica(settings: Settings, bus: Bus, seen: Seen) -> Runtime:
    runtime = Runtime(settings, "feedback", None, seen, bus.client(),  # type: ignore[arg-type]
                      None, None, calendars=Calendars(settings))  # type: ignore[arg-type]
    await runtime.listen_for_calendar_reloads()
    return runtime


def _fingerprint(runtime: Runtime) -> str:
    assert runtime.calendars is not None
    return runtime.calendars.default.fingerprint


async def test_a_retry_running_while_another_replica_reloads_runs_again_on_the_new_calendar(
        tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(FIFTH_OFF))
    settings = Settings(roles="api", holidays_file=holidays)
    bus, seen = Bus(), Seen()
    a, b = await _replica(settings, bus, seen), await _replica(settings, bus, seen)
    fifth = _fingerprint(a)
    planned_on: list[str] = []
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def rectifications() -> dict[str, int]:  # A's re-planning, held on its first pass
        planned_on.append(_fingerprint(a))
        inside.set()
        await go_on.wait()
        return {"rectifications_checked": 1, "rectifications_failed": 0}

    a.calendar_hooks["feedback"] = rectifications
    retry = asyncio.create_task(a.replanner.replan())  # what keep_replanning runs
    await inside.wait()
    holidays.write_text(json.dumps(SIXTH_OFF))  # the correction, reloaded on replica B
    await b.reload_calendars()
    sixth = _fingerprint(b)
    assert sixth != fifth

    async def told() -> bool:
        return _fingerprint(a) == sixth
    await wait_until(told, what="replica A told of B's reload")
    go_on.set()
    await retry
    # The pass on the 5th's calendar is not the last: the rectification is counted again on
    # the 6th's, and that is what is remembered as re-planned on.
    assert planned_on == [fifth, sixth]
    assert seen.remembered[-1] == sixth
    assert a.calendars is not None and a.calendars.changed_official is None
    assert a.replan_pending.since is None


async def test_a_replica_reloading_tells_the_others_before_it_re_plans(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(FIFTH_OFF))
    settings = Settings(roles="api", holidays_file=holidays)
    bus, seen = Bus(), Seen()
    a, b = await _replica(settings, bus, seen), await _replica(settings, bus, seen)
    holidays.write_text(json.dumps(SIXTH_OFF))

    async def rectifications() -> dict[str, int]:  # B's re-planning: A is on its calendar
        async def told() -> bool:
            return _fingerprint(a) == _fingerprint(b)
        await wait_until(told, timeout=5, what="replica A told before B re-plans")
        return {"rectifications_checked": 1, "rectifications_failed": 0}

    b.calendar_hooks["feedback"] = rectifications
    said = await b.reload_calendars()
    assert said["hooks"] == {"feedback": {"rectifications_checked": 1,
                                          "rectifications_failed": 0}}
    assert said["failed"] == 0
    await asyncio.gather(*bus.delivered)
