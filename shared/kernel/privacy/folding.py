"""How the rules read a text: full-width characters folded to ASCII one for one, and the
views of a text typed otherwise (invisible characters, marks apart from their letters, a
number wrapped across lines, a line spaced a character at a time, digits read out)."""

from __future__ import annotations

import re
import unicodedata

from shared.kernel.invisible import INVISIBLE_CODE_POINTS

#: The tag characters (U+E0000 to U+E007F): an emoji flag's letters, shown as nothing.
TAG_CODE_POINTS = range(0xE0000, 0xE0080)

_HAN = re.compile(r"[\u4e00-\u9fff]")

# -- folding: full-width to ASCII, one character for one ---------------------------------

_FOLD = {**{0xFF10 + i: ord("0") + i for i in range(10)},
         **{0xFF21 + i: ord("A") + i for i in range(26)},
         **{0xFF41 + i: ord("a") + i for i in range(26)},
         0x3000: ord(" "), 0xA0: ord(" "), 0xFF0F: ord("/"), 0xFF5C: ord("|"),
         # Every dash an IME offers between a number's groups (138—0013—8000, the em dash
         # of a Chinese keyboard's shift-minus; the figure, en, horizontal-bar, small and
         # box-drawing dashes, the katakana long mark a Japanese IME gives) as "-".
         **dict.fromkeys((0xFF0D, *range(0x2010, 0x2016), 0x2212, 0x2E3A, 0x2E3B, 0xFE58,
                          0xFE63, 0x2500, 0x2501, 0x30FC), ord("-")),
         0xFF0E: ord("."), 0xFF08: ord("("), 0xFF09: ord(")"),
         0xFF0B: ord("+"), 0xFF20: ord("@"), 0xFF3F: ord("_"),
         # The other middle dots a name's parts are joined with (阿卜杜拉・艾买提: the IME's
         # katakana dot, its half-width form, a bullet, a hyphenation point) as "·".
         **dict.fromkeys((0x30FB, 0xFF65, 0x2022, 0x2027, 0x22C5, 0x2219), 0xB7),
         # Characters nobody sees (a zero-width space or joiner pasted with a number, a
         # soft hyphen, a direction mark, a variation selector ..., ``shared.kernel.invisible``)
         # as a space: "139\u200b1234\u200b5678" is a phone number as it looks on screen.
         **dict.fromkeys(INVISIBLE_CODE_POINTS, ord(" ")),
         # The tag characters (an emoji flag's letters: none shows) too.
         **dict.fromkeys(TAG_CODE_POINTS, ord(" ")),
         # The other spaces (thin, hair, narrow no-break ... a contact card's "139 1234 5678").
         **dict.fromkeys((*range(0x2000, 0x200B), 0x202F, 0x205F, 0x1680), ord(" ")),
         # Digits of other scripts and styles, one character each (Arabic-Indic ١٣٨, the
         # mathematical bold 𝟏𝟑𝟖 a phone app pastes, circled ①③⑧, superscripts), as ASCII:
         # the rules below look for ASCII digits next to each other.
         # A Latin letter with a mark on it (Satō, Kōno Tarō: romaji's long vowels; pinyin's
         # tones, Zhāng) as the letter: the name rules read plain letters (scrub49).
         **{cp: ord(base) for cp in range(0xC0, 0x250)
            if len(base := unicodedata.normalize("NFD", chr(cp))[0]) == 1 and base.isascii()
            and base.isalpha() and chr(cp) != base},
         **{cp: ord("0") + unicodedata.digit(chr(cp)) for cp in range(0x80, 0x20000)
            if cp not in range(0xFF10, 0xFF1A) and unicodedata.digit(chr(cp), None) is not None}}


_UNSEEN = frozenset((*INVISIBLE_CODE_POINTS, *TAG_CODE_POINTS))


def without_unseen(folded: str, text: str) -> tuple[str, list[int]] | None:
    """``folded`` without the characters of ``text`` nobody sees, and where each character
    left stood; None when there are none. A number with one of them between each of its
    digits (``1\u200b3\u200b8\u200b1...``, pasted from an app that keeps numbers from being
    linked) shows as 13812345678, but read as spaces it is eleven single digits."""
    if not any(ord(c) in _UNSEEN for c in text):
        return None
    kept = [i for i, c in enumerate(text) if ord(c) not in _UNSEEN]
    return "".join(folded[i] for i in kept), kept


_MARK = re.compile("[\u0300-\u036f]")


def without_marks(folded: str) -> tuple[str, list[int]] | None:
    """``folded`` without the marks typed as characters of their own after a letter (Sato\u0304,
    Zha\u0304ng: text decomposed, as a Mac or a phone's keyboard pastes it), and where each
    character left stood; None when there is none. ``fold`` reads Satō's ō as o only when it is
    one character: its mark alone stops every name rule at the letter (kept until redteam89)."""
    if _MARK.search(folded) is None:
        return None
    kept = [i for i, c in enumerate(folded) if not _MARK.match(c)]
    return "".join(folded[i] for i in kept), kept


def over_marks(folded: str, end: int) -> int:
    """``end`` moved past the marks right after it: a name's last letter's mark goes with it."""
    while end < len(folded) and _MARK.match(folded, end):
        end += 1
    return end


_WRAP = re.compile(r"(?<=\d)[ \t]*(?:\r?\n|[\x85\u2028\u2029])[ \t]*(?=\d)")
_ANY_LINE_END = re.compile("[\n\x85\u2028\u2029]")
_DIGITS_BEFORE = re.compile(r"\d{1,3}$")
_DIGITS_AFTER = re.compile(r"\d{1,3}")


def across_lines(folded: str) -> tuple[str, list[int], list[int]] | None:
    """``folded`` with each line end that parts a number's fragment from the rest left out (a
    line end with fewer than three digits on one side of it, and the spaces around it), where
    each character left stood, and where in it each such line end was; None when there is
    none. A number a narrow box or a chat wrapped anywhere (手机13\\n800138000, 证件3\\n101...)
    shows as two lines, and the rules take a line end only after a group of three digits or
    more; numbers listed one a line (20261220\\n20261221) are whole on each line."""
    if _ANY_LINE_END.search(folded) is None:
        return None
    cuts = []
    for m in _WRAP.finditer(folded):  # a digit on either side: both searches find one
        start, end = m.span()
        before = _DIGITS_BEFORE.search(folded, max(0, start - 3), start)
        after = _DIGITS_AFTER.match(folded, end)
        if before is not None and after is not None and min(
                len(before.group()), len(after.group())) < 3:
            cuts.append((start, end))
    return _cut(folded, cuts)


def _cut(folded: str, cuts: list[tuple[int, int]]) -> tuple[str, list[int], list[int]] | None:
    """``folded`` with each of ``cuts`` (start, end) left out, where each character left stood,
    and where in it each cut was; None when there is none."""
    if not cuts:
        return None
    kept: list[int] = []
    joins: list[int] = []
    last = 0
    for start, end in cuts:
        kept.extend(range(last, start))
        joins.append(len(kept))
        last = end
    kept.extend(range(last, len(folded)))
    return "".join(folded[i] for i in kept), kept, joins


_SHORT_LINE = re.compile(r"(?:^|(?<=\n))[ \t]*[\u4e00-\u9fff]{1,2}(?P<cut>[ \t]*\r?\n[ \t]*)"
                         r"(?=[\u4e00-\u9fff])")


def short_lines_joined(folded: str) -> tuple[str, list[int], list[int]] | None:
    """``folded`` with the line end after each line of one or two Chinese characters left out
    (and the spaces around it), as :func:`across_lines`'s, when the next line opens with one
    too; None when there is none. A name a narrow box wrapped (侯建\n新来过, 侯\n建新来办) shows
    as a line of its first characters; ``redact`` keeps only the names found across a join
    (scrub56)."""
    if "\n" not in folded:
        return None
    return _cut(folded, [m.span("cut") for m in _SHORT_LINE.finditer(folded)])


_SPACED_RUN = re.compile(r"\S(?P<g> {1,2}|\t)\S(?:(?P=g)\S){2,}")
_SPACED_HINT = re.compile(r"(?P<g> {1,2}|\t)\S(?P=g)\S(?P=g)")
"""What four characters parted by the same one or two spaces or tab hold (a space or a tab
first: ``re`` skips to one)."""
_SPACED_LINE_MIN = 4


def spaced_out(folded: str) -> tuple[str, list[int]] | None:
    """``folded`` with the spaces of a stretch typed a character at a time left out (张 建 国
    的 电 话 1 3 8 ..., four characters or more each parted from the next by one space, or
    by the same two spaces or tab all along: 张  建  国  来  过, a form's cells pasted; a
    full-width space is one space once folded), and where each character left stood; None
    when there is none. Read so, the line is what the clerk meant (张建国的电话138...) and
    every rule finds in it what it finds in any note; a name's rule that reads the spaces
    themselves (``_SPACED_NAME``: 张 建 国说) cannot tell a name from 高 兴 地 说 in such a
    line. One pass: each run is read once, and a character glued to the run's first or last
    (ab c d e) is no part of it. Two spaces or a tab were kept until redteam80."""
    if (" " not in folded and "\t" not in folded) or _SPACED_HINT.search(folded) is None:
        return None
    cuts: list[int] = []
    for m in _SPACED_RUN.finditer(folded):
        start, end = m.span()
        step = len(m.group("g")) + 1  # a character and what parts it from the next
        if start and not folded[start - 1].isspace() and not _HAN.match(folded, start):
            start += step  # "ab c d": b is a word's end, not a character typed alone
        if end < len(folded) and not folded[end].isspace() and not _HAN.match(folded, end - 1):
            end -= step  # a Chinese one is (备注：张 建 国 来 过): no space parts words there
        if (end - start + step - 1) // step >= _SPACED_LINE_MIN \
                and _HAN.search(folded, start, end):
            for first in range(start + 1, end, step):  # digits alone: ``_SPACED`` reads them
                cuts.extend(range(first, first + step - 1))
    if not cuts:
        return None
    gone = set(cuts)
    kept = [i for i in range(len(folded)) if i not in gone]
    return "".join(folded[i] for i in kept), kept


_SPELLED = re.compile(r"(?<![\d\-])\d{1,4}(?:(?: {1,2}| ?- ?)\d{1,4}){5,17}(?![\d\-])")
_SPELLED_HINT = re.compile(r"\d(?: {1,2}| ?- ?)\d(?: {1,2}| ?- ?)\d(?: {1,2}| ?- ?)\d")
_SPELLED_SINGLES = 6
SPELLED_LEAST = 11
"""A mobile's or an ID number's digits read out one at a time and typed as heard (redteam80):
six single digits or more, each group parted by one or two spaces or a dash, the parting
not the same all along (1 3 8  0 0 1 3  8 0 0 0, 138 0 0 1 3 8 0 0 0, 1-3-8 0-0-1-3 8-0-0-0,
1 3 8 - 0 0 1 3 - 8 0 0 0), which ``_SPACED`` (one parting all along) does not read."""


def spelled_digits(folded: str) -> tuple[str, list[int]] | None:
    """``folded`` with the spaces and dashes of digits typed one at a time left out
    (``_SPELLED``), and where each character left stood; None when there are none. Only a
    mobile's or an ID number's length is taken from it (``SPELLED_LEAST`` digits or more): a
    list of scores or counts so typed has seven digits as easily as a landline."""
    if _SPELLED_HINT.search(folded) is None:
        return None
    cuts: list[int] = []
    for m in _SPELLED.finditer(folded):
        groups = re.findall(r"\d+", m.group())
        if sum(len(g) == 1 for g in groups) < _SPELLED_SINGLES \
                or sum(map(len, groups)) < SPELLED_LEAST:
            continue
        cuts.extend(i for i in range(m.start(), m.end()) if not folded[i].isdigit())
    if not cuts:
        return None
    gone = set(cuts)
    kept = [i for i in range(len(folded)) if i not in gone]
    return "".join(folded[i] for i in kept), kept



def fold(text: str) -> str:
    """Full-width digits, letters, spaces and separators as ASCII, other scripts' digits as
    ASCII, the middle dots as "·", and invisible characters as spaces (same length: positions
    carry over)."""
    return text.translate(_FOLD)


_HAN_DIGITS = str.maketrans("〇零一二三四五六七八九幺壹贰叁肆伍陆柒捌玖",
                            "00123456789" "1" "123456789")
_HAN_DIGIT = re.compile("[〇零一二三四五六七八九幺壹贰叁肆伍陆柒捌玖]")


def spoken_numbers(folded: str) -> str | None:
    """``folded`` with numbers written in Chinese digits as ASCII digits (一三八一二三四五六七八,
    幺三八..., the capital 壹贰叁 of a form), the same length; ``None`` when it has too few of
    them to hold a number (so most notes, full of 一下 and 一直, pay nothing). Only the number
    rules read it: names and addresses hold these characters as themselves (张三, 三号楼)."""
    if len(_HAN_DIGIT.findall(folded)) < 4:
        return None
    return folded.translate(_HAN_DIGITS)
