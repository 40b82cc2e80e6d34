"""Characters nobody sees, the one list every part of sixstep takes them from.

They come pasted with text (a WeChat message copied whole, a contact card, a spreadsheet's
cell) and inside a number (``139\u200b1234\u200b5678``): zero-width spaces and joiners, a
word joiner and the invisible operators, a byte-order mark, a soft hyphen, the Mongolian
vowel separator and selectors, direction marks, embeddings, overrides and isolates, the
Arabic letter mark, the combining grapheme joiner, variation selectors, the Hangul fillers
and the braille blank. None of them is whitespace to Python's ``\\s`` (U+2028, U+3000 and the
other spaces are), so whoever reads text as it looks on screen needs this list too:

* ``shared.kernel.typed`` trims them from both ends of what a person typed (a need made only
  of them is blank);
* ``shared.kernel.privacy.patterns`` reads each as a space when it looks for personal data;
* ``services.intake.idnumber`` and ``residents`` drop them between the groups of an ID number
  or a phone number, as the vault keeps and finds it.
"""

from __future__ import annotations

INVISIBLE_CODE_POINTS: tuple[int, ...] = (
    0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x180B, 0x180C, 0x180D, 0x180E, 0x180F,
    *range(0x200B, 0x2010),   # zero-width space, non-joiner, joiner; LRM, RLM
    *range(0x202A, 0x202F),   # embeddings and overrides, pop
    *range(0x2060, 0x2065),   # word joiner, invisible operators
    *range(0x2066, 0x206A),   # isolates
    0x2800, 0x3164, *range(0xFE00, 0xFE10), 0xFEFF, 0xFFA0)
"""Every character nobody sees, as code points."""

INVISIBLE = "".join(chr(c) for c in INVISIBLE_CODE_POINTS)
"""The same as a string, to put in a regex's character class (``[\\s{INVISIBLE}]``): none of
them means anything to ``re`` there."""

SELECTORS = "".join(chr(c) for c in (*range(0x180B, 0x180E), 0x180F, *range(0xFE00, 0xFE10)))
"""The variation selectors among them: each changes how the character before it shows (an
emoji's colour presentation, ``\u2764\ufe0f``), so at a text's end one belongs to the text."""
