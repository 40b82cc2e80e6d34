"""A rebuild reads and applies the log in batches of one size, wherever it is started from:
``sixstep rebuild`` (one read model or ``--all``), ``Rebuild`` and ``catch_up_together``
(what the benchmarks and the city's month call)."""

from __future__ import annotations

import inspect

from shared.analytics.rebuild import Rebuild, catch_up_together
from shared.cli.rebuild import rebuild_command
from shared.readmodels.readmodel import REBUILD_BATCH


def test_an_analysts_rebuild_takes_the_log_in_the_batches_a_rebuild_is_measured_at() -> None:
    # 4,000 rather than a live consumer's 1,000: PostgreSQL pays a batch's statements and a
    # tracking row and a row version per key once per batch (benchmarks/README.md).
    assert REBUILD_BATCH == 4000
    assert inspect.signature(Rebuild).parameters["batch_size"].default == REBUILD_BATCH
    assert (inspect.signature(catch_up_together).parameters["batch_size"].default
            == REBUILD_BATCH)
    assert inspect.signature(rebuild_command).parameters["batch"].default == REBUILD_BATCH
