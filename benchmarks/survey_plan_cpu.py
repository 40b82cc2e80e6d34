"""CPU of a resolution's survey channel and timing as feedback's intake follower asks for them
(``is_too_old``, ``asked_at``, and ``request_survey``'s own working-out), in us a resolution,
for the tree on ``PYTHONPATH``: with ``Feedback.plan`` worked out once, or, in a tree
without it, each call working it out again. Alternate two trees by hand:

    git archive main | tar -x -C /tmp/base
    for i in 1 2 3 4 5; do for t in /tmp/base $PWD; do
      PYTHONPATH=$t .venv/bin/python benchmarks/survey_plan_cpu.py; done; done

Four cases (at the window, after the resident left, by text, by a clerk's call); the clock is
the machine's. Not part of ``make bench``.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from services.feedback.application import Feedback, ResolvedCase, SurveyPolicy
from shared.kernel.clock import SystemClock

CALLS = 20000


def main() -> None:
    feedback = Feedback.__new__(Feedback)  # only the policy and the clock are asked
    feedback.policy = SurveyPolicy()
    feedback.clock = SystemClock()
    at = datetime.now(UTC)
    cases = [ResolvedCase(case_id=uuid.uuid4(), center_id="c1", counter_id="w1",
                          clerk_id="k1", service_item="s", intake_channel=channel,
                          resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(),
                          resolved_at=at, correlation_id=None, served_by=("k1",),
                          at_window=at_window)
             for channel, at_window in (("counter", True), ("counter", False),
                                        ("home_visit", True), ("phone", True))]
    planned = hasattr(feedback, "plan")

    def one(case: ResolvedCase) -> None:
        if planned:
            plan = feedback.plan(case)  # type: ignore[attr-defined]
            feedback.is_too_old(case, plan)  # type: ignore[call-arg]
            feedback.asked_at(case, None, plan)  # type: ignore[call-arg]
            return
        feedback.is_too_old(case)
        feedback.asked_at(case, None)
        channel = feedback.policy.channel_for(case.intake_channel, case.resident_id,
                                              case.at_window)
        feedback.policy.timing(channel, case.resolved_at)  # request_survey's own

    start = time.process_time()
    for _ in range(CALLS // len(cases)):
        for case in cases:
            one(case)
    print(f"{(time.process_time() - start) / CALLS * 1e6:.2f} us a resolution "
          f"({'planned once' if planned else 'worked out per call'})")


if __name__ == "__main__":
    main()
