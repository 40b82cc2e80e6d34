"""Intake's ``POST /cases`` through its whole ASGI app in-process, in two source trees, paired:
CPU time per request of the HTTP layer, the route and the use case, without uvicorn's socket
or the store.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/intake_asgi_paired.py /tmp/base [--pairs 4] [--requests 1500]

On a shared, loaded host the HTTP runs of ``intake_paired.py`` swing more than a change to the
request path: here each tree's app (``create_app`` with the front door, tracing at the
benchmarks' sampling into a dropping exporter, metrics on) answers the same writes in a
process of its own, with group commit replaced by one that accepts every command
(``tests/unit/test_fast_route.py``'s), and ``time.process_time`` is read around each round.
Its Idempotency-Keys are the pages' (``step-`` and 32 hex digits, ``ui.js``'s ``newKey``),
made before the rounds, or with ``--keys pid`` ``<pid>-<n in 12 hex digits>``, as before
stop 52. Each process prints the median of its rounds in us a request (``benchmarks/pairing.py``
alternates the trees and prints the pairs and their medians; the rounds go to stderr). With
``--otlp`` the spans leave as deployed (each tree's ``start_tracing``: its OTLP/HTTP exporter,
to a sink in the parent process) and each process prints its whole run's CPU a request, the
exporter's thread and its last batch included. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _child(requests: int, rounds: int, sent_at: bool = False, keys: str = "page",
           otlp: str | None = None) -> None:
    import orjson
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased

    from benchmarks.common import SAMPLER_ARG
    from services.intake.application import Intake
    from services.intake.main import create_app
    from shared import tracing
    from shared.runtime.tracing import LinkedOrRatio
    from shared.settings import Settings
    from tests.unit.test_fast_route import AcceptingCommitter, _token

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    logging.disable(logging.CRITICAL)
    settings = Settings(environment="development", log_json=True)
    if otlp:
        # As deployed: the tree's own start_tracing, its exporter posting to the parent's sink
        from shared.runtime.tracing import start_tracing
        provider = start_tracing(settings.model_copy(update={
            "otel_exporter_otlp_endpoint": otlp,
            "otel_traces_sampler_arg": float(SAMPLER_ARG)}), "intake")
    else:
        # The services' sampler (``shared.runtime.tracing.start_tracing``), into a dropping
        # exporter
        provider = TracerProvider(sampler=ParentBased(LinkedOrRatio(float(SAMPLER_ARG))))
        provider.add_span_processor(BatchSpanProcessor(Dropped()))
        tracing.install(provider)
    app = create_app(settings)
    app.state.intake = Intake(AcceptingCommitter(), app.state.catalogue)  # type: ignore[arg-type]
    token = _token(settings).encode()
    from datetime import UTC, datetime
    body = orjson.dumps({"center_id": "SH-PD-HUAMU", "counter_id": "window-3",
                         "clerk_id": "clerk-001", "channel": "counter",
                         "service_item": "SA-HARDSHIP-SUBSIDY",
                         # the counter page's: its clock, as it sends (within the window)
                         **({"sent_at": datetime.now(UTC).isoformat()} if sent_at else {})})

    pid = os.getpid()
    made = {n: f"{pid}-{n:012x}".encode() if keys == "pid"
            else f"step-{uuid.uuid4().hex}".encode()  # the pages' keys (newKey)
            for n in range(-500, rounds * requests)}

    async def write(n: int) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "server": ("127.0.0.1", 8001),
                 "client": ("127.0.0.1", 50000), "scheme": "http", "method": "POST",
                 "root_path": "", "path": "/cases", "raw_path": b"/cases", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1:8001"), (b"authorization", token),
                             (b"idempotency-key", made[n]),
                             (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())], "state": {}}
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 201, sent

    async def run() -> None:
        for n in range(500):  # warm up, then settle the collector as a service does
            await write(-n - 1)
        if otlp:
            provider.force_flush()  # the warm-up's spans sent before the clock starts
        gc.collect()
        gc.freeze()
        used = []
        began = time.process_time()
        for round_ in range(rounds):
            start = time.process_time()
            for n in range(requests):
                await write(round_ * requests + n)
            used.append((time.process_time() - start) / requests * 1e6)
        print("rounds", " ".join(f"{us:.1f}" for us in used), file=sys.stderr)
        if otlp:
            # The exporter sends a batch every 512 spans (or 5 s), on its thread, in some
            # rounds and not others: the whole run's CPU with its last batch sent, a request
            provider.force_flush()
            print(f"{(time.process_time() - began) / (rounds * requests) * 1e6:.2f}",
                  flush=True)
            return
        print(f"{statistics.median(used):.2f}", flush=True)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, nargs="?", help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1500, help="writes a round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds a process")
    parser.add_argument("--sent-at", action="store_true",
                        help="each write says its sender's clock (sent_at), as the counter "
                        "page's do")
    parser.add_argument("--keys", choices=("page", "pid"), default="page",
                        help="Idempotency-Keys as the pages make them (step-<32 hex>), or "
                        "<pid>-<n in 12 hex> (before stop 52)")
    parser.add_argument("--otlp", action="store_true",
                        help="spans exported as deployed (each tree's start_tracing, OTLP/HTTP "
                        "to a sink in this process): the figure is then the whole run's CPU "
                        "a request, the exporter's thread and last batch included")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.requests, args.rounds, args.sent_at, args.keys, args.sink)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.common import OtlpSink
    from benchmarks.pairing import alternate, child

    sink = OtlpSink() if args.otlp else None
    if sink is not None:
        sink.start()
    try:
        alternate(args.other, ROOT, args.pairs, lambda tree: child(
            ROOT / "benchmarks" / "intake_asgi_paired.py", tree, "--requests",
            str(args.requests), "--rounds", str(args.rounds), "--keys", args.keys,
            *(["--sent-at"] if args.sent_at else []),
            *(["--sink", sink.endpoint] if sink is not None else [])), "a request")
    finally:
        if sink is not None:
            print(f"the sink took {sink.spans:,} spans in {sink.requests} exports")
            sink.stop()


if __name__ == "__main__":
    main()
