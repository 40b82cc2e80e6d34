"""Fault tests run real service processes; their logs land in the test's tmp folder and the
last lines of each are printed when a test fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.faults.harness import System


@pytest.fixture
async def system(settings: Settings, tmp_path: Path) -> AsyncIterator[System]:
    system = System(settings, tmp_path)
    try:
        yield system
    except BaseException:
        print(system.tails())
        raise
    finally:
        await system.stop()
