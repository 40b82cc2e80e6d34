"""Follow-up's rules are handed every event type they read anything of; only the others
(``consumer.IGNORED``: requests heard and restated, ...) are merely tracked by the consumer."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from services import followup
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


def test_the_rules_ignore_no_event_type_a_set_they_hold_names() -> None:
    """Every collection of names a follow-up module holds, its own or imported (the steps of
    serving, ``SERVING``, whose actors ``Refs.note_staff`` reads into ``case_staff``, the 代评
    check), is something the rules read: none may name an ignored type."""
    held: dict[str, set[str]] = {}
    for found in pkgutil.iter_modules(followup.__path__):
        module = importlib.import_module(f"services.followup.{found.name}")
        for name, value in vars(module).items():
            if (value is not IGNORED and isinstance(value, (frozenset, set, tuple, dict))
                    and value and all(isinstance(v, str) for v in value)):
                if named := IGNORED & set(value):
                    held[f"{found.name}.{name}"] = named
    assert not held, f"read by the rules, so not to be ignored (IGNORED): {held}"
