"""Who may reach a resident of the vault: the presence-grant rule, as data (no I/O).

A center reaches a resident by one of three **standings**:

* ``registration`` — the resident was registered at the caller's center;
* ``presence_grant`` — the caller (this clerk, at this center) typed the resident's full ID
  number at a lookup (or a registration) less than ``PRESENCE_GRANT_MINUTES`` ago: the
  resident is at the window. City-wide service (通办) rests on this;
* ``case`` — a case at the caller's center names the resident and was opened under a
  registration or a presence grant (``CaseOpened.resident_basis``). A case opened before the
  rule existed, with an unchecked resident id, gives no standing.

What each act needs:

===============  =====================================================================
act              standing
===============  =====================================================================
read             registration, presence_grant or case (follow-up calls after the visit)
hints            registration or presence_grant: eligibility hints open the age in the ID
                 number and the declared facts (health data), worked out at the counter
open a case      registration or presence_grant (the resident is at the window)
change details   registration or presence_grant (a phone number is changed in person)
erase            a supervisor, with registration or presence_grant
===============  =====================================================================

Every act on a resident of another center, allowed or refused, is in the audit trail of both
centers; the city sees all of them.
"""

from __future__ import annotations

from enum import StrEnum

from shared.security.principals import Principal, Role


class Standing(StrEnum):
    REGISTRATION = "registration"
    PRESENCE_GRANT = "presence_grant"
    CASE = "case"


class Act(StrEnum):
    READ = "read"
    HINTS = "hints"
    OPEN_CASE = "open_case"
    CHANGE = "change"
    ERASE = "erase"


PRESENT = frozenset({Standing.REGISTRATION, Standing.PRESENCE_GRANT})
NEEDS: dict[Act, frozenset[Standing]] = {
    Act.READ: PRESENT | {Standing.CASE},
    Act.HINTS: PRESENT,
    Act.OPEN_CASE: PRESENT,
    Act.CHANGE: PRESENT,
    Act.ERASE: PRESENT,
}
ROLES: dict[Act, frozenset[Role]] = {
    Act.READ: frozenset({Role.CLERK, Role.SUPERVISOR}),
    Act.HINTS: frozenset({Role.CLERK, Role.SUPERVISOR}),
    Act.OPEN_CASE: frozenset({Role.CLERK, Role.SUPERVISOR}),
    Act.CHANGE: frozenset({Role.CLERK, Role.SUPERVISOR}),
    Act.ERASE: frozenset({Role.SUPERVISOR}),
}


def strongest(standings: set[Standing]) -> Standing | None:
    """The standing to record: registration before a grant before a case."""
    for standing in (Standing.REGISTRATION, Standing.PRESENCE_GRANT, Standing.CASE):
        if standing in standings:
            return standing
    return None


def allowed(act: Act, principal: Principal, standings: set[Standing]) -> Standing | None:
    """The standing ``act`` rests on, or None when the caller may not."""
    if principal.role not in ROLES[act]:
        return None
    return strongest(standings & NEEDS[act])


def refusal(act: Act) -> str:
    """Why a caller without standing is refused (the 403's message)."""
    if act is Act.READ:
        return ("this resident is registered at another center: look them up by their full "
                "ID number at the window first (a presence grant), or open a case under one")
    if act is Act.HINTS:
        return ("eligibility hints open the resident's ID number and declared facts, at the "
                "window: for a resident of another center, look them up by their full ID "
                "number first (a case at your center lets you call them, not this)")
    if act is Act.ERASE:
        return ("erasure is for a supervisor of the resident's registering center, or one who "
                "has just looked the resident up by their full ID number (a presence grant)")
    return ("this resident is registered at another center: look them up by their full ID "
            "number at the window first (a presence grant)")
