"""The connection to the bus and the matching of subjects: all that a process reading the log's
raw messages needs (the replay's reader process, ``shared.analytics.reading``), without the
settings, the contracts or the logging ``shared.bus.jetstream`` brings in (importing those
took the reader process some 0.6 s of CPU before it read its first message)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from shared.bus.headers import Client, StatusOnlyClient

log = logging.getLogger(__name__)


async def said_in_one_line(error: Exception) -> None:
    """nats-py's error callback, in one line: its own logs every error with its traceback, so
    a cluster with one server down (a rolling restart) put 30 lines of asyncio frames before
    every CLI command's answer and into every service's log, for each server it tried."""
    log.warning("nats: %s: %s", type(error).__name__, error)


class SignInRefused(NatsError):
    """The servers refused this process's NATS credentials (or their absence); or, with
    ``reason``, the credentials could not even be offered (``creds_file_unusable``)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__()
        self.reason = reason

    def __str__(self) -> str:
        if self.reason:
            return f"nats: {self.reason}"
        return ("nats: the server refused the sign-in (Authorization Violation): check "
                "NATS_USER and NATS_PASSWORD (or NATS_CREDS_FILE, or the user in NATS_URL)")


def creds_file_unusable(path: str) -> str | None:
    """Why nats-py could not sign in with the credentials file ``path`` (None: it can): a
    file it cannot read, or no ``nkeys`` package to sign the server's challenge with. Not
    caught here, nats-py's ``FileNotFoundError`` or ``ModuleNotFoundError: nkeys`` stopped a
    service with uvicorn's traceback, exit 3 (redteam125)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"NATS_CREDS_FILE cannot be read ({type(exc).__name__}: {exc.strerror})"
    if importlib.util.find_spec("nkeys") is None:
        return ("NATS_CREDS_FILE needs the nkeys package (nats-py[nkeys]) to sign in with; "
                "it is not installed")
    return None


async def connect_to(nats_url: str, name: str, *, reconnect: bool = True,
                     headers: bool = True, **options: Any) -> NATS:
    """A connection to the servers of ``nats_url`` (comma-separated); see
    :func:`shared.bus.jetstream.connect`, which takes them from the settings. Errors the
    client meets are logged in one line unless ``options`` give an ``error_cb``.

    Credentials the servers refuse at the first connection raise :class:`SignInRefused`:
    nats-py would try them again for ever (``max_reconnect_attempts=-1``), a CLI command
    hanging and a service never saying why it does not start. Refused later (a password
    rotated on the servers first), they are logged and tried again, as any reconnection."""
    given_error_cb = options.pop("error_cb", said_in_one_line)
    connecting = True

    async def error_cb(error: Exception) -> None:
        if connecting and "authorization violation" in str(error).lower():
            raise SignInRefused() from None
        await given_error_cb(error)

    if (creds := options.get("user_credentials")) and (why := creds_file_unusable(creds)):
        raise SignInRefused(why)
    nc = Client() if headers else StatusOnlyClient()
    given = options.pop("reconnected_cb", None)
    listeners: list[Callable[[], Awaitable[None]]] = []
    setattr(nc, _LISTENERS, listeners)

    async def reconnected() -> None:
        if given is not None:
            await given()
        for listener in list(listeners):
            try:
                await listener()
            except Exception as exc:  # one listener's slip stops neither the others nor nats-py
                log.warning("nats: a reconnected listener failed: %s: %s", type(exc).__name__, exc)

    try:
        await nc.connect(
            servers=[s.strip() for s in nats_url.split(",")],
            name=name,
            allow_reconnect=reconnect,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            pending_size=64 * 1024 * 1024,
            reconnected_cb=reconnected,
            error_cb=error_cb,
            **options,
        )
    except SignInRefused:
        with contextlib.suppress(Exception):
            await nc.close()
        raise
    finally:
        connecting = False
    return nc


_LISTENERS = "_sixstep_reconnected"


def when_reconnected(nc: NATS, listener: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Await ``listener()`` each time ``nc`` (made by :func:`connect_to`) has reconnected to a
    server, after nats-py's own ``reconnected_cb``; returns what stops it. A connection made
    otherwise is never told (the returned stop does nothing)."""
    listeners: list[Callable[[], Awaitable[None]]] | None = getattr(nc, _LISTENERS, None)
    if listeners is None:
        return lambda: None
    listeners.append(listener)
    return lambda: listeners.remove(listener) if listener in listeners else None


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
