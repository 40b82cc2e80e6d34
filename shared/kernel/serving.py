"""Who served a case: the staff whose work the resident's word is about (代评).

Every intake event of a case names its actor; the steps in ``SERVING`` are the ones that serve
the resident. Their actors may not record the resident's answer about the case: not a
survey's (feedback, ``self_rating``), nor a favourable verdict at the post-resolution check
(follow-up). One definition for the three services (they never import each other):

* a case's staff (:func:`staff_of_step`) are the actors of its serving steps, hearing and
  empathizing included (步骤一、二 are the service as much as 办理: the supervisor who heard the
  resident out and noted their worries served them), the colleague a step names (the clerk a
  handover gives it to, the colleague an escalation asks to help), and those who moved one of
  its help tasks along (``HELP_WORK``, follow-up's events);
* a case is one's own (:func:`is_own_case`) when one is its first clerk or one of its staff:
  nobody rates, closes, or approves their own work (好差评): not the resident's verdict recorded
  for them (代评), not a bad review's triage, appeal or outcome (``self_decision``), not the
  urgency lowered (``urgency_needs_supervisor``), not the extension approved (延期审批).

Each service folds the steps it sees: intake its own steps and, read by its ``intake-verdicts``
consumer, who worked the case's help tasks (``services/intake/helpers.py``: a task of the
supervisor team names nobody in the escalation), follow-up and feedback intake's steps and the
help tasks' work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from shared.kernel.ids import uuid5
from shared.kernel.meta import by_a_worker

SERVING = frozenset({"CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted",
                     "GuidanceGiven", "ActionTaken", "CaseHandedOver", "DeadlineNoted",
                     "ObligationDeclared", "GuidanceSessionHeld", "PlacementRecorded",
                     "CaseResolved"})
"""Steps of serving the resident. A handover (转办) also names the clerk the case now belongs
to, who serves it from then on, and an escalation (帮办) the colleague asked to help."""

HELP_WORK = ("HelpTaskAccepted", "HelpTaskStarted", "HelpTaskDone", "HelpTaskHandedBack")
"""Follow-up's steps of a help task (帮办) of a case: whoever took one (accepted, started, did or
handed it back) served the case, as the colleague an escalation names (a task of the
supervisor team names nobody: any supervisor works it)."""

#: Follow-up's namespace for the ids it derives from upstream facts (``follow_up_id_for``).
FOLLOWUP_NAMESPACE = UUID("3b0e6c1a-5d2f-4e8b-9a7c-1f4d2e6b8c90")


def help_task_id_for(action_event_id: UUID) -> UUID:
    """The help task (帮办) an escalation (``ActionTaken``, kind ``escalated``) opens, one
    however often its event is applied: follow-up opens it under this id, and feedback knows
    by it which of follow-up's stored events are the case's help-task work (a verdict waits
    for them: ``services.feedback.consumer.served_now``)."""
    return uuid5(FOLLOWUP_NAMESPACE, f"help-task:{action_event_id}")


#: The payload field naming a colleague a step makes one of the case's staff.
_NAMED = {"CaseHandedOver": "to_clerk", "ActionTaken": "owner_clerk"}
#: The steps that may name a colleague (``_NAMED``): any other step by a case's first clerk
#: makes no one new its staff.
NAMING = frozenset(_NAMED)


def staff_of_step(event_type: str, actor: str | None,
                  payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The staff an intake event makes ones who served its case: its actor when it is a step
    of serving (not the system's, not a reopening), and the colleague it names. A handover
    names who serves the case from then on (``to_clerk``), not who handed it: a supervisor
    dispatching a clerk's case to a colleague served nobody (the clerk handing over their own
    case served it already). An urgency lowered (``ConcernsNoted`` with ``lowered_from``: only
    a supervisor whose case it is not may) is that supervisor's decision on another's work,
    as approving its extension is, and serves nobody: the supervisor above who lowered it
    may then approve its extension (the one-supervisor center's way out, in either order)."""
    if event_type not in SERVING or not actor or by_a_worker(actor):
        return ()
    if event_type == "ConcernsNoted" and payload.get("lowered_from"):
        return ()  # a supervisor's decision on another's case (降级), not a step of serving
    named = _NAMED.get(event_type)
    also = (payload[named],) if named and payload.get(named) else ()
    own = () if event_type == "CaseHandedOver" else (actor,)
    return tuple(dict.fromkeys((*own, *also)))


def is_own_case(actor: str | None, first_clerk: str | None, staff: Iterable[str]) -> bool:
    """Whether ``actor`` is the case's first clerk or one of its staff (those
    :func:`staff_of_step` made so, the clerks it was handed to and those who heard it
    included): the case is theirs, and its resident's word, its bad review's decisions, its
    lowered urgency and its extension are another's to record."""
    return actor is not None and (actor == first_clerk or actor in staff)
