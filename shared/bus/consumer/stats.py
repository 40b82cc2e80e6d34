"""What a consumer counts (``ConsumerStats``): its metrics and ``ops status`` read it."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    batches: int = 0
    #: Batches taken into the one before while it waited (``Merging``), counted when taken:
    #: also one handed back when that batch then failed (its events then not in ``applied``).
    merged: int = 0
    #: Batches read ahead that could not be merged (a handler's refusal: a lock not free at
    #: once, a statement's time, an error) and went back to be the next batch on their own.
    merges_refused: int = 0
    last_stream_seq: int = 0
    #: Events on its subjects not yet applied (fetched or not), as the server counted them
    #: at the last ``measure_oldest_unapplied`` (the service's probe).
    pending: int = 0
    standing_by: bool = False  # another process drives this durable; this one waits its turn
    #: When (epoch seconds) the oldest event this consumer has not yet applied was stored on
    #: the stream; None when it has applied everything (set by ``measure_oldest_unapplied``).
    oldest_unapplied_at: float | None = None
    #: Why this consumer applies nothing: the stream is not the one its tracking rows were
    #: written against (``shared.bus.stream_identity``); None while it is.
    stream_refused: str | None = None
    #: Batches given back because a statement ran out of time (``STORE_TIMED_OUT``).
    store_timeouts: int = 0
    #: Since when (epoch seconds) its statements time out, and the last such error; None
    #: once a batch went through again.
    timing_out_since: float | None = None
    last_timeout: str | None = None

    def oldest_unapplied_age(self) -> float:
        """Seconds the oldest event not yet applied has been on the stream (0 when none)."""
        at = self.oldest_unapplied_at
        return max(0.0, time.time() - at) if at is not None else 0.0

