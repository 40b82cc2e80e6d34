"""Takes personal data out of free text before it is stored as an event, logged or exported.

Free text (the resident's own words, a clerk's notes, reasons, comments) is the one place where
personal data can slip into the log by habit. :func:`redact` replaces what it finds with a
marker saying what was there, e.g. ``[电话已隐去]``:

* **ID numbers**: 18-character resident ID numbers (with a plausible birth date), also typed
  with spaces or dashes (``310115 19850312 1234``) or in full-width digits; 15-digit old ones,
  passport, permit (回乡证, 台胞证) and disability certificate numbers, Taiwan's (身分證字號)
  and Hong Kong's with the check digit in brackets (A123456(7)) and the tail of an ID number after
  their keyword (``身份证后四位``, ``身份证尾号123X``);
  a 15-digit old one alone when its province and birth date are plausible (not after a
  serial's name: 合同号, 注册号 ...); after a serial's name an 18-digit one only when its
  check digit holds (受理号310115202612200001, a district, a day and a count, stays) or its
  birth date is before 2000 (受理号310115198503121236: an ID number, mistyped).
* **Phone numbers**: mobiles (``138 1234 5678``, ``138.1234.5678``, ``+86 138-...``),
  landlines with an area code (``021-5888 1234``, ``(021)58881234``, ``02158881234``),
  numbers from abroad (``+852 9123 4567``, ``00853 6612 3456``, ``852-9123-4567``,
  ``+1 415 555 0100``, Taiwan's mobile alone, ``0912-345-678``;
  not a serial after its name, ``受理号：00886...``) and any seven or more
  digits after 电话 / 手机 / 座机 / 联系 / 号码 / phone / tel / WhatsApp, and Hong Kong's or
  Macao's eight digits alone in two groups of four (``9123 4567``, ``6123-4567``), eight
  or seven digits alone (``62345678``, an old landline's ``6234567``: not a day, an amount, a
  count or a serial, ``发票 23856714``, ``订单 3456712``, ``电表读数 2345678``,
  ``补偿款 23865400``, ``Ref 31286547``), Japan's mobile
  (``090-1234-5678``) and Taiwan's landline (``(02) 2345-6789``) alone;
  a mobile or an ID number glued to a Latin word (``tel13812345678``,
  ``sfz11010519491231002X``) when the word is no hex digits.
  Their groups may be parted by what a clerk writes while the resident says them, too: a
  semicolon or full stop after each (``138；0013；8000``), the IME's wave dash (``～``), a tab
  or a new line (``\n``, ``\r\n``, U+2028); a list of amounts or counts so parted stays; a
  number wrapped onto the next line after a digit or two (``13\n800138000``) is one too, and a
  landline wrapped in two groups after its keyword (``电话6234\n5678``). An
  asterisk, a colon, x, × or 一 (typed for a dash) parts them only in the groups a phone or an
  ID number is written in (``138*0013*8000``, ``138一0013一8000``); single digits spaced out
  (``1 3 8 0 0 1 3 8 0 0 0``) are read as the number they make.
* **A hospital's numbers** after their name (``住院号12345678``, ``病历号：A20261234``).
* **Bank card and account numbers** (16-19 digits, or six or more after 卡号 / 账号 / 账户 /
  户号 / 社保卡号 / 医保号 ..., also with a letter first: ``社保卡号A12345678``, or read out in
  groups: ``燃气户号 12 3456 7890``; after a serial's name, 流水号, only when the Luhn check
  digit holds), chat, short-video and social accounts after their app's name (``微信号``,
  ``QQ``, ``支付宝``, ``抖音号 dy_wang88``, ``快手号``, ``微博 @wanglei_sh``, ``小红书号``;
  written past a chat's filter, ``扣扣``, ``企鹅号``, ``加薇``, ``加V``; ``LINE ID``,
  ``KakaoTalk``, ``Telegram``),
  a car's frame number after 车架号 (as a plate), **e-mail addresses**,
  **licence plates** (``沪A·12345``, ``沪AD12345``, ``沪A 1234学``; ``车牌A12345`` without the
  province after its name; ``沪12345`` without the city's letter in a note about a car).
* **Addresses**, by their shape: a number with a unit (号, 弄, 室, 栋, 幢, 单元, 楼, 组 ...)
  after a road, lane, village or estate name (``花木路1234弄5号``), or two units in a row
  (``3号楼401室``), or a strong unit alone (``602室``), or building-unit-room after an estate
  (``锦绣小区5-3-201``) or alone (``住12-3-402``); the place name before it goes too, the
  words before that stay (``住在[地址已隐去]``), and so do the district, town or city
  before the road or estate (``浦东新区[地址已隐去]``: they single no one out). English
  ones: ``No. 5, Lane 1234, Huamu Road``.
* **Names**, by what is known: a name with one separator between its characters
  (``李_建_国``, ``张 建 国``) or a space after the surname (``申请人：张 建国``, ``王 芳说``),
  initials (``W.X.Y.``, ``王XY说``, ``刘zq``, and alone before what the person did:
  ``WXY来过``), a Hong Kong name as its ID card romanises it (``Chan Tai Man``, ``Chan Man``),
  a Korean's or a Taiwanese's with a hyphen (``Kim Min-su``, ``Chen Chih-ming``), a Japanese
  name in romaji (``Sato Hanako``, ``Hiroshi Tanaka``), a mainland one in pinyin (``Zhang
  Jianguo``, ``zhang jianguo 来电``), an English given name before a Chinese surname (``Peter
  Chan``, ``Winston Chan``), ``Madam 黄``, ``黄sir``, a Japanese surname before 先生 / 女士 or
  any name before さん (``佐藤女士``, ``山田さん``), a surname or a whole name with a form of
  address (``王阿姨``, ``李先生``, ``王小明先生``,
  ``Mrs Wang``; in a Cantonese note ``陳生``, ``陳太``, ``黃伯``), a whole name before or after
  a post (``王建国局长``,
  ``副主任陈刚``: the post stays), a name after a word that introduces one
  (``申请人王秀英``, ``住户韩梅梅``, ``网格员周敏``, ``其侄女潘晓燕``, ``我叫李敏``,
  ``name: ...``), a name opening a sentence before a verb of speech (``王秀英说``) or what
  the person did (``刘志刚同意签字``), a name listed with sex and age or who they are
  (``张建国，男，45岁``,
  ``王小明（儿子）``), a nickname (``小王说``, ``找老李帮忙``, ``王姐``, ``李哥``,
  ``小芳说``), a name after 叫
  asking someone over (``叫张伟来一趟``), before 本人 (``王秀英本人签字``) or ending a clause
  after 联系 / 通知 ... (``已联系王秀英，``, ``已联系王秀英了``, each of ``已联系王秀英、李建国。``;
  not an office, ``已通知房管。``), before 的 and a relative (``张三丰的女儿``), after
  经办人 / 回复人 / 负责人 / 签收人 ... (``经办人李明说``), after 跟 / 给 / 请 and what was done
  with them (``跟王秀英沟通过了``, ``请王秀英于周一来``), 老 + surname + 头 (``老王头``); and,
  with a :class:`KnownPerson` (the resident the case names, from the vault), that resident's
  own name, its variants (surname + 阿姨 / 老师 / 先生 / 女士 / 大爷 / 奶奶 ..., 老 + surname,
  the given name with a form of address, the name in pinyin, a name of three characters or
  more with one typed as a homophone: ``王秀瑛``, ``汪秀英``), phone, ID number and address
  (also without the province, city and district).

What stays: dates (``2026-12-10``, ``12月10号``), times, amounts (``1234.50元``), policy
numbers (``沪人社规〔2024〕12号``), catalogue codes, counts, ages, window numbers
(``5号窗口``), the center's hotlines (``12345``). A name the vault does not know, typed alone
with nothing around it that marks it as a name, cannot be told from other words and stays:
that is what the known-person rules are for.

A stretch typed a character at a time (``张 建 国 的 电 话 1 3 8 ...``: four characters or more,
one space, or the same two spaces or tab, between each) is also read without its spaces, as the
clerk meant it; so are a mobile's or an ID number's digits read out one at a time with the
groups parted otherwise (``138 0 0 1 3 8 0 0 0``). A name typed half in pinyin (``Zhang
建国来过``, ``张 Jianguo 来电``, in lower case too: ``zhang建国来过``) before what the person said
or did goes, and after whom the clerk reached or told (``联系zhang建国``, ``给Zhang建国打电话``).
A name glued after a day or a clock's time (``20日张建国来过``, ``31日23:30李秀英来电``) or
with the time before its verb (``张建国今天来过``) goes; calls counted (``上午高峰来电多``) and a
company (``今天华为来电``) stay. A romaji surname alone or a name's initials after whom the
clerk reached or listed (``联系sato``, ``和ohta一起来``, ``给wxy打电话``, ``WXY和zjg来过``; not
the pronoun ``ta``), romaji in lower case (``sato hanako来电``) and a romaji surname alone
before what the person did (``tanaka来过``) go.
Since scrub53 so do a name after 陪 / 替 or before 一起 (``陪张建国去``, ``和刘志刚一起来``),
before 夫妇 / 两口子 / 他妈, in 【】 / 「」 (``【张建国】来办``), right after a phone or an ID
number (``13912345678王秀英``), ending a note after 收： / 回访： or 的是 (``材料已收：张建国``),
joined by a middle dot (``买买提·艾力``), with the surname 单 (``单国强来办``), and three whole
names or more listed alone (``张建国,王秀英,刘志刚``).
Since redteam108 also with a space, a tab or an emoji before what the person did
(``谭永康👍来过``), after 陪着 (``陪着段玉芬去``), each of a list before 一起, before 他姐 /
爱人 / 老公, in 〔〕 / 〖〗 or ( ) before a doing, on the line after a label's colon
(``来访：\n邱志华``), after 备注 / 登记 / 对象 (``备注：邱志华``), in lists parted by ；, / or
lines, dotted with a full stop (``伊力哈木．托合提``), a phone and a space before
(``13812349876 黎少华``), and the surname 赖.
Since scrub55 also two whole names alone parted by a comma (``邱志华,廖美玲``), a name in 《》
before a doing or alone in quotes closing a note (``备注“乔玉兰”``), glued before its phone
(``常桂香13955556666，``), after a numbered room or 号 in a list (``2号贺国平，3号赖文杰``), a
Western name written with a dot (``约翰·史密斯``), 单 before one character or a form of
address (``单强来办``, ``单阿姨``), a space inside a name before an errand (``侯 建新来办``) and
pinyin names listed (``Hou Jianxin, Mao Xiuzhen``).

Text is matched on a copy whose full-width digits, letters and separators, and other scripts'
digits, are folded to ASCII, every middle dot to "·" and invisible characters (zero-width
spaces, joiners, direction marks, a flag's tag characters) to spaces, one character for one,
so positions carry over and the rest of the text is left as typed; when there are invisible
characters, numbers are also looked for with them left out, as the digits show on screen
(``1\u200b3\u200b8\u200b1...``). Numbers are also looked for with Chinese digits read
as digits (``一三八...``, ``幺``, ``壹贰叁``), and a run after a right-to-left control (U+202B,
U+202E, U+2067) is read as it is shown (reversed): when it holds anything, the whole run goes.
The redaction is idempotent (markers hold nothing any rule matches), so scrubbing again at
export changes nothing already scrubbed.
"""

from __future__ import annotations

import re
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shared.kernel.privacy.known_person import KnownPerson
from shared.kernel.privacy.markers import (
    REDACTED_NAME,
    REDACTED_TEXT,
)
from shared.kernel.privacy.names import (
    HONORIFICS,
    OFFICE_POSTS,
    listed_beside,
)
from shared.kernel.privacy.patterns import (
    SPELLED_LEAST,
    across_lines,
    fold,
    number_spans,
    over_marks,
    rule_spans,
    short_lines_joined,
    spaced_out,
    spelled_digits,
    spoken_numbers,
    without_marks,
    without_unseen,
)
from shared.kernel.privacy.traditional import simplified


def _merge(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans become one, named after the longest of them."""
    merged: list[tuple[int, int, str, int]] = []
    for start, end, marker in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if merged and start < merged[-1][1]:
            s0, e0, m0, longest = merged[-1]
            if end - start > longest:
                m0, longest = marker, end - start
            merged[-1] = (s0, max(e0, end), m0, longest)
        else:
            merged.append((start, end, marker, end - start))
    return [(s, e, m) for s, e, m, _ in merged]


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")


def _outside_ids(folded: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans not inside a UUID (a case id in a note or a log line: its groups of digits
    can look like a phone number, 1381-4234-8567)."""
    ids = [m.span() for m in _UUID.finditer(folded)] if "-" in folded else []
    if not ids:
        return spans
    return [s for s in spans if not any(s[0] < end and start < s[1] for start, end in ids)]


_WHOLE_NAME = re.compile("[\u4e00-\u9fff]{3,4}")
"""A find that is a whole name in characters (刘志刚, 欧阳建华): carried to its repeats."""
_TITLES = (*HONORIFICS, *OFFICE_POSTS)


def _repeated_names(folded: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Every other place the note says a whole name a rule found (刘志刚来了，刘志刚又走了: the
    second, with nothing a rule reads around it, stayed until redteam105). Only three or four
    characters: a two-character find (高峰) is a word as often, and would go from 高峰期; and
    no surname with a title (感谢谢老师 is teacher Xie, 谢谢老师 thanks)."""
    names = {folded[start:end] for start, end, marker in spans
             if marker == REDACTED_NAME and end - start > 2
             and _WHOLE_NAME.fullmatch(folded, start, end)
             and not folded.endswith(_TITLES, start, end)}
    return [(m.start(), m.end(), REDACTED_NAME) for name in names
            for m in re.finditer(re.escape(name), folded)]


_RTL_RUN = re.compile("[\u202b\u202e\u2067][^\u202c\u2069\n]*[\u202c\u2069]?")
"""Text after a right-to-left embedding, override or isolate (U+202B, U+202E, U+2067), up to
the character that ends it, the end of the line or of the text."""
_GROUPS = re.compile(r"\d+|\D")


def _shown(run: str) -> tuple[str, str]:
    """How a right-to-left run may be shown: every character reversed (the override:
    "\u202e8765 4321 831" reads 138 1234 5678), or its groups of digits in reverse order
    (an embedding or isolate: "\u20675678 1234 138" reads the same)."""
    return run[::-1], "".join(reversed(_GROUPS.findall(run)))


def _rtl_spans(text: str, known: KnownPerson | None) -> list[tuple[int, int, str]]:
    """Each right-to-left run that, as shown, holds what any rule finds: the whole run, so
    nothing of it is left to be read backwards."""
    if not any(c in text for c in "\u202b\u202e\u2067"):
        return []
    found = []
    for m in _RTL_RUN.finditer(text):
        for shown in _shown(simplified(fold(m.group()))):
            hits = list(rule_spans(shown)) + (list(known.spans(shown)) if known else [])
            if hits:
                found.append((m.start(), m.end(), hits[0][2]))
                break
    return found


class RedactionFailed(RuntimeWarning):
    """A rule of the scrubber's failed on a text (a defect of its own): the text was replaced
    whole by ``REDACTED_TEXT``, or refused (:func:`refusing`). Names the exception's type
    and the text's length only."""


class Unscrubbable(Exception):
    """Raised by :func:`redact` inside :func:`refusing`: a rule failed on the text, which the
    caller can ask for again (a clerk's note on the write path). Holds nothing of the text."""


_REFUSING: ContextVar[bool] = ContextVar("scrubber_refusing", default=False)

#: How many texts the scrubber failed on in this process, by what became of them
#: (``refused``: a caller's text, asked again; ``replaced``: a log line's, a dead letter's, an
#: export's, given whole as ``REDACTED_TEXT``). ``RedactionFailed`` is a Python warning, shown
#: once a place by the default filters and never in the services' JSON logs: these counts are
#: what ``/metrics`` serves (``sixstep_scrubber_failures_total``) and an alert reads.
FAILURES: dict[str, int] = {"refused": 0, "replaced": 0}


@contextmanager
def refusing() -> Iterator[None]:
    """Within it, a rule that fails makes :func:`redact` raise :class:`Unscrubbable` instead
    of blanking the text: the write path of a text a person typed, who can be asked to say it
    otherwise (``shared.kernel.scrubbing``), so the note is neither stored blank nor as typed.
    A context variable, so ``redact``'s callers and stand-ins keep its signature."""
    token = _REFUSING.set(True)
    try:
        yield
    finally:
        _REFUSING.reset(token)


def redact(text: str, known: KnownPerson | None = None) -> str:
    """``text`` with personal data replaced by markers; ``known``: the resident the text is
    about, whose own name, phone, ID number and address go whatever form they take.

    Fails closed: a rule that raises (redteam108 found one: ``女儿陪来的`` raised IndexError in
    scrub53's companion rule, on the write path, in every log line and dead letter holding it,
    and in exports) gives ``REDACTED_TEXT`` for the whole text, never the text, and warns
    ``RedactionFailed`` (the exception's type and the length, nothing of the text); inside
    :func:`refusing` it warns the same and raises :class:`Unscrubbable`."""
    try:
        return _redact(text, known)
    except Exception as exc:
        refused = _REFUSING.get()
        FAILURES["refused" if refused else "replaced"] += 1
        warnings.warn(RedactionFailed(
            f"the scrubber failed on a text of {len(text)} characters "
            f"({type(exc).__name__}); it was {'refused' if refused else 'replaced whole'}"),
            stacklevel=2)
        if refused:
            raise Unscrubbable(type(exc).__name__) from None
        return REDACTED_TEXT


def _joins_within(joins: list[int], start: int, end: int) -> int:
    """How many of ``joins`` (ascending, as ``across_lines`` and ``short_lines_joined`` give
    them) fall strictly inside ``start``..``end``: by bisection, since a list of names each
    wrapped after its surname has as many joins as names (each name counted every join until
    redteam121: a field of 20,000 characters took 0.47 s, one of 40,000 1.9 s)."""
    return max(0, bisect_left(joins, end) - bisect_right(joins, start))


def _redact(text: str, known: KnownPerson | None) -> str:
    if not text:
        return text
    folded = simplified(fold(text))  # 陳先生來電, 家住幸福里3號: the rules read Simplified
    spans = list(rule_spans(folded))
    if known:
        own = list(known.spans(folded))
        spans += own
        for start, end, marker in own:  # 张建国，王秀英，材料都齐了: the one listed beside
            if marker == REDACTED_NAME:
                spans += listed_beside(folded, start, end)
    spoken = spoken_numbers(folded)
    if spoken is not None:  # 一三八一二三四五六七八, as a phone line's transcript has it
        spans += number_spans(spoken)
        if known:
            spans += known.spans(spoken)
    squeezed = without_unseen(folded, text)
    if squeezed is not None:  # digits or a name an invisible character parts, as they show
        view, kept = squeezed  # 张建\u200b国说: kept whole until redteam115 (number_spans only)
        found = list(rule_spans(view)) + (list(known.spans(view)) if known else [])
        spans += [(kept[start], kept[end - 1] + 1, marker) for start, end, marker in found]
    wrapped = across_lines(folded)
    if wrapped is not None:  # a number wrapped onto the next line, anywhere in it
        view, kept, joins = wrapped
        spans += [(kept[start], kept[end - 1] + 1, marker)
                  for start, end, marker in number_spans(view)
                  if _joins_within(joins, start, end) == 1]
    short = short_lines_joined(folded)
    if short is not None:  # 侯建\n新来过: a name wrapped after its first characters
        view, kept, joins = short
        spans += [(kept[start], kept[end - 1] + 1, marker)
                  for start, end, marker in rule_spans(view)
                  if marker == REDACTED_NAME and _joins_within(joins, start, end) == 1]
    spelled = spelled_digits(folded)
    if spelled is not None:  # 138 0 0 1 3 8 0 0 0: a mobile read out a digit at a time
        view, kept = spelled
        spans += [(kept[start], kept[end - 1] + 1, marker)
                  for start, end, marker in number_spans(view) if end - start >= SPELLED_LEAST]
    spaced = spaced_out(folded)
    if spaced is not None:  # 张 建 国 的 电 话 1 3 8 ...: a line typed a character at a time
        view, kept = spaced
        found = list(rule_spans(view)) + (list(known.spans(view)) if known else [])
        spans += [(kept[start], kept[end - 1] + 1, marker) for start, end, marker in found]
    marked = without_marks(folded)
    if marked is not None:  # Sato\u0304 Taro来过: the name rules read the letters unmarked
        view, kept = marked
        found = list(rule_spans(view)) + (list(known.spans(view)) if known else [])
        spans += [(kept[start], over_marks(folded, kept[end - 1] + 1), marker)
                  for start, end, marker in found]
    spans += _rtl_spans(text, known)
    if spans:
        spans += _repeated_names(folded, spans)
    spans = _outside_ids(folded, spans)
    if not spans:
        return text
    out, last = [], 0
    for start, end, marker in _merge(spans):
        out.append(text[last:start])
        out.append(marker)
        last = end
    out.append(text[last:])
    return "".join(out)
