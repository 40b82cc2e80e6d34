"""A text read in Simplified Chinese, one character for one: what every rule looks at, so a
note typed in Traditional characters (a clerk in Hong Kong or Taiwan, a pasted message, a
name on file from a Traditional ID card) is scrubbed as the same note in Simplified ones."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_HAN_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))
_RARE_HAN = "\U00020000-\U0002b73f\U0002f800-\U0002fa1f"
"""Extensions B to D and their compatibility supplement, where OpenCC changes some 900
characters too (𠁞 is 𠀾: a rare character of a name, in a note that holds no other
Traditional one). A text holding any of them is converted: a class of those 900 is no
character set for ``re`` but a list it walks (30 µs a text where the common ones cost 0.1)."""
_HAN_ANYWHERE = re.compile(f"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff{_RARE_HAN}]")


@lru_cache(maxsize=1)
def _to_simplified() -> tuple[Any, re.Pattern[str]]:
    """OpenCC's Traditional-to-Simplified converter, and the characters it changes (國, 慶,
    說, 號 ...), found once per process (~12 ms) so that a text without any is not
    converted."""
    import opencc  # loaded with the first Chinese text, as pypinyin is with a resident

    converter = opencc.OpenCC("t2s")
    every = [chr(c) for low, high in _HAN_RANGES for c in range(low, high)]
    # one call, a character a line: no phrase spans two lines
    changed = [c for c, s in zip(every, converter.convert("\n".join(every)).split("\n"),
                                 strict=True) if s != c]
    return converter, re.compile("[" + "".join(changed) + _RARE_HAN + "]")


def simplified(text: str) -> str:
    """``text`` in Simplified Chinese, one character for one (so positions carry over). A
    text without a character Traditional Chinese writes otherwise is returned as it is."""
    if not _HAN_ANYWHERE.search(text):
        return text
    converter, traditional = _to_simplified()
    if not traditional.search(text):
        return text
    if "\ud800" <= max(text):  # the reading only: the stored text is cut from ``text``
        text = _LONE_SURROGATE.sub("\ufffd", text)
    out = converter.convert(text)
    if len(out) == len(text):
        return out
    return "".join(c if len(one := converter.convert(c)) != 1 else one for c in text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""Half a UTF-16 pair, which a JSON body may hold (``"\\ud842"``: json.loads takes it), and
OpenCC, which reads UTF-8, refuses with an error: read as U+FFFD, one for one."""
