"""Fault tests run real service processes; their logs land in the test's tmp folder and the
last lines of each are printed when a test fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests import support
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


@pytest.fixture
def auth_headers(settings: Settings) -> dict[str, str]:
    """Authorization for the services' APIs when they check it (``tests.support.bearer``)."""
    bearer = getattr(support, "bearer", None)
    return bearer(settings) if bearer is not None else {}
