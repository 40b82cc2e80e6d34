"""The rebuild's switch locks the live tables, then puts the rebuilt tracking rows in place
of the live consumer's; a batch of the live consumer writes its tracking rows first, then
the tables. Each waits for the other and PostgreSQL rolls one back: when it is the switch,
it is tried again once the batch has committed (said on the progress line), and the
analyst never sees asyncpg's DeadlockDetectedError."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from shared.analytics.rebuild import SWITCH_TRIES, Rebuild, RebuildError, q
from shared.bus.consumer import TRACKING_DDL
from shared.readmodels.readmodel import load_read_model, make_tables
from shared.settings import Settings
from tests.analytics.support import month_of_march_stories
from tests.analytics.test_bulk_rebuild import publish
from tests.analytics.test_rebuild_lock import until
from tests.analytics.test_rebuild_operator import Running, environment
from tests.support import wait_until

INTAKE = load_read_model("intake")


async def test_a_switch_deadlocked_with_a_live_batch_is_tried_again_after_it(
        settings: Settings) -> None:
    """Sun 20 Dec 2026: an analyst switches intake's rebuilt view while a batch of the live
    consumer has written a case's tracking row and is about to write the case. The switch
    holds the live tables and waits for that row; the batch waits for the tables.
    PostgreSQL rolls the switch back; it says so and switches once the batch committed."""
    await publish(settings, [e for s in month_of_march_stories()[:2] for e in s.events()])
    live = INTAKE.schema(settings)
    case = uuid.uuid4()
    said: list[tuple[int, int]] = []
    batch = await asyncpg.connect(settings.database_url)
    watch = await asyncpg.connect(settings.database_url)  # its own: a transaction's view of
    try:  # pg_stat_activity stays as it first saw it
        await make_tables(batch, live, [*INTAKE.ddl, *TRACKING_DDL])
        await batch.execute("INSERT INTO consumer_tracking (consumer, key, seq) VALUES"
                            " ($1, $2, 1)", INTAKE.consumer, case)
        async with Rebuild(settings, INTAKE,
                           on_switch_retry=lambda _, n, of: said.append((n, of))) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            switch_pid = rb.conn.get_server_pid()
            # PostgreSQL looks for a deadlock once, deadlock_timeout after a session began
            # to wait, and rolls back the session that looks: the switch, 3 s after it waits
            # (1 s by default: under load the batch's lock came after the switch had looked,
            # and the batch was rolled back), the batch never before the switch.
            await rb.conn.execute("SET deadlock_timeout = '3s'")
            await batch.execute("SET deadlock_timeout = '10min'")

            async def switch_waits_on_a_row() -> bool:
                return bool(await watch.fetchval(
                    "SELECT wait_event_type = 'Lock' AND wait_event <> 'advisory'"
                    " FROM pg_stat_activity WHERE pid = $1", switch_pid))
            writing = batch.transaction()
            await writing.start()
            # the batch's first statement: its case's tracking row (TRACK_FIRST)
            await batch.execute("UPDATE consumer_tracking SET seq = 2 WHERE consumer = $1"
                                " AND key = $2", INTAKE.consumer, case)
            switching = asyncio.create_task(rb.switch())
            await wait_until(switch_waits_on_a_row, timeout=30,
                             what="the switch holds the tables and waits for the row")
            # then the case: waits for the tables the switch holds, and is let through
            # when PostgreSQL rolls the switch back (the first to wait, the first to look)
            await batch.execute(f"LOCK TABLE {q(live)}.cases IN ROW EXCLUSIVE MODE")
            await writing.commit()
            switched = await switching  # before: asyncpg's DeadlockDetectedError
            assert said == [(1, SWITCH_TRIES)]
        assert switched.tables and switched.retired.startswith(f"{live}__old_")
        # the rebuilt rows in place of the live consumer's (the case was none of them)
        assert not await batch.fetchval(
            f"SELECT count(*) FROM {q(live)}.consumer_tracking WHERE key = $1", case)
    finally:
        await batch.close()
        await watch.close()


async def test_a_switch_deadlocked_every_time_says_so_in_a_line(settings: Settings) -> None:
    """A switch rolled back by a deadlock at each of its ``SWITCH_TRIES`` tries: one
    sentence for the analyst, nothing switched, no traceback."""
    said: list[tuple[int, int]] = []
    rb = Rebuild(settings, INTAKE, on_switch_retry=lambda _, n, of: said.append((n, of)))

    async def deadlocks(*_: Any) -> Any:
        raise asyncpg.DeadlockDetectedError("deadlock detected")
    rb._swap = deadlocks  # type: ignore[method-assign]
    with pytest.raises(RebuildError, match=f"deadlocked with the live consumer {SWITCH_TRIES}"
                                           " times.*nothing switched, run again"):
        await rb._swap_again_after_deadlocks(10.0, [])
    assert said == [(n, SWITCH_TRIES) for n in range(1, SWITCH_TRIES)]


def test_sixstep_rebuild_says_the_deadlocked_switch_is_tried_again_and_switches(
        settings: Settings, tmp_path: Path) -> None:
    """31 Dec 2026, 23:30 in Shanghai: the analyst's ``sixstep rebuild intake`` reaches its
    switch while a batch of the live consumer holds a case's tracking row and then asks for
    the live tables. PostgreSQL rolls the switch back; the terminal says so, in one line with
    the try it goes on to, and then that it switched: no traceback, exit 0."""
    asyncio.run(publish(settings, [e for s in month_of_march_stories()[:2] for e in s.events()]))
    live = INTAKE.schema(settings)
    case = uuid.uuid4()

    async def tracked() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await make_tables(conn, live, [*INTAKE.ddl, *TRACKING_DDL])
            await conn.execute("INSERT INTO consumer_tracking (consumer, key, seq) VALUES"
                               " ($1, $2, 1)", INTAKE.consumer, case)
        finally:
            await conn.close()
    asyncio.run(tracked())
    switch_waits = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = %s AND query LIKE 'DELETE FROM%%consumer_tracking%%'"
        " AND wait_event_type = 'Lock'")
    with psycopg.connect(settings.database_url) as batch, \
            psycopg.connect(settings.database_url, autocommit=True) as watch:
        # The switch (its sessions start after this) looks for the deadlock 3 s after it
        # waits, the batch never first (see the test above: at 1 s, under load, the batch's
        # lock came after the switch had looked, and the batch was rolled back).
        batch.execute("SET deadlock_timeout = '10min'")
        watch.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET deadlock_timeout"
                      " = ''3s''', current_database()); END $$")
        # the batch's first statement: its case's tracking row (TRACK_FIRST)
        batch.execute(f"UPDATE {q(live)}.consumer_tracking SET seq = 2 WHERE consumer = %s"
                      " AND key = %s", (INTAKE.consumer, case))
        rebuild = Running(environment(settings, tmp_path), "rebuild", "intake", "--batch", "16")
        try:
            until("the switch holds the live tables and waits for the batch's row",
                  lambda: watch.execute(switch_waits, (f"sixstep-rebuild {INTAKE.consumer}",)
                                        ).fetchone()[0], rebuild)
            # then the case: waits for the tables the switch holds (the first to wait, the
            # first to look: PostgreSQL rolls the switch back) and commits
            batch.execute(f"LOCK TABLE {q(live)}.cases IN ROW EXCLUSIVE MODE")
            batch.commit()
            code = rebuild.proc.wait(120)
        finally:
            rebuild.stop()
            watch.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET"
                          " deadlock_timeout', current_database()); END $$")
    said = " ".join(rebuild.err.split())
    assert code == 0, rebuild.err
    assert ("intake: the switch deadlocked with the live consumer and was rolled back, nothing"
            f" switched; trying again (2 of {SWITCH_TRIES})") in said, rebuild.err
    assert "switched intake" in said and "Traceback" not in said, rebuild.err
