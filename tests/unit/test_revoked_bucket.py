"""The bucket of revoked tokens (``shared.bus.revocations``) is kept like the event stream: on
a three-node cluster (``STREAM_REPLICAS=3``, deploy/compose.yaml) it survives the loss of one
node. At one replica, the node holding it gone, every sign-out answered 503 and every service
starting waited on the bucket for ever."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import jwt
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from shared.bus.revocations import keep_s, load_and_watch, revoked_bucket
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
    def __init__(self, values: dict[str, bytes]) -> None:
        self.values = values

    async def watchall(self) -> _Watcher:
        return _Watcher([KeyValue.Entry("b", key, value, 1, 0, None, None)
                         for key, value in self.values.items()])


class _JetStream:
    def __init__(self, bucket: _Bucket | None = None) -> None:
        self.made: list[KeyValueConfig] = []
        self.bucket = bucket

    async def key_value(self, bucket: str) -> Any:
        if self.bucket is not None:
            return self.bucket
        raise LookupError(bucket)  # missing: made now

    async def create_key_value(self, config: KeyValueConfig) -> Any:
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
        assert config.replicas == replicas
        assert config.bucket == f"{settings.stream_name}_revoked_tokens"


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


async def test_a_revocation_of_the_far_future_ends_with_the_bucket_keep_time() -> None:
    """A value's ``exp`` is the writer's word: ``1e300`` or ``"inf"`` (anyone who may put into
    the bucket) held the revocation in every running replica's memory for ever, and in
    /ready's count. It lasts no longer than the bucket keeps it; a sound one keeps its ``exp``."""
    settings = Settings().model_copy(update={"auth_token_minutes": 60})
    now = [1_000_000.0]
    revoked = RevokedTokens(now=lambda: now[0])
    nc = _Nats(_Bucket({"far": b'{"exp": 1e300}', "inf": b'{"exp": "inf"}',
                        "nan": b'{"exp": "nan"}', "sound": b'{"exp": 1003600.0}'}))
    watch = await load_and_watch(nc, settings, revoked)  # type: ignore[arg-type]
    try:
        assert keep_s(settings) == 12 * 3600 + 300  # the bucket's own: at least 12 h, + 5 min
        assert len(revoked) == 3 and not revoked.revoked("nan")
        now[0] += 3600 + LEEWAY_S
        assert revoked.revoked("far") and revoked.revoked("inf")
        assert not revoked.revoked("sound")
        now[0] = 1_000_000.0 + keep_s(settings) + LEEWAY_S
        assert not revoked.revoked("far") and not revoked.revoked("inf")
        assert len(revoked) == 0
    finally:
        await cancel_and_wait(watch)
