"""The local servers that `make run` and the fixtures start: real processes, real clients."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import nats

from tests.support import process_gone
from tools.devservers import NatsServer, PostgresServer, ensure_servers, free_port, port_is_free


async def _publish(url: str, stream: str, payload: bytes) -> int:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        ack = await js.publish(f"{stream.lower()}.one", payload)
        return ack.seq
    finally:
        await nc.close()


def test_free_port_is_free() -> None:
    assert port_is_free(free_port())


async def test_nats_server_serves_jetstream_and_stops(tmp_path: Path) -> None:
    with NatsServer(tmp_path / "nats") as server:
        pid = server.pid
        assert pid is not None
        assert await _publish(server.url, "DEVTEST", b"hello") == 1
        assert (tmp_path / "nats" / "nats-server.log").stat().st_size > 0
    assert server.pid is None
    assert process_gone(pid)


async def test_postgres_server_serves_restarts_and_stops(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg")
    server.start()
    try:
        conn = await asyncpg.connect(server.url)
        await conn.execute("CREATE TABLE visit (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO visit VALUES (1)")
        assert await conn.fetchval("SHOW max_connections") == "200"
        assert await conn.fetchval("SHOW fsync") == "on"  # the default: make run's, benchmarks'
        await conn.close()

        first_pid = server.pid
        server.restart()
        assert server.pid not in (None, first_pid)
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT count(*) FROM visit") == 1
        await conn.close()
    finally:
        pid = server.pid
        server.stop()
    assert pid is not None
    assert server.pid is None
    assert process_gone(pid)


async def test_a_test_suites_postgres_skips_fsync_yet_keeps_what_it_committed_through_a_crash(
        tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg", durable=False)
    server.start()
    try:
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SHOW fsync") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        await conn.execute("CREATE TABLE visit (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO visit VALUES (1)")
        await conn.close()

        server.stop_immediately()  # a process crash, not an OS crash: the page cache keeps it
        server.start()
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT count(*) FROM visit") == 1
        await conn.close()
    finally:
        server.stop()


async def test_ensure_servers_keeps_data_between_runs(tmp_path: Path) -> None:
    database_url, nats_url, started = ensure_servers(tmp_path, None, None)
    try:
        assert await _publish(nats_url, "KEPT", b"first") == 1
        conn = await asyncpg.connect(database_url)
        assert await conn.fetchval("SHOW fsync") == "on"  # make run's servers stay durable
        await conn.execute("CREATE TABLE kept (id int)")
        await conn.close()
    finally:
        for server in reversed(started):
            server.stop()

    database_url, nats_url, started = ensure_servers(tmp_path, None, None)
    try:
        assert await _publish(nats_url, "KEPT", b"second") == 2
        conn = await asyncpg.connect(database_url)
        assert await conn.fetchval("SELECT count(*) FROM kept") == 0
        await conn.close()
    finally:
        for server in reversed(started):
            server.stop()


def test_ensure_servers_uses_given_urls(tmp_path: Path) -> None:
    given = ("postgresql://postgres@127.0.0.1:1/postgres", "nats://127.0.0.1:1")
    assert ensure_servers(tmp_path, *given) == (*given, [])
    assert not any(tmp_path.iterdir())


def run_with_ignored(script: str, ignored: signal.Signals) -> subprocess.CompletedProcess[str]:
    """``script`` in a Python of its own started with ``ignored`` ignored (a shell's `cmd &`
    ignores SIGINT, nohup SIGHUP), from the repository's root."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parents[2],
        preexec_fn=lambda: signal.signal(ignored, signal.SIG_IGN))


def test_ctrl_c_stops_a_process_started_with_sigint_ignored() -> None:
    """A shell script's `cmd &` starts cmd with SIGINT ignored; after ``exit_on_signals`` a
    SIGINT still ends it the Ctrl-C way (its ``finally`` blocks, then its servers, run)."""
    script = ("import os, signal, sys\n"
              "from tools.devservers import exit_on_signals\n"
              "exit_on_signals()\n"
              "try:\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    signal.pause()\n"
              "except KeyboardInterrupt:\n"
              "    print('stopped the Ctrl-C way')\n")
    done = run_with_ignored(script, signal.SIGINT)
    assert done.stdout.strip() == "stopped the Ctrl-C way", done.stderr


def test_a_test_run_under_nohup_outlives_the_terminal_but_not_a_sigterm() -> None:
    """``interrupt_on_signals`` leaves an ignored SIGHUP ignored (nohup) and still turns
    SIGTERM into Ctrl-C's KeyboardInterrupt."""
    script = ("import os, signal\n"
              "from tools.devservers import interrupt_on_signals\n"
              "interrupt_on_signals()\n"
              "os.kill(os.getpid(), signal.SIGHUP)\n"
              "print('outlived the hangup')\n"
              "try:\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    signal.pause()\n"
              "except KeyboardInterrupt:\n"
              "    print('stopped the Ctrl-C way')\n")
    done = run_with_ignored(script, signal.SIGHUP)
    assert done.stdout.split("\n")[:2] == ["outlived the hangup", "stopped the Ctrl-C way"], \
        done.stderr


def test_a_benchmark_under_nohup_outlives_the_terminal() -> None:
    """``exit_on_signals`` (make bench, its scripts) leaves an ignored SIGHUP ignored."""
    script = ("import os, signal\n"
              "from tools.devservers import exit_on_signals\n"
              "exit_on_signals()\n"
              "os.kill(os.getpid(), signal.SIGHUP)\n"
              "print('outlived the hangup')\n")
    done = run_with_ignored(script, signal.SIGHUP)
    assert done.stdout.strip() == "outlived the hangup", done.stderr


def test_only_a_test_suites_postgres_is_initialised_without_syncing_to_disk(
        tmp_path: Path) -> None:
    """initdb's own fsyncs took seconds per server the suite starts while the disk was busy;
    make run's and the benchmarks' servers keep them."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    assert "--no-sync" in PostgresServer(tmp_path / "a", durable=False).initdb_command(bindir)
    assert "--no-sync" not in PostgresServer(tmp_path / "b").initdb_command(bindir)
