"""The resident a text is about, as the vault holds them: their own name in every form people
write it, their phone, ID number and address, found however they are typed."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

from shared.kernel.privacy.folding import fold
from shared.kernel.privacy.markers import (
    REDACTED_ADDRESS,
    REDACTED_ID,
    REDACTED_NAME,
    REDACTED_PHONE,
)
from shared.kernel.privacy.names import HONORIFICS, RELATIVES, SURNAMES
from shared.kernel.privacy.numbers import digits_of
from shared.kernel.privacy.traditional import simplified as _simplified

_ADMIN = re.compile(r"^.*?(?:特别行政区|自治区|自治州|省|市|区|县|旗|街道|镇|乡)")
ENGLISH_TITLES = ("mr", "mrs", "ms", "miss", "mx", "dr", "madam", "mdm", "auntie", "aunty",
                  "uncle", "grandma", "grandpa")
_LATIN_NAME = re.compile(r"[A-Za-z .\-']+")
#: What a squeezed text leaves out: spaces and line ends, dots, dashes, brackets, and what
#: else parts a number's groups as a clerk writes it down (138；1234；5678, 5888～1234, 5888|1234,
#: 5888/1234, the full stop after a group, an underscore or an asterisk: 王_秀_英, 138*1234*5678,
#: kept until scrub47), and the combining marks of a text in decomposed
#: form (lǐ guóqìng pasted from a Mac, a mark after each vowel: redteam60 found it kept).
_OUT = r"\s.\-()·'/|;；~～〜。_*\u0300-\u036f"
_SQUEEZE = re.compile(f"[^{_OUT}]+")  # what a squeezed text keeps
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_LOWER_UNTONED = _ASCII_LOWER | {
    ord(toned): plain for plain, marks in (
        ("a", "āáǎàĀÁǍÀ"), ("e", "ēéěèĒÉĚÈ"), ("i", "īíǐìĪÍǏÌ"), ("o", "ōóǒòŌÓǑÒ"),
        ("u", "ūúǔùŪÚǓÙ"), ("v", "üǖǘǚǜÜǕǗǙǛ"), ("n", "ńňǹŃŇǸ"), ("m", "ḿḾ"))
    for toned in marks}
"""A text's Latin letters in lower case, and pinyin's toned vowels as the letters they are
(lǐ guóqìng, as a phone's keyboard writes it, is li guoqing; ü as pypinyin writes it, v): the
variants, from pypinyin, have no tones."""
_WORD = re.compile(r"[0-9A-Za-z]")
_LETTER = re.compile(r"[A-Za-z]")

Kind = Literal["digits", "latin", "han", "given", "nick", "word"]
"""How a variant is bounded: digits and Latin letters by no digit or letter beside them, a
Chinese name by nothing, a given name alone ("given") only where it stands as a name
(``_as_a_name``) when it is also a word (``WORD_NAMES``), what people call the resident for
short ("nick": 阿庆, 庆哥, 司马 of 司马建国) only where it stands as a name, always (阿根廷, 东方路
are no one), and a whole name of two characters that is an everyday word ("word":
``WORD_WHOLE_NAMES``, 高峰, 白雪) the same way."""


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
    others: tuple[KnownPerson, ...] = ()
    """Others the same text is about (代办: the relative applying for the resident)."""

    def __repr__(self) -> str:
        return "KnownPerson(<hidden>)"

    def __bool__(self) -> bool:
        return any((self.name, self.phone, self.id_number, self.address, *self.others))

    def also(self, other: KnownPerson | None) -> KnownPerson:
        """This person and ``other``, scrubbed together."""
        if not other:
            return self
        return KnownPerson(self.name, self.phone, self.id_number, self.address,
                           (*self.others, other))

    @cached_property
    def needles(self) -> list[tuple[str, Kind, str]]:
        """(squeezed variant, kind, marker), longest first."""
        found: dict[str, tuple[Kind, str]] = {}
        for kind, text in name_variants(self._simplified[0]):
            found.setdefault(_squeezed(text), (kind, REDACTED_NAME))
        if self._simplified[0] != self.name:  # 周乾 is Zhou Qian, though OpenCC reads 周干
            for kind, text in name_variants(self.name):
                if kind == "latin":
                    found.setdefault(_squeezed(text), (kind, REDACTED_NAME))
        for digits in phone_variants(self.phone):
            found.setdefault(digits, ("digits", REDACTED_PHONE))
        id_number = digits_of(fold(self.id_number)).lower()
        if len(id_number) >= 15:
            found.setdefault(id_number, ("digits", REDACTED_ID))
        for place in address_variants(self._simplified[1]):
            found.setdefault(_squeezed(place), ("han", REDACTED_ADDRESS))
        for other in self.others:
            for needle, kind, marker in other.needles:
                found.setdefault(needle, (kind, marker))
        return sorted(((n, k, m) for n, (k, m) in found.items() if n),
                      key=lambda x: len(x[0]), reverse=True)

    @cached_property
    def typed_names(self) -> tuple[str, ...]:
        """The Chinese names of three characters or more (this person's and the others'),
        whose one character typed wrong is still the name (``_mistyped``); also as written
        when OpenCC reads it otherwise (陈乾生, read 陈干生, is typed 陈钱生: qián, not gān)."""
        names = [n for n in dict.fromkeys(re.sub(r"\s+", "", fold(name))
                                          for name in (self._simplified[0], self.name))
                 if len(n) >= 3 and _ALL_HAN.fullmatch(n)]
        for other in self.others:
            names += [n for n in other.typed_names if n not in names]
        return tuple(names)

    @cached_property
    def _simplified(self) -> tuple[str, str]:
        """The name and the address on file in Simplified Chinese (as typed when they hold no
        Chinese)."""
        return _simplified(self.name), _simplified(self.address)

    def spans(self, folded: str) -> Iterator[tuple[int, int, str]]:
        """``folded`` is read in Simplified already (``redact`` converts a text once, for every
        rule: 國慶說明天來 is 国庆说明天来); converting it again cost a scan a text, and a whole
        second OpenCC pass for a text holding a rare character (𠀾)."""
        needles = self.needles
        if not needles:
            return
        squeezed = _Squeezed(folded)
        for name in self.typed_names:
            if name[1] not in folded and name[2] not in folded:
                continue  # most texts: two of the name's characters missing, no typo of it
            for start, end in _mistyped(squeezed.text, name):
                start, end = squeezed.original(start), squeezed.original(end - 1) + 1
                if folded[start] == name[0] or not _word_after_a_surname(name, folded, start,
                                                                          end):
                    yield start, end, REDACTED_NAME
        for needle, kind, marker in needles:
            at = squeezed.text.find(needle)
            while at >= 0:
                start = squeezed.original(at)
                end = squeezed.original(at + len(needle) - 1) + 1
                if kind == "han" or (_given_name_here(folded, needle, start, end)
                                     if kind == "given" else
                                     _as_a_name(folded, start, end, False)
                                     if kind in ("nick", "word") else
                                     _bounded(folded, start, end,
                                              _WORD if kind == "digits" else _LETTER)):
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
        for m in _SQUEEZE.finditer(text.translate(_LOWER_UNTONED)):
            self._starts.append(length)
            self._originals.append(m.start())
            parts.append(m.group())
            length += len(m.group())
        self.text = "".join(parts)

    def original(self, at: int) -> int:
        k = bisect_right(self._starts, at) - 1
        return self._originals[k] + at - self._starts[k]


_ALL_HAN = re.compile(r"[\u4e00-\u9fff]+")
_ONE_CHARACTER_SURNAMES = frozenset(n for n in SURNAMES if len(n) == 1)
"""What a surname typed as a homophone is still (汪秀英 for 王秀英): the IME offers the
surnames among its first candidates for a name. Not 和 for 何 (健康和平安), 理 for 李 (处理国庆),
成 for 陈 (完成建设): the word before the name's characters took its first."""
_RETROFLEX = re.compile(r"^([zcs])h")


@lru_cache(maxsize=4096)
def _sounds(char: str) -> frozenset[str]:
    """How a Chinese character is typed in pinyin, every reading, no tone, as an IME's fuzzy
    setting hears it: zh and z, ch and c, sh and s, -ng and -n alike (英 ying, 音 yin)."""
    from pypinyin import Style, pinyin  # the catalogue's dependency, loaded when needed

    return frozenset(_RETROFLEX.sub(r"\1", r).removesuffix("g")
                     for r in pinyin(char, style=Style.NORMAL, heteronym=True)[0]
                     if r.isascii() and r.isalpha())


def _mistyped(text: str, name: str) -> Iterator[tuple[int, int]]:
    """Where ``name`` (three Chinese characters or more) stands in ``text`` with one of its
    characters typed as another that sounds the same (王秀瑛, 汪秀英, 王绣英 for 王秀英): the pinyin
    IME offers the homophones in a row and a clerk in a hurry takes the wrong one. The others
    must be the name's own, in place, and a surname typed wrong still a surname
    (``_ONE_CHARACTER_SURNAMES``); a name of two characters has too few of them to tell
    a typo from another word (张为 in 主张为民), so it is looked for as typed only."""
    length = len(name)
    for i in range(length):
        anchor = name[:i] if i else name[1:]
        at = text.find(anchor)
        while at >= 0:
            start = at if i else at - 1
            if start >= 0 and start + length <= len(text) and text[start:start + i] == name[:i] \
                    and text[start + i + 1:start + length] == name[i + 1:]:
                typed = text[start + i]
                if typed != name[i] and _ALL_HAN.fullmatch(typed) \
                        and (i or typed in _ONE_CHARACTER_SURNAMES) \
                        and _sounds(typed) & _sounds(name[i]):
                    yield start, start + length
            at = text.find(anchor, at + 1)


_PERSON_AFTER = re.compile(
    r"说(?!明(?![天早晚年儿]))|讲(?![座课堂解究台])|称|表示|反映|告诉|本人|同意|不同意|答应|拒绝|签字|签收|签了|确认|"
    r"到场|打电话|来电|回电|腿|腰|身体|住院|生病|独居|[没未不]接电话|没接(?![地入口线管])|无人接|"
    r"核对|核实|沟通|商量|见面|面谈|通话|打过|补交|提交|递交|交来|交了|代办|"
    r"想问|想咨询|想了解|想申请|想办|约好|约了|家里|家中|家门|"
    r"所说|所述|名下|\d{1,3}岁|1[3-9]\d{9}(?!\d)|老人(?![节院家])|[（(][男女][，,、）)]|"
    r"的(?:" + "|".join(RELATIVES) + ")|" + "|".join(RELATIVES))
"""What is said of a person right after their given name (国庆说他明天来, 平安本人到场,
建设同意调解, 国庆的女儿来电): the name, whatever is before it. Since redteam121 also 老人 and
the sex in brackets (高峰老人行动不便, 文明（男，68岁）: a whole name that is a word was kept
there by scrub56)."""
_SUBJECT_AFTER = re.compile(
    r"来(?!临|年|自)|领取|办理了|已经|一直|满意|不满意|不在|电话|手机|微信|联系方式|"
    r"身份证|证件|银行卡|卡号|账号|户口|邮箱|住(?![房宅院])|残疾|失业|退休|工资|欠费|"
    r"的事(?![宜业务项])|的(?:材料|证件|户口本|申请表|低保|补贴|电话|手机)|"
    r"(?:不)?符合|要求(?![：:])|希望(?!工程|小学)|咨询(?![室台处点电热])|询问|"
    r"申请(?![表书人材])|办结|办理(?![须流指时地])|联系(?![人方单电])|没来|没有来|要办|想办")
"""What follows a person's given name and a word's as well (社区建设已经完成, 道路建设一直在推进,
基础设施建设来不及: redteam48 found them scrubbed): the name only where it stands as one
(``_NAME_BEFORE``, or after who told of them: 居民反映国庆来过). How to reach them too (秀英电话
138…, 国庆手机号换了: the number went, the given name beside it stayed), their papers and
what befell them (秀英身份证过期了, 秀英退休了; 城市建设户口 stays)."""
_CLAUSE_END = re.compile(r"[\s，。；！？、,.;!?）)：:“”\"'～~\-]|了|并|也|都|又|还|已|在|和|很|$")
_LISTED_WORDS = ("国庆", "平安", "建设", "和平", "健康", "安全", "幸福", "发展", "团结", "稳定",
                 "和谐", "文明", "美丽", "美好", "吉祥", "如意", "快乐", "长寿", "环保", "卫生",
                 "春节", "元旦", "中秋", "端午", "清明", "五一", "元宵", "重阳")
"""Words a given name that is a word is listed with (健康和平安, 国庆、中秋放假安排): the list is
of the words, but not when people are counted after it (国庆、平安两户: two households)."""
_NAME_BEFORE = re.compile(
    r"(?:^|[\s，。；！？、,.;!?（(：:“”\"'])$|(?:联系|通知|告知|转告|回访|陪同|探望|看望|走访|跟|给|请|"
    r"叫|找|让|帮|代|替|由|问|今天|昨天|上午|下午|晚上|刚才|居民|老人|申请人|家属|"
    r"(?<![参给共一赞如相协等不合陪会连认混雷])[与同]|"  # not 参与建设, 共同建设
    r"(?<![共温平缓调柔暖祥随总谦饱附讲求])" + "".join(f"(?<!{w})" for w in _LISTED_WORDS)
    + r"和|"  # 秀英和国庆来过; not 共和国庆, 健康和平安
    r"见到|见了|(?<![迎衔对连承交])接(?:到)?|收到|关于|把|将|电话|核实|经查|查明|"
    r"(?:^|[\s，。；！？、,.;!?（(：:]|已|并|再|特|专|需|将|可)为)$")
"""What a given name follows when it stands as a name though nothing said of a person comes
after it (已联系国庆。, 回访平安，满意, 国庆也来了): the clause's start, or who reached them;
a person listed before it (秀英和国庆来过, 小王和国庆都来过; not a word, 健康和平安), whom a
clerk saw, took a call or papers from (见到国庆了, 接国庆电话, 收到国庆的材料: redteam56)."""
_PERSON_LATER = re.compile(
    r"(?:今天|明天|昨天|上午|下午|晚上|刚才|刚刚|再次|上次|下周[一二三四五六日天]?)(?:"
    + _PERSON_AFTER.pattern
    + r"|来(?!临|年|自|了很多|了不少)|没来|没有来)|"
    r"对[^，。；！？,.;!?\s]{0,12}?(?:不?满意(?![度率])|有意见|不服)|"
    r"的诉求|家(?![园乡具居电庭政务用常族长风乐业底境宴])")
"""What a clerk writes of the person a moment later, or of what they think or own (国庆今天没来,
国庆下午来过, 平安再次来电, 国庆对处理结果满意, 国庆的诉求, 国庆家楼上漏水: redteam53 found them
kept): the name. Not 国庆之前 (before the holiday), 国庆今天放假, 建设家园."""
_FOR_BEFORE = re.compile(
    r"(?:[给帮代替让请叫找跟问催劝陪]|(?<![走迈面方导转倾意志动去指偏取风趋一])向|"
    r"告知|告诉|通知|转告|提醒|叮嘱|嘱咐|交代|安慰|接待|答复|回复|户主|老伴|丈夫|妻子|爱人|儿子|女儿|"
    r"联系|联络|回访|陪同|探望|看望|走访|慰问|(?:去|来|上门|探)看|"
    r"(?:^|[已并再先将需没未又也都])和|"
    r"居民|老人|申请人|当事人|来访人|来电人|住户|家属|今天|昨天|上午|下午|晚上|刚才|"
    r"(?<![大节预制公相])约|今日|昨日|(?:周|星期|礼拜)[一二三四五六日天]|"
    r"其[子女父母夫妻兄弟姐妹孙]|(?:诉求|反映|投诉|求助|举报|委托|代理|受助)人|跟进|帮助|协助|"
    r"指导|致电|\d[:：]\d\d|\d[点时](?:半|整|\d{1,2}分?)?"  # redteam56
    r")$")
_CLAUSE_OPENS = re.compile(
    r"(?:^|[\s，。；！？、,.;!?（(：:“”\"'「『【\[〔［‘〈@＠]|[\u2190-\u2bff\U0001f000-\U0001faff])$")
"""Where a given name stands as the person whatever follows, but for a word the given name
begins (``_WORD_GOES_ON``) or a clause that speaks of the word (``_THE_WORD_DOES``): whom a
clerk does something for, asks, tells or reaches (给国庆送去慰问品, 帮健康预约, 请国庆下周来,
已告知国庆办理流程, 已告诉国庆带户口本, 电话联系国庆未果, 已和国庆联系), the resident after who
they are or when (居民国庆, 今天国庆), and the start of a clause: a clerk's note about 李国庆
opens with him (国庆说明天来, 国庆诉求是补办低保, 国庆问能不能代办, 国庆打来电话, 国庆带了户口本,
国庆今年65岁: 42 of scrub46's 83 notes leaked so, each with a verb the lists of what a person
does did not hold; no list of verbs is ever whole, the words a holiday or the works go on
with are fewer). A clause opens after a bracket or a quotation mark a clerk quotes a name
with (「国庆」说, 【国庆】来电, ‘国庆’来过) and after an emoji or a symbol (👍国庆满意), and
the resident is whom a clerk made a date with (约国庆周三来), a relative written 其父 (其父国庆
已去世), who came at a time of day or on a weekday (14:00国庆到窗口, 9点国庆到窗口, 周三平安到窗口):
redteam56 found them kept."""
_WORD_GOES_ON = re.compile(
    r"节|期间|假|单位|方(?!便)|局|部门|工程|项目|员(?!工)|室|所|站|处|科|中心|工作|活动|社区|"
    r"小区|路(?![过上])|街|村|队|组|委|办(?=公|[，。；、\s]|$)|用品|知识|讲座|教育|宣传|检查|隐患|"
    r"生产|管理|状况|体检|码|证|事业|问题|意识|责任|带来|造成|工地|规划|资金|进度|标准|文明|"
    r"和谐|稳定|志愿|巡逻|家庭|城市|生活|饮食|值班|排班|轮班|返岗|收假|[当那这]周|"
    r"[\d一二三四五六七八九十百]+周年|游园|氛围|临近|中秋|双节|巡查|培训|演练|事故|"
    r"交通(?=委|局|管制|出行|安全)|"
    r"里(?=街道|社区|小区|居委|[\d一二三四五六七八九十])|[镇乡](?!长)|"
    r"[小中]学(?!毕业|文化|学历|肄业|没)|学校|幼儿园|大街|驿站|小屋|升旗|"
    r"专题|主题|专栏|特刊|征文|汇演|文艺|演出|庆典|"  # 【国庆】专题, 10:00国庆文艺汇演: redteam60
    r"养老(?=服务|院|机构|产业|驿站|中心)|鸽|喜乐|"
    r"前(?!天)|后(?![天来])|之前|之后|以来|以前|以后|当天|那天|第一天|初期|时期|年代|周年|"
    r"快乐|献礼|阅兵|晚会|联欢|黄金周|长假|七天|放假|休假|调休|加班|停办|不办公|照常|"
    r"补班|的时候|时(?!常|不时)|过后|人(?:很|太|特别|比较|非常)?多|"  # scrub47
    r"(?:今天|明天|昨天|当天|那天|这几天)(?:放假|休息|值班|停办|不办公|照常|加班)|"
    r"大道|广场|公园|医院|银行|保险|险(?!些)|书店|日报|第一(?![个次])|至上|须知|提示|措施|"
    r"防范|出行|用电|用气|通道|距离|指数|感(?![冒到觉谢激动])|协作|一致|合作|互助|评议|协商|"
    r"监督|决策|选举|创业|驱动|发展|经济|改革|共处|在望|人民|民族|传统|美德|文化|档案|状态|"
    r"服务|是福|无事|夜(?![里间晚])|咨询(?=[室台处点]|电话|热线|服务)|说明(?![天早晚年儿])|"
    r"要求[：:]|联系人|希望工程|办理须知|设施|建设|创建|环境|家[园乡具居电庭]|的事[宜业务项]|"
    r"没接[地入口线管]|中(?![午秋])|用[地电气水]|美丽|美好|出口|帽|带(?=[系要扣，。；、]|$)|起见|"
    r"到家|到达|抵达|二字|两个字|一词|解决|饭店|酒店|宾馆|大厦|大楼|商场|超市|市场|花园|新村|"
    r"公寓|区(?![别分])|度过|那几天|这几天|[\d一二三四五六七八九十]+天(?:小?长?假)|"
    r"\d{1,2}月\d{1,2}[日号](?:[至到\-—~～]\d|$|[，。；、\s（(]|起|开始|放假)")
"""What makes a given name the start of a word where it would stand as a name (给建设单位发函,
帮安全员登记, 给国庆节值班的同事, 给健康带来危害, 国庆期间窗口照常开放, 国庆之前反映的问题,
平安社区创建, 健康咨询室, 安全要求：; the holiday's make-up day, its time, what follows
it: 国庆补班日, 国庆的时候, 国庆时窗口人多, 国庆过后再说, 国庆人多: scrub47 found them
scrubbed): kept; and the center's own words opening a clause
(国庆值班表, 国庆返岗, 安全巡查, 和平里街道, 和平镇, 平安大街, 健康驿站: redteam56 found them
scrubbed)."""
_THE_WORD_DOES = re.compile(
    r"(?:今天|明天|昨天|今年|明年|上午|下午|晚上|目前|现在|已经|已|都|也|正在|在|顺利|基本|全面|"
    r"即将|马上|就要|快要|还没|尚未|没有|未|又|要|将|真|很|非常|十分|最)*"
    r"(?:完成|竣工|开工|推进|进行|启动|验收|停工|到来|来临|结束|来了很多|来了不少|人很多|重要|"
    r"放假|休假|调休|不办公|停办|照常|"
    r"要紧|来之不易|是福|第一|是第一位|至上)|"
    r"对[^，。；！？,.;!?\s]{0,6}?(?:满意度|满意率|很重要|重要|有益|有利|来说)|"
    r"\s*[和与及、跟同/／&＆+＋]\s*(?:" + "|".join(_LISTED_WORDS)
    + r")(?!\s*(?:[两二三四五六七八九十几\d]+\s*[户家人位名]|俩|夫妇))")
"""A clause that speaks of the word a given name is, not of the person (建设今天已经完成,
国庆上午来了很多游客, 建设对环境满意度高, 健康对老人很重要, 健康和平安希望大家): kept."""
_TOLD_BEFORE = re.compile(r"(?:说|反映|表示|称|发现|看到|见到|听说)$")
"""Who told of the person before their name (居民反映国庆来过, 邻居说秀英不在家)."""


#: Given names that are also words a note uses every day (李国庆's holiday, 何平安's wish, 陈建设's
#: building works, 张和平's peace): only these are kept where they do not stand as a name
#: (``_as_a_name``). Any other given name goes wherever it is written, as before December
#: 2026: 秀英 is no word, and a rule that knew where a name stands missed 已为秀英办结 and 秀英想问
#: (a leak is worse than a word lost).
WORD_NAMES = frozenset((
    "国庆", "平安", "建设", "和平", "建国", "建军", "解放", "胜利", "幸福", "光明", "文明", "和谐",
    "富强", "振兴", "向阳", "红旗", "东风", "黎明", "长江", "爱国", "卫国", "新华", "中华", "健康",
    "安全", "发展", "团结", "民主", "创新", "建华", "国华", "春节", "元旦", "国强", "永安", "长安",
    "太平", "吉祥", "如意", "平平", "安康", "美丽", "美好", "和美", "振华", "兴旺", "荣华", "富贵"))


#: Whole names of two characters that are also words a note uses every day (高峰 the rush hour,
#: 金星 the planet and many a village, 白雪 snow, 华东 East China, 文明 the civic campaign): the
#: resident's own name only where it stands as one (``_as_a_name``, not at a clause's start
#: alone: 高峰时段, 金星奖, 白雪公主, 华东师范大学), since scrub56; every one went wherever it was
#: written, so a note about 高峰 lost 早高峰 and 办事高峰.
WORD_WHOLE_NAMES = frozenset((
    "高峰", "高山", "高明", "高飞", "高洁", "高尚", "金星", "金山", "金华", "金龙", "白雪", "白云",
    "白杨", "文明", "文华", "华东", "华南", "华北", "江山", "江南", "方圆", "方正", "安静", "安宁",
    "常青", "黄山", "田野", "林海", "夏天", "雷鸣", "钟声", "江海", "向阳", "万里"))


def _word_after_a_surname(name: str, text: str, start: int, end: int) -> bool:
    """Whether a name found with its surname typed as another (程建设 for 陈建设) is rather
    a word ending in a surname before the given name that is a word too (工程建设, 过程建设):
    for a given name of ``WORD_NAMES``, the name only where it stands as one (``_as_a_name``:
    程建设来过, 已联系程建设。)."""
    return name[1:] in WORD_NAMES and not _as_a_name(text, start, end)


def _given_name_here(text: str, given: str, start: int, end: int) -> bool:
    """Whether the resident's given name alone found at ``start:end`` goes: wherever it is, but
    for a given name that is also an everyday word (``WORD_NAMES``), only where it stands as
    a name."""
    return given not in WORD_NAMES or _as_a_name(text, start, end)


def _as_a_name(text: str, start: int, end: int, opening: bool = True) -> bool:
    """The resident's given name alone where it stands as a name: what a person does or says
    follows (国庆说, 建设同意调解), or it ends a clause that it opens or that reached them
    (已联系国庆。). Not inside a word the given name also is (处理国庆期间, 这里国庆节, 完成建设
    任务, 健康和平安, 社区建设很好): the vault's given name of 李国庆 took the holiday with it.
    ``opening``: whether a clause it opens is enough (a given name: 国庆问能不能代办); not for
    what the resident is called for short (阿根 of 张建根 opening 阿根廷的亲戚)."""
    if _PERSON_AFTER.match(text, end) or _PERSON_LATER.match(text, end):
        return True
    if _the_word(text, end):
        return False
    if _FOR_BEFORE.search(text, max(0, start - 5), start) \
            or (opening and _CLAUSE_OPENS.search(text, max(0, start - 1), start)):
        return True
    stands = bool(_NAME_BEFORE.search(text, max(0, start - 3), start))
    if _SUBJECT_AFTER.match(text, end):
        return stands or bool(_TOLD_BEFORE.search(text, max(0, start - 2), start))
    return (stands and bool(_CLAUSE_END.match(text, end))
            and not _HOLIDAY_NOTICE.match(text, end))


_HOLIDAY_NOTICE = re.compile(
    r"\s*[：:]\s*(?:放假|假期|休假|调休|休息|值班|停办|暂停|不办公|照常|正常上班|上班|安排|期间)")
"""A heading a notice gives a holiday (国庆：放假七天, 国庆: 值班安排), which a given name also is
(李国庆's): the holiday, not the resident; a name heading what the person said stays one
(国庆：明天来)."""


def _the_word(text: str, end: int) -> bool:
    """Whether what follows a given name at ``end`` makes it the word it also is: a word it
    begins, a clause about the word, a notice a holiday heads; also past the bracket or
    quotation mark that closes it (【国庆】放假通知, “健康”讲座: a heading, a topic), and past
    the days it lasts in brackets (国庆（10月1日-7日）放假: redteam60 found it scrubbed)."""
    if text[end:end + 1] in _CLOSING:
        end += 1
    elif days := _DAYS_IN_BRACKETS.match(text, end):
        end = days.end()
    return bool(_WORD_GOES_ON.match(text, end) or _THE_WORD_DOES.match(text, end)
                or _HOLIDAY_NOTICE.match(text, end))


_CLOSING = frozenset("」』】]〕］’”\"'〉")
_DAYS_IN_BRACKETS = re.compile(
    r"\s*[（(][^（）()]{0,12}?\d{1,2}\s*[月./]\s*\d{1,2}[^（）()]{0,16}[）)]")


def _bounded(text: str, start: int, end: int, inside: re.Pattern[str]) -> bool:
    """No letter (or digit) right before ``start`` or right after ``end``."""
    return ((start == 0 or not inside.match(text[start - 1]))
            and (end >= len(text) or not inside.match(text[end])))


_SQUEEZED_OUT = re.compile(f"[{_OUT}]+")


def _squeezed(text: str) -> str:
    return _SQUEEZED_OUT.sub("", fold(text).translate(_ASCII_LOWER))


def _surname_of(name: str) -> tuple[str, str]:
    for surname in SURNAMES:
        if name.startswith(surname) and len(name) > len(surname):
            return surname, name[len(surname):]
    return name[:1], name[1:]


def name_variants(name: str) -> list[tuple[Kind, str]]:
    """A name as people write it, each with its kind ("han", "given" or "latin").

    Chinese: whole, 老 + surname, surname with every form of address (王阿姨, 王老师,
    王先生 ...), the given name alone (kind "given": only where it stands as a name,
    ``_as_a_name``) and with 阿姨 / 姐 / 哥 / 奶奶 / 爷爷 when it has two characters or more;
    in pinyin: either way round (Wang Xiuying, Xiuying Wang) and the surname with Mr / Mrs /
    Ms / Auntie ... A Latin name on file: whole, reversed, and its
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
    out: list[tuple[Kind, str]] = [("word" if han in WORD_WHOLE_NAMES else "han", han)]
    if len(han) >= 2:
        out.append(("han", "老" + surname))
        if surname not in SURNAMES:  # else the general rule (surname + 阿姨 ...) has it
            out += [("han", surname + h) for h in HONORIFICS]
        if len(surname) == 2:  # 司马说明天来, 欧阳来过: a compound surname alone is the person
            out.append(("nick", surname))
        if len(given) >= 2:
            out += [("given", given)] + [("han", given + h) for h in (
                _GIVEN_NAME_WITH if given in WORD_NAMES else _GIVEN_NAME_WITH[:5])]
        if given and _ALL_HAN.fullmatch(given):
            out += [("nick", "阿" + given[-1]), ("nick", given[-1] + "哥"),
                    ("nick", given[-1] + "姐")]
    out += [("latin", v) for v in pinyin_variants(surname, given)]
    if len(given) >= 2 and _ALL_HAN.fullmatch(given):
        typed = _syllables(given)
        if typed.isascii() and typed.isalpha():  # guoqing shuo mingtian lai, 李guoqing来过
            out += [("latin", typed), ("latin", surname + typed)]
    return out


@lru_cache(maxsize=4096)
def _syllables(text: str) -> str:
    """``text`` in pinyin, one reading per character, no tone (国庆: guoqing)."""
    from pypinyin import Style, pinyin  # the catalogue's dependency, loaded when needed

    return "".join(s[0] for s in pinyin(text, style=Style.NORMAL))


_GIVEN_NAME_WITH = ("阿姨", "姐", "哥", "奶奶", "爷爷", "叔", "叔叔", "伯", "伯伯", "大爷", "大妈",
                    "大伯", "大姐", "大哥", "婶", "婶婶", "嫂", "嫂子", "同志", "师傅")
"""What follows a given name of two characters as a form of address (秀英阿姨, 国庆叔, 建设大爷,
平安嫂子: scrub46 found 国庆叔 and 国庆大爷 kept where the given name alone does not stand as a
name). Past the first five only for a given name that is a word (``WORD_NAMES``): 秀英 goes
wherever it is, and 婶 left after it is no one."""


def pinyin_variants(surname: str, given: str) -> list[str]:
    """A Chinese name in pinyin: both orders, and the surname with a title (every reading
    of a one-character surname: 曾 is zeng and ceng)."""
    from pypinyin import Style, pinyin  # the catalogue's dependency, loaded when needed

    readings = ({r for s in pinyin(surname, style=Style.NORMAL, heteronym=True) for r in s}
                if len(surname) == 1 else {_syllables(surname)})
    out: list[str] = []
    given_py = _syllables(given) if given else ""
    for family in sorted(r for r in readings if r.isascii() and r.isalpha()):
        out += [f"{t} {family}" for t in ENGLISH_TITLES]
        if given_py.isascii() and given_py.isalpha():
            out += [f"{family} {given_py}", f"{given_py} {family}"]
    return out


def phone_variants(phone: str) -> list[str]:
    """A phone number's digits, and a landline's also without its area code."""
    digits = digits_of(fold(phone))
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
