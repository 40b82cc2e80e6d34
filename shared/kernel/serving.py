"""Who served a case: the staff whose work the resident's word is about (代评).

Every intake event of a case names its actor; the steps in ``SERVING`` are the ones that serve
the resident. Their actors may not record the resident's answer about the case: not a
survey's (feedback, ``self_rating``), nor a favourable verdict at the post-resolution check
(follow-up). One definition for both services (they never import each other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.kernel.meta import by_a_worker

SERVING = frozenset({"CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted",
                     "GuidanceGiven", "ActionTaken", "CaseHandedOver", "DeadlineNoted",
                     "ObligationDeclared", "GuidanceSessionHeld", "PlacementRecorded",
                     "CaseResolved"})
"""Steps of serving the resident. A handover (转办) also names the clerk the case now belongs
to, who serves it from then on, and an escalation (帮办) the colleague asked to help."""

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
    case served it already)."""
    if event_type not in SERVING or not actor or by_a_worker(actor):
        return ()
    named = _NAMED.get(event_type)
    also = (payload[named],) if named and payload.get(named) else ()
    own = () if event_type == "CaseHandedOver" else (actor,)
    return tuple(dict.fromkeys((*own, *also)))
