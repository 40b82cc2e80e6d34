"""The connection to the bus and the matching of subjects: all that a process reading the log's
raw messages needs (the replay's reader process, ``shared.analytics.reading``), without the
settings, the contracts or the logging ``shared.bus.jetstream`` brings in (importing those
took the reader process some 0.6 s of CPU before it read its first message)."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.client import Client as NATS

from shared.bus.headers import Client, StatusOnlyClient

log = logging.getLogger(__name__)


async def said_in_one_line(error: Exception) -> None:
    """nats-py's error callback, in one line: its own logs every error with its traceback, so
    a cluster with one server down (a rolling restart) put 30 lines of asyncio frames before
    every CLI command's answer and into every service's log, for each server it tried."""
    log.warning("nats: %s: %s", type(error).__name__, error)


async def connect_to(nats_url: str, name: str, *, reconnect: bool = True,
                     headers: bool = True, **options: Any) -> NATS:
    """A connection to the servers of ``nats_url`` (comma-separated); see
    :func:`shared.bus.jetstream.connect`, which takes them from the settings. Errors the
    client meets are logged in one line unless ``options`` give an ``error_cb``."""
    options.setdefault("error_cb", said_in_one_line)
    nc = Client() if headers else StatusOnlyClient()
    await nc.connect(
        servers=[s.strip() for s in nats_url.split(",")],
        name=name,
        allow_reconnect=reconnect,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        pending_size=64 * 1024 * 1024,
        **options,
    )
    return nc


def covers(wide: str, narrow: str) -> bool:
    """Whether every subject the NATS filter ``narrow`` matches is matched by ``wide``: ``*``
    is one token, a last ``>`` one or more. A subject is a filter that matches itself alone,
    so ``covers(pattern, subject)`` is also whether ``pattern`` matches ``subject``."""
    w, n = wide.split("."), narrow.split(".")
    for i, token in enumerate(w):
        if token == ">":
            return len(n) > i
        if i >= len(n) or n[i] == ">" or (token != "*" and token != n[i]):
            return False
    return len(n) == len(w)


#: NATS subject matching (``subject_matches(pattern, subject)``): :func:`covers` of a subject.
subject_matches = covers
