"""A counter tablet is shared: what a clerk types into a text field (a resident's words, the
unit she was referred to and its contact, why a case was handed over) must not come back to
the next clerk as the browser's suggestions. Chromium keeps a form history of text inputs by
field name unless the field says ``autocomplete="off"``; before December 2026 the desk's step
forms (restated request, referral unit and contact, actions, deadlines, hand-over reasons,
obligations) said nothing, and their text stayed in the tablet's browser profile, outside
anything the page clears at sign-out."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted([*ROOT.glob("services/*/web/templates/*.html"),
                    *ROOT.glob("shared/web/templates/*.html")])
#: The inputs a browser keeps a typed history of (a radio, a checkbox, a hidden field: none).
TYPED = {"text", "tel", "email", "search", "number", "url"}
FIELD = re.compile(r"<(input|textarea)\b[^>]*>", re.S)
KIND = re.compile(r'\btype="([^"]+)"')


def typed_fields(html: str) -> list[str]:
    fields = []
    for m in FIELD.finditer(html):
        tag = m.group(0)
        kind = KIND.search(tag)
        if m.group(1) == "textarea" or kind is None or kind.group(1) in TYPED:
            fields.append(tag)
    return fields


def test_the_templates_are_found() -> None:
    names = {p.name for p in TEMPLATES}
    assert {"counter.html", "signin.html", "survey.html", "pad.html"} <= names
    assert len(typed_fields((ROOT / "services/intake/web/templates/counter.html")
                            .read_text(encoding="utf-8"))) >= 20


def test_no_field_a_clerk_or_a_resident_types_into_is_kept_in_the_browsers_history() -> None:
    kept = [f"{p.relative_to(ROOT)}: {tag[:90]}" for p in TEMPLATES
            for tag in typed_fields(p.read_text(encoding="utf-8"))
            if 'autocomplete="off"' not in tag]
    assert not kept, "\n".join(kept)


def test_a_field_without_the_word_is_found() -> None:
    assert typed_fields('<input id="x" type="text"><input type="radio"><textarea id="y">'
                        '</textarea><input name="z">') == [
        '<input id="x" type="text">', '<textarea id="y">', '<input name="z">']
