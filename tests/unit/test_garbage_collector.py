"""A started service settles the garbage collector: start-up's objects frozen, the young
generation collected less often, and reference cycles still collected."""

from __future__ import annotations

import gc
import weakref

from shared.http.app import GC_YOUNG_THRESHOLD, settle_garbage_collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_settled_collector_still_collects_cycles() -> None:
    threshold = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
