"""The counter's page names every status a help task (帮办) can have, in Chinese and in
English: a status added to the help task (``closed``, its case resolved first) is never shown
to the clerk as its code (``help_closed``); and every error code a service can answer
(``extension_needs_supervisor``, ``own_missed_followup`` ...) has its words there too."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

import pytest

from services.followup.domain import HELP_STATUSES
from services.intake.pages import WEB

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_help_task_status_has_a_label_on_the_counter_page(lang: str) -> None:
    words = json.loads((WEB / "strings.json").read_text(encoding="utf-8"))[lang]
    assert [s for s in HELP_STATUSES if f"help_{s}" not in words] == []


@functools.cache
def error_codes() -> frozenset[str]:
    """Every error code the services can answer: each error class's ``code`` (its class
    attribute, in ``services/`` and ``shared/``), and each code an ``AuthError`` is raised
    with (a token's, a claim's). Read from the source, so a new error class is found without
    anyone listing it."""
    codes: set[str] = set()
    for root in ("services", "shared"):
        for path in (ROOT / root).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "code" not in text and "AuthError" not in text:
                continue
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef):
                    for line in node.body:
                        target = (line.targets[0] if isinstance(line, ast.Assign)
                                  else line.target if isinstance(line, ast.AnnAssign) else None)
                        value = getattr(line, "value", None)
                        if (isinstance(target, ast.Name) and target.id == "code"
                                and isinstance(value, ast.Constant)):
                            codes.add(value.value)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "AuthError" and node.args
                      and isinstance(node.args[0], ast.Constant)):
                    codes.add(node.args[0].value)
    return frozenset(codes)


def test_the_error_codes_are_found() -> None:
    assert {"own_missed_followup", "extension_needs_supervisor", "self_approval",
            "self_decision", "self_rating", "token_missing", "bad_request"} <= error_codes()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_error_code_the_services_answer_has_words_on_the_counter_page(lang: str) -> None:
    """A refusal is explained in the clerk's language (``explain`` in counter.js reads
    ``code_<code>``), never shown as its English message or its code."""
    words = json.loads((WEB / "strings.json").read_text(encoding="utf-8"))[lang]
    assert sorted(c for c in error_codes() if f"code_{c}" not in words) == []
