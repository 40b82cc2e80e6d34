"""A started service settles the garbage collector: start-up's objects frozen, the young
and middle generations collected less often (the oldest as CPython has it), and reference
cycles still collected.

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
