"""The free-text scrubber's CPU per text, this tree and another paired.

    .venv/bin/python benchmarks/scrubber_cpu.py /work/main [--rounds 5] [--repeat 300] [--known]
        [--name 李国庆] [--notes all]

Each round runs ``redact`` over the notes below (what clerks type: amounts, dates, policy
numbers, relatives, counters, and personal data) ``--repeat`` times in a process of each
tree's code, alternating which goes first, and prints the process's CPU microseconds per
text for both, every pair. ``--known``: each text about a resident on file (intake's case
texts: her name, phone and address are looked for too, in every form); ``--name``: the
resident's name on file (王秀英 by default; 李国庆's 國慶 differs in Traditional characters, so
each text is also checked for them); ``--notes``: the texts of ``scrubber_notes.py``'s sets
instead (``all``, 1,592 notes since scrub53, or one set), the corpus the rules were written
for (each with no resident on file unless ``--known``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOTES = """\
报销金额3000元，下月到账
补贴一万二千元，分两次发
垫付了两千五百块
申请截止2026年12月20日
十二月二十日前交材料
下午三点半再来
12/20前补交
预约2026-12-20 15:30
已等了三个月
六十五岁以上老人可申请
依据沪府发〔2026〕12号
按第三条第二款办理
材料清单：一二三四五六七八项都齐了
居民三三两两来问
案件号 3f2c1a9e-1b2c-4d5e-8f90-123456789abc
事项 MI-MEDICAL-REIMBURSEMENT
报销比例75%，自付25%
请到3号窗口办理
到二楼201室领表
女儿，35岁，陪同来访
老伴（男，70岁）卧床
男，65岁，独居
女，72岁，低保户
儿子（45岁）在外地
老人女儿说下周再来
Resident asked about reimbursement, will call back Monday.
Application ID MI-2026-001234 pending.
一二〇急救后住院十五天
住院三十天，花费四万五千六百元
二〇二六年十二月二十日到期
每月一千二百元，共十二个月
2026年1月至2026年6月的费用
医保编号规则见第12条
热线12345，或者12348法律援助
门诊费1380元，住院费12345元
发票号码 No.00123456
共计1,234,567.89元
已办结，满意度5分
申请人本人，男，60岁
他女儿（38岁）代办
王阿姨说的是她老伴的事
第二季度补贴3月15日发放
2026-12-20至2027-01-05放假
缴费基数 8,000 元
等了两个小时，很着急
张家港来的外地户口
男女平等，男方也可以申领
女方，42岁，失业登记
十三号线地铁站附近
下午2:30-4:00在窗口
明天9点到11点办理
残疾证等级二级
居委会电话要问社区
一号楼到三号楼都是老小区
东方明珠附近
微信群里通知了
用微信支付了300元
QQ群已经解散
打了12345投诉
老人三个月没领到养老金，每月2800元，已核实
文件编号 20261220001
受理编号 SQ202612200001
出生于1958年
去年12月住院
联系人：王秀英
家属：李建国
代办人：张伟
代办人张伟，儿子
身份证号后四位1234
身份证后四位是123X
手机尾号5678
住在花木路1234弄5号301室
浦东新区锦绣路100弄8号
座机021-5888 8888
电话：021-58888888
+86 138 1234 5678
+86 13812345678
邮箱 wang.xiuying@163.com
手机13812345678
138-1234-5678
居民王秀英
王秀英（女，67岁）
张建国，男，45岁
王小明（儿子）
微信号 li_min88
QQ 12345678
身份证310115198503121234
医保卡号 1234567890
紧急联系人：陈静 13912345678
联系电话 5888 8888
地址：锦绣小区5-3-201
家住阳光新村12号楼502室
老伴刘桂兰，72岁
儿子叫王小明
女儿王丽
电话 一三八一二三四五六七八
name: Zhang Wei
Mrs Wang called
Contact: Li Min, 13812345678
收件人：赵敏
委托人：孙丽华
孙子（男，10岁）在读小学
孙女，女，8岁，随老人生活
房东（男，50岁）要求涨租
高中生（男，16岁）需要助学金
党员（男，70岁），老干部
钟点工（女，50岁）每周来两次
包工头（男）拖欠工资
房东说下月涨房租
孙子说爷爷记性不好
卫健委来电询问
房管局来电核实
江苏来电转办
母亲高血压，常年服药
父亲车祸后瘫痪
儿子高三，明年高考
老人卫生间摔倒
患者左腿骨折
患者严重贫血
家属关心报销进度
居民房租上涨
申请人房产已过户
请到一楼3号窗口
1号2号窗口都排满了
租了一室一厅
住两室一厅的老房子
小区有十栋楼
一二三四五六七八九十都核对了
三月十五日到四月十五日，共一个月
第一二三四五六七八批名单
一九五八年十二月生
编号一二三四五六七八九〇一
电话费每月一百三十八元
手机坏了，一三八的号码停机
手机号码已变更，原号码作废
联系方式 微信群 社区通知群
微信 已经添加 社区群
微信支付 chenggong
QQ group notify later
用vx转账了3000元
vx 已加 li_min 的好友? no
微信号码已解绑 2026-12-20
2026-12-20 15:30 下次回访
2026/12/20 下次回访
受理号 2026-1220-0001
锦绣小区2026-12-20停水
阳光新村12-20活动
幸福家园3-15号来办
锦绣花园2026-1220
MI-2026-001234号案卷
补发1420；1500；1600元，第138；139；140号
办理时间9:00～11:30；14:00～17:00。2027年1月起调整
电话138；0013；8000，证件310115～19850312～123X
门口停的沪A·12345是她儿子的，新能源车沪AD12345
社保卡号A12345678，社保卡2026-12-31到期
她香港的号码+852 9123 4567，加价+15000000元
车牌A12345停在门口，联系她9123-4567
手机138*0013*8000，电话138一0013一8000
她念的号码1 3 8 0 0 1 3 8 0 0 0，旧证310115850312123
王小明先生来电，陈建国先生到场
受理号：00886123456789，会议13:00-14:30
已联系张三丰的女儿，王秀英的儿子来电
经办人李明说下周回复，回复人：李建国（网格员）
跟王秀英沟通过了，请王秀英于周一来，老王头说他不来
身份证尾号123X，已跟进，给予补助，请示领导后再给付
给王建发打电话，请周一明来，张三丰家属说
“王秀英”说，小王办的，跟张科长沟通过了，公安局长说
家住5201 5202室，在1号楼 502室，向姐姐反映
"""

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from shared.kernel.privacy import KnownPerson, redact
notes = json.loads(sys.stdin.read())
repeat = int(sys.argv[2])
known = KnownPerson(name=sys.argv[4], phone="13812345678",
                    address="上海市浦东新区花木路1234弄5号602室") if sys.argv[3] == "1" else None
for n in notes:
    redact(n, known)
t0 = time.process_time()
for _ in range(repeat):
    for n in notes:
        redact(n, known)
print((time.process_time() - t0) / (repeat * len(notes)) * 1e6)
"""


def cpu_per_text(tree: Path, repeat: int, known: bool = False, name: str = "王秀英",
                 texts: list[str] | None = None) -> float:
    texts = texts if texts is not None else [n for n in NOTES.splitlines() if n]
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(repeat), str(int(known)),
                          name],
                         input=json.dumps(texts),
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--known", action="store_true", help="about a resident on file")
    parser.add_argument("--name", default="王秀英", help="the resident's name on file")
    parser.add_argument("--notes", help="scrubber_notes.py's set (or all) instead of the notes")
    args = parser.parse_args()
    texts = [n for n in NOTES.splitlines() if n]
    if args.notes:
        sys.path.insert(0, str(ROOT))
        from benchmarks.scrubber_notes import notes
        texts = [n.text for n in notes(args.notes)]
    print(f"{len(texts)} notes; us CPU per text")
    ratios = []
    for i in range(args.rounds):
        trees = [(args.other, "other"), (ROOT, "this")]
        result = {name: cpu_per_text(tree, args.repeat, args.known, args.name, texts)
                  for tree, name in (trees if i % 2 == 0 else trees[::-1])}
        ratios.append(result["this"] / result["other"])
        print(f"round {i + 1}: other {result['other']:.1f}  this {result['this']:.1f}")
    print(f"median this/other: {statistics.median(ratios):.3f} x")


if __name__ == "__main__":
    main()
