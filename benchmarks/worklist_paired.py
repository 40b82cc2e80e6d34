"""Follow-up's worklist projection (``WorklistProjection.apply``, the live handler) in two
source trees, paired: PostgreSQL's CPU an event its batches cost, with no consumer, stream
or decoding around them.

    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/worklist_paired.py /tmp/base [--pairs 6] [--events 50000]

``apply_paired.py --model followup --postgres`` (its rows compared first, every column of
``followups``, ``help_tasks``, ``referrals``, ``timers`` and ``obligations`` but the volatile
ones); ``apply_paired.py`` without ``--postgres`` pairs the CPU spent in line in ``apply``
instead, of this model or of intake's cases and feedback's views. Not part of ``make bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apply_paired import main

if __name__ == "__main__":
    main(["--model", "followup", "--postgres", *sys.argv[1:]])
