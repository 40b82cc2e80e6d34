"""Intake's writes in two source trees, paired: CPU time per request of each process.

    git worktree add /tmp/base main   # or: git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/intake_paired.py /tmp/base [--mode split|one] [--rounds 4]
        [--connections 32]

For a change to the write path measured on a shared, loaded machine, where the rates of
``intake.py`` swing more than any change: the other tree's intake and this one's each run on
PostgreSQL and NATS of their own (started here), as deployed (``service_env``: logs, metrics,
tracing at the benchmarks' sampling), both with this checkout's virtualenv. wrk then drives
``POST /cases`` at each in turn, ``--rounds`` times, alternating which goes first, and each
round prints the load average, the rate and the CPU time per request of the API process, the
workers process (``--mode split``) and the servers (PostgreSQL + NATS). Compare the CPU
lines; a rate under load says little. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, free_ports, post_script, servers, service, service_env, wrk
from benchmarks.intake import CASE, cpu_seconds, server_pids


@contextlib.contextmanager
def intake_in(tree: Path, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m services.intake.main`` with ``tree``'s code (this virtualenv's packages)."""
    with service("services.intake.main", port, {**env, "PYTHONPATH": str(tree)},
                 cwd=tree) as proc:
        yield proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the tree to compare this checkout with")
    parser.add_argument("--mode", choices=["split", "one"], default="split",
                        help="API and workers processes (split), or one process")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32, help=(
        "wrk's connections (1: a lone client's latency, which batching must not cost)"))
    args = parser.parse_args()
    trees = {"other": args.other.resolve(), "this": ROOT}
    with contextlib.ExitStack() as stack:
        runs: dict[str, tuple[str, dict[str, list[int]]]] = {}
        for name, tree in trees.items():
            srv = stack.enter_context(servers())
            port, workers_port = free_ports(2)
            processes = {"stores": server_pids(srv)}
            if args.mode == "split":
                workers = stack.enter_context(intake_in(tree, workers_port, service_env(
                    srv, INTAKE_PORT=str(workers_port), ROLES="workers")))
                processes["workers"] = [workers.pid]
            api = stack.enter_context(intake_in(tree, port, service_env(
                srv, INTAKE_PORT=str(port), **({"ROLES": "api"} if args.mode == "split"
                                               else {}))))
            processes["api"] = [api.pid]
            runs[name] = (f"http://127.0.0.1:{port}", processes)
        for name, (base, _) in runs.items():  # warm up
            wrk(base, post_script("/cases", CASE, f"warm-{name}"), seconds=2)
        print(f"mode {args.mode}, {args.connections} connections; other = {trees['other']}, "
              f"this = {trees['this']}")
        for round_ in range(args.rounds):
            order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
            for name in order:
                base, processes = runs[name]
                before = {k: cpu_seconds(pids) for k, pids in processes.items()}
                load = os.getloadavg()[0]
                result = wrk(base, post_script("/cases", CASE, f"{name}{round_}"),
                             seconds=args.seconds, connections=args.connections)
                used = {k: (cpu_seconds(pids) - before[k]) / max(1, result.requests) * 1e6
                        for k, pids in processes.items()}
                cpu = " + ".join(f"{k} {us:,.0f}" for k, us in sorted(used.items()))
                print(f"round {round_} {name:<5} load {load:4.1f}  {result.rate:7,.0f} req/s "
                      f"(p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; "
                      f"{result.failures} failures)  CPU us a request: {cpu} = "
                      f"{sum(used.values()):,.0f}", flush=True)


if __name__ == "__main__":
    main()
