"""The outbox relay's CPU per event, this tree and another paired (issue 23, target 1).

    .venv/bin/python benchmarks/relay_cpu.py /work/main [--events 20000] [--rounds 3]

On servers of its own, intake's store gets ``--events`` events once (group commit, about
half cases opened, half requests heard). Then each round runs a relay over the whole outbox
into a fresh stream, once with each tree's code (a process each, alternating, which tree
goes first changing every round), and reports that process's CPU time per event published:
the relay's Python side (outbox reads, decoding, the contract, the envelope, JSON, the
publishes and their acknowledgements), the nats-server's and PostgreSQL's CPU per event
meanwhile, and the wall-clock rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r'''
import asyncio, inspect, json, sys, time
from shared.settings import Settings
from shared.bus.jetstream import connect, ensure_streams
from shared.eventstore.application import build_application
from shared.eventstore.outbox import Relay
from shared.readmodels.pool import create_pool
from services.intake.application import IntakeApplication

async def main(settings, events):
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    pool = await create_pool(settings, settings.schema_for("intake"), max_size=2)
    nc = await connect(settings, "bench-relay")
    await ensure_streams(nc.jetstream(), settings)
    args = [nc] if "nc" in inspect.signature(Relay).parameters else []
    relay = Relay(settings, "intake", app, pool, *args)
    wall, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(relay.run())
    while relay.position < events:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await nc.close()
    await pool.close()
    app.close()
    print(json.dumps({"cpu_us": cpu / events * 1e6, "per_s": events / wall}))

settings = Settings(**json.loads(sys.argv[1]))
asyncio.run(main(settings, int(sys.argv[2])))
'''


async def store(settings: object, events: int) -> int:
    from services.intake import commands as c
    from services.intake.application import Intake, IntakeApplication
    from shared.catalogue import load_catalogue
    from shared.eventstore.application import build_application
    from shared.eventstore.group_commit import GroupCommitter

    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    committer.start()
    intake = Intake(committer, load_catalogue())

    async def one_case(i: int) -> None:
        opened = await intake.open_case(c.OpenCase(
            center_id="SH-PD-HUAMU", counter_id="w1", clerk_id="clerk-1",
            service_item="MI-MEDICAL-REIMBURSEMENT"), "clerk-1", f"open-{uuid.uuid4().hex}")
        await intake.hear_request(opened.aggregate_id, c.HearRequest(
            words=f"第{i}位居民想问医疗报销的材料"), "clerk-1", f"hear-{uuid.uuid4().hex}")

    for start in range(0, events // 2, 200):
        await asyncio.gather(*(one_case(i) for i in range(start, min(start + 200,
                                                                       events // 2))))
    await committer.close()
    app.close()
    return events // 2 * 2


def server_cpu(folder: Path) -> dict[str, float]:
    """CPU seconds so far of the benchmark's nats-server and PostgreSQL (every backend, also
    those that ended)."""
    import psutil

    out = {"nats": 0.0, "pg": 0.0}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(folder) not in cmdline:
            continue
        kind = "nats" if "nats-server" in cmdline else "pg" if "postgres" in cmdline else None
        if kind is None:
            continue
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()  # with the backends that ended (reaped children)
            out[kind] += times.user + times.system + times.children_user + times.children_system
            for child in proc.children(recursive=True):
                child_times = child.cpu_times()
                out[kind] += child_times.user + child_times.system
    return out


def run_tree(tree: Path, settings: dict[str, object], events: int, folder: Path
             ) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), LOG_LEVEL="WARNING")
    before = server_cpu(folder)
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings), str(events)],
                         cwd=tree, env=env, capture_output=True, text=True, check=True)
    after = server_cpu(folder)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    for kind in ("nats", "pg"):
        figures[f"{kind}_us"] = (after[kind] - before[kind]) / events * 1e6
    return figures


def main() -> None:
    from benchmarks.common import servers

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("other", type=Path, help="the tree to compare this checkout with")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000,
                        help="RELAY_BATCH: events a relay round (a busy API's rounds are small)")
    args = parser.parse_args()
    from shared.settings import Settings

    with servers() as srv:
        base = {"database_url": srv.database_url, "nats_url": srv.nats_url}
        events = asyncio.run(store(Settings(**base), args.events))
        print(f"{events:,} events stored; CPU us an event published (the relay's process), "
              "events/s")
        trees = {"this": ROOT, "other": args.other.resolve()}
        for r in range(args.rounds):
            order = ["this", "other"] if r % 2 == 0 else ["other", "this"]
            figures = {}
            for name in order:
                run = f"r{r}{name}"
                figures[name] = run_tree(trees[name], {
                    **base, "stream_name": run.upper(), "subject_prefix": run,
                    "log_level": "WARNING", "relay_batch": args.batch}, events, srv.folder)
            t, o = figures["this"], figures["other"]
            print(f"round {r + 1} ({order[0]} first): relay CPU us an event this "
                  f"{t['cpu_us']:.1f} / other {o['cpu_us']:.1f} ({t['cpu_us'] / o['cpu_us']:.2f}"
                  f" x); nats-server {t['nats_us']:.1f} / {o['nats_us']:.1f}; postgres "
                  f"{t['pg_us']:.1f} / {o['pg_us']:.1f}; events/s {t['per_s']:,.0f} / "
                  f"{o['per_s']:,.0f}")


if __name__ == "__main__":
    main()
