"""A running service leaves what it started with out of the cyclic collector's passes, and
gives it back when it stops (a process that starts many runtimes leaks nothing)."""

from __future__ import annotations

import gc

import pytest

from services.intake.main import create_app
from shared.runtime import heap
from shared.settings import Settings
from tests.support import running


async def test_the_heap_at_start_is_frozen_while_the_runtime_runs(settings: Settings) -> None:
    heap.unfreeze()
    async with running(create_app(settings)):
        assert gc.get_freeze_count() > 10_000  # the modules, contracts and application
    assert gc.get_freeze_count() == 0


async def test_a_process_that_froze_its_heap_keeps_it_frozen_and_the_runtime_collectable(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test run froze what it imported and collected (tests/conftest.py): a runtime then
    freezes nothing and gives nothing back. Frozen at every runtime's start and given back at
    its stop, the garbage of each test was hidden from the collector while the next ran: the
    run's heap held every earlier test. Nor does a runtime count the frozen heap to know it
    (``shared/runtime/heap.py``: a walk of every frozen object, ~50 ms at each start)."""
    count = gc.get_freeze_count
    frozen = count()
    assert frozen > 10_000

    def counted() -> int:
        raise AssertionError("the frozen heap was counted")

    monkeypatch.setattr(gc, "get_freeze_count", counted)
    async with running(create_app(settings)):
        assert count() <= frozen  # (less: frozen objects freed by their count)
    assert count() > frozen - 1_000
