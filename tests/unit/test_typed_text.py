"""Every request body trims what a person typed: whitespace and characters nobody sees at
either end (``shared.kernel.typed``). A text made only of them is blank."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import shared.kernel.typed as typed_module
from services.feedback.commands import LodgeAppeal
from services.followup.commands import CancelFollowUp
from services.intake.commands import HearRequest, NoteConcerns
from shared.kernel.typed import trimmed


@pytest.mark.parametrize("typed", ["\u200b", "\ufeff", "\u200b\u3000\u200d", " \u2060\u00ad ",
                                   "\u202a\u202c", "\u200e\n",
                                   # the Arabic letter mark, a Hangul filler, the braille
                                   # blank, a grapheme joiner (what the scrubbing folds too)
                                   "\u061c", "\u3164", "\u2800 ", "\u034f",
                                   # marks with nothing to mark, tags
                                   "\ufe0f", "\u0301\u0301", "\U000e0061\U000e007f"])
def test_a_text_of_characters_nobody_sees_is_blank(typed: str) -> None:
    assert trimmed(typed) == ""
    with pytest.raises(ValidationError):
        HearRequest(words=typed)
    with pytest.raises(ValidationError):
        NoteConcerns.model_validate({"needs": ["低保", typed], "emotion": "calm"})
    with pytest.raises(ValidationError):
        CancelFollowUp(reason=typed)
    with pytest.raises(ValidationError):
        LodgeAppeal(reasons=typed)


def test_only_the_ends_are_trimmed() -> None:
    assert trimmed("\u200b我要申请低保\ufeff ") == "我要申请低保"
    assert trimmed("申\u200b请 低保") == "申\u200b请 低保"
    assert HearRequest(words="\ufeff 孩子上学的补助\u200b").words == "孩子上学的补助"
    assert NoteConcerns.model_validate(
        {"needs": ["\u200b看病报销"], "emotion": "calm"}).needs == ["看病报销"]


def test_a_mark_after_a_character_stays() -> None:
    assert trimmed("谢谢\u2764\ufe0f") == "谢谢\u2764\ufe0f"  # the emoji's presentation
    assert trimmed("Jose\u0301") == "Jose\u0301"
    assert trimmed("\u3164补助\u2800") == "补助"


def _trimmed_by_the_rules(text: str) -> str:
    """``trimmed`` as it was before plain ends were let through: the rules in full."""
    if text and (typed_module._FIRST.match(text[0]) or typed_module._LAST.match(text[-1])):
        text = typed_module._EDGES.sub("", text)
    if text and unicodedata.category(text[0]) in typed_module._NOTHING_ALONE and all(
            unicodedata.category(ch) in typed_module._NOTHING_ALONE for ch in text):
        return ""
    return text


_EDGE_CHARACTERS = st.sampled_from(
    [*string.ascii_letters, *string.digits, " ", "\u3000", "\u200b", "\ufeff", "\u00ad",
     "\u0301", "\ufe0f", "\U000e0041", "-", "."]) | st.characters()


@given(st.lists(_EDGE_CHARACTERS, max_size=6).map("".join))
def test_a_text_is_trimmed_as_the_rules_say_whatever_its_ends(text: str) -> None:
    assert trimmed(text) == _trimmed_by_the_rules(text)


def test_a_code_that_begins_and_ends_with_a_letter_or_digit_is_taken_as_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SA-HARDSHIP-SUBSIDY, window-3, clerk-001: no rule can change them, so none is run
    (five of them in every opened case's body)."""

    class Unasked:
        def match(self, text: str) -> None:
            raise AssertionError(f"a rule was run on {text!r}")

    for ch in typed_module._SHOWN:  # what lets a text through is no edge by the rules
        assert not typed_module._FIRST.match(ch) and not typed_module._LAST.match(ch)
        assert unicodedata.category(ch) not in typed_module._NOTHING_ALONE
    monkeypatch.setattr(typed_module, "_FIRST", Unasked())
    monkeypatch.setattr(typed_module, "_LAST", Unasked())
    for code in ("SA-HARDSHIP-SUBSIDY", "window-3", "clerk-001", "x", "7"):
        assert trimmed(code) == code
