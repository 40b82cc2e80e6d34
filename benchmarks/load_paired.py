"""Aggregates loaded from their stored events, in two source trees, paired: what
``repository.get`` costs group commit's writer thread (or a follower) for an aggregate it does
not hold, without PostgreSQL: the stored events decoded by the service's mapper and replayed.
``--what record``: the other side, the same case's 12 events recorded by its verbs (every
``@event`` call's trigger and apply, as the writer thread runs a command), nothing stored.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/load_paired.py /tmp/base [--pairs 6] \\
        [--what case|first|follow_up|record]

``case``: intake's case of 12 events (opened, heard, restated, concerns, guidance, an action,
a deadline, an escalation, a hand-over, resolved, reopened, resolved again); ``first``: the
same case at version 1 (what the command path's scope check and intake's known people read);
``follow_up``:
follow-up's planned check moved by hand, prioritised, reassigned and cancelled (5 events).
Each tree runs in a process of its own with this checkout's virtualenv, stores ``--aggregates``
of them in the service's application on POPO (``--postgres``: on a PostgreSQL the process
starts, as the benchmarks do, each load a SELECT of its events) and loads each of them in turn;
``time.process_time`` is read around each round, the best of ``--rounds`` printed in us a
load. The trees alternate, and so does which goes first. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _child(what: str, aggregates: int, rounds: int, postgres: bool) -> None:
    if not postgres:
        from shared.eventstore.application import ServiceApplication

        print(_measured(ServiceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}),
                        what, aggregates, rounds))
        return
    from benchmarks.common import bench_settings, servers
    from shared.eventstore.application import ServiceApplication, build_application

    with servers() as srv:
        figure = _measured(build_application(ServiceApplication, bench_settings(srv),
                                             "intake"), what, aggregates, rounds)
    print(figure)  # last: the figure the parent reads


def _measured(app: Any, what: str, aggregates: int, rounds: int) -> str:
    import gc
    import uuid
    from datetime import UTC, date, datetime, timedelta

    from services.followup.domain import FollowUp
    from services.intake.domain import Case

    now = datetime(2026, 12, 20, 2, tzinfo=UTC)  # Sunday 20 December, 10:00 in Shanghai

    def meta(key: str) -> dict[str, object]:
        return {"actor": "clerk-001", "occurred_at": now, "causation_id": key,
                "correlation_id": None, "center_id": "SH-PD-HUAMU",
                "command_digest": "d" * 43}

    def case(i: int) -> Case:
        c = Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="window-3",
                 clerk_id="clerk-001", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                 resident_id=uuid.uuid4(), meta=meta(f"o{i}"))
        c.hear_request("想申请临时救助", meta(f"h{i}"))
        c.restate_request("申请临时救助", True, None, meta(f"s{i}"))
        c.note_concerns(["money"], ["rent"], "anxious", "normal", meta(f"n{i}"))
        c.give_guidance("SA-HARDSHIP-SUBSIDY", "办法第三条", "eligible", "五个工作日", [],
                        meta(f"g{i}"))
        c.take_action("done_on_the_spot", "受理", None, meta(f"a{i}"))
        c.note_deadline(uuid.uuid4(), date(2026, 12, 31), "补材料", meta(f"d{i}"))
        c.take_action("escalated", "帮办", None, meta(f"e{i}"), owner_clerk="clerk-002")
        c.hand_over("clerk-002", None, "换人", meta(f"t{i}"))
        c.resolve("resolved", "", True, meta(f"r{i}"))
        c.reopen("新材料", meta(f"p{i}"))
        c.resolve("resolved", "", True, meta(f"q{i}"))
        return c

    def follow_up(i: int) -> FollowUp:
        f = FollowUp(id=uuid.uuid4(), reason="post_resolution_check",
                     resident_id=uuid.uuid4(), due_at=now + timedelta(days=3),
                     assigned_clerk="clerk-001", assigned_team=None, priority="normal",
                     service_item="SA-HARDSHIP-SUBSIDY", source="intake:CaseResolved",
                     source_id=None, meta=meta(f"o{i}"), basis="official", due_rule=None,
                     contact=None)
        f.reschedule(now + timedelta(days=5), "居民要求改期", None, None, now, meta(f"m{i}"))
        f.prioritise(meta(f"u{i}"))
        f.reassign("clerk-002", None, "转办", meta(f"a{i}"))
        f.cancel("lapsed", meta(f"c{i}"), by_supervisor=True)
        return f

    if what == "record":
        def recorded() -> float:
            started = time.process_time()
            for i in range(aggregates):
                case(i)
            return (time.process_time() - started) / aggregates * 1e6

        recorded()
        gc.collect()
        gc.freeze()
        return f"{min(recorded() for _ in range(rounds)):.2f}"
    build = follow_up if what == "follow_up" else case
    version = 1 if what == "first" else None
    ids = []
    for i in range(aggregates):
        aggregate = build(i)
        app.save(aggregate)
        ids.append(aggregate.id)
    get = app.repository.get

    def one_round() -> float:
        started = time.process_time()
        for aggregate_id in ids:
            get(aggregate_id, version=version)
        return (time.process_time() - started) / len(ids) * 1e6

    one_round()
    gc.collect()
    gc.freeze()  # as a started service does
    return f"{min(one_round() for _ in range(rounds)):.2f}"


def _run(tree: Path, what: str, aggregates: int, rounds: int, postgres: bool) -> float:
    from benchmarks.pairing import child

    return child(ROOT / "benchmarks" / "load_paired.py", tree, "--what", what,
                 "--aggregates", str(aggregates), "--rounds", str(rounds),
                 *(["--postgres"] if postgres else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", nargs="?", type=Path, help="the tree to compare this with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--what", choices=["case", "first", "follow_up", "record"], default="case")
    parser.add_argument("--aggregates", type=int, default=1000, help="aggregates a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds a process")
    parser.add_argument("--postgres", action="store_true",
                        help="the service's application on a PostgreSQL of its own (each load "
                             "a SELECT of its events) instead of POPO")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.what, args.aggregates, args.rounds, args.postgres)
        return
    if args.other is None:
        parser.error("name the tree to compare this with")
    sys.path.insert(0, str(ROOT))  # here, not at the top: the child runs the other tree's
    from benchmarks.pairing import alternate

    alternate(args.other, ROOT, args.pairs,
              lambda tree: _run(tree, args.what, args.aggregates, args.rounds, args.postgres),
              "a case recorded" if args.what == "record" else "a load")


if __name__ == "__main__":
    main()
