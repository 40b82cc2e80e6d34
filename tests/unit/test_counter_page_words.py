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


#: Where a code is given by name: ``AuthError(code, ...)``, ``forbidden(code, ...)``;
#: ``problem(status, code, ...)``, ``error_response(status, code, ...)``.
_CODE_ARGUMENT = {"AuthError": 0, "forbidden": 0, "problem": 1, "error_response": 1}


def _code_in(node: ast.AST) -> str | None:
    """The error code ``node`` gives as a literal, if it gives one: an error class's ``code``
    attribute, a code passed by name (``_CODE_ARGUMENT``), an error body's ``{"code": ...}``."""
    if isinstance(node, ast.Assign | ast.AnnAssign):
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if isinstance(target, ast.Name) and target.id == "code":
            value = node.value
            return value.value if isinstance(value, ast.Constant) else None
    elif isinstance(node, ast.Call):
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        at = _CODE_ARGUMENT.get(name or "")
        if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
            return node.args[at].value
    elif isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values, strict=True):
            if (isinstance(k, ast.Constant) and k.value == "code"
                    and isinstance(v, ast.Constant)):
                return v.value
    return None


@functools.cache
def error_codes() -> frozenset[str]:
    """Every error code the services can answer, read from the source (so a new error is
    found without anyone listing it): each error class's ``code`` attribute in ``services/``
    and ``shared/``, and each code a route or the front door answers by name."""
    codes: set[str] = set()
    for root in ("services", "shared"):
        for path in (ROOT / root).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "code" not in text and "AuthError" not in text:
                continue
            codes.update(c for node in ast.walk(ast.parse(text))
                         if isinstance(c := _code_in(node), str))
    return frozenset(codes)


def test_the_error_codes_are_found() -> None:
    assert {"own_missed_followup", "extension_needs_supervisor", "self_approval",
            "self_decision", "self_rating", "token_missing", "bad_request", "rate_limited",
            "validation_failed", "forbidden_role", "pairing_code_unknown"} <= error_codes()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_error_code_the_services_answer_has_words_on_the_counter_page(lang: str) -> None:
    """A refusal is explained in the clerk's language (``explain`` in counter.js reads
    ``code_<code>``), never shown as its English message or its code."""
    words = json.loads((WEB / "strings.json").read_text(encoding="utf-8"))[lang]
    assert sorted(c for c in error_codes() if f"code_{c}" not in words) == []


def test_no_refusal_on_the_counter_page_is_shown_in_the_services_own_english() -> None:
    """A refusal is said in the clerk's language through ``refusal`` (counter.js: the
    service's error code, its words in strings.json), never as the error's own ``message``,
    which is the service's English: a hint taken or dismissed, the declared facts, and the
    printed notice refused ("保存失败：the resident's consent was withdrawn") showed it."""
    static = WEB / "static"
    raw = [f"{path.name}:{n}" for path in sorted(static.glob("*.js"))
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if "t(" in line and "message: err.message" in line]
    assert raw == []
