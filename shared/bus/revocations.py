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
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from typing import Any

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from shared.bus.connection import when_reconnected
from shared.kernel.tasks import cancel_and_wait
from shared.security.revocations import RevokedTokens, is_revocation_key, revocation_key
from shared.settings import Settings

log = structlog.get_logger("sixstep.auth")
bus_log = structlog.get_logger("sixstep.bus")

#: The least a revocation is kept on the bus: an identity provider's tokens may outlive ours.
MIN_KEEP = timedelta(hours=12)


#: The largest message the bucket takes (headers and value), bytes.
MAX_MESSAGE = 1024


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
        # a sign-out's message is some 30 bytes: any service's 1 MB ones (500 of them in 4 s)
        # filled the JetStream store the event log shares, and each start read them whole
        max_msg_size=MAX_MESSAGE,
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
        ("max_msg_size", current.max_msg_size != wanted.max_msg_size),
        ("allow_rollup_hdrs", bool(current.allow_rollup_hdrs)),
        ("allow_msg_ttl", bool(current.allow_msg_ttl)),
        ("deny_delete", not current.deny_delete),
        ("deny_purge", not current.deny_purge),
    ) if differs]


def remake_bucket(settings: Settings) -> str:
    """The bucket ``ops apply`` keeps a bucket's entries in while it makes it again (only the
    operators' user writes it): what a run cut short, or a service's start in between,
    would otherwise have lost."""
    return f"{bucket_name(settings)}_again"


#: The remake bucket's last key (no token's key has an ``=``): every entry is in, and the
#: number the bucket's stream goes on from.
_COMPLETE = "=complete"


class BucketBeingRemade(RuntimeError):
    """``sixstep ops apply`` is making the bucket again (or a run of it was cut short): a
    start that read it now would miss revocations, one that made it would empty it."""


async def being_remade(js: JetStreamContext, settings: Settings) -> bool:
    try:
        await js.stream_info(f"KV_{remake_bucket(settings)}")
    except NotFoundError:
        return False
    return True


def _remade_error(settings: Settings) -> BucketBeingRemade:
    return BucketBeingRemade(
        f"the bucket {bucket_name(settings)} is being made again (KV_{remake_bucket(settings)} "
        "holds its entries meanwhile): sixstep ops apply ends it")


async def _entries(js: JetStreamContext, bucket: str, *, values: bool = False
                   ) -> dict[str, Any]:
    """Each key's message time, or (``values``: the remake bucket's) its value, read
    :data:`WINDOW` messages a fetch (a pull consumer's): a watch (nats-py's ordered push
    consumer) took the whole bucket into its subscription's queue at once (94,743 of
    100,000 messages waiting, some 50 MB), whatever the consumer of the queue read."""
    prefix = f"$KV.{bucket}."
    sub = await js.pull_subscribe(f"{prefix}>", stream=f"KV_{bucket}", config=ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0, mem_storage=True))
    entries: dict[str, Any] = {}
    consumer = None
    try:
        consumer = await sub.consumer_info()
        pending = consumer.num_pending
        while pending:
            for msg in await sub.fetch(WINDOW, timeout=10.0):
                meta = msg.metadata
                entries[msg.subject[len(prefix):]] = (
                    msg.data or b"{}" if values else meta.timestamp.timestamp())
                pending = meta.num_pending
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if consumer is not None:  # else gone by itself a minute after
            with contextlib.suppress(Exception):
                await js.delete_consumer(f"KV_{bucket}", consumer.name)
    return entries


#: Publishes awaiting their acks at once, and values made ahead of their publish: orjson
#: (3.12 on) keeps a ~4 kB buffer behind each value it makes, whatever its length, so the
#: 100,000 entries' values made at once held ~400 MB (the ops-apply job's limit is 256Mi)
WINDOW = 500


async def _publish_all(js: JetStreamContext, subject: str,
                       entries: Iterable[tuple[str, bytes]]) -> None:
    """``subject.<key>`` = value for each, made as they go: at most :data:`WINDOW` values
    made and not yet acknowledged, their acks awaited a window at a time."""
    window: list[Awaitable[Any]] = []
    for key, value in entries:
        window.append(js.publish(f"{subject}.{key}", value))
        if len(window) == WINDOW:
            await asyncio.gather(*window)
            window.clear()
    await asyncio.gather(*window)


async def ensure_bucket(js: JetStreamContext, settings: Settings, *, align: bool = True) -> str:
    """The bucket's stream made when missing, or aligned; says which (``created``,
    ``unchanged``, ``updated: <fields>``, ``made again: <fields>``, or without ``align``, a
    service's start, ``differs: <fields>`` with a warning: a service's user may create the
    bucket but not update it, docs/security.md).

    A stream made with ``allow_msg_ttl`` (nats-py's ``create_key_value``, before stop 56)
    cannot lose it by an update (the server refuses): it is made again, its entries put back
    (each then kept a keep time from now, never less than before). They are first written to
    the bucket :func:`remake_bucket` (then ``=complete``), and only then is the old stream
    deleted: a run cut short, or two at once, lose none (the next run, finding it complete,
    goes on from it); while it exists a service neither makes the bucket nor reads it as
    whole (``BucketBeingRemade``: its start waits, then exits 2). A sign-out taken in
    between is refused by the replicas that saw it, and a running replica sees new ones
    again once nats-py has made its watch again (some 20 s)."""
    wanted = bucket_stream_config(settings)
    name = bucket_stream(settings)
    remaking = await being_remade(js, settings)
    if remaking and not align:
        raise _remade_error(settings)
    info = await _stream_info(js, name)
    if not remaking:
        if info is None:
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
    return await _make_again(js, settings, info)


async def _stream_info(js: JetStreamContext, name: str) -> StreamInfo | None:
    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None


async def _make_again(js: JetStreamContext, settings: Settings, info: StreamInfo | None
                      ) -> str:
    wanted = bucket_stream_config(settings)
    name = bucket_stream(settings)
    changed = bucket_differs(info.config, wanted) if info is not None else ["missing"]
    again = await js.create_key_value(config=KeyValueConfig(
        bucket=remake_bucket(settings), history=1, storage=StorageType.FILE,
        replicas=settings.stream_replicas))
    # read only when a run cut short left some
    remade = await js.stream_info(f"KV_{remake_bucket(settings)}")
    kept = (await _entries(js, remake_bucket(settings), values=True)
            if remade.state.messages else {})
    if _COMPLETE not in kept:  # a run cut short before this point left the old one whole
        info = await _stream_info(js, name)  # as it is now: another run may have made it
        if info is None:
            raise _remade_error(settings)  # nothing to make it from: said, never emptied
        kept = {key: at for key, at in (await _entries(
            js, bucket_name(settings))).items() if is_revocation_key(key)}
        await _publish_all(js, f"$KV.{remake_bucket(settings)}", (  # a revocation's start
            (key, orjson.dumps({"at": at})) for key, at in kept.items()))
        # numbered on from the old one: a replica's watch (an ordered consumer) made again
        # by nats-py after it lost the stream asks for the next sequence the old one would
        # have had (from 1, it would have missed every sign-out until the numbers caught up)
        first_seq = info.state.last_seq + 1
        await again.put(_COMPLETE, orjson.dumps({"first_seq": first_seq}))
    else:  # a run cut short after: the remake bucket holds every entry
        first_seq = int(orjson.loads(kept.pop(_COMPLETE))["first_seq"])
        kept = {key: float(orjson.loads(value)["at"]) for key, value in kept.items()}
    # deleted only as it is now: a run at once, that found the old one, deleted a new one
    # another had made and was filling (5,000 of 5,000 entries lost)
    if (now := await _stream_info(js, name)) is not None and bucket_differs(now.config, wanted):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    try:
        await js.add_stream(dataclasses.replace(wanted, first_seq=first_seq))
    except BadRequestError:  # there already: made by another run at once (or a service)
        made = await js.stream_info(name)
        if changed_now := bucket_differs(made.config, wanted):
            raise RuntimeError(f"{name} was made meanwhile, not as sixstep makes it "
                               f"({', '.join(changed_now)}): run sixstep ops apply again"
                               ) from None
    keep = keep_s(settings)
    await _publish_all(js, f"$KV.{bucket_name(settings)}", (  # exp for a reader (and a
        (key, orjson.dumps({"exp": min(float(at) + keep, 1e18)}))  # replica before stop 56)
        for key, at in kept.items()))
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(f"KV_{remake_bucket(settings)}")
    return f"made again: {', '.join(changed)} ({len(kept)} entries)"


async def revoked_bucket(nc: NATS, settings: Settings) -> KeyValue:
    """The bucket, made when missing (idempotent: every service's start asks for it); not
    while ``ops apply`` makes it again (``BucketBeingRemade``: it would be made empty)."""
    js = nc.jetstream()
    try:
        return await js.key_value(bucket_name(settings))
    except Exception:  # missing: made now (two starting at once make the same config)
        if await being_remade(js, settings):
            raise _remade_error(settings) from None
        await js.add_stream(bucket_stream_config(settings))
        return await js.key_value(bucket_name(settings))


async def revoke(nc: NATS, settings: Settings, token_id: str, expires: float) -> None:
    """Put the revocation on the bus (raises when NATS does not take it)."""
    kv = await revoked_bucket(nc, settings)
    await kv.put(revocation_key(token_id), orjson.dumps({"exp": expires}))


def _apply(revoked: RevokedTokens, entry: KeyValue.Entry, keep: float) -> None:
    """Any message on a key revokes it (a put whatever its value, a delete or purge
    marker: anyone who may sign out may write them), until the message's own time plus the
    bucket's keep time. A key no token has (``is_revocation_key``) is not held: it would be
    memory only, up to 4 kB a key a replica, of what any service may write."""
    if not is_revocation_key(entry.key):
        return
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
                        if checked[0].startswith("differs: "):
                            revoked.bucket_differs = checked[0][len("differs: "):].split(", ")
                    kv = await revoked_bucket(nc, settings)
                    watcher = await kv.watchall()
                    watching[:] = [watcher]
                    try:
                        while True:
                            entry = await watcher.updates(timeout=None)
                            if entry is KeyValue.KeyWatcher.STOP_ITER:  # stopped: watch_again
                                break
                            if entry is None:  # the bucket as it was, all delivered
                                if not loaded.done() and await being_remade(
                                        nc.jetstream(), settings):  # only part of it, maybe
                                    raise _remade_error(settings)
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
