"""The bus's bucket of revoked tokens (``shared.security.revocations``): a NATS key-value
bucket, one key a signed-out token (its id, never a name), the value its ``exp``; the bucket
keeps an entry for the longest a token lives (``AUTH_TOKEN_MINUTES``, at least
:data:`MIN_KEEP`), each replica forgets it at the token's own ``exp``.

Each replica reads the bucket whole before it answers /ready, then watches it: a sign-out on
one replica of one service is refused by every other within the watch's delivery."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from shared.bus.connection import when_reconnected
from shared.kernel.tasks import cancel_and_wait
from shared.security.revocations import RevokedTokens, revocation_key
from shared.settings import Settings

log = structlog.get_logger("sixstep.auth")

#: The least a revocation is kept on the bus: an identity provider's tokens may outlive ours.
MIN_KEEP = timedelta(hours=12)


def bucket_name(settings: Settings) -> str:
    return f"{settings.stream_name}_revoked_tokens"


def keep_s(settings: Settings) -> float:
    """How long the bucket keeps a revocation (its entries' age limit), in seconds: no
    replica holds one longer, whatever ``exp`` its value gives."""
    keep = max(timedelta(minutes=settings.auth_token_minutes), MIN_KEEP) + timedelta(minutes=5)
    return keep.total_seconds()


async def revoked_bucket(nc: NATS, settings: Settings) -> KeyValue:
    """The bucket, made when missing (idempotent: every service's start asks for it)."""
    js = nc.jetstream()
    # as many replicas as the event stream: the cluster's loss of one node keeps the bucket
    config = KeyValueConfig(bucket=bucket_name(settings), history=1,
                            ttl=keep_s(settings), storage=StorageType.FILE,
                            replicas=settings.stream_replicas)
    try:
        return await js.key_value(bucket_name(settings))
    except Exception:  # missing: made now (two starting at once make the same config)
        return await js.create_key_value(config=config)


async def revoke(nc: NATS, settings: Settings, token_id: str, expires: float) -> None:
    """Put the revocation on the bus (raises when NATS does not take it)."""
    kv = await revoked_bucket(nc, settings)
    await kv.put(revocation_key(token_id), orjson.dumps({"exp": expires}))


def _apply(revoked: RevokedTokens, key: str, value: bytes | None, within_s: float) -> None:
    try:
        expires = float(orjson.loads(value or b"{}")["exp"])
    except (ValueError, KeyError, TypeError):
        log.warning("auth.revocation_unreadable", key=key)
        return
    revoked.add(key, expires, within_s=within_s)  # no longer than the bucket keeps it


class RevocationsUnread(RuntimeError):
    """The bucket could not be read within ``REVOCATIONS_READ_TIMEOUT_S``: the service does not
    start (it would let signed-out tokens in)."""


async def load_and_watch(nc: NATS, settings: Settings, revoked: RevokedTokens
                         ) -> asyncio.Task[None]:
    """Read every revocation now (returns once they are in ``revoked``), then keep watching in
    the task returned; a lost watch is made again (it delivers the bucket whole again).

    Raises ``RevocationsUnread`` when the bucket is not read within
    ``REVOCATIONS_READ_TIMEOUT_S`` (the watch ended): a start that waited for ever, a warning a
    second, told the supervisor nothing."""
    loaded = asyncio.get_running_loop().create_future()
    last_error: list[str] = []

    watching: list[KeyValue.KeyWatcher] = []

    async def watch_again() -> None:
        # The connection is back (a NATS server restarted, a network cut): the watch's ordered
        # consumer died with the server, and nats-py resets it only after missed heartbeats
        # (a sign-out made on another replica meanwhile was seen ~20 s later). Ended now, the
        # loop below makes a new watch at once, which delivers the bucket whole again.
        log.info("auth.revocations_rewatched", reason="reconnected")
        for watcher in watching:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def watch() -> None:
        forget = when_reconnected(nc, watch_again)
        try:
            while True:
                try:
                    kv = await revoked_bucket(nc, settings)
                    watcher = await kv.watchall()
                    watching[:] = [watcher]
                    try:
                        while True:
                            entry = await watcher.updates(timeout=None)
                            if entry is KeyValue.KeyWatcher.STOP_ITER:  # stopped: watch_again
                                break
                            if entry is None:  # the bucket as it was, all delivered
                                revoked.loaded = True
                                if not loaded.done():
                                    loaded.set_result(None)
                                continue
                            if entry.operation is None:
                                _apply(revoked, entry.key, entry.value, keep_s(settings))
                    finally:
                        watching.clear()
                        with contextlib.suppress(Exception):
                            await watcher.stop()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    last_error[:] = [f"{type(exc).__name__}: {exc}"]
                    log.warning("auth.revocations_watch_lost", error=last_error[0])
                    await asyncio.sleep(1.0)
        finally:
            forget()

    task = asyncio.create_task(watch(), name="revoked-tokens")
    try:
        await asyncio.wait({task, loaded}, timeout=settings.revocations_read_timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not loaded.done():  # not read in time, or the start cancelled: no watch left behind
            await cancel_and_wait(task)
    if not loaded.done():
        error = last_error[0] if last_error else "no answer"
        log.error("auth.revocations_unread", bucket=bucket_name(settings), error=error,
                  within_s=settings.revocations_read_timeout_s)
        raise RevocationsUnread(
            f"the bucket of signed-out tokens {bucket_name(settings)} was not read within "
            f"REVOCATIONS_READ_TIMEOUT_S ({settings.revocations_read_timeout_s:g} s; last "
            f"error: {error}): not starting, a token signed out would be let in")
    return task
