"""An envelope is the event its log subject names (``not_its_subject``): a service's user may
publish anything under its own subjects, and a consumer's filter ``<service>.<type>.*`` takes
any last token, not only a partition's ``p<NN>``. Judged on the subject's service and type
whatever its last token (redteam128 judged only ``p``-suffixed four-token subjects: one on
``...RectificationOpened.zz`` reached follow-up's rules unjudged)."""

from __future__ import annotations

import pytest

from shared.bus.jetstream import not_its_subject


@pytest.mark.parametrize("subject", [
    "sixstep.intake.CaseOpened.p3",
    "sixstep.intake.CaseOpened.p0",
    "sixstep.intake.CaseOpened",  # a subject without its partition token
])
def test_the_event_its_subject_names_passes(subject: str) -> None:
    assert not_its_subject(subject, "intake", "CaseOpened") is None


@pytest.mark.parametrize("subject", [
    "sixstep.feedback.RectificationOpened.p3",
    "sixstep.feedback.RectificationOpened.zz",  # taken by a filter ending in '*'
    "sixstep.feedback.CaseOpened.x",  # the type right, another service's subject
    "sixstep.feedback.RectificationOpened.p3.more",  # taken by a filter ending in '>'
    "sixstep.intake.CaseOpenedAgain.p1",
])
def test_another_services_or_types_subject_is_refused(subject: str) -> None:
    why = not_its_subject(subject, "intake", "CaseOpened")
    assert why is not None and "not the event the subject's writer may publish" in why
