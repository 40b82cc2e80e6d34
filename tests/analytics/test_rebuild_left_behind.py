"""What a ``sixstep rebuild`` leaves behind when it is killed, refused or cut off, as the
operator meets it at the terminal: a run killed with kill -9 while its index waited (a long
sort) lets go of the read model at once; ``--all`` refused at one read model, or waiting for
it, holds none of the others; ``--fresh`` waiting to drop a staging schema says for whom;
NATS gone mid-run is one line and an exit, not a flood."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import psycopg
import pytest

from shared.analytics.rebuild import (
    BOOKKEEPING,
    CLIENT_CHECK_MS,
    Rebuild,
    failed_at,
    q,
    split_indexes,
)
from shared.analytics.replay import Batch
from shared.readmodels.readmodel import load_read_model, registered
from shared.settings import Settings
from tests.analytics.test_bulk_rebuild import publish, untidy_log
from tests.analytics.test_rebuild_lock import until
from tests.analytics.test_rebuild_operator import Running, environment, stopped_early
from tests.cli.in_process import ran
from tools.devservers import NatsServer

INTAKE = load_read_model("intake")
WAITING_IN_CREATE_INDEX = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'sixstep-rebuild intake-cases' AND query LIKE 'CREATE INDEX%%'"
    " AND wait_event_type = 'Lock'")


def second_index() -> str:
    """The name of the second index put off (``CREATE INDEX IF NOT EXISTS <name> ON``)."""
    return split_indexes(INTAKE)[1][1].split()[5]


@contextlib.contextmanager
def making_an_index(settings: Settings, env: dict[str, str], staging: str
                    ) -> Iterator[tuple[Running, psycopg.Connection, psycopg.Connection, int]]:
    """``sixstep rebuild intake`` resuming ``staging``, once its second index's CREATE INDEX
    waits (on a relation of that name another session made and has not committed: as on a
    long sort): the run, a session to watch with, the blocking one and the run's backend."""
    with psycopg.connect(settings.database_url) as blocker, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        blocker.execute(f"CREATE TABLE {q(staging)}.{second_index()} ()")
        rebuild = Running(env, "rebuild", "intake", "--batch", "16")
        try:
            until("the run waits while making an index",
                  lambda: watch.execute(WAITING_IN_CREATE_INDEX).fetchone(), rebuild)
            yield rebuild, watch, blocker, watch.execute(WAITING_IN_CREATE_INDEX).fetchone()[0]
        finally:
            rebuild.stop()


def test_a_rebuild_killed_while_making_an_index_lets_go_of_the_read_model_at_once(
        settings: Settings, tmp_path: Path) -> None:
    """``sixstep rebuild intake`` is sorting an index (here: waiting for it, as on a long
    sort) when its pod is evicted (kill -9). Its CREATE INDEX went on on the server, and
    with it the session's rebuild lock: the next run was refused, or waited, until the sort
    ended. Now the server sees the client gone and ends the session, lock and all, while
    the sort still could not end; the next run resumes and switches."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    key = Rebuild(settings, INTAKE).lock_key
    with making_an_index(settings, env, staging) as (killed, watch, blocker, backend):
        try:
            killed.proc.kill()  # kill -9, by its pid
            killed.proc.wait()
        finally:
            killed.stop()
        # The barrier: the server's own view. Before, the backend stayed until the blocker
        # went (the sort's end), holding the lock the whole time.
        until("the killed run's session ends while its index still cannot be made",
              lambda: not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                        (backend,)).fetchone()[0])
        assert watch.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                             (key,)).fetchone()[0]
        watch.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        blocker.rollback()
    again = ran(["rebuild", "intake", "--batch", "16"], env=env)
    assert again.code == 0, again
    assert f"intake: resuming {staging}" in again.err and "switched intake" in again.err, again


def test_rebuild_all_refused_or_waiting_at_one_read_model_holds_none_of_the_others(
        settings: Settings, tmp_path: Path) -> None:
    """Another run holds the last read model's lock. ``sixstep rebuild --all`` was refused
    there only after it had begun a staging schema for every read model before it, and
    with ``--wait`` it waited holding all their locks: the analyst's ``sixstep rebuild
    feedback`` meanwhile was refused (75), naming the --all run. Now --all takes every lock
    or none: refused, it has begun nothing; waiting, it holds nothing, the single run goes
    through, and --all switches them all once the other run has ended."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    *earlier, last = sorted(registered())
    key = Rebuild(settings, load_read_model(last)).lock_key
    app = f"sixstep-rebuild {load_read_model(last).consumer}"
    live = settings.schema_prefix
    begun = ("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s",
             (f"{live}%\\_\\_rb\\_%",))
    with psycopg.connect(settings.database_url, autocommit=True,
                         application_name=app) as other, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        refused = ran(["rebuild", "--all"], env=env)
        assert refused.code == 75, refused
        assert watch.execute(*begun).fetchone()[0] == 0, "refused, yet staging begun"

        waiting = Running(env, "rebuild", "--all", "--wait", "--batch", "16")
        try:
            until("the --all run waits for the last read model's lock", lambda: watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = %s"
                " AND a.pid <> %s", (app, other.info.backend_pid)).fetchone()[0], waiting)
            assert not watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND a.application_name LIKE 'sixstep-rebuild %%' AND a.pid <> %s",
                (other.info.backend_pid,)).fetchone()[0], "--all holds locks while waiting"
            single = ran(["rebuild", earlier[0], "--batch", "16"], env=env)
            assert single.code == 0, single
            assert f"switched {earlier[0]}" in single.err, single
            other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            assert waiting.proc.wait(120) == 0, waiting.err
        finally:
            waiting.stop()
        assert "waiting for another rebuild of it to end" in waiting.err, waiting.err
        assert all(f"switched {name}:" in waiting.err for name in registered()), waiting.err


def test_rebuild_fresh_waiting_to_drop_a_staging_schema_says_for_whom(
        settings: Settings, tmp_path: Path) -> None:
    """A session still holds a table of the staging schema a killed run left (a DBA's
    look at a dry run's rows, or the killed run's own CREATE INDEX on a server that cannot
    see its client gone). ``sixstep rebuild intake --fresh`` waited to drop it, silently:
    now it says which session (pid, application, what it is doing) holds which tables, how
    long it has waited, and how to end it; once that session lets go it builds anew and
    switches."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    with psycopg.connect(settings.database_url, application_name="psql") as reader:
        reader.execute(f"SELECT count(*) FROM {q(staging)}.cases")  # a transaction left open
        pid = reader.info.backend_pid
        fresh = Running(env, "rebuild", "intake", "--fresh", "--batch", "16")
        try:
            until("the --fresh run says what its drop waits for", lambda: any(
                "dropping" in line for line in fresh.lines), fresh)
            reader.rollback()
            assert fresh.proc.wait(120) == 0, fresh.err
        finally:
            fresh.stop()
    said = " ".join(fresh.err.split())
    assert f"intake: dropping {staging} waits (" in said, said
    assert f"s so far) for pid {pid}, psql" in said and "holding cases" in said, said
    assert f"pg_terminate_backend({pid}) ends it" in said, said
    assert "intake: building" in said and "switched intake" in said, said


def test_nats_gone_during_a_rebuild_is_one_line_and_an_exit(
        settings: Settings, tmp_path: Path) -> None:
    """NATS stops while ``sixstep rebuild intake`` makes its indexes. The client tried
    again every half second, a warning line each time, until its requests timed out; now
    the run ends at its next question to the bus with one line that says NATS went and
    what to do, exit 1, and resumes once NATS is back."""
    with NatsServer(tmp_path / "nats") as nats:
        own = settings.model_copy(update={"nats_url": nats.url})
        asyncio.run(publish(own, untidy_log()))
        env = environment(own, tmp_path)
        staging = stopped_early(own, "intake")
        with making_an_index(settings, env, staging) as (rebuild, _, blocker, _):
            try:
                nats.stop()  # returns once the server has exited
                blocker.rollback()
                code = rebuild.proc.wait(120)
            finally:
                rebuild.stop()
        lines = rebuild.lines
        assert code == 1, rebuild.err
        assert not [x for x in lines if x.lstrip().startswith("nats:")], rebuild.err
        said = " ".join(rebuild.err.split())
        assert "intake: switching failed: NATS" in said, said
        assert "once NATS answers again, run the same command: it resumes" in said, said
        assert "Traceback" not in said, said
        nats.start()
        again = ran(["rebuild", "intake", "--batch", "16"], env=env)
        assert again.code == 0, again
        assert f"intake: resuming {staging}" in again.err, again
        assert "switched intake" in again.err, again


def test_ctrl_c_while_fresh_waits_to_drop_exits_130_keeping_the_staging_schema(
        settings: Settings, tmp_path: Path) -> None:
    """The operator gives up on the wait the line announced: Ctrl-C exits 130 naming the
    session waited for, the staging schema kept as it was."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    with psycopg.connect(settings.database_url, application_name="psql") as reader, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        reader.execute(f"SELECT count(*) FROM {q(staging)}.cases")
        fresh = Running(env, "rebuild", "intake", "--fresh")
        try:
            until("the --fresh run says what its drop waits for", lambda: any(
                "dropping" in line for line in fresh.lines), fresh)
            fresh.proc.send_signal(signal.SIGINT)
            assert fresh.proc.wait(60) == 130, fresh.err
        finally:
            fresh.stop()
            reader.rollback()
        said = " ".join(fresh.err.split())
        assert f"intake: stopped while dropping {staging}, waiting for pid" in said, said
        assert "stopping after this batch" not in said, said
        assert "Traceback" not in said, said
        assert watch.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                             (staging,)).fetchone()[0] == 1


def test_fresh_says_again_only_every_10_s_while_a_busy_reader_holds_the_staging_schema(
        settings: Settings, tmp_path: Path) -> None:
    """A DBA's psql keeps its transaction on a dry run's tables and goes on querying in it.
    ``--fresh``'s drop said whom it waited for again at its next look (2 s) after each of
    the DBA's statements (the session's state and since changed the line), a line every
    2 s; now it says it again every 10 s while the same session holds it. The line names
    the session, never what it queries (a clerk's query may hold a resident's name)."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    dropping = ("SELECT query_start FROM pg_stat_activity WHERE application_name ="
                " 'sixstep-rebuild intake-cases' AND query LIKE 'DROP SCHEMA%%'"
                " AND query_start > %s")
    with psycopg.connect(settings.database_url, application_name="psql") as reader, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        reader.execute(f"SELECT count(*) FROM {q(staging)}.cases WHERE 'Wang Xiuying' <> ''")
        fresh = Running(env, "rebuild", "intake", "--fresh", "--batch", "16")
        try:
            until("the --fresh run says what its drop waits for", lambda: any(
                "dropping" in line for line in fresh.lines), fresh)
            reader.execute("SELECT 1")  # the DBA's next statement, in the same transaction
            asked = watch.execute("SELECT state_change FROM pg_stat_activity WHERE pid = %s",
                                  (reader.info.backend_pid,)).fetchone()[0]
            # The barrier: a drop tried after it, then the next one (the look between them,
            # and its line if any, is done).
            until("a drop tried after the DBA's statement", lambda: watch.execute(
                dropping, (asked,)).fetchone(), fresh)
            tried = watch.execute(dropping, (asked,)).fetchone()[0]
            until("the drop tried once more", lambda: watch.execute(
                dropping, (tried,)).fetchone(), fresh)
            reader.rollback()
            assert fresh.proc.wait(120) == 0, fresh.err
        finally:
            fresh.stop()
    said = " ".join(fresh.err.split())
    waited = [int(line.split(" waits (")[1].split(" s so far")[0])
              for line in fresh.lines if f"dropping {staging} waits (" in line]
    assert waited, said
    assert all(b - a >= 9 for a, b in itertools.pairwise(waited)), said
    assert "Wang Xiuying" not in said and "SELECT" not in said, said
    assert "switched intake" in said, said


async def test_a_live_client_slower_than_the_check_interval_keeps_its_session(
        settings: Settings) -> None:
    """The check interval asks whether the client's socket was closed, not whether the
    client is quick: a rebuild's statement that runs on the server for longer than
    ``CLIENT_CHECK_MS`` (a long sort on a busy host) while its client, alive, waits is
    not ended; it ends on its own, the session and its lock still there."""
    async with Rebuild(settings, INTAKE) as rb:
        assert await rb.conn.fetchval("SHOW client_connection_check_interval") == (
            f"{CLIENT_CHECK_MS // 1000}s")
        await rb.hold()
        # The statement itself outlasts two checks: the barrier is the server's own clock.
        assert await rb.conn.fetchval(
            "SELECT 1 FROM pg_sleep($1::float8 / 1000 * 2.5)", CLIENT_CHECK_MS) == 1
        assert await rb.holder() is not None
        assert (await rb.holder()).pid == await rb.conn.fetchval("SELECT pg_backend_pid()")



def rows_of(settings: Settings, schema: str) -> dict[str, list[str]]:
    """Every read model table of ``schema``, its rows as text, sorted, without the columns
    that say when a row was written (bookkeeping apart)."""
    with psycopg.connect(settings.database_url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))
            if t not in BOOKKEEPING]
        return {t: sorted(str({k: v for k, v in zip(
            [c.name for c in cur.description or []], row, strict=True)
            if k not in INTAKE.volatile}) for row in cur.fetchall())
            for t in tables for cur in [conn.execute(f"SELECT * FROM {q(schema)}.{q(t)}")]}


async def test_a_rebuild_cut_off_by_nats_mid_log_resumes_exactly(
        settings: Settings, tmp_path: Path) -> None:
    """NATS goes after the first batch of a long catch-up (a blip: the rebuild's connection
    no longer reconnects, so the run ends). The run resumed once NATS is back holds exactly
    what a run never cut off holds: no event applied twice, none skipped."""
    with NatsServer(tmp_path / "nats") as server:
        own = settings.model_copy(update={"nats_url": server.url})
        await publish(own, untidy_log())
        batches: list[int] = []

        def first_batch_then_nats_goes(_: object, batch: Batch) -> None:
            batches.append(batch.last_seq)
            if len(batches) == 1:
                server.stop()  # returns once the server has exited

        async with Rebuild(own, INTAKE, batch_size=16,
                           on_batch=first_batch_then_nats_goes) as cut:
            staging = await cut.prepare(fresh=True)
            with pytest.raises(nats.errors.Error) as failed:
                await cut.catch_up()
            done = (await cut.state())["last_seq"]
        assert failed_at(failed.value) is not None, failed.value
        server.start()
        async with Rebuild(own, INTAKE, batch_size=16) as resumed:
            assert await resumed.prepare() == staging
            last = await resumed.catch_up()
            state = dict(await resumed.state())
        assert 0 < done < last, (done, last)
        resumed_rows = rows_of(own, staging)
        async with Rebuild(own, INTAKE, batch_size=16) as whole:
            other = await whole.prepare(fresh=True)
            assert await whole.catch_up() == last
            assert dict(await whole.state()) == state
        assert rows_of(own, other) == resumed_rows
        assert sum(map(len, resumed_rows.values())) > 0


def test_two_operators_rebuild_all_waiting_at_once_both_end(
        settings: Settings, tmp_path: Path) -> None:
    """Two operators give ``sixstep rebuild --all --wait`` at the same moment. Each takes
    the read models' locks in the same order, and waits only holding none: neither holds
    one the other waits for while it waits (no deadlock between advisory locks), so one
    switches them all, then the other does."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    first = load_read_model(sorted(registered())[0])
    key = Rebuild(settings, first).lock_key
    waiting = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
               " AND database = (SELECT oid FROM pg_database"
               " WHERE datname = current_database())")
    with psycopg.connect(settings.database_url, autocommit=True) as other:
        # The barrier: both wait for the first read model's lock, then race for them all.
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        runs = [Running(env, "rebuild", "--all", "--wait", "--batch", "16") for _ in range(2)]
        try:
            until("both runs wait for the first read model", lambda: other.execute(
                waiting).fetchone()[0] == 2)
            other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            codes = [run.proc.wait(300) for run in runs]
        finally:
            for run in runs:
                run.stop()
    assert codes == [0, 0], "\n---\n".join(run.err for run in runs)
    for run in runs:
        assert all(f"switched {name}:" in run.err for name in registered()), run.err
