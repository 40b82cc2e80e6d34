"""A batch of the intake API's spans encoded for OTLP/HTTP: the SDK's encoder against
``shared.runtime.otlp``'s, paired in one process (``time.process_time``), alternating.

    .venv/bin/python benchmarks/otlp_paired.py [--pairs 6] [--batches 20] [--links 3]

The batch is what the API process exports as deployed (a tenth of the requests sampled): the
sampled requests' server spans (method, status, route, a case's id) and the group commit's
spans, each linked to the sampled requests it carried (``--links``; remote contexts, as the
group commit takes them from the requests' traceparents), 512 spans as the batch processor
sends them. Prints each pair in us a span and the medians. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def batch(links: int, size: int = 512) -> list:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "sixstep-intake",
                                                        "service.namespace": "sixstep"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("sixstep")
    carried: list[Link] = []
    while len(memory.get_finished_spans()) < size:
        if len(carried) >= links:
            with tracer.start_as_current_span("group commit", links=carried,
                                              attributes={"sixstep.batch.size": 30}):
                pass
            carried = []
            continue
        with tracer.start_as_current_span("POST", kind=SpanKind.SERVER,
                                          attributes={"http.request.method": "POST"}) as span:
            span.set_attribute("http.response.status_code", 201)
            span.update_name("POST /cases/{case_id}/hear")
            span.set_attribute("http.route", "/cases/{case_id}/hear")
            span.set_attribute("sixstep.case_id", str(uuid.uuid4()))
            made = span.get_span_context()
            carried.append(Link(SpanContext(made.trace_id, made.span_id, is_remote=True,
                                            trace_flags=TraceFlags(1))))
    return list(memory.get_finished_spans())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--batches", type=int, default=20, help="batches a side of a pair")
    parser.add_argument("--links", type=int, default=3,
                        help="sampled requests a group commit carries")
    args = parser.parse_args()
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from shared.runtime.otlp import encoded

    spans = batch(args.links)
    sides = {"sdk": lambda: encode_spans(spans).SerializePartialToString(),
             "direct": lambda: encoded(spans)}
    assert sides["sdk"]() == sides["direct"](), "the bytes differ"
    got: dict[str, list[float]] = {"sdk": [], "direct": []}
    for pair in range(args.pairs):
        order = ["sdk", "direct"] if pair % 2 == 0 else ["direct", "sdk"]
        for side in order:
            start = time.process_time()
            for _ in range(args.batches):
                sides[side]()
            got[side].append((time.process_time() - start) / args.batches / len(spans) * 1e6)
        with open("/proc/loadavg") as loadavg:
            load = loadavg.read().split()[0]
        print(f"pair {pair} ({order[0]} first, load {load}): sdk {got['sdk'][-1]:.2f}, "
              f"direct {got['direct'][-1]:.2f} us a span", flush=True)
    sdk, direct = statistics.median(got["sdk"]), statistics.median(got["direct"])
    lower = sum(d < s for s, d in zip(got["sdk"], got["direct"], strict=True))
    print(f"medians: sdk {sdk:.2f}, direct {direct:.2f} us a span ({direct / sdk:.2f} x); "
          f"direct lower in {lower} of {args.pairs}; {len(spans)} spans a batch")


if __name__ == "__main__":
    main()
