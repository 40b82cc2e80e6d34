"""Every service's commands share one base (``shared.kernel.typed.Command``) and one pattern
for the ids and codes a caller sends (``shared.contracts.fields.CODE_PATTERN``): written once,
not once per service (three copies of the base, six of the pattern)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from services.feedback import commands as feedback
from services.followup import commands as followup
from services.intake import commands as intake
from shared.contracts.fields import CODE_PATTERN

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("command", "given", "moment"), [
    (intake.HearRequest, {"words": "想问低保怎么申请"}, "occurred_at"),
    (feedback.DeclineRating, {}, "occurred_at"),
    (followup.CompleteFollowUp, {"outcome": "done", "channel": "phone"}, "occurred_at"),
    (followup.ScheduleFollowUp, {"center_id": "SH-PD-HUAMU", "assigned_team": "followup"},
     "due_at"),
])
def test_a_moment_a_clerk_sends_without_its_offset_is_refused_in_every_service(
        command: type[BaseModel], given: dict[str, object], moment: str) -> None:
    """Sunday 20 December 2026, 09:15: in Shanghai, or on a laptop left on UTC?"""
    naive = datetime(2026, 12, 20, 9, 15)
    with pytest.raises(ValidationError, match=f"{moment} needs a time zone offset"):
        command.model_validate({**given, moment: naive})
    said = command.model_validate({**given, moment: naive.replace(tzinfo=SHANGHAI)})
    assert getattr(said, moment).utcoffset() is not None


def test_the_code_pattern_is_written_once() -> None:
    copies = sorted(str(path.relative_to(ROOT))
                    for folder in ("shared", "services") for path in (ROOT / folder).rglob("*.py")
                    if CODE_PATTERN.strip("^$") in path.read_text(encoding="utf-8"))
    assert copies == ["shared/contracts/fields.py"]
