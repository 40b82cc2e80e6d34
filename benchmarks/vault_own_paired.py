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
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROUNDS, READS = 3, 10000
#: Copied into the other tree with this script: the set-up is the elsewhere read's.
HELPERS = ("pairing.py", "vault_elsewhere_paired.py")


async def _per_read(url: str, schema: str) -> float:
    """us of the backend's CPU a read of the regular by their own center's clerk."""
    from benchmarks.vault_elsewhere_paired import HOME, REGULAR, _cpu_ticks, _prepare
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
    from benchmarks.vault_elsewhere_paired import in_pairs

    in_pairs(Path(__file__), HELPERS, "backend CPU a read (the resident's own center)")


if __name__ == "__main__":
    main()
