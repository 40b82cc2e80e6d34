"""The feedback service's pages say a refusal in the reader's language, never in the
service's English: the supervisor's board (a triage after the deadline, an appeal upheld
without grounds, a pad's pairing code refused), the resident's survey, the rating pad. Each
page's words (``services/feedback/web/*.json``) hold what ``refusalWords`` (shared ui.js)
reads: ``rule_<details.rule>``, ``code_<code>``, else the refusal's kind by its status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.feedback.pages import board_words
from tests.unit.test_counter_page_words import codes_answered, rules_answered

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "services" / "feedback" / "web"
#: What every page that says refusals with ``refusalWords`` has, whatever the code.
FALLBACKS = ("refused_4xx", "refused_5xx", "refused_other", "refused_network",
             "refused_unexpected")


def words(page: str, lang: str) -> dict[str, str]:
    """A page's words as it is served (the board's with every error code's)."""
    if page == "board":
        return board_words()[lang]
    return json.loads((WEB / f"{page}.json").read_text(encoding="utf-8"))[lang]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_rule_and_code_the_board_may_be_refused_with_has_words_there(lang: str) -> None:
    """Feedback's rules (``deadline_missed``, ``appeal_grounds_needed`` ...), each with the
    details its words fill in, and every code feedback or the front door answers
    (``self_decision``, ``claim_missing`` at sign-in ...)."""
    board = words("board", lang)
    rules = rules_answered("services/feedback")
    assert {"deadline_missed", "appeal_grounds_needed", "period_not_ended"} <= set(rules)
    assert sorted(r for r in rules if f"rule_{r}" not in board) == []
    unfilled = {r: sorted(set(re.findall(r"\{(\w+)\}", board[f"rule_{r}"])) - given)
                for r, given in rules.items()}
    assert {r: left for r, left in unfilled.items() if left} == {}
    codes = codes_answered("services/feedback", "shared")
    assert {"self_decision", "pairing_code_unknown", "no_appeal_pending"} <= codes
    assert sorted(c for c in codes if f"code_{c}" not in board) == []


@pytest.mark.parametrize("page", ["board", "survey"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_page_has_words_for_any_refusal_and_none_carries_the_services_message(
        page: str, lang: str) -> None:
    said = words(page, lang)
    assert [k for k in FALLBACKS if k not in said] == []
    assert sorted(k for k, v in said.items() if k.startswith(("code_", "rule_", "refused_"))
                  and "{message}" in v) == []


def test_no_feedback_page_or_sign_in_shows_an_errors_own_message() -> None:
    """The board's "未能保存：only an open rectification is triaged", the survey's "提交没有
    成功：..." and the sign-in's "登录失败：claim_missing: the token has no ..." showed the
    service's English; the words are the page's now (``refusalWords``)."""
    scripts = [*sorted((WEB / "static").glob("*.js")),
               *sorted((ROOT / "shared" / "web" / "static").glob("*.js"))]
    raw = [f"{path.name}:{n}" for path in scripts
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if re.search(r"\bt\(.*\berr(or)?\.message\b", line)
           or (path.name == "signin.js" and "ApiError" in line and ".message" in line)]
    assert raw == []
