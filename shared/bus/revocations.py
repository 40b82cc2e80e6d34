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


async def load_and_watch(nc: NATS, settings: Settings, revoked: RevokedTokens
                         ) -> asyncio.Task[None]:
    """Read every revocation now (returns once they are in ``revoked``), then keep watching in
    the task returned; a lost watch is made again (it delivers the bucket whole again)."""
    loaded = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        while True:
            try:
                kv = await revoked_bucket(nc, settings)
                watcher = await kv.watchall()
                try:
                    while True:
                        entry = await watcher.updates(timeout=None)
                        if entry is None:  # the bucket as it was, all delivered
                            revoked.loaded = True
                            if not loaded.done():
                                loaded.set_result(None)
                            continue
                        if entry.operation is None:
                            _apply(revoked, entry.key, entry.value, keep_s(settings))
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("auth.revocations_watch_lost",
                            error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    task = asyncio.create_task(watch(), name="revoked-tokens")
    await asyncio.wait({task, loaded}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    return task
