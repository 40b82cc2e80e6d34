"""Takes personal data out of free text before it is stored as an event, logged or exported.

Free text (the resident's own words, a clerk's notes, reasons, comments) is the one place where
personal data can slip into the log by habit. :func:`redact` replaces what it finds with a
marker saying what was there, e.g. ``[电话已隐去]``:

* **ID numbers**: 18-character resident ID numbers (with a plausible birth date), also typed
  with spaces or dashes (``310115 19850312 1234``) or in full-width digits; 15-digit old ones,
  passport and permit numbers and "the last four digits of the ID card" after their keyword.
* **Phone numbers**: mobiles (``138 1234 5678``, ``138.1234.5678``, ``+86 138-...``),
  landlines with an area code (``021-5888 1234``, ``(021)58881234``, ``02158881234``) and any
  seven or more digits after 电话 / 手机 / 座机 / phone / tel.
* **Bank card and account numbers** (16-19 digits, or six or more after 卡号 / 账号 ...),
  **e-mail addresses**.
* **Addresses**, by their shape: a number with a unit (号, 弄, 室, 栋, 幢, 单元, 楼, 组 ...)
  after a road, lane, village or estate name (``花木路1234弄5号``), or two units in a row
  (``3号楼401室``), or a strong unit alone (``602室``); the place name before it goes too, the
  words before that stay (``住在[地址已隐去]``). English ones: ``No. 5, Lane 1234, Huamu Road``.
* **Names**, by what is known: a surname with a form of address (``王阿姨``, ``李先生``,
  ``Mrs Wang``), a name after a word that introduces one (``申请人王秀英``, ``name: ...``),
  a name opening a sentence before a verb of speech (``王秀英说``); and, with a
  :class:`KnownPerson` (the resident the case names, from the vault), that resident's own
  name, its variants (surname + 阿姨 / 老师 / 先生 / 女士 / 大爷 / 奶奶 ..., 老 + surname, the
  given name with a form of address, the name in pinyin), phone, ID number and address (also
  without the province, city and district).

What stays: dates (``2026-12-10``, ``12月10号``), times, amounts (``1234.50元``), policy
numbers (``沪人社规〔2024〕12号``), catalogue codes, counts, ages, window numbers
(``5号窗口``), the center's hotlines (``12345``). A name the vault does not know, typed alone
with nothing around it that marks it as a name, cannot be told from other words and stays:
that is what the known-person rules are for.

Text is matched on a copy whose full-width digits, letters and separators are folded to ASCII
one character for one, so positions carry over and the rest of the text is left as typed.
The redaction is idempotent (markers hold nothing any rule matches), so scrubbing again at
export changes nothing already scrubbed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

REDACTED_ID = "[身份证号已隐去]"
REDACTED_PHONE = "[电话已隐去]"
REDACTED_ACCOUNT = "[账号已隐去]"
REDACTED_EMAIL = "[邮箱已隐去]"
REDACTED_ADDRESS = "[地址已隐去]"
REDACTED_NAME = "[姓名已隐去]"

# -- folding: full-width to ASCII, one character for one ---------------------------------

_FOLD = {**{0xFF10 + i: ord("0") + i for i in range(10)},
         **{0xFF21 + i: ord("A") + i for i in range(26)},
         **{0xFF41 + i: ord("a") + i for i in range(26)},
         0x3000: ord(" "), 0xA0: ord(" "), 0xFF0D: ord("-"), 0x2010: ord("-"),
         0x2011: ord("-"), 0x2012: ord("-"), 0x2013: ord("-"), 0x2212: ord("-"),
         0xFF0E: ord("."), 0xFF08: ord("("), 0xFF09: ord(")"),
         0xFF0B: ord("+"), 0xFF20: ord("@"), 0xFF3F: ord("_")}


def fold(text: str) -> str:
    """Full-width digits, letters, spaces and separators as ASCII (same length)."""
    return text.translate(_FOLD)


# -- numbers -------------------------------------------------------------------------------

_ANY_DIGIT = re.compile(r"\d")
_ANY_LATIN = re.compile(r"[A-Za-z]")

_SEP = r"[ .\-]?"  # one optional separator between digits: 138 1234 5678, 138.1234.5678
_ID_18 = re.compile(r"(?<![0-9A-Za-z])[1-9](?:" + _SEP + r"\d){16}" + _SEP
                    + r"[0-9Xx](?![0-9A-Za-z])")
_ID_WORD = (r"(?:身份证|证件|居民身份|护照|通行证|居住证|\bID\b|\bI\.D\.|\b[Pp]assport\b)"
            r"(?:号码|号|编号|\s?[Nn]umber|\s?No\.?|#)?(?:的)?")
_ID_KEYWORD = re.compile(_ID_WORD + r"(?:是|为|:|：|\s)*"
                         r"(?P<n>[A-Z]{0,2}\d(?:" + _SEP + r"[0-9Xx]){5,17})")
_ID_TAIL = re.compile(_ID_WORD + r"(?:后|末|最后)[四六46]位(?:数字)?(?:是|为|:|：|\s)*"
                      r"(?P<n>[0-9Xx]{4,6})(?![0-9])")
_CARD = re.compile(r"(?<![0-9A-Za-z])\d{4}(?:[ \-]?\d{4}){3}(?:[ \-]?\d{1,3})?(?![0-9A-Za-z])")
_ACCOUNT_KEYWORD = re.compile(
    r"(?:卡号|账号|帐号|银行卡|社保卡|医保卡|存折|\baccount\b|\bcard\b)(?:号码|号)?(?:是|为|:|：|\s)*"
    r"(?P<n>\d(?:[ \-]?\d){5,})", re.IGNORECASE)
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:(?:\+|00)?86[ \-]?|\(\+?86\)[ \-]?)?"
                     r"1[3-9]\d(?:" + _SEP + r"\d){8}(?!\d)")
_LANDLINE = re.compile(r"(?<![0-9A-Za-z])(?:\(0\d{2,3}\)|0\d{2,3})[ \-]?[2-9]\d{2,3}[ \-]?"
                       r"\d{4}(?!\d)")
_LANDLINE_INTL = re.compile(r"(?:\+|00)86[ \-]?(?:\(0?\d{2,3}\)|0?[1-9]\d{1,2})[ \-]?"
                            r"[2-9]\d{2,3}[ \-]?\d{4}(?!\d)")
_PHONE_KEYWORD = re.compile(
    r"(?:电话|手机|座机|联系方式|\b(?:tel|telephone|phone|mobile|cell)\b)(?:号码|号)?"
    r"[^0-9\n]{0,6}?"
    r"(?P<n>\d(?:[ \-]?\d){6,})", re.IGNORECASE)
_TAIL_KEYWORD = re.compile(r"(?:手机|电话)?尾号(?:是|为|:|：)?\s*(?P<n>\d{4})(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


_DATE_SHAPE = re.compile(r"\d{4}[ .\-]\d{1,2}[ .\-]\d{1,2}|\d{1,2}[ .\-]\d{1,2}[ .\-]\d{4}")


def _plausible_id(digits: str) -> bool:
    """Region, birth date and length of an 18-character resident ID number."""
    year, month, day = int(digits[6:10]), int(digits[10:12]), int(digits[12:14])
    return 1850 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def _digits(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


# -- addresses -----------------------------------------------------------------------------

_NUM = r"(?:\d+(?:-\d+)?|[〇零一二三四五六七八九十百千两]+)"
_UNIT = r"(?:号楼|号院|支弄|单元|号|弄|幢|栋|座|层|楼|室|户|组|排)"
_ADDRESS_CORE = re.compile(r"(?:" + _NUM + r"\s*" + _UNIT + r")+(?:\s*\d{3,5}(?![\d号]))?")
_STRONG_UNITS = ("室", "弄", "幢", "栋", "单元", "号院", "支弄")
_PLACES = ("路", "街", "大道", "巷", "弄", "村", "小区", "新村", "花园", "公寓", "苑", "家园",
           "大厦", "广场", "公馆", "府", "湾", "城", "镇")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_STOP = frozenset("在到去的了是说她他我你们住于从和与及或即其为把被给向对就都也还又"
                  "已要想称讲问请前后今昨址")
_LONGEST_PLACE = 12
_ENGLISH_PLACE = (r"(?:[A-Z][a-z]+\s+){1,3}(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Boulevard|"
                  r"Blvd|Drive|Way|Village|Gardens?|Estate|Residence|Apartments)\b\.?")
_ENGLISH_NUM = (r"(?:No\.?|Number|#|Lane|Room|Rm\.?|Apt\.?|Apartment|Flat|Unit|Building|"
                r"Bldg\.?|Block|Blk\.?)\s*\d+[A-Za-z]?\b")
_ENGLISH_ITEM = (r"(?:" + _ENGLISH_NUM + r"|\d{1,5}[A-Za-z]?\s+" + _ENGLISH_PLACE + r"|"
                 + _ENGLISH_PLACE + r"(?:\s+\d{1,5}\b)?)")
_ENGLISH_ADDRESS = re.compile(_ENGLISH_ITEM + r"(?:,?\s*" + _ENGLISH_ITEM + r")*")
_ENGLISH_STRONG = re.compile(r"\b(?:Lane|Room|Rm|Apt|Apartment|Flat)\b")


def _address_spans(text: str, english: bool = True) -> Iterator[tuple[int, int]]:
    for m in _ADDRESS_CORE.finditer(text):
        start, end = m.span()
        core = m.group()
        units = re.findall(_UNIT, core)
        place = start
        while place > 0 and start - place < _LONGEST_PLACE and _HAN.match(text[place - 1]) \
                and text[place - 1] not in _STOP:
            place -= 1
        named = text[place:start]
        anchored = any(named.endswith(p) for p in _PLACES)
        if anchored or len(units) >= 2 or any(u in _STRONG_UNITS for u in units):
            yield (place if anchored else start), end
    if not english:
        return
    for m in _ENGLISH_ADDRESS.finditer(text):
        found = m.group()
        if not re.search(r"\d", found):
            continue
        items = len(re.findall(_ENGLISH_ITEM, found))
        place = re.search(_ENGLISH_PLACE, found) is not None
        if place or items >= 2 or _ENGLISH_STRONG.search(found):
            yield m.span()


# -- names ---------------------------------------------------------------------------------

SURNAMES = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 西门 "
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 "
    "曹 彭 曾 肖 萧 田 董 袁 潘 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 "
    "范 金 石 廖 贾 夏 韦 付 傅 方 白 邹 孟 熊 秦 邱 江 尹 薛 闫 阎 段 雷 侯 龙 史 陶 黎 贺 顾 "
    "毛 郝 龚 邵 钱 严 覃 武 戴 莫 孔 汤 温 康 施 文 牛 樊 葛 邢 安 齐 易 乔 伍 庞 颜 倪 庄 "
    "聂 章 鲁 岳 翟 殷 詹 申 欧 耿 关 兰 焦 俞 左 柳 甘 祝 包 宁 尚 符 舒 阮 柯 纪 梅 童 凌 "
    "毕 季 裴 霍 涂 苗 谷 盛 曲 翁 冉 骆 蓝 游 辛 靳 管 柴 蒙 鲍 华 喻 祁 蒲 房 滕 屈 饶 "
    "解 牟 艾 尤 阳 穆 农 卓 古 吉 缪 简 车 项 连 芦 麦 褚 娄 窦 戚 岑 景 党 宫 费 卜 冷 晏 "
    "席 卫 米 柏 宗 瞿 桂 佟 臧 闵 苟 邬 边 卞 姬 仇 栾 隋 商 刁 沙 荣 巫 寇 桑 郎 甄 丛 仲 "
    "虞 敖 巩 佘 池 查 麻 迟 邝 向 常 万").split()
"""Common surnames (compound ones first). Left out: those that are everyday words right
before a form of address (和先生 is "and my husband")."""

_SURNAME = ("(?:" + "|".join(n for n in SURNAMES if len(n) > 1)
            + "|[" + "".join(n for n in SURNAMES if len(n) == 1) + "])")
HONORIFICS = ("老太太", "老先生", "老奶奶", "老大爷", "老伯伯", "阿姨", "老师", "先生", "女士",
              "小姐", "大爷", "大妈", "大娘", "奶奶", "爷爷", "阿婆", "阿公", "老伯", "伯伯",
              "叔叔", "婶婶", "大姐", "大哥", "师傅", "老太", "同志", "医生", "主任", "书记")
_HONORIFIC = "(?:" + "|".join(HONORIFICS) + ")"
_NOT_GIVEN = ("说讲称来去在的了是和与要想已没不也都又就对因问今昨前后末时天年月日们些个里面这那么样"
              "代本签申办同反表咨询打回未电给被让叫")
"""Characters that end a name rather than belong to it (王秀英说, 陈静代办)."""
_GIVEN = r"(?:(?![" + _NOT_GIVEN + r"])[\u4e00-\u9fff])"
_SURNAME_TITLE = re.compile(_SURNAME + _HONORIFIC)
_INTRODUCERS = (r"(?:居民|申请人|老人|患者|病人|家属|户主|联系人|姓名|名叫|叫做|名字叫|名字是|本人|"
                r"丈夫|妻子|儿子|女儿|母亲|父亲|老伴|爱人|监护人|代办人|委托人)")
_INTRODUCED = re.compile(
    _INTRODUCERS + r"(?:是|为|:|：|\s)*"
    r"(?P<n>" + _SURNAME + _GIVEN + r"{1,2})")
_SPEAKER = re.compile(r"(?:^|(?<=[，。；！？,.;!?\s]))(?P<n>" + _SURNAME + _GIVEN + r"{1,2})"
                      r"(?=说|称|表示|反映|讲|来电|来访|告诉)")
_ENGLISH_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Madam|Mdm|Auntie|Aunty|Uncle|Grandma|"
                            r"Grandpa)\.?\s+[A-Z][a-z]+(?:[ \-][A-Z][a-z]+)?")
_ENGLISH_INTRODUCED = re.compile(r"\b(?i:name is|name:|named|resident|applicant)\s+"
                                 r"(?P<n>[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2})")


# -- the resident the case names -----------------------------------------------------------

_ADMIN = re.compile(r"^.*?(?:特别行政区|自治区|自治州|省|市|区|县|旗|街道|镇|乡)")
ENGLISH_TITLES = ("mr", "mrs", "ms", "miss", "mx", "dr", "madam", "mdm", "auntie", "aunty",
                  "uncle", "grandma", "grandpa")
_LATIN_NAME = re.compile(r"[A-Za-z .\-']+")
_SQUEEZE = re.compile(r"[^\s.\-()·']+")  # what a squeezed text keeps
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_WORD = re.compile(r"[0-9A-Za-z]")
_LETTER = re.compile(r"[A-Za-z]")

Kind = Literal["digits", "latin", "han"]


@dataclass(frozen=True, repr=False)
class KnownPerson:
    """Who a case is about, as the vault holds them: scrubbed by name, phone, ID and address.

    Held only in memory, for the commands on one case; its ``repr`` shows nothing, so a log
    line or a traceback that meets it does not print the data.

    The variants are looked for as plain strings in a *squeezed* copy of the text (spaces,
    dots, dashes and brackets left out, ASCII in lower case): ``王 秀 英``, ``138-1234-5678``
    and ``Mrs. Wang`` are found as ``王秀英``, ``13812345678`` and ``mrswang``. No regex is
    built per person, so a new person costs nothing to prepare.
    """

    name: str = ""
    phone: str = ""
    id_number: str = ""
    address: str = ""

    def __repr__(self) -> str:
        return "KnownPerson(<hidden>)"

    def __bool__(self) -> bool:
        return any((self.name, self.phone, self.id_number, self.address))

    @cached_property
    def needles(self) -> list[tuple[str, Kind, str]]:
        """(squeezed variant, kind, marker), longest first."""
        found: dict[str, tuple[Kind, str]] = {}
        for kind, text in name_variants(self.name):
            found.setdefault(_squeezed(text), (kind, REDACTED_NAME))
        for digits in phone_variants(self.phone):
            found.setdefault(digits, ("digits", REDACTED_PHONE))
        id_number = _digits(fold(self.id_number)).lower()
        if len(id_number) >= 15:
            found.setdefault(id_number, ("digits", REDACTED_ID))
        for place in address_variants(self.address):
            found.setdefault(_squeezed(place), ("han", REDACTED_ADDRESS))
        return sorted(((n, k, m) for n, (k, m) in found.items() if n),
                      key=lambda x: len(x[0]), reverse=True)

    def spans(self, folded: str) -> Iterator[tuple[int, int, str]]:
        needles = self.needles
        if not needles:
            return
        squeezed = _Squeezed(folded)
        for needle, kind, marker in needles:
            at = squeezed.text.find(needle)
            while at >= 0:
                start = squeezed.original(at)
                end = squeezed.original(at + len(needle) - 1) + 1
                if kind == "han" or _bounded(folded, start, end,
                                             _WORD if kind == "digits" else _LETTER):
                    yield start, end, marker
                at = squeezed.text.find(needle, at + 1)


class _Squeezed:
    """A text without spaces, dots, dashes and brackets, ASCII in lower case, and the way
    back from a position in it to the position in the text."""

    def __init__(self, text: str) -> None:
        parts: list[str] = []
        self._starts: list[int] = []
        self._originals: list[int] = []
        length = 0
        for m in _SQUEEZE.finditer(text.translate(_ASCII_LOWER)):
            self._starts.append(length)
            self._originals.append(m.start())
            parts.append(m.group())
            length += len(m.group())
        self.text = "".join(parts)

    def original(self, at: int) -> int:
        k = bisect_right(self._starts, at) - 1
        return self._originals[k] + at - self._starts[k]


def _bounded(text: str, start: int, end: int, inside: re.Pattern[str]) -> bool:
    """No letter (or digit) right before ``start`` or right after ``end``."""
    return ((start == 0 or not inside.match(text[start - 1]))
            and (end >= len(text) or not inside.match(text[end])))


_SQUEEZED_OUT = re.compile(r"[\s.\-()·']+")


def _squeezed(text: str) -> str:
    return _SQUEEZED_OUT.sub("", fold(text).translate(_ASCII_LOWER))


def _surname_of(name: str) -> tuple[str, str]:
    for surname in SURNAMES:
        if name.startswith(surname) and len(name) > len(surname):
            return surname, name[len(surname):]
    return name[:1], name[1:]


def name_variants(name: str) -> list[tuple[Kind, str]]:
    """A name as people write it, each with its kind ("han" or "latin").

    Chinese: whole, 老 + surname, surname with every form of address (王阿姨, 王老师,
    王先生 ...), the given name alone and with 阿姨 / 姐 / 哥 / 奶奶 / 爷爷 when it has two
    characters or more; in pinyin: either way round (Wang Xiuying, Xiuying Wang) and the
    surname with Mr / Mrs / Ms / Auntie ... A Latin name on file: whole, reversed, and its
    last word with a title. Spaces, dots and dashes do not matter (the text is squeezed)."""
    name = re.sub(r"\s+", " ", fold(name)).strip()
    if not name:
        return []
    if _LATIN_NAME.fullmatch(name):
        words = [w for w in re.split(r"[\s.\-']+", name) if w]
        out: list[tuple[Kind, str]] = [("latin", " ".join(words))]
        if len(words) > 1:
            out.append(("latin", " ".join(reversed(words))))
        out += [("latin", f"{t} {words[-1]}") for t in ENGLISH_TITLES]
        return out
    han = name.replace(" ", "")
    surname, given = _surname_of(han)
    out = [("han", han)]
    if len(han) >= 2:
        out.append(("han", "老" + surname))
        if surname not in SURNAMES:  # else the general rule (surname + 阿姨 ...) has it
            out += [("han", surname + h) for h in HONORIFICS]
        if len(given) >= 2:
            out += [("han", given)] + [("han", given + h) for h in ("阿姨", "姐", "哥", "奶奶",
                                                                    "爷爷")]
    return out + [("latin", v) for v in pinyin_variants(surname, given)]


def pinyin_variants(surname: str, given: str) -> list[str]:
    """A Chinese name in pinyin: both orders, and the surname with a title (every reading
    of a one-character surname: 曾 is zeng and ceng)."""
    from pypinyin import Style, pinyin  # the catalogue's dependency, loaded when needed

    def syllables(text: str) -> str:
        return "".join(s[0] for s in pinyin(text, style=Style.NORMAL))

    readings = ({r for s in pinyin(surname, style=Style.NORMAL, heteronym=True) for r in s}
                if len(surname) == 1 else {syllables(surname)})
    out: list[str] = []
    given_py = syllables(given) if given else ""
    for family in sorted(r for r in readings if r.isascii() and r.isalpha()):
        out += [f"{t} {family}" for t in ENGLISH_TITLES]
        if given_py.isascii() and given_py.isalpha():
            out += [f"{family} {given_py}", f"{given_py} {family}"]
    return out


def phone_variants(phone: str) -> list[str]:
    """A phone number's digits, and a landline's also without its area code."""
    digits = _digits(fold(phone))
    if len(digits) < 7:
        return []
    out = [digits]
    national = digits.removeprefix("86") if len(digits) > 11 else digits
    if national.startswith("0"):
        area = 3 if national[1] in "12" else 4  # 010, 02x; 0xxx elsewhere
        if len(national) - area >= 7:
            out.append(national[area:])
    return out


def address_variants(address: str) -> list[str]:
    """An address whole, and without its province, city, district and street office, one
    level at a time (``上海市浦东新区花木路1234弄5号`` also as ``花木路1234弄5号``)."""
    address = re.sub(r"\s+", "", fold(address))
    out = [address] if len(address) >= 4 else []
    rest = address
    while (m := _ADMIN.match(rest)) and m.end() < len(rest):
        rest = rest[m.end():]
        if len(rest) >= 4:
            out.append(rest)
    return out


# -- the redactor --------------------------------------------------------------------------


_ANY_UNIT = re.compile(r"[号弄幢栋座层楼室户组排]|单元")
_ANY_HONORIFIC = re.compile(_HONORIFIC)
_ANY_INTRODUCTION = re.compile(_INTRODUCERS)
_ANY_SPEECH = re.compile(r"[说称讲]|表示|反映|来电|来访|告诉")


def _rule_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """Every rule's finds. Each rule runs only when the text has what it needs (a digit, a
    Latin letter, a unit, a form of address ...): most notes have none of these."""
    digits = _ANY_DIGIT.search(text) is not None
    latin = _ANY_LATIN.search(text) is not None
    if digits:
        for regex in (_ID_KEYWORD, _ID_TAIL):
            for m in regex.finditer(text):
                if not _DATE_SHAPE.fullmatch(m.group("n")):
                    yield m.start("n"), m.end("n"), REDACTED_ID
        for m in _ID_18.finditer(text):
            if _plausible_id(_digits(m.group())):
                yield m.start(), m.end(), REDACTED_ID
        for m in _ACCOUNT_KEYWORD.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_ACCOUNT
        for m in _CARD.finditer(text):
            yield m.start(), m.end(), REDACTED_ACCOUNT
        for regex in (_MOBILE, _LANDLINE_INTL, _LANDLINE):
            for m in regex.finditer(text):
                yield m.start(), m.end(), REDACTED_PHONE
        for m in _PHONE_KEYWORD.finditer(text):
            if not _DATE_SHAPE.fullmatch(m.group("n")):
                yield m.start("n"), m.end("n"), REDACTED_PHONE
        for m in _TAIL_KEYWORD.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_PHONE
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield m.start(), m.end(), REDACTED_EMAIL
    if (digits and latin) or _ANY_UNIT.search(text):
        for start, end in _address_spans(text, english=digits and latin):
            yield start, end, REDACTED_ADDRESS
    if _ANY_HONORIFIC.search(text):
        for m in _SURNAME_TITLE.finditer(text):
            yield m.start(), m.end(), REDACTED_NAME
    if _ANY_INTRODUCTION.search(text):
        for m in _INTRODUCED.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_NAME
    if _ANY_SPEECH.search(text):
        for m in _SPEAKER.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_NAME
    if latin:
        for regex in (_ENGLISH_TITLE, _ENGLISH_INTRODUCED):
            for m in regex.finditer(text):
                yield m.start("n") if "n" in regex.groupindex else m.start(), m.end(), \
                    REDACTED_NAME


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


def redact(text: str, known: KnownPerson | None = None) -> str:
    """``text`` with personal data replaced by markers; ``known``: the resident the text is
    about, whose own name, phone, ID number and address go whatever form they take."""
    if not text:
        return text
    folded = fold(text)
    spans = list(_rule_spans(folded))
    if known:
        spans += known.spans(folded)
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
