"""``sixstep ops apply``: the streams as code, applied idempotently, saying what changed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.kv import KeyValue

from shared.bus import revocations
from shared.bus.jetstream import connect, dead_letter_stream
from shared.bus.revocations import bucket_name, bucket_stream, keep_s
from shared.settings import Settings
from tests.faults.harness import service_env

SIXSTEP = Path(sys.executable).parent / "sixstep"


async def ops(settings: Settings, *args: str, **env: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run, [str(SIXSTEP), "ops", *args], env=service_env(settings, **env),
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def stream(settings: Settings) -> StreamConfig:
    nc = await connect(settings, "test-ops")
    try:
        return (await nc.jetstream().stream_info(settings.stream_name)).config
    finally:
        await nc.close()


async def test_ops_apply_creates_then_leaves_alone_then_aligns_the_streams(
        settings: Settings) -> None:
    dlq = dead_letter_stream(settings)
    bucket = f"KV_{settings.stream_name}_revoked_tokens"
    first = await ops(settings, "apply")
    assert f"stream {settings.stream_name}: created" in first
    assert f"stream {dlq}: created" in first
    assert f"stream {bucket}: created" in first

    again = await ops(settings, "apply")
    assert f"stream {settings.stream_name}: unchanged" in again
    assert f"stream {dlq}: unchanged" in again
    assert f"stream {bucket}: unchanged" in again

    aged = await ops(settings, "apply", STREAM_MAX_AGE_DAYS="3650")
    assert f"stream {settings.stream_name}: updated: max_age" in aged
    config = await stream(settings)
    assert config.max_age == 3650 * 86400
    assert config.subjects == [f"{settings.subject_prefix}.>"]

    status = await ops(settings, "status", STREAM_MAX_AGE_DAYS="3650")
    assert f"stream {settings.stream_name}: 0 messages" in status


async def test_ops_apply_makes_an_old_bucket_of_many_sign_outs_again_a_window_at_a_time(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket of 2,000 sign-outs made the old way is made again by ``ops apply`` without
    holding it whole (kvmem60: 100,000 entries took the command to ~500 MB, the ops-apply
    job's limit is 256Mi, killed on every retry): no value is made more than a window ahead
    of its publish's ack (orjson keeps ~4 kB behind each value it makes), and the bucket is
    read by fetches, never by a watch (it queued the whole bucket in the client at once)."""
    entries = 4 * revocations.WINDOW
    made, acked, most_ahead, watched = [0], [0], [0], []

    def dumps(value: Any) -> bytes:
        made[0] += 1
        return orjson.dumps(value)

    monkeypatch.setattr(revocations, "orjson", SimpleNamespace(dumps=dumps, loads=orjson.loads))
    watch = KeyValue.watch

    async def watching(kv: KeyValue, *args: Any, **kwargs: Any) -> Any:
        watched.append(args)
        return await watch(kv, *args, **kwargs)

    nc = await connect(settings, "test-ops")
    try:
        js = nc.jetstream(timeout=30.0)
        await js.create_key_value(config=KeyValueConfig(  # as nats-py made it, before stop 56
            bucket=bucket_name(settings), history=1, ttl=keep_s(settings)))
        await asyncio.gather(*(js.publish(f"$KV.{bucket_name(settings)}.signed-out-{i}",
                                          b'{"exp": 1e10}') for i in range(entries)))
        publish = js.publish

        async def publish_counted(subject: str, payload: bytes = b"", **kwargs: Any) -> Any:
            most_ahead[0] = max(most_ahead[0], made[0] - acked[0])
            ack = await publish(subject, payload, **kwargs)
            acked[0] += 1
            return ack

        monkeypatch.setattr(js, "publish", publish_counted)
        monkeypatch.setattr(KeyValue, "watch", watching)
        outcome = await revocations.ensure_bucket(js, settings)
        monkeypatch.undo()
        assert outcome.endswith(f"({entries} entries)"), outcome
        assert (await js.stream_info(bucket_stream(settings))).state.messages == entries
    finally:
        await nc.close()
    assert acked[0] >= 2 * entries + 1  # the copy, its completion, the bucket again
    assert 0 < most_ahead[0] <= revocations.WINDOW
    assert watched == []
