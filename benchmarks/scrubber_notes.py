"""Leaks and over-scrubs of the free-text scrubber on notes as clerks write them, this tree and
another paired.

    .venv/bin/python benchmarks/scrubber_notes.py /work/main [--notes genres|all]

Each note carries the resident on file (her name, as the vault holds it; 王秀英 but where a
note names another), what in it is personal (a name, a plate, a room) and what must stay (a
district, a place, a word): one :class:`Note`, one line of a set's data file in
``benchmarks/scrubber_notes_sets/``, read by :func:`notes`. Both trees' ``redact`` scrub every
note in a process of their own; a note leaks when a personal part is still in the result, and
is over-scrubbed when a part that must stay is gone. Prints each note that either tree gets
wrong, then the counts. The sets (``--notes``): ``scrub10`` (the default, the first), then
``genres`` (redteam38's: phone logs, 12345 transfers, grid workers' reports, mediations,
hand-overs, everyday words that begin with a surname, numbers that are no one's; and notes
about residents whose name makes a word with a homophone), written after scrub10's rules,
which were written around the first; ``clerks`` scrub46's notes about residents whose given
name is an everyday word; ``redteam56`` redteam56's attack on those rules from outside
(brackets, times, emoji, lists, tones, the center's own words); ``scrub47`` scrub47's (names
typed with separators, initials, Hong Kong's romanised names, numbers alone from Japan, Taipei
or a landline, the holiday 国庆, and the center's own text that must stay); ``redteam69``
redteam69's attack on those (serials, amounts and references of eight digits, acronyms after a
surname's character, QQ and WeChat as written to dodge a filter, Korean, Japanese and
Taiwanese names, Hong Kong's forms of address, lower-case initials, a space after the surname,
a landline wrapped across lines); ``scrub48`` scrub48's (a whole line spaced a character at a
time, a two-character name with a space, three initials alone, Hong Kong's one-syllable given
names, English given names, Japanese names in romaji, mainland pinyin without a title, seven
digits alone, and the center's own that must stay); ``redteam80`` redteam80's attack on
those (a line spaced with two spaces, a tab or a full-width space, a name half in pinyin and
half in characters, a mobile read out a digit at a time with uneven partings; a form's English,
medicines, romanised places, pinyin words that open like a surname, the letters of Hong Kong's
offices, therapists and couriers, spaced labels, seven-digit invoices, days); ``scrub49``
scrub49's (a name glued to the time or the 陪同 before it, half pinyin after who reached it, a
name before its number in a spaced line, landlines spaced oddly or with an extension, initials
in lower case, romaji with long vowels, and what else a clerk types: WeChat and QQ ids, plates,
an ID's last four, rooms, emails, a neighbour by relation and surname); ``redteam89``
redteam89's attack on those; ``scrub50`` scrub50's (a name after a day or a time, before the
time, half pinyin in lower case or after 给, a romaji surname alone after whom the clerk
reached, initials listed with another's or after whom the clerk reached, and the calls
counted, companies and words those could take); ``redteam100`` redteam100's attack on those
(names listed before what they did, more than one time word or a day between a name and its
verb, a holiday or an emoji before a name, 由 / 让 / 找, half pinyin in capitals, and places,
companies and offices before a time or a doing); ``scrub51`` one clerk's day at the counter
(errands run by relatives, call-backs, home visits, complaints naming staff, 12345 transfers
with their ticket numbers, addresses, IDs ending in X, phones with dashes, spaces or +86,
WeChat ids, bank cards; half the notes name no one); ``scrub52`` scrub52's attack on its own
rules (a name before what the person came for or their errand, after a clock's time, a window
or 听说, listed after a nickname, pinyin capitals alone; the errands, counts, days and places
those could take); ``redteam105`` redteam105's attack on those (names after 帮 / 替, in quotes,
after a room or a full-width window, traditional, pinyin, rare surnames, repeated, before what
the person wants to do or 的 and their errand; where people come from, the weather, how an
errand is done, the kinds of subsidy after 听说); ``scrub53`` scrub53's (a name after 陪 / 替 /
和 ... 一起, before 夫妇 / 两口子 / 他妈, in 【】 / 「」, glued after a room or a phone, ending a
note, joined by a middle dot, the surname 单, spaced from its errand, three listed with commas;
the couples, headings, states, dotted slogans and lists of days those could take);
``redteam108`` redteam108's attack on those (the same shapes as a busy clerk types them: a
space, a tab, an emoji or a new line around the name, 陪着, lists parted by ；/ / lines or 和,
other brackets, a dot typed as a full stop, kin scrub53 did not list, a name after a phone and
a space; traditional, full-width, long and repeated notes, pinyin; and as many with no one in
them); ``scrub55`` scrub55's (redteam108's known misses as a clerk types them fast: two
names alone, 《》 and quotes, a name before its phone, numbered rooms in a list, Western names
with a dot, 单 before one character, a space inside a name, pinyin listed; and as many notes of
those shapes with no one in them); ``redteam115`` redteam115's attack on those (what a busy
clerk types that scrub55's rules took for names: 单 opening a word, 《》 titles, beds with an
ailment; and the misses' variants, an invisible character inside a name); ``scrub56`` a
community affairs center's clerk at the counter app (dictation, pinyin typos, full-width digits,
numbers read out in Chinese, relatives named, 弄 / 号 / 室, WeChat ids, plates, bank cards,
foreign residents' passports, English mixed in, lists, 王阿姨 / 老李 / 小张, residents named 高峰,
金星, 白雪, 文明, 华东, and as many phrases that must stay); ``redteam121`` redteam121's attack
on those rules (names beside the resident's after 及 / 与 / a slash, compound surnames not
listed, numbered lines with ① / (1) / 一、, names wrapped mid-line, half pinyin with surnames not
listed, 单 and a tab, 高峰 / 文明 before 老人 or their sex; things, food and places beside her
name or on numbered lines, pinyin words opening with Chang / Yi, 单 and a space before a word,
东方 / 西门 words); ``all`` every set.
Each file's comments say what its notes are about.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SETS_DIR = ROOT / "benchmarks" / "scrubber_notes_sets"

#: The sets of notes, each ``scrubber_notes_sets/<set>.jsonl``, in the order ``--notes all``
#: takes them.
SETS = ("scrub10", "genres", "clerks", "redteam56", "scrub47", "redteam69", "scrub48",
        "redteam80", "scrub49", "redteam89", "scrub50", "redteam100", "scrub51", "scrub52",
        "redteam105", "scrub53", "redteam108", "scrub55", "redteam115", "scrub56",
        "redteam121")


class Note(NamedTuple):
    """A note, with the resident on file when it was typed (her name, as the vault holds it),
    what in it is personal (a name, a plate, a room) and what must stay (a district, a place,
    a word)."""

    on_file: str
    text: str
    personal: tuple[str, ...]
    kept: tuple[str, ...]


def notes(which: str) -> list[Note]:
    """The notes of one set (``SETS``), or of every set (``all``). A set's file holds one note
    a line, a JSON array ``[on file, text, [personal ...], [kept ...]]``; a line that begins
    with ``#`` says what the notes after it are about, and a blank one parts them."""
    if which == "all":
        return [n for name in SETS for n in notes(name)]
    found = []
    for line in (SETS_DIR / f"{which}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            on_file, text, personal, kept = json.loads(line)
            found.append(Note(on_file, text, tuple(personal), tuple(kept)))
    return found


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
            "山田さん", "刘zq说", "申请人：张 建", "，张 建国说", "电话6234\n", "发票 2",
            # scrub48's: a line spaced a character at a time, a spaced two-character name,
            # initials alone, romanised names without a title, seven digits alone, 来过
            "张 ", "张 建", "王 芳说", "WXY来", "Chan Man ", "Winston Chan ", "Sato Hanako ",
            "Hiroshi Tanaka ", "Zhang Jianguo ", "zhang jianguo 来", "6234567 ", "张建国来过",
            "a b", "He ran ",
            # redteam80's: a line spaced with two spaces or a tab, a name half in pinyin,
            # digits typed one at a time with uneven partings
            "张  ", "张\t", "a  b", "Zhang 建", "张 Jianguo ", "Zhang 建国来", "1 3 8  ", "138 0 ",
            "1-3-8 ", "1 - 3 ",
            # scrub49's: a time glued before a name, half pinyin after who reached it, lower-case
            # initials, long vowels, a spaced number after a keyword, an extension
            "今天张建国来", "陪同王芳到", "联系Zhang建", "联系张Jian", "wxy来", "Saitou Kenji ",
            "Satō ", "座机 62 ", "62345678转",
            # redteam89's: marks typed apart from their letters, 向 after a time, an amount
            # after a phone and its " - "
            "Sato\u0304 ", "o\u0304", "\u0304", "今天向领导", "电话62345678 - ", "1 - 2元",
            "62345678 转 2",
            # scrub50's: a day or a time before a name, the time after it, lower-case half
            # pinyin, after 给, a romaji surname or initials after whom the clerk reached,
            # initials listed with another's
            "20日张建国来过", "23:30张建国来过", "张建国今天来", "高峰来电多", "zhang建国来",
            "联系zhang建", "给Zhang建国打", "张jianguo来", "联系sato", "和ohta一", "给wxy打",
            "WXY和zjg来", "wxy、", "sato hanako来", "tanaka来",
            # redteam100's: a list before a doing, times between, a holiday before, 由 / 让 /
            # 找, half pinyin in capitals
            "张建国、李秀兰和王伟", "张建国今天上午", "张建国 今天", "元旦张建国来", "👍张建国来",
            "由张建国代", "让李秀兰补", "ZHANG建国来", "zhang建国今天",
            # scrub51's: two capitals glued, a given name after whom the clerk reached, capitals
            # reached, a nickname listed, 们, a name reached for 核实, staff, 的 + a paper
            "LI建国来", "联系sato hanako ", "联系zhang jianguo，", "联系SATO", "张建国和小王",
            "张建国们来", "联系韩立新核", "工作人员林晓", "常建国的居住证", "蔡俊每",
            "李秀兰，张建国来",
            # scrub52's: what the person came for, the errand after the name, 听说 and a
            # window before it, a nickname first in a list, capitals alone, a deed after a time
            "张建国来办", "张建国医保", "听说王秀英来", "窗口张建国说", "老王和张建国来",
            "LI建国，", "刘志刚今天签",
            # redteam105's: what the person wants to do, 的 and their errand, a name repeated,
            # 来办 and 、 over and over
            "张建国要办医保", "张建国的低保", "刘志刚来了，刘志刚又", "来办", "张建国、", "听说",
            # scrub53's: 陪 / 替 / 和 ... 一起, a couple, brackets, a note's last name, a middle
            # dot, 单, a space before the errand, a list, a name after a number
            "陪张建国去", "和刘志刚一", "张建国夫妇", "【张建国】", "材料已收：张建国",
            "的是张建国",
            "买买提·艾力", "·", "单国强来", "张建国 来", "张建国，", "张建国,", "1203室张",
            "13912345678王", "：张建国。",
            # redteam108's: a list parted by ；/ / lines, a dot typed as a full stop, an emoji
            # or a space before the doing, 陪着, 〔〕, a list before 一起, initials after a phone
            "张建国；", "张建国\n", "张建国/", "伊力哈木.托", "张建国👍", "陪着 ", "〔张建国〕",
            "和张建国、", "联系 张", "13812345678王X", "：\n张建国\n"]

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



def scrubbed(tree: Path, notes: list[tuple[str, str]]) -> list[str]:
    """Each (name on file, note) scrubbed by ``tree``'s ``redact``."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree)],
                         input=json.dumps(notes), capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def faults(note: Note, result: str) -> tuple[int, int]:
    """(1 if a personal part leaks, 1 if a part that must stay is gone)."""
    return (int(any(p in result for p in note.personal)),
            int(any(k not in result for k in note.kept)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path)
    parser.add_argument("--triggers", action="store_true",
                        help="time 10 kB and 20 kB of each new rule's trigger instead")
    parser.add_argument("--notes", choices=(*SETS, "all"),
                        default="scrub10",
                        help="which set of notes (scrub10's, redteam38's genres, scrub46's "
                             "word given names, redteam56's, scrub47's, redteam69's, "
                             "scrub48's, redteam80's, scrub49's, redteam89's, scrub50's, "
                             "redteam100's, scrub51's, scrub52's, redteam105's, scrub53's, "
                             "redteam108's, scrub55's, redteam115's, scrub56's, "
                             "redteam121's, all)")
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
    chosen = notes(args.notes)
    before = scrubbed(args.other, [(n.on_file, n.text) for n in chosen])
    after = scrubbed(ROOT, [(n.on_file, n.text) for n in chosen])
    totals = {"other": [0, 0], "this": [0, 0]}
    for note, old, new in zip(chosen, before, after, strict=True):
        marks = []
        for name, result in (("other", old), ("this", new)):
            leak, over = faults(note, result)
            totals[name][0] += leak
            totals[name][1] += over
            marks.append(("leak " if leak else "") + ("over" if over else "") or "ok")
        if marks != ["ok", "ok"]:
            print(f"in:    {note.text}\nother: {old}  [{marks[0]}]\nthis:  {new}  [{marks[1]}]\n")
    print(f"{len(chosen)} notes, {sum(1 for n in chosen if n.personal)} with personal data")
    for name, (leaks, over) in totals.items():
        print(f"{name}: {leaks} leak, {over} over-scrubbed")


if __name__ == "__main__":
    main()
