"""Names in free text, by what is around them (``name_spans``): a form of address, a word that
introduces or reaches a person, a verb of speech, initials, romanised names."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from shared.kernel.privacy.folding import (
    _HAN,
)
from shared.kernel.privacy.markers import (
    REDACTED_NAME,
)
from shared.kernel.privacy.numbers import (
    _ANY_LATIN,
)

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
    "虞 敖 巩 佘 池 查 麻 迟 邝 向 常 万 朴 赖").split()
"""Common surnames (compound ones first). Left out: those that are everyday words right
before a form of address (和先生 is "and my husband"). 朴 (Park), the Korean residents' and
Chinese Koreans' (朴明哲说, 居民朴敏英来电: redteam69 found them kept); 赖 (Lai) since
redteam108 (赖文杰说 stayed)."""

_SURNAME = ("(?:" + "|".join(n for n in SURNAMES if len(n) > 1)
            + "|[" + "".join(n for n in SURNAMES if len(n) == 1) + "])")
HONORIFICS = ("老太太", "老先生", "老奶奶", "老大爷", "老伯伯", "阿姨", "老师", "先生", "女士",
              "小姐", "大爷", "大妈", "大娘", "奶奶", "爷爷", "阿婆", "阿公", "老伯", "伯伯",
              "叔叔", "婶婶", "大姐", "大哥", "师傅", "老太", "同志", "医生", "主任", "书记")
_HONORIFIC = "(?:" + "|".join(HONORIFICS) + ")"
_NOT_GIVEN = ("说讲称来去在的了是和与要想已没不也都又就对因问今昨前后末时天年月日们些个里面这那么样"
              "代本签申办同反表咨询打回未电给被让叫上下"
              # what a grid worker or a volunteer did, right after their name (网格员周敏走访,
              # 志愿者李红陪同老人, 社工张敏看望, 网格员王芳探望)
              "走陪看探"
              # 每 (蔡俊每月来一次: scrub51)
              "每")
"""Characters that end a name rather than belong to it (王秀英说, 陈静代办)."""
_GIVEN = r"(?:(?![" + _NOT_GIVEN + r"])[\u4e00-\u9fff])"
_SHAN_WORDS = ("位元独身亲据子程次人间项一价号月双纯调薄车杠词曲方列机品科线行页张式个"
               # a count's measure word (单笔报销, 单件寄送: scrub55 reads 单 before one)
               "笔季件份户条套台辆本批只块包盒瓶场单")
_SHAN_ONE_WORDS = ("周数休选干靠侧凭向腿眼手层色飞挑边面招考排床门栋幢字兵证产耳性轨体音脚肩膝"
                   "刀开设报录衣裤被杯座镜核缸例倍点")
"""What 单 makes a word of before one character alone, where a clause opens (单周来访, 单数来办,
单休来电, 单侧来办, 单凭说, 单招来办): scrub55 read each as 单 (Shan) and a one-character given
name before what the person did (redteam115); 单强来办 still goes."""
_NAME = (r"(?:" + _SURNAME + _GIVEN + r"{1,2}|单(?![" + _SHAN_WORDS + r"])" + _GIVEN + r"{2})")
"""A whole name where a clause opens (``_SPEAKER``, ``_DEED``, scrub53's rules): a common
surname and one or two characters, or 单 (Shan) and two: 单 opens so many words (单位, 单元,
单独, 单身, 单据 ...: ``_SHAN_WORDS``) that it is read as a surname only before a given name
of two characters (单国强来办: kept until scrub53, 单 no listed surname)."""
OFFICE_POSTS = ("科长", "处长", "局长", "所长", "站长", "院长", "校长", "馆长", "行长", "庭长",
                "厂长", "部长", "社长", "村长", "队长", "组长", "经理", "干事", "警官",
                # a community's own helpers, addressed so (吴社工跟进, 孙网格员上门了)
                "社工", "网格员")
"""Posts a surname is said before as a form of address is (张科长, 李所长, 王经理), naming one
person of an office as surely as 王主任 does; not 区长, 县长, 市长, 镇长 (a place's name
ends in a surname: 长宁区长), nor a trade said of anyone (免费律师, 专职会计)."""
_SURNAME_TITLE = re.compile(_SURNAME + "(?:" + _HONORIFIC + "|" + "|".join(OFFICE_POSTS) + ")")
_SHAN_TITLED = re.compile("(?<![\u4e00-\u9fff])单(?:" + _HONORIFIC + "|" + "|".join(OFFICE_POSTS)
                          + ")")
"""单 (Shan) with a form of address or a post where it opens the clause (单阿姨又来问了: kept
until scrub55, 单 being no surname of ``SURNAMES``; not 买单先生, 账单主任)."""
_POSTS = ("保安", "门卫", "城管", "租车", "汽车", "打车", "班车", "校车", "修车", "包车")
_OFFICIAL_TITLES = ("主任", "书记", "医生", "老师", "同志", "师傅", *OFFICE_POSTS)
_A_POST_OF_A_UNIT = ("车队长", "车队队长")
"""A unit's head that opens with a surname (由车队长签字确认: the fleet's captain, scrub56; 车
(Che) is a rare surname, 车队 a word)."""


def _addressed_by_post(text: str, start: int, found: str) -> bool:
    """A form of address after a post (保安大哥, 门卫大爷, 出租车师傅) or 向 + a title ("to the
    director": 向主任汇报, 向医生说明), not after a surname."""
    return text[max(start - 1, 0):start + 1] in _POSTS or (
        found[0] == "向" and found[1:] in _OFFICIAL_TITLES)
RELATIVES = ("丈夫", "妻子", "老公", "老婆", "爱人", "老伴", "配偶", "儿子", "女儿", "子女", "孩子",
             "闺女", "女婿", "儿媳", "媳妇", "母亲", "父亲", "妈妈", "爸爸", "哥哥", "姐姐", "弟弟",
             "妹妹", "爷爷", "奶奶", "外公", "外婆", "孙子", "孙女", "外孙女", "外孙", "侄子",
             "侄女", "外甥", "亲属", "家人", "家属", "监护人")
"""Who someone is to the resident, the one list every rule that names a relative uses: after
it (``_INTRODUCERS``: 女儿王丽), named (``_KIN_NAMED``: 孩子叫刘小雨), before it with or
without 的 (``_KIN_OF``, ``_KIN_AFTER``: 王秀英的儿子, 张三丰家属), in brackets
(``_PROFILED``: 王小明（儿子）). A longer word before the shorter it begins with (外孙女)."""
_RELATIVE = "(?:" + "|".join(RELATIVES) + ")"
_KIN = "|".join((*(r for r in RELATIVES if len(r) == 2), "邻居", "朋友"))
"""The relatives of two characters, and a neighbour or a friend: who says or calls after them
(邻居李四说, 她老公孙立军来电; one width for the look behind) or is named after them."""
_INTRODUCERS = (r"(?:居民|住户|低保户|困难户|申请人|老人|患者|病人|家属|户主|联系人|姓\s?名|"
                # who helped or was with them (网格员周敏已上门, 志愿者柳青已帮老人填表)
                r"网格员|志愿者|社工|楼组长|工作人员[:：]?|"
                # a referred unit's or a helper's staff, named in its reply (经办人李明说,
                # 回复人：李建国（网格员）); an office after them stays (联系人：社区居委会)
                r"经办人|回复人|负责人|签收人|对接人|承办人|接待人|"
                r"名叫|叫做|名字叫|名字是|曾用名|"
                r"名字[:：]|本人|"
                r"我叫|他叫|她叫|"
                r"老伴儿|老头子|代办人|委托人|邻居|" + "|".join(RELATIVES) + "|"
                # the written 其 + a relation: 其子张伟代办, 由其母王秀英领取
                r"其(?:子|女|夫|妻|父|母|孙子|孙女|外孙|侄子|侄女|外甥|兄|弟|姐|妹|儿媳|女婿|邻居|亲戚)|"
                r"收件人|收款人|持卡人|开户名|配偶|陪同人|代理人|联络人|"
                r"来电人|来访人|投诉人|举报人|求助人|反映人|当事人|报案人|诉求人|"
                # who mediated, kept the minutes, had the shift (调解员：孙丽萍, 记录人张敏)
                r"调解员|记录人|值班员|值班人|交班人|接班人|"
                # a post before the whole name of who holds it (副主任陈刚已批示, 书记李红梅答复,
                # 社区副书记许丽华): the surname-and-post rule took only 陈主任
                # (副主任 spelt out: an optional 副 first would cost every text a slower search)
                r"副主任|副书记|主任|书记|" + "|".join(OFFICE_POSTS) + ")")
NOT_NAMES = ("申请", "申报", "申领", "申诉", "申办", "费用", "高龄", "康复", "曾经", "曾多次",
             # the rush hour (上午高峰期来电多); 高峰 alone is a name as often (高峰说他家漏水,
             # 居民高峰反映): 上午高峰来电多 goes as a name since scrub49, an over-scrub taken
             "高峰期", "高峰时段",
             # a quarter counted (第3季度共办理127件): scrub56
             "季度",
             # today's weather and a routine call (今天高温来电多, 今天常规来电): redteam89
             "高温", "常规",
             "曾于", "符合", "陆续", "连续", "查询", "安排", "尚未", "关于", "包括", "常年",
             "常住", "管理", "解决", "商量", "金额", "程序", "范围", "任何", "房屋", "万一", "万元",
             "方法", "方式", "方面", "方案", "方向",
             "向社区", "向街道", "向居委", "向中心", "向窗口", "向我", "向工作人员", "向医院",
             "向单位", "向有关", "向相关", "高度", "向居民", "向他", "向她", "向其", "万分",
             # what a household or a helper has or does (住户车辆已挪, 居民文件齐了)
             "周边", "车辆", "车站", "齐全", "文件", "温度", "华侨", "毛病", "施工", "焦虑",
             "农村", "付款", "付费",
             # an illness, a body part, a home, an accident after 母亲 / 患者 / 居民 ...
             "高血", "高烧", "高热", "高考", "高三", "高二", "高一", "高中", "左腿", "左手", "左脚",
             "左眼", "左耳", "左侧", "左边", "左肩", "左膝", "严重", "关心", "关注", "关系", "房租",
             "房产", "房贷", "房子", "房间", "房本", "车祸", "车费", "卫生", "安全", "安装",
             "项目", "钱包", "钱款", "宁愿", "宁可", "温饱", "易摔", "向法院", "向派出所", "向法庭",
             # 家属叫车送医
             "车送", "车接", "车去", "车到",
             # words opening a clause before 说 (万一说不清, 简单说就是, 严格说不符合)
             "常常", "关键", "简单", "简直", "毕竟", "高兴", "严格", "方才", "方便", "何况",
             "何必", "何时", "余下",
             # what a resident says to staff, before a title or a name and a title (麻烦老师了,
             # 辛苦李阿姨, 许多阿姨都来问, 尤其王老师, 凌晨张先生来电)
             "麻烦", "辛苦", "尤其", "凌晨", "许多",
             # 向 ("to") before a title: 向老师反映, 向主任汇报
             "向主任", "向书记", "向医生", "向老师", "向同志", "向师傅",
             # before 本人 (尚需本人到场, 方可由本人领取, 查验本人证件, 应届毕业生本人)
             "尚需", "尚须", "方可", "查验", "查看", "查阅", "严禁", "毕业",
             # what a unit's staff did, after 负责人 / 经办人 (负责人解释说, 经办人马上处理)
             "解释", "解答", "商议", "连夜", "马上",
             # what is sent or given (给包裹寄回)
             "包裹",
             # what a post or a resident does or is (主任严肃批评, 书记任期到明年, 居民陈述情况)
             "严肃", "严厉", "任期", "任职", "任命", "任务", "冷静", "温和", "费心", "齐心",
             "陈述",
             # a thing a clerk has confirmed or handed over (余额确认, 车票已领取)
             "余额", "车票", "车位", "房号",
             # what a post does, said right after it (主任许诺, 科长连忙赶到, 经理关照过,
             # 主任简要介绍): a post opens a name since scrub10 (副主任陈刚)
             "许诺", "连忙", "关照", "简要", "关爱",
             # where a household is, what it has (居民江边散步, 申请人余款已退回, 家属金钱上
             # 有困难, 老人胡乱签了字)
             "江边", "余款", "金钱", "胡乱",
             # who agreed or signed, a thing handed over, a workshop (董事长同意, 由车队长签字,
             # 毛毯已领取, 车间组长, 给车间发通知)
             "董事", "车队", "毛毯", "车间",
             # a form's labels typed a character at a time (曾 用 名：无, 党 员 证：有, 车 牌 号：):
             # redteam69 found them scrubbed as a name; and what a Korean surname begins (老人
             # 朴实, 居民朴素的要求)
             "曾用", "党员", "车牌", "朴实", "朴素",
             # how staff behave, after 工作人员 (工作人员文明用语: scrub51)
             "文明",
             # how a resident was or what befell them, after 居民 (居民安静来办, 居民连连称谢,
             # 居民白跑一趟, 居民甘愿放弃): scrub53
             "安静", "连连", "白跑", "甘愿")
"""Words that begin with a surname and follow a relation word in what clerks write (家属申请,
患者费用, 家属向社区反映): the verb or noun after 家属 is not a name."""
NOT_A_PERSONS_NAME = frozenset((
    "孙子", "孙女", "孙媳", "曾孙", "曾孙女", "岳父", "岳母", "房东", "房主", "房客", "高中生",
    "党员", "钟点工", "包工头", "农民", "农民工", "文员", "武警", "车主", "商户", "商人", "游客",
    "管家", "华侨", "童工", "白领", "蓝领", "程序员", "司机", "向导", "伍军人",
    # how a call-back went, after 回访： (回访：向好, 回访：尚可, 回访：安好): redteam108
    "向好", "尚可", "尚好", "安好", "安康", "安稳", "康健",
    # what 赖 (Lai, listed since redteam108) opens besides a name (居民赖账不还, 家属赖皮)
    "赖账", "赖皮", "赖床",
    # a story's characters a center's events are named after (【孙悟空】主题活动): scrub56
    "孙悟空", "孙行者", "沙悟净", "牛魔王", "白骨精", "白龙马"))
"""Who someone is, not their name, though the word begins with a surname: a case note lists
them with sex and age (孙子（男，10岁）, 房东（男，50岁）) or has them speak (房东说 ...)."""
_BODY_SUFFIX = frozenset("局委院所站厅处科队会省市区县乡州员厂店部馆")
"""Last characters of an office, a place or a post, not of a given name (卫健委来电, 房管局来电,
卫生员说, 已联系石材厂。已通知党支部。已告知文化馆。)."""


def is_name(found: str) -> bool:
    """A listed or speaking "name" that is a role, a relation, an office or a place is not one,
    nor a name already masked (王某某来过, 王某说: scrub48)."""
    return found not in NOT_A_PERSONS_NAME and found[-1] not in _BODY_SUFFIX and "某" not in found
_AFTER_A_DAY = ("一二三四五六七八九十日天再于带补到送寄发领或至及早晚中午点号和与凌傍全整半"
                "过携提本电当见面沟联确核解反答商")
"""What follows 周一 ... 周日 when it is a day (请周一再来, 请周二或周三来, 请周一上午来, 请周一
九点来): anything else is a given name (请周一明来)."""
_A_DAY_NOT_A_NAME = (r"周[一二三四五六日天](?!(?![" + _NOT_GIVEN + _AFTER_A_DAY
                     + r"])[\u4e00-\u9fff])")
_FROM_PLACES = ("江苏", "江西", "江阴", "安徽", "安庆", "吉林", "宁夏", "宁波", "宁德", "常熟",
                "常德", "余姚", "余杭", "黄山", "黄石", "黄冈", "金华", "金山", "马鞍山", "邵阳",
                # where a resident or a relative comes from, lives or works, said right after
                # who they are (家属苏州来的, 子女张江上班, 居民徐家汇附近): the towns and
                # quarters of Shanghai and the cities that begin with a surname and are no
                # one's name
                "杨浦", "徐汇", "黄浦", "闵行", "张江", "陆家嘴", "徐家汇", "朱家角", "曹杨",
                "周家渡", "曹家渡", "江湾", "彭浦", "吴淞", "顾村", "华漕", "吴泾", "梅陇", "徐泾",
                "赵巷", "朱泾", "枫泾", "张堰", "吕巷", "庄行", "车墩", "叶榭", "马陆", "陈家镇",
                "苏州", "常州", "温州", "徐州", "连云港", "秦皇岛", "邢台", "甘肃", "韩国", "武汉",
                "沈阳", "岳阳", "焦作", "石家庄", "包头", "张家港", "张家口", "张家界", "兰州",
                "柳州", "桂林", "龙岩", "齐齐哈尔", "安阳", "郑州", "商丘", "许昌", "周口", "唐山",
                # Pudong's and the suburbs' towns that begin with a surname (居民金桥上班,
                # 女儿高桥那边住, 老伴马桥的老家)
                "金桥", "金杨", "高桥", "高行", "高东", "康桥", "曹路", "唐镇", "周浦", "祝桥",
                "万祥", "龚路", "马桥", "安亭", "罗店", "罗泾", "殷行", "高境", "杨行", "江桥",
                "黄渡", "华亭", "徐行", "江川", "古美", "田林", "佘山", "白鹤", "金泽", "金汇",
                "严桥", "凌桥",
                # cities a relative is from, said before who they are (吉安女儿, 江门亲属,
                # 白银家人, 池州孩子)
                "池州", "娄底", "吉安", "景德镇", "毕节", "安顺", "万州", "甘孜", "白山", "白城",
                "武威", "张掖", "白银", "石嘴山", "吴忠", "安康", "商洛", "阳泉", "吕梁", "江门",
                "梅州", "阳江", "贺州")
"""Places a resident says they are from (我是江苏的) or lives or works in that begin with a
surname."""
_TOWN = frozenset("镇区县市乡")
"""What ends a place's name (罗店镇, 周浦镇): after who someone is, no name ends so."""
_FAMILY_PLACE = _SURNAME + "家[宅浜汇角渡嘴湾桥村巷庄坝港塘埭沟坪岭集屯营寨堡洼]"
"""A village or a quarter named after a family (王家宅, 张家浜, 潘家湾), no one's name."""
_INTRODUCED = re.compile(
    _INTRODUCERS + r"(?:是|为|叫|:|：|\s)*"
    r"(?!" + "|".join(NOT_NAMES + _FROM_PLACES) + "|" + _A_DAY_NOT_A_NAME + "|"
    + _FAMILY_PLACE + r")"
    r"(?P<n>" + _NAME + r")")
_SELF_INTRODUCED = re.compile(
    r"我是(?!" + "|".join(NOT_NAMES + _FROM_PLACES) + r")(?P<n>" + _SURNAME + _GIVEN + r"{1,2})"
    r"(?=[，。；！？,.;!?\s、）)]|$|的" + _RELATIVE + r")")
"""我是张伟，想问 / 我是张伟的妈妈: the resident introducing themselves, written down as said;
only a name the clause ends with (我是江西人, 我是安徽的, 我是江苏来的 say where from)."""
_KIN_NAMED = re.compile(
    r"(?:" + _KIN + r")(?:的名字是|名字叫|名叫|叫做|叫)(?!" + "|".join(NOT_NAMES) + r")"
    r"(?P<n>" + _SURNAME + _GIVEN + r"{1,2})")
"""她老公叫孙立军, 孩子叫刘小雨: a relative named after the everyday word for them."""


_ONE_SURNAME = "[" + "".join(n for n in SURNAMES if len(n) == 1) + "]"
_NICK_NEXT = (r"(?:说|讲|称|本人|表示|反映|告诉|来|去|回|打|帮|问|让|要|会|刚|又|也|已|还|在|办|"
              r"今天|明天|昨天|上午|下午|上门|负责|经办|答应|同意|家|和|跟|的|"
              # a rating's praise (小王服务态度很好, 小周辛苦了, 小张人很好)
              r"辛苦|服务|态度|耐心|热情|很|非常|真|特别|挺|人很|人好|人挺|一起|[，。；！？、,.;!?）)\s]|$|"
              # listed, asked over or asked for papers (小张、老王都来过, 叫老李过来, 让小张补材料):
              # redteam100
              r"都|过来|补|交|签|先|再)")
_NICK_ABOUT = (r"(?:腿|腰|身体|住院|生病|看病|摔|行动不便|独居|一个人住|低保|补贴|医保|社保|养老金|"
               r"材料|申请|领取|签字|签收|满意|不满意|不在|没|今年|\d{1,3}岁|一直|平时|已经|"
               # how to reach them, and a number right after (老王电话 138…, 小刘13812345678)
               r"电话|手机|微信|联系方式|号码|住址|地址|住在|[0-9０-９]|"
               # their papers and accounts, what befell them, and a label before them (老王身份证
               # 过期了, 老王银行卡 6222…, 小刘户口在外地, 老王退休了, 老王：138…)
               r"身份证|证件|银行卡|卡号|账号|户口|邮箱|QQ|qq|住(?![房宅])|残疾|失业|退休|工资|欠费|"
               r"[：:(（]|"
               + "|".join(r for r in RELATIVES if r[0] != "女") + ")")
"""What a note says of the resident a nickname calls (老王腿脚不便, 老王住院了, 小刘媳妇来电,
老王低保材料齐了, 老王80岁, 老王满意, 帮老王申请; 老王电话, 小刘13812345678, 老王住在: the
phone went and the nickname beside it stayed until redteam48): before December 2026 only what
a person does or says after it was read, so these kept the nickname. Not a relative beginning
with 女 (小孙女儿 is a granddaughter, 孙 a surname)."""
_NICK_OLD_ABOUT = r"(?:女婿|女儿|病(?![房毒菌虫例历]))"
"""What only 老 + a surname is said to have (老王女婿来电, 老王病了): 小孙女婿 and 小孙女儿 are a
granddaughter's husband and a granddaughter (孙 a surname, ``_NICK_ABOUT``), no 老孙 is; not
老毛病 (an old complaint: 毛 a surname too), nor 老王病房 / 老王病历 (what follows is a thing)."""
_NICKNAME = re.compile(
    r"(?:(?<![大从最缩矮弱短细微渺减较很太胆狭老妻一])小(?![车费康白米麦牛熊钱包童苗房池孔])"
    r"|(?<![养敬尊古长元父遗防终孝扶助为爱送赡托安护])老(?![房农车]))" + _ONE_SURNAME
    + r"(?=" + _NICK_NEXT + "|" + _NICK_ABOUT + r")"
    r"|(?<![养敬尊古长元父遗防终孝扶助为爱送赡托安护])老(?![房农车]|毛病)" + _ONE_SURNAME
    + r"(?=" + _NICK_OLD_ABOUT + r")"
    r"|" + _ONE_SURNAME + r"[姐哥叔婶嫂](?![姐哥叔婶嫂子夫妹弟们])"
    r"|(?<![养敬尊古长元父遗防终孝扶助为爱送赡托安护])老(?![石龙房农车])" + _ONE_SURNAME
    + r"头(?![发部疼痛脑像])")
"""What colleagues and neighbours call each other (小王说他明天来, 找老李帮忙, 小王办的, 王姐,
李哥): 小 or 老 and a surname, when what follows is what a person does or says (or the clause
ends), and a surname before 姐 / 哥 / 叔 / 婶 / 嫂, and 老 + a surname + 头 (老王头; not 老石头,
老龙头). Not 小区, 老年 (no surname), not 养老金 (老 ends a word),
not 小车来了 or 老房的 (a thing), not 向姐姐 / 连哥哥 (a preposition before a relative)."""
_GIVEN_NICKS = ("芳丽燕红军敏娟玲霞婷琳莉萍琴颖洁倩娜慧雯蕾晶琪瑶怡婧璐美艳丹妮菲英凤"
                "伟强刚勇杰涛斌磊鹏辉亮健俊兵宝")
_GIVEN_NICKNAME = re.compile(
    r"小(?<![大从最缩矮弱短细微渺减较很太胆狭老妻一]小)[" + _GIVEN_NICKS + r"]"  # 小 first: fast
    r"(?=" + _NICK_NEXT + r"|核|确认|签|联系|沟通|再|请假|帮忙)")
"""小 and a given name's character, as a colleague or a neighbour is called by it (小芳说明天来,
小丽已经填好, 跟小燕核对过了, 小娟今天请假): none of these is a surname (小王 is
``_NICKNAME``'s), and what follows is what a person does or says, as there. Not 小红书, 小红花,
小燕子, 小超市, 小美女 (a thing follows), nor 小雪 (a solar term: not listed)."""
_REACH_END = (r"(?=[，。；！？,.;!?、\s）)：:（(—…“”\"'～~\-]|了|并|和|及|与|后|未|没|$"
              r"|[到去来](?:窗口|柜台|医院|中心|现场)"  # 陪同王芳到窗口: scrub49
              # what the clerk reached them for (已联系韩立新核实, 已通知邓丽萍补交户口本):
              # scrub51
              r"|核实|确认|沟通|补[交齐充办]|签字|领取|办理)")
#: What a note says was done to reach someone, the name they reached following (``_REACHED``,
#: ``_KIN_AFTER``).
_REACHING = ("联系", "通知", "告知", "转告", "回访", "陪同", "探望", "看望", "走访")
_REACHED = re.compile(
    r"(?:" + "|".join(_REACHING) + r")(?:了(?!解)|过|到|上了)? ?"
    r"(?!" + "|".join(NOT_NAMES) + r")(?P<n>" + _NAME + r")" + _REACH_END)
"""A name the clause ends with after who reached them (已联系王秀英，她说下周来; 已通知李建国。
已电话联系王秀英：下周来; 已联系王秀英了; 已通知李建国和张伟), or that a "not" follows
(电话联系王秀英未接通, 已回访王秀英没人接; a space after the verb: 联系 毛秀珍 ，未接,
redteam108), as a follow-up note or a referred unit's reply says
whom it called: not 联系方式 (``NOT_NAMES``), not 联系金融机构 (the clause goes on), not
联系了解情况 (了解, "to find out")."""
_WEEKDAYS = tuple(f"周{d}" for d in "一二三四五六日天")
_OF_KIN = "(?:的(?=" + _RELATIVE + ")|之(?=[子女夫妻父母孙]))"
_KIN_OF = re.compile(
    r"(?!" + "|".join(NOT_NAMES + _FROM_PLACES + _WEEKDAYS) + r")(?P<n>" + _SURNAME + _GIVEN
    + r"{1,2})" + _OF_KIN)
"""A name before 的 and who someone is to them (已联系张三丰的女儿, 王秀英的儿子来电), or the
written 之 (王秀英之女): the
relative is named through the resident; not 房东的儿子 (``is_name``), 周一的孩子 (a day),
江西的亲属 (a place); a neighbour or a friend is not asked for (沈阳的朋友 is a city's)."""
_NEXT_OF_KIN = _RELATIVE
_KIN_AFTER = re.compile(
    r"(?:^|(?<=[，。；！？,.;!?\s：:、（(“”\"])|(?<=由)|(?<=跟)|(?<=给)|(?<=请)|(?<=和)|(?<=与)|"
    + "|".join(f"(?<={verb})" for verb in _REACHING) + ")"
    r"(?!" + "|".join(NOT_NAMES + _FROM_PLACES + _WEEKDAYS) + r")(?P<n>" + _SURNAME + _GIVEN
    + r"{1,2})(?=" + _NEXT_OF_KIN + ")")
"""A name right before who someone is to them, without 的 (张三丰家属说, 已联系王秀英女儿, 由
李建国老伴代办), opening a clause or after who reached them: not 照顾生病女儿 (mid-clause),
房东家属 (``is_name``), 申请人家属, 武汉女儿 (a place, ``_BEFORE_A_TITLE``)."""
_TOLD_VERBS = (r"沟通|联系|确认|核实|说明|解释|反馈|答复|回复|商量|面谈|见面|当面|打|说|讲|"
               r"寄|于|带|携带|补|提供|签|办|领|再|明天|后天|下周|本周|周[一二三四五六日]|上午|"
               r"下午|今天|电话")
"""What a name after 跟 / 给 / 请 is followed by that makes no word with 发 before it (发来,
发到, 发回, 发送 do)."""
_TOLD = re.compile(
    r"(?:跟|给(?![付予])|请)(?!" + "|".join(NOT_NAMES) + "|" + _A_DAY_NOT_A_NAME + r")(?P<n>"
    + _SURNAME + r"(?P<g>" + _GIVEN + r"{1,2}?))(?=" + _TOLD_VERBS + r"|回|发|送|来|到|过来)")
_FA_THEN = re.compile(r"发(?=" + _TOLD_VERBS + "|发|短信|微信|消息|信息|邮件|通知)")
"""发 after a one-character given name that is the name's: a verb or what is sent follows
(给王建发打电话, 给王建发短信, 已给李国发微信, 给陈永发发了通知). A text to 王建 (发短信) loses
its verb then, never a character of a name."""
_ON_BEHALF = re.compile(
    r"(?:代|替|帮)(?!" + "|".join(NOT_NAMES + _FROM_PLACES) + "|" + _A_DAY_NOT_A_NAME + r")(?P<n>"
    + _SURNAME + _GIVEN + r"{1,2}?)(?=签字|签名|领取|填表|填写|办理|交材料|补交|取件|缴费|申请|"
    r"预约|挂号|递交|提交)")
"""A name after 代 / 替 / 帮 and what was done for them (代王秀英签字, 替王秀英领取, 帮王秀英
填表), as a 代办 or a help task's note says whom it was done for; not 代办, 帮忙, 帮扶 (no name
follows), 帮孙子申请 (``is_name``), 帮高龄老人办理 (``NOT_NAMES``)."""
"""A name after 跟 / 给 / 请 and what was done with them or asked of them, as a follow-up's
outcome says it (跟王秀英沟通过了, 给王秀英打过电话, 请王秀英于周一来); not 跟进, 给予, 给付,
请示, 请假 (no name follows), 请周一来, 请周一上午来 (a day; 请周一明来 is a name), not
给居委会打电话, 跟施工方沟通 (an office, ``_UNITS_REACHED``), not 跟张科长 as 张 and 科长
(a surname and a post, ``_POSTS_AFTER_A_SURNAME``: ``OFFICE_POSTS`` take it whole). The
shortest name that a verb follows (请宋江于周一来: 于 is no given name here), but a one
character given name before 发 and a verb or what is sent is cut short (给王建发打电话,
给王建发短信: 发 is the name's, ``_FA_THEN``)."""
_POSTS_AFTER_A_SURNAME = frozenset((
    "科长", "处长", "局长", "所长", "站长", "院长", "主任", "书记", "经理", "老师", "师傅",
    "医生", "队长", "组长", "社长", "村长", "部长", "科员", "干事", "工", "总", "姐", "哥"))
_AND_NEXT = re.compile(r"[、和及与](?!" + "|".join(NOT_NAMES) + r")(?P<n>" + _SURNAME + _GIVEN
                       + r"{1,2})" + _REACH_END)
"""The next name of a list of those reached (已联系王秀英、李建国。已通知李建国和张伟。)."""
_UNITS_REACHED = frozenset((
    "房管", "车管", "安监", "安保", "安置", "卫健", "文旅", "文广", "文体", "文明", "施工",
    "施工方", "史志", "高新", "商务", "武装", "金融", "农业", "林业", "党建", "党群", "党委",
    "党组", "关工", "仲裁", "华为", "万达", "车辆", "文书", "管道工", "江北", "江南", "黄浦",
    "徐汇", "闵行", "房山", "石景山", "江宁", "武侯", "白云", "罗湖", "龙岗", "龙华", "萧山",
    "钱塘", "曲靖", "商铺", "商家", "管道", "管网", "管线", "华润", "龙湖", "金地", "杨浦",
    # places a note says called or were busy (今天王府井来电, 今天东方明珠来电): redteam100
    "王府井", "东方明珠",
    # a quarter and a company before 来办 (李子园来办的居民, 苏宁来办企业登记): redteam105
    "李子园", "苏宁",
    *_FROM_PLACES))
"""Offices, trades and places a note says were told, called or asked over (已通知房管。
已联系卫健。已告知施工方。已联系徐汇。叫安保来): short names that begin with a surname and end
a clause as a name does after 联系 / 通知, or come before 来 after 叫."""
_CALLED_OVER = re.compile(
    r"叫(?!" + "|".join(NOT_NAMES) + r"|车)(?P<n>" + _SURNAME + _GIVEN + r"{1,2}?)"
    r"(?=(?:过|回)?来|去|一起|陪)")
"""A name after 叫 ("to ask someone over": 叫张伟来一趟, 叫李敏过来签字): not 叫车来, not 叫孙子
过来 (``is_name``)."""
_HIMSELF = re.compile(r"(?!" + "|".join(NOT_NAMES) + r")(?P<n>" + _SURNAME + _GIVEN + r"{1,2})"
                      r"(?=本人)")
"""A name before 本人 ("in person": 王秀英本人签字, 由陈静本人来办理, 已联系李建国本人), as a clerk
notes who signed or came; not 申请人本人, 车主本人 (``is_name``), 包括本人 (``NOT_NAMES``)."""
_BEFORE_A_TITLE = ("王府井", "高级", "温柔", "文化", "武术", "金牌", "华人", "任课", "毕业", "卫健",
                   "甘肃", "包头", "曲靖", "石家庄", "韩国", "罗斯", "武汉", "沈阳", "岳阳", "焦作",
                   "马来", "管道", "车司机", "车行", "石材", "金店", "林业", "解放军", "纪检",
                   "包车", *(f"周{d}" for d in "一二三四五六日"))
"""What a title follows that begins with a surname and is no name: a kind (文化老师, 金牌阿姨), a
place or a country someone is from (甘肃大爷, 韩国女士), a trade (管道师傅, 出租车司机师傅,
石材师傅, 解放军同志), a day of the week (周一老师来电, 周日阿姨来值班: 周 is a surname, 一 ...
日 no given name). Only right before the title: 周一明先生 is a name."""
_ENDS_IN_A_SURNAME = frozenset(("谢谢", "感谢", "多谢", "致谢", "主任", "那边", "这边", "旁边",
                                "身边", "公安", "治安", "分管", "主管", "房管", "车管", "物管",
                                "相关", "有关", "机关", "海关", "免费", "收费",
                                # places whose staff are told so (静安社工, 张江网格员, 长宁科长)
                                "长宁", "静安", "松江", "浦江", "张江", "镇江", "九江", "延安",
                                "西安", "淮安", "泰安", "吴江"))
"""Words whose last character is a surname, said right before a title or a post every day
(谢谢老师, 感谢阿姨, 多谢师傅, 班主任老师, 那边老师说, 公安局长, 分管科长, 相关处长, a place's
own: 静安社工): that character is no one's surname."""


def _ends_a_word(text: str, start: int) -> bool:
    """Whether the surname at ``start`` is the end of one of :data:`_ENDS_IN_A_SURNAME`; not
    when the character before it ends one itself (感谢谢老师: thanks to teacher Xie)."""
    return start > 0 and text[start - 1:start + 1] in _ENDS_IN_A_SURNAME and not (
        start > 1 and text[start - 2:start] in _ENDS_IN_A_SURNAME)
_NAME_TITLES = tuple(t for t in HONORIFICS if t not in ("主任", "书记"))
"""The forms of address a whole name is said before (王德发师傅, 李建国同志, 张秀英医生, 刘桂兰
大妈), not a post's (车间主任, 党支部书记: a workshop, a party branch)."""
_A_NAME_TITLE = "(?:" + "|".join(_NAME_TITLES) + ")"
_FULL_NAME_TITLE = re.compile(
    r"(?!" + "|".join(NOT_NAMES + _FROM_PLACES) + r")"
    r"(?!(?:" + "|".join(_BEFORE_A_TITLE) + r")" + _A_NAME_TITLE + r")" + _SURNAME
    + r"(?P<g>" + _GIVEN + r"{1,2})" + _A_NAME_TITLE)
"""A whole name with a form of address after it (王小明先生, 陈建国先生, 欧阳娜娜女士, 张秀英
阿姨): the surname rule alone took only a surname right before the title."""
_SINGLE_SURNAMES = frozenset(n for n in SURNAMES if len(n) == 1)
_FULL_NAME_POST = re.compile(_SURNAME + r"(?P<g>" + _GIVEN + r"{1,2})(?=" + "|".join(OFFICE_POSTS)
                             + ")")
"""A whole name before an office's post (王建国局长, 孙建平所长, 张晓峰科长): the name goes, the
post stays; not an office or a place before its head (卫生院院长, 文化站站长, 安监站长,
``is_name`` and ``_UNITS_REACHED``; a kind or a place, ``_BEFORE_A_TITLE``, ``NOT_NAMES``,
``_FROM_PLACES``), nor 主任 / 书记 (车间主任). The surname first, so that ``re`` skips to one:
the words it must not begin with are asked after a find."""
_NOT_A_NAME_POSTED = NOT_NAMES + _FROM_PLACES
_KIND_OF_POST = re.compile("(?:" + "|".join(_BEFORE_A_TITLE) + ")(?:" + "|".join(OFFICE_POSTS)
                           + ")")


def _full_name_titled(text: str) -> Iterator[tuple[int, int]]:
    """Spans of :data:`_FULL_NAME_TITLE`. When the given name begins with a surname (感谢王明先生,
    向王先生说明, 李华先生) the name is taken from there: a verb or a preposition before a
    name is more common than a name of that shape, and the surname rule's own find (王先生)
    is kept whole either way."""
    for m in _FULL_NAME_TITLE.finditer(text):
        start = m.start("g") if text[m.start("g")] in _SINGLE_SURNAMES else m.start()
        if is_name(text[start:m.end("g")]) and not _ends_a_word(text, start):
            yield start, m.end()
    for m in _FULL_NAME_POST.finditer(text):
        if text.startswith(_NOT_A_NAME_POSTED, m.start()) or _KIND_OF_POST.match(text, m.start()):
            continue  # 主任高度..., 金牌经理; 周一明局长 is a name
        start = m.start("g") if text[m.start("g")] in _SINGLE_SURNAMES else m.start()
        name = text[start:m.end("g")]
        if text[m.end("g") - 1] == text[m.end("g")]:
            continue  # an office and its head: 金星村村长, 红旗队队长
        if is_name(name) and name not in _UNITS_REACHED and not _ends_a_word(text, start):
            yield start, m.end()


_SPACED_NAME = re.compile(
    r"(?P<n>" + _SURNAME + r"(?:(?P<w>[ _\-·.*])" + _GIVEN + r"(?P=w)" + _GIVEN
    + r"|(?P<s>_)" + _GIVEN + r"{1,2}))")
"""A name typed with the same separator between its characters (李_建_国, 张 建 国, 陈-晓-红,
刘·志·刚, 黄*丽*华, 欧阳-娜-娜; with ``_`` only after the surname alone, 王_英, 李_建国: left
国 until redteam69; a dash, a dot or a space
between two is a range, a pause or a file's name, 高-低, 中文.链接, and 王*英 is a name masked
as the counter's screen shows it): no word is written so, but for a whole line
spaced out (请 假 一 天, ``_spaced_name``); kept until scrub47."""
_ANY_SPACED = re.compile(r"[ _\-·.*](?<=[\u4e00-\u9fff].)(?=[\u4e00-\u9fff])")
_SPACED_HAN = re.compile(r"[\u4e00-\u9fff]")


def _spaced_name(text: str, m: re.Match[str]) -> bool:
    """Not one stretch of a line typed a character at a time (高 兴 地 说, 申 请 人：): the
    characters before and after the name are not single ones parted the same way, and the
    name is no role or word (``is_name``, ``NOT_NAMES``)."""
    sep = m.group("s") or m.group("w")
    start, end = m.start("n"), m.end("n")
    if text[start - 2:start - 1] and text[start - 1:start] == sep \
            and _SPACED_HAN.match(text, start - 2) \
            and not _SPACED_HAN.match(text, max(0, start - 3)) if start >= 2 else False:
        return False
    if text[end:end + 1] == sep and _SPACED_HAN.match(text, end + 1) \
            and not _SPACED_HAN.match(text, end + 2):
        return False
    name = text[start:end].replace(sep, "")
    return is_name(name) and name[-1] != "人" and not name.startswith(NOT_NAMES)


_ROLES = (r"(?:本人|" + "|".join(RELATIVES) + "|代办人|委托人|申请人|户主|联系人|独居|老人)")
_PROFILED = re.compile(
    r"(?!" + "|".join(NOT_NAMES) + r")(?P<n>" + _SURNAME + _GIVEN + r"{1,2})"
    r"(?:(?:\s*[（(，,、]\s*|\s+)(?:男|女)性?(?=[\s，,、）)；;]|\d|岁|$)"
    r"|\s*[（(]" + _ROLES + r"[，,、）)])")
"""A name as a case note's list of people writes it: with the sex and age after it (王秀英（女，
67岁）, 张建国，男，45岁) or with who they are in brackets (王小明（儿子）, 李敏(本人))."""
_OWNS = (r"的(?:电话|手机|座机|联系方式|号码|身份证|住址|地址|微信"
         # a resident's papers (常建国的居住证材料在抽屉: scrub51)
         r"|居住证|残疾证|社保卡|医保卡|银行卡|户口本|证件|材料)")
_SURNAME_FIRST = "[" + "".join(sorted({n[0] for n in SURNAMES} | {"单"})) + "]"
"""What a name's first character may be: ``_SPEAKER`` asks it before its look behinds (单
too: ``_NAME``)."""
_A_TIME_OF_DAY = ("今天|昨天|前天|上午|下午|中午|晚上|早上|刚才|刚刚|当天|随后|后来|今早|昨晚|"
                  "周[一二三四五六日天]|[节旦庆][前后]|期间|之后|之前|以后|以前")
"""The time a note opens with, glued to the name after it (今天张建国来过, 上午李秀英打电话,
2026年12月20日周日张建国来过):
each two characters, one width for ``_SPEAKER``'s look behind; kept until scrub49. Not 向 after
it: 今天向领导反映, 刚才向社工说 tell whom the resident went to (scrub49 took 向领导 for a name:
redteam89). Since redteam100 also a holiday or a span of days (春节前王芳来过, 国庆后刘志刚来电,
期间 / 之后 / 以前 ...), and a holiday's last character or an emoji opens the clause as a comma
does (元旦张建国来电, 国庆节李秀英来过, 👍张建国来过: ``_SPEAKER_OPENS``); each was kept."""
_A_DAY_BEFORE = (r"(?<=\d[日号点时分])|(?<=[一二三四五六七八九十][日号点])|(?<=[:：]\d\d)"
                 r"|(?<=点半)|(?<=[0-9室])")
"""A day or a time glued before the name (20日张建国来过, 12月20号李秀英来电, 二十日王芳到窗口,
31日23:30张建国来电, 9点半刘志刚来过): kept until scrub50 (only a weekday or a time word opened
the clause). Since scrub53 also a room's or a phone's last digit, or 室 (1203室张建国来办,
13812345678张建国来办: the number went, the name stayed)."""
_TIME_BETWEEN = (r"(?: ?(?:今天|昨天|前天|明天|后天|上午|下午|中午|晚上|早上|傍晚|刚才|刚刚|今早"
                 r"|昨晚|周[一二三四五六日天]|又|也|都|再次|已经?|还|(?:\d{1,2}月)?\d{1,2}[日号]"
                 r"|\d{1,2}点(?:半|\d{1,2}分?)?)){0,3}")
"""When, between the name and what the person did (张建国今天来过, 李秀英上午打电话, 王芳又来电):
kept until scrub50 (the verb had to follow the name). Since redteam100 up to three of them, a
day of the month or a clock's time among them, and a space before each (张建国今天上午来过,
张建国昨天下午来电, 张建国20日来过, 张建国 今天来过): only one was read. Since redteam108 also
都, after a list (赖文杰，龙海波，段玉芬都来过: none went)."""
_CALLS_COUNTED = (r"(?![ \t]*(?:(?:较|很|特别|比较|非常)?(?:多(?![次回遍])|少)|量|数|人数"
                  r"|高峰))")
"""来电 / 来访 said of how many came (上午高峰来电多, 今天来电量大, 9点半高峰来访多), not of who
called (张建国来电多次 is a person): scrub49 took 高峰 for a name there; spaced too (高峰 来电 多:
redteam108, once scrub53 read a space before 来电)."""
_EMOJI = "\u2600-\u27bf\U0001f300-\U0001faff\ufe0f"
_GAP = r"[ \t" + _EMOJI + r"]{0,3}"
"""What a clerk puts between a name and what the person did: a space (scrub53), two, a tab, an
emoji (谭永康👍来过, 廖美玲  来办: redteam108)."""
_HEARD_OR_SERVED = "听说|据说|听到|得知|窗口|柜台|号窗"
"""What a clerk writes right before the name of whom they heard of or served, glued to it
(听说王秀英今天来过, 5号窗口张建国说, 3号窗王芳来过): kept until scrub52; each two characters, one
width for ``_SPEAKER_OPENS``' look behind."""
_SPEAKER_OPENS = (r"(?=" + _SURNAME_FIRST
                  + r")(?:^|(?<=[，。；！？,.;!?\s:：（(【\[\-#“「『\"'‘节旦\u2600-\u27bf"
                  r"\U0001f300-\U0001faff])|(?<=" + _KIN + "|" + _HEARD_OR_SERVED
                  + r")|" + _A_DAY_BEFORE + r"|(?<=" + _A_TIME_OF_DAY + r")(?!向))")
SERVICE_ITEMS = ("医保", "社保", "低保", "养老金", "养老保险", "退休金", "居住证", "残疾证", "户口",
                 "失业金", "失业登记", "就业登记", "报销", "补贴", "公积金", "救助", "慰问金",
                 "尊老金", "敬老卡", "老年卡", "高龄津贴",
                 # help a clerk writes whose it is (张建国医疗救助已批): redteam105; not 公租房
                 # (高层公租房)
                 "医疗救助", "临时救助")
"""The center's errands a clerk writes right after whose they are (张建国医保报销, 王芳低保材料,
李强来办居住证)."""
ERRAND_KINDS = ("高效", "简化", "简便", "夏季", "商保", "商业", "农保", "农机", "车险", "文化",
                "安居", "车子", "冷空",
                # how it is done, the kinds of help, the weather (安心办理, 简易办理, 金卡办理,
                # 农合报销, 蓝印户口, 包干报销, 高校补贴, 宁养救助, 金秋慰问金, 雷雨来了,
                # 梅雨季来了): redteam105
                "安心", "简易", "金卡", "农合", "蓝印", "包干", "高校", "安家", "宁养", "史料",
                "金秋", "严寒", "高寒", "边远", "冷链", "龙头", "农资", "雷雨", "梅雨")
"""Words that begin with a surname and come before what ``_CAME_FOR`` reads, a kind of errand
or of help, a thing, the weather (高效办理, 简化办理流程, 夏季补贴, 商保报销, 文化补贴, 安居补贴,
车子来了, 冷空气来了): asked after a find, as ``NOT_NAMES`` is, not in the patterns (each word
there is one more look at every character of every text)."""
_NOT_SPEAKERS = NOT_NAMES + ERRAND_KINDS
_CAME_FOR = (r"(?:来(?:办|咨询|了|问|交|补|领|取|申请|登记|签|递交|提交|拿|开)|办理"
             r"|(?:(?:过来|要|想|去|在)?办理?|的)?(?:" + "|".join(SERVICE_ITEMS)
             + "))(?!事?(?:的人|的多|的少)|很多人|不少人)")
"""What the person came to do or the errand that is theirs, right after the name (张建国来办医保,
李秀英来咨询, 张建国又来了, 张建国办理居住证, 张建国医保报销): kept until scrub52 (only speech, a
call, a visit or a deed was read); not how many came (高峰来办事的人多, 窗口高峰来办的多). Since
redteam105 also what they want or went to do and whose an errand is (张建国要办居住证, 张建国过来
办医保, 张建国去办户口了, 张建国的低保续上了)."""
_SPEAKER_DOES = (r"(?:说|称|表示|反映|讲|来电" + _CALLS_COUNTED + r"|来访" + _CALLS_COUNTED
                 + r"|告诉|来过|打电话|打来电话|陪(?![护读诊伴聊])|替(?![代换补班身])"
                 + r"|[到来]窗口|" + _OWNS + r"|(?:电话|手机|座机)[:：]?\d|" + _CAME_FOR + ")")
_WITH_OTHERS = r"(?:等(?:[两二三四五六七八九十\d]{1,2}人|人)?|一家(?:人|三口|四口)?|们)?"
"""Who came with the name (张建国等人来过, 张建国等三人来过, 张建国一家来过): the name was kept
until redteam100; 张建国们来过 (he and his) until scrub51."""
_SPEAKER = re.compile(_SPEAKER_OPENS + r"(?!" + _A_DAY_NOT_A_NAME + r")(?P<n>" + _SURNAME + _GIVEN
                      + r"{1,2}|单(?![" + _SHAN_WORDS + r"])(?:" + _GIVEN + r"{2}|(?!["
                      + _SHAN_ONE_WORDS + r"])" + _GIVEN + r"))(?=" + _WITH_OTHERS
                      + _TIME_BETWEEN + _GAP + _SPEAKER_DOES + ")")
"""A name opening a clause before a verb of speech (王秀英说), or after the everyday word for
who they are to the resident (邻居李四说, 她老公孙立军来电: each of ``_KIN`` is two characters,
one width for the look behind); not 向姐姐反映, 向妈妈说 ("to my sister", ``_KIN_WORDS``).
Since scrub48 also before 来过 and before 的 and how to reach them (张建国来过, 张建国的电话
138...: a line typed a character at a time reads so once its spaces are left out,
``spaced_out``); not a day (周一来过). Since redteam80 a clause also opens after a colon, a
bracket, a dash, a # or a quote (备注：张建国来过, （李桂兰来电）, “李 桂 兰 来 过): a form's
label and a list's item. Since scrub50 also after a day or a clock's time (20日张建国来过,
``_A_DAY_BEFORE``) and with the time between the name and its verb (张建国今天来过,
``_TIME_BETWEEN``); not before calls counted (上午高峰来电多, ``_CALLS_COUNTED``), nor an office,
a company or a place (今天华为来电, 江苏来电转办: ``_UNITS_REACHED``). Since scrub52 also
before what the person came for or the errand that is theirs (张建国来办医保,
张建国又来了, 张建国医保报销: ``_CAME_FOR``; not 高效办理, ``ERRAND_KINDS``), after a
window or 听说 (5号窗口张建国说, 听说王秀英今天来过: ``_HEARD_OR_SERVED``), and not a day
(周一到周五办理)."""
_DEEDS = "同意|签字|签名|签收|确认|拒绝|答应|到场|领取|承诺|认可"
_LISTED_NICKNAME = r"(?:小(?![车费康白米麦牛熊钱包童苗房池孔])|老(?![房农车]))" + _ONE_SURNAME
"""A nickname listed after a whole name (张建国和小王来过: the whole name was kept until
scrub51); not 小米, 老房 (``_NICKNAME``'s words)."""
_LISTED_OPENS = _SPEAKER_OPENS.replace("(?=" + _SURNAME_FIRST + ")",
                                       "(?=[小老]?" + _SURNAME_FIRST + ")", 1)
_LISTED_SPEAKERS = re.compile(
    _LISTED_OPENS + r"(?P<n>(?:" + _SURNAME + _GIVEN + r"{1,2}(?:[、和与](?:" + _SURNAME + _GIVEN
    + r"{1,2}|[小老][\u4e00-\u9fff])){1,3}|" + _LISTED_NICKNAME + r"(?:[、和与](?:" + _SURNAME
    + _GIVEN + r"{1,2}|" + _LISTED_NICKNAME + r")){1,3}))(?=(?:都|也|一起|一同|俩|两人)?"
    + _TIME_BETWEEN + r"(?:" + _SPEAKER_DOES + "|" + _DEEDS + "))")
"""Names listed where ``_SPEAKER`` finds one, before what they all said or did (张建国、李秀英和
王伟来过, 欧阳建国和司马光明今天来过, 张建国和李秀英一起来窗口, 刘志刚与何建军签字): kept until
redteam100, whole, the last name after 和 opening no clause; each listed name is asked as
``_SPEAKER``'s is (华为和张建国来电: the company stays). A nickname after a whole name
(张建国和小王来过, ``_LISTED_NICKNAME``) since scrub51; since scrub52 a list that opens with a
nickname (老王和张建国来过) and one whose 小 / 老 part is no nickname (张建国和小米来过: the whole
name goes, 小米 stays)."""
_LIST_PARTS = re.compile("[、和与]")
_LISTED_NICK_ALONE = re.compile(_LISTED_NICKNAME)
"""A listed part of 小 / 老 and a character that is a nickname (小王), not a company (小米)."""
_COMMA_LISTED = re.compile(r"(?:^|(?<=[，。；！？,.;!?\s:：（(]))(?P<n>" + _SURNAME + _GIVEN
                           + r"{2})$")
"""A whole name of three characters alone before a comma, a name that ``_SPEAKER`` took
after it (李秀兰，张建国来过: kept until scrub51, the comma ending what could be a heading's
topic); three characters, so 谢谢，张建国说 keeps its thanks, and not a fee, a fund or a
paper (周转金，车马费，: what a heading's topic ends with)."""


def _comma_listed(text: str, comma: int) -> Iterator[tuple[int, int, str]]:
    """``_COMMA_LISTED``'s find right before ``comma``, asked as ``_SPEAKER``'s is, and not a
    place (黄浦区，张建国来过: ``_BODY_SUFFIX``; 张家港，: ``_FROM_PLACES``)."""
    m = _COMMA_LISTED.search(text, max(0, comma - 3), comma)
    if m is None:
        return
    n = m.group("n")
    if is_name(n) and n[1:] not in _KIN_WORDS and n not in _UNITS_REACHED \
            and n[-1] not in "人费款证卡金单表" and not n.startswith(NOT_NAMES + _FROM_PLACES):
        yield m.start("n"), m.end("n"), REDACTED_NAME
_ASKED = re.compile(
    r"(?:由|让|找)(?!" + "|".join(NOT_NAMES + _FROM_PLACES) + "|" + _A_DAY_NOT_A_NAME + r")(?P<n>"
    + _SURNAME + _GIVEN + r"{1,2}?)(?=" + _TOLD_VERBS + "|" + _DEEDS + r"|代办|代为|代|负责|处理"
    r"|填|交|提交|来|到|过来|去|了解|协助|帮)")
"""A name after 由 / 让 / 找 and what the person did or was asked to do (由张建国代办, 让李秀英
补材料, 找王芳签字, 让张建国明天来): kept until redteam100 (跟 / 给 / 请, ``_TOLD``, and 代 / 替 /
帮, ``_ON_BEHALF``, were read); not an office or a place (由居委会负责, 由张江镇负责, 找房管所
处理), a day (让周一来)."""
_DEED = re.compile(
    r"(?=" + _SURNAME_FIRST + r")(?:^|(?<=[，。；！？,.;!?\s：:])|(?<=由)|(?<=" + _HEARD_OR_SERVED
    + ")|" + _A_DAY_BEFORE + "|"
    + "|".join(f"(?<={w})" for w in ("上午", "下午", "中午", "晚上", "今天", "昨天", "刚才", "当天",
                                      "随后", "后来"))
    + r")(?P<n>" + _NAME + r")"
    r"(?=" + _TIME_BETWEEN + r"(?:已经?|不|没有?|也|又|都|当场|亲自|本人)?(?:" + _DEEDS + "))")
"""A name alone opening a clause before what the person did at the counter (刘志刚同意签字,
周海燕确认收到, 何建军拒绝签收, 吴桂芬已签字确认, 今天上午郑国庆到场办理, 由刘志刚签字): a note says
who agreed, signed or refused without a word before the name. Not who someone is (房东同意,
``is_name``), an office (万科确认), a place, a day (周一确认; 周一明确认 is a name), a trade
(石材确认), nor a thing (余额确认, 车票已领取, ``NOT_NAMES``). Since scrub52 also with the
time between (刘志刚今天签字, ``_TIME_BETWEEN``) and after a window, a clock or 听说 (2号窗李强签字
确认, 9:30刘志刚签字: ``_HEARD_OR_SERVED``, ``_A_DAY_BEFORE``)."""
_SPACED_AFTER_SURNAME = re.compile(
    _INTRODUCERS + r"(?:是|为|叫|:|：)?\s{0,2}(?P<n>" + _SURNAME + r" {1,2}" + _GIVEN + r"{1,2}?)"
    r"(?=[，。；！？,.;!?、\s）)]|$|说|称|表示|反映|讲|来电|来访|告诉|" + _DEEDS + ")"
    r"|(?:^|(?<=[，。；！？,.;!?\n]))(?P<s>(?:" + _SURNAME + r"|单(?= {1,2}(?![" + _SHAN_WORDS
    + _SHAN_ONE_WORDS + r"])))" + r" {1,2}" + _GIVEN + r"{1,2})"
    r"(?=" + _GAP + r"(?:说|称|表示|反映|讲|来电|来访|告诉|来过|" + _DEEDS + "|" + _CAME_FOR
    + "))"
    r"|(?:" + "|".join(_REACHING) + r")(?:了|过)?(?P<r>" + _SURNAME + r" {1,2}" + _GIVEN
    + r"{1,2}?)" + _REACH_END)
"""A name with a space after its surname (申请人：张 建国, 张 建国说: a form's boxes, the way
a Latin name is parted) or a two-character one padded to three (联系人：王　英, a list
aligned by a full-width space): after a word that introduces a name, or opening a clause
before a verb of speech or what the person did; kept until redteam69. A two-character one so
typed opening a clause (王 芳说明天来, 刘 洋签字) or after who reached it (已联系张 伟，) was
kept until scrub48; not a day (周 一来电) nor a word (高 兴说, ``NOT_NAMES``)."""
_QUOTED_SPEAKER = re.compile(r"(?<=[“「『\"'‘])(?P<n>" + _SURNAME + _GIVEN + r"{1,2})"
                             r"(?=[”」』\"'’](?:说(?!明)|称|表示|反映|讲|来电|来访|告诉))")
"""A name in quotes before a verb of speech (“王秀英”说, 「李建国」表示), as a clerk quotes who
said what; not a quoted term before 说明 (“一网通办”说明)."""

# -- scrub53: who came along, a couple, brackets, a note's last word, a dot, a list -------

_CLAUSE_END = r"(?=[，。；！？,.;!?、\s）)" + _EMOJI + "]|$)"
_ALONG = re.compile(
    r"[陪替]着?[\s" + _EMOJI + r"]{0,2}(?P<n>" + _NAME + r")(?=去|来|到|交|办|领|取|签|填|补|缴"
    r"|看病|就医|就诊|复查|体检|回|跑|排队|一起|一同|一块|一道|散步|聊|吃饭|买|逛|下楼|上楼|出门)"
    r"|[和跟与同帮](?P<w>" + _NAME + r"(?:[、，,和]" + _NAME + r"){0,3})(?=一起|一同|一块|一道)")
"""Whom the clerk or a relative came along with or stood in for (陪张建国去了趟医院, 替李秀英交了
医保费, 和刘志刚一起来, 跟王芳一同去): kept until scrub53 (代 / 替 / 帮 before a listed errand
only, ``_ON_BEHALF``, and 陪同 before where they went). Not 陪同, 陪护, 替代, 和车一起来 (a
find with 一 or 起 in it is the 一起), nor what is handed in with a thing (和章程一起发,
``_THINGS_ALONG``), a relation, an office, a place (陪孙子去, 和单位一起来, 和江苏老乡一起).
The name is never empty: 女儿陪来的, 老伴陪去医院了, 替交了医保费 and 和一起 raised (a
TypeError, an IndexError) until redteam108, failing the write, the log line or the dead
letter that scrubbed them.
Since redteam108 also after 陪着, a space or an emoji, before 散步 / 聊 / 吃饭 / 买 / 下楼 ... and
一块 / 一道, and each of a list before 一起 (和钱惠英、汪德胜一起来)."""
_ALONG_PART = re.compile("[^、，,和]+")
_ANY_TOGETHER = re.compile("一[起同块道]")
_THINGS_ALONG = ("章程", "包裹", "毛毯", "车票", "钱款", "钱包", "方案", "文件", "房本", "房租",
                 "金卡", "费用", "申请", "程序", "简历", "史料", "蓝印", "居住")
_COUPLE = re.compile(_SPEAKER_OPENS + r"(?P<n>" + _NAME + r")(?=夫妇|夫妻|两口子|老两口|他妈|他爸|"
                     r"她妈|她爸|他老婆|她老公|他媳妇|他儿子|她儿子|他女儿|她女儿|他老伴|她老伴|"
                     r"[他她](?:姐|哥|弟|妹)|爱人|老公|老婆)")
"""A name opening a clause before the couple or the kin it heads (张建国他妈来办, 张建国夫妇来过,
刘志刚两口子): kept until scrub53 (only ``RELATIVES`` were read right after a name). Not who
they are or where from (房东夫妇, 温州两口子, 农民工夫妇), nor what kind of couple
(金婚夫妇, 丁克夫妇, 高知夫妇: ``_COUPLE_KINDS``). Since redteam108 also a sibling, 爱人, 老公 /
老婆 (俞海涛他姐来办, 夏秋菊老公来过, 张建国爱人来办)."""
_ANY_COUPLE = re.compile("[夫两老他她爱](?:妇|妻|口子|两口|妈|爸|老婆|老公|媳妇|儿子|女儿|老伴"
                         "|姐|哥|弟|妹|人)")
"""What ``_COUPLE`` needs, a search that opens with a character class (one scan of the text)."""
_COUPLE_KINDS = ("金婚", "丁克", "高知", "高龄", "常年", "华侨", "双职", "伍军")
_BRACKETED = re.compile(
    r"[【「『〔〖](?P<n>" + _NAME + r")(?=[】」』〕〗](?P<d>" + _GAP + _TIME_BETWEEN + _SPEAKER_DOES
    + r")?)|[“\"'‘\[(《](?P<q>" + _NAME + r")(?=[”\"'’\])》]" + _GAP + _TIME_BETWEEN
    + _SPEAKER_DOES + r")|[“\"](?P<a>" + _NAME + r")(?=[”\"][。；！？.;!?\s]*$)")
"""A name a clerk sets in 【】 / 「」 / 『』, alone or before what the person came for
(【张建国】来办医保, 「王秀英」), and in quotes or [] before it (“张建国”来办): kept
until scrub53 (only “” / 「」 before a verb of speech, ``_QUOTED_SPEAKER``). Alone, only a
whole name of three characters that ends as no thing's name ends (``_THING_END``:
【连心桥】, 「金点子」, 「安心码」 are a heading's or a scheme's, 【简报】 two characters).
Since redteam108 also 〔〕 / 〖〗 as 【】, and ( ) before what the person did ((汤志勇)来过)."""
_THING_END = frozenset("码卡证子桥匙费款单表金站园城路街区组队群会馆店所院局委处科厅部室楼"
                       "房屋险病症药车票包书报刊节日周月年法规例制度事宜点线网苑坊弄里村镇"
                       "乡县市省湾港岛山河湖计划案油米面茶酒宝贝星光家堂坛台亭阁轩斋厂行社"
                       "团班级校圈帮链架柜")
_ANY_NUMBERED = re.compile(r"\d[室号床]" + _SURNAME_FIRST)
_ANY_BRACKET = re.compile("[【「『〔〖“\"'‘\\[(《]")
_CLOSING_LABEL = re.compile(r"(?:核实|确认|提交|递交|办理人?|受理|备注|登记|交接人?|对象|退回"
                            r"|退还)$")
_CLOSING_REACHED = re.compile(
    r"(?:回访|联系|通知|告知|转告|陪同|接待|来访|来电|来人|到场|代办|经办|来办|咨询|求助|投诉|"
    r"反映|走访|探望|看望|收|交|领取|签收|签字|送达)$")
_CLOSING_NAME = re.compile(r"(?P<n>" + _NAME + r")(?=[。；！？.;!?\s）)" + _EMOJI + r"]*$"
                           r"|[。；！？;!?\n，," + _EMOJI + "])")
_CAME_IN_CLAUSE = re.compile(r"(?:来(?:办|交|领|补|咨询|办理)?[\u4e00-\u9fff]{0,4}|来电|来访|来过"
                             r"|到场|签字|签收|代办|陪同|接待|经办|联系|回访)的$")
_SAID_IN_CLAUSE = re.compile("[说讲问要缺报想求]")
_CLAUSE_START = re.compile(r"[，。；！？,.;!?\n]")
_CLOSING_AT = re.compile("[：:∶]|的是")
_SURNAME_FIRSTS = frozenset(_SURNAME_FIRST[1:-1])
_SPACES = frozenset(" \t\r\n")
"""A note's last words naming whom a thing was taken from or who was reached (材料已收：张建国,
经办人回访：王秀英, 来办医保的是张建国): kept until scrub53, nothing after the name (or a
clause after a comma: 经办人回访：王秀英，满意).
After a colon whose label ends in a check (确认, 核实, 受理 ...: a whole name of three
characters) or a reaching or a handing-in (回访, 联系, 来访, 收, 交, 签收 ...: two too), and
after 的是 when the clause says who came or signed (来办医保的是张建国; not 来电说的是方言); not
a thing (已确认：高风险, 已领：米面油, ``_THING_END``),
a relation, an office, a place, a day.
Since redteam108 also with the name on the next line or after a space (来访：\n邱志华), after a
ratio colon (备注∶), with an emoji after it (已收：侯建新🙏), and after 备注 / 登记 / 交接 /
对象 / 退回 (a whole name of three characters: 备注：张建国, 走访对象：武建设)."""
_DOTTED = re.compile(r"(?P<n>[\u4e00-\u9fff]{2,6}(?: ?[·.] ?[\u4e00-\u9fff]{2,6}?){1,3})"
                     r"(?=[^\u4e00-\u9fff]|$|" + _TIME_BETWEEN + " ?" + _SPEAKER_DOES
                     + r"|[的和与、等也都又已在要想去到])")
_BEFORE_A_DOTTED = ("已联系", "联系", "通知", "居民", "申请人", "住户", "家属", "今天", "昨天",
                    "上午", "下午", "晚上", "刚才", "听说", "患者", "老人", "陪同", "陪", "替",
                    "和", "跟",
                    "与", "给", "请", "由", "让", "找", "叫", "帮", "代", "为", "向", "对", "是",
                    "经")
"""What a note writes right before a dotted name, glued to it (今天买买提·艾力来办): not the
name's."""
_TRANSLITERATED = frozenset("阿卜杜拉买提艾力热合曼吐尔逊依古丽努穆罕默德亚森玉素甫麦吾斯帕迪巴特"
                            "扎西次仁卓玛娜莎尼孜汗别克哈萨乌兹苏坦图达格桑布顿珠旺堆"
                            # a Western name so written (约翰·史密斯, 玛丽·琼斯: scrub55)
                            "翰密汤姆杰露彼得琼詹乔治凯琳迈泰勒威廉")
"""A name joined by a middle dot, as Uyghur, Kazakh, Tibetan and other names are written in
Chinese characters (买买提·艾力来办, 阿卜杜拉·买买提): kept until scrub53 unless on file
(``known_person``). Two characters or more a part, at least two of them sounds such names are
written with (``_TRANSLITERATED``), so a heading's words joined by a dot stay (文明·和谐,
上海·浦东, 党建·引领), and a book's chapter in 《》. Since redteam108 also with a full stop for
the dot (伊力哈木．托合提, 伊力哈木.托合提: half of each part's characters such sounds, so a
sentence's full stop typed between two runs stays), and not places joined so
(阿克苏·库尔勒来的, ``_DOTTED_PLACES``)."""
_CJK_DOT = re.compile(r"[\u4e00-\u9fff] ?\. ?[\u4e00-\u9fff]")
_DOTTED_PLACES = ("阿克苏", "库尔勒", "喀什", "和田", "伊犁", "伊宁", "哈密", "吐鲁番",
                  "克拉玛依", "阿勒泰", "塔城", "博乐", "昌吉", "乌鲁木齐", "石河子", "阿图什",
                  "奎屯", "阿拉尔", "图木舒克", "霍尔果斯", "喀纳斯", "巴音郭楞", "克孜勒苏",
                  "拉萨", "日喀则", "林芝", "昌都", "山南", "那曲", "格尔木", "德令哈", "玉树",
                  "阿坝", "甘孜", "呼和浩特", "鄂尔多斯", "包头", "乌兰察布", "锡林郭勒", "阿拉善")
_NAME_LIST = re.compile(r"(?P<l>" + _NAME + r"(?:(?:[，,、；;/和]|\r?\n)" + _NAME + r"){1,7})"
                        r"(?=[。；;！!？?，,\r\n]|$)")
"""Three or more whole names listed with commas and nothing else in the clause (张建国,王秀英,
刘志刚; 交接：王芳、李强、张伟): kept until scrub53 (a list was read only before what they did);
every part must be a name (周一，周三，周五 and 高温，严寒，雷雨 stay whole). Since redteam108 also
parted by ；, / or lines (殷永红；柴国华；严淑芬, a name a line), 和 before the last
(雷鸣远、钱惠英和汪德胜), and a list before a comma (田小燕，樊立新，覃秀兰，材料都齐了). Since
scrub55 also two, when both are whole names of three characters parted by a comma, a 、 or
a ；and close the sentence (邱志华,廖美玲; not 王芳，李强 nor 张建国，王秀英，材料都齐了:
``_listed``)."""
_LIST_PART = re.compile(r"[^，,、；;/和\r\n]+")
_TWO_NAMES_END = re.compile(r"[ \t]*(?:[。；;！!？?\r\n]|$)")
_ONE_LIST_MARK = re.compile(r"[，,、；;](?=" + _SURNAME_FIRST
                            + r"[\u4e00-\u9fff]{1,3}[ \t]*(?:[。；;！!？?\r\n]|$))")
_LIST_OPENS = re.compile("[：:\n。；;]")
_TWO_LIST_MARKS = re.compile("[，,、；;/\n和][^，,、；;/\n和]*[，,、；;/\n和]")
"""What ``_listed`` needs, two marks that part a list: one scan of the text (or, for two
names alone, ``_ONE_LIST_MARK``: a mark between a name's end and a surname)."""
_AFTER_A_NUMBER = re.compile(r"[ \t]?(?P<n>" + _NAME + r")" + _CLAUSE_END)
_AFTER_A_PHONE = ("谢谢", "多谢", "关机", "停机", "常用")
"""What a note says right after a number that begins with a surname (请回拨139 1234 5678谢谢,
13812345678关机)."""
"""A name glued after a phone's or an ID number's digits with nothing after it (13912345678王秀英):
the number went and the name stayed until scrub53. Asked right after each phone or ID number
found (``name_after_a_number``), so a text without one pays nothing (a look behind for the
digits was tried at every character of every text with a digit, +2 % CPU a text)."""


def _a_persons(n: str) -> bool:
    """What every scrub53 rule asks of its find, as ``_SPEAKER``'s are asked: no role, kin,
    office, place, day, errand or thing."""
    return (is_name(n) and n[-1] != "人" and n[-1] not in _TOWN and n not in _UNITS_REACHED
            and n[1:] not in _KIN_WORDS and n not in _WEEKDAYS
            and not n.startswith(_NOT_SPEAKERS + _FROM_PLACES))


def name_after_a_number(text: str, end: int) -> Iterator[tuple[int, int, str]]:
    """A name glued right after the phone or ID number that ends at ``end`` (``rule_spans``
    asks it of each it finds: 13912345678王秀英)."""
    m = _AFTER_A_NUMBER.match(text, end)
    if m is not None and _a_persons(m.group("n")) and not m.group("n").startswith(_AFTER_A_PHONE):
        yield m.start("n"), m.end("n"), REDACTED_NAME


_BEFORE_A_NUMBER = re.compile(r"(?:^|(?<=[^\u4e00-\u9fff]))(?P<n>" + _NAME + r")[ \t]?$")
_BEFORE_A_COUNT = frozenset("次到至为是有码")
"""How a word before a number ends (高频次, 周一到, 编码): no name's end there."""
_BEFORE_A_PHONE = ("常用", "备用", "固话", "手机", "电话", "座机", "号码", "联系", "本人", "家属")


def name_before_a_number(text: str, start: int) -> Iterator[tuple[int, int, str]]:
    """A whole name glued right before the phone or ID number that starts at ``start``, opening
    its clause (常桂香13955556666，低保复核: the number went, the name stayed until scrub55);
    ``rule_spans`` asks it of each it finds. Not what a note says of a number (常用, 备用)."""
    m = _BEFORE_A_NUMBER.search(text, max(0, start - 6), start)
    if m is not None and len(n := m.group("n")) >= 3 and _a_persons(n) \
            and n[-1] not in _THING_END and n[-1] not in _BEFORE_A_COUNT \
            and not n.startswith(_BEFORE_A_PHONE) and n[:2] not in _WEEKDAYS:
        yield m.start("n"), m.end("n"), REDACTED_NAME


_NUMBERED = re.compile(r"(?<=\d[室号床])(?P<n>" + _NAME + r")(?=[、，,；;][ \t]*\d+[室号床]"
                       r"|[ \t]*(?:[。；;！!？?\r\n]|$))")
"""A whole name after a room's or a number's 号 in a list, or closing the note
(1203室武建设、1204室乔玉兰都反映漏水, 2号贺国平，3号赖文杰): kept until scrub55 (only one before
what the person did went, 1203室张建国来办)."""


_AILMENT_END = frozenset("炎障醇瘤癌疹疮痛伤塞")
"""How an ailment or a drug ends, written after a bed's number (3床白内障。, 5床关节炎。,
13床甘露醇: scrub55 read each as a name, redteam115)."""


def _numbered(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _NUMBERED.finditer(text):
        n = m.group("n")
        if len(n) >= 3 and _a_persons(n) and n[-1] not in _THING_END \
                and n[-1] not in _AILMENT_END:
            yield m.start("n"), m.end("n"), REDACTED_NAME


def _along(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _ALONG.finditer(text):
        g = "n" if m.group("n") else "w"
        for part in _ALONG_PART.finditer(text, m.start(g), m.end(g)):  # 和钱惠英、汪德胜一起
            n = part.group()
            if _a_persons(n) and "一" not in n and "起" not in n \
                    and not n.startswith(_THINGS_ALONG):
                yield part.start(), part.end(), REDACTED_NAME


def _couples(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _COUPLE.finditer(text):
        n = m.group("n")
        if _a_persons(n) and not n.startswith(_COUPLE_KINDS):
            yield m.start("n"), m.end("n"), REDACTED_NAME


_A_BOOK_SAYS = re.compile(r"[ \t]*(?:里|中|上)?(?:说|讲|称|写|提到|指出|认为|规定|要求|表示)")
"""What a book, a paper or a policy in 《》 says (《孔乙己》说, 《史记》里说, 《白皮书》指出)."""


def _titled(text: str, m: re.Match[str], n: str) -> bool:
    """Whether the name in 《》 is a person's: three characters, no thing's end, before what a
    person did, not what a title says (scrub55 took 《白皮书》说, 《孔乙己》说, 《史记》说 for
    a name: redteam115)."""
    return (text[m.start("q") - 1] != "《"
            or (len(n) == 3 and n[-1] not in _THING_END
                and not _A_BOOK_SAYS.match(text, m.end("q") + 1)))


def _bracketed(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _BRACKETED.finditer(text):
        g = "n" if m.group("n") else "q" if m.group("q") else "a"
        n = m.group(g)
        if _a_persons(n) and (_titled(text, m, n) if g == "q"
                              else (g == "n" and m.group("d") is not None)
                              or (len(n) == 3 and n[-1] not in _THING_END)):
            yield m.start(g), m.end(g), REDACTED_NAME


def _dotted(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _DOTTED.finditer(text):
        start, n = m.start("n"), m.group("n")
        dot = "·" if "·" in n else "."
        while (before := next((w for w in _BEFORE_A_DOTTED if n.startswith(w)), None)) \
                and n.index(dot) - len(before) >= 2:
            start, n = start + len(before), n[len(before):]
        if dot == "." and not all(2 * sum(c in _TRANSLITERATED for c in part) >= len(part.strip())
                                  for part in n.split(".")):
            continue  # 材料齐了.阿依古丽来过: a sentence's full stop
        if sum(c in _TRANSLITERATED for c in n) >= 2 \
                and "《" not in text[max(0, start - 12):start] \
                and not any(place in n for place in _DOTTED_PLACES):
            yield start, m.end("n"), REDACTED_NAME


_WHOLE_COMPOUND = ("欧阳", "司马", "上官", "诸葛", "皇甫", "尉迟", "公孙", "慕容", "令狐", "端木",
                   "宇文", "司徒", "夏侯")
"""Compound surnames that open no everyday word (not 东方, 西门, 长孙: 东方航空, 长孙女)."""


def _whole_name(n: str) -> bool:
    """A whole name, as two alone in a list must be: three characters, or four after a compound
    surname (欧阳娜娜，司马南: kept until scrub56, a name of four was no whole one)."""
    return len(n) == 3 or (len(n) == 4 and n.startswith(_WHOLE_COMPOUND))


_BESIDE_AFTER = re.compile(r"[，,、；;和及与/](?P<n>" + _NAME + r")(?=[，,、；;。！？!?\s]|$)")
_BESIDE_BEFORE = re.compile(r"(?:^|(?<=[^\u4e00-\u9fff]))(?P<n>" + _NAME + r")[，,、；;和及与/]$")
_PROFILE_END = frozenset("压瘫户籍薯芽汁罐帽沪僵堵水口门") | _AILMENT_END
"""How what a note lists after a resident's name ends (王秀英，高血压，偏瘫; 常住户; 江苏籍), and
a thing's end no given name has (马铃薯, 黄豆芽, 甘蔗汁, 易拉罐, 毛线帽, 江浙沪, 管道堵, 白开水,
西门口, 石库门: redteam121 found each taken for a name beside hers or on a numbered line)."""
_LISTED_WORDS = frozenset(("金银花", "蒲公英", "席梦思", "东方红"))
"""Things listed beside a resident's name or on a numbered line that end as a given name may
(花, 英, 思, 红): redteam121."""


def listed_beside(text: str, start: int, end: int) -> Iterator[tuple[int, int, str]]:
    """A whole name listed right before or after the name of the resident on file, found at
    ``start``..``end`` by ``KnownPerson.spans`` (``redact`` asks it of each): 张建国，王秀英，材料都
    齐了 kept 张建国 until scrub56 (two names alone must close their clause: ``_listed``), though
    a name beside the resident's in a list is a person's."""
    for m in (_BESIDE_BEFORE.search(text, max(0, start - 6), start),
              _BESIDE_AFTER.match(text, end)):
        if m is not None and _whole_name(n := m.group("n")) and _a_persons(n) \
                and n[-1] not in _THING_END and n[-1] not in _PROFILE_END \
                and n not in _LISTED_WORDS:
            yield m.start("n"), m.end("n"), REDACTED_NAME


_LINE_NUMBER = r"(?:\d{1,2}[.、．)）]|[(（]\d{1,2}[)）]|[一二三四五六七八九十]{1,2}、)"
"""How a clerk numbers a line: 1. / 1、 / 1）, and since redteam121 (1) / （1） / 一、."""
_NUMBERED_LINE = re.compile(r"(?m)^[ \t]*" + _LINE_NUMBER + r"[ \t]*(?P<n>" + _NAME
                            + r")(?=[ \t]+[^\s\d]|[ \t]*(?:\r?\n|$))")
"""A whole name opening a numbered line, alone or with a space and what the person came for
after it (1. 易春梅 医保\n2. 常桂香 低保\n3. 武建设 养老, 待回访：\n1. 顾建华\n2. 钱美娟): each
went only when its errand was one the rules know (医保, 低保); the rest were kept until
scrub56."""
_ANY_NUMBERED_LINE = re.compile(r"(?m)^[ \t]*" + _LINE_NUMBER + r"[ \t]*" + _SURNAME_FIRST)
_ALONE_ON_A_LINE = re.compile(r"(?m)^[ \t]*(?P<n>" + _NAME + r")[ \t]*\r?\n[ \t]*(?="
                              + _SPEAKER_DOES + ")")
"""A whole name alone on its line before the line that says what the person did (谭永康\n来办
低保: kept until scrub56, ``_GAP`` is spaces, tabs and emoji, no line)."""


def _by_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """``_NUMBERED_LINE``'s and ``_ALONE_ON_A_LINE``'s finds, asked of a text with a line end
    or one that opens numbered (a search of every text for a numbered line cost ~3 % of it)."""
    lines = "\n" in text
    if _ANY_NUMBERED_LINE.search(text) if lines else _ANY_NUMBERED_LINE.match(text):
        found: Iterator[re.Match[str]] = _NUMBERED_LINE.finditer(text)
        if lines:
            found = itertools.chain(found, _ALONE_ON_A_LINE.finditer(text))
    elif lines:
        found = _ALONE_ON_A_LINE.finditer(text)
    else:
        return
    for m in found:
        n = m.group("n")
        if _whole_name(n) and _a_persons(n) and n[-1] not in _THING_END \
                and n[-1] not in _PROFILE_END and n not in _LISTED_WORDS \
                and n[:2] not in _WEEKDAYS:  # 1. 周一到 周五: redteam121
            yield m.start("n"), m.end("n"), REDACTED_NAME


def _listed(text: str) -> Iterator[tuple[int, int, str]]:
    listed = 0  # where the last list found ends: its own ；and lines open no other
    for at in itertools.chain((0,), (o.end() for o in _LIST_OPENS.finditer(text))):
        if at < listed:
            continue
        m = _NAME_LIST.match(text, at)
        if m is None:
            continue
        listed = m.end()
        parts = list(_LIST_PART.finditer(text, m.start("l"), m.end("l")))
        if len(parts) == 2 and not (_TWO_NAMES_END.match(text, m.end())
                                    and all(_whole_name(p.group()) for p in parts)
                                    and text[parts[0].end()] in "，,、；;"):
            continue  # 邱志华,廖美玲; not 高温，严寒 nor 张建国，王秀英，材料都齐了
        if all(_a_persons(n := p.group()) and n[-1] not in _THING_END for p in parts):
            for p in parts:
                yield p.start(), p.end(), REDACTED_NAME


def _closing(text: str) -> Iterator[tuple[int, int, str]]:
    """``_CLOSING_NAME``'s finds after a colon or 的是 (see there)."""
    for c in _CLOSING_AT.finditer(text):
        at = c.end() - 1
        name_at = at + 1
        while name_at < at + 4 and text[name_at:name_at + 1] in _SPACES:  # 来访：\n邱志华
            name_at += 1
        if text[name_at:name_at + 1] not in _SURNAME_FIRSTS:
            continue
        m = _CLOSING_NAME.match(text, name_at)
        if m is None or not _a_persons(n := m.group("n")) or n[-1] in _THING_END:
            continue
        window = max(0, at - 16)  # what the labels' patterns read, no more (a text of colons)
        opened = max((o.end() for o in _CLAUSE_START.finditer(text, window, at)), default=window)
        label = text[opened:at]
        if text[at] in "：:∶":
            if not (_CLOSING_REACHED.search(label)
                    or (len(n) >= 3 and _CLOSING_LABEL.search(label))):
                continue
        elif not _CAME_IN_CLAUSE.search(label) or _SAID_IN_CLAUSE.search(label[-7:]):
            continue  # 来办医保的是张建国; not 来电说的是方言
        yield m.start("n"), m.end("n"), REDACTED_NAME


_KIN_WORDS = frozenset((*RELATIVES, "叔叔", "阿姨", "婶婶", "伯伯", "舅舅", "姥姥", "姥爷"))
_ENGLISH_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Madam|Mdm|Auntie|Aunty|Uncle|Grandma|"
                            r"Grandpa)\.?\s+[A-Z][a-z]+(?:[ \-][A-Z][a-z]+)?")
_ENGLISH_PROFILED = re.compile(r"\b(?P<n>[A-Z][a-z]+\s+[A-Z][a-z]+),\s*(?:male|female|M|F)\b")
_ENGLISH_NOT_NAMES = frozenset((
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "July September October November December Status Services Service Center "
    "Centre Window Office Affairs Committee Has Is Was Will Did Said Called Beneficiary Form "
    "Card Number Records Record Follow Case Hotline Desk Counter Team").split())
"""Capitalised words after resident / applicant / Contact: that are no name (the resident
Monday morning, Applicant Status, Resident Services Center, Contact: Window 5)."""
_ENGLISH_INTRODUCED = re.compile(r"\b(?i:name is|name:|named|resident|applicant|contact:|"
                                 r"contact person:?)\s+"
                                 r"(?P<n>[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2})")


_DOTTED_INITIALS = re.compile(r"(?<![A-Za-z.])(?:[A-Z]\.\s?){1,2}[A-Z]\.(?![A-Za-z])")
"""A name's initials with a full stop after each (W.X.Y., L. J. G.), as a clerk shortens a
name or a form pastes it; not the abbreviations a note has (U.S.A., P.R.C., A.M.): kept until
scrub47."""
_NOT_INITIALS = frozenset((
    "U.S.", "U.S.A.", "U.K.", "P.R.C.", "R.O.C.", "H.K.", "S.A.R.", "A.M.", "P.M.", "E.G.",
    "I.E.", "N.B.", "P.S.", "I.D.", "U.N.", "E.U.", "D.C.", "B.C.", "A.D.", "R.I.P.", "O.K.",
    "Q.A.", "C.V.", "V.S.", "P.O.",
    # a Hong Kong justice of the peace who witnesses a signature, cities and degrees
    # (redteam69: 需要J.P.见证签名, 儿子在L.A.读书)
    "J.P.", "L.A.", "N.Y.", "N.Y.C.", "S.F.", "M.D.", "B.A.", "M.A.", "B.S.", "M.S.", "R.N.",
    "D.I.Y."))
_INITIALED = re.compile(_SURNAME + r"(?:[A-Z]{1,3}|[a-z]{1,3}|(?:[A-Z]\.){1,3})(?![A-Za-z0-9])")
"""A surname and the given name's initials (王XY, 张JG, 陈X女士, 刘Z.Q.), where a person's
doing, a form of address or a clause's end follows or a word that introduces or reaches one
comes before (``_initialed``); kept until scrub47; in lower case too, as the IME leaves them
(刘zq, 陈xh女士, 张jg说: kept until redteam69). Not an acronym after a word ending in a surname
(查CT, 高DPI, 金VIP, 关app, 重65kg: ``_ACRONYMS``); 王某某 and 王XX, a name already left out,
stay."""
_ACRONYMS = frozenset((
    "CT", "DPI", "VIP", "APP", "PDF", "ID", "QQ", "IC", "PC", "TV", "AI", "OK", "BUG", "IT", "PPT",
    "CEO", "HR", "GPS", "USB", "WIFI", "ATM", "POS", "SIM", "DNA", "MRI", "ICU", "KTV", "SUV",
    "ETC", "EMS", "SF", "NFC", "UFO", "GDP", "CPI", "VR", "AR", "LED", "PVC", "MV", "DJ", "BMI",
    # the tests a screening or a check-up orders after 查 (两癌筛查：查HPV和TCT, 查PSA, 查HCG:
    # redteam69 found them taken for a name), and a sum's currency after 万 (1万HKD)
    "HPV", "TCT", "PSA", "HCG", "CEA", "AFP", "TSH", "ECG", "EEG", "EKG", "PET", "HIV", "HBV",
    "HCV", "CRP", "ALT", "AST", "BNP", "DR", "CTA", "MRA", "PCR", "RMB", "CNY", "HKD", "USD",
    "MOP", "TWD", "JPY", "KRW", "EUR", "GBP", "AUD", "CAD", "SGD", "MPF",
    # units and files typed in lower case, and a name masked (王xx, like 王某某)
    "KG", "CM", "MM", "ML", "KM", "MG", "JPG", "PNG", "DOC", "XLS", "ZIP", "APK", "XX", "XXX"))
_AFTER_INITIALS = re.compile(r"\s?(?:" + _HONORIFIC + "|" + "|".join(OFFICE_POSTS) + "|"
                             + _NICK_NEXT + "|" + _DEEDS + ")")
_BEFORE_INITIALS = re.compile(r"(?:" + _INTRODUCERS + "|" + "|".join(_REACHING) + r"|[跟给请叫由])"
                              r"(?:是|为|:|：|\s)*$")


_HAN_CAPITAL = re.compile(r"[A-Za-z](?<=[\u4e00-\u9fff].)")
_TWO_SYLLABLES = re.compile(r"\s[A-Z][a-z]{1,5}[ \-][A-Za-z]")


_COUNTED_SURNAMES = frozenset("万张项包位间户米")
"""Surnames that are also what a number counts (1万HKD, 3张A4 ...): after a digit, not a name,
unless after seven digits or more (a phone, an ID number). Any other after a digit is
(13812345678王X: the phone went and 王X stayed, and went only when
scrubbed again, at export: redteam108)."""


def _initialed(text: str, m: re.Match[str]) -> bool:
    if m.group()[0] in "于向" and _HAN.match(text, max(0, m.start() - 1)) and m.start():
        return False  # 属于A。, 高于B，转向C: a preposition, no surname
    if m.start() and text[m.start() - 1].isdigit() and m.group()[0] in _COUNTED_SURNAMES \
            and not text[max(0, m.start() - 7):m.start()].isdigit():
        return False  # 1万HKD: a number's 万, no surname; 13812345678王X is (redteam108)
    letters = m.group()[1:].replace(".", "") if m.group()[0] in _SINGLE_SURNAMES \
        else m.group()[2:].replace(".", "")
    return letters.upper() not in _ACRONYMS and (
        _AFTER_INITIALS.match(text, m.end()) is not None
        or _BEFORE_INITIALS.search(text, max(0, m.start() - 8), m.start()) is not None)


_HK_SURNAMES = ("Chan Wong Lee Cheung Lau Ng Ho Leung Lam Tsang Yeung Chow Tang Lai Kwok Cheng "
                "Fung Yip Tse Mak Choi Chu Lo Law Lui Siu Tam Tong Wu Hui Kwan Ko Kong Poon "
                "Pang Yuen Mok Shek Sze Tsui Yau Yu Chung Chiu Kam Luk Tsoi Au Fong Hung Kwong "
                "Chau Cheuk Chong Ip Kan Ku Kwai Li Liu Lok Man Ma Mui So Sin Suen To Wan Wai Yim "
                "Yiu Yung").split()
_CANTONESE_SYLLABLES = frozenset((
    "ah bik bing bo chai chak chan chau che cheong cheuk cheung chi chik chin ching chit chiu "
    "choi chong chu chuen chuk chun chung fai fan fat fei fo fok fong fu fuk fun fung ha hai "
    "hang hei hen hin hing ho hoi hok hon hong hou hui hung ip ka kai kam kan kar kau kei "
    "keung ki kin king kit kiu ko kok kon kong ku kuen kui kun kwai kwan kwok kwong lai lam "
    "lan lap lau lee lei leung li lik lim lin ling lit liu lo lok long lui luk lun lung ma "
    "mak man mei mi min ming miu mo mok mui mun nam ng nga ngai ngan ngo nin ning oi on pak "
    "pan pang "
    "pik ping po pok pong pui pun sai sam san sang sau se sek shan shek sheung shing shu shuk "
    "shun si sik sin sing siu so suen suet sui sum sun sung sze tai tak tam tat tik tim tin "
    "ting tit to tong tsang tse tsui tsun tsz tung wa wah wai wan wang wing wo wong wu wun "
    "ya yam yan yau yee yeung yi yik yim yin ying yip yiu yu yuen yuet yuk yung").split())
_HK_NAME = re.compile(r"(?<![A-Za-z])(?:" + "|".join(_HK_SURNAMES) + "|" + "|".join(
    n.upper() for n in _HK_SURNAMES) + r"),?\s(?P<a>[A-Z][a-z]{1,5})[ \-](?P<b>[A-Za-z][a-z]{1,5})"
    r"(?![A-Za-z])(?![ \-](?:Road|Rd|Street|St|Avenue|Estate|Court|Village|Station|Centre|Center|"
    r"Building|House|Garden|Gardens|Park|Hospital|School|College|Tower|Plaza|Mansion)\b)")
"""A Hong Kong name as its ID card and letters romanise it, surname first (Chan Tai Man, CHAN
Tai-man, Wong Siu Ming, Cheung Ka Yan): a surname, then two syllables of Cantonese for the
given name; kept until scrub47 (Mr Chan went). Not a district or a place of Hong Kong named
alike (Wong Tai Sin, Ho Man Tin, Ma On Shan: ``_HK_PLACES``), nor a road or a building."""
_HK_PLACES = frozenset(("wong tai sin", "ho man tin", "yau ma tei", "ma on shan", "wu kai sha",
                        "siu lek yuen", "lok ma chau", "man kam to", "wong chuk hang",
                        "shek kip mei", "ma tau wai", "ma liu shui", "lai chi kok", "tai wai",
                        "to kwa wan", "kwun tong", "sham shui po", "tsim sha tsui",
                        "lam tin", "so uk", "shek mun", "lo wu", "tai koo", "ma wan",
                        "chung hom kok", "siu sai wan", "wan chai", "mong kok", "tin shui wai",
                        "tai po", "ho chung", "lam tsuen", "au tau", "kam tin",
                        # redteam69: a district of the Island, markets of the New Territories,
                        # a village of Tung Chung
                        "shek tong tsui", "yuen long kau", "shek wu hui", "ma wan chung"))


def _hk_name(m: re.Match[str]) -> bool:
    return m.group("a").lower() in _CANTONESE_SYLLABLES \
        and m.group("b").lower() in _CANTONESE_SYLLABLES \
        and " ".join(re.split(r",?[ \-]", m.group().lower())) not in _HK_PLACES


_ROMAN_SURNAMES = sorted({*_HK_SURNAMES, *(
    # Taiwan's (Wade-Giles, as its passports write them), Korea's, and the mainland's pinyin
    "Chen Lin Huang Chang Wang Wu Liu Tsai Yang Hsu Cheng Hsieh Kuo Hung Tseng Chiu Liao Lai "
    "Chou Yeh Su Chuang Lu Chiang Ho Lo Kao Pan Chien Chung Peng Fan Tu Tsao Fu Shih Hsiao Yu "
    "Yen Wei Tang Hou Wen Chao Chu Chin Sung Lien Ma Ko Hsueh Tung Shen Yao Yuan Jen Pai Hu "
    "Kim Lee Yi Park Pak Choi Choe Jung Jeong Kang Cho Jo Yoon Yun Jang Lim Im Han Oh Seo Suh "
    "Shin Kwon Hwang Ahn An Song Yoo Ryu Hong Jeon Jun Go Moon Mun Son Sohn Bae Baek Heo Nam Noh "
    "Roh Kwak Sung Cha Joo Woo Min Na Jin Ji Chae Won Bang Gong Hyun Byun Seok "
    "Zhang Li Zhao Zhou Xu Sun Zhu Gao He Guo Luo Liang Zheng Xie Feng Dong Xiao Cao Deng Zeng "
    "Lv Jiang Cai Jia Ding Xue Ye Yan Du Dai Xia Zhong Tian Ren Fang Shi Tan Zou Xiong Jin "
    "Hao Kong Bai Cui Kang Mao Qiu Qin Gu Shao Meng Long Wan Duan Lei Qian Yin Qiao Gong"
    ).split()}, key=len, reverse=True)
_ROMAN_SURNAME = "(?:" + "|".join(_ROMAN_SURNAMES + [n.upper() for n in _ROMAN_SURNAMES]) + ")"
_PLACE_AFTER = (r"(?![ \-](?:Road|Rd|Street|St|Avenue|Estate|Court|Village|Station|Centre|Center|"
                r"Building|House|Garden|Gardens|Park|Hospital|School|College|Tower|Plaza|"
                r"Mansion)\b)")
_HYPHENED_NAME = re.compile(r"(?<![A-Za-z])" + _ROMAN_SURNAME + r",?\s(?P<a>[A-Z][A-Za-z]{0,5})-"
                            r"(?P<b>[A-Za-z][A-Za-z]{0,5})(?![A-Za-z\-])" + _PLACE_AFTER)
_SYLLABLE = re.compile(r"[bcdfghjklmnpqrstvwxyz]{0,3}[aeiouy]{1,4}(?:ng|[nmkptlrh])?|t?sz|ng",
                       re.IGNORECASE)
"""A syllable as Korea, Taiwan, Hong Kong or the mainland romanise one (min, soo, hyun, chih,
hsiung, tai, kwok, tsz, xiu, zhuang): not an English word's parts (Drop-off, Kong-based,
Follow-up, Long-term, Self-service)."""
"""A name romanised with a hyphen between its given name's syllables, surname first: Korea's
(Kim Min-su, Lee Soo-jin), Taiwan's (Chen Chih-ming, Lin Mei-ling, CHEN CHIH-MING), Hong
Kong's (Chan Tai-man): the hyphen between two syllables marks a given name (redteam69 found the
Korean and Taiwanese ones kept, the Hong Kong rule knowing only Cantonese's syllables). Not
an English word so written (``_SYLLABLE``: Hong Kong-based, Car Park Drop-off), a place of
Hong Kong's (``_HK_PLACES``), a road or a building."""
_WESTERN_GIVEN = (
    "Peter Paul John David Michael Kelvin Kenneth Eric Alan Tony Jacky Jackie Andy Alex Ben Billy "
    "Calvin Danny Edmond Edward Frankie Gary George Henry Jason Jimmy Johnny Ken Kevin Leo Louis "
    "Martin Matthew Patrick Raymond Ricky Sam Simon Stephen Terry Thomas Tommy Vincent William "
    "Wilson Wing Dennis Derek Felix Gordon Ivan Jeffrey Joseph Keith Lawrence Samuel Steven "
    "Mary Ada Amy Annie Carmen Cathy Cindy Connie Daisy Doris Eva Fiona Grace Helen Irene Ivy "
    "Jenny Joyce Karen Kitty Linda Lily Lucy Maggie Nancy Peggy Queenie Rita Sandy Shirley "
    "Stella Teresa Vivian Wendy Winnie Yvonne Alice Agnes Angela Betty Candy Cecilia Christine "
    "Coco Elaine Emily Esther Gloria Iris Jessica Joanne Josephine Judy Katherine Kelly Mandy "
    "Michelle Monica Phoebe Rebecca Rosa Sally Susan Tiffany Venus Vicky "
    # scrub48: more of those Hong Kong, Macao, Taiwan and Singapore give (Winston Chan)
    "Winston Anthony Andrew Brian Charles Chris Christopher Daniel Eddie Francis Harry Jerry "
    "Jonathan Justin Kenny Nelson Oscar Philip Richard Robert Roger Ronald Stanley Timothy "
    "Victor Wallace Benny Bobby Sammy Alvin Edwin Ernest Herman Hugo Marco "
    "Anna Bonnie Catherine Cherry Chloe Clara Debbie Emma Fanny Flora Gigi Hannah Heidi Janet "
    "Jennifer Jessie Kathy Laura Lisa Mabel Melody Natalie Olivia Pauline Polly Rachel Sarah "
    "Sophie Tracy Winky Yolanda Zoe").split()
_WESTERN_NAMED = re.compile(r"(?:" + "|".join(_WESTERN_GIVEN) + r")\s"
                            + _ROMAN_SURNAME + r"(?![A-Za-z]|\s[A-Z])")
"""An English given name before a Chinese surname, as Hong Kong and Taiwan write a name (Peter
Chan, Kelvin Lau, Mary Wong): kept until redteam69 (Mr Chan went). Only the given names listed
(no month, no verb: May, Will and Bill are left out); not a place's or a hospital's name, more
capitalised words after it (Alice Ho Miu Ling Nethersole Hospital, Sam Tung Uk Museum)."""
_TITLE_HAN = re.compile(r"(?:Mr|Mrs|Ms|Miss|Madam|Mdm|Dr)\.?\s?" + _SURNAME
                        + _GIVEN + r"{0,2}")
"""An English title before a name in Chinese characters (Madam 黄, Miss 李来过, Mr 陈说), as a
Hong Kong counter writes it: kept until redteam69."""
_SURNAME_SIR = re.compile(_SURNAME + r"(?:sir|Sir|SIR)(?![A-Za-z])")
_TWO_WORDS = re.compile(r"[A-Z][a-z]+\s[A-Z]")
"""What ``_WESTERN_NAMED`` needs (Peter Chan), a search most texts pay nothing more for."""
_LETTER_DASH = re.compile(r"[A-Za-z]-[A-Za-z]")
_SURNAME_SPACE = re.compile("[" + "".join(sorted({n[-1] for n in SURNAMES} | {"单"}))
                            + "] {1,2}[\u4e00-\u9fff]")
"""What ``_SPACED_AFTER_SURNAME`` needs (张 建国): a surname's last character, a space, a
character."""
"""Hong Kong's 黄sir, 陈Sir (a policeman, a teacher, an officer by his surname): kept until
redteam69."""
_JAPANESE_SURNAMES = (
    "佐佐木 长谷川 佐藤 铃木 高桥 田中 伊藤 渡边 渡辺 山本 中村 小林 加藤 "
    "吉田 山田 山口 松本 井上 木村 斋藤 斎藤 清水 山崎 池田 桥本 阿部 "
    "石川 山下 中岛 石井 小川 前田 冈田 藤田 后藤 近藤 村上 远藤 青木 "
    "坂本 福田 太田 西村 藤井 金子 冈本 藤原 中野 三浦 原田 中川 松田 "
    "竹内 小野 田村 中山 和田 石田 森田 上田 柴田 酒井 工藤 横山 宫崎 "
    "宫本 内田 高木 安藤 岛田 谷口 大野 丸山 今井 高田 藤本 武田 村田 "
    "上野 杉山 增田 小山 大塚 平野 菅原 久保 松井 千叶 岩崎 樱井 桜井 "
    "木下 野口 松尾 菊地 野村 新井 渡部").split()
_JAPANESE_TITLED = re.compile(
    r"(?:" + "|".join(_JAPANESE_SURNAMES) + r")"
    r"(?=\s?(?:先生|女士|小姐|太太|夫人|さん|様|さま|くん|ちゃん))"
    r"|[\u4e00-\u9fff]{2}(?=さん|さま|様|くん|ちゃん)"
    r"|[\u30a1-\u30fa\u30fc]{2,8}(?=さん|さま|様|くん|ちゃん)"
    r"|(?<![A-Za-z])[A-Z][a-z]+(?=-(?:san|sama|kun|chan)(?![A-Za-z]))")
"""A Japanese resident's surname before a form of address (佐藤女士, 铃木先生, 渡边先生的女儿: the
surname rule knew none of them, or took 边 of 渡边 alone), and any name before Japanese's own
(山田さん, 伊藤様, マリアさん, Tanaka-san): kept until redteam69."""
_KANA_TITLE = re.compile("さん|さま|様|くん|ちゃん|-san|-sama|-kun")
_JAPANESE_TITLE = re.compile("先生|女士|小姐|太太|夫人")
_ANY_JAPANESE_SURNAME = re.compile("|".join(_JAPANESE_SURNAMES))


_INITIALS_DEEDS = (r"来过|来电|来访|来窗口|来办|来了|来补|说(?!明)|称|表示|反映|告诉|本人|"
                   + _DEEDS)
_LISTED_INITIALS = (r"|[和与及、](?:[A-Z]{2,3}|[a-z]{2,3})(?![A-Za-z])(?:都|也|一起|一同)?(?:"
                    + _INITIALS_DEEDS + ")")
"""Initials listed with another's before what both did (WXY和zjg来过, wxy、LXM都来过): the
first was kept until scrub50 (the second went after 和 since then, ``_REACHED_LATIN``)."""
_INITIALS_ALONE = re.compile(
    r"(?<![A-Za-z0-9.&/\-])(?P<n>[A-Z]{2,3})(?=" + _INITIALS_DEEDS + _LISTED_INITIALS + ")")
"""A name's initials alone before what the person did (WXY来过, ZJG来电, 上午LXM来窗口): kept
until scrub48 (王XY and W.X.Y. went). Not an acronym (ICU, MRI, APP: ``_ACRONYMS``), nor one
before what is done with a thing (MRI来不及做)."""
_MORE_ACRONYMS = frozenset(("WHO", "WX", "VX", "AM", "PM", "GM", "CCTV", "NGO", "UN", "EU", "US",
                            "UK", "HK", "SOS", "FAQ", "OA", "EMS", "APP",
                            # redteam80: the offices, workers and couriers a Hong Kong or a
                            # Shanghai note names by their letters (SWD来电, MSW说, OT来过, GP说)
                            "SWD", "MSW", "SW", "OT", "PT", "ST", "HA", "HD", "GP", "RN", "EN",
                            "MO", "CSSA", "ICAC", "UPS", "DHL", "JD", "IDD"))
_ANY_CAPITALS = re.compile(r"[A-Z]{2}")
_LOWER_INITIALS = re.compile(
    r"(?<![A-Za-z0-9.&/\-_@:])(?P<n>[a-z]{2,3})(?=" + _INITIALS_DEEDS + _LISTED_INITIALS + ")")
"""Initials in lower case alone before what the person did (wxy来过, zjg说, 上午lxm来窗口), as a
clerk types them without the shift key; kept until scrub49. Not a word typed so (app, ok, pdf:
``_ACRONYMS`` in lower case), nor pinyin's pronouns and a chat's kin (ta说, mm来过:
``_NOT_LOWER_INITIALS``)."""
_NOT_LOWER_INITIALS = frozenset((
    "ta", "wo", "ni", "mm", "gg", "jj", "dd", "bb", "mz", "lz", "lp", "lg", "bf", "gf", "ps",
    "aa", "hh", "hhh", "www", "ok", "yes", "no", "and", "the", "you", "she", "him", "her",
    # a chat's words and Latin's abbreviations (lol说, emm说, eg表示), and 领导 as a chat writes
    # it (ld说: 领导说); each went as a name since scrub49 (redteam89)
    "lol", "emm", "hmm", "hi", "oh", "eg", "ie", "vs", "etc", "gov", "ld"))
_ANY_LOWER_INITIALS = re.compile(r"[a-z]{2}(?:[a-z](?![a-z])|(?![a-z]))(?=[来说称表反告本和与及、"
                                 + "".join(sorted({d[0] for d in _DEEDS.split("|")})) + "])")

_HK_ONE_SYLLABLE = re.compile(
    r"(?=[A-Z])(?<![A-Za-z])(?P<s>"
    + "|".join(n for n in _HK_SURNAMES if n not in ("To", "So", "Man", "Lo"))
    + r"),?\s(?P<a>[A-Z][a-z]{1,5})(?![A-Za-z\-]|,?\s[A-Z]|\s(?:[Ss]treet|[Rr]oad|[Ss]tation)\b)")
"""A Hong Kong name of one syllable of given name (Chan Man, Wong Ming, Lee Kit): a surname
and a syllable of Cantonese, no capitalised word after (Ho Man Tin, Cheung Sha Wan are places,
so is Kwai Fong station: ``_HK_PLACES_TWO``); kept until scrub48. Not To, So, Man, Lo (an
English sentence's first word: To Sum up)."""
_HK_PLACES_TWO = frozenset(("yau tong", "kwai fong", "kwai hing", "kwai chung", "yuen long",
                            "lai king", "lok fu", "siu hong", "wan chai", "lam tin", "lam tei",
                            "ho chung", "ma wan", "tai wai", "tai koo", "au tau", "kam tin",
                            "lam tsuen", "tsui lam", "chung hom", "shek mun", "shek kip",
                            "siu sai", "yau ma", "ma on", "lee gardens", "lai chi", "tsz wan"))

_ROMAJI_SURNAMES = (
    "Sato Suzuki Takahashi Tanaka Ito Watanabe Yamamoto Nakamura Kobayashi Kato Yoshida Yamada "
    "Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu Yamazaki Mori Abe Ikeda Hashimoto "
    "Yamashita Ishikawa Nakajima Maeda Fujita Ogawa Goto Okada Hasegawa Murakami Kondo Ishii "
    "Saito Sakamoto Endo Aoki Fujii Nishimura Fukuda Ota Miura Fujiwara Okamoto Matsuda "
    "Nakagawa Nakano Harada Ono Tamura Takeuchi Kaneko Wada Nakayama Ishida Ueda Morita Shibata "
    "Sakai Kudo Yokoyama Miyazaki Miyamoto Uchida Takagi Ando Taniguchi Ohno Maruyama Imai "
    "Takada Fujimoto Takeda Murata Ueno Sugiyama Masuda Sugawara Hirano Otsuka Kojima Kubo "
    "Matsui Iwasaki Sakurai Kinoshita Noguchi Matsuo Nomura Kikuchi Sano Onishi Sugimoto Arai "
    "Honda Hattori Kubota Nishida Nagai Kawaguchi").split()
_ROMAJI_SURNAMES.append("Kono")


def _long_vowels(name: str) -> str:
    """A romaji surname whose o may be written long (Saitou, Ohta, Oono: kept until scrub49;
    Satō is Sato once ``fold`` took its macron)."""
    return re.sub("[oO]", lambda m: m.group() + ("[UOH]?" if name.isupper() else "[uoh]?"), name)


_ROMAJI_SURNAME = "(?:" + "|".join(_long_vowels(n) for n in _ROMAJI_SURNAMES
                                   + [n.upper() for n in _ROMAJI_SURNAMES]) + ")"
_ROMAJI_NAME = re.compile(
    r"(?=[A-Z])(?<![A-Za-z])(?:" + _ROMAJI_SURNAME + r",?\s(?P<g>[A-Z][a-z]{2,9}|[A-Z]{3,10})"
    r"|(?P<f>[A-Z][a-z]{2,9})\s" + _ROMAJI_SURNAME + r")(?![A-Za-z]|\s(?:[A-Z]|[Ss]treet|[Rr]oad"
    r"|[Ss]tation|[Pp]ark)\b)")
_MORA = re.compile(r"(?:(?:[kgsztdnhbpmr]y?|sh|ch|ts|j|f|w|y|kk|tt|ss|pp|tch)?[aiueo]"
                   r"|n(?![aiueoy]))+")
"""A Japanese name in romaji, surname first as a Japanese passport's page and letters write it
(Sato Hanako, Yamada Taro, TAKAHASHI Kenji) or given name first as English does (Hiroshi
Tanaka): a common surname and a given name made of Japanese syllables (``_MORA``); kept until
scrub48 (Tanaka-san went). Not a word of English so made (``_ROMAJI_NOT_GIVEN``), nor a place
(Tokyo Osaka, Ueno Park)."""
_ROMAJI_NOT_GIVEN = frozenset((
    "home came made name take make gone done none note site same time mine nine tone zone ride "
    "side wide hide rate date gate late fine line wine nose more sure here were are one use "
    "tokyo osaka kyoto kobe nara nagoya yokohama sapporo fukuoka sendai hiroshima japan "
    "saitama chiba okinawa kanagawa hokkaido").split())

_ROMAJI_SURNAME_ANY_CASE = re.compile("|".join(_long_vowels(n.lower()) for n in _ROMAJI_SURNAMES),
                                      re.IGNORECASE)
_REACHED_LATIN = re.compile(
    r"(?:" + "|".join(_REACHING) + r"|给(?![付予])|跟|和|与|请)(?:了|过)?"
    r"(?P<n>[A-Za-z][a-z]{1,9}|[A-Z]{2,10})(?![A-Za-z0-9.@_\-])"
    r"(?=[，。；！？,.;!?、\s）)：:（(]|$|了|并|和|及|与|后|未|没|确认|核实|沟通|说|打|联系|一起|一同"
    r"|都|也|来|去|到|明天|后天|今天|下周|上午|下午|本人|签字|的(?:电话|手机|微信))")
"""A romaji surname alone or a name's initials after whom the clerk reached, told or listed
with (联系sato, 给saitou打电话, 和ohta一起来, 联系Sato确认, 给wxy打电话, 联系ld确认): kept
until scrub50 (romaji went as two words, initials only before what the person did). Not a
pronoun (联系ta确认, 和ni说: ``_PRONOUNS``), nor an acronym (给app打分, 联系HR确认)."""
_PRONOUNS = frozenset((
    "ta", "wo", "ni", "ok", "yes", "no", "and", "the", "you", "she", "him", "her", "aa", "hh",
    "hhh", "www", "lol", "emm", "hmm", "hi", "oh", "eg", "ie", "vs", "etc", "gov", "ps", "me",
    "we", "my"))
"""Two or three lower-case letters that are a word wherever they stand (ta, 他 or 她: 联系ta确认).
A chat's kin and 领导 (mm, gg, lg, ld) are words before what they said (ld说, mm来过:
``_NOT_LOWER_INITIALS``) but after whom the clerk reached a name's initials are likelier
(联系ld确认: 刘东; a note for the case file writes 领导), so there they go (scrub50); so do a
unit's letters (联系mm确认: no millimetre is reached, ``_UNITS_TYPED``)."""
_UNITS_TYPED = frozenset(("KG", "CM", "MM", "ML", "KM", "MG"))


_LOWER_ROMAJI_SURNAME = "(?:" + "|".join(_long_vowels(n.lower()) for n in _ROMAJI_SURNAMES) + ")"
_ROMAJI_LOWER = re.compile(
    r"(?=[a-z])(?<![A-Za-z]\s)(?<![A-Za-z])(?:(?P<s>" + _LOWER_ROMAJI_SURNAME
    + r")\s(?P<g>[a-z]{3,10})|(?P<f>[a-z]{3,10})\s" + _LOWER_ROMAJI_SURNAME
    + r")(?=\s?[\u4e00-\u9fff])")
"""A Japanese name in romaji in lower case inside a Chinese note (sato hanako来电, hiroshi tanaka
说, saitou kenji来过), as an IME in English mode types it: ``_ROMAJI_NAME``'s, kept in lower
case until scrub50."""
_ROMAJI_ALONE = re.compile(r"(?<![A-Za-z0-9.@_\-])(?P<n>[A-Za-z][a-z]{2,9})(?=" + _INITIALS_DEEDS
                           + ")")
"""A romaji surname alone before what the person did (sato来过, Tanaka说, saitou签字): kept until
scrub50; only a listed surname (``_ROMAJI_SURNAME_ANY_CASE``)."""


def _romaji_lower(text: str, before_a_doing: bool) -> Iterator[tuple[int, int, str]]:
    """``_ROMAJI_LOWER``'s finds whose given name is Japanese syllables, and
    ``_ROMAJI_ALONE``'s that are a listed surname (``before_a_doing``: the text has letters
    right before what a person does, ``_ANY_LOWER_INITIALS``)."""
    if " " in text and _LOWER_PAIR.search(text):
        for m in _ROMAJI_LOWER.finditer(text):
            given = m.group("g") or m.group("f")
            if _MORA.fullmatch(given) and given not in _ROMAJI_NOT_GIVEN:
                yield m.start(), m.end(), REDACTED_NAME
    if not before_a_doing:
        return
    for m in _ROMAJI_ALONE.finditer(text):
        if _ROMAJI_SURNAME_ANY_CASE.fullmatch(m.group("n")):
            yield m.start("n"), m.end("n"), REDACTED_NAME


_GIVEN_AFTER_REACHED = re.compile(r" (?P<g>[a-z]{2,10})(?=[，。；！？,.;!?、\s）)]|$)")
"""A given name in lower case after a surname whom the clerk reached, before the clause ends
(联系sato hanako, 联系zhang jianguo，): the surname alone went, or nothing (scrub51)."""


def _reached_latin(text: str) -> Iterator[tuple[int, int, str]]:
    """``_REACHED_LATIN``'s finds that are a romaji surname (in any case: 联系SATO, since
    scrub51) or initials, with a given name in lower case after a romaji or a pinyin surname
    (联系sato hanako, 联系zhang jianguo，: ``_GIVEN_AFTER_REACHED``)."""
    for m in _REACHED_LATIN.finditer(text):
        n = m.group("n")
        given = _GIVEN_AFTER_REACHED.match(text, m.end("n")) if n.islower() else None
        if given is not None and (
                (_ROMAJI_SURNAME_ANY_CASE.fullmatch(n) and _MORA.fullmatch(given["g"])
                 and given["g"] not in _ROMAJI_NOT_GIVEN)
                or (n in _LOWER_PINYIN_SURNAMES and _PINYIN_GIVEN.fullmatch(given["g"])
                    and given["g"] not in _PRONOUNS)):
            yield m.start("n"), given.end("g"), REDACTED_NAME
            continue
        if len(n) > 3 and n.isupper() and not _ROMAJI_SURNAME_ANY_CASE.fullmatch(n):
            continue  # 联系CCTV, 给APPLE打电话
        if _ROMAJI_SURNAME_ANY_CASE.fullmatch(n) or (
                len(n) <= 3 and (n.islower() or n.isupper()) and n.lower() not in _PRONOUNS
                and (n.upper() not in _ACRONYMS or n.upper() in _UNITS_TYPED)
                and n.upper() not in _MORE_ACRONYMS):
            yield m.start("n"), m.end("n"), REDACTED_NAME


_PINYIN_SURNAMES = (
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng "
    "Liang Xie Song Tang Xu Han Feng Deng Cao Peng Zeng Xiao Tian Dong Yuan Pan Jiang Cai Yu Du "
    "Ye Cheng Su Wei Lv Ding Ren Shen Yao Lu Cui Zhong Tan Fan Jin Shi Liao Jia Xia Fu Fang Bai "
    "Zou Meng Xiong Qin Qiu Yin Xue Yan Duan Lei Hou Long Shi Tao Li He Gu Mao Hao Gong Shao "
    "Qian Yan Wen Kang Qi Qiao Ni Zhuang Geng Guan Lan Jiao Zuo Liu Bao Ning Chang Yi").split()
_LOWER_PINYIN_SURNAMES = frozenset(n.lower() for n in _PINYIN_SURNAMES)
_PINYIN_SURNAME = "(?:" + "|".join(sorted(set(_PINYIN_SURNAMES), key=len, reverse=True)) + ")"
_PINYIN_NAME = re.compile(
    r"(?=[A-Z])(?<![A-Za-z])(?P<s>" + _PINYIN_SURNAME + r"|" + _PINYIN_SURNAME.upper() + r")\s"
    r"(?P<g>[A-Z][a-z]{1,11}|[A-Z]{2,12})(?![A-Za-z\-]|,?\s(?!(?:" + _PINYIN_SURNAME
    + r")\s[A-Z][a-z]{1,11}(?:,|$))[A-Z]|\s(?:[Rr]oad|[Ss]treet|[Ll]u"
    r"|[Ss]tation|[Dd]istrict|[Tt]own|[Vv]illage)\b)")
_PINYIN_LOWER = re.compile(r"(?=[a-z])(?<![A-Za-z]\s)(?<![A-Za-z])(?P<s>" + _PINYIN_SURNAME.lower()
                           + r")\s(?P<g>[a-z]{2,12})(?=\s?[\u4e00-\u9fff])")
_LOWER_PAIR = re.compile(r"[a-z]\s[a-z]{2,12}\s?[\u4e00-\u9fff]")
_CAPITALISED_PAIR = re.compile(r"[A-Z][A-Za-z]+,?\s[A-Z]")
"""What the romanised names' rules need (Chan Man, Sato Hanako, TAKAHASHI Kenji, Zhang
Jianguo): a search, where most texts pay nothing more."""
_PINYIN_SYLLABLE = (r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|iao"
                    r"|ian|uai|uan|ai|ei|ui|ao|ou|iu|ie|ue|ve|er|an|en|in|un|ia|ua|uo|a|o|e|i|u|v)")
_PINYIN_GIVEN = re.compile(r"(?:" + _PINYIN_SYLLABLE + r"){1,2}", re.IGNORECASE)
_PINYIN_SYLLABLES = re.compile(_PINYIN_SYLLABLE)
"""A name in the mainland's pinyin without a title (Zhang Jianguo 来电, Wang Fang called,
zhang jianguo 来电, li guilan明天来): a common surname and a given name of one or two
syllables, capitalised, or in lower case inside a Chinese note (Chinese follows it); kept
until scrub48 (the resident on file's went). Not a place (Xu Hui district, Jin Mao Tower: a
capitalised word or a place's word after it, ``_PINYIN_PLACES``), nor an English sentence
(He ran: a surname that is an English word wants two syllables after it, ``_ENGLISH_SURNAMES``)."""
_MIXED_NEXT = (r"(?= ?" + _TIME_BETWEEN + r"(?:说(?!明)|称|表示|反映|讲|来电|来访|告诉|来过|本人|"
               r"夫妇|夫妻|两口子|" + _OWNS + "|" + _DEEDS + "|" + _CAME_FOR + "))")
"""What follows a name half in pinyin (``_MIXED_NAME``); since scrub56 also the couple it heads
(Wu建设夫妇来过, as ``_COUPLE`` in characters)."""
_PINYIN_EITHER = "(?:" + _PINYIN_SURNAME + "|" + _PINYIN_SURNAME.lower() + ")"
"""A surname in pinyin, capitalised or not (Zhang建国, zhang建国: an IME in English mode types
what the shift key gave; the lower-case one was kept until scrub50). With the time between it
and what the person did (Zhang建国今天来过, 张jianguo昨天下午来电: ``_TIME_BETWEEN``) since
redteam100."""
_CAPS_RUN = re.compile(r"[A-Z]{3}|(?<![A-Za-z])[A-Z]{2}[\u4e00-\u9fff]")
_CAPS_SURNAME = re.compile(r"(?<![A-Za-z])(?:" + "|".join(sorted(
    {n.upper() for n in _PINYIN_SURNAMES if len(n) > 2}, key=len, reverse=True)) + r"|(?:"
    + "|".join(sorted({n.upper() for n in _PINYIN_SURNAMES if len(n) == 2}))
    + r")(?=[\u4e00-\u9fff]))(?![A-Za-z])")
"""A surname in pinyin typed in capitals, as caps lock types it (ZHANG建国, 联系WANG秀英: kept
until redteam100): ``_mixed_names`` reads it capitalised (the same length, so each find is
where it was typed). Three letters or more, so no acronym of two, AN, HE, MA, LI, is read as
one; asked of a text with three capitals in a row only (a third more work for every pattern
the surname in capitals was one more alternative of). Since scrub51 a surname of two capitals
too, glued to the character after it (LI建国来过, 给MA秀兰打电话: kept until then); what follows
must still be a given name and what the person did (``_MIXED_NAME``), so an acronym of two
alone or before a word (HE说, MA学位) is not read as one."""
_CAPS_GLUED_ALONE = re.compile(
    r"(?:^|(?<=[，。；！？,.;!?\s:：（(、]))(?:" + "|".join(sorted(
        {n.upper() for n in _PINYIN_SURNAMES}, key=len, reverse=True)) + r")(?P<h>" + _GIVEN
    + r"{2})(?=[，。；！？,.;!?\s）)、]|$)")
"""A surname in pinyin capitals glued to a given name of two characters, a clause to itself
(LI建国, 交接：ZHANG秀兰，): kept until scrub52, no doing after it; not a degree, a course or a
test (MA学位, HE染色: ``_NOT_GIVEN_AFTER_CAPS``)."""
_NOT_GIVEN_AFTER_CAPS = frozenset(("学位", "课程", "专业", "项目", "学历", "文凭", "证书", "染色",
                                   "检测", "检查", "报告", "格式", "文件", "版本", "系列", "型号"))
_GIVEN_LATIN = r"(?P<l>[A-Z][a-z]{1,11}|[a-z]{2,12})"
_MIXED_NAME = re.compile(
    r"(?<![A-Za-z])(?P<p>" + _PINYIN_EITHER + r") ?(?P<h>" + _GIVEN + r"{1,2}?)" + _MIXED_NEXT
    + r"|(?<![A-Za-z])(?P<c>" + _SURNAME + r") ?" + _GIVEN_LATIN + _MIXED_NEXT)
"""A name typed half in pinyin, half in characters, as an IME left it (Zhang 建国来过, 王
Xiuying说): a surname in pinyin and one or two characters, or a surname's character and a
given name in pinyin, opening what the person said or did; kept until redteam80. In lower
case either half (zhang建国来过, 张jianguo说) since scrub50."""
_ANY_MIXED = re.compile(r"[A-Za-z] ?[\u4e00-\u9fff]")
_MIXED_HALVES = (r"(?:(?P<p>" + _PINYIN_EITHER + r") ?(?P<h>" + _GIVEN
                 + r"{1,2}?)|(?P<c>" + _SURNAME + r") ?" + _GIVEN_LATIN + r"(?![A-Za-z]))")
_REACHED_MIXED = re.compile(
    r"(?:" + "|".join(_REACHING) + r")(?:了|过)? ?" + _MIXED_HALVES
    + r"(?=[，。；！？,.;!?、\s）)：:（(]|了|并|和|及|与|后|未|没|$|明天|后天|今天|下周|下午|上午"
    r"|来|去|到)")
_TOLD_MIXED = re.compile(r"(?:跟|给(?![付予])|请|由|让|找|和|陪着?)" + _MIXED_HALVES + r"(?="
                         + _TOLD_VERBS + r"|回|发|送|来|到|去|过来|代办|代为|负责|一起|一同|"
                         + _DEEDS + ")")
"""A name half in pinyin after who reached them (已联系Zhang建国，, 通知Li秀英明天来, 已联系张
Jianguo，): what ``_REACHED`` finds in characters, and ``_MIXED_NAME`` before a person's doing;
kept until scrub49; after 跟 / 给 / 请 and what was done with them (给Zhang建国打电话, as
``_TOLD`` in characters), and in lower case (联系zhang建国) since scrub50. The name is what
follows the verb: ``_mixed_names`` yields it alone. Since redteam100 also with a space after
who reached them (联系 zhang建国) and after 由 / 让 / 找 / 和 (由zhang建国代办, 和Li秀英一起来), as
``_ASKED`` in characters. Since scrub56 also after 陪 / 陪着 and before 去 (陪Chang桂香去, as
``_ALONG`` in characters)."""
_PINYIN_PLACES = frozenset((
    "xu hui", "yang pu", "huang pu", "chang ning", "jin shan", "song jiang", "feng xian",
    "jia ding", "hong kou", "min hang", "zhang jiang", "gao qiao", "zhou pu", "kang qiao",
    "jin qiao", "tang zhen", "wu han", "su zhou", "shen zhen", "he fei", "cheng du", "tian jin",
    "xia men", "fu zhou", "he nan", "he bei", "hu nan", "hu bei", "jiang su", "jiang xi",
    "an hui", "fu jian", "yu yuan", "lu jia", "xu jia", "jin mao", "wu jiao", "zheng zhou",
    "chang sha", "lan zhou", "tang shan", "qin huang",
    # what Chang and Yi (scrub56) open: 长江, 长安, 常州, 长春, 长宁, 义乌, 宜昌, 宜宾, 伊犁
    "chang jiang", "chang an", "chang zhou", "chang chun", "yi wu", "yi chang", "yi bin",
    "yi li", "yi xing"))
_PINYIN_WORDS = frozenset((
    "yang lao", "shen qing", "wei xin", "zhou mo", "cheng guan", "xu ke", "shi ye", "zhang hu",
    "li xi", "gao xin", "huang jin", "gao kao", "jin jiang", "xiao mi", "wang ba", "fang an",
    "shen fen", "lu kou", "tang niao", "gao ya", "jin e", "ma shang", "su shi", "zhou qi",
    "cheng shi", "jiang li", "jin tie", "mao bi", "wu ye", "lin ju", "liu cheng", "tan hua",
    "he shi", "he dui", "xu yao", "yu e", "yu yue", "fu wu", "jia ting", "zhu fang", "dong jie",
    # what 常 (Chang) and 易 (Yi), listed since scrub56, open: 常住, 长期, 医保, 医疗, 医生, 医院,
    # 一定, 一起, 一次, 以后, 已经, 意见, 异地
    "chang zhu", "chang qi", "yi bao", "yi liao", "yi sheng", "yi yuan", "yi ding", "yi qi",
    "yi ci", "yi hou", "yi jing", "yi jian", "yi di", "yi xia", "yi yang", "yi wai",
    # 疫苗, 一般, 医嘱, 常规, 一天, 义工, 一直, 常常: redteam121
    "yi miao", "yi ban", "yi zhu", "chang gui", "yi tian", "yi gong", "yi zhi", "chang chang"))
"""Two pinyin words a clerk types in a Chinese note (养老金 as yang lao 金, 申请表, 微信群,
周末, 城管, 许可证, 失业金, 账户, 利息, 高新区, 黄金周 ...) that open with a listed surname:
taken for a name by scrub48's ``_PINYIN_LOWER`` (yang lao 金已到账), kept since redteam80."""
_ENGLISH_SURNAMES = frozenset(("He", "An", "Long", "Song", "Ma", "Fan", "Ding", "Bao", "Gong",
                               "Lei", "Fang", "Yu", "Ni", "Pan", "Tan", "Bai", "Lu", "Hu"))



# -- every rule at once --------------------------------------------------------------------------


_ANY_HONORIFIC = re.compile(_HONORIFIC)
_ANY_POST = re.compile("|".join(OFFICE_POSTS))
_ANY_INTRODUCTION = re.compile(_INTRODUCERS)
_ANY_PROFILE = re.compile(r"[男女]|[（(]")
_ANY_REACH = re.compile("联系|通知|告知|转告|回访|陪同|探望|看望|走访")
_ANY_REACH_OR_TOLD = re.compile("联系|通知|告知|转告|回访|探望|看望|走访|[跟给请由让找和陪]")
_ANY_KIN_TITLE = re.compile("[姐哥叔婶嫂]")
_ANY_OF_KIN = re.compile(_OF_KIN)
_ANY_NEXT_OF_KIN = re.compile(_NEXT_OF_KIN)
_ANY_QUOTE = re.compile("[“「『\"'‘]")
_ANY_TOLD = re.compile("[跟给请]" + _SURNAME)
_ANY_ON_BEHALF = re.compile("[代替帮]" + _SURNAME)
_ANY_SPEECH = re.compile(r"[说称讲陪替]|表示|反映|来电|来访|告诉|来过|打电话|打来电话|窗口"
                         r"|来[办咨了问交补领取申登签递提拿开]|办理|" + "|".join(SERVICE_ITEMS)
                         + r"|(?:电话|手机|座机)[:：]?\d|" + _OWNS)
_ANY_DEED = re.compile(_DEEDS)
_ANY_LISTED = re.compile(_SURNAME + _GIVEN + r"{1,2}[、和与][小老]?" + _SURNAME
                         + r"|[小老]" + _ONE_SURNAME + "[、和与]" + _SURNAME)
_ANY_ASKED = re.compile("[由让找]" + _SURNAME)
_ANY_JOIN = re.compile("[、和与由让找]")



_CANTONESE = re.compile("[嘅唔佢嚟咗喺冇啲乜搵睇畀俾]")
"""Characters only written Cantonese uses (佢话唔得嘅): a note taken in Hong Kong or Macao."""
_CANTONESE_ADDRESSED = re.compile(
    "(?!卫生|余生|毕生|陆生|安生|华生)" + _SURNAME
    + r"(?:师奶|生|太|伯|婆)(?=话|讲|嚟|打|来|返|搵|喺|嘅|唔|冇|都|同|个|屋企|今日|听日|琴日"
    r"|[，。,.！!？?、:：\s]|$)")
"""A surname and Cantonese's form of address (陈生 Mr Chan, 陈太 Mrs Chan, 黄伯, 梁婆, 陈师奶)
before what they said or did or a clause's end, in a Cantonese note only: 陳生嚟過,
陳太打嚟話唔得 were kept until redteam64. Not 卫生, 余生, 毕生, 陆生, 安生, 华生."""


_CAPITALISED_BEFORE = re.compile(r"[A-Z][A-Za-z]*\s$")
"""A capitalised word right before a romanised name's first (Shek Tong Tsui, Jin Mao Tower):
one name of a place's or a building's, not a person's."""


def _after_a_word(text: str, start: int) -> bool:
    return _CAPITALISED_BEFORE.search(text, max(0, start - 16), start) is not None


def _latin_names(text: str) -> Iterator[tuple[int, int, str]]:
    """scrub48's Latin names: initials alone, a Hong Kong name of one given syllable, a
    Japanese name in romaji, a mainland one in pinyin (each asked only of a text that has
    what it needs: two capitals, a space after a surname)."""
    if _ANY_CAPITALS.search(text):  # WXY来过
        for m in _INITIALS_ALONE.finditer(text):
            if m.group("n") not in _ACRONYMS and m.group("n") not in _MORE_ACRONYMS:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    lower_before_a_doing = _ANY_LOWER_INITIALS.search(text) is not None
    if lower_before_a_doing:  # wxy来过
        for m in _LOWER_INITIALS.finditer(text):
            n = m.group("n")
            if n.upper() not in _ACRONYMS and n.upper() not in _MORE_ACRONYMS \
                    and n not in _NOT_LOWER_INITIALS:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if _HAN_CAPITAL.search(text):  # 联系sato, 给wxy打电话: a letter right after a character
        yield from _reached_latin(text)
    yield from _romaji_lower(text, lower_before_a_doing)  # sato hanako来电, sato来过
    # Zhang 建国来过, 王 Xiuying说; 已联系张Jianguo，给Zhang建国打电话
    if _ANY_MIXED.search(text) or (_HAN_CAPITAL.search(text) and _ANY_REACH_OR_TOLD.search(text)):
        yield from _mixed_names(text)
    if " " not in text:
        return
    if _LOWER_PAIR.search(text):  # zhang jianguo 来电
        yield from _pinyin_names(text, _PINYIN_LOWER.finditer(text))
    if not _CAPITALISED_PAIR.search(text):
        return
    yield from _pinyin_names(text, _PINYIN_NAME.finditer(text))
    for m in _HK_ONE_SYLLABLE.finditer(text):  # Chan Man
        if m.group("a").lower() in _CANTONESE_SYLLABLES and not _after_a_word(text, m.start()) \
                and f"{m.group('s')} {m.group('a')}".lower() not in _HK_PLACES_TWO:
            yield m.start(), m.end(), REDACTED_NAME
    for m in _ROMAJI_NAME.finditer(text):  # Sato Hanako, Hiroshi Tanaka
        given = (m.group("g") or m.group("f")).lower()
        if _MORA.fullmatch(given) and given not in _ROMAJI_NOT_GIVEN \
                and not _after_a_word(text, m.start()):
            yield m.start(), m.end(), REDACTED_NAME


def _mixed_names(text: str) -> Iterator[tuple[int, int, str]]:
    """``_MIXED_NAME``'s finds before what the person said or did: a given name in pinyin is
    one or two syllables of it (王 Xiuying, not 王 Ok)."""
    reached = _ANY_REACH_OR_TOLD.search(text) is not None
    if _CAPS_RUN.search(text):  # ZHANG建国来过 read as Zhang建国来过
        for m in _CAPS_GLUED_ALONE.finditer(text):  # LI建国 alone, a list's line
            if is_name(m.group("h")) and m.group("h") not in _NOT_GIVEN_AFTER_CAPS:
                yield m.start(), m.end(), REDACTED_NAME
        text = _CAPS_SURNAME.sub(lambda m: m.group().capitalize(), text)
    for m in itertools.chain(_MIXED_NAME.finditer(text),
                             _REACHED_MIXED.finditer(text) if reached else (),
                             _TOLD_MIXED.finditer(text) if reached else ()):
        if m.group("l") and not _PINYIN_GIVEN.fullmatch(m.group("l")):
            continue
        if m.group("h") and not is_name(m.group("h")):
            continue
        if m.group("h") in _DONE_WITH:
            yield m.start("p"), m.end("p"), REDACTED_NAME  # 联系zhang确认: the verb stays
            continue
        yield m.start("p") if m.group("p") else m.start("c"), m.end(), REDACTED_NAME


_DONE_WITH = frozenset((*_DEEDS.split("|"), "核实", "沟通", "说明", "解释", "反馈", "答复", "回复",
                        "商量"))
"""What is done with whom the clerk reached, after a surname in pinyin alone (联系zhang确认,
联系Li核实): no given name in characters; the surname goes, the verb stays (scrub50: the verb
went as the given name)."""


def _pinyin_names(text: str, found: Iterator[re.Match[str]]) -> Iterator[tuple[int, int, str]]:
    """Zhang Jianguo, zhang jianguo 来电: ``_PINYIN_NAME``'s and ``_PINYIN_LOWER``'s finds that
    are a surname and a given name of one or two syllables, no place, no English sentence."""
    for m in found:
        surname, given = m.group("s"), m.group("g")
        place = f"{surname} {given}".lower()
        if not _PINYIN_GIVEN.fullmatch(given) or place in _PINYIN_PLACES or place in _PINYIN_WORDS \
                or (surname[0].isupper() and _after_a_word(text, m.start())):
            continue
        if surname.capitalize() in _ENGLISH_SURNAMES \
                and len(_PINYIN_SYLLABLES.findall(given.lower())) < 2:
            continue  # He ran
        yield m.start(), m.end(), REDACTED_NAME




def name_spans(text: str, latin: bool) -> Iterator[tuple[int, int, str]]:
    """Every name rule's finds, in ``rule_spans``'s order (``latin``: the text has a Latin
    letter)."""
    if _ANY_HONORIFIC.search(text) or (("长" in text or "经理" in text or "干事" in text
                                         or "警官" in text or "社工" in text
                                         or "网格员" in text) and _ANY_POST.search(text)):
        for m in _SURNAME_TITLE.finditer(text):
            if _addressed_by_post(text, m.start(), m.group()) or _ends_a_word(text, m.start()) \
                    or text.startswith(_A_POST_OF_A_UNIT, m.start()):
                continue
            yield m.start(), m.end(), REDACTED_NAME
        if "单" in text:  # 单阿姨
            for m in _SHAN_TITLED.finditer(text):
                yield m.start(), m.end(), REDACTED_NAME
        for start, end in _full_name_titled(text):
            yield start, end, REDACTED_NAME
    if _KANA_TITLE.search(text) or (_JAPANESE_TITLE.search(text)
                                     and _ANY_JAPANESE_SURNAME.search(text)):  # 佐藤女士, 山田さん
        for m in _JAPANESE_TITLED.finditer(text):
            yield m.start(), m.end(), REDACTED_NAME
    if _CANTONESE.search(text):  # 陈生嚟过, 陈太打嚟话唔得
        for m in _CANTONESE_ADDRESSED.finditer(text):
            yield m.start(), m.end(), REDACTED_NAME
    if _ANY_INTRODUCTION.search(text):
        for m in _INTRODUCED.finditer(text):
            n = m.group("n")  # not 老人叫孙子来, 居民罗店镇的, 家属龙华医院住院, 居民金卡报销
            if is_name(n) and n[-1] != "镇" and text[m.end("n"):m.end("n") + 1] not in _TOWN \
                    and not n.startswith(ERRAND_KINDS):
                yield m.start("n"), m.end("n"), REDACTED_NAME
                # the next of a list (经办人：李明、王芳。), as after 联系
                while (m := _AND_NEXT.match(text, m.end("n"))) is not None and is_name(
                        m.group("n")) and m.group("n") not in _UNITS_REACHED:
                    yield m.start("n"), m.end("n"), REDACTED_NAME
    if "小" in text or "老" in text or _ANY_KIN_TITLE.search(text):
        for m in _NICKNAME.finditer(text):
            surname = m.start() + (m.group()[0] in "小老")
            if not _ends_a_word(text, surname) and text[surname - 1:surname + 1] not in _POSTS:
                yield m.start(), m.end(), REDACTED_NAME  # not 谢谢姐, 保安哥
        if "小" in text:
            for m in _GIVEN_NICKNAME.finditer(text):
                yield m.start(), m.end(), REDACTED_NAME  # 小芳说
    if "本人" in text:
        for m in _HIMSELF.finditer(text):
            if is_name(m.group("n")) and m.group("n")[-1] != "人":
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if _ANY_REACH.search(text):
        for m in _REACHED.finditer(text):
            while m is not None and is_name(m.group("n")) and m.group("n")[-1] != "人" \
                    and m.group("n") not in _UNITS_REACHED:
                yield m.start("n"), m.end("n"), REDACTED_NAME
                m = _AND_NEXT.match(text, m.end("n"))  # 已联系王秀英、李建国。
    if ("的" in text or "之" in text) and _ANY_OF_KIN.search(text):
        for m in _KIN_OF.finditer(text):
            if is_name(m.group("n")) and m.group("n")[-1] != "人" \
                    and m.group("n") not in _UNITS_REACHED:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if _ANY_NEXT_OF_KIN.search(text):
        for kin in _ANY_NEXT_OF_KIN.finditer(text):  # the name just before it (four at most)
            m = _KIN_AFTER.search(text, max(0, kin.start() - 4), kin.end())
            if m is not None and m.end("n") == kin.start() and is_name(n := m.group("n")) \
                    and n[-1] != "人" and n not in _UNITS_REACHED and n not in _BEFORE_A_TITLE:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if ("跟" in text or "给" in text or "请" in text) and _ANY_TOLD.search(text):
        for m in _TOLD.finditer(text):
            n = m.group("n")
            if is_name(n) and n[-1] != "人" and n not in _UNITS_REACHED \
                    and n[1:] not in _POSTS_AFTER_A_SURNAME:
                end = m.end("n")
                if len(m.group("g")) == 1 and _FA_THEN.match(text, end):
                    end += 1  # 给王建发打电话
                yield m.start("n"), end, REDACTED_NAME
    if ("代" in text or "替" in text or "帮" in text) and _ANY_ON_BEHALF.search(text):
        for m in _ON_BEHALF.finditer(text):
            n = m.group("n")
            if is_name(n) and n[-1] != "人" and n not in _UNITS_REACHED \
                    and n[1:] not in _POSTS_AFTER_A_SURNAME:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if "叫" in text:
        for m in _CALLED_OVER.finditer(text):
            if is_name(m.group("n")) and m.group("n")[-1] != "人" \
                    and m.group("n") not in _UNITS_REACHED:  # 叫安保来
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if "我是" in text or "叫" in text or "名字是" in text:
        for regex in (_SELF_INTRODUCED, _KIN_NAMED):
            for m in regex.finditer(text):
                if is_name(m.group("n")) and m.group("n")[-1] != "人":
                    yield m.start("n"), m.end("n"), REDACTED_NAME
    if " " in text and _SURNAME_SPACE.search(text):  # 申请人：张 建国, 张 建国说
        for m in _SPACED_AFTER_SURNAME.finditer(text):
            group = "n" if m.group("n") else "s" if m.group("s") else "r"
            name = m.group(group).replace(" ", "")
            if is_name(name) and not name.startswith(NOT_NAMES) and name[-1] != "人" \
                    and name not in _WEEKDAYS and name not in _UNITS_REACHED:
                yield m.start(group), m.end(group), REDACTED_NAME
    if _ANY_SPACED.search(text):  # 李_建_国, 张 建 国
        for m in _SPACED_NAME.finditer(text):
            if _spaced_name(text, m):
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if _ANY_PROFILE.search(text):
        for m in _PROFILED.finditer(text):
            if is_name(m.group("n")):
                yield m.start("n"), m.end("n"), REDACTED_NAME
    speech = _ANY_SPEECH.search(text) is not None
    if speech:
        quoted = _ANY_QUOTE.search(text) is not None
        for regex in (_SPEAKER, _QUOTED_SPEAKER) if quoted else (_SPEAKER,):
            for m in regex.finditer(text):
                n = m.group("n")
                if is_name(n) and n[1:] not in _KIN_WORDS and n not in _WEEKDAYS \
                        and n not in _UNITS_REACHED and n[-1] != "人" \
                        and not text.startswith(_NOT_SPEAKERS, m.start("n")):  # 今天华为来电
                    yield m.start("n"), m.end("n"), REDACTED_NAME
                    comma = m.start("n") - 1
                    while text[comma:comma + 1] in ("，", ","):  # 李秀兰，张建国来过
                        found = next(_comma_listed(text, comma), None)
                        if found is None:
                            break
                        yield found  # and the one before it (张建国，王秀英，刘志刚来过)
                        comma = found[0] - 1
    joined = _ANY_JOIN.search(text) is not None  # one search for the two rules below
    if joined and (speech or _ANY_DEED.search(text)) \
            and _ANY_LISTED.search(text):  # 张建国、李秀英和王伟来过
        for m in _LISTED_SPEAKERS.finditer(text):
            start = m.start("n")
            for n in _LIST_PARTS.split(m.group("n")):
                if n[0] in "小老" and not _LISTED_NICK_ALONE.fullmatch(n):
                    pass  # 张建国和小米来过: 小米 is a company as often
                elif is_name(n) and n[1:] not in _KIN_WORDS and n not in _WEEKDAYS \
                        and n not in _UNITS_REACHED and not n.startswith(_NOT_SPEAKERS):
                    yield start, start + len(n), REDACTED_NAME
                start += len(n) + 1
    if joined and _ANY_ASKED.search(text):
        for m in _ASKED.finditer(text):  # 由张建国代办, 让李秀英补材料, 找王芳签字
            n = m.group("n")
            if is_name(n) and n[-1] != "人" and n not in _UNITS_REACHED and n[-1] not in _TOWN \
                    and n[1:] not in _POSTS_AFTER_A_SURNAME and n not in _BEFORE_A_TITLE:
                yield m.start("n"), m.end("n"), REDACTED_NAME
    if _ANY_DEED.search(text):
        for m in _DEED.finditer(text):
            n = m.group("n")
            if is_name(n) and n not in _UNITS_REACHED and n[1:] not in _KIN_WORDS \
                    and n not in _WEEKDAYS and n not in _BEFORE_A_TITLE and n[-1] not in _TOWN \
                    and not text.startswith(NOT_NAMES, m.start("n")):  # not 周一确认, 石材
                yield m.start("n"), m.end("n"), REDACTED_NAME
    # scrub53's, each asked of a text that has what it needs
    if "陪" in text or "替" in text or ("一" in text and _ANY_TOGETHER.search(text)):
        yield from _along(text)  # 陪张建国去, 和刘志刚一起来
    if _ANY_COUPLE.search(text):
        yield from _couples(text)  # 张建国夫妇来过
    if _ANY_BRACKET.search(text):
        yield from _bracketed(text)  # 【张建国】来办医保
    if "：" in text or ":" in text or "∶" in text or "的是" in text:
        yield from _closing(text)  # 材料已收：张建国
    if "·" in text or ("." in text and _CJK_DOT.search(text)):
        yield from _dotted(text)  # 买买提·艾力, 伊力哈木.托合提
    if ("室" in text or "号" in text or "床" in text) and _ANY_NUMBERED.search(text):
        yield from _numbered(text)  # 2号贺国平，3号赖文杰
    if _TWO_LIST_MARKS.search(text) or _ONE_LIST_MARK.search(text):
        yield from _listed(text)  # 张建国,王秀英,刘志刚; 邱志华,廖美玲
    if "\n" in text or _ANY_NUMBERED_LINE.match(text):
        yield from _by_lines(text)  # 1. 武建设 养老; 谭永康\n来办低保
    if latin:
        if "." in text:  # W.X.Y.
            for m in _DOTTED_INITIALS.finditer(text):
                if m.group().replace(" ", "").upper() not in _NOT_INITIALS:
                    yield m.start(), m.end(), REDACTED_NAME
        if _HAN_CAPITAL.search(text):  # 王XY说
            for m in _INITIALED.finditer(text):
                if _initialed(text, m):
                    yield m.start(), m.end(), REDACTED_NAME
        if _TWO_SYLLABLES.search(text):  # Chan Tai Man
            for m in _HK_NAME.finditer(text):
                if _hk_name(m):
                    yield m.start(), m.end(), REDACTED_NAME
        if "-" in text and _LETTER_DASH.search(text):  # Kim Min-su, Chen Chih-ming
            for m in _HYPHENED_NAME.finditer(text):
                if _SYLLABLE.fullmatch(m.group("a")) and _SYLLABLE.fullmatch(m.group("b")) \
                        and " ".join(re.split(r",?[ \-]", m.group().lower())) not in _HK_PLACES:
                    yield m.start(), m.end(), REDACTED_NAME
        for regex in (_WESTERN_NAMED, _TITLE_HAN):  # Peter Chan, Madam 黄
            if regex is _WESTERN_NAMED and not _TWO_WORDS.search(text):
                continue
            for m in regex.finditer(text):
                if not _ANY_LATIN.match(text, max(0, m.start() - 1)) or not m.start():
                    yield m.start(), m.end(), REDACTED_NAME
        if "sir" in text or "Sir" in text or "SIR" in text:  # 黄sir
            for m in _SURNAME_SIR.finditer(text):
                yield m.start(), m.end(), REDACTED_NAME
        yield from _latin_names(text)
        for regex in (_ENGLISH_TITLE, _ENGLISH_INTRODUCED, _ENGLISH_PROFILED):
            for m in regex.finditer(text):
                if "n" in regex.groupindex and m.group("n").split()[0] in _ENGLISH_NOT_NAMES:
                    continue
                yield m.start("n") if "n" in regex.groupindex else m.start(), m.end(), \
                    REDACTED_NAME
