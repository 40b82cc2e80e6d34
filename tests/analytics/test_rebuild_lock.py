"""Two ``sixstep rebuild`` of the same read model at once (two operators, a retried Kubernetes
Job's pod, ``--all`` beside a single one): the second is refused in one line naming the first,
or waits for it with ``--wait``; a run whose session is gone leaves no lock behind."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path

import asyncpg
import psycopg
import pytest

from shared.analytics.rebuild import Rebuild, RebuildBusy, q, split_indexes
from shared.readmodels.readmodel import load_read_model
from shared.settings import Settings
from tests.analytics.test_bulk_rebuild import publish, untidy_log
from tests.analytics.test_rebuild_operator import Running, environment, stopped_early
from tests.cli.in_process import ran

INTAKE = load_read_model("intake")


def until(what: str, check: object, proc: Running | None = None) -> None:
    """Poll ``check()`` (a barrier on the server's own view: pg_locks, pg_stat_activity)
    until it holds; the test fails if a process watched meanwhile exits, or after 120 s."""
    deadline = time.monotonic() + 120
    while not check():  # type: ignore[operator]
        if proc is not None:
            assert proc.proc.poll() is None, proc.err
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


async def test_a_second_rebuild_is_refused_and_leaves_the_first_ones_staging_schema_alone(
        settings: Settings) -> None:
    """The first operator's run was begun by the release before (another DDL) and is
    catching up; a second operator runs the new release's rebuild of the same view. It
    dropped the first's staging schema under it (upgrade48's start-over) and both wrote on;
    now the second is refused, naming the first's session, and nothing of the first's is
    touched. Once the first's session is gone (killed: its lock goes with it), the second
    resumes what it left."""
    await publish(settings, untidy_log())
    before = dataclasses.replace(INTAKE, ddl=[
        *INTAKE.ddl, "CREATE INDEX IF NOT EXISTS cases_center_status ON cases (center_id, status)"])
    async with Rebuild(settings, before, batch_size=4) as first:
        staging = await first.prepare(fresh=True)
        await first.catch_up()
        done = (await first.state())["last_seq"]
        async with Rebuild(settings, INTAKE) as second:
            with pytest.raises(RebuildBusy) as refused:
                await second.prepare()
            assert second.started_over is None and second.staging is None
            with pytest.raises(RebuildBusy):
                await second.discard()  # --discard is refused too
            holder = refused.value.holder
            assert holder.pid == first.conn.get_server_pid(), holder
            assert holder.application_name == f"sixstep-rebuild {INTAKE.consumer}", holder
            assert holder.started is not None
            assert await second.schemas() == [staging]
            assert (await first.state())["last_seq"] == done
    async with Rebuild(settings, before) as again:  # the first's session ended: no lock
        assert await again.prepare() == staging and again.resumed


async def test_a_killed_runs_lock_goes_with_its_session(settings: Settings) -> None:
    """A pod evicted mid-run: its PostgreSQL session is ended (here by the server, as
    ``pg_terminate_backend`` from the refusal's line does); the next run takes the lock and
    resumes the staging schema the killed one left."""
    await publish(settings, untidy_log())
    killed = Rebuild(settings, INTAKE, batch_size=4)
    await killed.__aenter__()
    try:
        staging = await killed.prepare(fresh=True)
        await killed.catch_up()
        async with Rebuild(settings, INTAKE) as next_run:
            with pytest.raises(RebuildBusy):
                await next_run.prepare()
            assert await next_run.conn.fetchval("SELECT pg_terminate_backend($1)",
                                                killed.conn.get_server_pid())
            until_gone = killed.conn.get_server_pid()
            while await next_run.conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", until_gone):
                await asyncio.sleep(0.05)  # the backend's exit, not a time passing
            assert await next_run.prepare() == staging and next_run.resumed
    finally:
        with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError, OSError)):
            await killed.conn.execute("SELECT 1")
        await killed.__aexit__(None, None, None)


def test_a_second_sixstep_rebuild_says_who_runs_it_and_one_with_wait_switches_after_it(
        settings: Settings, tmp_path: Path) -> None:
    """``sixstep rebuild intake`` runs (here held while making an index); a second one, and
    an ``--all`` beside it, exit 75 with one line naming the first's pid, application_name
    and start, nothing done. A third with ``--wait`` says whom it waits for, waits, and
    switches once the first has switched: two switches one after the other, each of a
    whole staging schema."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    second_index = split_indexes(INTAKE)[1][1].split()[5]
    live = settings.schema_for("intake")
    with psycopg.connect(settings.database_url) as blocker, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        blocker.execute(f"CREATE TABLE {q(staging)}.{second_index} ()")
        first = Running(env, "rebuild", "intake", "--batch", "16")
        waiter: Running | None = None
        try:
            until("the first run waits while making an index", lambda: watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'sixstep-rebuild intake-cases'"
                " AND wait_event_type = 'Lock'").fetchone()[0], first)
            pid = watch.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'sixstep-rebuild intake-cases'"
                " AND wait_event_type = 'Lock'").fetchone()[0]
            for args in (["rebuild", "intake"], ["rebuild", "--all"],
                         ["rebuild", "intake", "--discard"]):
                refused = ran(args, env=env)
                assert refused.code == 75, refused
                [line] = [x for x in refused.err.splitlines() if "another rebuild" in x]
                assert line.startswith(
                    f"intake: another rebuild of it is running (pid {pid}, sixstep-rebuild "
                    "intake-cases"), line
                assert "since 20" in line and "--wait" in line, line
                assert "Traceback" not in refused.err and "switched" not in refused.err
            assert watch.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s",
                                 (f"{live}__rb_intake-cases_%",)).fetchone()[0] == 1

            waiter = Running(env, "rebuild", "intake", "--wait", "--batch", "16")
            until("the --wait run waits for the first's lock", lambda: watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND a.application_name = 'sixstep-rebuild intake-cases'").fetchone()[0],
                waiter)
            blocker.rollback()
            assert first.proc.wait(120) == 0, first.err
            assert waiter.proc.wait(120) == 0, waiter.err
        finally:
            first.stop()
            if waiter is not None:
                waiter.stop()
        assert f"resuming {staging}" in first.err and "switched intake" in first.err
        assert f"intake: waiting for another rebuild of it to end (pid {pid}" in waiter.err
        assert "building" in waiter.err and "switched intake" in waiter.err, waiter.err
        retired = watch.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s",
                                (f"{live}__old_intake-cases_%",)).fetchone()[0]
        assert retired == 2


def test_ctrl_c_while_waiting_for_another_rebuild_exits_at_once_having_done_nothing(
        settings: Settings, tmp_path: Path) -> None:
    """A Job started with ``--wait`` behind a long rebuild is cancelled by its operator: the
    wait (a blocking pg_advisory_lock on the server) is cancelled, it exits 130 saying whom
    it waited for, and no staging schema was begun."""
    asyncio.run(publish(settings, untidy_log()))
    key = Rebuild(settings, INTAKE).lock_key
    live = settings.schema_for("intake")
    with psycopg.connect(settings.database_url, autocommit=True,
                         application_name="sixstep-rebuild intake-cases") as holder, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        pid = holder.info.backend_pid
        waiter = Running(environment(settings, tmp_path), "rebuild", "intake", "--wait")
        try:
            until("the --wait run waits for the lock", lambda: watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND a.application_name = 'sixstep-rebuild intake-cases'").fetchone()[0],
                waiter)
            waiter.proc.send_signal(signal.SIGINT)
            assert waiter.proc.wait(30) == 130, waiter.err
        finally:
            waiter.stop()
        said = " ".join(waiter.err.split())
        assert f"intake: stopped while waiting for another rebuild of it (pid {pid}, " \
            "sixstep-rebuild intake-cases" in said and "nothing done" in said, said
        assert "Traceback" not in said, said
        assert not watch.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                 " AND NOT granted").fetchone()[0]
        assert not watch.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s",
                                 (f"{live}__rb_%",)).fetchone()[0]
