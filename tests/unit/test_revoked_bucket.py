"""The bucket of revoked tokens (``shared.bus.revocations``) is kept like the event stream: on
a three-node cluster (``STREAM_REPLICAS=3``, deploy/compose.yaml) it survives the loss of one
node. At one replica, the node holding it gone, every sign-out answered 503 and every service
starting waited on the bucket for ever."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
from nats.js.api import KeyValueConfig

from shared.bus.revocations import revoked_bucket
from shared.security.principals import Role
from shared.security.revocations import RevokedTokens, revocation_key
from shared.security.tokens import TokenKeys
from shared.settings import Settings
from tests.support import token_for


class _JetStream:
    def __init__(self) -> None:
        self.made: list[KeyValueConfig] = []

    async def key_value(self, bucket: str) -> Any:
        raise LookupError(bucket)  # missing: made now

    async def create_key_value(self, config: KeyValueConfig) -> Any:
        self.made.append(config)
        return object()


class _Nats:
    def __init__(self) -> None:
        self.js = _JetStream()

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
