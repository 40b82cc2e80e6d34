"""The product bounds a wait with ``asyncio.timeout``, never ``asyncio.wait_for``: on Python
3.11, wait_for runs what it waits for as a task of its own and, cancelled again while that
task unwinds (a shutdown cancels its loops every 0.2 s, ``Background.stop``), returns
without it: the task runs on with no owner (the consumer's puller stop, stop 51; the
event-path probe's measure, stop 51). ``asyncio.timeout`` runs it in the caller's task."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_product_code_bounds_a_wait_with_asyncio_wait_for() -> None:
    found = []
    for package in ("shared", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Attribute) and node.attr == "wait_for"
                        and isinstance(node.value, ast.Name) and node.value.id == "asyncio"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
