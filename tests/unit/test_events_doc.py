"""docs/events.md's table names every event type there is, at its current version (a
newcomer's map stays whole)."""

from __future__ import annotations

from pathlib import Path

from shared.contracts import REGISTRY

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_every_event_type_is_in_the_events_table() -> None:
    text = EVENTS_DOC.read_text()
    table = text.split("## Events: who emits each", 1)[1].split("\n\n", 3)[2]
    rows = {line.split("|")[1].strip().strip("`").split(" ")[0].strip("`")
            for line in table.splitlines() if line.startswith("| `")}
    missing = {c.type for c in REGISTRY} - rows
    assert not missing, f"docs/events.md's table lacks {sorted(missing)}"
    for contract in REGISTRY:
        assert f"sixstep.{contract.service}.{contract.type}.p*" in table


def test_the_events_table_names_each_event_at_its_current_version() -> None:
    """A type past v1 is written ``(vN)`` beside its name; a v1 type carries no mark."""
    text = EVENTS_DOC.read_text()
    table = text.split("## Events: who emits each", 1)[1].split("\n\n", 3)[2]
    named = {line.split("|")[1].strip().split(" ")[0].strip("`"): line.split("|")[1]
             for line in table.splitlines() if line.startswith("| `")}
    for contract in REGISTRY:
        mark = f"(v{contract.version})"
        if contract.version > 1:
            assert mark in named[contract.type], f"{contract.type} is {mark}"
        else:
            assert "(v" not in named[contract.type], f"{contract.type} is v1"
