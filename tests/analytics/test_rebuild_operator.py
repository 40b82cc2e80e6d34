"""`sixstep rebuild` as an operator meets it: Ctrl-C while the indexes are being made stops
now (and the next run makes the rest), a database error during the catch-up is one line that
says what to do, and a role with a short ``statement_timeout`` (managed PostgreSQL) still
rebuilds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import pytest

from shared.analytics.rebuild import Rebuild, q, split_indexes
from shared.readmodels.readmodel import load_read_model, make_tables, registered
from shared.settings import Settings
from tests.analytics.support import HARDSHIP, HUAMU, CaseStory, at
from tests.analytics.test_bulk_rebuild import publish, untidy_log
from tests.analytics.test_rebuild_command import by_read_model, sixstep
from tests.cli.in_process import ran

REPO = Path(__file__).resolve().parents[2]
#: A rebuild told to stop that has not exited by then waits for something: the test fails.
EXIT_S = 30.0


def environment(settings: Settings, state_dir: Path) -> dict[str, str]:
    return {"SIXSTEP_STATE_DIR": str(state_dir), "DATABASE_URL": settings.database_url,
            "NATS_URL": settings.nats_url, "STREAM_NAME": settings.stream_name,
            "SUBJECT_PREFIX": settings.subject_prefix, "SCHEMA_PREFIX": settings.schema_prefix,
            "PARTITIONS": str(settings.partitions)}


def stopped_early(settings: Settings, ref: str) -> str:
    """An earlier run of ``sixstep rebuild`` stopped before it read the log: its staging
    schema, which the next run resumes."""
    async def prepared() -> str:
        async with Rebuild(settings, load_read_model(ref)) as earlier:
            return await earlier.prepare(fresh=True)

    return asyncio.run(prepared())


class Running:
    """``sixstep ARGS`` in a process of its own, as at a terminal (Ctrl-C is SIGINT), its
    stderr read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from shared.cli import main; main()", *args], cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400", **env}, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def err(self) -> str:
        self._reader.join(5)
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def ctrl_c_once_waiting(rebuild: Running, watch: psycopg.Connection, like: str,
                        blocker: psycopg.Connection) -> tuple[int, str]:
    """Ctrl-C to ``rebuild`` once a session of it waits for a lock (``blocker``'s, given up
    after) in a statement ``LIKE`` ``like``: its exit code and its stderr, one line (the
    test fails if it has not exited ``EXIT_S`` after)."""
    try:
        deadline = time.monotonic() + 120
        while not watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'sixstep-rebuild %%' AND query LIKE %s"
                " AND wait_event_type = 'Lock'", (like,)).fetchone()[0]:
            assert rebuild.proc.poll() is None, rebuild.err
            assert time.monotonic() < deadline, rebuild.err
            time.sleep(0.1)
        rebuild.proc.send_signal(signal.SIGINT)
        try:
            code = rebuild.proc.wait(EXIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still waiting {EXIT_S:g} s after Ctrl-C (in {like!r}):\n"
                                 f"{rebuild.err}") from None
    finally:
        rebuild.stop()
        blocker.rollback()
    return code, " ".join(rebuild.err.split())  # a long line is wrapped


def test_ctrl_c_while_the_indexes_are_made_stops_now_and_the_next_run_makes_the_rest(
        settings: Settings, tmp_path: Path) -> None:
    """The operator's ``sixstep rebuild --all`` has read the log and is sorting the indexes
    put off; a large table's takes long, and the operator presses Ctrl-C. It waited for every
    CREATE INDEX to end before it exited; now the builds are cancelled on the server, what
    was made stays, it says what is left and exits 130 at once. The next run makes the rest
    and switches: every view then is what an uninterrupted rebuild builds."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    # CREATE INDEX IF NOT EXISTS <name> ON ...
    first, second, *rest = [s.split()[5] for s in split_indexes(load_read_model("intake"))[1]]
    # Another session holds a relation of the second index's name, uncommitted: that
    # CREATE INDEX waits on the catalog, as on a long sort, until the session ends.
    with psycopg.connect(settings.database_url) as blocker, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        blocker.execute(f"CREATE TABLE {q(staging)}.{second} ()")
        rebuild = Running(env, "rebuild", "--all", "--batch", "16")
        code, err = ctrl_c_once_waiting(rebuild, watch,
                                        f"CREATE INDEX IF NOT EXISTS {second} ON %", blocker)
        assert code == 130, err
        assert "stopping: cancelling the index builds" in err, err
        assert f"intake: indexes not made yet: {', '.join([second, *rest])}" in err, err
        assert "run again to resume" in err and "Traceback" not in err, err
        assert not watch.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'CREATE INDEX%' AND state = 'active'").fetchone()[0]
        made = {r[0] for r in watch.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (staging,))}
        assert first in made and second not in made, made

    code, out = sixstep(settings, tmp_path, "rebuild", "--all", "--batch", "16")
    assert code == 0, out
    assert f"intake: resuming {staging}" in out, out
    assert f"intake: making {len(rest) + 1} indexes put off: {', '.join([second, *rest])}" \
        in out, out
    assert all(f"switched {name}:" in out for name in registered()), out
    # An uninterrupted rebuild of the same log, in batches of the same size, finds each
    # view identical.
    code, out = sixstep(settings, tmp_path, "rebuild", "--all", "--dry-run", "--batch", "16")
    assert code == 0, out
    parts = by_read_model(out)
    assert set(parts) == set(registered()), out
    for name, part in parts.items():
        assert "identical" in part and "differences" not in part, (name, part)


def test_a_disk_full_during_the_catch_up_is_one_line_and_the_next_run_resumes(
        settings: Settings, tmp_path: Path) -> None:
    """The database's disk fills while ``sixstep rebuild intake`` writes a batch. It printed
    PostgreSQL's traceback; now one line names the read model, the phase, the SQLSTATE and
    what to do, and exits 1 (``-v`` adds the traceback). Once there is room, the same
    command resumes and switches."""
    asyncio.run(publish(settings, untidy_log()))
    env = environment(settings, tmp_path)
    staging = stopped_early(settings, "intake")
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        admin.execute(
            f"CREATE FUNCTION {q(staging)}.no_space() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'"
            " USING ERRCODE = 'disk_full'; END$$")
        admin.execute(f"CREATE TRIGGER no_space BEFORE UPDATE ON {q(staging)}.rebuild_state"
                      f" FOR EACH ROW EXECUTE FUNCTION {q(staging)}.no_space()")

        failed = ran(["rebuild", "intake", "--batch", "16"], env=env)
        assert failed.code == 1, failed
        [line] = [x for x in failed.err.splitlines() if "53100" in x]
        assert line.startswith("intake: catching up failed: PostgreSQL error 53100 (could not"
                               " extend file: No space left on device)"), line
        assert "free space" in line and "run again: it resumes" in line, line
        assert "Traceback" not in failed.err, failed.err
        assert line.endswith("(sixstep -v rebuild ... shows the traceback)"), line

        verbose = ran(["-v", "rebuild", "intake", "--batch", "16"], env=env)
        assert verbose.code == 1 and "Traceback" in verbose.err, verbose
        [line] = [x for x in verbose.err.splitlines() if "catching up failed" in x]
        assert line.startswith("intake: catching up failed: PostgreSQL error 53100"), line
        # Given -v, the line does not offer what -v gives: the traceback is right above it.
        assert "-v" not in line and "traceback" not in line, line

        admin.execute(f"DROP TRIGGER no_space ON {q(staging)}.rebuild_state")
    again = ran(["rebuild", "intake", "--batch", "16"], env=env)
    assert again.code == 0, again
    assert f"intake: resuming {staging}" in again.err and "switched intake" in again.err


def with_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


def test_a_role_with_a_short_statement_timeout_still_rebuilds(
        settings: Settings, tmp_path: Path) -> None:
    """Managed PostgreSQL often gives the application's role a statement timeout (``ALTER
    ROLE ... SET statement_timeout``). A rebuild's COPY of a batch, an index's sort and the
    comparison run longer than any such limit on a large view: its sessions turn it off."""
    day = at("2026-12-20", 9)
    stories = [CaseStory(HUAMU, HARDSHIP, day + timedelta(minutes=n)) for n in range(400)]
    asyncio.run(publish(settings, [e for s in stories for e in s.events()]))
    with plain_role(settings, "statement-timeout") as as_role:
        with psycopg.connect(as_role.database_url) as probe:
            assert probe.execute("SHOW statement_timeout").fetchone()[0] == "1ms"
        code, out = sixstep(as_role, tmp_path, "rebuild", "intake")
        assert code == 0, out
        assert "switched intake:" in out, out
        live = settings.schema_for("intake")
        with psycopg.connect(settings.database_url) as admin:
            assert admin.execute(f"SELECT count(*) FROM {q(live)}.cases").fetchone()[0] == 400


@contextlib.contextmanager
def plain_role(settings: Settings, how: str) -> Iterator[Settings]:
    """``settings`` as a login role that is no superuser, set up as a DBA often sets one
    up: ``connection-limit`` (``CONNECTION LIMIT 1``: no session beyond the rebuild's own),
    ``runs-as-owner`` (``ALTER ROLE ... SET role``: its sessions act as the group role that
    owns the schemas), ``statement-timeout`` (``ALTER ROLE ... SET statement_timeout =
    '1ms'``)."""
    login, password = f"{settings.schema_prefix}plain", uuid.uuid4().hex
    owner = f"{settings.schema_prefix}owner"
    database = urlsplit(settings.database_url).path.lstrip("/")
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        if not admin.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE"
                             " rolname = current_user").fetchone()[0]:
            pytest.skip("the test's PostgreSQL role may not create roles")
        admin.execute(f"CREATE ROLE {q(owner)} NOLOGIN")
        admin.execute(f"CREATE ROLE {q(login)} LOGIN PASSWORD '{password}' IN ROLE {q(owner)}")
        try:
            admin.execute(f"GRANT CREATE ON DATABASE {q(database)} TO {q(owner)}")
            if how == "connection-limit":
                admin.execute(f"ALTER ROLE {q(login)} CONNECTION LIMIT 1")
            elif how == "statement-timeout":
                admin.execute(f"ALTER ROLE {q(login)} SET statement_timeout = '1ms'")
            else:
                admin.execute(f"ALTER ROLE {q(login)} SET role = {q(owner)}")
            yield settings.model_copy(update={
                "database_url": with_role(settings.database_url, login, password)})
        finally:
            for role in (login, owner):
                admin.execute(f"DROP OWNED BY {q(role)}")
            admin.execute(f"REVOKE ALL ON DATABASE {q(database)} FROM {q(owner)}")
            admin.execute(f"DROP ROLE {q(login)}")
            admin.execute(f"DROP ROLE {q(owner)}")


@pytest.mark.parametrize("how", ["connection-limit", "runs-as-owner"])
def test_ctrl_c_cancels_the_index_builds_of_a_role_that_may_open_no_other_session(
        settings: Settings, tmp_path: Path, how: str) -> None:
    """The rebuild runs as the application's plain role. Ctrl-C while its index waits (a
    long sort) said "cancelling the index builds" and then waited for the build to end: the
    cancel was ``pg_cancel_backend`` from a second session, which a role with ``CONNECTION
    LIMIT 1`` cannot open, and which a role whose sessions ``SET role`` to the schemas'
    owner may not send (42501: not a member of the login role), both silently. Now the
    session's own cancel request stops the build, whatever the role, and it exits 130."""
    asyncio.run(publish(settings, untidy_log()))
    first, second, *rest = [s.split()[5] for s in split_indexes(load_read_model("intake"))[1]]
    with plain_role(settings, how) as as_role:
        staging = stopped_early(as_role, "intake")
        with psycopg.connect(settings.database_url) as blocker, \
                psycopg.connect(settings.database_url, autocommit=True) as watch:
            blocker.execute(f"CREATE TABLE {q(staging)}.{second} ()")
            rebuild = Running(environment(as_role, tmp_path), "rebuild", "intake",
                              "--batch", "16")
            code, err = ctrl_c_once_waiting(rebuild, watch,
                                        f"CREATE INDEX IF NOT EXISTS {second} ON %", blocker)
            assert code == 130, err
            assert f"intake: indexes not made yet: {', '.join([second, *rest])}" in err, err
            assert "Traceback" not in err, err
            made = {r[0] for r in watch.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (staging,))}
            assert first in made and second not in made, made


def test_a_rebuild_of_a_stream_that_is_not_there_says_so_in_one_line(
        settings: Settings, tmp_path: Path) -> None:
    """The operator's STREAM_NAME names no stream (a typo, another environment's): a replay
    says "no stream ... at ..." and exits 2; ``sixstep rebuild`` printed NATS's
    NotFoundError as a traceback from its preparing, where it first asks the stream."""
    asyncio.run(publish(settings, untidy_log()[:5]))
    env = {**environment(settings, tmp_path), "STREAM_NAME": f"{settings.stream_name}_TYPO"}
    failed = ran(["rebuild", "intake"], env=env)
    assert failed.code == 2, failed
    assert f"no stream '{settings.stream_name}_TYPO' at" in failed.err, failed
    assert "Traceback" not in failed.err, failed


def test_ctrl_c_while_the_comparison_waits_behind_a_lock_stops_now_and_switches_nothing(
        settings: Settings, tmp_path: Path) -> None:
    """A maintenance session holds the live cases (ACCESS EXCLUSIVE) while ``sixstep
    rebuild intake`` compares: the comparison waits for it, and the operator presses Ctrl-C.
    It went on waiting (the rebuild's sessions have no lock timeout), then paused the live
    consumers, refused its own switch and exited 1, "not switched". Now Ctrl-C cancels the
    comparison: exit 130, the staging schema kept, and the next run switches."""
    asyncio.run(publish(settings, untidy_log()))
    model = load_read_model("intake")
    live = model.schema(settings)

    async def live_tables() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await make_tables(conn, live, model.ddl)
        finally:
            await conn.close()

    asyncio.run(live_tables())
    env = environment(settings, tmp_path)
    with psycopg.connect(settings.database_url) as blocker, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        blocker.execute(f"LOCK TABLE {q(live)}.cases IN ACCESS EXCLUSIVE MODE")
        rebuild = Running(env, "rebuild", "intake", "--batch", "16")
        code, err = ctrl_c_once_waiting(rebuild, watch, f"%{live}%cases%", blocker)
    assert code == 130, err
    assert "stopped; " in err and "run again to resume" in err, err
    assert "not switched" not in err and "Traceback" not in err, err
    again = ran(["rebuild", "intake", "--batch", "16"], env=env)
    assert again.code == 0, again
    assert "intake: resuming" in again.err and "switched intake" in again.err, again
