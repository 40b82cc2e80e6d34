"""Characters nobody sees are one list (``shared.kernel.invisible``), and everything that reads
text as it looks on screen takes them from it: the trimming of what a person typed, the
scrubbing of free text, the ID and phone numbers the vault keeps and finds. Before, there were
three lists: a Hangul filler made a need look filled in, and a direction mark pasted inside an
ID number made the number unknown to the vault while the scrubbing saw through it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.commands import HearRequest
from services.intake.idnumber import normalize, problem_with
from services.intake.residents import ResidentCreate
from shared.kernel.invisible import INVISIBLE, INVISIBLE_CODE_POINTS, SELECTORS
from shared.kernel.privacy import REDACTED_ID, REDACTED_PHONE, redact
from shared.kernel.privacy.patterns import fold
from shared.kernel.typed import trimmed

NUMBER = "11010519491231002X"


@pytest.mark.parametrize("char", list(INVISIBLE), ids=lambda c: f"U+{ord(c):04X}")
def test_each_character_nobody_sees_is_read_the_same_everywhere(char: str) -> None:
    # at the end a variation selector belongs to the character before it (谢谢\u2764\ufe0f)
    kept = char if char in SELECTORS else ""
    assert trimmed(f"{char}低保{char}") == f"低保{kept}", "trimmed at both ends of a typed text"
    assert fold(char) == " ", "a space to the scrubbing"
    assert normalize(f"110105{char}19491231{char}002x") == NUMBER, "dropped inside an ID number"
    assert redact(f"回拨139{char}1234{char}5678") == f"回拨{REDACTED_PHONE}"


@pytest.mark.parametrize("blank", ["\u3164", "\u2800\u2800", "\ufe0f", "\u034f", "\u115f"])
def test_a_need_of_fillers_and_blanks_is_refused_as_an_empty_one(blank: str) -> None:
    with pytest.raises(ValidationError):
        HearRequest(words=blank)


def test_an_id_number_pasted_with_a_direction_mark_is_the_resident_on_file() -> None:
    """A number copied from a right-to-left chat window brings left-to-right marks along; the
    vault finds the resident by the number, as the scrubbing already hid it."""
    pasted = "\u200e110105\u200e19491231\u200e002X\u200e"
    assert problem_with(pasted) is None and normalize(pasted) == NUMBER
    assert redact(f"证件{pasted}") == f"证件\u200e{REDACTED_ID}\u200e"
    resident = ResidentCreate.model_validate({
        "name": "王秀英", "id_number": pasted, "phone": "139\u00ad1234\u00ad5678",
        "consent": {"contact": True}})
    assert (resident.id_number, resident.phone) == (NUMBER, "13912345678")


def test_the_list_holds_no_character_python_already_counts_as_whitespace() -> None:
    """``\\s`` covers the spaces (U+3000, U+2009, U+00A0 ...): the list is what it does not."""
    assert not [hex(c) for c in INVISIBLE_CODE_POINTS if chr(c).isspace()]
