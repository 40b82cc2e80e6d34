"""The counter's page names every status a help task (帮办) can have, in Chinese and in
English: a status added to the help task (``closed``, its case resolved first) is never shown
to the clerk as its code (``help_closed``)."""

from __future__ import annotations

import json

import pytest

from services.followup.domain import HELP_STATUSES
from services.intake.pages import WEB


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_help_task_status_has_a_label_on_the_counter_page(lang: str) -> None:
    words = json.loads((WEB / "strings.json").read_text(encoding="utf-8"))[lang]
    assert [s for s in HELP_STATUSES if f"help_{s}" not in words] == []
