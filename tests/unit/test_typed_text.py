"""Every request body trims what a person typed: whitespace and characters nobody sees at
either end (``shared.kernel.typed``). A text made only of them is blank."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
