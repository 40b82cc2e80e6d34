"""The replay's reader process (``python -m shared.analytics.reading``) is on a long rebuild's
critical path from its start to its first batch: it must not import the settings, the event
contracts or the logging that the rest of ``shared`` brings in (0.7 s of CPU, a second before
the first batch, when it did)."""

from __future__ import annotations

import pickle
import subprocess
import sys

from shared.analytics.reading import ReaderSpec

HEAVY = ("shared.settings", "shared.contracts", "structlog", "pydantic", "pydantic_settings")


def test_the_reader_process_reads_its_spec_with_nats_and_the_bus_alone() -> None:
    spec = ReaderSpec("nats://127.0.0.1:4222", "SIXSTEP", "replay-1", ("p.intake.*.*",), None,
                      1000, 52_000, 0, parts=(ReaderSpec("nats://127.0.0.1:4222", "SIXSTEP",
                                                         "replay-2", ("p.a.*.*",), None, 1000,
                                                         52_000, 0),))
    child = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; import shared.analytics.reading as r; "
         "spec = pickle.loads(sys.stdin.buffer.read()); assert spec.parts[0].stream; "
         f"print(' '.join(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
         f" or m.startswith({HEAVY!r})))"],
        input=pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL), capture_output=True,
        timeout=60, check=True)
    assert child.stdout.split() == [], child.stdout.decode()
