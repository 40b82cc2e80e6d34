"""A case opened and its first stored event encoded, in two source trees, paired: the part of
group commit's writer thread that runs an ``OpenCase`` (eventsourcing's creation, the scrubbing,
``Case.__init__``) and turns its event into the row it stores, without PostgreSQL.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/creation_paired.py /tmp/base [--pairs 6]

Each tree runs in a process of its own with this checkout's virtualenv, builds the same cases
(the benchmarks' ``POST /cases``, as ``Intake.open_case`` builds them) and encodes each event
with the service's mapper; ``time.process_time`` is read around each round, the best of
``--rounds`` printed in us a case. The trees alternate, and so does which goes first. Not
part of ``make bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(cases: int, rounds: int) -> None:
    import gc
    import uuid
    from datetime import UTC, datetime

    from services.intake.domain import Case
    from shared.eventstore.application import ServiceApplication

    mapper = ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(cases)]
    metas = [{"actor": "clerk-001", "occurred_at": now, "causation_id": f"bench-{i}",
              "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": ids[i],
              "command_digest": "d" * 43} for i in range(cases)]

    def one_round() -> float:
        started = time.process_time()
        for case_id, meta in zip(ids, metas, strict=True):
            case = Case(id=case_id, center_id="SH-PD-HUAMU", counter_id="window-3",
                        clerk_id="clerk-001", channel="counter",
                        service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                        resident_basis=None, applicant_id=None, applicant_basis=None,
                        meta=meta)
            mapper.to_stored_event(case.pending_events[0])
        return (time.process_time() - started) / cases * 1e6

    one_round()
    gc.collect()
    gc.freeze()  # as a started service does
    print(f"{min(one_round() for _ in range(rounds)):.2f}")


def _run(tree: Path, cases: int, rounds: int) -> float:
    from benchmarks.pairing import child

    return child(ROOT / "benchmarks" / "creation_paired.py", tree,
                 "--cases", str(cases), "--rounds", str(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", nargs="?", type=Path, help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--cases", type=int, default=5000, help="cases a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds a process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.cases, args.rounds)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.pairing import alternate

    alternate(args.other, ROOT, args.pairs,
              lambda tree: _run(tree, args.cases, args.rounds), "a case")


if __name__ == "__main__":
    main()
