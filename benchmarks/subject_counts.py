"""How many events of ``rebuild_all.py``'s synthetic year each read model's subjects take,
without servers: the generator's events matched against ``ReadModel.subjects``.

    .venv/bin/python benchmarks/subject_counts.py --events 1000000 [--types]

What a rebuild of each read model applies from that log (``rebuild_all.py``'s ``ev`` column,
refusals included), and their sum (its "all at once" line): run in two trees (``git archive``)
to see which read model's share moved between them (stop 55: feedback.figures took
``FollowUpDue`` from dd1bbf90 on, 79,847 events more of the 1,000,000-event year).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import in_visit_order, one_year, visits_for
from shared.readmodels.readmodel import load_read_model, registered

YEAR = 2025  # publish_year's
SEED = YEAR * 10_000 + 101


def taken(subjects: list[str], service: str, type_: str) -> bool:
    """Whether a subject filter (``prefix.service.type.partition``, ``*`` a token) takes
    events of this service and type."""
    for subject in subjects:
        _, s, t, _ = subject.split(".")
        if s in (service, "*") and t in (type_, "*"):
            return True
    return False


def main(args: argparse.Namespace) -> None:
    by_type: Counter[tuple[str, str]] = Counter()
    for envelope in in_visit_order(one_year(YEAR, visits_for(args.events), seed=SEED),
                                   seed=SEED):
        by_type[(envelope.service, envelope.type)] += 1
    print(f"synthetic year: {sum(by_type.values()):,} events")
    settings = SimpleNamespace(subject_prefix="bench")
    total = 0
    for name in sorted(registered()):
        subjects = load_read_model(name).subjects(settings)  # type: ignore[arg-type]
        n = sum(count for (service, type_), count in by_type.items()
                if taken(subjects, service, type_))
        total += n
        print(f"{name:<20}{n:>12,}")
    print(f"{'all at once':<20}{total:>12,}")
    if args.types:
        for (service, type_), count in sorted(by_type.items()):
            print(f"{service}.{type_:<32}{count:>12,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--types", action="store_true", help="and the events of each type")
    main(parser.parse_args())
