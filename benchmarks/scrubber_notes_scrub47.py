"""A fifth set of notes for ``scrubber_notes.py`` (``--notes scrub47``), written by scrub47 for
the misses stop 46 left: a name typed with a separator between its characters (王_秀_英,
张 建 国, 陈-晓-红, 刘·志·刚), initials (W.X.Y., 王XY), Hong Kong names romanised as the ID card
writes them (Chan Tai Man, CHAN Tai-man), a landline's eight digits with no word before them
(62345678), a Japanese mobile (090-1234-5678) and a Taipei landline ((02) 2345-6789) alone;
the holiday 国庆 when 李国庆 is on file (国庆补班日, 国庆的时候, 国庆过后); and, as many, the
center's own text that must not change: amounts, dates, case and ticket numbers, the center's
rooms and hotlines, policy names, English abbreviations, Hong Kong's districts. Same shape as
``scrubber_notes_genres.KNOWN``: (name on file, note, personal parts, parts that must stay);
the names here are not the one on file unless the note says so.
"""

from __future__ import annotations

SCRUB47: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    # a name typed with a separator between its characters (a form's boxes, a chat's spacing,
    # a clerk keeping a name from being linked)
    ("王秀英", "居民李_建_国来电问补贴", ("李_建_国",), ("来电问补贴",)),
    ("王秀英", "张 建 国说明天来", ("张 建 国",), ("明天来",)),
    ("王秀英", "陈-晓-红已签字确认", ("陈-晓-红",), ("已签字确认",)),
    ("王秀英", "刘·志·刚同意调解", ("刘·志·刚",), ("同意调解",)),
    ("王秀英", "申请人：周_海_燕，低保续办", ("周_海_燕",), ("低保续办",)),
    ("王秀英", "联系人 欧阳-娜-娜", ("欧阳-娜-娜",), ("联系人",)),
    ("王秀英", "王_秀_英来过，材料齐了", ("王_秀_英",), ("材料齐了",)),
    ("王秀英", "家属黄*丽*华代办", ("黄*丽*华",), ("代办",)),
    ("王秀英", "何 建 军 本人到场", ("何 建 军",), ("本人到场",)),
    # initials for a name (a clerk's shorthand, a pasted form)
    ("王秀英", "申请人W.X.Y.已签字", ("W.X.Y.",), ("已签字",)),
    ("王秀英", "居民L.J.G.来电，问医保", ("L.J.G.",), ("问医保",)),
    ("王秀英", "王XY说明天来补材料", ("王XY",), ("明天来补材料",)),
    ("王秀英", "来访人张JG，男，45岁", ("张JG",), ("45岁",)),
    ("王秀英", "陈X女士来电咨询", ("陈X",), ("来电咨询",)),
    ("王秀英", "已联系刘ZQ，周三来", ("刘ZQ",), ("周三来",)),
    # Hong Kong names as the ID card or a letter writes them
    ("陳大文", "Chan Tai Man came to window 3", ("Chan Tai Man",), ("window 3",)),
    ("王秀英", "Applicant CHAN Tai-man, HK resident", ("CHAN Tai-man",), ("HK resident",)),
    ("王秀英", "Wong Siu Ming said he would bring the form", ("Wong Siu Ming",),
     ("bring the form",)),
    ("王秀英", "联系人Cheung Ka Yan，香港", ("Cheung Ka Yan",), ("香港",)),
    ("王秀英", "Lee Wai Kit来电，说下周来", ("Lee Wai Kit",), ("下周来",)),
    ("王秀英", "Mr Chan called back at 3pm", ("Chan",), ("called back",)),
    ("王秀英", "Ms Lau Mei Ling's daughter came", ("Lau",), ("daughter came",)),
    # numbers a resident gives with no word before them
    ("王秀英", "62345678找她女儿", ("62345678",), ("找她女儿",)),
    ("王秀英", "回拨62345678，无人接", ("62345678",), ("无人接",)),
    ("王秀英", "家里58881234，晚上有人", ("58881234",), ("晚上有人",)),
    ("王秀英", "她儿子在香港91234567", ("91234567",), ("她儿子在香港",)),
    ("王秀英", "090-1234-5678是她在日本的手机", ("090-1234-5678",), ("在日本的手机",)),
    ("王秀英", "女儿在东京，080 9876 5432", ("080 9876 5432",), ("女儿在东京",)),
    ("王秀英", "台北家里(02) 2345-6789", ("2345-6789",), ("台北家里",)),
    ("王秀英", "女儿02-2345-6789，台北", ("02-2345-6789",), ("台北",)),
    ("王秀英", "高雄（07）345-6789", ("345-6789",), ("高雄",)),
    ("王秀英", "台湾那边886-2-2345-6789", ("2345-6789",), ("台湾那边",)),
    # the holiday, when 李国庆 is on file, and the person
    ("李国庆", "国庆补班日照常办理", (), ("国庆补班日",)),
    ("李国庆", "国庆的时候她女儿来过", (), ("国庆的时候",)),
    ("李国庆", "国庆时窗口人多，来过一次", (), ("国庆时窗口",)),
    ("李国庆", "国庆过后再说", (), ("国庆过后",)),
    ("李国庆", "国庆人多，建议错峰", (), ("国庆人多",)),
    ("李国庆", "国庆假期后来办", (), ("国庆假期",)),
    ("李国庆", "国庆那天来过", (), ("国庆那天",)),
    ("李国庆", "国庆来电说不来了", ("国庆",), ("来电说不来了",)),
    ("李国庆", "国庆住院了，女儿代办", ("国庆",), ("女儿代办",)),
    ("李国庆", "国庆没来，再约", ("国庆",), ("再约",)),
    # what must stay: amounts, dates, case and ticket numbers, counts
    ("王秀英", "补贴62345678元已拨付", (), ("62345678元",)),
    ("王秀英", "受理号62345678，已转办", (), ("受理号62345678",)),
    ("王秀英", "工单20261220已签收", (), ("20261220",)),
    ("王秀英", "发票号码62345678", (), ("62345678",)),
    ("王秀英", "全街道常住人口62345678人？核对", (), ("62345678人",)),
    ("王秀英", "办结日期20271008，顺延", (), ("20271008",)),
    ("王秀英", "2028年春节后再来，20280215前", (), ("20280215",)),
    ("王秀英", "预约12月20日周日上午，值班窗口", (), ("12月20日",)),
    ("王秀英", "申请编号 SQ-2026-1220-0005", (), ("SQ-2026-1220-0005",)),
    ("王秀英", "案件编号 (2026)沪0115民初12345号", (), ("沪0115民初12345号",)),
    ("王秀英", "合计 1,234,567.89 元，已核", (), ("1,234,567.89",)),
    ("王秀英", "编号62345678-01的档案已归还", (), ("62345678-01",)),
    ("王秀英", "社保缴费基数 7310 元，比例 8%", (), ("7310",)),
    ("王秀英", "12345热线转来，工单号 12345678", (), ("12345678",)),
    ("王秀英", "市民热线962222，便民热线12345", (), ("962222",)),
    # the center's own rooms, counters, policies and words
    ("王秀英", "请到3楼302室调解室等候", (), ("302室",)),
    ("王秀英", "一楼2号窗口，B区", (), ("2号窗口",)),
    ("王秀英", "依据沪民规〔2025〕3号，按最低生活保障办法", (), ("沪民规〔2025〕3号",)),
    ("王秀英", "按《上海市社会救助办法》第二十条办理", (), ("第二十条",)),
    ("王秀英", "王某某来过，未留名", (), ("王某某",)),
    ("王秀英", "请携带ID card或passport原件", (), ("ID card",)),
    ("王秀英", "U.S.A.寄来的养老金证明，需公证", (), ("U.S.A.",)),
    ("王秀英", "下午2:30 p.m.前，a.m.不办", (), ("p.m.",)),
    ("王秀英", "She lives in Wong Tai Sin, HK", (), ("Wong Tai Sin",)),
    ("王秀英", "转介到Sham Shui Po社区中心", (), ("Sham Shui Po",)),
    ("王秀英", "From Ma On Shan, now in Shanghai", (), ("Ma On Shan",)),
    ("王秀英", "PDF打印A4两份，VIP窗口", (), ("A4", "VIP")),
    ("王秀英", "高DPI扫描件", (), ("高DPI",)),
    ("王秀英", "周一-周五 9:00-17:00 办理", (), ("周一-周五",)),
    ("王秀英", "上-下午都可以", (), ("上-下午",)),
    ("王秀英", "请 假 一 天", (), ("请 假 一 天",)),
    ("王秀英", "TEL: see file", (), ("see file",)),
]
