"""A three-node NATS cluster, the stream on three replicas: the leader dies mid-load, writes
go on, it comes back and catches up; nothing lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.errors import Error as NatsError

from shared.bus.jetstream import connect
from shared.settings import Settings
from tests.faults.harness import SERVICES, Load, System, audit
from tests.support import bearer
from tools.devservers import NatsServer, free_port

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    cluster_ports = [free_port() for _ in range(3)]
    nodes = [NatsServer(tmp_path / f"n{i}", server_name=f"n{i}", cluster_name="sixstep",
                        cluster_port=port,
                        routes=[f"nats://127.0.0.1:{p}" for p in cluster_ports if p != port])
             for i, port in enumerate(cluster_ports)]
    try:
        for node in nodes:
            node.start(wait_healthy=False)
        for node in nodes:
            node.wait_healthy(60)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def stream_cluster(settings: Settings, within_s: float = 30.0
                         ) -> tuple[str, list[tuple[str, bool]]]:
    """The stream's leader and its followers (name, current); waits out an election."""
    nc = await connect(settings, "fault-cluster")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    try:
        while True:
            with contextlib.suppress(NatsError):
                info = await nc.jetstream().stream_info(settings.stream_name)
                if info.cluster is not None and info.cluster.leader:
                    return info.cluster.leader, [(r.name, bool(r.current))
                                                 for r in info.cluster.replicas or []]
            if loop.time() > deadline:
                raise AssertionError(f"the stream has no leader after {within_s:.0f} s")
            await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def test_the_stream_leader_dies_mid_load_and_comes_back(
        cluster: list[NatsServer], settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={
        "nats_url": ",".join(n.url for n in cluster), "stream_replicas": 3})
    system = System(settings, tmp_path)
    services = SERVICES
    for service in services:
        system.add(service)
    try:
        await system.start()
        leader, followers = await stream_cluster(settings)
        assert len(followers) == 2
        load = Load(system["intake"].url, headers=bearer(settings))
        load.start()
        try:
            await load.until_writes(40)
            victim = next(n for n in cluster if n.server_name == leader)
            victim.kill()  # kill -9 the stream's leader
            await load.until_writes(load.writes + 60, timeout=90)  # writes go on without it
            new_leader, _ = await stream_cluster(settings)
            assert new_leader != leader
            await asyncio.to_thread(victim.start)  # back, with its data
            await load.until_writes(load.writes + 40)
        finally:
            await load.stop()
        report = await audit(settings, load, services=services, timeout=90)

        async def all_current() -> bool:
            _, replicas = await stream_cluster(settings)
            return len(replicas) == 2 and all(current for _, current in replicas)

        for _ in range(100):
            if await all_current():
                break
            await asyncio.sleep(0.2)
        assert await all_current(), "the returning node caught up with the stream"
        print(f"leader {leader} killed, {new_leader} took over: {report}")
    except BaseException:
        print(system.tails())
        raise
    finally:
        await system.stop()


async def ready_state(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    with contextlib.suppress(httpx.HTTPError):
        answer = await client.get(f"{url}/ready")
        return {"code": answer.status_code, **answer.json()}
    return {"code": None, "status": "unreachable", "reasons": []}


async def watch_ready(url: str, until: Callable[[dict[str, Any]], bool],
                      timeout: float, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Poll ``url``/ready until ``until(answer)``; every distinct answer lands in ``seen``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=3.0, trust_env=False) as client:
        while True:
            state = await ready_state(client, url)
            if not seen or (seen[-1]["status"], seen[-1]["reasons"]) != (
                    state["status"], state["reasons"]):
                seen.append(state)
            if until(state):
                return state
            if loop.time() > deadline:
                raise AssertionError(f"/ready never matched within {timeout:.0f} s; saw {seen}")
            await asyncio.sleep(0.1)


def relay_stalled(state: dict[str, Any]) -> bool:
    return state["status"] == "degraded" and any(
        r.startswith("relay:") for r in state.get("reasons", []))


async def test_intake_says_degraded_while_the_stream_has_no_leader_and_ready_after(
        cluster: list[NatsServer], settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={
        "nats_url": ",".join(n.url for n in cluster), "stream_replicas": 3})
    system = System(settings, tmp_path)
    intake = system.add("intake", RELAY_STALL_S="1", HEALTH_PROBE_INTERVAL_S="0.5")
    seen: list[dict[str, Any]] = []
    try:
        await system.start()
        leader, _ = await stream_cluster(settings)
        load = Load(intake.url, headers=bearer(settings))
        load.start()
        try:
            await load.until_writes(20)
            await watch_ready(intake.url, lambda s: s["status"] == "ready", 30, seen)
            victim = next(n for n in cluster if n.server_name == leader)
            victim.kill()  # the stream's leader is gone: the relay's publishes are refused
            stalled = await watch_ready(intake.url, relay_stalled, 60, seen)
            assert stalled["code"] == 200, "degraded still serves: writes are accepted"
            assert stalled["checks"]["relay"]["unpublished"] >= 0
            assert stalled["checks"]["relay"]["since"], stalled
            reason = next(r for r in stalled["reasons"] if r.startswith("relay:"))
            assert " for " in reason and "since" in reason, reason
            # A new leader is elected among the two left: the relay catches up, ready again.
            back = await watch_ready(intake.url, lambda s: s["status"] == "ready", 90, seen)
            assert back["code"] == 200 and back["reasons"] == []
            await load.until_writes(load.writes + 20)
            await asyncio.to_thread(victim.start)
        finally:
            await load.stop()
        report = await audit(settings, load, services=["intake"], timeout=90)
        print(f"leader {leader} killed; /ready went {[s['status'] for s in seen]}; "
              f"relay reason: {reason}; {report}")
    except BaseException:
        print(system.tails())
        print(seen)
        raise
    finally:
        await system.stop()
