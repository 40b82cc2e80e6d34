"""The presence rule, on its own: which standing lets whom do what to a resident."""

from __future__ import annotations

import pytest

from services.intake.presence import Act, Standing, allowed
from shared.security.principals import Principal, Role

CLERK = Principal(sub="clerk-b", role=Role.CLERK, center_id="SH-PD-ZHANGJIANG")
SUPERVISOR = Principal(sub="sup-b", role=Role.SUPERVISOR, center_id="SH-PD-ZHANGJIANG")
ANALYST = Principal(sub="analyst-1", role=Role.ANALYST)
R, G, C = Standing.REGISTRATION, Standing.PRESENCE_GRANT, Standing.CASE


@pytest.mark.parametrize(("act", "who", "standings", "on"), [
    (Act.READ, CLERK, {C}, C),                    # a follow-up call after the visit
    (Act.READ, CLERK, {G, C}, G),                 # the strongest standing is recorded
    (Act.READ, CLERK, set(), None),
    (Act.HINTS, CLERK, {G}, G),
    (Act.HINTS, CLERK, {C}, None),                # a case lets them call, not open facts
    (Act.OPEN_CASE, CLERK, {G}, G),
    (Act.OPEN_CASE, CLERK, {C}, None),            # a case is no proof of presence
    (Act.CHANGE, CLERK, {C}, None),
    (Act.CHANGE, CLERK, {R}, R),
    (Act.ERASE, CLERK, {R}, None),                # erasure is a supervisor's act
    (Act.ERASE, SUPERVISOR, {G}, G),
    (Act.ERASE, SUPERVISOR, {C}, None),
    (Act.READ, ANALYST, {R}, None),               # no personal data for analysts
])
def test_each_act_rests_on_the_standings_it_names(act: Act, who: Principal,
                                                  standings: set[Standing],
                                                  on: Standing | None) -> None:
    assert allowed(act, who, standings) == on
