"""A PostgreSQL outage under keyed load (issue 22): what a counter app is told, and what the
store holds for each kind of answer.

Intake runs as its own process on a PostgreSQL and a nats-server this script starts. A keyed
load (``tests/faults/outage.py``: case stories, an Idempotency-Key per write, a client timeout
of ``--client-timeout`` s) runs while PostgreSQL is stopped with ``-m immediate`` for
``--outage`` s and started again. Each write is tried once during the load; a 503 or a client
timeout is retried with the same key afterwards, once the store has been looked at for it.

Printed: the first answers during the outage (2xx, 503 store_unavailable, 503 outcome_unknown,
timeouts: these must be 0), the slowest answer, and for each kind how many events the store
held per key before and after its retry.

    .venv/bin/python benchmarks/postgres_outage.py [--outage 30] [--workers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from shared.settings import Settings
from tests.faults.harness import System
from tests.faults.outage import KeyedLoad, run_outage
from tests.support import bearer
from tools.devservers import NatsServer, PostgresServer, exit_on_signals


async def measure(args: argparse.Namespace, folder: Path) -> None:
    nats, postgres = NatsServer(folder / "nats"), PostgresServer(folder / "pg")
    system: System | None = None
    try:
        nats.start()
        postgres.start()
        admin = await asyncpg.connect(postgres.url)
        await admin.execute("CREATE DATABASE sixstep")
        await admin.close()
        tag = uuid.uuid4().hex[:6]
        settings = Settings(database_url=postgres.url.rsplit("/", 1)[0] + "/sixstep",
                            nats_url=nats.url, stream_name=f"OUTAGE{tag}",
                            subject_prefix=f"outage{tag}", schema_prefix=f"o{tag}_")
        system = System(settings, folder, forked=False)  # the services as they run for real
        intake = system.add("intake", WRITE_TIMEOUT_S=str(args.write_timeout),
                            LOG_LEVEL="WARNING")
        await system.start()
        load = KeyedLoad(intake.url, bearer(settings), client_timeout_s=args.client_timeout,
                         workers=args.workers)
        report = await run_outage(settings, postgres, load, outage_s=args.outage,
                                  before=100, after=100)
        print(f"WRITE_TIMEOUT_S={args.write_timeout:g}, client timeout "
              f"{args.client_timeout:g} s, {args.workers} clients, PostgreSQL stopped "
              f"-m immediate and started again {args.outage:g} s later")
        print("\n".join(report.lines()))
    finally:
        if system is not None:
            await system.stop()
        postgres.stop()
        nats.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=30.0, help="seconds PostgreSQL is down")
    parser.add_argument("--workers", type=int, default=16, help="concurrent clients")
    parser.add_argument("--write-timeout", type=float, default=5.0, help="WRITE_TIMEOUT_S")
    parser.add_argument("--client-timeout", type=float, default=10.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sixstep-outage-"))
    exit_on_signals()  # SIGTERM / SIGHUP: its finally stops the servers, as Ctrl-C does
    try:
        asyncio.run(measure(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
