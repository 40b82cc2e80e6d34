"""Follow-up's rules are handed every event type they read anything of; only the others
(``consumer.IGNORED``: requests heard and restated, ...) are merely tracked by the consumer."""

from __future__ import annotations

import re
from pathlib import Path

from services.followup.consumer import IGNORED, SEEN, Rules
from shared.contracts import REGISTRY
from shared.readmodels.residents import TYPES

ROOT = Path(__file__).resolve().parents[2]
#: Every module whose code a rules batch runs with the events it is handed.
READERS = [*sorted((ROOT / "services" / "followup").glob("*.py")),
           ROOT / "shared" / "readmodels" / "residents.py"]


def test_the_rules_ignore_only_event_types_no_rule_names() -> None:
    named = {m for path in READERS for m in re.findall(
        r"[\"']([A-Z][A-Za-z]+)[\"']",
        re.sub(r"IGNORED = frozenset\(\{.*?\}\)", "", path.read_text(), flags=re.DOTALL))}
    assert IGNORED.isdisjoint(named), (
        f"{sorted(IGNORED & named)}: read by the rules, so not to be ignored (IGNORED)")
    assert IGNORED.isdisjoint(SEEN | set(TYPES))
    assert IGNORED <= {c.type for c in REGISTRY}, "each an event type of the contracts"
    assert Rules.ignores is IGNORED
