"""How often a consumer looks again: at its stream (``STREAM_RECHECK_S``), and between two
start-agains (``START_AGAIN_MAX_S``)."""

from __future__ import annotations

#: The longest pause between two start-agains of a consumer (``_StartAgain``).
START_AGAIN_MAX_S = 15.0

STREAM_RECHECK_S = 5.0
"""How often a consumer that refused the stream (``Consumer._on_its_stream``) looks again:
a rebuild of its read model records the new stream and the consumer goes on by itself."""

