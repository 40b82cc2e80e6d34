"""The bus's bucket of revoked tokens (``shared.security.revocations``): a NATS key-value
bucket, one key a signed-out token (its id, never a name), the value its ``exp`` (for a
reader; no replica goes by it); the bucket keeps an entry for the longest a token lives
(``AUTH_TOKEN_MINUTES``, at least :data:`MIN_KEEP`) plus 5 minutes (``keep_s``).

Every service may write the bucket (any service takes a sign-out), so nothing written to it
may end a revocation: every message on a key, a put whatever its value, a delete marker or a
purge marker, means "revoked", until the message's own time (the server's) plus ``keep_s``
and never a time a value gives. The bucket's stream is made here, not by nats-py's
``create_key_value`` (``bucket_stream_config``): without roll-up headers (a purge), without
per-message TTLs (a put with ``Nats-TTL: 1s`` left the key empty a second later), with
deletes and purges of the stream denied; a bucket made the old way is aligned, or made again
with its entries, by ``sixstep ops apply`` (``ensure_bucket``).

Each replica reads the bucket whole before it answers /ready, then watches it: a sign-out on
one replica of one service is refused by every other within the watch's delivery."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from datetime import timedelta

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from shared.bus.connection import when_reconnected
from shared.kernel.tasks import cancel_and_wait
from shared.security.revocations import RevokedTokens, revocation_key
from shared.settings import Settings

log = structlog.get_logger("sixstep.auth")
bus_log = structlog.get_logger("sixstep.bus")

#: The least a revocation is kept on the bus: an identity provider's tokens may outlive ours.
MIN_KEEP = timedelta(hours=12)


def bucket_name(settings: Settings) -> str:
    return f"{settings.stream_name}_revoked_tokens"


def keep_s(settings: Settings) -> float:
    """How long the bucket keeps a revocation (its entries' age limit), in seconds: no
    replica holds one longer, whatever ``exp`` its value gives."""
    keep = max(timedelta(minutes=settings.auth_token_minutes), MIN_KEEP) + timedelta(minutes=5)
    return keep.total_seconds()


def bucket_stream(settings: Settings) -> str:
    return f"KV_{bucket_name(settings)}"


def bucket_stream_config(settings: Settings) -> StreamConfig:
    """The bucket's stream as code: what nats-py's ``create_key_value`` makes (a bucket any
    key-value client reads), less what lets a writer end a revocation: ``allow_rollup_hdrs``
    (a purge marker), ``allow_msg_ttl`` (a message's own ``Nats-TTL``), deletes and purges of
    the stream's messages (``deny_delete``, ``deny_purge``)."""
    keep = keep_s(settings)
    return StreamConfig(
        name=bucket_stream(settings),
        subjects=[f"$KV.{bucket_name(settings)}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        # as many replicas as the event stream: the cluster's loss of one node keeps the bucket
        num_replicas=settings.stream_replicas,
        max_age=keep,
        max_msgs_per_subject=1,  # a key's newest message only: any of them means revoked
        max_msgs=-1,
        max_bytes=-1,
        max_consumers=-1,
        discard=DiscardPolicy.NEW,
        duplicate_window=min(120.0, keep),
        allow_direct=True,
        allow_rollup_hdrs=False,
        allow_msg_ttl=False,
        deny_delete=True,
        deny_purge=True,
        description="sixstep: signed-out tokens (their ids), each kept for the keep time",
    )


def bucket_differs(current: StreamConfig, wanted: StreamConfig) -> list[str]:
    """The fields of the bucket's stream that are not as code says."""
    return [name for name, differs in (
        ("num_replicas", current.num_replicas != wanted.num_replicas),
        ("max_age", (current.max_age or 0) != (wanted.max_age or 0)),
        ("max_msgs_per_subject", current.max_msgs_per_subject != wanted.max_msgs_per_subject),
        ("allow_rollup_hdrs", bool(current.allow_rollup_hdrs)),
        ("allow_msg_ttl", bool(current.allow_msg_ttl)),
        ("deny_delete", not current.deny_delete),
        ("deny_purge", not current.deny_purge),
    ) if differs]


async def ensure_bucket(js: JetStreamContext, settings: Settings, *, align: bool = True) -> str:
    """The bucket's stream made when missing, or aligned; says which (``created``,
    ``unchanged``, ``updated: <fields>``, ``made again: <fields>``, or without ``align``, a
    service's start, ``differs: <fields>`` with a warning: a service's user may create the
    bucket but not update it, docs/security.md).

    A stream made with ``allow_msg_ttl`` (nats-py's ``create_key_value``, before stop 56)
    cannot lose it by an update (the server refuses): it is made again, its entries read
    first and put back (each then kept a keep time from now, never less than before). A
    sign-out taken in between is refused by the replicas that saw it, not by a replica
    started after, and a running replica sees new ones again once nats-py has made its watch
    again (some 20 s); run it when no one signs out, as any ``ops apply``."""
    wanted = bucket_stream_config(settings)
    name = bucket_stream(settings)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(wanted)
        return "created"
    changed = bucket_differs(info.config, wanted)
    if not changed:
        return "unchanged"
    if not align:
        bus_log.warning("bus.stream_differs", stream=name, fields=changed,
                        fix="sixstep ops apply")
        return f"differs: {', '.join(changed)}"
    if not info.config.allow_msg_ttl:
        await js.update_stream(wanted)
        return f"updated: {', '.join(changed)}"
    kv = await js.key_value(bucket_name(settings))
    entries: list[tuple[str, float]] = []
    watcher = await kv.watchall()
    try:
        while (entry := await watcher.updates(timeout=10.0)) is not None:
            at = entry.created.timestamp() if entry.created else math.inf
            entries.append((entry.key, at))
    finally:
        await watcher.stop()
    # numbered on from the old one: a replica's watch (an ordered consumer) made again by
    # nats-py after it lost the stream asks for the next sequence the old one would have had
    # (from 1, it would have missed every sign-out until the numbers caught up)
    await js.delete_stream(name)
    await js.add_stream(dataclasses.replace(wanted, first_seq=info.state.last_seq + 1))
    keep = keep_s(settings)
    for key, at in entries:  # its exp for a reader (and a replica of before stop 56)
        await js.publish(f"$KV.{bucket_name(settings)}.{key}",
                         orjson.dumps({"exp": min(at + keep, 1e18)}))
    return f"made again: {', '.join(changed)} ({len(entries)} entries)"


async def revoked_bucket(nc: NATS, settings: Settings) -> KeyValue:
    """The bucket, made when missing (idempotent: every service's start asks for it)."""
    js = nc.jetstream()
    try:
        return await js.key_value(bucket_name(settings))
    except Exception:  # missing: made now (two starting at once make the same config)
        await js.add_stream(bucket_stream_config(settings))
        return await js.key_value(bucket_name(settings))


async def revoke(nc: NATS, settings: Settings, token_id: str, expires: float) -> None:
    """Put the revocation on the bus (raises when NATS does not take it)."""
    kv = await revoked_bucket(nc, settings)
    await kv.put(revocation_key(token_id), orjson.dumps({"exp": expires}))


def _apply(revoked: RevokedTokens, entry: KeyValue.Entry, keep: float) -> None:
    """Any message on a key revokes it (a put whatever its value, a delete or purge
    marker: anyone who may sign out may write them), until the message's own time plus the
    bucket's keep time."""
    if entry.created is None:
        revoked.add(entry.key, math.inf, within_s=keep)
    else:
        revoked.add(entry.key, entry.created.timestamp() + keep)


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

    checked: list[str] = []

    async def watch() -> None:
        forget = when_reconnected(nc, watch_again)
        try:
            while True:
                try:
                    if not checked:  # made when missing; one made the old way is said
                        checked.append(await ensure_bucket(nc.jetstream(), settings,
                                                           align=False))
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
                            _apply(revoked, entry, keep_s(settings))
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
