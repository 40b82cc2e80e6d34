"""The public page (公示) names every figure a closed month holds in the center's words, in
Chinese and in English: a figure added to the figures (``declined``, a resident's refusal to
rate) is never shown to the public as its code."""

from __future__ import annotations

import json

import pytest

from services.feedback.figures.queries import FIGURES
from services.feedback.pages import WEB


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_published_figure_has_a_label_on_the_public_page(lang: str) -> None:
    words = json.loads((WEB / "public.json").read_text(encoding="utf-8"))[lang]
    assert [f.name for f in FIGURES if f.name not in words] == []
