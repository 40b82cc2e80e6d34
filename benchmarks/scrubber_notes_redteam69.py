"""A sixth set of notes for ``scrubber_notes.py`` (``--notes redteam69``), written by redteam69
to attack scrub47's rules from outside: the eight digits alone that are a counter's serials,
amounts and references with no serial's name before them (发票 / 收据 / 办件号 / 补偿款 / 预算 /
Ref / Invoice), English and medical acronyms after a character that is a surname (查HPV, 查PSA,
1万HKD) and abbreviations with full stops (J.P., L.A.), a form's labels spaced out (曾 用 名,
党 员 证), Hong Kong's places that read as a name (Shek Tong Tsui); and, as many, personal data
in forms no corpus had: QQ and WeChat as a counter writes them to dodge a filter (扣扣, 企鹅号,
加薇, 加V), the apps of Japan, Korea and abroad (LINE, KakaoTalk, Telegram), Korean and Japanese
names (朴明哲, 佐藤女士, 山田さん), names romanised in Korea's and Taiwan's way (Kim Min-su,
Chen Chih-ming) or with an English given name (Peter Chan), Hong Kong's forms of address
(黄sir, Madam 黄, Miss 李), lower-case initials (刘zq, 陈xh女士), a name with a space after the
surname (张 建国, 王　英), a former name (曾用名), and a landline wrapped across lines.

Same shape as ``scrubber_notes_genres.KNOWN``: (name on file, note, personal parts, parts that
must stay); the resident on file is 王秀英 unless the note says so. A personal part ending in
``[`` is a name's first character left before a marker (渡[姓名已隐去]: half a name leaked).
"""

from __future__ import annotations

REDTEAM69: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    # QQ and WeChat as a counter writes them so a chat's filter lets them through, and the
    # apps a resident's family abroad uses
    ("王秀英", "孙女扣扣 345678123，她说晚上在线", ("345678123",), ("晚上在线",)),
    ("王秀英", "扣扣号：87654321，可以留言", ("87654321",), ("可以留言",)),
    ("王秀英", "企鹅号 2345678901 是她儿子的", ("2345678901",), ("是她儿子的",)),
    ("王秀英", "加薇 wangxy_1985 发材料照片", ("wangxy_1985",), ("发材料照片",)),
    ("王秀英", "她说加V：wang8899，发定位过来", ("wang8899",), ("发定位过来",)),
    ("王秀英", "女儿在大阪，LINE ID lily0312", ("lily0312",), ("女儿在大阪",)),
    ("王秀英", "儿子在首尔，KakaoTalk ID: parkjh88", ("parkjh88",), ("儿子在首尔",)),
    ("王秀英", "Telegram @lily_0312 联系她儿子", ("lily_0312",), ("联系她儿子",)),
    # Korean and Japanese residents' names, as the counter writes them in Chinese characters
    ("王秀英", "朴明哲说明天来补材料", ("朴明哲",), ("明天来补材料",)),
    ("王秀英", "韩国籍居民朴敏英来电，问居住证", ("朴敏英",), ("问居住证",)),
    ("王秀英", "佐藤女士来电咨询签证续期", ("佐藤",), ("咨询签证续期",)),
    ("王秀英", "日籍住户铃木先生下午来过", ("铃木",), ("下午来过",)),
    ("王秀英", "渡边先生的女儿来电", ("渡边", "渡["), ("的女儿来电",)),
    ("王秀英", "山田さん来电，说下周来", ("山田",), ("说下周来",)),
    ("王秀英", "伊藤さん来过，材料齐了", ("伊藤",), ("材料齐了",)),
    # names romanised in Korea's and Taiwan's way (a hyphen between the given name's
    # syllables), and an English given name before a Hong Kong surname
    ("王秀英", "Kim Min-su came to window 2 for the residence permit", ("Kim Min-su",),
     ("window 2",)),
    ("王秀英", "Lee Soo-jin, Korean, asked about health insurance", ("Lee Soo-jin",),
     ("health insurance",)),
    ("王秀英", "Chen Chih-ming called from Taipei about his mother", ("Chen Chih-ming",),
     ("called from Taipei",)),
    ("王秀英", "Lin Mei-ling said she would bring the lease", ("Lin Mei-ling",),
     ("bring the lease",)),
    ("王秀英", "Peter Chan called, will come Monday", ("Peter Chan",), ("will come Monday",)),
    ("王秀英", "Kelvin Lau's wife called", ("Kelvin Lau",), ("wife called",)),
    ("王秀英", "Mary Wong 話聽日嚟交表", ("Mary Wong",), ("交表",)),
    # Hong Kong's forms of address before or after a surname in Chinese
    ("王秀英", "黄sir说要再核一次", ("黄sir",), ("要再核一次",)),
    ("王秀英", "陈sir已到场，调解开始", ("陈sir",), ("调解开始",)),
    ("王秀英", "Madam 黄 来过，留了电话", ("Madam 黄",), ("留了电话",)),
    ("王秀英", "Miss 李来过，说下周再来", ("Miss 李",), ("下周再来",)),
    # initials typed in lower case (the IME left in English), a space after the surname (a
    # form's boxes, a two-character name padded to three), a former name
    ("王秀英", "已联系刘zq，周三来", ("刘zq",), ("周三来",)),
    ("王秀英", "陈xh女士来电咨询", ("陈xh",), ("来电咨询",)),
    ("王秀英", "张jg说明天来补户口本", ("张jg",), ("明天来补户口本",)),
    ("王秀英", "申请人：张 建国，低保复审", ("张 建国",), ("低保复审",)),
    ("王秀英", "联系人：王　英，电话见档案", ("王　英",), ("电话见档案",)),
    ("王秀英", "张 建国说明天来补户口本", ("张 建国",), ("明天来补户口本",)),
    ("王秀英", "曾用名：李桂兰，已核对户籍", ("李桂兰",), ("已核对户籍",)),
    # a landline wrapped by a narrow box, its groups of four or five and three
    ("王秀英", "邻居说老人家电话6234\n5678一直没人接", ("6234\n5678",), ("一直没人接",)),
    ("王秀英", "座机62345\n678，白天没人", ("62345\n678",), ("白天没人",)),
    ("王秀英", "家里座机 5888\n1234，晚上有人", ("5888\n1234",), ("晚上有人",)),
    # already caught: they must stay caught
    ("王秀英", "孙女的QQ：2345678901", ("2345678901",), ()),
    ("王秀英", "Mr. Chan Tai-man's son called", ("Chan Tai-man",), ("son called",)),
    ("王秀英", "Ms Park came with her husband", ("Park",), ("came with her husband",)),
    ("王秀英", "她女儿手机（日本）０９０－１２３４－５６７８", ("５６７８",), ("她女儿手机",)),
    ("王秀英", "电话：６２３４　５６７８（家）", ("６２３４",), ("（家）",)),
    ("王秀英", "手机：138 1234\n5678（本人）", ("5678",), ("（本人）",)),
    ("王秀英", "林先生（台湾）0912 345 678", ("林先生", "345 678"), ("台湾",)),
    ("王秀英", "老人家里电话是62345678还是62345687，记不清了", ("62345678", "62345687"),
     ("记不清了",)),
    # what must stay: a counter's serials, amounts and references with no serial's name
    ("王秀英", "医疗发票 23856714 丢失，开具遗失证明", (), ("23856714",)),
    ("王秀英", "收据 31286547 已交财务室", (), ("31286547",)),
    ("王秀英", "12345市民热线转办件 31208765，已回复", (), ("31208765",)),
    ("王秀英", "一网通办办件号 3101152026122000，已受理", (), ("3101152026122000",)),
    ("王秀英", "动迁补偿款 23865400，分三期拨付", (), ("23865400",)),
    ("王秀英", "街道年度救助预算 31286500（单位：元）", (), ("31286500",)),
    ("王秀英", "HSBC汇款 Ref 31286547 已到账", (), ("31286547",)),
    ("王秀英", "Invoice 31286547 from the nursing home, paid", (), ("31286547",)),
    ("王秀英", "警情号 31209876 已转派出所", (), ("31209876",)),
    ("王秀英", "办件编号 310115202612201234，退回补正", (), ("310115202612201234",)),
    ("王秀英", "订单 31286547 已退款", (), ("31286547",)),
    ("王秀英", "合计金额 31286547，待审计", (), ("31286547",)),
    ("王秀英", "表号 31286547，抄表员已核", (), ("31286547",)),
    ("王秀英", "医保结算单 No.31286547", (), ("31286547",)),
    ("王秀英", "全街道60岁以上老人 31286547 人次", (), ("31286547",)),
    ("王秀英", "沪民救发〔2026〕31286547号 第三条", (), ("31286547号",)),
    ("王秀英", "快递单号 SF1234567890123 已寄出", (), ("SF1234567890123",)),
    ("王秀英", "中通 75123456789012 明天到", (), ("75123456789012",)),
    ("王秀英", "12345工单 SH2612200001，转办 2 次", (), ("SH2612200001",)),
    ("王秀英", "请加社区QQ群 73125468 获取停水通知", (), ("73125468",)),
    # days and times of the calendar's edges
    ("王秀英", "20261220 0830 到窗口，周日值班", (), ("20261220 0830",)),
    ("王秀英", "12月31日23:30，20261231 2330 系统切换", (), ("20261231 2330",)),
    ("王秀英", "2027年国庆 20271001-20271007 放假", (), ("20271001-20271007",)),
    ("王秀英", "2028年春节 20280126 起放假，待国务院通知", (), ("20280126",)),
    # medical tests, money and places in English letters after a surname's character
    ("王秀英", "两癌筛查：查HPV和TCT，免费", (), ("查HPV",)),
    ("王秀英", "体检查PSA，偏高，建议复查", (), ("查PSA",)),
    ("王秀英", "查血常规、查HCG，下周出结果", (), ("查HCG",)),
    ("王秀英", "复查CT、B超、MRI，下周出结果", (), ("复查CT", "B超")),
    ("王秀英", "香港那边每月约1万HKD，够用", (), ("1万HKD",)),
    ("王秀英", "美国那边养老金每年2万USD，已公证", (), ("2万USD",)),
    ("王秀英", "儿子在L.A.读书，寒假回来", (), ("L.A.",)),
    ("王秀英", "需要J.P.（太平绅士）见证签名", (), ("J.P.",)),
    ("王秀英", "P2P爆雷，老人被骗8万", (), ("P2P",)),
    ("王秀英", "女儿在ICU工作，白天没空", (), ("ICU",)),
    ("王秀英", "住院期间用了PICC，费用另算", (), ("PICC",)),
    ("王秀英", "A座3楼调解室，向A窗口咨询", (), ("A座", "A窗口")),
    ("王秀英", "Shek Tong Tsui 社区中心转介", (), ("Shek Tong Tsui",)),
    ("王秀英", "Yuen Long Kau Hui 的老人", (), ("Yuen Long Kau Hui",)),
    ("王秀英", "From Tsuen Wan, moved to Shanghai in 2019", (), ("Tsuen Wan",)),
    # a form's labels spaced out, the center's notices
    ("王秀英", "曾 用 名：无", (), ("曾 用 名",)),
    ("王秀英", "党 员 证：有", (), ("党 员 证",)),
    ("王秀英", "温 馨 提 示：本周六停水", (), ("温 馨 提 示",)),
    ("王秀英", "车 牌 号：沪A12345", ("沪A12345",), ("车 牌 号",)),
    ("王秀英", "这样办理可以吗？等通知", (), ("这样办理",)),
    ("王秀英", "老人朴实，不善表达", (), ("老人朴实",)),
    ("王秀英", "居民朴素的要求：修好电梯", (), ("朴素的要求",)),
    ("王秀英", "中山医院的证明，山口那边的老房", (), ("中山医院", "山口那边")),
]
