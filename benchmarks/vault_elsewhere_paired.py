"""The vault's read of a resident by id (``Vault._SELECT_IN_REACH``): the database's work for
another center's resident minus an id nobody has, in the PostgreSQL backend's CPU time
(``/proc/<pid>/stat``, the server being on this machine), two source trees in turn:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/vault_elsewhere_paired.py OTHER_TREE [pairs]

``OTHER_TREE``: another checkout (``git archive <commit> | tar -x -C <dir>``; this script and
``pairing.py`` are copied into it). Each tree's own statement and ``cases`` indexes, in a
schema of its own, in one PostgreSQL (``fsync=on``) in a folder of its own. The center:
20,000 cases, the resident asked for a regular with 50 of them; the caller another center's
clerk with no standing. Each figure a child process, each way the best of 3 rounds of
20,000 reads."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROUNDS, READS = 3, 20000
HOME, OTHER = "SH-PD-HUAMU", "SH-PD-ZHANGJIANG"
REGULAR, NOBODY = uuid.UUID(int=1), uuid.UUID(int=2)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


async def _prepare(conn: asyncpg.Connection, schema: str) -> None:
    from services.intake import projections
    from services.intake.vault import DDL
    from shared.readmodels.readmodel import make_tables

    await make_tables(conn, schema, [*DDL, *projections.DDL])
    if await conn.fetchval("SELECT count(*) FROM residents"):
        return
    await conn.execute("INSERT INTO vault_key_buckets SELECT g, '\\x00'::bytea"
                       " FROM generate_series(0, 4095) g")
    await conn.execute(
        "INSERT INTO residents (resident_id, center_id, key_bucket, registered_by, wrapped_key,"
        " name, id_number, phone, address, contact_channel, consent, facts)"
        " SELECT CASE WHEN g = 1 THEN $2 ELSE gen_random_uuid() END, $1, g % 4096, 'clerk-1',"
        " '\\x01', '\\x01', '\\x01', '\\x01', '\\x01', '\\x01', '\\x01', '\\x01'"
        " FROM generate_series(1, 2000) g", HOME, REGULAR)
    await conn.execute(
        "INSERT INTO cases (case_id, center_id, counter_id, clerk_id, channel, service_item,"
        " resident_id, resident_basis, status, stage, opened_at, updated_at, version, position)"
        " SELECT gen_random_uuid(), $1, 'window-1', 'clerk-1', 'counter', 'SA-ITEM',"
        " CASE WHEN g <= 50 THEN $2 ELSE gen_random_uuid() END, 'registration', 'resolved',"
        " 'feedback', now(), now(), 1, g FROM generate_series(1, 20000) g", HOME, REGULAR)
    await conn.execute("ANALYZE")


async def _gap(url: str, schema: str) -> float:
    from benchmarks.pairing import theirs_minus_nobodys
    from services.intake.vault import Vault

    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await _prepare(conn, schema)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        now = datetime.now(UTC)
        return await theirs_minus_nobodys(
            lambda id_: conn.fetchrow(Vault._SELECT_IN_REACH, id_, OTHER, "clerk-b", now),
            REGULAR, NOBODY, ROUNDS, READS, lambda: _cpu_ticks(pid) / 100)
    finally:
        await conn.close()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(asyncio.run(_gap(sys.argv[2], sys.argv[3])))
        return
    in_pairs(Path(__file__), ("pairing.py",),
             "backend CPU a read (another center's resident minus nobody's)")


def in_pairs(script: Path, helpers: tuple[str, ...], unit: str) -> None:
    """``script --child URL SCHEMA`` run in this tree and ``sys.argv[1]``'s in turn, each in
    a schema of its own in one PostgreSQL (``script`` and ``helpers`` copied there first)."""
    from benchmarks.pairing import alternate, child
    from tools.devservers import PostgresServer, exit_on_signals

    other, pairs = Path(sys.argv[1]).resolve(), int(sys.argv[2]) if len(sys.argv) > 2 else 4
    here = script.resolve()
    tree = here.parents[1]
    for name in (here.name, *helpers):  # the child's helpers, as this tree has them
        shutil.copy(here.parent / name, other / "benchmarks" / name)
    folder = Path(tempfile.mkdtemp(prefix=f"{here.stem.replace('_', '-')}-"))
    exit_on_signals()
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()

        def run(t: Path) -> float:
            schema = "bench_" + hashlib.sha1(str(t).encode()).hexdigest()[:8]
            return child(t / "benchmarks" / here.name, t, pg.url, schema)
        alternate(other, tree, pairs, run, unit)
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
