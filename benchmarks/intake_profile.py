"""Where intake's API process spends its CPU a write, by layer: ``py-spy record --gil`` of the
API process (``ROLES=api``, as deployed: logs, metrics, tracing at the benchmarks' sampling)
while wrk drives ``POST /cases``, its raw stacks grouped by layer.

    .venv/bin/python benchmarks/intake_profile.py [--mode split|one] [--seconds 20]
        [--raw /tmp/api.raw] [--process api|workers]
    .venv/bin/python benchmarks/intake_profile.py --raw /tmp/api.raw --only   # group again

``--gil``: only the thread holding the GIL is sampled, so a sample is the process on the CPU.
Without it py-spy counts threads that wait (the psycopg pool's and the executor's idle
workers, the span exporter's timer) as active: 2.4 times the CPU the process used. Each
sample goes to the layer of the first frame, from the leaf up, that a rule of ``LAYERS``
names; the CPU time a request (``/proc``, around wrk's run) is shared out by the samples.
Needs py-spy and wrk; not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: (layer, file, function or None), tried on each frame from the leaf up: the first rule a
#: frame matches names the sample's layer (a span's encoding inside the response is tracing).
LAYERS = [
    ("tracing: spans, sampling, OTLP export", r"^(trace/|_shared_internal/|http/trace_exporter|"
     r"common/|resources/|context/|attributes/|requests/|urllib3/|protobuf/|util/|"
     r"shared/tracing/|shared/http/tracing\.py|shared/runtime/tracing\.py)", None),
    ("metrics", r"^(prometheus_client/|shared/http/metrics\.py|shared/runtime/metrics\.py)", None),
    ("logging", r"^(structlog/|logging/)", None),
    ("auth: bearer, JWT verify", r"^(shared/security/|hmac\.py|jwt/)", None),
    ("auth: bearer, JWT verify", r"^shared/http/auth\.py", r"^(_bearer|Verifier|_alg)"),
    ("group commit: its round in the writer thread", r"^shared/eventstore/group_commit\.py",
     r"^GroupCommitter\.(_write|_execute|_attempt|_save)"),
    ("group commit: its round in the writer thread", r"^concurrent/futures/thread\.py", None),
    ("group commit: queue, hand-off, settle", r"^shared/eventstore/group_commit\.py", None),
    ("command path: idempotency digest, meta (own lines)", r"^shared/eventstore/command_path\.py",
     r"CommandDigests|_model_shaped|_text_shaped|meta"),
    ("command path: use case, aggregate, kernel's rules (window, key's privacy)",
     r"^(services/intake/(application|domain|commands)\.py|shared/eventstore/command_path\.py|shared/kernel/|eventsourcing/domain\.py|"
     r"shared/contracts/|<string>|uuid\.py|enum\.py)", None),
    ("request validation (pydantic)", r"^(pydantic/|fastapi/_compat/)", None),
    ("route and its dependencies", r"^(services/intake/api\.py|shared/http/(fast_route|"
     r"dependencies|direct_writes)\.py|fastapi/routing\.py)", None),
    ("response: headers, send, socket write", r"^(starlette/responses\.py|shared/http/server\.py|"
     r"shared/http/security_headers\.py)", None),
    ("response: headers, send, socket write", r"^shared/http/front_door\.py", r"sending"),
    ("response: headers, send, socket write", r"^uvicorn/protocols/http/httptools_impl\.py",
     r"RequestResponseCycle\.send"),
    ("front door: correlation, limits, routing", r"^shared/http/(front_door|correlation|limits|"
     r"direct_routes|deadline|auth)\.py", None),
    ("ASGI server: HTTP parse, protocol", r"^uvicorn/", None),
    ("starlette/fastapi middleware", r"^(starlette/|fastapi/)", None),
    ("event loop (asyncio)", r"^(asyncio/|threading\.py)", None),
]
_RULES = [(name, re.compile(f), re.compile(fn) if fn else None) for name, f, fn in LAYERS]
#: ``--mode one``: the workers' tasks in the same process, named by any frame of the stack
#: (a consumer's decoding is the consumer's, not request validation).
WORKERS = [
    ("workers: relay (outbox -> stream)", re.compile(r"\((shared/eventstore/outbox\.py):")),
    ("workers: consumers (read models)", re.compile(
        r"\((shared/bus/consumer/|services/intake/(projections|plan_views)\.py|shared/readmodels/)")),
    ("workers: NATS client", re.compile(r"\((nats/)")),
]
_FRAME = re.compile(r"(.*) \((.*?):\d+\)$")


def layer_of(frames: list[str]) -> str:
    stack = ";".join(frames)
    for name, marker in WORKERS:
        if marker.search(stack):
            return name
    for frame in reversed(frames):
        m = _FRAME.match(frame)
        if m is None:
            continue
        function, file = m.groups()
        for name, file_rule, function_rule in _RULES:
            if file_rule.search(file) and (function_rule is None or function_rule.search(function)):
                return name
    return "other"


def by_layer(raw: Path) -> tuple[collections.Counter[str], int]:
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        layers[layer_of(stack.split(";"))] += int(count)
        total += int(count)
    return layers, total


def profile(seconds: int, raw: Path, mode: str, process: str = "api") -> float:
    """The profiled process's CPU time a request (us) over wrk's run, py-spy recording it to
    ``raw``: the API's, or with ``process="workers"`` (split only) the workers'."""
    from benchmarks.common import free_ports, post_script, servers, service, service_env, wrk
    from benchmarks.intake import CASE, cpu_seconds

    with servers() as srv:
        port, workers_port = free_ports(2)
        roles = {"ROLES": "api"} if mode == "split" else {}
        with contextlib.ExitStack() as stack:
            workers = None
            if mode == "split":
                workers = stack.enter_context(service("services.intake.main", workers_port,
                                                      service_env(srv, INTAKE_PORT=str(
                                                          workers_port), ROLES="workers")))
            api = stack.enter_context(service("services.intake.main", port, service_env(
                srv, INTAKE_PORT=str(port), **roles)))
            spied = workers if process == "workers" and workers is not None else api
            base = f"http://127.0.0.1:{port}"
            wrk(base, post_script("/cases", CASE, "warm"), seconds=3)
            spy = subprocess.Popen(
                ["py-spy", "record", "--gil", "-r", "250", "-f", "raw", "-o", str(raw),
                 "-d", str(seconds + 2), "-p", str(spied.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)  # py-spy attached
            before = cpu_seconds([spied.pid])
            result = wrk(base, post_script("/cases", CASE, "profile"), seconds=seconds)
            used = (cpu_seconds([spied.pid]) - before) / max(1, result.requests) * 1e6
            spy.wait()
    print(f"{result.rate:,.0f} writes/s, {process} process {used:.0f} us of CPU a write")
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--raw", type=Path, default=Path("/tmp/intake-api.raw"))
    parser.add_argument("--mode", choices=["split", "one"], default="split", help=(
        "the API process of API + workers (split), or one process with both"))
    parser.add_argument("--process", choices=["api", "workers"], default="api", help=(
        "the process to profile: the API's, or (--mode split) the workers' (relay, consumers)"))
    parser.add_argument("--only", action="store_true", help="group --raw again, no run")
    parser.add_argument("--us", type=float, default=0.0, help="CPU a write to share out (--only)")
    args = parser.parse_args()
    used = args.us if args.only else profile(args.seconds, args.raw, args.mode, args.process)
    layers, total = by_layer(args.raw)
    print(f"| layer | share of {total:,} samples | us a write (of {used:.0f}) |\n|---|---|---|")
    for name, count in layers.most_common():
        print(f"| {name} | {count * 100 / total:.1f} % | {used * count / total:.0f} |")


if __name__ == "__main__":
    main()
