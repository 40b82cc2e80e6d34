"""The README's events table names every event type there is (a newcomer's map stays whole)."""

from __future__ import annotations

from pathlib import Path

from shared.contracts import REGISTRY

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_event_type_is_in_the_readme_table() -> None:
    text = README.read_text()
    table = text.split("### Events: who emits each", 1)[1].split("\n\n", 3)[2]
    rows = {line.split("|")[1].strip().strip("`").split(" ")[0].strip("`")
            for line in table.splitlines() if line.startswith("| `")}
    missing = {c.type for c in REGISTRY} - rows
    assert not missing, f"README events table lacks {sorted(missing)}"
    for contract in REGISTRY:
        assert f"sixstep.{contract.service}.{contract.type}.p*" in table
