"""``sixstep ops apply``: the streams as code, applied idempotently, saying what changed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from nats.js.api import StreamConfig

from shared.bus.jetstream import connect, dead_letter_stream
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
