"""What personal data looks like in free text: every rule at once (``rule_spans``), over the
modules that hold them by what they find: ``markers`` (what replaces it), ``folding`` (how a
text is read), ``numbers`` (ID numbers, phones, accounts, plates, e-mail addresses, and what a
caller's id must not hold), ``addresses`` and ``names``. ``shared.kernel.privacy.redaction``
applies them; ``known_person`` adds the rules for one resident the text is about. What the
rest of sixstep imports from here is re-exported (``__all__``), as before the split (scrub50;
the markers and the surnames are imported from ``markers`` and ``names``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.kernel.privacy.addresses import (
    _A_ROOM_OF_USE,
    _LIVES_IN_ROOM,
    _address_spans,
)
from shared.kernel.privacy.folding import (
    SPELLED_LEAST,
    TAG_CODE_POINTS,
    across_lines,
    fold,
    over_marks,
    short_lines_joined,
    spaced_out,
    spelled_digits,
    spoken_numbers,
    without_marks,
    without_unseen,
)
from shared.kernel.privacy.markers import (
    REDACTED_ACCOUNT,
    REDACTED_ADDRESS,
    REDACTED_EMAIL,
    REDACTED_ID,
    REDACTED_PHONE,
)
from shared.kernel.privacy.names import name_after_a_number, name_before_a_number, name_spans
from shared.kernel.privacy.numbers import (
    _ANY_DIGIT,
    _ANY_LATIN,
    _CHAT_ID,
    _EMAIL,
    _MEASURE,
    _chat_account,
    digits_of,
    number_spans,
    personal_data_in,
    personal_number_in,
)

__all__ = ["SPELLED_LEAST", "TAG_CODE_POINTS", "across_lines", "digits_of", "fold", "number_spans",
           "over_marks", "personal_data_in", "personal_number_in", "rule_spans",
           "short_lines_joined", "spaced_out", "spelled_digits", "spoken_numbers",
           "without_marks", "without_unseen"]

_ANY_UNIT = re.compile(r"[号弄幢栋座层楼室户组排]|单元")
_ANY_CHAT = re.compile(r"微信|[Ww]e[Cc]hat|[wWvV][xX]|[Vv]信|QQ|qq|钉钉|支付宝|[Aa]lipay|抖音|快手"
                       r"|微博|小红书|[Bb]站|哔哩哔哩|[Dd]ouyin|[Tt]ik[Tt]ok|[Kk]uaishou|[Ww]eibo"
                       r"|[Bb]ilibili|LINE|Line|[Kk]akao|[Tt]elegram|扣扣|企鹅|[薇威徽]信|加[薇Vv]")


def rule_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """Every rule's finds. Each rule runs only when the text has what it needs (a digit, a
    Latin letter, a unit, a form of address ...): most notes have none of these."""
    digits = _ANY_DIGIT.search(text) is not None
    latin = _ANY_LATIN.search(text) is not None
    if digits:
        for start, end, marker in number_spans(text):
            yield start, end, marker
            if marker in (REDACTED_PHONE, REDACTED_ID):  # 13912345678王秀英
                yield from name_after_a_number(text, end)
                yield from name_before_a_number(text, start)  # 常桂香13955556666
    if (digits or latin) and _ANY_CHAT.search(text):
        for m in _CHAT_ID.finditer(text):
            if _chat_account(m):
                yield m.start("n"), m.end("n"), REDACTED_ACCOUNT
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield m.start(), m.end(), REDACTED_EMAIL
    if (digits and (latin or "-" in text)) or _ANY_UNIT.search(text):
        for start, end in _address_spans(text, english=digits and latin):
            yield start, end, REDACTED_ADDRESS
    if "住" in text:
        for m in _LIVES_IN_ROOM.finditer(text):
            if not _MEASURE.match(text, m.end()) and not _A_ROOM_OF_USE.match(text, m.end()):
                yield m.start("n"), m.end("n"), REDACTED_ADDRESS
    yield from name_spans(text, latin)
