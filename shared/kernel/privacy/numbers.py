"""ID numbers, phones, accounts, plates, hospital numbers and e-mail addresses in free text
(``number_spans``), and what a caller's id must not hold (``personal_number_in``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.kernel.privacy.folding import (
    fold,
)
from shared.kernel.privacy.markers import (
    REDACTED_ACCOUNT,
    REDACTED_ADDRESS,
    REDACTED_ID,
    REDACTED_PHONE,
    REDACTED_PLATE,
    REDACTED_RECORD,
)

# -- numbers -------------------------------------------------------------------------------

_ANY_DIGIT = re.compile(r"\d")
_ANY_LATIN = re.compile(r"[A-Za-z]")

# a separator between digits: 138 1234 5678, 138.1234.5678, 138 - 1234 - 5678, 138_1234/5678,
# two spaces typed for one, and the groups as a resident dictates them, parted by the IME's
# comma or 顿号 (138，1234，5678; 138、1234、5678), or a middle dot (any of them folded to
# "·": 310115·19380520·2256)
_SEP = r"(?: {0,2}[.\-_/,，、·]? {0,2})"
#: What else parts the groups of a phone or ID number as a clerk writes it down while the
#: resident says it: a semicolon or full stop after each group (138；0013；8000), the IME's
#: wave dash (138～0013～8000), a bar (138|0013|8000), one or two line ends (a number
#: copied from a form's boxes, a chat message's lines: \n, \r\n, U+2028, U+2029, after a
#: separator or not), a tab. Only the rules that want a whole number's digits take them
#: (never after a keyword: 身份证2026-12-10到期；2027年 is no number), and a run they part
#: is one only as a number is dictated (``_dictated``).
_BREAK = "\r?\n|[\x85\u2028\u2029]"
_LISTING = "[,，、;；。~～〜|]|" + _BREAK
_SPACE = r"[^\S\r\n\x85\u2028\u2029]{0,2}"  # spaces, tabs: not a line's end
_SPLIT = (r"(?>" + _SPACE + r"[.\-_/|·,，、;；。~～〜]?" + _SPACE
          + r"(?:(?:" + _BREAK + r")" + _SPACE + r"){0,2})")
#: An amount's thousands (158,000): a phone's groups, however parted, are never three digits
#: after an ASCII comma; a list of amounts (158,000，12,500元) has eleven digits in a row too.
_THOUSANDS = re.compile(r"\d,\d{3}(?!\d)")
_ID_18 = re.compile(r"(?<![0-9A-Za-z])[1-9](?:" + _SPLIT + r"\d){16}" + _SPLIT
                    + r"[0-9Xx](?![0-9A-Za-z])")
_ID_WORD = (r"(?:身份证|身分证|证件|居民身[份分]|护照|通行证|居住证|回乡证|台胞证|残疾人?证|\bID\b"
            r"|\bI\.D\.|\b[Pp]assport\b)"
            r"(?:号码|号|统一编号|字号|编号|\s?[Nn]umber|\s?No\.?|#)?(?:的)?")
"""Taiwan writes 身分證 (OpenCC keeps 身分: a word of its own) and 身分證字號 / 統一編號 for the
number; 回乡证 and 台胞证 are the permits of Hong Kong, Macao and Taiwan residents."""
_ID_KEYWORD = re.compile(_ID_WORD + r"(?:是|为|:|：|\s)*"
                         r"(?P<n>[A-Z]{0,2}\d(?:" + _SEP + r"[0-9Xx]){5,17}(?:\d\d(?!\d))?"
                         r"(?:\s?[(（][0-9A][)）])?)")
"""A Hong Kong ID number's check digit in brackets (A123456(7), Z683164(A)) goes with it."""
_ID_TAIL = re.compile(_ID_WORD + r"(?:尾号|尾数|末尾|结尾|(?:后|末|最后)[四五六46]位(?:数字|数)?)"
                      r"(?:是|为|:|：|\s)*"
                      r"(?P<n>[0-9Xx]{4,6}|[0-9Xx](?: [0-9Xx]){3,5})(?![0-9])")
"""The tail of an ID number after its keyword (身份证尾号123X, 身份证后四位 0012,
证件号末6位301234, 身份证号末尾0012, 身份证尾号 1 2 3 X read out): four digits or more of it
and the name beside them single out one resident, as a phone's last four do (a careful DPO's
reading: a tail is personal data with what is around it)."""
_CARD_SEP = r"(?: {0,2}[.\-_/·]? {0,2})"
_CARD = re.compile(r"(?<![0-9A-Za-z])(?:\d{4}(?:" + _CARD_SEP + r"\d{4}){3}(?:" + _CARD_SEP
                   + r"\d{1,3})?|\d{6}" + _CARD_SEP + r"\d{10,13})(?![0-9A-Za-z])")
"""A bank card's 16 to 19 digits, in groups of four (6222 0212 3456 7890 123, two spaces or a
spaced dash between them, or dots) or six and the rest (622202 1234567890123, as some banks'
apps show it). Not parted by commas or 顿号: four years are listed so."""
_YEARS = re.compile(r"(?:(?:19|20)\d\d\D*){4}")
_ACCOUNT_KEYWORD = re.compile(
    r"(?:卡号|账号|帐号|账户|帐户|户号|银行卡|社保卡|医保卡|社保号|医保号|参保号|存折"
    r"|\baccount\b|\bcard\b)"
    r"(?:号码|号)?(?:是|为|:|：|\s)*"
    r"(?P<n>[A-Z]{0,2}\d(?:(?: {1,2}|-)?\d){5,})", re.IGNORECASE)
"""An account or card number after its name: a bank card's or account's (银行账户 3100..., read
out in groups: 6222  0212, two spaces), a social security card's (社保卡号 A12345678: nine
characters, a letter first in many provinces), a medical insurance one's, a household's
utility account (电费户号 0012345678, 燃气户号: the bill and the meter at one door). Not a sum
(账户 1500000元: a unit after it)."""
_ACCOUNT_NEXT = re.compile(r"\s{0,2}(?:[、，,/;；]|和|及|与|或)\s{0,2}"
                           r"(?P<n>[A-Z]{0,2}\d(?:(?: {1,2}|-)?\d){5,})(?![0-9A-Za-z])",
                           re.IGNORECASE)
"""The next number of a list after one label (户号 0012345678、0098765432; 卡号 A、B 和 C): each
is a household's or a holder's as the first is. Before December 2026 only the first went."""
_VIN_KEYWORD = re.compile(
    r"(?:车架号|车辆识别代号|车辆识别码|车辆识别号|(?<![A-Za-z])(?:VIN|vin|Vin)(?![A-Za-z]))"
    r"\s?(?:码|号码|号)?(?:\s?[(（](?:VIN|vin)[)）])?"
    r"(?:(?:后|末|最后)\s?[六八68]\s?位)?(?:是|为|:|：|\s)*"
    r"(?P<n>[A-HJ-NPR-Za-hj-npr-z0-9]{17}|[A-HJ-NPR-Za-hj-npr-z0-9]{6,8}(?=后|\W|$))"
    r"(?![A-Za-z0-9])")
"""A car's frame number after its name (车架号 LSVAU2180N2183294: seventeen characters, no I, O
or Q; or the six to eight a clerk copies from a policy): it finds the owner through the
registry as a plate does. ``VIN码``, ``VIN 码``, ``车辆识别代号(VIN)：`` too: ``\bVIN\b`` found no
edge between ``N`` and ``码`` (both word characters), so the usual spelling kept the number."""
_DOOR_KEYWORD = re.compile(r"门牌(?:号码|号)?(?:是|为|:|：|\s)*(?P<n>\d{1,5}(?:[\-之]\d{1,4})?号?"
                           r"(?:\d{1,4}室)?)(?!号?[\d楼幢栋座单弄层])")
"""A door's number after 门牌 (门牌号 36号, 门牌：128-3): with the note's street or village it is
where the resident lives; the rest of an address is found by the address rules (门牌 3号楼 is
theirs to judge: a building, perhaps the center's own). Not a count of plates (更换门牌200块,
门牌 50 个已到货: a measure word after a bare number)."""
_RECORD_KEYWORD = re.compile(
    r"(?:住院|病历|病案|门诊|急诊|就诊|就医|体检)(?:号码|号|编号|卡号|卡|ID|id)"
    r"(?:是|为|:|：|\s)*(?P<n>[A-Za-z]{0,3}-?\d(?:[ \-]?[0-9A-Za-z]){3,})")
"""A hospital's number for a patient after its name (住院号12345678, 病历号：A20261234, 病案号
0012345, 就诊卡号 ...): a medical record number names the patient and their illness to anyone
at that hospital, as surely as an ID number does. Four characters at least, a digit first
after up to three letters (住院号2床 is a bed), no unit after (就医卡 1500元 is a sum, 体检卡2026年
到期 a year)."""
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:(?:\+|00)?86[ \-]?|\(\+?86\)[ \-]?)?"
                     r"(?P<n>1[3-9]\d(?:" + _SPLIT + r"\d){8})(?!\d)")
_LISTED = re.compile(_LISTING)
_GROUP = re.compile(r"[0-9Xx]+")


def _dictated(number: str, most: int) -> bool:
    """Whether a run of digits is one number as it is dictated: not amounts written with
    thousands (158,000，12,500), and, parted by commas, 顿号, semicolons, full stops, wave
    dashes or lines, in at most ``most`` groups, each of three digits or more but the last
    (138，0013，8000; 3101，1519，8503，1212，34); a list of numbers (第138、139、140、15号卷宗,
    补发1420；1500；1600元) is no one's number."""
    if _THOUSANDS.search(number):
        return False
    if not _LISTED.search(number):
        return True
    groups = _GROUP.findall(number)
    return len(groups) <= most and all(len(g) >= 3 for g in groups[:-1])


def _a_mobile(number: str) -> bool:
    """A mobile is dictated in three groups at most, none shorter than three digits."""
    return _dictated(number, 3) and len(_GROUP.findall(number)[-1]) >= 3


#: China's area codes: 010, 02x, then 0 and three digits from 03xx to 09xx. None starts 00 (a
#: call abroad) or 01 but Beijing's, so a serial's 0001 or 0123 before a range (20261205-0001～
#: 20261205-0099, 单号0001；20261205) is no area code.
_AREA = r"0(?:10|2\d|[3-9]\d\d)"
_LANDLINE = re.compile(r"(?<![0-9A-Za-z])(?:\(" + _AREA + r"\)|" + _AREA + ")" + _SPLIT
                       + r"[2-9]\d{2,3}" + _SPLIT + r"\d{4}(?!\d)")
_LANDLINE_INTL = re.compile(r"(?:\+|00)86[ \-]?(?:\(0?\d{2,3}\)|0?[1-9]\d{1,2})[ \-]?"
                            r"[2-9]\d{2,3}[ \-]?\d{4}(?!\d)")
_DOTS = r"(?: {0,2}[.\-_/·]? {0,2})"
_LANDLINE_86 = re.compile(r"(?<![0-9A-Za-z+])(?:\(86\)|86)" + _DOTS
                          + r"(?:\(0?(?:10|2\d|[3-9]\d\d)\)|0?(?:10|2\d|[3-9]\d\d))" + _DOTS
                          + r"[2-9]\d{2,3}" + _DOTS + r"\d{4}(?!\d)")
"""A landline after China's code without + or 00 (86 21 6412 3456, 86-21-64123456, 8621
64123456), as a resident reads it off a card (redteam56 found it kept; the mobile's rule had
86-138... already): an area code of China's after it (``_AREA`` without its 0); its groups
parted by a dot, a slash or two spaces too (86.21.6412.3456: redteam60 found it kept, 电话
before it too), not by a comma (86，21，3456，7890 is a list of counts)."""
_ABROAD = re.compile(r"(?:(?<![A-Za-z+])\+[1-9]|(?<![0-9A-Za-z+])00(?=85[23]|886)\d)"
                     r"(?:" + _SEP + r"\d){8,14}(?!\d)")
"""A number dialled from abroad or to it: a country code after + (+852 9123 4567 for Hong
Kong, +1 415 555 0100) or 00 and Hong Kong's, Macao's or Taiwan's (00852 ...), nine to
fifteen digits in all. The Chinese ones (+86) are the mobile and landline rules' too."""
_HK_LOCAL = re.compile(r"(?<![0-9A-Za-z+\-.,/:：#])(?P<a>[5679]\d{3})(?: ?-? ?| {0,2})(?P<b>\d{4})"
                       r"(?![0-9A-Za-z]|\s?[\-.:/]\s?\d| \d)")
"""Hong Kong's or Macao's local eight digits alone, as a resident writes them (9123 4567,
6123-4567: a mobile starts 5, 6 or 9, Macao's 6): with neither a code nor a word before them
(``_PHONE_KEYWORD``), the two groups of four are still no amount or count a note holds
(``_hk_local``)."""
_HK_MACAO = re.compile(r"(?<![0-9A-Za-z+])(?:\(85[23]\)|85[23]) ?-? ?[2-9]\d{3}[ \-]?\d{4}(?!\d)")
"""Hong Kong's or Macao's eight digits after its code without + or 00 (852-9123-4567,
（852）91234567), as a resident reads it off a card."""
_TW_MOBILE = re.compile(r"(?<![0-9A-Za-z+\-.:/])(?:(?:\(886\)|886) ?-? ?9\d\d|09\d\d)"
                        r"[ \-]?\d{3}[ \-]?\d{3}(?![0-9A-Za-z]|\s?[\-.:/]\s?\d)")
"""Taiwan's mobile alone, as a resident from Taiwan writes it (0912-345-678, 0912345678,
0912 345 678) or after its code without + or 00 (886 912 345 678): ten digits, 09 first, in
groups of four, three and three; kept until redteam64 (no Chinese mobile starts 0, no
landline of China's is so grouped). Not after a serial's name, nor an amount."""
_JP_MOBILE = re.compile(r"(?<![0-9A-Za-z+\-.:/])0[789]0(?P<s>[ \-]?)[1-9]\d{3}(?P=s)\d{4}"
                        r"(?![0-9A-Za-z]|\s?[\-.:/]\s?\d)")
"""Japan's mobile alone, as a resident with family there writes it (090-1234-5678, 080 9876
5432, 07012345678): eleven digits, 070, 080 or 090 first, in groups of three, four and four
parted the same way or not at all; kept until scrub47 (no Chinese number starts 0 and has
eleven digits so grouped). Not after a serial's name, nor an amount."""
_TW_LANDLINE = re.compile(r"(?<![0-9A-Za-z+])(?:\(0[2-8]\d?\)|\(?886\)?[ \-]?\(?0?[2-8]\)?[ \-]?"
                          r"|0[2-8]-(?=\d{3,4}-\d{4}(?!\d)))"
                          r" ?(?P<n>[2-9]\d{2,3}[ \-]?\d{4})(?![0-9A-Za-z]|\s?[\-.:/]\s?\d)")
"""A landline of Taiwan's (Taipei's (02) 2345-6789, 02-2345-6789, Kaohsiung's (07) 345-6789,
886-2-2345-6789): an area code of one digit after 0 in brackets, or dashed before groups of
three or four and four, or after 886; kept until scrub47 (China's area codes have two digits
or three after 0: ``_LANDLINE``). Not after a serial's name, nor an amount."""
_LANDLINE_ALONE = re.compile(r"(?<![0-9A-Za-z+\-.,/:：#_=])[2-9]\d{3,4}(?!000)\d{3}"
                             r"(?![0-9A-Za-z]|[.,]\d|\s?[\-/~～]\s?\d)")
"""Eight digits alone, a landline of Shanghai's or Beijing's without its area code or a Hong
Kong mobile written without its space (62345678, 58881234, 91234567: kept until scrub47,
found only after 电话 / 手机 / 联系 ...): ``_alone``; and seven, the old landline of a city
whose numbers had seven digits (6234567, 5888123: kept until scrub48)."""


_EIGHT_DIGITS = re.compile(r"(?<!\d)[2-9]\d{6,7}(?!\d)")
_ABROAD_HINT = re.compile(r"0[789]0|\(0[2-8]|886|0[2-8]-")
"""What ``_JP_MOBILE`` and ``_TW_LANDLINE`` need: a search, where most texts pay nothing more."""


def _alone(text: str, m: re.Match[str]) -> bool:
    """Eight digits alone that are a phone's: not a day (20261220), not after a serial's name
    (受理号62345678, 发票号码, 工单号), a room's, a seat's or an amount's word (补贴62345678), nor
    before a unit or 号 (62345678元, 62345678人次, 62345678号), nor one of a list or range,
    nor digits counted in a row (12345678, 二三四五六七八九 in a list or a pattern); not a round
    count (20000000, 31536000: ``_LANDLINE_ALONE`` wants no 000 last) nor a value after =."""
    start = m.start()
    return m.group() not in "0123456789" and not _COMPACT_DATE.fullmatch(m.group()) \
        and not _MEASURE.match(text, m.end()) \
        and not _NUMBERED_AFTER.match(text, m.end()) and not _a_serial(text, start) \
        and not _NUMBERED_BEFORE.search(text, max(0, start - 8), start) \
        and not _RUN_BEFORE.search(text, max(0, start - 3), start)


_PHONE_KEYWORD = re.compile(  # not the 电话 of a marker: [电话已隐去]，68494601 is no phone
    r"(?<!\[)(?:电话|手机|座机|(?P<reach>联系)|号码(?<![证卡账帐照牌单票码]..)|\b(?:tel|telephone|phone|mobile|cell|whatsapp)\b)(?:号码|号)?"
    r"[^0-9\n]{0,6}?"
    r"(?P<n>\d(?:(?: ?[\-.] ?| {1,2})?\d){6,})", re.IGNORECASE)
"""Seven digits or more after 电话 / 手机 / 座机 / 联系 / phone ...: a landline without its area
code, and Hong Kong's and Macao's local eight digits (手机：9123 4567, 联系她9123-4567), their
groups parted by a space, a dash or a dot (电话：6412.3456: redteam60 found it kept); not a
decimal (``_DECIMAL``)."""
_PHONE_WRAPPED = re.compile(
    r"(?<!\[)(?:电话|手机|座机|号码(?<![证卡账帐照牌单票码]..)|\b(?:tel|phone)\b)(?:号码|号)?"
    r"[^0-9\n]{0,6}?(?P<n>\d{3,5}[ \t]*(?:\r?\n|[\x85\u2028\u2029])[ \t]*\d{3,5})(?![\d.])",
    re.IGNORECASE)
"""A landline after its keyword that a narrow box wrapped in two groups of three digits or
more (电话6234\\n5678, 座机62345\\n678: ``across_lines`` joins only a fragment of one or two
digits, and the keyword's rule reads no line end): seven or eight digits in all; kept until
redteam69. Not after 联系 (联系人员补贴\\n1200\\n1500 lists sums)."""
_DECIMAL = re.compile(r"\d{1,3}\.\d+")
_AMOUNT_AFTER = re.compile(r"\s?万?元(?![旦宵])")
"""What follows an amount, never a phone number (电话回访，金额2000000元); not 元旦 (电话
68494601元旦回访: a phone number, and when to call)."""
_SERIAL_BEFORE = re.compile(
    r"(?:(?:受理|流水|序|案|批次?|凭证|回执|业务|登记|工单|订单|单|票|合同|交易|注册|税|识别|件)号(?:码)?"
    r"|订单|工单|读数|表号"
    r"|执照(?:号码|号)?|群(?:号码|号)?|(?:取件|验证|预约|提取|兑换|核销|邀请)码|代码|编号|编码|流水"
    r"|发票|收据|办件|\bNo\.?|\b[Rr]ef\.?|\b[Ii]nvoice|#)"
    r"(?:是|为|:|：|\s)*$")
"""A serial's name right before a run of digits (受理号：00886..., 合同号310115850312123, a
business licence's 营业执照310115400123456 or 纳税人识别号; an invoice's or a receipt's eight
digits, 发票 23856714, 收据, an 一网通办 case's 办件号, a transfer's 转办件, a chat group's 群号,
a remittance's Ref, an Invoice, a parcel's or a booking's 取件码 / 预约码 / 验证码: redteam69
found them taken for phones; an order's or a meter's, 订单 3456712, 电表读数 2345678, since
scrub48 took seven digits alone for a landline): the run is the serial,
however it begins. One of a card's or an ID number's length goes only when its check digit holds, as
every real one's does (受理号310115202612200001, a district, a day and a count, and
流水号1234567890123456 stay; one serial in ten or eleven is taken all the same)."""


#: A serial's date (a district, a day, a count: 受理号310115202612200001) is the day it was
#: issued, by a computer system: none before this year. Eighteen digits after a serial's name
#: whose "birth date" is older are an ID number typed there, its check digit mistyped
#: (受理号310115198503121236: the clerk took the resident's ID number for the form's number).
_SERIALS_SINCE = 2000


_NUMBERED_BEFORE = re.compile(
    r"(?:第|室|房间|房号|座位|床位?|门牌|单|(?<!手机)(?<!电话)(?<!座机)(?<!联系)(?<!微信)"
    r"(?<![Qq][Qq])号|金额|补贴|收入|支出|合计|共计|余额|工资|款|预算|经费|资金)[\s:：]*$")
"""What numbers, not whom to call: a room, a seat, a ticket or a queue (房号6101 6102, 第5201
5202号, 取号单 5001 5002, 工号 5012 5013), an amount (补贴 9512 5080; a sum's 款, 补偿款 23865400,
预算, 经费, 资金 since redteam69). A phone's or a chat's
号 (手机号, 微信号 9123 4567) is none of them."""
_NUMBERED_AFTER = re.compile(r"\s?(?:号|室|房|座|床|楼|层)")
_RUN_BEFORE = re.compile(r"\d[ \-]{1,2}$")


def _hk_local(text: str, m: re.Match[str]) -> bool:
    """Parted by spaces, or by a dash from a first group that is no round number (6000-8000
    is a range); neither group round (月收入5000 6000), no unit after (9000 9500元), no
    serial's name before; not the last two of a run of numbers (5201 5202 5203), nor a
    room's, a seat's, a ticket's or an amount's numbers (``_NUMBERED_BEFORE``; 5201 5202室 is
two rooms of a home, an address's: ``_listed_before``)."""
    a, b = m.group("a"), m.group("b")
    parted = m.group()[len(a):-len(b)]
    start = m.start()
    if not parted or (a.endswith("00") and b.endswith("00")) or _MEASURE.match(text, m.end()) \
            or _a_serial(text, start) or _NUMBERED_AFTER.match(text, m.end()) \
            or _RUN_BEFORE.search(text, max(0, start - 3), start) \
            or _NUMBERED_BEFORE.search(text, max(0, start - 8), start):
        return False
    return "-" not in parted or not a.endswith("0")


def _a_serial(text: str, start: int) -> bool:
    return _SERIAL_BEFORE.search(text, max(0, start - 12), start) is not None


def _luhn_holds(digits: str) -> bool:
    """A bank card number's last digit is its Luhn check digit (ISO/IEC 7812)."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


_COMPACT_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_DAYS_FROM_TO = re.compile(r"(?P<a>\d{4} {0,2}\d{4}) {0,2}[.\-_/·]? {0,2}(?P<b>\d{4} {0,2}\d{4})")
"""Two days written as eight digits each, from and to (有效期20261220-20270104, 2026 1220 2027
0104): sixteen digits, as a card's, but no one's card (none starts 19 or 20)."""


def _days_from_to(found: str) -> bool:
    m = _DAYS_FROM_TO.fullmatch(found)
    return m is not None and all(_COMPACT_DATE.fullmatch(m.group(g).replace(" ", ""))
                                 for g in ("a", "b"))
#: What else a clerk types between a number's groups: an asterisk, a colon, a multiplication
#: sign or an x, and 一 (the character yi) for a dash. Only between the groups a phone or an
#: ID number is written in (3-4-4, area-number, 6-8-4), the same one each time.
_ODD = r"(?P<{}> ?[*＊×xX:：一] ?)"
_ODD_SPLIT = (r"(?P<mobile>1[3-9]\d" + _ODD.format("m") + r"\d{4}(?P=m)\d{4})"
              r"|(?P<id>[1-9]\d{5}" + _ODD.format("i") + r"\d{8}(?P=i)\d{3}[0-9Xx])"
              r"|(?P<landline>" + _AREA + _ODD.format("l") + r"[2-9]\d{2,3}(?:(?P=l))?\d{4})")
#: Single digits spaced out (1 3 8 0 0 1 3 8 0 0 0, 1-3-8-...), one separator between each,
#: eleven to eighteen of them: read as one run of digits (``_spaced_number``).
_SPACED = (r"\d(?P<s>[ .\-·]{1,2})\d(?:(?P=s)\d){9,15}+(?:(?P=s)[0-9Xx])?"
           r"(?!(?P=s)[0-9])")
_PROVINCE = r"(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])"
_ID_15 = (_PROVINCE + r"\d{4}" + _SEP + r"(?!00)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
          + _SEP + r"\d{3}")
"""An old 15-digit ID number without its keyword: a province's code, four more digits, the
birth date as yymmdd and a count of three (310115850312123, 310115 850312 123). Not after a
serial's name, nor born in (19)00: a company's old registration number (310115000123456)."""
_DICTATED_SHAPES = re.compile(r"(?=[0-9])(?<![0-9A-Za-z])(?:(?P<spaced>" + _SPACED
                              + r")|(?P<old_id>" + _ID_15 + r")|" + _ODD_SPLIT
                              + r")(?![0-9A-Za-z])")
"""The three shapes above in one pass over the text (each alone cost about as much as the
three together; the lookahead first lets ``re`` skip to the next digit)."""


def _spaced_number(digits: str) -> str | None:
    """The marker for a spaced-out run of single digits that is a phone or an ID number."""
    if _CODE_MOBILE.fullmatch(digits) or (
            len(digits) in (11, 12) and re.fullmatch(_AREA + r"[2-9]\d{6,7}", digits)):
        return REDACTED_PHONE
    if len(digits) == 18 and digits[0] != "0" and _plausible_id(digits):
        return REDACTED_ID
    if len(digits) == 15 and re.fullmatch(_ID_15, digits):
        return REDACTED_ID
    return None


_LAST_FOUR = r"(?:尾号|(?:后|末|最后)[四4]位(?:数字)?)(?:是|为|:|：)?\s*(?P<n>\d{4})(?!\d)"
_TAIL_KEYWORD = re.compile(r"(?:(?:手机|电话|号码)(?:号码|号)?)?" + _LAST_FOUR.replace(
    "(?:后|末", "(?:(?<=[机话码])|(?<=机号|话号))(?:后|末", 1))
"""尾号5678, 手机后四位5678: the last digits of a phone number."""
_ACCOUNT_TAIL = re.compile(r"(?:卡号|账号|帐号|银行卡|社保卡|医保卡|存折)" + _LAST_FOUR)
_CHAT_ID = re.compile(
    r"(?P<app>微信|[Ww]e[Cc]hat|(?<![A-Za-z])(?:wx|WX|vx|VX|V信|v信|QQ|qq)|钉钉|支付宝|[Aa]lipay"
    r"|抖音|快手|微博|小红书|B站|b站|哔哩哔哩|(?<![A-Za-z])(?:[Dd]ouyin|[Tt]ik[Tt]ok|[Kk]uaishou"
    r"|[Ww]eibo|[Bb]ilibili|LINE|Line(?=\s?(?:ID|id))|[Kk]akao(?:[Tt]alk)?|[Tt]elegram)(?![A-Za-z])"
    r"|扣扣|企鹅|薇信|威信|徽信|(?<=加)(?:薇|[Vv](?![A-Za-z])))"
    r"(?:号码|号|账号|账户|帐号|昵称|\s?(?:ID|id|[Aa]ccount|[Nn]umber|[Nn]o\.?)(?![A-Za-z]))?"
    r"(?:是|为|:|：|\s|\bis\b)*@?(?P<n>[A-Za-z0-9][A-Za-z0-9_.\-]{4,29}(?<![.\-]))"
    r"(?![A-Za-z0-9_\-])")
"""A WeChat, QQ, DingTalk or Alipay account after its name (微信号 wxid_..., QQ 12345678, vx:
li_min88, 支付宝：wang_xy88, a refund's or a subsidy's payee), or a short-video or social
account's (抖音号 dy_wang88, 快手号, 微博 @wanglei_sh, 小红书号, B站): it reaches the person as a
phone number does. A QQ account is a number and the others at least six characters: "QQ
group", "WeChat group" are no account, nor a day (抖音 20261220 发布的视频). QQ and WeChat as a
counter writes them so a chat's filter lets them through (扣扣, 企鹅号 for QQ; 薇信, 威信, 加薇,
加V for WeChat), and the apps of a family in Japan, Korea or abroad (LINE ID, KakaoTalk,
Telegram): redteam69 found them kept. ``ID`` before a
Chinese word (抖音ID是dy_wang88) ends at the next letter that is not Latin: ``\b`` saw none
before 是 (both word characters), and the account was kept or cut in two."""


def _chat_account(m: re.Match[str]) -> bool:
    n = m.group("n")
    if m.group("app").lower() in ("qq", "扣扣", "企鹅"):
        return n.isdigit()
    return len(n) >= 6 and n.lower() not in ("account", "number", "alipay", "wechat") \
        and not _COMPACT_DATE.fullmatch(n) and not _DATE_SHAPE.fullmatch(n) \
        and not _A_SITE.search(n)


_A_SITE = re.compile(r"\.(?:com|cn|net|org)$", re.IGNORECASE)
"""A site's name after an app's (微博 weibo.com): where, not whom."""


_PROVINCE_OF_A_PLATE = "[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
_PLATE = re.compile(
    r"(?<![A-Za-z])" + _PROVINCE_OF_A_PLATE + r" ?[A-Za-z]"
    r"[ ·.\-]{0,2}(?P<n>[A-Za-z0-9]{5,6}|[A-Za-z0-9]{4}[学警港澳挂领试超使]"
    r"|[DFdf][ ·.\-]{1,2}\d{5})(?![A-Za-z0-9])")
"""A licence plate (沪A·12345, 沪AD12345 or 沪AD 12345 a new-energy car's, 沪A 1234学 a driving
school's): a province's one character, the city's letter, then five characters (six on a
new-energy plate), two of them digits at least: a center's notes name whose car blocks the
gate or hit whom, and a plate reaches its owner as surely as a phone number does."""
_PLATE_DIGITS = re.compile(r"\d.*\d")
_PLATE_KEYWORD = re.compile(
    r"(?:车牌|车号|号牌|牌照|\b[Pp]late\b)(?:号码|号)?(?:是|为|:|：|\s)*"
    r"(?P<n>[A-Za-z][ ·.\-]{0,2}(?:[DFdf][ ·.\-]{1,2})?[A-Za-z0-9]{5,6})(?![A-Za-z0-9])")
"""A plate after its name, written without the province (车牌A12345, 车号：A·12345, 车牌是
AD12345 a new-energy one): the city's letter and five or six characters."""
_PLATE_NO_CITY = re.compile(r"(?<![A-Za-z0-9])" + _PROVINCE_OF_A_PLATE
                            + r"[ ·.\-]?\d{5}(?![0-9A-Za-z])")
"""A plate written without the city's letter, in a note about a car (车牌沪12345, 车是沪23456,
the letter forgotten or not heard): a province's character and five digits. Not before a unit
or 号 (沪12345号 is a document's number), nor 热线 (a hotline)."""
_NOT_A_PLATE_AFTER = re.compile(r"\s?(?:号|热线|平台|工单)")
_CALLED_BEFORE = re.compile(r"(?:打|拨|向|通过|致电)$")
"""What is said before a city's hotline (已打京12345, 向沪12345反映): not before a plate."""


#: Bounded as an address is (64 characters before the @, 255 after): unbounded, every start in
#: a long run of such characters scanned to its end, quadratic (a 16 kB run 0.18-0.42 s a
#: pass; now 2 ms); every address of real length is found as before.
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,255}\.[A-Za-z]{2,}")


_DATE_SHAPE = re.compile(r"\d{4}[ .\-/]\d{1,2}[ .\-/]\d{1,2}|\d{1,2}[ .\-/]\d{1,2}[ .\-/]\d{4}")
_DATE_AND_HOUR = re.compile(r"(?:" + _DATE_SHAPE.pattern + "|" + _COMPACT_DATE.pattern
                            + r")[ \-]?\d{1,2}")
_A_TIME = re.compile(r"[:：点时]")
_A_DAY = re.compile(r"(?:19|20)\d\d[ .\-/]\d{1,2}[ .\-/]\d{1,2}"
                    r"|\d{1,2}[ .\-/]\d{1,2}[ .\-/](?:19|20)\d\d")
"""A day after a phone's keyword (电话2026-12-31回访): its year is this century's or the last's;
座机 6234 56 78 is a landline spaced (kept until scrub49)."""
"""A day and the hour of a time after it (电话2026-12-31 23:30回访, 联系20261220 15:30): the
digits before the colon are no phone number."""


def _plausible_id(digits: str) -> bool:
    """Region, birth date and length of an 18-character resident ID number."""
    year, month, day = int(digits[6:10]), int(digits[10:12]), int(digits[12:14])
    return 1850 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)



_HK_HINT = re.compile(r"[5679]\d{3}[ \-]")
_MEASURE = re.compile(r"\s?(?:[元块万千百人户次天年月日岁个名家份位项张间套度米%]|小时|分钟|周|平)")

_EXTENSION = re.compile(r" {0,2}(?:转分机|转|分机|-|ext\.?|Ext\.?|EXT\.?) {0,2}\d{2,5}(?![\d\-])"
                        r"(?!\s?(?:[万千百]?[元块]|%))")
"""A phone's extension right after it (62345678转8001, 021-62345678 转 8001, (021)62345678-8001,
ext 8001): with the number, whom it reaches; kept until scrub49. Only after a phone found, and
not an amount (手机13800138000 转 2000元, -200元: scrub49 took the amount in: redteam89)."""
_AMOUNT_GROUP = re.compile(r"(?: ?- ?| {2})\d+$")
"""The last group of what ``_PHONE_KEYWORD`` read, after a dash or two spaces, when an amount
follows it (电话62345678 - 8001元, 手机13800138000-200元): the amount, the digits before it the
phone; an amount's own groups are parted by a space or a comma, never a dash. Until redteam89
the whole went as an amount and the phone was kept (scrub49's " - " made it likelier)."""


def number_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """The ID numbers, accounts and phones in a (folded) text, a phone with its extension."""
    for start, end, marker in _number_spans(text):
        if marker == REDACTED_PHONE and (m := _EXTENSION.match(text, end)) is not None:
            end = m.end()
        yield start, end, marker


def _number_spans(text: str) -> Iterator[tuple[int, int, str]]:
    for regex in (_ID_KEYWORD, _ID_TAIL):
        for m in regex.finditer(text):
            if not _DATE_SHAPE.fullmatch(m.group("n")):
                yield m.start("n"), m.end("n"), REDACTED_ID
    for m in _ID_18.finditer(text):
        digits = digits_of(m.group())
        if _plausible_id(digits) and _dictated(m.group(), 5) and (
                not _a_serial(text, m.start()) or _id_check_holds(digits)
                or int(digits[6:10]) < _SERIALS_SINCE):
            yield m.start(), m.end(), REDACTED_ID  # not 受理号310115202612200001
    for m in _ACCOUNT_KEYWORD.finditer(text):
        if not _DATE_SHAPE.match(m.group("n")) and not (  # 社保卡2026-12-31到期: when
                m.group().startswith(("账户", "帐户", "户号")) and _MEASURE.match(text, m.end())):
            yield m.start("n"), m.end("n"), REDACTED_ACCOUNT  # not 账户 1500000元: how much
            nxt = _ACCOUNT_NEXT.match(text, m.end())
            while nxt is not None and not _DATE_SHAPE.match(nxt.group("n")) \
                    and not _COMPACT_DATE.fullmatch(nxt.group("n")) \
                    and not _MEASURE.match(text, nxt.end()):  # not 、20261220到期, 、1500元
                yield nxt.start("n"), nxt.end("n"), REDACTED_ACCOUNT  # 户号 A、B: B too
                nxt = _ACCOUNT_NEXT.match(text, nxt.end())
    if "车" in text or "VIN" in text or "vin" in text or "Vin" in text or "识别" in text:
        for m in _VIN_KEYWORD.finditer(text):
            if _ANY_DIGIT.search(m.group("n")):
                yield m.start("n"), m.end("n"), REDACTED_PLATE
    if "门牌" in text:
        for m in _DOOR_KEYWORD.finditer(text):
            if not (m.group("n")[-1].isdigit() and _MEASURE.match(text, m.end("n"))):
                yield m.start("n"), m.end("n"), REDACTED_ADDRESS  # not 门牌200块: how many
    if "院" in text or "病" in text or "诊" in text or "医" in text or "检" in text:
        for m in _RECORD_KEYWORD.finditer(text):  # not 就医卡 1500元, 体检卡2026年到期
            if not _DATE_SHAPE.match(m.group("n")) and not _MEASURE.match(text, m.end("n")):
                yield m.start("n"), m.end("n"), REDACTED_RECORD
    for m in _CARD.finditer(text):
        if not _YEARS.fullmatch(m.group()) \
                and (m.group().isdigit() or not _MEASURE.match(text, m.end())) \
                and not _days_from_to(m.group()) and (
                not _a_serial(text, m.start()) or _luhn_holds(digits_of(m.group()))):
            yield m.start(), m.end(), REDACTED_ACCOUNT  # not 2023 2024 2025 2026年
    for m in _MOBILE.finditer(text):
        if _a_mobile(m.group("n")):
            yield m.start(), m.end(), REDACTED_PHONE
    for m in _LANDLINE_INTL.finditer(text):
        yield m.start(), m.end(), REDACTED_PHONE
    if "86" in text:  # 86 21 6412 3456
        for m in _LANDLINE_86.finditer(text):
            if not _a_serial(text, m.start()) and not _MEASURE.match(text, m.end()):
                yield m.start(), m.end(), REDACTED_PHONE
    if "+" in text or "0085" in text or "00886" in text:
        for m in _ABROAD.finditer(text):
            if not _THOUSANDS.search(m.group()) and not _MEASURE.match(text, m.end()) and not (
                    text[m.start()] == "0" and _a_serial(text, m.start())):
                yield m.start(), m.end(), REDACTED_PHONE  # not +1500000元, 受理号：00886...
    if "09" in text or "886" in text:  # 0912-345-678
        for m in _TW_MOBILE.finditer(text):
            if not _a_serial(text, m.start()) and not _MEASURE.match(text, m.end()):
                yield m.start(), m.end(), REDACTED_PHONE
    if _HK_HINT.search(text):  # 9123 4567, 6123-4567
        for m in _HK_LOCAL.finditer(text):
            if _hk_local(text, m):
                yield m.start(), m.end(), REDACTED_PHONE
    if _ABROAD_HINT.search(text):  # 090-1234-5678, (02) 2345-6789, 886-2-...
        for regex in (_JP_MOBILE, _TW_LANDLINE):
            for m in regex.finditer(text):
                if not _a_serial(text, m.start()) and not _MEASURE.match(text, m.end()):
                    yield m.start(), m.end(), REDACTED_PHONE
    if _EIGHT_DIGITS.search(text):  # 62345678, 6234567 alone
        for m in _LANDLINE_ALONE.finditer(text):
            if _alone(text, m):
                yield m.start(), m.end(), REDACTED_PHONE
    if "85" in text:  # 852-9123-4567
        for m in _HK_MACAO.finditer(text):
            if not _a_serial(text, m.start()) and not _MEASURE.match(text, m.end()):
                yield m.start(), m.end(), REDACTED_PHONE
    for m in _LANDLINE.finditer(text):
        if _dictated(m.group(), 3):
            yield m.start(), m.end(), REDACTED_PHONE
    for m in _DICTATED_SHAPES.finditer(text):
        if m.group("spaced"):  # 1 3 8 0 0 1 3 8 0 0 0
            if marker := _spaced_number(digits_of(m.group())):
                yield m.start(), m.end(), marker
        elif m.group("old_id"):  # 310115850312123
            if not _a_serial(text, m.start()):
                yield m.start(), m.end(), REDACTED_ID
        else:  # 138*0013*8000, 138一0013一8000, 310115:19850312:123X
            yield m.start(), m.end(), REDACTED_ID if m.group("id") else REDACTED_PHONE
    yield from _glued_spans(text)
    if _ANY_LATIN.search(text):  # a plate has its city's letter
        for m in _PLATE.finditer(text):
            if _PLATE_DIGITS.search(m.group("n")):
                yield m.start(), m.end(), REDACTED_PLATE
        if "车" in text or "牌" in text or "late" in text:
            for m in _PLATE_KEYWORD.finditer(text):
                if _PLATE_DIGITS.search(m.group("n")):
                    yield m.start("n"), m.end("n"), REDACTED_PLATE
    if "车" in text or "牌" in text:  # 车牌沪12345
        for m in _PLATE_NO_CITY.finditer(text):
            if not _MEASURE.match(text, m.end()) and not _NOT_A_PLATE_AFTER.match(text, m.end()) \
                    and not (m.group().endswith("12345")  # 已打京12345反映: the city's hotline
                             and _CALLED_BEFORE.search(text, max(0, m.start() - 2), m.start())):
                yield m.start(), m.end(), REDACTED_PLATE
    for m in _PHONE_KEYWORD.finditer(text):
        number, end = m.group("n"), m.end("n")
        if _AMOUNT_AFTER.match(text, end):
            cut = _AMOUNT_GROUP.search(number)
            if cut is None or len(digits_of(number[:cut.start()])) < 7:
                continue  # 联系居委会，补贴1380000元: how much, not whom
            number, end = number[:cut.start()], m.start("n") + cut.start()  # 电话62345678-300元
        if _DECIMAL.fullmatch(number):
            continue  # 联系1.2345678万
        if not _A_DAY.fullmatch(number) and not (  # 联系20261220: when, not whom
                m.group("reach") and _COMPACT_DATE.match(number)) and not (
                _DATE_AND_HOUR.fullmatch(number) and _A_TIME.match(text, end)):
            yield m.start("n"), end, REDACTED_PHONE  # not 电话2026-12-31 23:30回访
    if "\n" in text or "\x85" in text or "\u2028" in text or "\u2029" in text:
        for m in _PHONE_WRAPPED.finditer(text):  # 电话6234\n5678
            if 7 <= len(digits_of(m.group("n"))) <= 8 and not _AMOUNT_AFTER.match(text, m.end()) \
                    and not _MEASURE.match(text, m.end()):
                yield m.start("n"), m.end("n"), REDACTED_PHONE
    if "尾号" in text or "位" in text:  # 尾号5678, 后四位5678
        for m in _TAIL_KEYWORD.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_PHONE
        for m in _ACCOUNT_TAIL.finditer(text):
            yield m.start("n"), m.end("n"), REDACTED_ACCOUNT


# -- codes: what a caller's id must not be -------------------------------------------------------

_CODE_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d+(?:[.\-_:]\d+)*[Xx]?(?![0-9A-Za-z])")
"""Numbers in a code (an Idempotency-Key, a correlation id): digits in groups joined by one
separator, between the code's edges or separators."""
_CODE_GROUP_SEP = re.compile(r"[.\-_:]")
_CODE_MOBILE = re.compile(r"(?:0086|86)?1[3-9]\d{9}")
_WRITTEN_SHAPES = frozenset({(3, 4, 4), (2, 3, 4, 4), (4, 3, 4, 4), (2, 11), (4, 11), (6, 8, 4)})
"""How a number is written in groups: 138-1234-5678, 86-138-1234-5678, 0086.13812345678,
310101-19900101-1234. Groups of other lengths are the app's own parts (a device's number and
a count: bench-138123456-78), not one number written out."""
_LONG_RUN = re.compile(r"[0-9]{11,}")
"""Eleven digits or more in a row (a maximal run: the search goes on after each one)."""
_NOT_HEX = re.compile(r"[G-Zg-z]")
_HEX_ID = re.compile(r"(?:[A-Za-z]+[.\-_:])?[0-9A-Fa-f]{32}"
                     r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
"""A key of the pages' (``step-`` and 32 hex digits: ``ui.js``'s ``newKey``) or a UUID: such
a code holds no personal number by the rules below (its only number is one group of 32, or
groups of 8-4-4-4-12 digits; no letter past f touches a run), so it is not read further."""
_MAY_HOLD = re.compile(r"\d(?:\d{10}|[.\-_:]\d+[.\-_:]\d)")
"""What every code holding a personal number by the rules below holds: eleven digits in a
row (one group, glued or not, or two groups one of which has eleven), or three groups of
digits in a row (the written shapes of more groups). A code without it is not read further."""


def _letters_around(code: str, start: int, end: int) -> str:
    """The letters glued to ``code[start:end]`` on either side."""
    before, after = start, end
    while before and code[before - 1].isascii() and code[before - 1].isalpha():
        before -= 1
    while after < len(code) and code[after].isascii() and code[after].isalpha():
        after += 1
    return code[before:start] + code[end:after]


def _glued_numbers(code: str) -> Iterator[str]:
    """Runs of digits glued to a word that is no hex (tel13812345678, mobile8613812345678,
    sfz11010519491231002x): a hex id (only a-f) holds such runs by chance, a word does not."""
    for m in _LONG_RUN.finditer(code):
        start, end = m.span()
        if _NOT_HEX.search(_letters_around(code, start, end)):
            yield m.group()
            if code[end:end + 1] in ("X", "x"):  # an ID number's check character
                yield m.group() + code[end]


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_check_holds(digits: str) -> bool:
    """The 18th character of an ID number is its check digit (GB 11643, ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == digits[17].upper()


def _glued_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """Phone and ID numbers glued to a Latin word (tel13812345678, sfz11010519491231002X, as a
    clerk types them in a hurry): the other rules want no letter before a number, which keeps
    a hex id's digits whole; a word with a letter past f is no hex id."""
    for m in _LONG_RUN.finditer(text):
        start, end = m.span()
        if not _NOT_HEX.search(_letters_around(text, start, end)):
            continue
        digits = m.group()
        if _CODE_MOBILE.fullmatch(digits):
            yield start, end, REDACTED_PHONE
        elif len(digits) == 17 and text[end:end + 1] in ("X", "x") and _plausible_id(digits):
            yield start, end + 1, REDACTED_ID
        elif len(digits) == 18 and digits[0] != "0" and _plausible_id(digits):
            yield start, end, REDACTED_ID


def _personal_number(digits: str) -> str | None:
    # An ID number in a code was put there by a program, from a card reader or a form: its
    # check digit holds. Without it about one 18-digit id in a thousand (a snowflake id, a
    # time in ms and a count) and every area-date-count ticket (310101-20261204-0001) read as
    # one; with it one in eleven of those still does (each then is a valid ID number).
    if _CODE_MOBILE.fullmatch(digits):
        return "a phone number"
    if len(digits) == 18 and digits[0] in "12345678" and digits[:17].isdigit() \
            and _plausible_id(digits) and _id_check_holds(digits):
        return "an ID number"
    return None


def personal_number_in(code: str) -> str | None:
    """What personal number ``code`` holds ("a phone number", "an ID number"), or None.

    A code is not scrubbed (``shared.contracts.fields``): an Idempotency-Key or a correlation
    id goes as it is onto every event of the command, into the logs and the exports. A counter
    app that makes it of the resident's mobile number (13812345678) or ID number is refused:
    a group of digits that is one, or groups the way such a number is written
    (138-1234-5678, 310101-19900101-1234). A UUID's groups (8-4-4-4-12) are never either. A
    number glued to letters is looked for only when a letter touching it is no hex digit
    (tel13812345678, id310101199001011234x): a hex id (only a-f) holds such runs by chance.
    """
    if len(code) < 11 or _HEX_ID.fullmatch(code) is not None:  # clerk-017, a UUID
        return None
    if _MAY_HOLD.search(code) is None:  # SA-HARDSHIP-SUBSIDY, bench-138123456-78
        return None
    return _read_code(code)


def _read_code(code: str) -> str | None:
    """:func:`personal_number_in` of a code its quick looks did not clear: the rules read."""
    if _LONG_RUN.search(code) is not None:  # rare in a hex id, so the glued look is too
        for digits in _glued_numbers(code):
            if found := _personal_number(digits):
                return found
    for m in _CODE_NUMBER.finditer(code):
        groups = _CODE_GROUP_SEP.split(m.group())
        for first in range(len(groups)):
            if found := _personal_number(groups[first]):
                return found
            for last in range(first + 2, min(first + 4, len(groups)) + 1):
                shape = tuple(len(g) for g in groups[first:last])
                if shape in _WRITTEN_SHAPES and (
                        found := _personal_number("".join(groups[first:last]))):
                    return found
    return None


def personal_data_in(subject: str) -> str | None:
    """What personal data an id that names a person holds (a token's subject: the actor of
    every event they record): a phone or ID number (:func:`personal_number_in`), or "an e-mail
    address" (wang.li@huamu.gov.cn; a name@realm without a domain is an id)."""
    if "@" in subject and _EMAIL.fullmatch(fold(subject)):
        return "an e-mail address"
    return personal_number_in(subject)
