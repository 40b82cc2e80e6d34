"""A started service settles the garbage collector: start-up's objects frozen, the young
and middle generations collected less often (the oldest as CPython has it), and reference
cycles still collected. What a consumer holds while it applies a batch and reads the next
ahead sets off no collection: those walked every event held, freed by reference counting
soon after, and found nothing.

Checked in a fresh interpreter, as a service settles it once started: in the test run's own
process the collections walk the whole suite's heap (14 s at CI's load) and unfreezing
afterwards hands that heap back to the collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import gc, weakref
from shared.http.app import GC_OLDER_THRESHOLD, GC_YOUNG_THRESHOLD, settle_garbage_collector

class Node:
    other = None

settle_garbage_collector()
assert gc.get_freeze_count() > 0, gc.get_freeze_count()
assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, GC_OLDER_THRESHOLD, 10), gc.get_threshold()
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None, "a reference cycle outlived a collection"
print("settled")
"""


def test_a_settled_collector_still_collects_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "settled", done


HELD = """
import gc, uuid
from nats.aio.msg import Msg
from shared.contracts import Envelope
from shared.contracts.decoding import decode_envelope
from shared.http.app import settle_garbage_collector
from shared.settings import Settings

def body(i):
    case = uuid.uuid4()
    return Envelope(
        event_id=uuid.uuid4(), type="CaseOpened", version=3, service="intake", position=i + 1,
        aggregate_id=case, aggregate_version=1, case_id=case, center_id="CENTER-01",
        occurred_at="2026-12-20T09:00:00+08:00", recorded_at="2026-12-20T01:00:01Z",
        causation_id=f"key-{i}", correlation_id=f"visit-{i}", actor="clerk-7",
        payload={"channel": "counter", "counter_id": "W-3", "clerk_id": "clerk-7",
                 "resident_id": str(uuid.uuid4()), "needs": ["subsidy", "aid"]},
    ).model_dump_json().encode()

# A command writer's batches (``batch_scale`` 4): the one applied and the one read ahead.
held_events = 2 * 4 * Settings().consumer_batch
bodies = [body(i) for i in range(held_events)]
settle_garbage_collector()
young = []
gc.callbacks.append(lambda phase, info: young.append(info) if phase == "start" else None)
held = [(Msg(None, subject="sixstep.intake.CaseOpened.p3", reply=f"$JS.ACK.S.c.1.{i}.{i}.0.0",
             data=data, headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-00"}),
         decode_envelope(data)) for i, data in enumerate(bodies)]
assert not young, f"{len(young)} collections while {held_events:,} events were held"
print("held")
"""


def test_a_consumers_batches_in_hand_set_off_no_collection() -> None:
    done = subprocess.run([sys.executable, "-c", HELD], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "held", done
