"""Who served a case (``shared.kernel.serving``), and what they may record of the resident's
word at its post-resolution check (``check_verdict_recorder``): feedback's surveys and
follow-up's checks read the same steps."""

from __future__ import annotations

import pytest

from services.followup.domain import SelfRating, check_verdict_recorder
from shared.kernel.serving import staff_of_step


def test_the_steps_of_serving_name_their_actor_and_the_colleague_they_bring_in() -> None:
    assert staff_of_step("ConcernsNoted", "clerk-017", {}) == ("clerk-017",)
    # An urgency lowered is a supervisor's decision on another's case, not step 2.
    assert staff_of_step("ConcernsNoted", "director-02", {"lowered_from": "critical"}) == ()
    assert staff_of_step("ConcernsNoted", "director-02", {"lowered_from": None}) == (
        "director-02",)
    assert staff_of_step("ActionTaken", "clerk-017", {"owner_clerk": "clerk-021"}) == (
        "clerk-017", "clerk-021")
    # A handover names who serves the case from then on, not the dispatcher.
    assert staff_of_step("CaseHandedOver", "director-01", {"to_clerk": "clerk-033"}) == (
        "clerk-033",)
    assert staff_of_step("CaseHandedOver", "director-01", {"to_team": "team-a"}) == ()
    assert staff_of_step("CaseResolved", "system:verdicts", {}) == ()
    assert staff_of_step("CaseReopened", "clerk-017", {}) == ()


def test_who_served_the_case_records_only_the_not_solved_they_heard() -> None:
    for verdict in ("solved", "partly"):
        with pytest.raises(SelfRating) as refused:
            check_verdict_recorder(verdict, "clerk-017", served=True)
        assert refused.value.details["field"] == "verdict"
        check_verdict_recorder(verdict, "clerk-021", served=False)
    check_verdict_recorder("not_solved", "clerk-017", served=True)  # reopens the case
    check_verdict_recorder(None, "clerk-017", served=True)  # the check done, no verdict


def test_feedback_finds_a_cases_help_tasks_and_their_work_as_follow_up_stores_them() -> None:
    """Feedback waits for the case's help-task work in follow-up's store (``served_now``): it
    names the tasks by the escalation's event id as follow-up opens them, and their work by
    the stored topics of ``HELP_WORK``, and nothing else of a help task (an opening, a
    closure: never delivered to its consumer, which would then wait for ever)."""
    from fnmatch import fnmatchcase

    from eventsourcing.utils import get_topic

    from services.feedback.consumer import HELP_WORK_TOPICS
    from services.followup.domain import FOLLOWUP_NAMESPACE, HelpTask, follow_up_id_for
    from shared.kernel.ids import uuid5
    from shared.kernel.serving import HELP_WORK, help_task_id_for

    escalation = uuid5(FOLLOWUP_NAMESPACE, "an ActionTaken")
    assert help_task_id_for(escalation) == follow_up_id_for("help-task", escalation)
    stored = {name: get_topic(getattr(HelpTask, name)) for name in dir(HelpTask)
              if name.startswith("HelpTask") and isinstance(getattr(HelpTask, name), type)}
    taken = {name for name, topic in stored.items()
             if any(fnmatchcase(topic, p.replace("%", "*")) for p in HELP_WORK_TOPICS)}
    assert taken == set(HELP_WORK) and "HelpTaskOpened" in stored
