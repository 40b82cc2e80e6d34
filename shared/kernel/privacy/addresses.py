"""Addresses in free text, by their shape (``_address_spans``: a number with a unit after a
road, lane, village or estate name; two units in a row; building-unit-room; English ones)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.kernel.privacy.folding import (
    _HAN,
)
from shared.kernel.privacy.numbers import (
    _DATE_SHAPE,
    _MEASURE,
    _a_serial,
)

# -- addresses -----------------------------------------------------------------------------

#: A number of a house, floor or room. It starts where its run of digits (or numerals) does:
#: a start inside the run can match no more than the run's start did, and trying every one
#: of them made a 4,000-character run of digits (a pasted list, a scanned code) cost seconds.
_NUMERALS = "〇零一二三四五六七八九十百千两"
_NUM = r"(?:(?<!\d)\d+(?:-\d+)?|(?<![" + _NUMERALS + r"])[" + _NUMERALS + r"]+)"
_UNIT = r"(?:号楼|号院|支弄|单元|号|弄|幢|栋|座|层|楼|室|户|组|排)"
_ADDRESS_CORE = re.compile(r"(?:" + _NUM + r"\s*" + _UNIT + r")(?:\s{0,2}" + _NUM + r"\s*" + _UNIT
                           + r")*(?P<room>\s*\d{3,5}(?![\d号])"
                           r"|(?:(?<=单元)|(?<=[楼幢栋座]))[〇零一二三四五六七八九]{3,4}"
                           r"(?![〇零一二三四五六七八九十百千号]))?")
_BUILDING = ("号楼", "幢", "栋", "座", "单元")
"""A building's unit, which a room's bare number after it makes an address of its own (住3号楼401,
住三栋四零一: scrub46 found the room kept, or the whole address); not a floor (3楼302会议室, the
center's, and 她在3楼 9123 4567, a phone)."""
_LIVES_IN_ROOM = re.compile(
    r"(?<!包)住(?:在|的是)?\s*(?P<n>(?:(?:[1-9]\d?|[一二三四五六七八九十]{1,3})楼\s*)?"
    r"(?:[1-9]\d{2,3}|[一二三四五六七八九][〇零一二三四五六七八九]{2,3}))"
    r"(?![\d〇零一二三四五六七八九十百千万.\-/:：]|\s?(?:多|余|来|左右|以上|以下|晚|夜|㎡|m²))")
"""A room's bare number where someone lives (住501, 家住401, 住在六零二, 住3楼301: redteam56 found
it kept, 住501室 went): a door number, as a resident says it; not a stay's length or a count
(住300天, 入住120人, 住100多天, 住3晚), nor a day (住2026-12-20), nor a wage's board (包吃包住
3500: redteam60), nor a hospital's bed or ward (``_A_ROOM_OF_USE``)."""
_A_ROOM_OF_USE = re.compile(r"\s*(?:(?:会议|办公|活动|教|阅览|档案|调解)?室|房间|病房|病区|床)")
"""A room of use after a number (7号楼302会议室): the center's, not a home; a hospital's bed or
ward (住302床, 住302病房: redteam60 found them scrubbed as a flat)."""
_STRONG_UNITS = ("室", "弄", "幢", "栋", "单元", "号院", "支弄")
_PLACES = ("路", "街", "大道", "段", "巷", "弄", "村", "小区", "新村", "花园", "公寓", "苑", "家园",
           "大厦", "广场", "公馆", "府", "湾", "城", "镇")
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


_DASHED = re.compile(r"\s?(?<!\d)\d{1,4}(?:-\d{1,4}){1,2}(?![\d-])")
"""Building, unit and room in a row (5-3-201, 12-502), as an estate's residents write them."""
_ROOM_CODE = re.compile(r"(?<![0-9A-Za-z\-/.:_])\d{1,3}-\d{1,2}-\d{3,4}(?![0-9A-Za-z\-/.:_])")
"""Building, unit and room alone (住12-3-402, 她家是7-2-301, 5-1-1202漏水), as residents give
them without the estate: a building up to three digits, a unit up to two, a room of three or
four. Not a date (12-20-2026: a year last; 5-1-1202 is a room), a phone's or a serial's
groups (021-5888-1234, 2026-1220-0001: a group too long), an article's numbers (第3-5-7条),
a range of sums (1-10-100元)."""
_ESTATES = ("小区", "新村", "花园", "公寓", "苑", "家园", "大厦", "公馆", "府", "湾", "城", "村")


_YEAR = re.compile(r"(?:19|20)\d\d")


def _a_range_or_date(found: str, text: str, end: int) -> bool:
    """Numbers with dashes after an estate that are no building-unit-room: a date or a month
    (锦绣小区2026-12-20停水, 2026-12), years (2024-2026), or a range of amounts or counts
    (政府500-1000元, 新村100-200人)."""
    groups = found.split("-")
    if _DATE_SHAPE.fullmatch(found) or _MEASURE.match(text, end):
        return True
    return len(groups) == 2 and _YEAR.fullmatch(groups[0]) is not None and (
        _YEAR.fullmatch(groups[1]) is not None or 1 <= int(groups[1]) <= 12)


def _place_before(text: str, start: int) -> int:
    place = start
    while place > 0 and start - place < _LONGEST_PLACE and _HAN.match(text[place - 1]) \
            and text[place - 1] not in _STOP:
        place -= 1
    return place


_COUNTER = re.compile(r"\s*(?:窗口|柜台|服务台)")
_ROOMS = re.compile(r"[一二两三四五六]室(?=[一二两三]?厅)")


_CENTER_ROOM = re.compile(r"\s*(?:(?:调解|会议|接待|活动|阅览|档案)室)?"
                          r"(?:(?:办事|服务)?大厅|办理|领取|领表|咨询|等候|排队|面谈|填表|"
                          r"签字|开会|取号|递交|交材料|盖章|复印|缴费|报到)")
"""What a resident is sent to a room or a floor of the center to do (到二楼201室领表, 去205室办理,
请到3号楼2楼办事大厅), the room's use named between (请到3楼302室调解室等候: scrub47)."""


_SENT_TO = re.compile(r"[到去往至在](?:本?中心|服务中心)?$")
"""Where a resident is sent, before a floor or a room: to it (到二楼), or to the center's
(请到中心三楼302室领取); not 家住市中心 (no 到 / 去 / 在 before 中心)."""


def _not_a_home(text: str, start: int, end: int, units: list[str]) -> bool:
    """The center's own counter (一楼3号窗口, 1号2号窗口) or room, a floor and a room a
    resident is sent to (到二楼201室领表, 在205室等候), a room of use and its number in brackets
    (调解室（203室）), or the size of a flat (两室一厅)."""
    if _COUNTER.match(text, end):
        return not any(u in _STRONG_UNITS for u in units)
    if _SENT_TO.search(text, max(0, start - 5), start) \
            and set(units) <= {"楼", "层", "室", "号楼"} and _CENTER_ROOM.match(text, end):
        return True
    if units == ["室"] and _ROOM_OF_USE_BEFORE.search(text, max(0, start - 6), start):
        return True  # 中心二楼调解室（203室）: the room's number after its use, in brackets
    rooms = _ROOMS.match(text, start)
    return rooms is not None and rooms.end() == end


_ROOM_OF_USE_BEFORE = re.compile(r"(?:调解|会议|接待|活动|阅览|档案|办公|值班)室\s*[（(]\s*$")


_LISTED_NUMBER = re.compile(r"(?<![\d\-])(?P<d>\d{3,5})(?:\s{0,2}[、，,/和及与]\s{0,2}|\s{1,2})$")
"""A number listed right before a house's or a room's (5201 5202室, 1203、1204室: two rooms
of one home), as many digits as it."""
_LEADING_DIGITS = re.compile(r"\d+")


def _listed_before(text: str, start: int, core: str) -> int:
    """Where the numbers listed before an address's core begin (5201 5202室: at 5201)."""
    lead = _LEADING_DIGITS.match(core)
    while lead is not None and (
            m := _LISTED_NUMBER.search(text, max(0, start - 10), start)) is not None \
            and len(m.group("d")) == len(lead.group()):
        start = m.start()
    return start


_DIVISION = re.compile(r"新区|(?<=[\u4e00-\u9fff]{2})(?<![小社园校片景街城市郊厂营矿库宅])区|"
                       r"(?<=[\u4e00-\u9fff]{2})[市县镇乡]|省|街道")
"""The end of an administrative division before a road or an estate (上海市, 浦东新区, 闵行区,
莘庄镇, 花木街道): two characters of a name before it at least (城市花园 is an estate's name),
not an estate's or a quarter's 区 (锦绣小区, 社区, 园区, 校区, 景区, 城区)."""


def _after_divisions(text: str, place: int, start: int, ends: tuple[str, ...]) -> int:
    """Where an address's own place name begins: after the district, the town or the city it
    is in (浦东新区张杨路1234号: at 张杨路), when what is left still ends as a place does
    (``ends``). A district holds a million people: it singles no one out, and a note that
    keeps it still says where the resident lives, as a case's figures need."""
    cut = place
    for m in _DIVISION.finditer(text[place:start]):
        if place + m.end() < start and text[place + m.end():start].endswith(ends):
            cut = place + m.end()
    return cut


def _a_lane(named: str) -> bool:
    """A lane of old houses named ...里 or ...坊 (住幸福里3号, 步高里12号, 尚贤坊5号: scrub46
    found them kept): three characters at least, not 这里 / 家里 / 公里 / 村里 ... before a
    number."""
    return len(named) >= 3 and named[-1] in "里坊" and named[-2] not in _NOT_A_LANE


_NOT_A_LANE = frozenset("这那哪家公心手村城店屋夜县区市镇乡邻楼院厂队组里千万百十")
_IN_A_LANES_NAME = frozenset("和与")
"""Words that end a place name read backwards (``_STOP``: 她和…, 与…) but are in many a lane's
own (和平里, 永和坊, 人和里, 与德里): a lane read past them (a lane: ``_a_lane``)."""


def _address_spans(text: str, english: bool = True) -> Iterator[tuple[int, int]]:
    for m in _ADDRESS_CORE.finditer(text):
        start, end = m.span()
        core = m.group()
        units = re.findall(_UNIT, core)
        if _not_a_home(text, start, end, units):
            continue
        place = _place_before(text, start)
        if place == start and text[start - 1:start] == " ":  # 住 东方路 88 弄: a space apart
            spaced = _place_before(text, start - 1)
            if any(text[spaced:start - 1].endswith(p) for p in _PLACES):
                place = spaced
        named = text[place:start].rstrip(" ")
        if not _a_lane(named) and text[place - 1:place] in _IN_A_LANES_NAME \
                and _a_lane(lane := text[_place_before(text, place - 1):start].rstrip(" ")):
            place, named = start - len(lane), lane  # 住和平里3号, 永和坊5号: 和 begins no clause
        anchored = any(named.endswith(p) for p in _PLACES) or _a_lane(named)
        room = m.group("room") is not None and units[-1].endswith(_BUILDING) \
            and not _MEASURE.match(text, end) and not _A_ROOM_OF_USE.match(text, end)
        if anchored or room or len(units) >= 2 or any(u in _STRONG_UNITS for u in units):
            yield (_after_divisions(text, place, start, _PLACES) if anchored
                   else _listed_before(text, start, core)), end
    if "-" in text:
        for m in _DASHED.finditer(text):
            start, end = m.span()
            if _a_range_or_date(m.group().strip(), text, end):
                continue
            place = _place_before(text, start)
            if any(text[place:start].endswith(p) for p in _ESTATES) and \
                    any(len(g) >= 3 for g in m.group().strip().split("-")):
                yield _after_divisions(text, place, start, _ESTATES), end
        for m in _ROOM_CODE.finditer(text):  # a date's year is 19xx or 20xx: 5-1-1202 is none
            if not _MEASURE.match(text, m.end()) and not _YEAR.fullmatch(m.group()[-4:]) \
                    and text[m.start() - 1:m.start()] != "第" and not _a_serial(text, m.start()):
                yield m.span()
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
