"""The vault's read of a resident by id (``Vault._SELECT_IN_REACH``) for the resident's own
center: the PostgreSQL backend's CPU time a read (``/proc/<pid>/stat``, the server being on
this machine), two source trees in turn:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/vault_own_paired.py OTHER_TREE [pairs]

What stop 50 added to every read in reach: the grant and case probes run for the id asked
whoever asks (two index look-ups more for the resident's own center, that needs neither).
Set-up as ``vault_elsewhere_paired.py``'s (20,000 cases, a regular with 50 of them); the
caller a clerk of the resident's center. Each figure a child process, the best of 3 rounds
of 10,000 reads."""

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

ROUNDS, READS = 3, 10000
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


async def _per_read(url: str, schema: str) -> float:
    """us of the backend's CPU a read of the regular by their own center's clerk."""
    from services.intake.vault import Vault

    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await _prepare(conn, schema)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        now = datetime.now(UTC)
        best = float("inf")
        for _ in range(ROUNDS):
            start = _cpu_ticks(pid)
            for _ in range(READS):
                row = await conn.fetchrow(Vault._SELECT_IN_REACH, REGULAR, HOME, "clerk-a", now)
                assert row is not None and row["registered"]
            best = min(best, (_cpu_ticks(pid) - start) / 100 / READS * 1e6)
        return best
    finally:
        await conn.close()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(asyncio.run(_per_read(sys.argv[2], sys.argv[3])))
        return
    from benchmarks.pairing import alternate, child
    from tools.devservers import PostgresServer, exit_on_signals

    other, pairs = Path(sys.argv[1]).resolve(), int(sys.argv[2]) if len(sys.argv) > 2 else 4
    here, tree = Path(__file__).resolve(), Path(__file__).resolve().parents[1]
    for name in (here.name, "pairing.py"):  # the child's helpers, as this tree has them
        shutil.copy(here.parent / name, other / "benchmarks" / name)
    folder = Path(tempfile.mkdtemp(prefix="vault-own-paired-"))
    exit_on_signals()
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()

        def run(t: Path) -> float:
            schema = "bench_" + hashlib.sha1(str(t).encode()).hexdigest()[:8]
            return child(t / "benchmarks" / here.name, t, pg.url, schema)
        alternate(other, tree, pairs, run,
                  "backend CPU a read (the resident's own center)")
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
