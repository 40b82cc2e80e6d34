"""The writer thread's store work for a batch of opened cases, in two source trees, paired: the
CPU a case costs in group commit's look-up of the batch's ids and its save (the library's
statements, the insert), without HTTP, the loop or the command's build.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/store_batch_paired.py /tmp/base [--pairs 6] [--batch 32]

One PostgreSQL (started here) serves both trees, each tree's process in a schema of its own,
with this checkout's virtualenv. A round builds ``--batches`` batches of ``--batch`` new
cases (outside the clock), then, for each batch, times what the writer thread does for it
in the store: ``GroupCommitter._load`` of the batch's ids (none stored yet: the look-up
only) and ``save`` (one transaction: the lock statements, NOTIFY, the insert);
``time.process_time`` (every thread of the process) around the round, the best of
``--rounds`` printed in us a case. ``--server``: the PostgreSQL server's CPU instead (user +
system of the postmaster and all its processes, the WAL writer's too, from ``/proc``; the
server is this run's own and the other tree's process has ended), in the same unit.
``benchmarks/pairing.py`` alternates the trees. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _server_cpu(postmaster: int) -> float:
    """Seconds of CPU (user + system) of ``postmaster`` and its child processes."""
    import os

    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(entry) == postmaster or int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return total / os.sysconf("SC_CLK_TCK")


def _child(database_url: str, batch: int, batches: int, rounds: int,
           server: bool = False) -> None:
    import logging
    import uuid
    from datetime import UTC, datetime

    from services.intake.application import IntakeApplication
    from services.intake.domain import Case
    from shared.eventstore.application import build_application
    from shared.eventstore.group_commit import GroupCommitter
    from shared.settings import Settings

    logging.disable(logging.CRITICAL)
    settings = Settings(database_url=database_url, environment="development",
                        schema_prefix=f"b{secrets.token_hex(3)}_")
    app = build_application(IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)

    def case(n: int) -> Case:
        return Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="window-3",
                    clerk_id="bench-clerk", channel="counter",
                    service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                    meta={"actor": "bench-clerk", "occurred_at": datetime.now(UTC),
                          "causation_id": f"step-{n:032x}", "correlation_id": None})

    clock = time.process_time
    if server:
        import psycopg

        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        with open(f"/proc/{row[0]}/stat") as stat:
            postmaster = int(stat.read().rsplit(")", 1)[1].split()[1])

        def clock() -> float:
            return _server_cpu(postmaster)

    best = float("inf")
    n = 0
    for round_ in range(rounds + 1):  # the first warms the pool and the prepared statements
        made = []
        for _ in range(batches):
            made.append([case(n + i) for i in range(batch)])
            n += batch
        start = clock()
        for cases in made:
            committer._load({c.id for c in cases})
            app.save(*cases)
        used = (clock() - start) / (batch * batches) * 1e6
        if round_:
            best = min(best, used)
    app.close()
    print(f"{best:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, nargs="?", help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32, help="cases a batch (wrk's 32 "
                        "connections make batches of about 30)")
    parser.add_argument("--batches", type=int, default=200, help="batches a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", action="store_true", help="PostgreSQL's CPU a case, "
                        "not the client's")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.database_url, args.batch, args.batches, args.rounds, args.server)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.common import servers
    from benchmarks.pairing import alternate, child

    with servers() as srv:
        alternate(args.other, ROOT, args.pairs, lambda tree: child(
            ROOT / "benchmarks" / "store_batch_paired.py", tree, "--database-url",
            srv.database_url, "--batch", str(args.batch), "--batches", str(args.batches),
            "--rounds", str(args.rounds), *(["--server"] if args.server else [])),
            "a case (server)" if args.server else "a case")


if __name__ == "__main__":
    main()
