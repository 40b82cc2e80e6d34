"""The counter's page names every status a help task (帮办) can have, in Chinese and in
English: a status added to the help task (``closed``, its case resolved first) is never shown
to the clerk as its code (``help_closed``); and every error code a service can answer
(``extension_needs_supervisor``, ``own_missed_followup`` ...) has its words there too."""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

from services.followup.domain import HELP_STATUSES
from services.intake.pages import WEB, counter_words

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_help_task_status_has_a_label_on_the_counter_page(lang: str) -> None:
    words = counter_words()[lang]
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
def _parsed(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _file_nodes(path: Path) -> tuple[tuple[str, ast.AST], ...]:
    """Every node of one file, with where it is: walked once per run, not once per test (the
    six tests here and test_feedback_page_words' walk services/ and shared/ again and again,
    ~1.5 s each)."""
    where = path.relative_to(ROOT)
    return tuple((f"{where}:{getattr(node, 'lineno', 0)}", node)
                 for node in ast.walk(_parsed(path)))


def _nodes(*roots: str) -> list[tuple[str, ast.AST]]:
    """Every node of the Python files under ``roots`` (a folder or a file), with where it is."""
    out: list[tuple[str, ast.AST]] = []
    for root in roots:
        paths = [ROOT / root] if root.endswith(".py") else sorted((ROOT / root).rglob("*.py"))
        for path in paths:
            out += _file_nodes(path)
    return out


def _calls(*roots: str) -> list[tuple[str, ast.Call]]:
    """Every call in the Python files under ``roots``, with where it is."""
    return [(where, node) for where, node in _nodes(*roots) if isinstance(node, ast.Call)]


def codes_answered(*roots: str) -> frozenset[str]:
    """Every error code answered under ``roots`` (folders, or a file), read from the source
    (so a new error is found without anyone listing it): each error class's ``code``
    attribute, and each code a route or the front door answers by name."""
    return frozenset(c for _, node in _nodes(*roots) if isinstance(c := _code_in(node), str))


@functools.cache
def error_codes() -> frozenset[str]:
    """Every error code the services can answer (``services/`` and ``shared/``)."""
    return codes_answered("services", "shared")


def test_the_error_codes_are_found() -> None:
    assert {"own_missed_followup", "extension_needs_supervisor", "self_approval",
            "self_decision", "self_rating", "token_missing", "bad_request", "rate_limited",
            "validation_failed", "forbidden_role", "pairing_code_unknown"} <= error_codes()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_error_code_the_services_answer_has_words_on_the_counter_page(lang: str) -> None:
    """A refusal is explained in the clerk's language (``explain`` in counter.js reads
    ``code_<code>``), never shown as its English message or its code."""
    words = counter_words()[lang]
    assert sorted(c for c in error_codes() if f"code_{c}" not in words) == []


def test_the_words_of_an_error_code_are_written_once() -> None:
    """Every code's words in ``shared/web/codes.json``, served with the counter's and the
    board's own: the board held a copy of 55 of the counter's, to which a new code's words
    had to be added twice (and a changed one drifted)."""
    copies = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("services/*/web/*.json")
                    if any(k.startswith("code_") for k in json.loads(
                        path.read_text(encoding="utf-8"))["zh"]))
    assert copies == []


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


#: What the counter page's calls reach: intake's routes, what intake forwards of feedback's
#: (the survey's QR code, ``services/intake/window_survey.py``), and shared's front door.
COUNTER_SOURCES = ("services/intake", "shared", "services/feedback/survey_qr.py")




def _name(call: ast.Call) -> str:
    return getattr(call.func, "id", getattr(call.func, "attr", "")) or ""


def rules_answered(*roots: str) -> dict[str, set[str]]:
    """Every ``details.rule`` a refusal under ``roots`` gives (``rule="..."``), with the
    details given beside it at every such refusal (what its words may fill in)."""
    rules: dict[str, set[str]] = {}
    for _, call in _calls(*roots):
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        rule = kw.get("rule")
        if isinstance(rule, ast.Constant) and isinstance(rule.value, str):
            given = set(kw) - {"rule"}
            rules[rule.value] = rules[rule.value] & given if rule.value in rules else given
    return rules


def test_every_rule_violated_names_its_rule_and_every_invalid_command_its_field() -> None:
    """A page says a refusal by its ``details.rule`` (or, for an invalid command, the field),
    never by the English sentence: a RuleViolated without a rule reached the counter page's
    catch-all words with the service's message in the Chinese text."""
    bare = [where for where, call in _calls("services", "shared")
            if (_name(call) == "RuleViolated"
                and not any(k.arg == "rule" and isinstance(k.value, ast.Constant)
                            for k in call.keywords))
            or (_name(call) == "InvalidCommand"
                and not any(k.arg in ("field", "rule") for k in call.keywords))]
    assert bare == []


def test_the_rules_are_found() -> None:
    assert {"heard_first", "case_resolved", "reopen_resolved_only", "plan_item",
            "survey_qr_served_only"} <= set(rules_answered(*COUNTER_SOURCES))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_rule_a_counter_route_answers_has_words_on_the_counter_page(lang: str) -> None:
    """Each rule has its own words, whose placeholders are details every refusal of that rule
    gives (``{case_item}``, ``{owner}``): filled in, never left as braces."""
    words = counter_words()[lang]
    rules = rules_answered(*COUNTER_SOURCES)
    assert sorted(r for r in rules if f"rule_{r}" not in words) == []
    unfilled = {r: sorted(set(re.findall(r"\{(\w+)\}", words[f"rule_{r}"])) - given)
                for r, given in rules.items()}
    assert {r: left for r, left in unfilled.items() if left} == {}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_refusal_words_on_the_counter_page_carry_the_services_message(lang: str) -> None:
    """``code_invalid_command``, ``code_rule_violated`` ... put the service's English
    ``{message}`` into the Chinese text; their words are the page's own now."""
    words = counter_words()[lang]
    assert sorted(k for k, v in words.items() if k.startswith(("code_", "rule_", "refused_"))
                  and "{message}" in v) == []
    js = (WEB / "static" / "counter.js").read_text(encoding="utf-8")
    explain = js[js.index("function explain("):js.index("export function refusal(")]
    assert "error.message" not in explain
