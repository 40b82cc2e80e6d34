"""`make run` applies the stream definitions before its services start, as the ops-apply job
does in compose and Kubernetes: a service creates a missing stream but never updates one (the
shipped NATS forbids a service's user to: docs/security.md), and `.state` kept from an older
checkout may hold a stream defined otherwise (a subject added since, its events refused)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.bus.jetstream import connect, stream_config
from shared.settings import Settings
from tools.devservers import NatsServer

REPO = Path(__file__).resolve().parents[2]


async def _subjects(settings: Settings, *, make: list[str] | None = None) -> set[str]:
    nc = await connect(settings, "make-run-streams-test")
    try:
        js = nc.jetstream()
        if make is not None:
            config = stream_config(settings)
            config.subjects = make
            await js.add_stream(config)
        info = await js.stream_info(settings.stream_name)
        return set(info.config.subjects or [])
    finally:
        await nc.close()


def test_make_run_aligns_a_stream_an_older_checkout_left(
        tmp_path: Path, postgres_server_url: str) -> None:
    nats = NatsServer(tmp_path / "nats-data")
    nats.start()
    try:
        settings = Settings(nats_url=nats.url, stream_name="SIXSTEP", subject_prefix="sixstep")
        shipped = set(stream_config(settings).subjects or [])
        older = ["sixstep.intake.>"]  # an older checkout's stream: one service's subjects
        assert asyncio.run(_subjects(settings, make=older)) == set(older) != shipped
        env = {**os.environ, "DATABASE_URL": postgres_server_url, "NATS_URL": nats.url,
               "LOG_JSON": "false", "PYTHONPATH": str(REPO)}
        for name in ("ENVIRONMENT", "STREAM_NAME", "SUBJECT_PREFIX", "SCHEMA_PREFIX"):
            env.pop(name, None)
        log = tmp_path / "make-run.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tools.run", "--no-services", "--state-dir",
                 str(tmp_path / "state")], cwd=tmp_path, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while "sixstep is running" not in log.read_text():  # the barrier: its table
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert "streams: SIXSTEP updated: subjects" in log.read_text(), log.read_text()
            assert asyncio.run(_subjects(settings)) == shipped
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()
    finally:
        nats.stop()
