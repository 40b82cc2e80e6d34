"""The counter recognises a returning resident by a masked name and phone."""

from __future__ import annotations

import pytest

from services.intake.masking import mask_name, mask_phone


@pytest.mark.parametrize(("name", "shown"), [
    ("王建英", "王*英"), ("李明", "李*"), ("欧阳春峰", "欧阳春峰"[0] + "**" + "峰"), ("张", "*"),
    (" 王建英 ", "王*英"), ("", "")])
def test_a_name_keeps_its_first_and_last_character(name: str, shown: str) -> None:
    assert mask_name(name) == shown


@pytest.mark.parametrize(("phone", "shown"), [
    ("13912345678", "139****5678"), ("021-12345678", "021-****5678"),
    ("0571-1234567", "057*-***4567")])
def test_a_phone_keeps_its_first_three_and_last_four_digits(phone: str, shown: str) -> None:
    assert mask_phone(phone) == shown
