"""`sixstep ops apply` (compose's and Kubernetes' step before the services) and `make run` apply
the stream definitions through one function: until stop 56 `tools/run.py` had a twin of it
that waited for a cluster's JetStream and made one try at the connection, while `ops apply`
did neither, and a change to one was not the other's."""

from __future__ import annotations

import shared.cli.commands  # noqa: F401  (every command registered, in the table's order)
import shared.cli.ops as ops
import tools.run as run
from shared.bus import jetstream


def test_ops_apply_and_make_run_apply_the_streams_through_one_function() -> None:
    assert ops.apply_streams is jetstream.apply_streams
    assert run.apply_streams is jetstream.apply_streams
