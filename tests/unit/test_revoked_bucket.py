"""The bucket of revoked tokens (``shared.bus.revocations``) is kept like the event stream: on
a three-node cluster (``STREAM_REPLICAS=3``, deploy/compose.yaml) it survives the loss of one
node. At one replica, the node holding it gone, every sign-out answered 503 and every service
starting waited on the bucket for ever."""

from __future__ import annotations

from typing import Any

from nats.js.api import KeyValueConfig

from shared.bus.revocations import revoked_bucket
from shared.settings import Settings


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
