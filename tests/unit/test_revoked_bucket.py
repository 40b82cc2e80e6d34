"""The bucket of revoked tokens (``shared.bus.revocations``) is kept like the event stream: on
a three-node cluster (``STREAM_REPLICAS=3``, deploy/compose.yaml) it survives the loss of one
node. At one replica, the node holding it gone, every sign-out answered 503 and every service
starting waited on the bucket for ever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from nats.errors import NoRespondersError
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from structlog.testing import capture_logs

from shared.bus.revocations import (
    RevocationsUnread,
    bucket_stream_config,
    keep_s,
    load_and_watch,
    revoked_bucket,
)
from shared.kernel.tasks import cancel_and_wait
from shared.security.principals import Role
from shared.security.revocations import RevokedTokens, revocation_key
from shared.security.tokens import LEEWAY_S, TokenKeys
from shared.settings import Settings
from tests.support import token_for


class _Watcher:
    """The bucket's entries, then None (all delivered), then nothing more."""

    def __init__(self, entries: list[KeyValue.Entry]) -> None:
        self.entries: list[KeyValue.Entry | None] = [*entries, None]

    async def updates(self, timeout: float | None = None) -> KeyValue.Entry | None:
        if not self.entries:
            await asyncio.Event().wait()
        return self.entries.pop(0)

    async def stop(self) -> None:
        pass


class _Bucket:
    def __init__(self, values: dict[str, bytes], at: float | None = None,
                 operation: str | None = None) -> None:
        self.values = values
        self.at = None if at is None else datetime.fromtimestamp(at, UTC)
        self.operation = operation

    async def watchall(self) -> _Watcher:
        return _Watcher([KeyValue.Entry("b", key, value, 1, 0, self.at, self.operation)
                         for key, value in self.values.items()])


class _JetStream:
    def __init__(self, bucket: _Bucket | None = None) -> None:
        self.made: list[StreamConfig] = []
        self.bucket = bucket

    async def stream_info(self, name: str) -> Any:
        if (self.bucket is None and not self.made) or name.endswith("_again"):
            raise NotFoundError  # missing (and no ops apply is making the bucket again)
        return SimpleNamespace(config=self.made[0] if self.made else bucket_stream_config(
            Settings()))

    async def key_value(self, bucket: str) -> Any:
        if self.bucket is not None:
            return self.bucket
        if self.made:
            return _Bucket({})
        raise LookupError(bucket)  # missing: made now

    async def add_stream(self, config: StreamConfig) -> Any:
        self.made.append(config)
        return object()


class _Nats:
    def __init__(self, bucket: _Bucket | None = None) -> None:
        self.js = _JetStream(bucket)

    def jetstream(self) -> _JetStream:
        return self.js


async def test_the_bucket_has_as_many_replicas_as_the_stream() -> None:
    for replicas in (1, 3):
        nc = _Nats()
        settings = Settings().model_copy(update={"stream_replicas": replicas})
        await revoked_bucket(nc, settings)  # type: ignore[arg-type]
        (config,) = nc.js.made
        assert config.num_replicas == replicas
        assert config.name == f"KV_{settings.stream_name}_revoked_tokens"


def test_a_token_in_its_leeway_past_exp_stays_revoked(settings: Settings) -> None:
    """A token is verified until ``exp`` plus the leeway (30 s): a revocation forgotten at
    ``exp`` let a signed-out token in again for those 30 s, and a sign-out within them was not
    kept at all."""
    token = token_for(settings, Role.CLERK, sub="clerk-017", ttl=timedelta(seconds=-10))
    principal = TokenKeys.from_settings(settings).verify(token)  # still accepted
    assert principal.token_id
    expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    revoked = RevokedTokens()
    revoked.add(revocation_key(principal.token_id), expires)
    assert revoked.revoked(principal.token_id)
    assert len(revoked) == 1


def test_a_revocation_the_bus_did_not_take_is_not_on_the_bus() -> None:
    """A sign-out answered 503 leaves its token refused on the replica asked only: a sign-out
    again must try the bus again, not answer the idempotent 204 (``on_bus``)."""
    revoked = RevokedTokens(now=lambda: 1_000.0)
    revoked.add("a1b2", 1_060.0, on_bus=False)
    assert revoked.revoked("a1b2") and not revoked.on_bus("a1b2")
    revoked.add("a1b2", 1_060.0)  # the bus took it (the retry, or the watch delivering it)
    assert revoked.on_bus("a1b2")
    revoked.add("a1b2", 1_060.0, on_bus=False)  # a later local add does not unshare it
    assert revoked.on_bus("a1b2")


async def test_a_revocation_lasts_the_bucket_keep_time_from_its_message_whatever_its_value(
        ) -> None:
    """A value is the writer's word, and every service may write the bucket: ``{"exp": 0}``
    put over a sign-out made a replica started after forget it at once (the token worked
    again), ``1e300`` or ``"inf"`` held it for ever. Every message on a key (a put whatever its
    value, a delete or a purge marker) revokes it until the message's own time plus the
    bucket's keep time, then it is forgotten (memory is bounded)."""
    settings = Settings().model_copy(update={"auth_token_minutes": 60})
    assert keep_s(settings) == 12 * 3600 + 300  # the bucket's own: at least 12 h, + 5 min
    sent = 1_000_000.0  # the messages' time (the server's)
    values = {"far": b'{"exp": 1e300}', "inf": b'{"exp": "inf"}', "nan": b'{"exp": "nan"}',
              "zero": b'{"exp": 0}', "sound": b'{"exp": 1003600.0}', "empty": b""}
    for operation in (None, "DEL", "PURGE"):
        now = [sent + 600]  # a replica started ten minutes after
        revoked = RevokedTokens(now=lambda: now[0])  # noqa: B023 (read within the loop)
        nc = _Nats(_Bucket(values, at=sent, operation=operation))
        watch = await load_and_watch(nc, settings, revoked)  # type: ignore[arg-type]
        try:
            assert len(revoked) == len(values), operation
            now[0] = sent + keep_s(settings) + LEEWAY_S - 1
            assert all(revoked.revoked(key) for key in values), operation
            now[0] = sent + keep_s(settings) + LEEWAY_S + 1
            assert len(revoked) == 0, operation
        finally:
            await cancel_and_wait(watch)


async def test_a_flood_of_keys_no_token_has_is_not_held_by_a_replica() -> None:
    """Any service may write the bucket, keys up to a subject's 4 kB: 20,000 such keys held
    80 MB in every replica for the keep time. A key ``revocation_key`` never gives (longer
    than 64 characters, a dot) is never asked, so no replica holds it."""
    long_key, dotted = "k" * 4000, "a.b"
    nc = _Nats(_Bucket({long_key: b"{}", dotted: b"{}", "jti-1": b"{}",
                        revocation_key("x" * 100): b"{}"}, at=1_000_000.0))
    revoked = RevokedTokens(now=lambda: 1_000_060.0)
    watch = await load_and_watch(nc, Settings(), revoked)  # type: ignore[arg-type]
    try:
        assert len(revoked) == 2
        assert revoked.revoked("jti-1") and revoked.revoked("x" * 100)
    finally:
        await cancel_and_wait(watch)


class _Unreachable(_JetStream):
    """A bucket that cannot be read (its stream without a leader, NATS without JetStream)."""

    async def key_value(self, bucket: str) -> Any:
        raise NoRespondersError

    async def stream_info(self, name: str) -> Any:
        raise NoRespondersError

    async def add_stream(self, config: StreamConfig) -> Any:
        raise NoRespondersError


async def test_a_start_that_cannot_read_the_bucket_ends_with_an_error() -> None:
    """The start waited for the bucket for ever, a warning a second: the supervisor saw a
    process up and never ready, and not why. Now it ends after REVOCATIONS_READ_TIMEOUT_S with
    an error that names the bucket and the setting, and leaves no watch running."""
    settings = Settings().model_copy(update={"revocations_read_timeout_s": 0.2})
    others = set(asyncio.all_tasks())  # another test's watch on a loop the run shares
    nc = _Nats()
    nc.js = _Unreachable()
    with capture_logs() as logs, \
            pytest.raises(RevocationsUnread, match="REVOCATIONS_READ_TIMEOUT_S") as raised:
        async with asyncio.timeout(30):  # only a bound on the old code's endless wait
            await load_and_watch(nc, settings, RevokedTokens())  # type: ignore[arg-type]
    (unread,) = [line for line in logs if line["event"] == "auth.revocations_unread"]
    assert unread["log_level"] == "error" and unread["error"].startswith("NoRespondersError")
    assert f"{settings.stream_name}_revoked_tokens" in str(raised.value)
    assert "NoRespondersError" in str(raised.value)
    assert not [t for t in asyncio.all_tasks() - others if t.get_name() == "revoked-tokens"]
