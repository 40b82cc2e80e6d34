"""A lock wait ends just below the statement's limit (``lock_timeout``), so that a statement
stuck behind another session's lock is told from one slow on its own; no limit stays none."""

from __future__ import annotations

import pytest

from shared.readmodels.pool import lock_timeout_s, timeouts
from shared.settings import Settings


@pytest.mark.parametrize(("statement", "lock"), [(30.0, 29.0), (0.3, 0.27), (0.0, 0.0)])
def test_a_lock_wait_ends_just_before_the_statement_limit(statement: float,
                                                          lock: float) -> None:
    assert lock_timeout_s(statement) == pytest.approx(lock)


def test_the_pool_sessions_start_with_both_limits() -> None:
    limits = timeouts(Settings(db_statement_timeout_s=30))
    assert limits["statement_timeout"] == "30000ms" and limits["lock_timeout"] == "29000ms"
