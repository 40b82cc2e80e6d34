"""A running service leaves what it started with out of the cyclic collector's passes, and
gives it back when it stops (a process that starts many runtimes leaks nothing)."""

from __future__ import annotations

import gc

from services.intake.main import create_app
from shared.settings import Settings
from tests.support import running


async def test_the_heap_at_start_is_frozen_while_the_runtime_runs(settings: Settings) -> None:
    gc.unfreeze()
    async with running(create_app(settings)):
        assert gc.get_freeze_count() > 10_000  # the modules, contracts and application
    assert gc.get_freeze_count() == 0
