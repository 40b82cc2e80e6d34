"""Leaks and over-scrubs of the free-text scrubber on notes as clerks write them, this tree and
another paired.

    .venv/bin/python benchmarks/scrubber_notes.py /work/main [--notes genres|all]

Each note below carries what in it is personal (a name, a plate, a room) and what must stay
(a district, a place, a word); the resident the case names is 王秀英 (on file, as the vault
holds her). Both trees' ``redact`` scrub every note in a process of their own; a note leaks
when a personal part is still in the result, and is over-scrubbed when a part that must stay
is gone. Prints each note that either tree gets wrong, then the counts. ``--notes genres``
measures the second set (``scrubber_notes_genres.py``: phone logs, 12345 transfers, grid
workers' reports, mediations, hand-overs, everyday words that begin with a surname, numbers
that are no one's), written after scrub10's rules, which were written around the first;
``--notes clerks`` scrub46's notes about residents whose given name is an everyday word
(``scrubber_notes_clerks.py``); ``--notes redteam56`` redteam56's attack on those rules from
outside (``scrubber_notes_redteam56.py``: brackets, times, emoji, lists, tones, the center's
own words); ``--notes scrub47`` scrub47's (``scrubber_notes_scrub47.py``: names typed with
separators, initials, Hong Kong's romanised names, numbers alone from Japan, Taipei or a
landline, the holiday 国庆, and the center's own text that must stay); ``--notes redteam69``
redteam69's attack on those (``scrubber_notes_redteam69.py``: serials, amounts and references
of eight digits, acronyms after a surname's character, QQ and WeChat as written to dodge a
filter, Korean, Japanese and Taiwanese names, Hong Kong's forms of address, lower-case
initials, a space after the surname, a landline wrapped across lines); ``--notes all`` every
set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scrubber_notes_clerks import CLERKS  # noqa: E402
from benchmarks.scrubber_notes_genres import KNOWN  # noqa: E402
from benchmarks.scrubber_notes_genres import NOTES as GENRES  # noqa: E402
from benchmarks.scrubber_notes_redteam56 import REDTEAM56  # noqa: E402
from benchmarks.scrubber_notes_redteam69 import REDTEAM69  # noqa: E402
from benchmarks.scrubber_notes_scrub47 import SCRUB47  # noqa: E402

#: (note, personal parts, parts that must stay). None of these notes is in the tests or the
#: other corpora: they are written for this measure, after what clerks were seen to type.
NOTES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # a name alone before what the person did (no introducer before it)
    ("刘志刚同意签字，材料齐了", ("刘志刚",), ("材料齐了",)),
    ("孙立平不同意调解，要求书面答复", ("孙立平",), ("要求书面答复",)),
    ("周海燕确认收到补贴", ("周海燕",), ("确认收到补贴",)),
    ("何建军拒绝签收，说要再考虑", ("何建军",), ("拒绝签收",)),
    ("吴桂芬已签字确认", ("吴桂芬",), ("已签字确认",)),
    ("今天上午郑国庆到场办理了", ("郑国庆",), ("到场办理",)),
    ("罗美华答应下周补交户口本", ("罗美华",), ("下周补交户口本",)),
    ("冯晓东同意延期，下周一再来", ("冯晓东",), ("同意延期",)),
    ("邓丽君已领取慰问金", ("邓丽君",), ("已领取慰问金",)),
    ("蒋志明签收了通知书", ("蒋志明",), ("签收了通知书",)),
    # nicknames of a given name (小 + a given name's character)
    ("小芳说明天带孩子来", ("小芳",), ("明天带孩子来",)),
    ("小丽已经把表填好了", ("小丽",), ("把表填好了",)),
    ("跟小燕核对过了", ("小燕",), ("核对过了",)),
    ("小红来电问进度", ("小红",), ("来电问进度",)),
    ("小军下午会过来", ("小军",), ("下午会过来",)),
    ("小梅说她妈妈住院了", ("小梅",), ("住院了",)),
    ("让小敏再核一遍", ("小敏",), ("再核一遍",)),
    ("小娟今天请假", ("小娟",), ("今天请假",)),
    # posts before or after a whole name
    ("副主任陈刚已批示，同意特事特办", ("陈刚",), ("副主任", "同意特事特办")),
    ("王建国局长来过，了解情况", ("王建国",), ("局长", "了解情况")),
    ("书记李红梅答复：下周协调", ("李红梅",), ("书记", "下周协调")),
    ("科长赵志强签批了", ("赵志强",), ("科长", "签批了")),
    ("孙建平所长到场协调", ("孙建平",), ("所长", "到场协调")),
    ("主任周建华说可以特批", ("周建华",), ("主任", "可以特批")),
    ("刘文斌站长电话说明了情况", ("刘文斌",), ("站长",)),
    ("社区副书记许丽华上门走访", ("许丽华",), ("副书记", "上门走访")),
    ("经理钱伟明答应退费", ("钱伟明",), ("经理", "答应退费")),
    ("张晓峰科长已审核", ("张晓峰",), ("科长", "已审核")),
    # plates, with the city's letter or without it
    ("车牌沪12345停在消防通道", ("沪12345",), ("消防通道",)),
    ("沪A12345的车主没接电话", ("沪A12345",), ("车主没接电话",)),
    ("楼下沪B67890占了残疾人车位", ("沪B67890",), ("残疾人车位",)),
    ("苏E12345的电动车挡住楼道", ("苏E12345",), ("挡住楼道",)),
    ("浙A88888停了三天", ("浙A88888",), ("停了三天",)),
    ("沪C56789撞了老人后开走了", ("沪C56789",), ("撞了老人",)),
    ("车是沪23456，白色的", ("沪23456",), ("白色的",)),
    ("京N12345占道", ("京N12345",), ("占道",)),
    # rooms written as building-unit-room
    ("住12-3-402，一楼有台阶", ("12-3-402",), ("一楼有台阶",)),
    ("她家是7-2-301，没有电梯", ("7-2-301",), ("没有电梯",)),
    ("5-1-1202漏水影响楼下", ("5-1-1202",), ("漏水影响楼下",)),
    ("上门地址18-4-602", ("18-4-602",), ()),
    ("3-2-101的老人独居", ("3-2-101",), ("老人独居",)),
    ("住在21-1-503室", ("21-1-503",), ()),
    # 给 + a three-character name + 发 (``]发`` after the marker: the name's last character left)
    ("给王建发短信提醒", ("王建发", "]发短信"), ("短信提醒",)),
    ("已给李国发微信", ("李国发", "]发微信"), ()),
    ("给张德发打过电话", ("张德发", "]发打"), ("打过电话",)),
    ("给陈永发发了通知", ("陈永发", "]发发"), ("发了通知",)),
    # the resident's own name with one character typed wrong (the IME's homophone)
    ("今天王秀瑛来过，补了材料", ("王秀瑛",), ("补了材料",)),
    ("汪秀英的女儿代办", ("汪秀英",), ("的女儿代办",)),
    ("电话通知了王绣英", ("王绣英",), ()),
    ("王秀莹签字了", ("王秀莹",), ("签字了",)),
    ("已回访王秀音，满意", ("王秀音",), ("满意",)),
    ("材料由王修英本人提交", ("王修英",), ("本人提交",)),
    # a district, a town or a quarter before a road address stays
    ("住浦东新区张杨路1234号", ("张杨路1234号",), ("浦东新区",)),
    ("家住徐汇区漕溪北路88弄3号", ("漕溪北路88弄3号",), ("徐汇区",)),
    ("闵行区莘庄镇莘建路100号202室", ("莘建路100号202室",), ("闵行区",)),
    ("上海市静安区延长路5号", ("延长路5号",), ("静安区",)),
    ("浦东新区锦绣小区5-3-201", ("锦绣小区5-3-201",), ("浦东新区",)),
    ("在杨浦区国权路38号上班", ("国权路38号",), ("杨浦区",)),
    ("宝山区友谊路12号楼3室", ("友谊路12号楼3室",), ("宝山区",)),
    # places a household or a relative is in that begin with a surname
    ("居民金桥上班，晚上才回", (), ("金桥",)),
    ("女儿高桥那边住", (), ("高桥",)),
    ("家属周浦镇的，来回不方便", (), ("周浦镇",)),
    ("儿子康桥工作", (), ("康桥",)),
    ("老人曹路那边有套老房", (), ("曹路",)),
    ("居民唐镇搬来的", (), ("唐镇",)),
    ("子女金杨新村住", (), ("金杨",)),
    ("老伴马桥的老家", (), ("马桥",)),
    ("居民安亭上班", (), ("安亭",)),
    ("申请人罗店那边的厂", (), ("罗店",)),
    # already caught before this measure was written: they must stay caught
    ("居民刘美兰来电，电话13912345678", ("刘美兰", "13912345678"), ("来电",)),
    ("王阿姨说钱还没到", ("王阿姨",), ("钱还没到",)),
    ("联系人：赵建华 13611112222", ("赵建华", "13611112222"), ()),
    ("已联系陈晓红，她说周三来", ("陈晓红",), ("周三来",)),
    ("其子张伟代办", ("张伟",), ("代办",)),
    ("身份证310101195001011234已复印", ("310101195001011234",), ("已复印",)),
    ("张建国，男，45岁，失业", ("张建国",), ("失业",)),
    ("家住阳光新村12号楼502室", ("阳光新村12号楼502室",), ()),
    ("小王办的，老李也知道", ("小王", "老李"), ()),
    ("跟李秀兰沟通过了", ("李秀兰",), ("沟通过了",)),
    ("邻居周大勇说老人摔倒了", ("周大勇",), ("老人摔倒了",)),
    ("秀英阿姨情绪稳定", ("秀英阿姨",), ("情绪稳定",)),
    ("王秀英本人签字", ("王秀英",), ("本人签字",)),
    ("手机尾号6677", ("6677",), ()),
    ("邮箱 liu.mei@qq.com", ("liu.mei@qq.com",), ()),
    # nicknames and forms of address before what a note says of the resident (privacy47)
    ("老王腿脚不便，上门办理", ("老王",), ("腿脚不便",)),
    ("老刘住院了，女儿代办", ("老刘",), ("住院了",)),
    ("老陈独居多年，子女在外地", ("老陈",), ("独居多年",)),
    ("小刘媳妇来电问进度", ("小刘",), ("媳妇来电",)),
    ("小陈妈妈腿摔了", ("小陈",), ("妈妈腿摔了",)),
    ("老王低保材料齐了", ("老王",), ("低保材料齐了",)),
    ("老赵80岁了，行动不便", ("老赵",), ("80岁了",)),
    ("回访老孙满意", ("老孙",), ("满意",)),
    ("帮老周申请了高龄津贴", ("老周",), ("申请了高龄津贴",)),
    ("老吴一直没拿到补贴", ("老吴",), ("没拿到补贴",)),
    ("李大爷独居，腿脚不好", ("李大爷",), ("腿脚不好",)),
    ("王阿姨孙子代办", ("王阿姨",), ("孙子代办",)),
    ("张姐儿子来过", ("张姐",), ("儿子来过",)),
    ("王师傅家里没人", ("王师傅",), ("家里没人",)),
    ("陈老师退休了，低保不符合", ("陈老师",), ("低保不符合",)),
    # ... and what begins like one and is no one
    ("王府井那边的政策不一样", (), ("王府井",)),
    ("老城区改造，居民已搬走", (), ("老城区改造",)),
    ("小区门口老人摔了", (), ("小区门口",)),
    ("师傅说明天来修", (), ("师傅说明天来修",)),
    ("老师说孩子没来上学", (), ("老师说孩子",)),
    ("小孙女儿放学来接", (), ("小孙女儿",)),
    ("老毛病又犯了，住院一周", (), ("老毛病又犯了",)),
    ("老年补贴已发放，小额补贴下月", (), ("老年补贴", "小额补贴")),
    ("老房子一直漏水", (), ("老房子一直漏水",)),
    # what must stay: ordinary notes with words a rule could take for data
    ("老人同意签字，下周一办结", (), ("老人同意签字",)),
    ("家属同意调解", (), ("家属同意调解",)),
    ("申请人确认收到", (), ("申请人确认收到",)),
    ("居委会主任同意盖章", (), ("居委会主任同意盖章",)),
    ("小区门口停满了车", (), ("小区门口",)),
    ("小雪那天下了雨", (), ("小雪",)),
    ("老人小时候住在江西", (), ("小时候",)),
    ("小孩发烧了，请假一天", (), ("小孩发烧",)),
    ("小红书上看到的政策", (), ("小红书",)),
    ("小明白了，谢谢", (), ("小明白了",)),
    ("车间主任同意调岗", (), ("车间主任",)),
    ("常务副主任同意特批", (), ("常务副主任",)),
    ("公安局长批示了", (), ("公安局长",)),
    ("党支部书记来了", (), ("党支部书记",)),
    ("卫生院院长来电", (), ("卫生院院长",)),
    ("12345热线转来的工单", (), ("12345热线",)),
    ("沪人社规〔2024〕12号第三条", (), ("沪人社规〔2024〕12号",)),
    ("2026-12-20下午三点再来", (), ("2026-12-20",)),
    ("补贴500-1000元", (), ("500-1000元",)),
    ("第3-5-7条都适用", (), ("3-5-7",)),
    ("受理号 2026-1220-0001", (), ("2026-1220-0001",)),
    ("浦东新区的政策不一样", (), ("浦东新区",)),
    ("居民反映社区没人管", (), ("居民反映社区没人管",)),
    ("给付标准已调整", (), ("给付标准",)),
    ("请示领导后答复", (), ("请示领导",)),
    ("发放日期改到下周", (), ("发放日期",)),
    ("居民陈述情况属实", (), ("陈述情况属实",)),
    ("张江那边的企业", (), ("张江",)),
    ("主任说明了政策", (), ("主任说明了政策",)),
    ("同意签字的有三户", (), ("同意签字的有三户",)),
]

#: The triggers of the rules scrub10 added, each repeated over 10 kB and 20 kB (``--triggers``):
#: twice the text must take about twice the time, not four times (a rule that tried every
#: start to the text's end).
TRIGGERS = ["车牌沪1", "沪12345车", "车沪 ", "浦东新区张杨路1号", "新区路", "1-", "12-3-",
            "1-2-302",
            "主任陈", "王建国局长", "副主任", "局长王", "刘志刚同意", "，王同意", "上午王建",
            "小芳说", "小芳", "王秀", "秀英", "汪秀英", "王秀瑛来",
            # redteam38's: a serial's room-code shape, the hotline after 打, a post and a word
            "编号1-2-345", "打沪12345车", "主任许诺", "，高桥镇同意", "金星村村长",
            # privacy47's: a nickname before a word about the person, a list after one label,
            # the given name alone of the resident on file
            "老王腿", "小刘媳妇", "户号 1234567、", "1234567、", "秀英说", "，秀英",
            # scrub47's: a name parted by separators, initials, a Hong Kong name, eight digits,
            # Japan's and Taiwan's numbers
            "王_秀_", "张 建 ", "王-秀-英 ", "王XY说", "W.X.", "Chan Tai ", "62345678 ",
            "090-1234-", "(02) 2345-", "886-2-",
            # redteam69's: QQ and WeChat past a filter, a romanised name with a hyphen, an
            # English given name, Hong Kong's titles, Japanese names, lower-case initials, a
            # space after the surname, a landline wrapped after its keyword
            "扣扣 1", "加V：a", "Kim Min-", "Peter Chan ", "Madam 黄", "黄sir", "佐藤女士",
            "山田さん", "刘zq说", "申请人：张 建", "，张 建国说", "电话6234\n", "发票 2"]

TIMED = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from shared.kernel.privacy import KnownPerson, redact
known = KnownPerson(name="王秀英", phone="13812345678")
redact("王秀英来过", known)  # the known person's variants, once
out = {}
for unit in json.load(sys.stdin):
    times = []
    for length in (10_000, 20_000):
        typed = (unit * length)[:length]
        started = time.process_time()
        redact(typed, known)
        times.append((time.process_time() - started) * 1000)
    out[unit] = times
print(json.dumps(out, ensure_ascii=False))
"""

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from shared.kernel.privacy import KnownPerson, redact
print(json.dumps([redact(n, KnownPerson(name=name, phone="13812345678"))
                  for name, n in json.load(sys.stdin)], ensure_ascii=False))
"""


Note = tuple[str, tuple[str, ...], tuple[str, ...]]
RESIDENT = "王秀英"
"""The resident on file for every note but ``KNOWN``'s (each of those names its own)."""


def scrubbed(tree: Path, notes: list[tuple[str, str]]) -> list[str]:
    """Each (name on file, note) scrubbed by ``tree``'s ``redact``."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree)],
                         input=json.dumps(notes), capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def faults(note: Note, result: str) -> tuple[int, int]:
    """(1 if a personal part leaks, 1 if a part that must stay is gone)."""
    _, personal, kept = note
    return (int(any(p in result for p in personal)), int(any(k not in result for k in kept)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path)
    parser.add_argument("--triggers", action="store_true",
                        help="time 10 kB and 20 kB of each new rule's trigger instead")
    parser.add_argument("--notes", choices=("scrub10", "genres", "clerks", "redteam56", "scrub47",
                                 "redteam69", "all"),
                        default="scrub10",
                        help="which set of notes (scrub10's, redteam38's genres, scrub46's "
                             "word given names, redteam56's, scrub47's, redteam69's, all)")
    args = parser.parse_args()
    if args.triggers:
        for tree in (args.other, ROOT):
            out = subprocess.run([sys.executable, "-c", TIMED, str(tree)],
                                 input=json.dumps(TRIGGERS), capture_output=True, text=True,
                                 check=True)
            for unit, (ten, twenty) in json.loads(out.stdout).items():
                print(f"{tree}: {unit!r} 10 kB {ten:.1f} ms, 20 kB {twenty:.1f} ms "
                      f"({twenty / max(ten, 0.01):.1f} x)")
        return
    known = [(RESIDENT, n) for n in {"scrub10": NOTES, "genres": GENRES, "clerks": [],
                                     "redteam56": [], "scrub47": [], "redteam69": [],
                                     "all": NOTES + GENRES}[args.notes]]
    if args.notes in ("genres", "all"):
        known += [(name, (note, personal, kept)) for name, note, personal, kept in KNOWN]
    if args.notes in ("clerks", "all"):
        known += [(name, (note, personal, kept)) for name, note, personal, kept in CLERKS]
    if args.notes in ("redteam56", "all"):
        known += [(name, (note, personal, kept))
                  for name, note, personal, kept in REDTEAM56]
    if args.notes in ("scrub47", "all"):
        known += [(name, (note, personal, kept)) for name, note, personal, kept in SCRUB47]
    if args.notes in ("redteam69", "all"):
        known += [(name, (note, personal, kept))
                  for name, note, personal, kept in REDTEAM69]
    notes = [n for _, n in known]
    before = scrubbed(args.other, [(name, n[0]) for name, n in known])
    after = scrubbed(ROOT, [(name, n[0]) for name, n in known])
    totals = {"other": [0, 0], "this": [0, 0]}
    for note, old, new in zip(notes, before, after, strict=True):
        marks = []
        for name, result in (("other", old), ("this", new)):
            leak, over = faults(note, result)
            totals[name][0] += leak
            totals[name][1] += over
            marks.append(("leak " if leak else "") + ("over" if over else "") or "ok")
        if marks != ["ok", "ok"]:
            print(f"in:    {note[0]}\nother: {old}  [{marks[0]}]\nthis:  {new}  [{marks[1]}]\n")
    print(f"{len(notes)} notes, {sum(1 for n in notes if n[1])} with personal data")
    for name, (leaks, over) in totals.items():
        print(f"{name}: {leaks} leak, {over} over-scrubbed")


if __name__ == "__main__":
    main()
