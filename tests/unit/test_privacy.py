"""What clerks really type into free text, and what of it reaches the log.

Each sentence is one a clerk could write at the counter, on the phone or after a home visit,
with the text that must come out. The second half is what must NOT be touched: dates,
amounts, policy numbers, catalogue codes, times, counts. The last part is the resident the
case names: the vault knows them, so their own name, phone, ID number and address go in every
form a clerk writes them.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from collections import Counter
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from shared.kernel.privacy import REDACTED_ACCOUNT as ACCOUNT
from shared.kernel.privacy import REDACTED_ADDRESS as ADDRESS
from shared.kernel.privacy import REDACTED_EMAIL as EMAIL
from shared.kernel.privacy import REDACTED_ID as ID
from shared.kernel.privacy import REDACTED_NAME as NAME
from shared.kernel.privacy import REDACTED_PHONE as PHONE
from shared.kernel.privacy import REDACTED_PLATE as PLATE
from shared.kernel.privacy import REDACTED_RECORD as RECORD
from shared.kernel.privacy import (
    KnownPerson,
    addresses,
    folding,
    names,
    numbers,
    patterns,
    redact,
    redaction,
    traditional,
)
from shared.kernel.privacy.known_person import address_variants
from tests.unit.engine_work import counting

if TYPE_CHECKING:
    from _typeshed import TraceFunction

SCRUBBED = [
    # who mediated, kept the minutes or had the shift, in a mediation's minutes or a
    # hand-over note
    ("调解员：孙丽萍，记录人张敏，值班员：李强，交班人王芳，诉求人：刘建国",
     f"调解员：{NAME}，记录人{NAME}，值班员：{NAME}，交班人{NAME}，诉求人：{NAME}"),
    # a two-character name before what a grid worker or a volunteer did (网格员周敏走访 lost
    # 走 with the name)
    ("网格员周敏走访3号楼，志愿者李红陪同老人，社工张敏看望，网格员王芳探望",
     f"网格员{NAME}走访3号楼，志愿者{NAME}陪同老人，社工{NAME}看望，网格员{NAME}探望"),
    # phones, as they are really written
    ("居民来电，电话13812345678，想问低保怎么申请", f"居民来电，电话{PHONE}，想问低保怎么申请"),
    ("手机１３８１２３４５６７８，白天打", f"手机{PHONE}，白天打"),
    ("联系电话138.1234.5678，下午打", f"联系电话{PHONE}，下午打"),
    # groups parted as the resident dictated them, with the IME's comma or 顿号
    ("老人报的电话138，0013，8000，儿子的", f"老人报的电话{PHONE}，儿子的"),
    ("手机138、0013、8000", f"手机{PHONE}"),
    ("女儿一三八，零零一三，八零零零晚上在家", f"女儿{PHONE}晚上在家"),
    ("身份证310115，19380520，2256", f"身份证{ID}"),
    # or with the middle dot an IME offers between groups (·, ・, full width): before, the
    # ID number's first group went and its birth date and tail stayed
    ("电话138·0013·8000，晚上打", f"电话{PHONE}，晚上打"),
    ("电话+86 138，0013，8000", f"电话{PHONE}"),
    ("身份证310115・19380520・2256", f"身份证{ID}"),
    ("家里座机021-5888 1234，白天没人接", f"家里座机{PHONE}，白天没人接"),
    ("座机02158881234", f"座机{PHONE}"),
    ("回电(021)58881234找她儿子", f"回电{PHONE}找她儿子"),
    ("+86 138 1234 5678是她儿子的", f"{PHONE}是她儿子的"),
    ("女儿陈静代办，手机139-0000-1111", f"女儿{NAME}代办，手机{PHONE}"),
    ("转介街道残联，联系人周老师，电话5888 1234", f"转介街道残联，联系人{NAME}，电话{PHONE}"),
    ("来电号码尾号5678，回拨未接通", f"来电号码尾号{PHONE}，回拨未接通"),
    # ID numbers
    ("身份证号310115 19850312 1234，材料齐全", f"身份证号{ID}，材料齐全"),
    ("身份证３１０１１５１９８５０３１２１２３Ｘ已复印", f"身份证{ID}已复印"),
    ("证件号3101-1519-8503-1212-34，核对无误", f"证件号{ID}，核对无误"),
    ("申请人张伟，身份证后四位1234", f"申请人{NAME}，身份证后四位{ID}"),
    ("护照号E12345678，外籍配偶", f"护照号{ID}，外籍配偶"),
    ("老身份证号310115850312123，需换领", f"老身份证号{ID}，需换领"),
    # accounts, e-mail
    ("补贴打到工行卡6222 0212 3456 7890 123", f"补贴打到工行卡{ACCOUNT}"),
    ("社保卡号 1234 5678 9012，已激活", f"社保卡号 {ACCOUNT}，已激活"),
    ("邮箱wang.xy@example.com，材料发这里", f"邮箱{EMAIL}，材料发这里"),
    # addresses and names
    ("王秀英说她住在花木路1234弄5号", f"{NAME}说她住在{ADDRESS}"),
    ("家住浦东新区花木路1234弄5号602室，独居", f"家住浦东新区{ADDRESS}，独居"),
    # the district, the town, the city an address is in stay (a million people each): not
    # an estate's 小区, nor the first character of a name (城市花园)
    ("住上海市静安区延长路5号，闵行区莘庄镇莘建路100号202室，浦东新区锦绣小区5-3-201",
     f"住上海市静安区{ADDRESS}，闵行区莘庄镇{ADDRESS}，浦东新区{ADDRESS}"),
    ("阳光小区3号楼502室，城市花园8号楼201室", f"{ADDRESS}，{ADDRESS}"),
    # building-unit-room without the estate, as residents give it
    ("住12-3-402，她家是7-2-301，5-1-1202漏水，住在21-1-503室",
     f"住{ADDRESS}，她家是{ADDRESS}，{ADDRESS}漏水，住在{ADDRESS}"),
    ("老人住幸福村12组，行动不便，需上门", f"老人住{ADDRESS}，行动不便，需上门"),
    ("住3号楼401室的那位老太太又来了", f"住{ADDRESS}的那位老太太又来了"),
    ("赵大爷住在长寿路88号，子女在外地", f"{NAME}住在{ADDRESS}，子女在外地"),
    ("李阿姨反映上个月的医保报销还没到账", f"{NAME}反映上个月的医保报销还没到账"),
    ("户主刘建国要求加急", f"户主{NAME}要求加急"),
    ("上门走访：阳光小区5栋2单元301，家中无人", f"上门走访：{ADDRESS}，家中无人"),
    ("王老先生的儿子说下周来补材料", f"{NAME}的儿子说下周来补材料"),
    ("儿子王明来办理", f"儿子{NAME}来办理"),
    ("家属申请人：申雪，陪同前来", f"家属申请人：{NAME}，陪同前来"),
    # English notes
    ("Resident called from 138 1234 5678 about her pension",
     f"Resident called from {PHONE} about her pension"),
    ("Mrs Wang lives at No. 5, Lane 1234, Huamu Road", f"{NAME} lives at {ADDRESS}"),
    ("ID number 310115198503121234 checked", f"ID number {ID} checked"),
    ("Call back on 021-5888-1234 after 5pm", f"Call back on {PHONE} after 5pm"),
    ("Email: li.na@example.cn", f"Email: {EMAIL}"),
    ("Applicant Zhang Wei asked about the subsidy", f"Applicant {NAME} asked about the subsidy"),
    ("Moved to Room 602, Building 3 last month", f"Moved to {ADDRESS} last month"),
    ("Her phone: 5888 1234 (landline)", f"Her phone: {PHONE} (landline)"),
    # a resident introducing themselves (a civic app's description, no vault to know them)
    ("你好，我叫李敏，想问失业登记怎么办", f"你好，我叫{NAME}，想问失业登记怎么办"),
    ("她叫欧阳娜娜，是我母亲", f"她叫{NAME}，是我母亲"),
    ("我是张伟，想问一下低保怎么申请", f"我是{NAME}，想问一下低保怎么申请"),
    ("您好我是何丽的女儿，替她来问", f"您好我是{NAME}的女儿，替她来问"),
    ("她老公叫孙立军，在外地打工", f"她老公叫{NAME}，在外地打工"),
    ("孩子名叫刘小雨，今年上初中", f"孩子名叫{NAME}，今年上初中"),
    # a name is not followed by the time of day (周强下午, not 周强下)
    ("他儿子周强下午过来补材料", f"他儿子{NAME}下午过来补材料"),
    # pasted from a chat or a spreadsheet: characters nobody sees between the digits
    ("请回拨139\u200b1234\u200b5678谢谢", f"请回拨{PHONE}谢谢"),
    ("证件号650102\u206019900915\u20606563已核", f"证件号{ID}已核"),
    ("\ufeff手机13812345678", f"\ufeff手机{PHONE}"),
    # one between each digit (an app that keeps a number from being linked): it shows as
    # 13812345678, and read as spaces it was eleven single digits; a flag's tag characters
    ("请回拨1\u200b3\u200b8\u200b1\u200b2\u200b3\u200b4\u200b5\u200b6\u200b7\u200b8谢谢",
     f"请回拨{PHONE}谢谢"),
    ("号码1\u20603\u206081234 5678", f"号码{PHONE}"),
    ("电话138\U000e00201234\U000e00205678", f"电话{PHONE}"),
    # a contact card's thin or narrow spaces, an Arabic letter mark, a variation selector
    ("请回拨139\u20091234\u20095678谢谢", f"请回拨{PHONE}谢谢"),
    ("手机139\u202f1234\u202f5678", f"手机{PHONE}"),
    ("回拨139\u061c1234\ufe0f5678", f"回拨{PHONE}"),
    # a number shown right to left by a direction control: the override reverses every
    # character ("\u202e8765 4321 831" reads 138 1234 5678), an isolate or embedding the
    # groups of digits; the whole run goes, controls and all
    ("请回拨\u202e8765 4321 831\u202c谢谢", f"请回拨{PHONE}谢谢"),
    ("\u202e87654321831", PHONE),
    ("回拨\u20675678 1234 138\u2069", f"回拨{PHONE}"),
    ("证件\u202b1234 0312 1985 310115\u202c已核", f"证件{ID}已核"),
    # numbers spoken and written down in Chinese digits (a phone line's notes, a transcript)
    ("李师傅电话一三八一二三四五六七八", f"{NAME}电话{PHONE}"),
    ("回拨幺三八幺二三四五六七八", f"回拨{PHONE}"),
    ("手机壹叁捌壹贰叁肆伍陆柒捌", f"手机{PHONE}"),
    ("座机零二一五八八八一二三四", f"座机{PHONE}"),
    # digits of other styles pasted from a phone app, separators typed loosely
    ("回拨𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", f"回拨{PHONE}"),
    ("电话 ①③⑧①②③④⑤⑥⑦⑧", f"电话 {PHONE}"),
    ("她的号码138 - 1234 - 5678", f"她的号码{PHONE}"),
    ("号码138  1234  5678白天打", f"号码{PHONE}白天打"),
    ("138_1234_5678或138/1234/5678", f"{PHONE}或{PHONE}"),
    # the people of a case note, listed with sex and age or who they are
    ("王秀英（女，67岁）来咨询高龄津贴", f"{NAME}（女，67岁）来咨询高龄津贴"),
    ("张建国，男，45岁，失业半年", f"{NAME}，男，45岁，失业半年"),
    ("陪同：王小明（儿子），李敏(本人)签字", f"陪同：{NAME}（儿子），{NAME}(本人)签字"),
    ("Zhang Wei, male, 45, asked about the subsidy", f"{NAME}, 45, asked about the subsidy"),
    # building, unit and room in a row after the estate
    ("住锦绣小区5-3-201，独居", f"住{ADDRESS}，独居"),
    ("家住阳光新村 12-502", f"家住{ADDRESS}"),
    # chat accounts reach the person as a phone does
    ("加了微信号 wxid_8k2j3h4g5f，方便联系", f"加了微信号 {ACCOUNT}，方便联系"),
    ("vx: li_min88", f"vx: {ACCOUNT}"),
    ("QQ号12345678，晚上在线", f"QQ号{ACCOUNT}，晚上在线"),
    # short-video and social accounts, utility and bank accounts, a car's frame, a door
    # (fix44: 抖音号 dy_wang88 and 户号 0012345678 were kept)
    ("居民抖音号 dy_wang88，视频里有住址", f"居民抖音号 {ACCOUNT}，视频里有住址"),
    ("快手号：ks_li2023", f"快手号：{ACCOUNT}"),
    ("微博 @wanglei_sh 发帖投诉", f"微博 @{ACCOUNT} 发帖投诉"),
    ("小红书号 9876543210", f"小红书号 {ACCOUNT}"),
    ("B站账号 bili_zhang", f"B站账号 {ACCOUNT}"),
    ("电费户号 0012345678，欠费停电", f"电费户号 {ACCOUNT}，欠费停电"),
    ("户号：3100123456", f"户号：{ACCOUNT}"),
    ("燃气户号 12 3456 7890", f"燃气户号 {ACCOUNT}"),
    # every number of a list after one label (privacy47: 户号 A、B kept B)
    ("户号 0012345678、0098765432欠费", f"户号 {ACCOUNT}、{ACCOUNT}欠费"),
    ("电费户号0012345678，0098765432和0011223344", f"电费户号{ACCOUNT}，{ACCOUNT}和{ACCOUNT}"),
    ("社保卡号A12345678 / B87654321", f"社保卡号{ACCOUNT} / {ACCOUNT}"),
    ("户号 0012345678、20261220到期，账户 1234567、1500000元",
     f"户号 {ACCOUNT}、20261220到期，账户 {ACCOUNT}、1500000元"),
    ("银行账户 310066641018010123456", f"银行账户 {ACCOUNT}"),
    ("银行账号 6222  0212  3456  7890  123", f"银行账号 {ACCOUNT}"),
    ("车架号 LSVAU2180N2183294", f"车架号 {PLATE}"),
    ("车架号后六位 183294", f"车架号后六位 {PLATE}"),
    ("门牌号 36号", f"门牌号 {ADDRESS}"),
    # VIN码 as it is usually written (\bVIN\b saw no edge before 码: kept, redteam46)
    ("抖音ID是dy_wang88", f"抖音ID是{ACCOUNT}"),
    ("微信ID是wxid_8k2j3h4g5f", f"微信ID是{ACCOUNT}"),
    ("VIN码 LSVAU2180N2183294", f"VIN码 {PLATE}"),
    ("VIN 码：LSVAU2180N2183294", f"VIN 码：{PLATE}"),
    ("车辆识别代号(VIN)：LSVAU2180N2183294", f"车辆识别代号(VIN)：{PLATE}"),
    ("车架号后 6 位 183294", f"车架号后 6 位 {PLATE}"),
    ("WeChat account li_min88, prefers texts", f"WeChat account {ACCOUNT}, prefers texts"),
    # who the note names after 收件人 / 配偶 / 儿子叫 ..., and a contact in English
    ("材料寄给收件人：赵敏", f"材料寄给收件人：{NAME}"),
    ("儿子叫王小明，在外地", f"儿子叫{NAME}，在外地"),
    ("配偶刘桂兰已去世", f"配偶{NAME}已去世"),
    ("Contact: Li Min, 13812345678", f"Contact: {NAME}, {PHONE}"),
    # the last four digits of a phone or a card, a room in Chinese digits, a road's section
    ("手机后四位5678，核对一致", f"手机后四位{PHONE}，核对一致"),
    ("医保卡号后四位8888", f"医保卡号后四位{ACCOUNT}"),
    ("家住幸福里小区十二号楼三单元五零二", f"家住{ADDRESS}"),
    ("户籍在人民南路四段12号", f"户籍在{ADDRESS}"),
    # numbers glued to a Latin word, as typed in a hurry
    ("回电tel13812345678，白天", f"回电tel{PHONE}，白天"),
    ("身份证sfz11010519491231002X已核", f"身份证sfz{ID}已核"),
    ("wx13812345678加了", f"wx{PHONE}加了"),
    # who brought the matter, by the role the hotline's form gives them
    ("来电人王建国称家中漏水", f"来电人{NAME}称家中漏水"),
    ("投诉人李秀英对处理结果不满", f"投诉人{NAME}对处理结果不满"),
    ("当事人陈静、求助人周卫东均到场", f"当事人{NAME}、求助人{NAME}均到场"),
    ("来访人：赵国强", f"来访人：{NAME}"),
    # groups parted by what a clerk writes while the resident says them: a semicolon or a
    # full stop after each, the IME's wave dash, a tab, a new line (a form's boxes copied, a
    # chat's lines: \n, \r\n, U+2028), full-width spaces and digits
    ("电话138～0013～8000，晚上打", f"电话{PHONE}，晚上打"),
    ("手机138；0013；8000；谢谢", f"手机{PHONE}；谢谢"),
    ("回拨138;0013;8000", f"回拨{PHONE}"),
    ("她报了138。0013。8000。", f"她报了{PHONE}。"),
    ("电话：\n138\n0013\n8000", f"电话：\n{PHONE}"),
    ("手机138\r\n0013\r\n8000", f"手机{PHONE}"),
    ("手机\u2028138\u20280013\u20288000", f"手机\u2028{PHONE}"),
    ("手机138\t0013\t8000", f"手机{PHONE}"),
    ("电话138    0013    8000（名片上对齐的）", f"电话{PHONE}（名片上对齐的）"),
    ("手机138；\n0013；\n8000", f"手机{PHONE}"),
    ("电话138\n\n0013\n\n8000", f"电话{PHONE}"),
    ("电话138|0013|8000，表格里抄的", f"电话{PHONE}，表格里抄的"),
    # every dash an IME gives (the em dash of shift-minus, ―, ﹣, ー), a full-width slash:
    # before, 身份证 took the first group and the birth date and tail were left in clear
    ("电话138—0013—8000；证件310115—19850312—123X", f"电话{PHONE}；证件{ID}"),
    ("电话138﹣0013﹣8000；证件310115ー19850312ー123X", f"电话{PHONE}；证件{ID}"),
    ("电话138／0013／8000；证件310115\x0b19850312\x0b123X", f"电话{PHONE}；证件{ID}"),
    ("她的手机号是１３８\u3000００１３\u3000８０００", f"她的手机号是{PHONE}"),
    ("回拨138 0013 8000谢谢", f"回拨{PHONE}谢谢"),
    ("+86 138-0013-8000是她儿子", f"{PHONE}是她儿子"),
    ("0086 138 0013 8000", PHONE),
    ("座机(021)5432-1234", f"座机{PHONE}"),
    ("座机（０２１）５４３２－１２３４", f"座机{PHONE}"),
    ("座机021；5432；1234", f"座机{PHONE}"),
    ("家里电话021\n5432\n1234", f"家里电话{PHONE}"),
    ("0086 21 5432 1234", PHONE),
    # from or to abroad: Hong Kong, Macao, Taiwan, any country after +
    ("她香港的号码+852 9123 4567，白天打", f"她香港的号码{PHONE}，白天打"),
    ("澳门号码00853-6612-3456", f"澳门号码{PHONE}"),
    ("Son abroad: +1 415 555 0100, +44 20 7946 0958", f"Son abroad: {PHONE}, {PHONE}"),
    # ID numbers split 6-8-4 so, with the check character x, X or Ｘ
    ("证件310115～19850312～123X已核", f"证件{ID}已核"),
    ("证件310115；19850312；123x", f"证件{ID}"),
    ("证件310115。19850312。123Ｘ", f"证件{ID}"),
    ("ID 110105\r\n19491231\r\n002x", f"ID {ID}"),
    ("身份证110105\u300019491231\u3000002Ｘ", f"身份证{ID}"),
    ("110105〜19491231〜002X", ID),
    ("证件\n310115\n19850312\n123X\n", f"证件\n{ID}\n"),
    # licence plates: whose car blocks the gate, hit whom, is the resident's
    ("门口停的沪A·12345是她儿子的", f"门口停的{PLATE}是她儿子的"),
    ("新能源车沪AD12345，车主不在", f"新能源车{PLATE}，车主不在"),
    ("教练车沪A 1234学", f"教练车{PLATE}"),
    # the city's letter left out, in a note about a car
    ("车牌沪12345停在消防通道，车是苏 23456，白色的",
     f"车牌{PLATE}停在消防通道，车是{PLATE}，白色的"),
    ("车牌粤B12345D，京A·F1234", f"车牌{PLATE}，{PLATE}"),
    ("车牌沪Ａ１２３４５，沪a-12345", f"车牌{PLATE}，{PLATE}"),
    # bank cards whole or in groups of four, social security and medical insurance numbers
    ("工行卡6222021234567890123", f"工行卡{ACCOUNT}"),
    ("卡号：6222 0212 3456 7890 123", f"卡号：{ACCOUNT}"),
    ("银行卡6222\u30000212\u30003456\u30007890", f"银行卡{ACCOUNT}"),
    ("卡6222  0212  3456  7890，工资卡6222 - 0212 - 3456 - 7890", f"卡{ACCOUNT}，工资卡{ACCOUNT}"),
    ("存折6222.0212.3456.7890，手机银行显示622202 1234567890123",
     f"存折{ACCOUNT}，手机银行显示{ACCOUNT}"),
    ("社保卡号：A12345678；医保号：123456789", f"社保卡号：{ACCOUNT}；医保号：{ACCOUNT}"),
    ("社会保障卡号310115198503121234", f"社会保障卡号{ID}"),
    # a room a home is in, though a verb of the center's follows
    ("家住602室办理低保，已到702室上门，无人", f"家住{ADDRESS}办理低保，已到{ADDRESS}上门，无人"),
    # a plate written without its province after its name, a new-energy one with a space
    ("车牌A12345停在小区门口，车号：A·12345", f"车牌{PLATE}停在小区门口，车号：{PLATE}"),
    ("新能源车牌是AD12345，沪AD 12345，plate B12345",
     f"新能源车牌是{PLATE}，{PLATE}，plate {PLATE}"),
    # Hong Kong's and Macao's local eight digits after 联系 / WhatsApp, or after 852 / 853
    ("香港的，联系她9123-4567，WhatsApp 6612 3456", f"香港的，联系她{PHONE}，WhatsApp {PHONE}"),
    ("香港号码852-9123-4567，澳门（853）66123456", f"香港号码{PHONE}，澳门{PHONE}"),
    # groups parted by an asterisk, a colon, x or ×, or 一 typed for a dash
    ("手机138*0013*8000，电话138一0013一8000", f"手机{PHONE}，电话{PHONE}"),
    ("回拨138 x 0013 x 8000，138：0013：8000", f"回拨{PHONE}，{PHONE}"),
    ("证件310115一19850312一123X，座机021×5888×1234", f"证件{ID}，座机{PHONE}"),
    # single digits spaced out as they were read aloud; an old 15-digit ID number alone
    ("她念的号码1 3 8 0 0 1 3 8 0 0 0，再念一遍", f"她念的号码{PHONE}，再念一遍"),
    ("3 1 0 1 1 5 1 9 8 5 0 3 1 2 1 2 3 X已核", f"{ID}已核"),
    ("老人拿的是310115850312123的旧证", f"老人拿的是{ID}的旧证"),
    # a number a narrow box or a chat wrapped onto the next line after a digit or two
    ("手机13\n800138000，证件3\n10115198503121234", f"手机{PHONE}，证件{ID}"),
    ("回拨1380013800\n0谢谢", f"回拨{PHONE}谢谢"),
    # a whole name before its form of address, not only a surname
    ("王小明先生来电，陈建国先生、张秀英女士、欧阳娜娜女士均到场",
     f"{NAME}来电，{NAME}、{NAME}、{NAME}均到场"),
    ("感谢王明先生帮忙，名字：刘小雨，姓 名：赵国强",
     f"感谢{NAME}帮忙，名字：{NAME}，姓 名：{NAME}"),
    # a surname after a word of thanks that ends in one (感谢 + 谢老师: teacher Xie)
    ("感谢谢老师，谢谢王老师，辛苦李阿姨", f"感谢{NAME}，谢谢{NAME}，辛苦{NAME}"),
    # an ID number or a card after a serial's name: its check digit holds, it goes
    ("登记号310115198503121234，流水号4111 1111 1111 1111", f"登记号{ID}，流水号{ACCOUNT}"),
    # a name that begins as a day of the week or a word of thanks does (周一明, 辛苦 + 李阿姨)
    ("周一明先生来电，凌晨张先生来电，辛苦李阿姨", f"{NAME}来电，凌晨{NAME}来电，辛苦{NAME}"),
    # a name after the word for who they are to the resident, before a verb of speech
    ("邻居李四说没见过她，她老公孙立军来电，朋友张建国告诉我",
     f"邻居{NAME}说没见过她，她老公{NAME}来电，朋友{NAME}告诉我"),
    # a landline without its area code before 元旦 (New Year's Day: when to call back)
    ("电话68494601元旦回访，座机6849 4601 元宵节后再打",
     f"电话{PHONE}元旦回访，座机{PHONE} 元宵节后再打"),
    # a whole name before the other forms of address (师傅, 同志, 医生, 叔叔, 大姐 ...)
    ("王德发师傅修好了，李建国同志、张秀英医生、陈国强叔叔、赵丽娟大姐到场",
     f"{NAME}修好了，{NAME}、{NAME}、{NAME}、{NAME}到场"),
    # what colleagues and neighbours call each other, and a name after 叫 or before 本人
    ("小王说他明天来补材料，找老李帮忙填表", f"{NAME}说他明天来补材料，找{NAME}帮忙填表"),
    # a nickname before what the note says of that person (privacy47: these kept it)
    ("老王腿脚不便，老刘住院了，老陈独居", f"{NAME}腿脚不便，{NAME}住院了，{NAME}独居"),
    ("小刘媳妇来电，小陈妈妈腿摔了", f"{NAME}媳妇来电，{NAME}妈妈腿摔了"),
    ("老王低保材料齐了，老赵80岁了，回访老孙满意",
     f"{NAME}低保材料齐了，{NAME}80岁了，回访{NAME}满意"),
    ("帮老周申请了津贴，老吴一直没拿到", f"帮{NAME}申请了津贴，{NAME}一直没拿到"),
    # ... and before how to reach them, or a number (redteam48: the phone went, the nickname
    # beside it stayed)
    ("老王电话13812345678打不通，老李手机号换了，小陈微信联系", f"{NAME}电话{PHONE}打不通，"
     f"{NAME}手机号换了，{NAME}微信联系"),
    ("小刘13812345678，老赵住在幸福小区", f"{NAME}{PHONE}，{NAME}住在幸福小区"),
    ("老王身份证过期了，小刘户口在外地，老周退休了，老吴：13812345678",
     f"{NAME}身份证过期了，{NAME}户口在外地，{NAME}退休了，{NAME}：{PHONE}"),
    ("王姐说她女儿也要来，李哥陪着", f"{NAME}说她女儿也要来，{NAME}陪着"),
    ("叫张伟来一趟，叫李敏过来签字", f"叫{NAME}来一趟，叫{NAME}过来签字"),
    ("王秀英本人签字，须由陈静本人来办理", f"{NAME}本人签字，须由{NAME}本人来办理"),
    # whom a follow-up or a referred unit reached, the clause ending with the name
    ("已联系王秀英，她说下周再来；已通知李建国。", f"已联系{NAME}，她说下周再来；已通知{NAME}。"),
    # ... before a colon, a dash, 了 / 并 / 和, and each of a list of them
    ("已电话联系王秀英：下周来。已通知李建国——他说好。已联系赵丽娟了，已联系陈国强并告知",
     f"已电话联系{NAME}：下周来。已通知{NAME}——他说好。已联系{NAME}了，已联系{NAME}并告知"),
    ("已联系王秀英、李建国、张伟。已通知刘桂兰和陈静。",
     f"已联系{NAME}、{NAME}、{NAME}。已通知{NAME}和{NAME}。"),
    # ... or not reached (未 / 没), as a hand-back reason or a follow-up's note says it
    ("电话联系王秀英未接通，已回访李建国没人接，已通知张伟未到",
     f"电话联系{NAME}未接通，已回访{NAME}没人接，已通知{NAME}未到"),
    # a relative named after the written 其 + who they are (其子, 其母 ...)
    ("其子张伟表示下周来办，由其母王秀英领取，其女李敏代办",
     f"其子{NAME}表示下周来办，由其母{NAME}领取，其女{NAME}代办"),
    # Hong Kong's eight digits alone, and after 号码
    ("女儿在香港，9123 4567，号码9123-4567", f"女儿在香港，{PHONE}，号码{PHONE}"),
    # a hospital's numbers for the patient
    ("住院号12345678，病历号：A20261234，病案号 0012345", f"住院号{RECORD}，病历号：{RECORD}，"
     f"病案号 {RECORD}"),
    # an ID number after a serial's name, its check digit mistyped: born 1985, no serial's day
    ("受理号310115198503121236（填成身份证号了）", f"受理号{ID}（填成身份证号了）"),
    # a name that begins as an office does; Hong Kong's digits after a chat's or a phone's 号
    ("已通知安保国。微信号 9123 4567，QQ号 6123 4567，她在3楼 9123 4567",
     f"已通知{NAME}。微信号 {PHONE}，QQ号 {PHONE}，她在3楼 {PHONE}"),
    # the tail of an ID number after 尾号, four characters or more
    ("身份证尾号123X，核对无误；身份证号尾号是0012",
     f"身份证尾号{ID}，核对无误；身份证号尾号是{ID}"),
    ("身份证号末尾0012，身份证号后四位数是0012，身份证尾号 1 2 3 X",
     f"身份证号末尾{ID}，身份证号后四位数是{ID}，身份证尾号 {ID}"),
    # a name before 的 and a relative
    ("已联系张三丰的女儿，王秀英的儿子来电，由王秀英之女领取",
     f"已联系{NAME}的女儿，{NAME}的儿子来电，由{NAME}之女领取"),
    # a referred unit's or a helper's staff after 经办人 / 回复人 / 负责人 / 签收人
    ("经办人李明说下周回复。回复人：李建国（网格员）。负责人：陈建华。签收人张伟",
     f"经办人{NAME}说下周回复。回复人：{NAME}（网格员）。负责人：{NAME}。签收人{NAME}"),
    ("联系人：王芳 13912345678", f"联系人：{NAME} {PHONE}"),
    ("经办人：李明、王芳。", f"经办人：{NAME}、{NAME}。"),
    # a nickname with 头, or before 上门
    ("老王头说他不来了，找老李头，由网格员小陈上门",
     f"{NAME}说他不来了，找{NAME}，由网格员{NAME}上门"),
    # a name after 跟 / 给 / 请 and what was done with them (the shortest name a verb follows)
    ("跟王秀英沟通过了，给王秀英打过电话，请王秀英于周一来，请宋江于周二来",
     f"跟{NAME}沟通过了，给{NAME}打过电话，请{NAME}于周一来，请{NAME}于周二来"),
    # ... a given name ending in 发 before a verb, and one that begins as a day of the week
    ("给王建发打电话，请周一明来签字", f"给{NAME}打电话，请{NAME}来签字"),
    # a name alone opening a clause before what the person did at the counter
    ("刘志刚同意签字，周海燕确认收到补贴。吴桂芬已签字确认，今天上午郑国庆到场办理了，由何建军签收",
     f"{NAME}同意签字，{NAME}确认收到补贴。{NAME}已签字确认，今天上午{NAME}到场办理了，由{NAME}签收"),
    # 小 and a given name's character, a colleague or a neighbour as they are called
    ("小芳说明天带孩子来，小丽已经把表填好了，跟小燕核对过了，小娟今天请假",
     f"{NAME}说明天带孩子来，{NAME}已经把表填好了，跟{NAME}核对过了，{NAME}今天请假"),
    # every relative in every rule that names one (one list): 妈妈, 孩子, 哥哥 before a name
    # without 的, 侄子 after 的, as 女儿 and 儿子 were
    ("王秀英妈妈来了，张伟孩子上学，李明哥哥说，宋江的侄子来了",
     f"{NAME}妈妈来了，{NAME}孩子上学，{NAME}哥哥说，{NAME}的侄子来了"),
    # a post before or after a whole name: the name goes, the post stays
    ("副主任陈刚已批示，书记李红梅答复，王建国局长来过，孙建平所长到场，车间主任王建国同意",
     f"副主任{NAME}已批示，书记{NAME}答复，{NAME}局长来过，{NAME}所长到场，车间主任{NAME}同意"),
    ("给王建发短信提醒，已给李国发微信，给陈永发发了通知，给王芳发来材料",
     f"给{NAME}短信提醒，已给{NAME}微信，给{NAME}发了通知，给{NAME}发来材料"),
    # a name right before a relative, without 的
    ("张三丰家属说下周来，已联系王秀英女儿，由李建国老伴代办",
     f"{NAME}家属说下周来，已联系{NAME}女儿，由{NAME}老伴代办"),
    # a quoted name before a verb of speech; a nickname before 办
    ("“王秀英”说她不来了，「李建国」表示同意，小王办的，找老李办",
     f"“{NAME}”说她不来了，「{NAME}」表示同意，{NAME}办的，找{NAME}办"),
    # two rooms of one home, a building and its room parted by a space
    ("家住5201 5202室，她儿子住1203、1204室，在1号楼 502室",
     f"家住{ADDRESS}，她儿子住{ADDRESS}，在{ADDRESS}"),
    # a surname and a post name one person of an office, as 王主任 does
    ("跟张科长沟通过了，李所长说下周办，王经理来电",
     f"跟{NAME}沟通过了，{NAME}说下周办，{NAME}来电"),
    # who a community center's notes name by who they are: a household, a grid worker, a
    # volunteer, a relative by the written 其 or by kin, staff after 工作人员：
    ("住户韩梅梅反映电梯故障，低保户彭德怀的复核已完成，网格员周敏已上门，志愿者柳青已帮老人填表",
     f"住户{NAME}反映电梯故障，低保户{NAME}的复核已完成，网格员{NAME}已上门，志愿者{NAME}已帮老人填表"),
    ("由其侄女潘晓燕代为签收，差评人实为其邻居谢文杰，子女王伟说他们自己办，老伴儿任桂英瘫痪在床",
     f"由其侄女{NAME}代为签收，差评人实为其邻居{NAME}，子女{NAME}说他们自己办，老伴儿{NAME}瘫痪在床"),
    ("孙女叫曹雨萱，我家老头子高建平住院，涉事工作人员：王磊（工号1023）",
     f"孙女叫{NAME}，我家老头子{NAME}住院，涉事工作人员：{NAME}（工号1023）"),
    # a rating's praise of a nickname
    ("小王服务态度很好，给个好评，小周辛苦了，小张人很好",
     f"{NAME}服务态度很好，给个好评，{NAME}辛苦了，{NAME}人很好"),
    # a community's helpers addressed by surname and post; an Alipay account after its name
    ("吴社工跟进，孙网格员上门了，退款打到支付宝：wang_xy88",
     f"{NAME}跟进，{NAME}上门了，退款打到支付宝：{ACCOUNT}"),
    # whom a 代办 or a help task was done for
    ("代王秀英签字，替李建国领取，帮张伟填表", f"代{NAME}签字，替{NAME}领取，帮{NAME}填表"),
    # a disability certificate's number: the ID number and two digits (kind, grade)
    ("残疾证号31011519850312123441已核验", f"残疾证号{ID}已核验"),
    # 老 + a surname before a son-in-law, a daughter, an illness (misc49: these leaked; 老毛病
    # and 小孙女儿 are KEPT)
    ("老王女婿来电，老刘女儿代办，老王病了一周", f"{NAME}女婿来电，{NAME}女儿代办，{NAME}病了一周"),

]

KEPT = [
    # what begins like a nickname before a word about a person, and is no one (privacy47)
    "小孙女儿放学来接，老毛病又犯了，老年补贴已发放，小额补贴下月，老房子一直漏水",
    "王府井那边，老城区改造，小区门口老人摔了，师傅说明天来修，老师说孩子没来上学",
    "年龄小于18岁的子女，每小时15元，小于1000元不用申报，老年人电话回访，小组电话会议",
    "老师：明天来，老毛病又犯了，小区住户，老房住人，老干部退休，小时工资30元，老家：安徽",
    "他老毛病犯了，小毛病不少，小孙女婿来了，老年病门诊",
    # the apps and labels without anyone's account after them (fix44)
    "居民关注抖音号宣传，请在抖音搜索社区号，小红书上有很多攻略，微博热搜，B站 UP主",
    "抖音 20261220 发布的视频，快手 2026-12-20 直播，微博 weibo.com 上看到",
    "户号已核对，户口本户号页，门牌号已更新，车架号核对无误，账户 1500000元已到账",
    # a count of door plates is no door (redteam46: 门牌200块 was scrubbed as an address)
    "社区统一更换门牌200块，门牌 50 个已到货",
    # offices not reached, and what 其 + a relation is said before (no name after it)
    "已通知房管未回，联系居委未果，已联系万达未回复，联系方式未留，已通知本人未到，联系未果",
    "其子于下周来办，其子在外地工作，其父母均已去世，其子女均在外地，其夫妇二人，其女已出嫁",
    # a day after who someone is (居民周一来过 lost 周一 as a name), what a grid worker or a
    # volunteer does, children and grandchildren in a clause
    "居民周一来过，老人周三上午来窗口，家属周五来办，网格员周一上门，网格员向居民解释政策",
    "志愿者服务队，志愿者万分感动，社工介入后情绪稳定，住户反映噪音，低保户家庭，困难户补助",
    "子女均在外地，子女常年在外，邻居帮忙，孙子高考，孙女周末来，小区很好，老人很满意，小组服务",
    "残疾证已办，残疾证号码待补",
    # where someone is from, lives or works, right after who they are (a place, a town, a
    # family's village), and what a household has
    "家属苏州来的，老人江苏过来的，居民王家宅的，居民徐家汇附近，老人罗店镇的，家属黄浦住院",
    # Pudong's and the suburbs' towns after who someone is (金桥, 高桥, 马桥: a surname first)
    "居民金桥上班，女儿高桥那边住，老伴马桥的老家，儿子康桥工作，子女金杨新村住，居民唐镇搬来的",
    "住户车辆已挪，居民文件齐了，家属施工单位的，老人温度正常，居民周边都问了",
    # a place's own helpers and posts (a district or a town ending in a surname), the apps
    "静安社工，张江网格员，长宁科长，向网格员反映，医务社工介入，支付宝转账500元，支付宝 alipay",
    "帮忙填表，帮老人填表，代为签字，帮孙子申请，帮高龄老人办理，代付款申请已提交，帮扶申请",
    # what a resident says to staff every day: the 谢 of 谢谢 / 感谢, the 麻 of 麻烦 and the
    # 辛 of 辛苦 are no surnames, nor the 任 of 班主任 or the 边 of 那边
    "谢谢老师，感谢阿姨，多谢师傅；麻烦老师了，辛苦阿姨了，感谢窗口老师",
    "班主任老师来电，那边老师说要补材料，这边阿姨帮忙填表",
    # a case serial (district, day, count) and a settlement's serial after their names
    "受理号310115202612200001已办结，医保结算流水号1234567890123456，案件编号310115202612310012",
    # a business's old 15-digit registration number after its licence's name (a district's
    # code and a count: 40 01 23 would be a birth date)
    "个体工商户营业执照310115600123456，营业执照号310115400123456，纳税人识别号310115400123456",
    # two days written as eight digits each, from and to: sixteen digits, no card
    "补贴发放期20261220-20270104，证件有效期2026 1220 2027 0104",
    # an amount a few words after 电话 / 联系: how much, not whom
    "电话回访，金额2000000元；联系居委会，补贴1380000元",
    # a day of the week before a title (周 is a surname), many (许多), a trade
    "周一老师来电，周日阿姨来值班，许多阿姨都来问；石材师傅、包车师傅、解放军同志帮忙",
    # a relative or a neighbour speaking, named by what they are
    "孩子高兴说，妈妈一直说，姐姐常说，朋友介绍说，邻居家来电，爸爸单位说，奶奶孙子说",
    # a trade or a post before a title, not a name
    "修车师傅、管道师傅、出租车司机师傅来过，车间主任和党支部书记签字",
    # amounts and counts in a list, parted by commas, stay (no phone number's 11 digits)
    "补发1420，1500，1600元；第13、14、15页；2024，2025，2026年",
    # amounts written with thousands, listed with the IME's comma: eleven digits in a row
    # that begin as a mobile number does (158,000 is no phone's group)
    "两笔补偿158,000，12,500元，退休金150,000，13,800元，医疗费用132,000，18,500，已报销",
    # numbers listed with the 顿号 that make eleven digits: no phone is dictated so
    "抽查了第138、139、140、15号卷宗",
    # relatives, roles and offices named by what they are, not by a name, though the word
    # begins with a surname (孙, 房, 高, 党, 钟, 包, 卫)
    "孙子（男，10岁）在读小学，孙女，女，8岁",
    "房东（男，50岁）要求涨租，房东说下月涨房租",
    "高中生（男，16岁）申请助学金，党员（男，70岁）",
    "钟点工（女，50岁）每周来两次，包工头（男）拖欠工资",
    "孙子说爷爷记性不好",
    "家属叫车送医院，老人叫孙子来",
    # a clause opened by a word beginning with a surname, before 说
    "材料不全，万一说不清楚就麻烦了；她很着急，常常说睡不着",
    "老人耳背，关键说了好几遍；情况复杂，简单说就是没钱；严格说不符合条件",
    "总之，包括说明材料都要交；孩子小，毕竟说不清",
    # a form of address after a post, and 向 ("to") before a title
    "已向主任汇报，向医生说明病情",
    "小区保安大哥帮忙，门卫大爷代收，出租车师傅送来的",
    "卫健委来电询问，房管局来电核实",
    "退伍军人（男，60岁），卫生员说明天来",
    # an illness, an accident, a home after a relation word
    "母亲高血压，父亲车祸后瘫痪，儿子高三",
    "老人卫生间摔倒，患者左腿骨折，患者严重贫血",
    "家属关心报销进度，居民房租上涨，申请人房产已过户",
    # the center's own counters and the size of a flat
    "请到一楼3号窗口，1号2号窗口都排满了",
    "租了一室一厅，住两室一厅的老房子",
    # a date after an estate; chat groups, no account
    "锦绣小区2026-12-20停水，新村2026-12起",
    # ranges of amounts, counts and years after a place word (政府, 村, 城, 新村 ...)
    "由市政府500-1000元兜底，农村1000-2000元不等",
    "新村100-200人参加，东城2024-2026年改造",
    "QQ group notify later; WeChat group",
    "Called the resident Monday morning; Applicant Status: pending",
    "Resident Services Center called; Contact: Window 5 staff",
    "我叫了车，下午三点到",
    # where a resident is from, what they came for, a relative calling a car
    "我是江苏的，来问社保转移",
    "我是江西人，来办退休",
    "我是吉林来的，异地就医备案",
    "我是来办低保的，妈妈叫车来接",
    "他叫我明天再来",
    "请于2026-12-10前补交离职证明",
    "已报销1234.50元，剩余3200元下月发放",
    "依据沪人社规〔2024〕12号文件第三条",
    "国办发〔2023〕5号文件规定的补贴标准",
    "事项编码SA-HARDSHIP-SUBSIDY，已受理",
    "下午14:30在5号窗口办理，取号A012",
    "家中3口人，住院12天，78岁",
    "12月10号前办结，逾期需重新申请",
    "可拨打12345市民热线或12333咨询",
    "第3次来访，情绪激动，已安抚",
    "2026年12月10日召开听证会，地点在3楼会议室",
    "低保金每月1,530元，从2027年1月起调整",
    "材料共5份，缺2份，已告知",
    "身份证2026-12-10到期，提醒换证",
    "电话里约了2026.12.15上门",
    "Deadline 2026-12-10, amount 1234.50 yuan, policy No. 12",
    "Referred to window 5 at 14:30; 3 documents missing",
    "She paid 1234.50 on 10/12/2026 and said the hotel was fine",
    "转介就业服务窗口，已电话告知",
    "case 12345678-1381-4234-8567-890123456789 reopened",
    # a relation word followed by what the relative does, not by their name
    "家属申请医疗费用补助",
    "家属陪同前来",
    "其女儿代办",
    "老伴申领高龄津贴，女儿申诉上月未到账",
    "患者费用较高，家属向社区反映",
    "老人曾多次来访，家属陆续补材料",
    "居民符合条件，户主安排好了",
    # Chinese digits in ordinary sentences, chat apps without an account, dates with slashes
    "一下子来了三四次，一直没办成，第一二三项材料已交",
    "已微信告知，加入社区微信群",
    "请于2026/12/10前补交，身份证2026/12/10到期",
    "二〇二六年十二月十日来访",
    # sex and relations without a name, dates and counts after an estate
    "高龄，男性老人独居，女儿在外地",
    "申请人，女，无业；常住，男",
    "小区12-10召开居民会议，新村5-6月发放",
    # digits glued to hex or to one capital letter: an id or an order number, not a number
    "日志id 3f2a13812345678b，订单号A20261204000123456",
    # the same roles before what they did or felt, and 高度 (highly) after any of them
    "投诉人要求退款，当事人双方已调解，来访人员较多",
    "来电人高度紧张，居民高度评价，投诉人于周一来电，当事人情绪激动",
    # what those separators part in a note that is no one's number: lists of amounts, counts
    # and dates, ranges, times, case numbers one a line; a plate's shape without its digits
    "补发1420；1500；1600元，第138；139；140号，收入3800；3900；4000；4100元",
    "时间：2026-12-20\n2026-12-21\n2026-12-22；2026-12-31 23:30；2027-01-01",
    "金额：1380\n1500\n1600；1380。2026年起调整；合计：\n158,000\n12,500",
    "办理时间9:00～11:30；14:00～17:00，2024～2026年，13800～15000元，第12～18页",
    "身份证2026-12-10到期；2027年换，身份证2026-12-10到期；2027-01-01起",
    "编号2026120100012；2026120100013，20261220\n20261221，14:30\n15:30",
    # a range of serials that repeats the day, and serials before a day: 0001 or 0123 is no
    # area code (China's are 010, 02x, 03xx to 09xx)
    "受理编号20261205-0001～20261205-0099，排号0003～2341 5678",
    "单号 0001；20261205；0099，流水号0123。20261205。编号（0001）～20261205",
    "凭证号0001-2026-1205，年度0001—20261205",
    "(2026)沪0115民初12345号；(2026)沪0115民初12346号，12月20日、21日、22日",
    "补贴标准：1500～2000～2500元，2026/12/20～2027/01/05，截至2026.12.20。2027.1.1起",
    "新A轮融资，沪A类企业，沪B股，苏E12，iPhone 15，CPU i7-12345，排队号A012；A013",
    # a relative and what they have or do, a place or a day before one
    "孩子高考，孩子常年在外，妈妈常说，奶奶高血压，家人陪同，亲属关系证明，农村孩子，江西的奶奶，周一的妈妈",
    # 小 and a thing, a solar term
    "小红书上看到的，小红花，小燕子飞来，小超市，小美女说，小雪那天下了雨，小宝宝来了",
    # who someone is, an office, a day, a trade, a thing before what was agreed or signed
    "房东同意了，万科确认，余额确认，车票已领取，居委会同意，周一确认，石材确认，家属同意签字",
    # an office or a place before its head, and what a post or a resident does
    "卫生院院长来电，文化站站长说，安监站长到场，华为经理来电，公安局长批示，派出所所长到场",
    "主任严肃批评了物业，书记任期到明年，主任高度重视，主任周一来，居民陈述情况属实",
    "第3-5-7条都适用，12-20-2026截止，受理号 2026-1220-0001，补贴1-10-100元，v1.2-3-456",
    "车管所说沪12345号文件，车主打了沪12345热线，车费沪12345元，车牌沪1234",
    "补贴|1420|1500|1380|1500|元，东城2024—2026年改造，办理时间9:00—11:30",
    # a date after a card's name says when, not which card (it was taken for an account)
    "社保卡2026-12-31到期，提醒换卡；社保卡号 2026-12-31 23:30 激活；医保卡2027/1/4起用",
    # a sign before an amount or a measure, not a country code
    "加价+15000000元，调整+1,500,000，气温+12度，较上年+20261220人次",
    # a room of the center a resident is sent to (it went as an address)
    "请到205室办理，到二楼201室领表，在3楼302室等候，会议在3楼302会议室",
    # four years or an amount in groups of four are no card (2023 2024 2025 2026年 was one)
    "2023 2024 2025 2026年的补贴，2023-2024-2025-2026连续四年，金额1234 5678 9012 3456元",
    # a serial that begins as a call to Taiwan or Hong Kong does, or holds an old ID's shape
    "受理号：00886123456789，编号：852-9123-4567，交易流水 310115850312123",
    "营业执照注册号310115000123456，合同号310115850312123",
    # words a form of address follows that are no name, and places that begin with a surname
    "王府井、张江镇、李子园路都有网点；先生不在家，女士们先生们",
    "项目老师、高中老师、文化老师、金牌阿姨、甘肃大爷、韩国女士、房东阿姨来了",
    # the day to be reached on, whatever the calendar: a Sunday, New Year's Eve, 2027
    "联系20261220回访，联系20261231 23:30再来，联系20270105",
    # a day and a time after a phone's word: the hour was read as the number's last group
    "约好电话2026-12-31 23:30回访，联系2026-12-20 15:30，联系方式2027-01-05 09:00更新",
    # times, sizes, ratios and sums with the new separators; a plate's keyword, no plate
    "会议13:00-14:30，尺寸120x60x80cm，比例1:1000，共3*4*5箱，计算138*12=1656元",
    "第1 2 3 4 5 6 7 8 9 10 11项，车牌号码不清楚，车号A012排队，车辆型号A12345",
    # counts one a line, dates one a line: nothing wrapped
    "共12\n3份，第1\n2\n3项，1\n3\n8\n0\n0\n1\n3\n8\n0\n0\n0，20261220\n20261221",
    # 小 / 老 before a surname that is no one's nickname; 叫 before no name
    "小区里老年人多，养老金的发放，小车来了，老房的产权，小程序的二维码，小孙子的学费",
    "叫车来，叫孙子过来，谢谢姐，万元户，申请人本人，车主本人到场，包括本人在内",
    "请提供联系方式。联系金融机构办理，回访满意，通知尚未送达，联系房东，联系高龄老人",
    "尚需本人到场，方可由本人领取，现场查验本人证件，应届毕业生本人，已联系石材厂。保安哥说",
    # ranges and amounts in two groups of four; a serial with its day; a bed
    "月收入5000-6000，补贴6000 8000元之间，受理号310115202612200001，住院号2床",
    # a sum or a year after a hospital card's name
    "就医卡 1500元，门诊卡 1000 元，住院卡 3000 元押金，体检卡2026年到期",
    # the office a follow-up told or called, ending the clause as a name would
    "已通知房管。已联系卫健。已告知施工方。已通知党支部。已联系文化馆。已通知街道。已联系居委会。"
    "已告知物业。已联系徐汇。已联系宁波。已联系车辆。叫安保来，叫房管来看，叫管道工来修",
    "已联系了解情况。已通知街道和社区，已联系物业并告知，已联系房东了，已通知申请人和家属",
    "已通知商铺和商家，已联系管道和燃气公司，已联系华润和龙湖物业",
    "城管哥说摊位要挪，城管大哥来了",
    # rooms, seats, tickets, a queue's numbers and amounts in two groups of four; a run of them
    "房号6101 6102，第5201 5202号，取号单 5001 5002，工号 5012 5013，会议室5201 5202，"
    "补贴 9512 5080，6101 6102房间，座位号 9001 9002，5201 5202 5203",
    # the center's own hall, a place before a title
    "请到3号楼2楼办事大厅取号",
    "王府井先生",
    # the ordinary words after 跟 / 给 / 请, days, offices, a surname and a post, a place
    "已跟进，给予补助，给付标准不变，给付金额于每月发放，请示领导，请假一天，请周一来，请家属于周一来",
    "跟居委会沟通过了，给社区打过电话，跟施工方沟通，给房东打过电话，给孙子打电话",
    # a day before what is done on it; a preposition before a relative; 发 in 发来
    "请周一再来，请周二或周三来，请周一九点来，请周一上午来，向姐姐反映，向妈妈说了，“一网通办”说明",
    # a post after a word that ends in a surname, a trade, a place's head; relatives not named
    "公安局长说，分管科长来了，相关处长，免费律师，长宁区长，照顾生病女儿，房东家属说，通知申请人家属，"
    "老龄办，小区办",
    "请申请人本人携带身份证来，请安排人员来，请常住人口来，请黄山来，请尽快来，给包裹寄回",
    # offices and a post after 联系人 / 经办人 / 负责人, and what the staff did
    "联系人：社区居委会，经办人：民政科，负责人：居委会主任，负责人解释说明，负责人马上处理",
    # who someone is, a day and a place before 的 and a relative; a stone, a place
    "房东的女儿，居委会的主任，老人的女儿，申请人的配偶，周一的孩子，江西的亲属，管理员的儿子",
    "老石头，老龙头，解释说明，养老上门服务，小区上门",
    # too short to be an ID's tail, a counter after it, 之 in a word, offices listed
    "身份证尾号12，身份证后四位已核 5号窗口，总之女儿来了，联系人：居委会、物业",
    # what a post does right after it, where a household is and what it has (redteam38's
    # notes: a post opens a name since scrub10, 副主任陈刚)
    "主任许诺下周解决，科长连忙赶到现场，主任简要介绍了政策，经理关照过要优先办理",
    "居民江边散步时摔倒，申请人余款已退回，家属金钱上有困难，老人胡乱签了字，独居老人关爱探访",
    # a town, a board, a workshop, a thing before what it did or had done; an office before
    # its head
    "会上，高桥镇同意协调场地。调解中，董事长同意赔偿。慰问品：毛毯已领取。车间组长已签字",
    "金星村村长来电说明情况",
    # cities a relative is from, before who they are
    "吉安女儿来电，江门亲属寄来了材料，白银家人不同意，池州孩子在本区上学",
    # a file's, a ticket's, an article's numbers in the shape of building-unit-room; the
    # city's hotline in a note about a car
    "档案编号12-3-0456已归档，工单号 1-12-3456 已退回，依据第2-1-105条办理",
    "车辆乱停，居民已打京12345反映",
    # what a mediator or who has the shift does (no name after them)
    "调解员说明了程序，值班人员已到岗，调解员高度重视，接班人请跟进工单",
    # a floor and a room of the center a resident is sent to
    "请到中心三楼302室领取，到本中心二楼205室办理",

]

RESIDENT = KnownPerson(name="王秀英", phone="13812345678", id_number="310115198503121234",
                       address="上海市浦东新区花木路1234弄5号602室")

ABOUT_THE_RESIDENT = [
    ("今天王秀英来过", f"今天{NAME}来过"),
    ("王阿姨说上次的钱没到", f"{NAME}说上次的钱没到"),
    ("秀英阿姨情绪不错", f"{NAME}情绪不错"),
    ("老王的女儿会来补材料", f"{NAME}的女儿会来补材料"),
    ("王 秀 英本人签字", f"{NAME}本人签字"),
    ("地址花木路1234弄5号602室", f"地址{ADDRESS}"),
    ("她的手机是138 1234 5678", f"她的手机是{PHONE}"),
    ("证件3101151985 0312 1234已核", f"证件{ID}已核"),
    ("Ms Wang prefers calls in the morning", f"{NAME} prefers calls in the morning"),
    ("wang xiuying asked about the subsidy", f"{NAME} asked about the subsidy"),
    ("Xiuying Wang signed", f"{NAME} signed"),
]


@pytest.mark.parametrize(("typed", "stored"), SCRUBBED)
def test_what_a_clerk_types_loses_the_persons_data(typed: str, stored: str) -> None:
    assert redact(typed) == stored
    assert redact(stored) == stored, "scrubbing again (at export) changes nothing"


@pytest.mark.parametrize("typed", KEPT)
def test_dates_amounts_policy_numbers_codes_times_and_counts_stay(typed: str) -> None:
    assert redact(typed) == typed


@pytest.mark.parametrize(("typed", "stored"), ABOUT_THE_RESIDENT)
def test_the_resident_the_case_names_is_scrubbed_in_every_form(typed: str, stored: str) -> None:
    assert redact(typed, RESIDENT) == stored
    assert redact(stored, RESIDENT) == stored


def test_a_name_the_vault_does_not_know_typed_alone_is_not_caught() -> None:
    """The limit docs/security.md states: nothing marks 王秀英 as a name here but the vault
    (今天王秀英来过 goes since scrub49: a time glued before the name opens its clause; 听说王秀英
    今天来过 since scrub52)."""
    assert redact("王秀英材料已补") == "王秀英材料已补"


def test_a_landline_on_file_is_found_without_its_area_code() -> None:
    resident = KnownPerson(name="陈国华", phone="021-58881234")
    assert redact("她家5888 1234没人接", resident) == f"她家{PHONE}没人接"
    assert redact("陈先生的电话021 5888 1234", resident) == f"{NAME}的电话{PHONE}"
    assert redact("她家5888；1234没人接，5888～1234也试了", resident) == (
        f"她家{PHONE}没人接，{PHONE}也试了")


def test_a_latin_name_on_file_is_found_with_its_form_of_address() -> None:
    resident = KnownPerson(name="John Smith")
    assert redact("Mr. Smith asked; john smith again", resident) == f"{NAME} asked; {NAME} again"


def test_the_address_is_known_without_its_province_city_and_district() -> None:
    assert address_variants("上海市浦东新区花木街道花木路1234弄5号602室") == [
        "上海市浦东新区花木街道花木路1234弄5号602室", "浦东新区花木街道花木路1234弄5号602室",
        "花木街道花木路1234弄5号602室", "花木路1234弄5号602室"]


def test_a_known_person_never_shows_its_data_when_printed() -> None:
    assert "王秀英" not in repr(RESIDENT) and "138" not in str(RESIDENT)
    assert not KnownPerson() and RESIDENT


def test_the_corpus_is_large_enough_to_mean_something() -> None:
    assert len(SCRUBBED) + len(KEPT) + len(ABOUT_THE_RESIDENT) >= 66


def test_two_known_people_are_scrubbed_together_and_hidden_in_repr() -> None:
    """代办: the beneficiary and the relative applying for them, both on file."""
    mother = KnownPerson(name="王秀英", phone="13812345678")
    both = mother.also(KnownPerson(name="钱芳菲", address="浦东新区花木路8号"))
    assert redact("钱芳菲住花木路8号，王秀英的手机138 1234 5678", both) == (
        f"{NAME}住{ADDRESS}，{NAME}的手机{PHONE}")
    assert mother.also(None) is mother and mother.also(KnownPerson()) is mother
    assert "钱芳菲" not in repr(both) and bool(KnownPerson().also(mother))


MINORITY_NAME = KnownPerson(name="阿卜杜拉·艾买提", phone="13912345678")


@pytest.mark.parametrize("dot", ["·", "・", "･", "•", "‧", "\u200b·\u200b", " · "])
def test_a_name_on_file_is_found_whatever_dot_joins_its_parts(dot: str) -> None:
    """Uyghur and other names in Chinese characters are written with a middle dot; an IME
    gives the katakana dot (・) as often as the Chinese one (·)."""
    assert redact(f"阿卜杜拉{dot}艾买提来咨询", MINORITY_NAME) == f"{NAME}来咨询"


@pytest.mark.parametrize("typed", [
    "手机13812345678，68494601是她家座机",  # the marker's own 电话 is no keyword
    "电话139—0013—8000沪D13732",  # a plate right after a number
    "回拨13812345678+7 181 690 767 813",  # a number from abroad right after one
])
def test_scrubbing_again_next_to_a_marker_changes_nothing(typed: str) -> None:
    once = redact(typed)
    assert redact(once) == once


def test_scrubbing_again_changes_nothing_on_any_mix_of_digits_and_separators() -> None:
    """Seeded, so the same texts every run: digits, every separator a number's groups may
    have, province characters, letters, keywords, in any order."""
    alphabet = [*"0123456789" * 6, *"；;。～~|\n\r —-./，、 沪A京BDX+0086电话证件卡号元年",
                "\u2028", "\u3000", "１", "Ｘ", *"*:x×：一", "车牌", "联系", "受理号", "852",
                "王", "小明", "先生", "女士"]
    rng = random.Random(20261231)
    for _ in range(4000):
        typed = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 60)))
        once = redact(typed)
        assert redact(once) == once, typed


@pytest.mark.parametrize("unit", ["1", "0085", "1 ", "138一", "王小", "1\n", "12\n", "老李说",
                                  "叫张伟", "9123 ", "住院号1", "联系王秀", "王秀英本人",
                                  # scrub48's: a spaced line, a spaced two-character name,
                                  # initials, romanised names, seven digits, 来过
                                  "张 ", "张 建", "王 芳说", "WXY来", "Chan Man ", "Sato Hanako ",
                                  "Zhang Jianguo ", "zhang jianguo 来", "6234567 ", "张建国来过",
                                  "a b", "Winston Chan ",
                                  # redteam80's: two spaces, a tab, a half-pinyin name, digits
                                  # typed one at a time with uneven partings
                                  "张  ", "张\t", "a  b", "Zhang 建", "张 Jianguo ", "Zhang 建国来",
                                  "1 3 8  ", "138 0 ", "1-3-8 ",
                                  # scrub49's: a time glued before a name, half pinyin after
                                  # who reached it, lower-case initials, long vowels, a spaced
                                  # number after a keyword, an extension, Chinese digits spaced
                                  "今天张建国来", "陪同王芳到", "联系Zhang建", "联系张Jian",
                                  "wxy来", "Saitou Kenji ", "Satō ", "座机 62 ", "62345678转",
                                  "零二一 六 ",
                                  # redteam89's: marks typed apart from their letters, 向
                                  # after a time, an amount after a phone's " - " or 转
                                  "Sato\u0304 ", "\u0304", "今天向领导", "电话62345678 - ",
                                  "1 - 2元", "62345678 转 2",
                                  # scrub50's: a day or a time before a name, the time after
                                  # it, lower-case half pinyin, after 给, a romaji surname or
                                  # initials after whom the clerk reached, initials listed
                                  "20日张建国来过", "23:30张建国来过", "张建国今天来", "高峰来电多",
                                  "zhang建国来", "联系zhang建", "给Zhang建国打", "张jianguo来",
                                  "联系sato", "和ohta一", "给wxy打", "WXY和zjg来", "wxy、",
                                  "sato hanako来", "tanaka来",
                                  # redteam100's: a list before a doing, more time between,
                                  # a holiday or an emoji before, 由 / 让 / 找, capitals,
                                  # 等人, a nickname asked over, half pinyin after 和
                                  "张建国、李秀兰和", "张建国今天上午", "张建国 今天",
                                  "元旦张建国来", "👍张建国来", "由张建国代", "让李秀兰补",
                                  "ZHANG建国来", "zhang建国今天", "张建国等人来", "叫老李过",
                                  "和zhang建国一", "联系 zhang建",
                                  # scrub51's: two capitals glued, a given name after whom the
                                  # clerk reached, capitals reached, a nickname listed, 们,
                                  # a name reached for 核实, staff, 的 + a paper
                                  "LI建国来", "联系sato hanako ", "联系zhang jianguo，",
                                  "联系SATO", "张建国和小王", "张建国们来", "联系韩立新核",
                                  "工作人员林晓", "常建国的居住证", "蔡俊每",
                                  "李秀兰，张建国来",
                                  # scrub52's: what the person came for, the errand after the
                                  # name, 听说 and a window before it, a nickname first in a
                                  # list, capitals alone
                                  "张建国来办", "张建国医保", "听说王秀英来", "窗口张建国说",
                                  "老王和张建国来", "LI建国，", "刘志刚今天签",
                                  # redteam105's: what the person wants to do, 的 and their
                                  # errand, a name repeated, 来办 and 、 over and over
                                  "张建国要办医保", "张建国的低保", "刘志刚来了，刘志刚又",
                                  "来办", "张建国、", "听说",
                                  # scrub53's: 陪 / 替 / 和 ... 一起, a couple,
                                  # brackets, a note's last name, a middle dot, 单,
                                  # a space before the errand, a list, a name after
                                  # a number
                                  "陪张建国去", "和刘志刚一", "张建国夫妇", "【张建国】",
                                  "材料已收：张建国", "的是张建国", "买买提·艾力", "·",
                                  "单国强来", "张建国 来", "张建国，", "张建国,", "1203室张",
                                  "13912345678王", "：张建国。",
                                  # redteam108's: ；/ lines parting a list, a dot typed as a
                                  # full stop, a space or an emoji before the doing, 陪着,
                                  # 〔〕, a list before 一起, initials after a phone
                                  "张建国；", "张建国\n", "张建国/", "伊力哈木.托", "张建国👍",
                                  "陪着 ", "〔张建国〕", "和张建国、", "联系 张", "13812345678王X",
                                  "：\n张建国\n",
                                  # scrub55's: two names alone, 《》, a name alone in quotes,
                                  # before a phone, after a numbered room, 单, a space in a
                                  # name, pinyin listed, a Western name with a dot
                                  "邱志华,", "。邱志华,廖美玲", "《张建国》来", "“张建国”",
                                  "常桂香13955556666", "1203室武建设、", "2号贺国平，", "单强来",
                                  "单阿姨", "侯 建新来办", "Hou Jianxin, ", "约翰·史密斯",
                                  # scrub56's: a numbered line's name, a name alone on a line
                                  # or wrapped, half pinyin after 陪 / before 夫妇, Yi and
                                  # Chang, 单 and a space, compound surnames listed
                                  "1. 武建设 养老\n", "2、顾建华\n", "谭永康\n来办", "侯建\n新来",
                                  "侯\n", "陪Chang桂香去", "Wu建设夫妇", "单 强来",
                                  "欧阳娜娜，司马南", "139 Yi Chunmei ", "车队长", "2号毛巾架，"])
def test_a_field_four_times_as_long_costs_the_scrubber_four_times_the_work(
        unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The longest text a request takes (4,000 characters) of digits, pasted from a list or a
    scanned code: the address rule tried a house number from every digit of the run, each one
    read to the run's end, and a field took one and a half seconds of the service's only
    thread (a few such fields in one request, seconds for every caller). Counted, not timed
    (``tests/unit/engine_work.py``): what every pattern's attempts read on a field of 100
    characters and on one of 400 is about four times as much, not sixteen."""
    def work(length: int) -> Counter[str]:
        with counting(monkeypatch, patterns, redaction, folding, numbers, addresses,
                      names) as read:
            redact((unit * length)[:length - 1] + "x")
        return read

    short, long = work(100), work(400)
    grew = {pattern[:60]: round(n / max(short[pattern], 100), 1)
            for pattern, n in long.items() if n > 6 * max(short[pattern], 100)}
    assert not grew, grew


def test_the_residents_name_typed_with_one_homophone_wrong_is_still_hers() -> None:
    """The pinyin IME offers 王秀英's homophones in a row (瑛, 莹, 绣, 汪 ..., and 音 for the
    clerk whose IME hears -ng and -n alike); one taken by mistake still names her. Another
    sound (王秀兰) is someone else, and a two-character name has too few characters to tell a
    typo from a word (主张为民 for 张伟)."""
    assert redact("今天王秀瑛来过，汪秀英的女儿代办，已回访王秀音，由王修英本人提交", RESIDENT) == (
        f"今天{NAME}来过，{NAME}的女儿代办，已回访{NAME}，由{NAME}本人提交")
    # (王秀兰来了 goes by the clause rules since scrub52: 来了 is what a person does)
    assert redact("王秀兰材料已补，王秀才", RESIDENT) == "王秀兰材料已补，王秀才"
    two = KnownPerson(name="张伟")
    assert redact("坚持主张为民办事，张玮已到", two) == "坚持主张为民办事，张玮已到"
    # opening a clause before 来过 a name goes by the clause rules since scrub48, typo or not
    assert redact("坚持主张为民办事，张玮来过", two) == f"坚持主张为民办事，{NAME}来过"


def test_a_surname_typed_as_a_homophone_is_still_a_surname() -> None:
    """汪 for 王 is a surname the IME offers for a name; 和 for 何, 理 for 李, 成 for 陈 are
    the word before the name's characters (健康和平安, 处理国庆, 完成建设): the typo search took
    them for the resident 何平安, 李国庆, 陈建设 and the word lost its last character. (The
    given name alone, 平安, 国庆, 建设, is a variant of the name on file: the next test's.)"""
    assert redact("只求健康和平安", KnownPerson(name="何平安")).startswith("只求健康和")
    assert redact("处理国庆期间的材料，李国清来过", KnownPerson(name="李国庆")).startswith("处理")
    assert redact("李国清来过", KnownPerson(name="李国庆")) == f"{NAME}来过"
    assert redact("完成建设任务，程建设来过", KnownPerson(name="陈建设")) == (
        f"完成建设任务，{NAME}来过")


@pytest.mark.parametrize(("name", "typed", "stored"), [
    *[(name, words, words) for name, words in [
        ("李国庆", "处理国庆期间积压的材料，这里国庆节也开门"),
        ("何平安", "老人说只求健康和平安，祝您一路平安"),
        ("陈建设", "年底前完成建设任务，社区建设很好"),
        # a word's subject before what a person's is too (redteam48: these were scrubbed)
        ("陈建设", "社区建设已经完成，道路建设一直在推进，基础设施建设来不及，城市建设户口"),
        ("张和平", "世界和平已经来之不易，祝大家平安满意"),
        # a holiday notice's heading (misc49: 国庆 went before 放假)
        ("李国庆", "国庆：放假七天，国庆: 值班安排见附件")]],
    ("李国庆", "国庆：明天来", f"{NAME}：明天来"),
    # ... where the given name stands as a name, and before how to reach them (redteam48:
    # the number went, the given name beside it stayed)
    ("王秀英", "秀英电话13812345678，居民反映秀英不在家，秀英13912345678",
     f"{NAME}电话{PHONE}，居民反映{NAME}不在家，{NAME}{PHONE}"),
    ("李国庆", "国庆手机号换了，今天国庆已经来过", f"{NAME}手机号换了，今天{NAME}已经来过"),
    ("王秀英", "秀英身份证过期了，秀英退休了", f"{NAME}身份证过期了，{NAME}退休了"),
    ("李国庆", "国庆说他明天来，已联系国庆。", f"{NAME}说他明天来，已联系{NAME}。"),
    ("何平安", "平安本人到场，回访平安，满意，材料由平安补交",
     f"{NAME}本人到场，回访{NAME}，满意，材料由{NAME}补交"),
    ("陈建设", "今天建设来过，建设的女儿代办，跟建设核对过",
     f"今天{NAME}来过，{NAME}的女儿代办，跟{NAME}核对过"),
    ("王秀英", "秀英说钱没到，秀英不在家，秀英阿姨来了",
     f"{NAME}说钱没到，{NAME}不在家，{NAME}来了"),
])
def test_the_residents_given_name_alone_goes_only_where_it_stands_as_a_name(
        name: str, typed: str, stored: str) -> None:
    """The given name of the resident on file is a variant of their name; when it is also a
    word (国庆 National Day, 平安 safe, 建设 building), it went wherever the word stood
    (privacy47: 8 notes over-scrubbed). It goes where a person's doing follows it, or where it
    ends a clause it opens or that reached them; not inside a word it is part of."""
    assert redact(typed, KnownPerson(name=name)) == stored


@pytest.mark.parametrize("text", [
    "已为秀英办结", "秀英想问失业登记", "和秀英约好周一", "秀英的事办好了"])
def test_a_given_name_that_is_no_word_goes_wherever_it_is_written(text: str) -> None:
    """Only a given name that is also an everyday word (国庆, 平安, 建设) is kept where it does
    not stand as a name; 秀英 of 王秀英 goes wherever it is: the rule of where a name stands
    missed 已为秀英办结 and 秀英想问 (test_free_text, test_self_introduced)."""
    scrubbed = redact(text, known=KnownPerson(name="王秀英"))
    assert "秀英" not in scrubbed and NAME in scrubbed, scrubbed


@pytest.mark.parametrize(("name", "typed", "stored"), [
    ("李国庆", "国庆想问失业登记", f"{NAME}想问失业登记"),
    ("李国庆", "已为国庆办结，为国庆办理低保", f"已为{NAME}办结，为{NAME}办理低保"),
    ("李国庆", "和国庆约好周三来", f"和{NAME}约好周三来"),
    ("李国庆", "国庆的事已处理，与国庆联系过", f"{NAME}的事已处理，与{NAME}联系过"),
    ("李国庆", "国庆家里漏水，国庆没来，国庆咨询低保",
     f"{NAME}家里漏水，{NAME}没来，{NAME}咨询低保"),
    ("陈建设", "帮建设申请，建设希望尽快", f"帮{NAME}申请，{NAME}希望尽快"),
    ("何平安", "平安想问，和平安约好", f"{NAME}想问，和{NAME}约好"),
    # redteam53: whom the clerk acts for or asks (给 / 帮 / 代 / 替 / 请 / 让 / 叫), whatever
    # follows; what the person did a moment later, thought of the outcome, their 诉求, home
    ("李国庆", "给国庆送去慰问品，帮国庆填了表，给国庆回了电话",
     f"给{NAME}送去慰问品，帮{NAME}填了表，给{NAME}回了电话"),
    ("王安全", "帮安全填表", f"帮{NAME}填表"),
    ("王健康", "帮健康预约体检", f"帮{NAME}预约体检"),
    ("李国庆", "请国庆下周来，让国庆带上户口本，叫国庆过来签字",
     f"请{NAME}下周来，让{NAME}带上户口本，叫{NAME}过来签字"),
    ("李国庆", "国庆没接电话，国庆不接电话", f"{NAME}没接电话，{NAME}不接电话"),
    ("陈建设", "建设未接电话", f"{NAME}未接电话"),
    ("李国庆", "国庆今天没来，国庆下午来过，国庆明天来，国庆下周一来补材料",
     f"{NAME}今天没来，{NAME}下午来过，{NAME}明天来，{NAME}下周一来补材料"),
    ("何平安", "平安再次来电询问进度", f"{NAME}再次来电询问进度"),
    ("张和平", "和平对处理结果满意", f"{NAME}对处理结果满意"),
    ("李国庆", "国庆的诉求已转办，国庆家楼上漏水", f"{NAME}的诉求已转办，{NAME}家楼上漏水"),
    # ... and the words stay where the given name does not stand as a name
    *[(name, words, words) for name, words in [
        ("李国庆", "因为国庆放假，作为国庆献礼，以为国庆不上班，国庆的事宜安排，国庆期间的事"),
        ("陈建设", "社区建设的事很多，城市建设要求高，基础设施建设申请已批，道路建设联系单位"),
        ("陈建设", "居民参与建设，大家共同建设。赞同建设，共同建设了小区"),
        ("王健康", "健康咨询室在三楼，健康办理须知，健康希望工程"),
        ("王安全", "安全联系人：居委会，安全要求：每周检查"),
        ("何平安", "健康和平安希望大家，祝平安咨询顺利"),
        ("陈建设", "给建设单位发函，代建设方签收，帮建设局协调，给建设工地送水"),
        ("王安全", "帮安全员登记，给安全生产带来隐患，替安全员值班，安全没接地线"),
        ("李国庆", "给国庆节值班的同事发补贴，代国庆假期值班，请国庆节值班人员签到"),
        ("王健康", "给健康带来危害，帮健康码异常的居民登记，健康讲座在三楼"),
        ("张和平", "给和平路商户发通知，帮和平小区居民"),
        ("何平安", "请平安志愿者到岗"),
        ("李国庆", "国庆今天放假，国庆之前反映过的问题，国庆上午来了很多游客"),
        ("陈建设", "建设家园，建设今天已经完成，建设对环境满意度高"),
        ("王健康", "健康对老人很重要，居民对健康满意")]],
])
def test_a_given_name_that_is_a_word_goes_where_a_clerk_writes_it_as_the_resident(
        name: str, typed: str, stored: str) -> None:
    """李国庆's 国庆 (a word name, WORD_NAMES) leaked in what clerks type of the resident
    (redteam52): 国庆想问, 已为国庆办结, 和国庆约好, 国庆的事. What a person wants, is done for,
    agrees with, or owns follows the name; 为 before it is who a thing is done for (not 因为,
    作为, 以为). redteam53: 给国庆送去慰问品, 帮健康预约, 请国庆下周来 (whom the clerk acts for
    or asks, whatever verb follows, unless a word goes on: 给建设单位, 帮安全员), 国庆没接电话,
    国庆下午来过, 和平对处理结果满意, 国庆的诉求 leaked; 健康讲座 went as a name."""
    assert redact(typed, KnownPerson(name=name)) == stored


def test_a_word_ending_in_a_surname_before_a_word_given_name_is_no_mistyped_name() -> None:
    """陈建设 on file: 工程建设 is the works (程 a surname the IME offers for 陈, and 建设 a
    word), and went as 工[姓名已隐去] in every note about the works (redteam52); 程建设 is the
    resident where it stands as a name."""
    known = KnownPerson(name="陈建设")
    assert redact("工程建设办理手续，工程建设很好", known) == "工程建设办理手续，工程建设很好"
    assert redact("已联系程建设。程建设说明天来", known) == f"已联系{NAME}。{NAME}说明天来"


@pytest.mark.parametrize(("name", "typed", "stored"), [
    ("李国庆", "国庆说明天来，国庆诉求是补办低保", f"{NAME}说明天来，{NAME}诉求是补办低保"),
    ("李国庆", "国庆问能不能代办。国庆打来电话，国庆带了户口本",
     f"{NAME}问能不能代办。{NAME}打来电话，{NAME}带了户口本"),
    ("李国庆", "国庆今年65岁，国庆情绪激动", f"{NAME}今年65岁，{NAME}情绪激动"),
    ("李国庆", "已告知国庆办理流程，已告诉国庆带户口本，电话联系国庆未果，已和国庆联系",
     f"已告知{NAME}办理流程，已告诉{NAME}带户口本，电话联系{NAME}未果，已和{NAME}联系"),
    ("李国庆", "到国庆家走访", f"到{NAME}家走访"),
    ("王安全", "安全问能不能代办", f"{NAME}问能不能代办"),
    ("司马建国", "建国说明天来", f"{NAME}说明天来"),
    ("李国庆", "陪国庆去医院，向国庆解释了政策，户主国庆已签字，她儿子国庆来过",
     f"陪{NAME}去医院，向{NAME}解释了政策，户主{NAME}已签字，她儿子{NAME}来过"),
    # ... and a clause that opens with the word, or speaks of it
    *[(name, words, words) for name, words in [
        ("李国庆", "国庆前把材料交齐，国庆之后再说，国庆七天值班表已排好"),
        ("李国庆", "告知居民国庆期间不办公，已为国庆节值班人员排班"),
        ("王安全", "安全很重要。安全帽要戴好，安全出口堵了，安全起见，上门办理"),
        ("张和平", "和平饭店，和平来之不易，和平解决纠纷，和平区的政策"),
        ("陈建设", "建设用地已审批，建设中的小区，建设银行卡号已核对"),
        ("何平安", "平安是福，平安到家了吗，平安度过了冬天"),
        ("李国庆", "国庆10月1日，国庆7天假，国庆那几天人多"),
        ("张和平", "走向和平，面向和平年代"),
        ("王安全", "安全是第一位的，安全方面没问题")]],
])
def test_a_clause_that_opens_with_a_word_given_name_is_about_the_resident(
        name: str, typed: str, stored: str) -> None:
    """scrub46: a note about 李国庆 that opens with 国庆 is about him, whatever verb follows
    (国庆说明天来, 国庆诉求, 国庆问, 国庆打来电话: 42 of 83 notes leaked, each a verb the lists of a
    person's doings did not hold), and so is 国庆 after whom a clerk told or reached (已告知国庆办理
    流程); the word stays where a word it begins or a clause about it follows (国庆期间, 安全帽,
    和平饭店, 建设今天已经完成)."""
    assert redact(typed, KnownPerson(name=name)) == stored


@pytest.mark.parametrize(("name", "typed", "stored"), [
    ("李国庆", "阿庆说明天来，庆哥来过", f"{NAME}说明天来，{NAME}来过"),
    ("王秀英", "英姐说钱没到。阿英来过", f"{NAME}说钱没到。{NAME}来过"),
    ("司马建国", "司马说明天来", f"{NAME}说明天来"),
    ("李国庆", "邻居国庆叔来过，国庆大爷也来了", f"邻居{NAME}来过，{NAME}也来了"),
    ("李国庆", "guoqing shuo mingtian lai，李guoqing来过", f"{NAME} shuo mingtian lai，{NAME}来过"),
    # ... and the words that begin alike, where nothing makes them a name
    *[(name, words, words) for name, words in [
        ("张建根", "阿根廷的亲戚寄来材料，儿子去阿根廷打工了"),
        ("张建富", "阿富汗籍的居民来咨询"),
        ("司马建国", "司马光砸缸的故事"),
        ("东方明", "住东方路的居民")]],
])
def test_what_the_resident_is_called_for_short_goes_where_it_stands_as_a_name(
        name: str, typed: str, stored: str) -> None:
    """scrub46: 阿 + the given name's last character, that character + 哥 / 姐, a compound surname
    alone (司马), the given name with 叔 / 大爷 ..., the given name in pinyin were kept; what is
    called for short goes only where it stands as a name (阿根廷 is no 张建根)."""
    assert redact(typed, KnownPerson(name=name)) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("住3号楼401，腿脚不便", f"住{ADDRESS}，腿脚不便"),
    ("她家在三号楼401，住三栋四零一", f"她家在{ADDRESS}，住{ADDRESS}"),
    ("住幸福里3号，步高里12号", f"住{ADDRESS}，{ADDRESS}"),
    ("住 东方路 88 弄 5 号", f"住 {ADDRESS}"),
    # ... not the center's rooms, a floor, 这里 / 家里 before a number
    *[(words, words) for words in [
        "会议在7号楼302会议室", "在3楼302会议室", "社区这里3号楼在修", "居民家里3号来人",
        "五公里3号线"]],
])
def test_a_room_after_its_building_a_lane_and_a_spaced_road_are_an_address(
        typed: str, stored: str) -> None:
    """scrub46: a room's bare number after its building (住3号楼401, 三栋四零一) was kept, whole
    or the room; a lane of old houses named ...里 / ...坊 (幸福里3号), a road typed with a
    space before its number (东方路 88 弄) kept the road."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("name", "typed", "stored"), [
    # a given name quoted in brackets, after a time of day, a weekday or an emoji
    ("李国庆", "「国庆」说明天来，【国庆】来电问补贴，‘国庆’来过",
     f"「{NAME}」说明天来，【{NAME}】来电问补贴，‘{NAME}’来过"),
    ("王安全", "[安全]到窗口补材料", f"[{NAME}]到窗口补材料"),
    ("李国庆", "14:00国庆到窗口，9点国庆到窗口办理，今日国庆到窗口",
     f"14:00{NAME}到窗口，9点{NAME}到窗口办理，今日{NAME}到窗口"),
    ("何平安", "周三平安到窗口", f"周三{NAME}到窗口"),
    ("李国庆", "👍国庆满意", f"👍{NAME}满意"),
    # listed with another person; people counted after a list
    ("李国庆", "秀英和国庆来过，小王和国庆都来过", f"秀英和{NAME}来过，{NAME}和{NAME}都来过"),
    ("李国庆", "国庆、平安两户都已回访", f"{NAME}、平安两户都已回访"),
    # a relative written 其父, whom the clerk saw, heard from or got papers from
    ("李国庆", "其父国庆已去世", f"其父{NAME}已去世"),
    ("李国庆", "见到国庆了，接国庆电话，收到国庆的材料，关于国庆的低保申请",
     f"见到{NAME}了，接{NAME}电话，收到{NAME}的材料，关于{NAME}的低保申请"),
    ("李国庆", "国庆所说属实，约国庆周三来", f"{NAME}所说属实，约{NAME}周三来"),
    # whom a clerk helped, followed up, called or checked, who made the request; a mention
    ("李国庆", "诉求人国庆，跟进国庆的案子，协助国庆办理，指导国庆填表",
     f"诉求人{NAME}，跟进{NAME}的案子，协助{NAME}办理，指导{NAME}填表"),
    ("李国庆", "经核实国庆符合条件，经查国庆名下无房，再次电话国庆，致电国庆",
     f"经核实{NAME}符合条件，经查{NAME}名下无房，再次电话{NAME}，致电{NAME}"),
    ("李国庆", "@国庆 请回复", f"@{NAME} 请回复"),
    # pinyin with its tones
    ("李国庆", "lǐ guóqìng来过", f"{NAME}来过"),
    ("王秀英", "Wáng Xiùyīng说明天来", f"{NAME}说明天来"),
    # ... and the center's own words, with a resident of that given name on file
    *[(name, words, words) for name, words in [
        ("李国庆", "国庆值班表已排好，国庆排班已确认，国庆返岗人员名单，国庆收假后来办"),
        ("李国庆", "国庆那周不办公，国庆七十七周年，国庆游园会，国庆中秋双节，国庆临近"),
        ("李国庆", "国庆、中秋放假安排，春节和国庆都放假，中华人民共和国庆祝成立77周年"),
        ("李国庆", "迎接国庆。大约国庆前后"),
        ("李国庆", "【国庆】放假通知，10:00国庆升旗仪式"),
        ("王健康", "“健康”讲座，【健康】讲座报名"),
        ("王安全", "安全巡查发现隐患，安全培训通知，安全演练下周三，安全事故为零"),
        ("陈建设", "建设交通委来人"),
        ("张和平", "和平里街道办事处来电，到和平里社区居委会盖章，和平镇政府，和平小学，和平鸽"),
        ("何平安", "平安大街，平安里小区，平安喜乐，老人说只求健康和平安"),
        ("王健康", "健康驿站，健康小屋，健康养老服务")]],
])
def test_a_word_given_name_goes_however_a_clerk_sets_it_off_and_the_centers_words_stay(
        name: str, typed: str, stored: str) -> None:
    """redteam56, from outside scrub46's notes: the given name that is a word (国庆 of 李国庆)
    was kept in 「」 / 【】 / ‘’ (only “” opened a clause), after a time of day (14:00, 9点), a
    weekday, 今日 or an emoji, after 和 listing a person (秀英和国庆来过), in a list of people
    counted (国庆、平安两户: taken for the words 国庆 and 平安), after 其父 / 见到 / 接 / 收到 /
    关于 / 约 / 诉求人 / 跟进 / 协助 / 经核实 / 致电, after @, and in pinyin with its tones
    (guóqìng); and went in the center's own words opening a clause (国庆值班表, 安全巡查,
    和平里街道, 健康驿站, 国庆都放假)."""
    assert redact(typed, KnownPerson(name=name)) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("住和平里3号，人和里十二号", f"住{ADDRESS}，{ADDRESS}"),
    ("住永和坊3号", f"住{ADDRESS}"),
    # ... 和 still ends who is before a lane
    ("她和步高里3号的邻居", f"她和{ADDRESS}的邻居"),
])
def test_a_lane_whose_name_holds_a_conjunction_is_an_address(typed: str, stored: str) -> None:
    """scrub46's lane (住幸福里3号) was read back to 和, which ends a place name (她和…):
    住和平里3号, 住永和坊3号 kept the address whole (平里, 坊: too short to be a lane)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("name", "typed", "stored"), [
    ("李国庆", "國慶說明天來，李國慶來過，已告知國慶", f"{NAME}說明天來，{NAME}來過，已告知{NAME}"),
    ("陈建设", "陳建設本人簽字", f"{NAME}本人簽字"),
    ("钟国强", "鐘國強來過", f"{NAME}來過"),
    # the name on file in Traditional characters, the note in Simplified
    ("陳大文", "陈大文来过，陳大文來過", f"{NAME}来过，{NAME}來過"),
    # ... and the address on file, 12号, written 12號
    ("李国庆", "住和平里12號", f"住{ADDRESS}"),
    # ... and the holiday stays in Traditional as in Simplified
    ("李国庆", "國慶節期間照常辦理", "國慶節期間照常辦理"),
])
def test_the_resident_is_found_in_traditional_characters(
        name: str, typed: str, stored: str) -> None:
    """redteam56: a note typed in Traditional Chinese (an IME set so, a message pasted from Hong
    Kong or Taiwan) kept the resident whole, 李國慶 and 國慶 of 李国庆 on file: the vault's
    name was looked for only as Simplified Chinese writes it; 國慶節期間 is the holiday."""
    assert redact(typed, KnownPerson(name=name, address="上海市黄浦区和平里12号")) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("86 21 6412 3456，86-21-64123456", f"{PHONE}，{PHONE}"),
    ("电话86 571 8765 4321", f"电话{PHONE}"),
    ("住501，家住401，住在六零二，住3楼301",
     f"住{ADDRESS}，家住{ADDRESS}，住在{ADDRESS}，住{ADDRESS}"),
    # ... not a serial, a sum, a stay's length, a count, a day, a room of use
    *[(words, words) for words in [
        "受理号 86 21 6412 3456", "86 2024 2025", "住300天，入住120人，住100多天，住1200元",
        "居住2000年以上，住2026-12-20，住501会议室，住院部301"]],
])
def test_a_landline_after_86_and_a_room_where_someone_lives_are_found_alone(
        typed: str, stored: str) -> None:
    """redteam56: a landline read off a card after China's code without + or 00 (86 21 6412
    3456; 86-138... went already) and a room's bare number after 住 (住501, 住在六零二; 住501室
    went) were kept when the resident's own were not on file."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("陳先生來電，黃女士說明天來", f"{NAME}來電，{NAME}說明天來"),
    ("聯繫人：陳大文", f"聯繫人：{NAME}"),
    ("居民張秀英說明天來，老陳腿腳不便", f"居民{NAME}說明天來，{NAME}腿腳不便"),
    ("家住幸福里3號，住3號樓401", f"家住{ADDRESS}，住{ADDRESS}"),
    ("住在漕溪北路８８號3號樓501室", f"住在{ADDRESS}"),
    ("住院號12345678", f"住院號{RECORD}"),
    # ... and what stays in Simplified stays in Traditional
    *[(words, words) for words in ["國慶節期間照常辦理", "住院3天，住建局來函，入住率80%",
                                   "住房公積金12000元，住了301天，辦理居住證"]],
])
def test_anyone_a_note_in_traditional_characters_names_is_found_as_in_simplified(
        typed: str, stored: str) -> None:
    """redteam60: the rules for anyone not on file (a neighbour, a relative, a resident
    without a case yet) read Simplified characters only: 陳先生來電, 聯繫人：陳大文, 家住幸福里3號,
    住3號樓401 and 住院號12345678 were stored whole (of 住在漕溪北路88號3號樓501室 only 501室
    went), though the resident on file was found in Traditional ones since redteam56."""
    assert redact(typed) == stored


def test_a_rare_character_of_a_name_is_read_in_simplified_too() -> None:
    """redteam60: OpenCC changes some 900 characters beyond the basic plane (𠁞 is 𠀾), which
    the Traditional characters a text was looked for among left out: a note holding no other
    one kept the name on file whole."""
    assert redact("王\U0002005e来过", KnownPerson(name="王\U0002003e")) == f"{NAME}来过"


def test_a_name_opencc_reads_otherwise_is_found_in_pinyin_as_it_is_said() -> None:
    """redteam60: the name on file is read in Simplified before its variants are made, and
    OpenCC reads 乾 as 干 (乾燥): 周乾's pinyin became Zhou Gan, and Zhou Qian, zhouqian, as
    a clerk types it, were kept (they went before redteam56)."""
    assert redact("Zhou Qian来过，zhouqian说明天来", KnownPerson(name="周乾")) \
        == f"{NAME}来过，{NAME}说明天来"


@pytest.mark.parametrize(("name", "words"), [
    ("李国庆", "【国庆】专题，「国庆」专题活动，10:00国庆文艺汇演，国庆主题征文"),
    ("李国庆", "国庆/中秋值班表，国庆&中秋连休，國慶／中秋放假"),
    ("李国庆", "国庆（10月1日-7日）放假，国庆(10.1-10.7)值班表"),
])
def test_the_centers_own_notices_keep_a_holiday_a_resident_is_named_after(
        name: str, words: str) -> None:
    """redteam60: a notice the center writes with 李国庆 on file lost the holiday where a
    heading's topic (专题, 文艺汇演), a list parted by / or &, or the days in brackets
    followed it; the resident still goes so (国庆（男，65岁）来电, 国庆（10月3日）来过)."""
    assert redact(words, KnownPerson(name=name)) == words
    assert redact("国庆（男，65岁）来电，国庆（10月3日）来过", KnownPerson(name=name)) \
        == f"{NAME}（男，65岁）来电，{NAME}（10月3日）来过"


@pytest.mark.parametrize("words", [
    "住302床，住302病房", "包吃包住1200，包吃包住 3500元", "住3晚，住1203晚", "住120㎡的房子"])
def test_a_bed_a_ward_board_with_a_wage_and_nights_after_zhu_are_no_flat(words: str) -> None:
    """redteam60: redteam56's room after 住 took a hospital's bed and ward (住302床), the board
    a job offers with its wage (包吃包住1200: a sum, where the center registers the
    unemployed), nights and an area for a flat; 住501, 家住401 still go."""
    assert redact(words) == words


@pytest.mark.parametrize(("typed", "stored"), [
    ("电话86.21.6412.3456，86 21  6412 3456", f"电话{PHONE}，{PHONE}"),
    # ... not a list of counts, nor decimals
    *[(words, words) for words in ["86，21，3456，7890", "86.5 21.3 2345.6789"]],
])
def test_a_landline_after_86_is_found_parted_by_dots(typed: str, stored: str) -> None:
    """redteam60: redteam56's landline after 86 took only a space or a dash between its
    groups: 86.21.6412.3456, as a card prints it, was kept, after 电话 too."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("电话：6412.3456，电话 21.6412.3456", f"电话：{PHONE}，电话 {PHONE}"),
    *[(words, words) for words in ["电话2026.12.20回访", "联系1.2345678万", "电话费12.5元"]],
])
def test_a_number_after_phone_is_found_parted_by_dots(typed: str, stored: str) -> None:
    """redteam60: seven digits or more after 电话 were found parted by a space or a dash only:
    电话：6412.3456, as a card prints it, was kept; a day and a decimal stay."""
    assert redact(typed) == stored


def test_a_name_opencc_reads_otherwise_is_found_with_a_homophone_typed_in_it() -> None:
    """redteam60: 陈乾生 on file was read 陈干生 before its typos were looked for, so 陈钱生 (乾
    is qián in a name, 钱 the IME's first candidate) was kept since redteam56."""
    assert redact("陈钱生来过，陳錢生來過", KnownPerson(name="陈乾生")) == f"{NAME}来过，{NAME}來過"


def test_half_a_utf16_pair_in_a_traditional_note_is_no_error() -> None:
    """redteam60: OpenCC, reading UTF-8, raised UnicodeEncodeError on a Traditional text
    holding half a UTF-16 pair (json.loads takes "\\ud842"; the HTTP routes answer it 422,
    but redact is called on whatever text a caller holds: an import, a log line, an export)."""
    assert redact("陳先生\udfff來電", KnownPerson(name="李国庆")) == f"{NAME}\udfff來電"


def test_toned_pinyin_in_decomposed_form_is_the_resident() -> None:
    """redteam60: redteam56 found lǐ guóqìng with its tones as one character each; pasted from
    a Mac or a web page in decomposed form (i and a combining caron, U+030C) it was kept."""
    typed = unicodedata.normalize("NFD", "lǐ guóqìng来过，Wáng Xiùyīng说明天来")
    assert redact(typed, KnownPerson(name="李国庆").also(KnownPerson(name="王秀英"))) \
        == f"{NAME}来过，{NAME}说明天来"


@pytest.mark.parametrize(("typed", "stored"), [
    ("身分證字號A123456789", f"身分證字號{ID}"),  # Taiwan's 身分 (OpenCC keeps it)
    ("身分证统一编号：A123456789", f"身分证统一编号：{ID}"),
    ("香港身份證 A123456(7) 已核對", f"香港身份證 {ID} 已核對"),  # the check digit too
    ("身份证号码Z683164（A）", f"身份证号码{ID}"),
    ("回鄉證H12345678，台胞证12345678", f"回鄉證{ID}，台胞证{ID}"),
    *[(words, words) for words in ["身分证明已收", "回乡证2027年到期", "身份证(1)份"]],
])
def test_hong_kong_and_taiwan_id_numbers_are_found_after_their_keyword(
        typed: str, stored: str) -> None:
    """redteam64: Taiwan's 身分證 (OpenCC reads it as written), 回乡证 and 台胞证 were no ID
    keyword, so their numbers were kept; a Hong Kong number's check digit in brackets (A123456(7))
    was left after the marker."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("台灣手機0912-345-678，晚上打", f"台灣手機{PHONE}，晚上打"),
    ("LINE: 0912345678", f"LINE: {PHONE}"),
    ("她說 0912 345 678 或 886 912 345 678", f"她說 {PHONE} 或 {PHONE}"),
    *[(words, words) for words in ["受理号0912345678", "补发0912345678元", "09:12-345-678",
                                   "2026-09-12 345人"]],
])
def test_a_taiwan_mobile_alone_is_a_phone(typed: str, stored: str) -> None:
    """redteam64: Taiwan's mobile (ten digits, 09 first, 0912-345-678) was found after 手機 /
    电话 only, and with + only after its code; alone, or after LINE, it was kept."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("陳生嚟過，話聽日再嚟", f"{NAME}嚟過，話聽日再嚟"),  # Mr Chan, in Cantonese
    ("陳太打嚟話唔得", f"{NAME}打嚟話唔得"),
    ("黃伯話佢個仔唔喺度，佢係陳師奶嘅仔", f"{NAME}話佢個仔唔喺度，佢係{NAME}嘅仔"),
    ("打電話俾陳太，", f"打電話俾{NAME}，"),
    # a Mandarin note's 陈生 is no form of address, but a name opening a clause before 来过
    # (scrub48: a given name 生)
    ("陈生来过", f"{NAME}来过"),
    ("陈生来了", f"{NAME}来了"),  # and before 来了 since scrub52, as before 来过
    *[(words, words) for words in ["佢話要注意衛生。", "佢唔想浪費餘生，", "佢老婆話唔使",
                                   "钱太少", "佢阿婆嚟咗"]],
])
def test_a_surname_with_a_cantonese_form_of_address_is_a_name(typed: str, stored: str) -> None:
    """redteam64: a note taken in Cantonese names a resident 陳生 (Mr Chan), 陳太 (Mrs Chan),
    黃伯, 陳師奶: read in Simplified since redteam60, they were still kept, no form of address
    Mandarin uses. Only in a note written in Cantonese (佢, 唔, 嚟 ...), and not 衛生 / 餘生."""
    assert redact(typed) == stored


def test_a_text_is_read_in_simplified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """redteam64: redact read a text in Simplified, then the resident's rules read it so
    again: a text holding a rare character (𠀾, extension B: any such one is converted) went
    through OpenCC twice, every other one was scanned twice."""
    converter, changed = traditional._to_simplified()
    texts: list[str] = []

    class Counting:
        def convert(self, text: str) -> str:
            texts.append(text)
            return converter.convert(text)

    monkeypatch.setattr(traditional, "_to_simplified", lambda: (Counting(), changed))
    assert redact("𠀾陳先生來電", KnownPerson(name="李国庆")) == f"𠀾{NAME}來電"
    assert texts == ["𠀾陳先生來電"]


@pytest.mark.parametrize(("typed", "stored"), [
    ("62345678找她女儿，回拨58881234无人接", f"{PHONE}找她女儿，回拨{PHONE}无人接"),
    ("她儿子在香港91234567", f"她儿子在香港{PHONE}"),
    ("090-1234-5678是她在日本的手机，东京080 9876 5432", f"{PHONE}是她在日本的手机，东京{PHONE}"),
    ("台北家里(02) 2345-6789，02-2345-6789", f"台北家里{PHONE}，{PHONE}"),
    ("高雄（07）345-6789，886-2-2345-6789", f"高雄{PHONE}，{PHONE}"),
    *[(words, words) for words in [
        "补贴62345678元已拨付", "受理号62345678，已转办", "工单20261220，办结20271008",
        "20280215前补交", "发票号码62345678", "累计62345678人次", "编号62345678-01",
        "一二三四五六七八项都齐了", "工单号 12345678", "--events 20000000", "max-age=31536000",
        "20261231 23:30回访"]],
])
def test_a_landline_a_japanese_mobile_and_a_taipei_number_are_phones_alone(
        typed: str, stored: str) -> None:
    """scrub47: eight digits went only after 电话 / 手机 / 联系 ...; a Japanese mobile and a
    landline of Taiwan's not at all. A day (2026, 2027, 2028 alike), an amount, a count, a
    serial after its name, a round number and a row of digits counted in order stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("居民李_建_国来电，张 建 国说明天来", f"居民{NAME}来电，{NAME}说明天来"),
    ("陈-晓-红已签字，刘·志·刚同意，家属黄*丽*华代办", f"{NAME}已签字，{NAME}同意，家属{NAME}代办"),
    ("申请人W.X.Y.已签字，王XY说明天来，陈X女士来电",
     f"申请人{NAME}已签字，{NAME}说明天来，{NAME}女士来电"),
    ("Chan Tai Man came; CHAN Tai-man, Lee Wai Kit来电", f"{NAME} came; {NAME}, {NAME}来电"),
    *[(words, words) for words in [
        "王某某来过", "王*英 · 139****5678", "中文.链接", "请 假 一 天", "周一-周五", "查CT正常",
        "金VIP卡", "材料属于A。", "U.S.A.寄来的证明", "She lives in Wong Tai Sin",
        "Ho Man Tin Estate", "So I said we would call"]],
])
def test_a_name_parted_by_separators_initials_and_a_hong_kong_name_are_names(
        typed: str, stored: str) -> None:
    """scrub47: a name with the same separator between its characters, initials for one, and a
    Hong Kong name as its ID card romanises it were kept (Mr Chan went). A masked name, a
    file's name, a spaced-out line, an acronym after a surname's character, an abbreviation
    and Hong Kong's districts stay."""
    assert redact(typed) == stored


def test_the_holiday_stays_and_the_resident_goes_when_their_name_is_guoqing() -> None:
    """scrub47: with 李国庆 on file, the holiday's make-up day, its time and what follows it
    were taken for him; he is still found before what he did, and typed with underscores."""
    known = KnownPerson(name="李国庆")
    kept = "国庆补班日照常办理，国庆的时候人多，国庆时窗口忙，国庆过后再说，国庆人多"
    assert redact(kept, known) == kept
    assert redact("国庆住院了，李_国_庆来过", known) == f"{NAME}住院了，{NAME}来过"


@pytest.mark.parametrize("words", [
    "医疗发票 23856714 丢失", "收据 31286547 已交财务室", "12345转办件 31208765，已回复",
    "一网通办办件号 3101152026122000", "动迁补偿款 23865400，分三期", "预算 31286500（单位：元）",
    "HSBC汇款 Ref 31286547 已到账", "Invoice 31286547 paid", "请加社区QQ群 73125468",
    "取件码 62345678", "预约码 62345678"])
def test_a_counters_serials_and_sums_of_eight_digits_are_no_phones(words: str) -> None:
    """redteam69: an invoice's, a receipt's, a transfer's or a group's number and a sum with no
    serial's or amount's word scrub47 knew went as a phone (the 一网通办 case's sixteen as a
    card)."""
    assert redact(words) == words


@pytest.mark.parametrize("words", [
    "两癌筛查：查HPV和TCT，免费", "体检查PSA，偏高", "香港那边每月约1万HKD，够用",
    "需要J.P.见证签名", "儿子在L.A.读书", "Shek Tong Tsui 社区中心", "Yuen Long Kau Hui 的老人",
    "曾 用 名：无", "党 员 证：有"])
def test_a_test_a_currency_a_citys_letters_and_a_forms_spaced_label_are_no_names(
        words: str) -> None:
    """redteam69: an acronym after 查 or a number's 万, an abbreviation with full stops, a place
    of Hong Kong's read as a surname and two syllables, and a form's label typed a character at
    a time went as a name."""
    assert redact(words) == words


def test_a_former_name_goes() -> None:
    """redteam69: 曾用名 introduces a name as 姓名 does; it was kept."""
    assert redact("曾用名：李桂兰，已核对户籍") == f"曾用名：{NAME}，已核对户籍"


@pytest.mark.parametrize(("typed", "stored"), [
    ("孙女扣扣 345678123，企鹅号 2345678901", f"孙女扣扣 {ACCOUNT}，企鹅号 {ACCOUNT}"),
    ("加薇 wangxy_1985，她说加V：wang8899", f"加薇 {ACCOUNT}，她说加V：{ACCOUNT}"),
    ("LINE ID lily0312, KakaoTalk ID: parkjh88, Telegram @lily_0312",
     f"LINE ID {ACCOUNT}, KakaoTalk ID: {ACCOUNT}, Telegram @{ACCOUNT}"),
    *[(words, words) for words in ["政府威信很高", "企鹅玩偶20个", "HOTLINE 12345", "加VIP窗口"]],
])
def test_qq_and_wechat_as_written_to_pass_a_filter_and_apps_abroad_are_accounts(
        typed: str, stored: str) -> None:
    """redteam69: 扣扣 / 企鹅 for QQ, 薇 / V for WeChat, and LINE, KakaoTalk and Telegram kept the
    account after them."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("朴明哲说明天来，韩国籍居民朴敏英来电", f"{NAME}说明天来，韩国籍居民{NAME}来电"),
    ("佐藤女士来电，渡边先生的女儿，山田さん来过",
     f"{NAME}女士来电，{NAME}的女儿，{NAME}さん来过"),
    ("Kim Min-su came; CHEN CHIH-MING, Lin Mei-ling said", f"{NAME} came; {NAME}, {NAME} said"),
    ("Peter Chan called, Mary Wong 話聽日嚟", f"{NAME} called, {NAME} 話聽日嚟"),
    ("黄sir说要再核，Madam 黄 来过，Miss 李来过", f"{NAME}说要再核，{NAME} 来过，{NAME}来过"),
    ("已联系刘zq，陈xh女士来电，张jg说", f"已联系{NAME}，{NAME}女士来电，{NAME}说"),
    ("申请人：张 建国，联系人：王\u3000英，张 建国说", f"申请人：{NAME}，联系人：{NAME}，{NAME}说"),
    ("李_建国来过", f"{NAME}来过"),
    *[(words, words) for words in [
        "Hong Kong-based charity", "Car Park Drop-off", "Sam Tung Uk museum", "老人朴实",
        "居民朴素的要求", "中山医院的证明", "お客様の件", "王xx来过", "重65kg，高170cm",
        "打开app查看", "居民 高 兴地说谢谢"]],
])
def test_korean_japanese_and_romanised_names_and_hong_kongs_titles_are_names(
        typed: str, stored: str) -> None:
    """redteam69: 朴 was no surname, no Japanese one was, a Korean's or a Taiwanese's romanised
    name with its hyphen, an English given name before a Hong Kong surname, 黄sir, Madam 黄,
    initials in lower case and a space after the surname were kept (李_建国 kept 国). English
    words with a hyphen, places, a mask and units after a surname's character stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("电话6234\n5678一直没人接", f"电话{PHONE}一直没人接"),
    ("座机62345\n678，白天没人", f"座机{PHONE}，白天没人"),
    ("家里座机 5888\r\n1234", f"家里座机 {PHONE}"),
    *[(words, words) for words in ["联系人员补贴\n1200\n1500", "电话\n2026\n1220",
                                   "电话费 120\n150元", "电话回访\n1次未接"]],
])
def test_a_landline_wrapped_after_its_keyword_is_a_phone(typed: str, stored: str) -> None:
    """redteam69: a landline a narrow box wrapped in two groups of three digits or more was
    kept (a line end was joined only next to a fragment of one or two digits)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张 建 国 的 电 话 1 3 8 0 0 1 3 8 0 0 0", f"{NAME} 的 电 话 {PHONE}"),
    ("李 桂 兰 来 过 ， 说 明 天 再 来", f"{NAME} 来 过 ， 说 明 天 再 来"),
    ("申 请 人 刘 志 刚 ， 电 话 6 2 3 4 5 6 7", f"申 请 人 {NAME} ， 电 话 {PHONE}"),
    *[(words, words) for words in [
        "周 一 到 周 五 办 理", "请 假 一 天 ， 周 三 回 来", "高 兴 地 说 谢 谢",
        "王 某 某 来 过", "金 额 2 3 4 5 6 7 8 元", "欢 迎 光 临 社 区 服 务 中 心"]],
])
def test_a_line_typed_a_character_at_a_time_is_read_as_the_clerk_meant_it(
        typed: str, stored: str) -> None:
    """scrub48: a whole line spaced out kept its names (scrub47's rule for 张 建 国 refuses a
    line so typed: 高 兴 地 说 is no name) and a landline's seven digits; read without its
    spaces it is an ordinary note. The center's own lines so typed, a masked name and a sum
    stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("王 芳说明天来补材料，已联系张 伟，刘 洋签字确认",
     f"{NAME}说明天来补材料，已联系{NAME}，{NAME}签字确认"),
    ("WXY来过，ZJG来电，上午LXM来窗口补交材料",
     f"{NAME}来过，{NAME}来电，上午{NAME}来窗口补交材料"),
    ("张建国来过，赵丽华的手机号换了", f"{NAME}来过，{NAME}的手机号换了"),
    *[(words, words) for words in [
        "周 一来电", "ICU住院3天", "WHO标准，BMI 24.5", "MRI来不及做，改天", "王某某来过",
        "周一来过", "高 兴说"]],
])
def test_a_two_character_name_with_a_space_and_initials_alone_are_names(
        typed: str, stored: str) -> None:
    """scrub48: a space after the surname of a two-character name opening a clause or after
    who reached it, and initials without full stops before what the person did, were kept; a
    name opening a clause before 来过 or before 的 and how to reach them too. Acronyms, a day
    and a masked name stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("Chan Man called; Wong Ming came to window 3", f"{NAME} called; {NAME} came to window 3"),
    ("Winston Chan called, Jennifer Wong said", f"{NAME} called, {NAME} said"),
    ("Sato Hanako came; Hiroshi Tanaka called; TAKAHASHI Kenji, 护照",
     f"{NAME} came; {NAME} called; {NAME}, 护照"),
    ("Zhang Jianguo 来电，zhang jianguo 来电，li guilan明天来，Wang Fang called",
     f"{NAME} 来电，{NAME} 来电，{NAME}明天来，{NAME} called"),
    *[(words, words) for words in [
        "Yau Tong MTR 出口见", "Kwai Fong station exit A", "Yuen Long residents may apply",
        "Shek Tong Tsui 社区中心", "Jin Mao Tower 的物业来电", "Xu Hui district office replied",
        "He ran to the clinic", "Long Term Care plan approved", "Grace period is 30 days",
        "The Osaka office sent the form", "Tokyo Osaka 的证明", "To Sum up, approved"]],
])
def test_romanised_names_without_a_title_are_names(typed: str, stored: str) -> None:
    """scrub48: a Hong Kong name of one given syllable, an English given name no list had, a
    Japanese name in romaji either way round and a mainland name in pinyin without a title
    were kept. Places of Hong Kong, Japan and Shanghai so romanised and English sentences
    stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("6234567找她女儿，回拨 5888123 无人接", f"{PHONE}找她女儿，回拨 {PHONE} 无人接"),
    ("邻居家 3465789 可以转告", f"邻居家 {PHONE} 可以转告"),
    *[(words, words) for words in [
        "发票号 3123456", "收据 2345671 已交财务室", "Invoice 2345678 paid", "受理号 6234567",
        "订单 3456712 已退款", "药品批号 2345671", "电表读数 2345678", "补偿款 2345600 元",
        "常住人口 2345678 人", "工号 7012345 的同事", "快递单号 7234561", "累计 2345678",
        "20261220 办结", "2027年 3500000", "编号 2028123"]],
])
def test_seven_digits_alone_are_an_old_landline(typed: str, stored: str) -> None:
    """scrub48: seven digits went only after 电话 / 座机 / 联系 ...; alone they are an old
    landline as eight are a Shanghai one. A serial's, an order's, a meter's number, a sum, a
    count, a day and a round number stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张  建  国  来  过  窗  口", f"{NAME}  来  过  窗  口"),
    ("李\t桂\t兰\t的\t电\t话\t换\t了", f"{NAME}\t的\t电\t话\t换\t了"),
    ("吴  志  强  反  映  楼  上  漏  水", f"{NAME}  反  映  楼  上  漏  水"),
    ("黃  美  玲  說  明  天  來", f"{NAME}  說  明  天  來"),
    ("李  明  的  电  话  6  2  3  4  5  6  7", f"{NAME}  的  电  话  {PHONE}"),
    *[(words, words) for words in [
        "户  口  本  原  件  需  带", "身\t份\t证\t复\t印\t件", "高  兴  地  说  谢  谢",
        "Long  Term  Care"]],
])
def test_a_line_spaced_with_two_spaces_or_a_tab_is_read_as_the_clerk_meant_it(
        typed: str, stored: str) -> None:
    """redteam80: scrub48 read a line typed a character at a time only with one space between
    the characters; two spaces or a tab (a form's cells pasted) kept the name. The center's
    spaced labels stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("Zhang 建国来过，问养老金", f"{NAME}来过，问养老金"),
    ("Liu 志刚说女儿下周陪他来", f"{NAME}说女儿下周陪他来"),
    ("张 Jianguo 来电问补贴进度", f"{NAME} 来电问补贴进度"),
    ("陈 Xiaohong的电话打不通", f"{NAME}的电话打不通"),
    ("Zhao 丽华签字确认了", f"{NAME}签字确认了"),
    ("Chen 晓红本人来办", f"{NAME}本人来办"),
    ("备注：张建国来过", f"备注：{NAME}来过"),
    ("备注：张 建 国 来 过", f"备注：{NAME} 来 过"),
    ("（李桂兰来电）", f"（{NAME}来电）"),
    ("“李 桂 兰 来 过 ， 说 明 天 再 来", f"“{NAME} 来 过 ， 说 明 天 再 来"),
    ("- 陈 晓 红 说 材 料 下 周 补 齐", f"- {NAME} 说 材 料 下 周 补 齐"),
    *[(words, words) for words in [
        "ICU转出，APP上查不到进度", "Long Term Care 评估已约", "王 Ok说", "查 CT说明书",
        "备注：高兴说谢谢", "（周一来过）", "备注：王某某来过", "“社工来过”"]],
])
def test_a_name_half_in_pinyin_or_after_a_label_opens_what_the_person_did(
        typed: str, stored: str) -> None:
    """redteam80: a name the IME left half in pinyin (Zhang 建国, 张 Jianguo) before what the
    person said or did was kept by every rule; so was one opening what follows a colon, a
    bracket, a dash or a quote (备注：张建国来过), and a line spaced a character at a time glued
    to one lost its first character to the word before (备注：张 建 国: 张 left; “李 桂 兰 kept
    whole), as if Chinese parted its words with spaces."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("联系人电话 1 3 8  0 0 1 3  8 0 0 0", f"联系人电话 {PHONE}"),
    ("138 0 0 1 3 8 0 0 0 是她儿子的", f"{PHONE} 是她儿子的"),
    ("1-3-8 0-0-1-3 8-0-0-0 打过去没人接", f"{PHONE} 打过去没人接"),
    ("女儿手机 1 3 9 - 1 2 3 4 - 5 6 7 8，晚上打", f"女儿手机 {PHONE}，晚上打"),
    ("身份证 3 1 0 1 1 5  1 9 8 5 0 3 1 2  1 2 3 4 已核", f"身份证 {ID} 已核"),
    *[(words, words) for words in [
        "评分 5 4 5 5 4 5 5 4 5 5 4，都满意", "第 1 2 3 4 5 6 7 项", "2026 12 20 办结",
        "2026-12-20 至 2027-01-05", "1 2 3 4 5 6 7 8 9 10 11 12 月"]],
])
def test_a_mobile_read_out_a_digit_at_a_time_and_parted_unevenly_is_a_phone(
        typed: str, stored: str) -> None:
    """redteam80: a mobile's or an ID number's digits typed as heard, the groups parted by two
    spaces or a dash and the digits by one space (or a first group whole, 138 0 0 1 ...), were
    kept; ``_SPACED`` reads one parting all along. Scores, items and days so typed stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize("words", [
    "SWD来电说个案已转介，MSW说下周出院", "OT来过评估扶手，PT说每周两次",
    "GP说血压偏高，RN说要复诊", "HA说要排期，HD来过看单位", "UPS来过，DHL来电约明天派件",
    "yang lao 金已到账，shen qing 表已交", "wei xin 群里通知了，zhou mo 不办公",
    "cheng guan 来过，说摊位要搬", "xu ke 证已发，shi ye 金下月停",
    "gao xin 区的企业补贴，li xi 到账了"])
def test_the_letters_of_an_office_and_pinyin_words_are_no_names(words: str) -> None:
    """redteam80: the letters a Hong Kong note names an office, a therapist or a courier by
    went as initials before 来过 / 说 (scrub48), and lower-case pinyin words that open like a
    surname (yang lao 金, cheng guan 来过) as a name in pinyin."""
    assert redact(words) == words


@pytest.mark.parametrize(("typed", "stored"), [
    ("今天张建国来过，材料已收", f"今天{NAME}来过，材料已收"),
    ("上午李秀英打电话问补贴", f"上午{NAME}打电话问补贴"),
    ("中午孙立军到窗口领表", f"中午{NAME}到窗口领表"),
    ("陪同王芳到窗口办理", f"陪同{NAME}到窗口办理"),
    ("陪同吴桂芬去医院复查", f"陪同{NAME}去医院复查"),
    ("2026年12月20日周日张建国来过", f"2026年12月20日周日{NAME}来过"),
    ("12月31日23:30 王芳来电", f"12月31日23:30 {NAME}来电"),
    ("2027年1月5日上午刘志刚到窗口", f"2027年1月5日上午{NAME}到窗口"),
    ("2028年3月1日下午陈晓红来过", f"2028年3月1日下午{NAME}来过"),
    ("孙 立 军 电 话 1 5 8 1 2 3 4 5 6 7 8", f"{NAME} 电 话 {PHONE}"),
    # 高峰 is a name as often as the rush hour: scrub49 listed it as no name, and 高峰说他家漏水,
    # 居民高峰反映 and 联系人高峰 (all caught before) were kept
    ("高峰说他家漏水", f"{NAME}说他家漏水"),
    ("居民高峰反映楼道灯坏了", f"居民{NAME}反映楼道灯坏了"),
    ("联系人高峰，电话已留", f"联系人{NAME}，电话已留"),
    ("高峰来过窗口", f"{NAME}来过窗口"),
    *[(words, words) for words in [
        "今天来访人数较多", "上午高峰期来电多", "陪同人员到窗口等候", "下午开会说明情况",
        "今天周一来电很多", "昨天下雨来访少"]],
])
def test_a_name_glued_to_the_time_before_it_opens_its_clause(typed: str, stored: str) -> None:
    """scrub49: a name glued to the time a note opens with (今天张建国来过, 上午李秀英打电话)
    or to 陪同 before where they went (陪同王芳到窗口) was kept: only a punctuation mark or the
    text's start opened a clause. The center's own words so placed stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("已联系Zhang建国，明天来补材料", f"已联系{NAME}，明天来补材料"),
    ("通知Li秀英明天来", f"通知{NAME}明天来"),
    ("已通知Chen晓红下周一来签字", f"已通知{NAME}下周一来签字"),
    ("已联系张Jianguo，他说下周来", f"已联系{NAME}，他说下周来"),
    ("通知李Guilan来领表", f"通知{NAME}来领表"),
    *[(words, words) for words in ["已联系Grab的客服，未接通", "已通知居委会明天来"]],
])
def test_a_name_half_in_pinyin_after_who_reached_it(typed: str, stored: str) -> None:
    """scrub49: a half-pinyin name went only before what the person did (redteam80); after
    联系 / 通知 / 陪同 ... it was kept whole (已联系Zhang建国，)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("wxy来过，材料已收", f"{NAME}来过，材料已收"),
    ("上午lxm来窗口问补贴", f"上午{NAME}来窗口问补贴"),
    ("zq签字确认", f"{NAME}签字确认"),
    ("备注：cxh来过两次", f"备注：{NAME}来过两次"),
    *[(words, words) for words in ["今天app来不了", "ok说好了", "ta说明天来", "pdf来过一次",
                                   "mm来过了", "email来过"]],
])
def test_lower_case_initials_before_what_the_person_did(typed: str, stored: str) -> None:
    """scrub49: initials typed without the shift key (wxy来过) were kept; WXY来过 went."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("Satō Hanako来电", f"{NAME}来电"),
    ("Saitou Kenji来过", f"{NAME}来过"),
    ("Ōno Tarō说材料在家", f"{NAME}说材料在家"),
    ("Kōno Tarō来电", f"{NAME}来电"),
    ("Yūko Satō来过两次", f"{NAME}来过两次"),
    ("Ohta Jirou来过", f"{NAME}来过"),
    *[(words, words) for words in ["Tokyo Osaka 的航班", "Ōsaka Station 附近", "Café的发票"]],
])
def test_a_japanese_name_with_long_vowels(typed: str, stored: str) -> None:
    """scrub49: romaji with its long vowels marked (Satō) or spelled (Saitou, Ohta) was kept;
    Sato Hanako went (scrub48)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("她女儿座机 021 - 62 34 56 78", f"她女儿座机 {PHONE}"),
    ("家里座机 6234 56 78", f"家里座机 {PHONE}"),
    ("单位电话62345678转8001", f"单位电话{PHONE}"),
    ("座机 021-62345678 转 8001，找她本人", f"座机 {PHONE}，找她本人"),
    ("联系电话：(021)62345678-8001", f"联系电话：{PHONE}"),
    ("电话021-62345678 ext 8001", f"电话{PHONE}"),
    *[(words, words) for words in ["咨询热线 021-12345 转 2", "请拨12345转3号键",
                                   "补贴转8001元到账", "电话2026-12-20回访", "电话 2027 1 5 再打",
                                   "电话 2028/1/5 回访", "电话 12-31 23:30 回访"]],
])
def test_a_landline_spaced_read_out_or_with_its_extension(typed: str, stored: str) -> None:
    """scrub49: a landline spaced in pairs after its keyword (kept as a day: 6234 56 78 has a
    day's shape; 021 - 62 34 56 78) and its extension after it (转8001, -8001, ext 8001) were
    kept. A hotline's menu and an amount stay; so does a day."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("Sato\u0304 Taro\u0304来过，咨询签证材料", f"{NAME}来过，咨询签证材料"),
    ("Zha\u0304ng Jia\u0300nguo\u0301来过", f"{NAME}来过"),
    ("已联系Zha\u0304ng建国，明天来补材料", f"已联系{NAME}，明天来补材料"),
    ("王 Xiu\u0300ying说她家漏水", f"{NAME}说她家漏水"),
    # nothing scrubbed: the clerk's characters, the marks apart as typed
    ("Cafe\u0301 de Flore的活动取消了", "Cafe\u0301 de Flore的活动取消了"),
    ("Sato\u0304先生的签证材料", "Sato\u0304先生的签证材料"),
])
def test_a_name_with_its_marks_typed_apart_from_its_letters(typed: str, stored: str) -> None:
    """redteam89: ``fold`` reads Satō's ō as o only when it is one character; text decomposed
    (o and the macron U+0304 apart, as a Mac or a phone pastes it) kept every romaji and pinyin
    name with a mark on it. The marks after a name's last letter go with it."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("电话62345678 - 8001元押金已退", f"电话{PHONE} - 8001元押金已退"),
    ("手机13800138000 -200元已转", f"手机{PHONE} -200元已转"),
    ("电话62345678-300元的事已说明", f"电话{PHONE}-300元的事已说明"),
    ("手机13800138000 转 2000元给她儿子", f"手机{PHONE} 转 2000元给她儿子"),
    ("电话62345678转 500元押金", f"电话{PHONE}转 500元押金"),
    *[(words, words) for words in ["联系居委会，补贴1380000元", "联系居委会，补贴1 380 000元"]],
])
def test_an_amount_after_a_phone_is_neither_the_phone_nor_its_extension(
        typed: str, stored: str) -> None:
    """redteam89: scrub49 read " - " inside a number, so 62345678 - 8001元 went whole as an
    amount and the phone was kept; and its extension took an amount in (转 2000元)."""
    assert redact(typed) == stored


@pytest.mark.parametrize("words", [
    "今天向领导反映了漏水", "刚才向社工说明了情况", "今天向物业反映噪音", "上午向民警说了经过",
    "随后向大家说明", "今天高温来电多，窗口排队", "今天常规来电三个", "她回了个lol说没事",
    "群里emm说再看看", "ld说下周统一办理", "文件里eg表示可以代办"])
def test_the_centers_words_after_a_time_or_in_lower_case_are_no_names(words: str) -> None:
    """redteam89: scrub49's time before a name took 向领导 (今天向领导反映) and 高温, 常规 for
    names, and its lower-case initials took a chat's words (lol, emm, ld: 领导)."""
    assert redact(words) == words


@pytest.mark.parametrize(("typed", "stored"), [
    ("20日张建国来过，材料已收", f"20日{NAME}来过，材料已收"),
    ("12月20号李秀英来电问补贴", f"12月20号{NAME}来电问补贴"),
    ("二十日王芳到窗口补材料", f"二十日{NAME}到窗口补材料"),
    # the calendar's edges: the last half hour of 2026, a provisional 2027 day, 29 Feb 2028
    ("31日23:30刘志刚来电说钥匙丢了", f"31日23:30{NAME}来电说钥匙丢了"),
    ("2027年1月4日赵丽华来访", f"2027年1月4日{NAME}来访"),
    ("2028年2月29日孙立军打电话问进度", f"2028年2月29日{NAME}打电话问进度"),
    ("9点半陈晓红来过", f"9点半{NAME}来过"),
    *[(words, words) for words in ["20日来电三个，均已答复", "12月20号周日值班，来访少",
                                   "31日23:30系统维护，暂停受理", "20日高温来电多",
                                   "12月20日周日张贴了通知", "20日方便来窗口的请预约"]],
])
def test_a_name_glued_after_a_day_or_a_time_opens_its_clause(typed: str, stored: str) -> None:
    """scrub50: a name glued to the day before it (20日张建国来过) or to a clock's time was
    kept; only a weekday or a time word (今天, 上午) opened the clause (scrub49)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国今天来过，说下周再来", f"{NAME}今天来过，说下周再来"),
    ("李秀英上午打电话问补贴", f"{NAME}上午打电话问补贴"),
    ("何建军又来电问进度", f"{NAME}又来电问进度"),
    ("吴桂芬周一到窗口签字", f"{NAME}周一到窗口签字"),
    ("备注：陈晓红下午来过", f"备注：{NAME}下午来过"),
    ("张建国来电多次", f"{NAME}来电多次"),
    *[(words, words) for words in ["今天周一来电很多", "上午高峰期来电多", "听说下周三政策调整"]],
])
def test_a_name_before_the_time_and_what_the_person_did(typed: str, stored: str) -> None:
    """scrub50: a name with the time between it and what the person did (张建国今天来过) was
    kept: the verb had to follow the name."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("上午高峰来电多，窗口排队", "上午高峰来电多，窗口排队"),
    ("9点半高峰来访多，已分流", "9点半高峰来访多，已分流"),
    ("今天来电量大，加开一个窗口", "今天来电量大，加开一个窗口"),
    ("今天华为来电，咨询合作", "今天华为来电，咨询合作"),
    ("江苏来电转办", "江苏来电转办"),
    # who called stays a name
    ("高峰说他家漏水", f"{NAME}说他家漏水"),
    ("上午高峰来电问补贴", f"上午{NAME}来电问补贴"),
])
def test_calls_counted_and_a_company_calling_are_no_names(typed: str, stored: str) -> None:
    """scrub49's deliberate over-scrubs: 高峰 before 来电多 (how many calls came) and a company
    or a place after a time (今天华为来电) went as names; a person calling still goes."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("zhang建国来过，材料已收", f"{NAME}来过，材料已收"),
    ("已联系zhang建国，明天来补材料", f"已联系{NAME}，明天来补材料"),
    ("li秀英说下周再来", f"{NAME}说下周再来"),
    ("张jianguo来电问补贴", f"{NAME}来电问补贴"),
    ("已联系刘zhigang，未接通", f"已联系{NAME}，未接通"),
    ("给Zhang建国打电话，未接通", f"给{NAME}打电话，未接通"),
    ("给zhang建国打过电话了", f"给{NAME}打过电话了"),
    ("跟Li秀英沟通过了", f"跟{NAME}沟通过了"),
    ("请Wang芳周一来签字", f"请{NAME}周一来签字"),
    # a surname alone: the verb after it is no given name
    ("联系zhang确认", f"联系{NAME}确认"),
    ("已联系Li核实", f"已联系{NAME}核实"),
    *[(words, words) for words in ["yang lao金已到账", "给付标准每月1200元", "给app打了五星",
                                   "群里有人说wifi密码改了", "已联系Grab的客服，未接通"]],
])
def test_a_name_half_in_lower_case_pinyin_or_after_whom_the_clerk_told(
        typed: str, stored: str) -> None:
    """scrub50: a half-pinyin name went only capitalised (Zhang建国) and after 联系 / 通知 ...;
    in lower case (zhang建国, 张jianguo) or after 给 / 跟 / 请 it was kept."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("已联系sato，明天来补材料", f"已联系{NAME}，明天来补材料"),
    ("联系sato确认签证材料", f"联系{NAME}确认签证材料"),
    ("给saitou打电话，未接通", f"给{NAME}打电话，未接通"),
    ("她和ohta一起来的窗口", f"她和{NAME}一起来的窗口"),
    ("联系Tanaka确认时间", f"联系{NAME}确认时间"),
    ("WXY和zjg来过，材料已收", f"{NAME}和{NAME}来过，材料已收"),
    ("zjg和LXM都来过了", f"{NAME}和{NAME}都来过了"),
    ("wxy、cxh来窗口问补贴", f"{NAME}、{NAME}来窗口问补贴"),
    ("给wxy打电话，说下周来", f"给{NAME}打电话，说下周来"),
    ("跟lxm沟通过了", f"跟{NAME}沟通过了"),
    # decided: after whom the clerk reached, ld and mm are a name's initials (刘东, 马敏); a
    # note for the case file writes 领导, and no millimetre is reached
    ("联系ld确认", f"联系{NAME}确认"),
    ("联系mm确认", f"联系{NAME}确认"),
    *[(words, words) for words in [
        "联系ta确认，她说下周来", "和ta一起来的是她女儿", "联系HR确认入职时间",
        "用微信和qq联系都可以",
        "ICU和CT来不及做，转院了", "WPS和PPT都可以打开", "pdf和doc都来了，已打印",
        # before what was said, ld and ta stay words (redteam89): 领导说, 他说
        "ld说下周统一办理", "ta说明天来"]],
])
def test_a_romaji_surname_or_initials_after_whom_the_clerk_reached_or_listed(
        typed: str, stored: str) -> None:
    """scrub50: romaji went only as two words (Sato Hanako) and initials only right before
    what the person did: 联系sato, 和ohta一起来, 给wxy打电话 and the first of WXY和zjg来过 were
    kept. ta (他 / 她) is never initials."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("sato hanako来电", f"{NAME}来电"),
    ("hiroshi tanaka说材料在家", f"{NAME}说材料在家"),
    ("saitou kenji来过", f"{NAME}来过"),
    ("ohta jirou来过两次", f"{NAME}来过两次"),
    ("tanaka来过，材料已收", f"{NAME}来过，材料已收"),
    ("Sato说下周再来", f"{NAME}说下周再来"),
    *[(words, words) for words in ["tokyo osaka 的航班", "made in japan的电饭煲", "go home说了",
                                   "email来过", "hello说完就挂了"]],
])
def test_a_japanese_name_in_lower_case_or_a_surname_alone_before_what_the_person_did(
        typed: str, stored: str) -> None:
    """scrub50: romaji went capitalised and as two words (Sato Hanako, scrub48); in lower case
    (sato hanako来电) or a surname alone before what the person did (tanaka来过) it was kept."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国、李秀兰和王伟来过，咨询高龄补贴", f"{NAME}、{NAME}和{NAME}来过，咨询高龄补贴"),
    ("欧阳建国和司马光明今天来过", f"{NAME}和{NAME}今天来过"),
    ("今天张建国和李秀兰都来过", f"今天{NAME}和{NAME}都来过"),
    ("刘志刚与何建军签字确认", f"{NAME}与{NAME}签字确认"),
    # a company listed with a person stays, the person goes
    ("华为和张建国来电", f"华为和{NAME}来电"),
    *[(words, words) for words in ["健康和平安来电讲座通知", "华为和万达来电", "国庆节华为来电"]],
])
def test_names_listed_before_what_they_all_did(typed: str, stored: str) -> None:
    """redteam100: a list of names before what they did (张建国、李秀兰和王伟来过) was kept
    whole: only a name opening a clause was read, and the last one follows 和."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国今天上午来过，说低保卡丢了", f"{NAME}今天上午来过，说低保卡丢了"),
    ("张建国昨天下午来电", f"{NAME}昨天下午来电"),
    ("张建国20日来过，材料不全", f"{NAME}20日来过，材料不全"),
    ("李秀兰12月20日来电", f"{NAME}12月20日来电"),
    ("张建国 今天来过 材料齐了", f"{NAME} 今天来过 材料齐了"),
    # a holiday or a span of days, or an emoji, before the name
    ("元旦张建国来过，说1月2日再来", f"元旦{NAME}来过，说1月2日再来"),
    ("国庆节李秀兰来电", f"国庆节{NAME}来电"),
    ("春节前王芳来过", f"春节前{NAME}来过"),
    ("国庆后刘志刚来电", f"国庆后{NAME}来电"),
    ("👍张建国来过", f"👍{NAME}来过"),
    *[(words, words) for words in ["国庆节今天放假", "元旦前华为来电", "春节前后高峰来电多",
                                   "今天王府井来电", "今天东方明珠来电"]],
])
def test_a_name_with_more_time_between_or_after_a_holiday(typed: str, stored: str) -> None:
    """redteam100: scrub50 read one time word between a name and its verb (张建国今天来过),
    not two (今天上午), a day of the month or a space; and a name after a holiday (元旦张建国来过)
    or an emoji was kept. 王府井 and 东方明珠 after a time went as names on main."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("由张建国代办，委托书已收", f"由{NAME}代办，委托书已收"),
    ("让李秀兰补材料", f"让{NAME}补材料"),
    ("找王芳签字后再办", f"找{NAME}签字后再办"),
    ("让张建国明天来一趟", f"让{NAME}明天来一趟"),
    *[(words, words) for words in ["由居委会负责通知", "由张江镇负责核实", "找房管所处理",
                                   "让周一来的居民先登记", "由张江负责对接", "由于高峰来电多",
                                   "让高龄老人先办", "找华为处理"]],
])
def test_a_name_after_by_let_or_find_and_what_they_did(typed: str, stored: str) -> None:
    """redteam100: a name after 由 / 让 / 找 (由张建国代办, 让李秀兰补材料) was kept; 跟 / 给 /
    请 and 代 / 替 / 帮 were read."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("ZHANG建国来过", f"{NAME}来过"),
    ("已联系ZHANG建国，明天来", f"已联系{NAME}，明天来"),
    ("给WANG秀兰打电话", f"给{NAME}打电话"),
    ("Zhang建国今天来过", f"{NAME}今天来过"),
    ("zhang建国昨天下午来电", f"{NAME}昨天下午来电"),
    ("张Jianguo今天来过", f"{NAME}今天来过"),
    *[(words, words) for words in ["EMS今天来电", "PDF今天来过邮件", "MA说明书已发"]],
])
def test_half_pinyin_in_capitals_or_before_the_time(typed: str, stored: str) -> None:
    """redteam100: a pinyin surname in capitals (caps lock: ZHANG建国) was kept, and a half-
    pinyin name with the time before its verb (Zhang建国今天来过)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国等人来过", f"{NAME}等人来过"),
    ("张建国等三人来过", f"{NAME}等三人来过"),
    ("张建国一家今天来过", f"{NAME}一家今天来过"),
    ("小张、老王都来过", f"{NAME}、{NAME}都来过"),
    ("叫老李过来签字", f"叫{NAME}过来签字"),
    ("让小张补材料", f"让{NAME}补材料"),
    *[(words, words) for words in ["华为等公司来电", "老师都来了", "小区都通知了", "老乡再来",
                                   "老婆过来", "老伴先走了", "老总都来了"]],
])
def test_a_name_with_who_came_along_or_a_nickname_listed_or_asked_over(
        typed: str, stored: str) -> None:
    """redteam100: a name before 等人 / 一家 (张建国等人来过) was kept, and a nickname before
    都 / 过来 / 补 (小张、老王都来过: the second; 叫老李过来, 让小张补材料)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("和zhang建国一起来的", f"和{NAME}一起来的"),
    ("由zhang建国代办", f"由{NAME}代办"),
    ("已联系 zhang建国，明天来", f"已联系 {NAME}，明天来"),
    ("让Li秀兰补材料", f"让{NAME}补材料"),
    ("找WANG秀兰签字", f"找{NAME}签字"),
    *[(words, words) for words in ["和App一起用", "和PDF一起交", "联系 app客服", "由ABC负责",
                                   "和iPhone一起来"]],
])
def test_half_pinyin_after_by_let_find_or_with(typed: str, stored: str) -> None:
    """redteam100: a half-pinyin name went after 跟 / 给 / 请 and right after 联系 (scrub50),
    not after 由 / 让 / 找 / 和 (由zhang建国代办) nor with a space after 联系."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("LI建国来过，材料齐了", f"{NAME}来过，材料齐了"),
    ("给MA秀兰打电话", f"给{NAME}打电话"),
    ("HU建军今天来过", f"{NAME}今天来过"),
    *[(words, words) for words in ["MA说明书已发", "HE说明天来", "MA学位申请材料", "IT部门来过",
                                   "HR同意了", "AI客服说不行", "QQ群里通知了"]],
])
def test_a_two_capital_pinyin_surname_glued_to_the_given_name(typed: str, stored: str) -> None:
    """redteam100 read a surname in capitals of three letters or more (ZHANG建国): LI建国来过
    was kept. Two capitals go only glued to a given name before what the person did, so an
    acronym of two before a word stays."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("联系sato hanako", f"联系{NAME}"),
    ("已联系sato hanako，下周来取", f"已联系{NAME}，下周来取"),
    ("联系zhang jianguo，未接通", f"联系{NAME}，未接通"),
    ("已通知wang fang。", f"已通知{NAME}。"),
    ("联系SATO", f"联系{NAME}"),
    ("联系TANAKA确认时间", f"联系{NAME}确认时间"),
    *[(words, words) for words in ["联系CCTV", "给APPLE打电话", "联系EMS查件", "联系SONY售后",
                                   "联系ta确认", "联系HR确认入职时间"]],
])
def test_a_given_name_after_whom_the_clerk_reached_or_a_romaji_surname_in_capitals(
        typed: str, stored: str) -> None:
    """redteam100: after 联系 only a romaji surname went (联系sato hanako kept hanako), a
    pinyin name in lower case before punctuation was kept whole (联系zhang jianguo，), and so
    was a romaji surname in capitals (联系SATO)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国和小王来过", f"{NAME}和{NAME}来过"),
    ("张建国、老李都来过", f"{NAME}、{NAME}都来过"),
    ("张建国和小王一起来窗口", f"{NAME}和{NAME}一起来窗口"),
    *[(words, words) for words in ["老师和小区都通知了",
                                   "华为和小米来电"]],
])
def test_a_nickname_listed_after_a_whole_name(typed: str, stored: str) -> None:
    """redteam100: 张建国和小王来过 kept the whole name (a list's parts were whole names)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国们来过", f"{NAME}们来过"),
    ("刘志刚们今天来电", f"{NAME}们今天来电"),
    *[(words, words) for words in ["党员们来过", "申请人们来过", "房东们来电", "商户们反映",
                                   "司机们说", "华为们来电", "周末们来过"]],
])
def test_a_name_with_the_plural_before_what_they_did(typed: str, stored: str) -> None:
    """redteam100: 张建国们来过 (he and his) kept the name; roles and offices before 们 stay."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("12345转办，已联系韩立新核实", f"12345转办，已联系{NAME}核实"),
    ("已通知邓丽萍补交户口本复印件", f"已通知{NAME}补交户口本复印件"),
    ("已联系沈丽娟确认时间", f"已联系{NAME}确认时间"),
    ("投诉窗口工作人员林晓红态度差", f"投诉窗口工作人员{NAME}态度差"),
    ("交班：常建国的居住证材料在抽屉", f"交班：{NAME}的居住证材料在抽屉"),
    ("老人说儿子蔡俊每月来一次", f"老人说儿子{NAME}每月来一次"),
    *[(words, words) for words in ["联系金融机构核实", "联系石材厂核实", "联系华为确认",
                                   "联系高龄老人确认", "工作人员文明用语", "工作人员马上处理",
                                   "工作人员解释说", "工作人员向居民解释", "华为的材料已收",
                                   "张江的材料已收"]],
])
def test_a_clerks_day_who_was_reached_for_what_staff_named_and_whose_papers(
        typed: str, stored: str) -> None:
    """scrub51's clerk's day: a name after 联系 / 通知 before what it was for (核实, 补交) was
    kept, and so were staff after 工作人员 without a colon, a name before 的 and a paper (的居住证),
    and 每 after a two-character name went with it."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("李秀兰，张建国来过", f"{NAME}，{NAME}来过"),
    ("交接：李秀兰，张建国来过，材料已收", f"交接：{NAME}，{NAME}来过，材料已收"),
    *[(words, words.replace("张建国", NAME)) for words in [
        "谢谢，张建国说", "黄浦区，张建国来过", "张家港，张建国来电", "高血压，张建国说",
        "周转金，张建国来过", "车马费，张建国来电", "石材厂，张建国来过", "江苏人，张建国说",
        "材料已收，张建国来过", "华为，张建国来电"]],
])
def test_the_first_of_two_names_parted_by_a_comma(typed: str, stored: str) -> None:
    """redteam100 left 李秀兰，张建国来过 with the first name kept (the comma ended what could be
    a heading's topic): a whole name of three characters before the comma goes when the name
    after it went; thanks, a district, a city, an illness, a fund or a fee stays."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    # stop 50's misses, as they were found
    ("下午3点张建国来办医保", f"下午3点{NAME}来办医保"),
    ("老王和张建国来过", f"{NAME}和{NAME}来过"),
    ("LI建国", NAME),
    ("张建国和小米来过", f"{NAME}和小米来过"),
    ("听说王秀英今天来过", f"听说{NAME}今天来过"),
    ("5号窗口张建国说", f"5号窗口{NAME}说"),
    ("刘志刚今天签字", f"{NAME}今天签字"),
    # what a clerk types around them: a form of address, a time, a window, a list with 、,
    # 今天 / 昨天 / 刚才 / 又, two-character names, a service item right after the name
    ("张建国先生今天来办医保", f"{NAME}今天来办医保"),
    ("王秀英女士又来了", f"{NAME}又来了"),
    ("李阿姨刚才来咨询", f"{NAME}刚才来咨询"),
    ("9:30张建国来办医保", f"9:30{NAME}来办医保"),
    ("上午十点李秀英来咨询", f"上午十点{NAME}来咨询"),
    ("3号窗王芳来过", f"3号窗{NAME}来过"),
    ("2号窗口李强来交材料", f"2号窗口{NAME}来交材料"),
    ("张建国、李秀英都来办医保", f"{NAME}、{NAME}都来办医保"),
    ("老李和王芳来过", f"{NAME}和{NAME}来过"),
    ("张建国又来了", f"{NAME}又来了"),
    ("王芳昨天来领补贴", f"{NAME}昨天来领补贴"),
    ("李强刚才来问低保", f"{NAME}刚才来问低保"),
    ("张建国医保报销", f"{NAME}医保报销"),
    ("王芳低保年审材料齐了", f"{NAME}低保年审材料齐了"),
    ("李强办理居住证", f"{NAME}办理居住证"),
    ("听说李强昨天来过", f"听说{NAME}昨天来过"),
    ("ZHANG秀兰，材料已收", f"{NAME}，材料已收"),
    ("王芳今天签字确认", f"{NAME}今天签字确认"),
])
def test_stop_fifties_misses_and_the_ways_a_clerk_types_them(typed: str, stored: str) -> None:
    """Stop 50 left these names in the text: a name before what the person came for (来办,
    来咨询, 又来了) or the errand that is theirs (医保报销), after a window's number or 听说,
    listed after a nickname or before 小米, 刘志刚 with the time before 签字, and LI建国 alone."""
    assert redact(typed) == stored


@pytest.mark.parametrize("words", [
    "周一到周五办理", "今天来办的人很多", "窗口高峰来办的多", "高效办理", "简化办理流程",
    "夏季补贴已发放", "商保报销需要发票", "文化补贴", "安居补贴", "冷空气来了", "车子来了",
    "常规办理", "马上办理", "尚未办理", "申报补贴", "康复补贴", "高龄津贴", "农村户口",
    "常住户口迁移", "华为来办业务", "江苏来办", "申请人来办", "房东来了", "孙子来了",
    "听说高龄补贴要涨", "听说政策变了", "窗口工作人员说", "窗口管理说明", "3号窗暂停办理",
    "小米和华为来过", "老人和小孩都来了", "老师和家长来过", "申请MA学位", "HE染色报告",
    "MA学位申请材料"])
def test_the_centers_errands_and_words_before_them_stay(words: str) -> None:
    """What scrub52's rules read after a name (来办, 办理, 补贴, 报销, 来了, a window) also
    follows the center's own words: those stay."""
    assert redact(words) == words


@pytest.mark.parametrize("words", [
    # who came, by where they are from: a place and 人 (温州人来办 is no one's name)
    "温州人来办居住证", "江西人来办社保转移", "韩国人来办居住证", "何人办理均可",
    # a place, a company, the weather before 来办 / 来了
    "李子园来办的居民", "苏宁来办企业登记", "下午雷雨来了，窗口人少", "梅雨季来了，注意防潮",
    # how it is done, the kind of help, before 办理 / 补贴 / 报销 / 户口 / 救助 / 慰问金
    "安心办理，不用着急", "简易办理流程已公布", "6号窗口金卡办理", "农合报销比例提高",
    "听说蓝印户口", "听说包干报销", "听说高校补贴", "听说安家补贴", "听说宁养救助",
    "听说史料补贴", "听说金秋慰问金", "听说严寒补贴", "听说高寒补贴", "听说边远补贴",
    "听说冷链补贴", "听说龙头补贴", "听说农资补贴"])
def test_who_came_by_place_and_the_kinds_of_help_are_no_names(words: str) -> None:
    """redteam105: scrub52 read a name before 来办 / 来了 / 办理 / a service item, and took
    a place and 人 (温州人来办), a place or a company (李子园, 苏宁), the weather (雷雨来了),
    how it is done (安心办理, 简易办理) and a kind of subsidy or help (高校补贴, 金秋慰问金,
    蓝印户口) for one."""
    assert redact(words) == words


@pytest.mark.parametrize(("typed", "stored"), [
    ("刘志刚来了，刘志刚又走了", f"{NAME}来了，{NAME}又走了"),
    ("张建国来办医保，张建国材料已补", f"{NAME}来办医保，{NAME}材料已补"),
    ("欧阳建华来办居住证，欧阳建华又走了", f"{NAME}来办居住证，{NAME}又走了"),
    ("已联系李秀英，李秀英下周来", f"已联系{NAME}，{NAME}下周来"),
])
def test_a_whole_name_found_once_goes_wherever_the_note_repeats_it(
        typed: str, stored: str) -> None:
    """redteam105: a name a rule found (刘志刚来了) stayed where the note said it again with
    nothing a rule reads around it (刘志刚又走了): the same three or four characters are the
    same person. Only whole names of three characters or more are carried (a two-character
    find, 高峰, is a word as often)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("张建国过来办医保", f"{NAME}过来办医保"),
    ("张建国要办居住证", f"{NAME}要办居住证"),
    ("张建国想办低保", f"{NAME}想办低保"),
    ("张建国去办户口了", f"{NAME}去办户口了"),
    ("张建国在办失业登记", f"{NAME}在办失业登记"),
    ("张建国的低保续上了", f"{NAME}的低保续上了"),
    ("张建国医疗救助已批", f"{NAME}医疗救助已批"),
    *[(words, words) for words in ["江苏的医保", "农村的低保", "高层公租房", "想办法解决",
                                   "居民要办居住证", "金桥公租房"]],
])
def test_a_name_before_the_errand_they_want_or_went_to_do(typed: str, stored: str) -> None:
    """redteam105: scrub52 read a name before 来办 / 办理 / a service item, not before what the
    person wants, went or came over to do (张建国要办居住证, 张建国过来办医保), nor before
    的 and the errand (张建国的低保), nor before 医疗救助; where from, a place, a thing stays
    (高层公租房: 公租房 is no errand after a name, a storey is as often before it)."""
    assert redact(typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    # after 陪 / 替 / 和 ...: whom the clerk or a relative came along with or stood in for
    ("陪张建国来办", f"陪{NAME}来办"),
    ("陪刘志刚去了趟医院", f"陪{NAME}去了趟医院"),
    ("替李秀英交了医保费", f"替{NAME}交了医保费"),
    ("和刘志刚一起来", f"和{NAME}一起来"),
    ("跟李强一起来", f"跟{NAME}一起来"),
    ("与王秀英一同前来", f"与{NAME}一同前来"),
    # before 他妈 / 夫妇 / 两口子
    ("张建国他妈来办", f"{NAME}他妈来办"),
    ("张建国夫妇来过", f"{NAME}夫妇来过"),
    ("刘志刚两口子", f"{NAME}两口子"),
    ("今天王秀英她妈来过", f"今天{NAME}她妈来过"),
    # in 【】 / 「」 / 『』, alone or before what the person came for; in quotes before it
    ("【张建国】来办医保", f"【{NAME}】来办医保"),
    ("「王秀英」", f"「{NAME}」"),
    ("【李强】来电", f"【{NAME}】来电"),
    ("『刘志刚』来过", f"『{NAME}』来过"),
    ("“张建国”来办医保", f"“{NAME}”来办医保"),
    # right after a room, a phone or an ID number
    ("1203室张建国来办", f"{ADDRESS}{NAME}来办"),
    ("13812345678张建国来办", f"{PHONE}{NAME}来办"),
    ("13912345678王秀英", f"{PHONE}{NAME}"),
    # ending a note
    ("材料已收：张建国", f"材料已收：{NAME}"),
    ("经办人回访：王秀英", f"经办人回访：{NAME}"),
    ("材料已收：王芳", f"材料已收：{NAME}"),
    ("经办人回访：王秀英，满意", f"经办人回访：{NAME}，满意"),
    ("来办医保的是张建国", f"来办医保的是{NAME}"),
    # a name with the middle dot, however an IME types the dot
    ("买买提·艾力来办", f"{NAME}来办"),
    ("阿卜杜拉·买买提", NAME),
    ("今天热合曼・吐尔逊来咨询", f"今天{NAME}来咨询"),
    ("为阿卜杜拉•艾买提办理困难补助", f"为{NAME}办理困难补助"),
    # 单 (Shan) as a surname
    ("单国强来办", f"{NAME}来办"),
    ("居民单国强来办", f"居民{NAME}来办"),
    ("已联系单国强，", f"已联系{NAME}，"),
    # a space between the name and its errand
    ("张建国 来办医保", f"{NAME} 来办医保"),
    ("张建国 来电", f"{NAME} 来电"),
    # the first of three listed with commas, and a list alone
    ("张建国，王秀英，刘志刚来过", f"{NAME}，{NAME}，{NAME}来过"),
    ("张建国,王秀英,刘志刚", f"{NAME},{NAME},{NAME}"),
    ("交接：王芳、李强、张伟", f"交接：{NAME}、{NAME}、{NAME}"),
])
def test_stop_fifty_ones_misses_and_the_ways_a_clerk_types_them(typed: str, stored: str) -> None:
    """Stop 51 left these names in the text (redteam105's misses): after 陪 / 替 / 和, before
    他妈 / 夫妇 / 两口子, in 【】 or 「」, glued after a room or a phone, ending a note, joined by
    a middle dot, with the surname 单, spaced from the errand, first of three with commas."""
    assert redact(typed) == stored
    assert redact(stored) == stored


@pytest.mark.parametrize("words", [
    # after 居民, how the resident was or the card the errand is for (stop 51's over-scrubs)
    "居民安静来办", "居民金卡报销", "居民连连称谢", "居民白跑一趟", "居民甘愿放弃",
    # 陪 / 替 / 和 ... 一起: a relation, an office, a thing, a place, a word
    "陪同老人去医院", "陪孙子去医院复查", "和单位一起来办", "和车一起来", "和章程一起发",
    "替代方案已提交", "替房东交了房租", "陪高龄老人去医院", "和江苏老乡一起来", "和安全员一起来",
    "和施工方一同去", "和金卡一起办", "陪护人员到了", "和申请表一起交", "与居委会一同走访",
    "和万科一起来",
    # before 夫妇 / 两口子 / 他妈: what kind of couple, who they are, where from
    "金婚夫妇来办", "丁克夫妇来咨询", "高知夫妇来过", "房东夫妇来了", "温州两口子来办",
    "农民工夫妇来办", "韩国夫妇来办居住证", "高龄夫妇来办", "年轻夫妇来咨询", "老两口来办",
    "华侨夫妇来办", "江苏夫妻来办",
    # in brackets: a heading, a scheme, a holiday, an office, a place
    "【简报】", "【连心桥】志愿服务", "「金点子」征集", "「安心码」已开通", "【高龄补贴】",
    "【温馨提示】", "【周报】", "【华为】来访", "「一网通办」", "【国庆节】放假通知", "【党建】",
    "「黄金周」出行", "“金钥匙”工程", "【曹杨新村】", "【安全】提示",
    # a note's last words after a colon or 的是 that are a thing, a state, a place
    "已确认：高风险", "等级：高风险", "性质：商品房", "病情：高血压", "已领：米面油", "学历：高中",
    "身份：党员", "户籍：江苏", "已通知：安监", "已领取：毛毯", "已收：车票", "已交：房租",
    "已交：党费", "类型：房改房", "已收：车票，谢谢", "已确认：高风险，已上报",
    "要的是安全", "说的是方言", "来电说的是方言", "缺的是房产证",
    "报的是商业险", "来办的是高龄补贴", "已联系：居委会", "回访：满意", "来电的是江苏人",
    # words joined by a middle dot that are no name
    "文明·和谐", "上海·浦东", "《诗经·小雅》", "党建·引领", "暖心·服务", "幸福·家园", "中国·上海",
    "春节·元宵", "医保·社保·低保",
    # three or more parted by commas that are no names
    "周一，周三，周五", "高温，严寒，雷雨", "医保，社保，公积金", "宋体，黑体，楷体",
    "方便，快捷，高效",
    "黄浦，静安，徐汇", "金山区，奉贤区，松江区", "张家港，常熟，江阴", "高血压，高血脂，糖尿病",
    "身份证、户口本、居住证", "安全、文明、和谐",
    # a number, a room or a day before a word, a space before an errand
    "2026年12月20日周日来办", "2号楼高峰来电多", "3楼金卡办理", "5万元办理", "12345热线来电",
    "周一 来办", "高效 办理", "今天 来办的人很多", "温州人 来办", "安心 办理",
    # 单 opening a word
    "单位来电", "单独来办", "单身母亲来办", "单亲妈妈来办", "单位同事来了", "单据齐了", "单号来办",
    "居民单独来办"])
def test_words_that_look_like_stop_fifty_ones_misses_stay(words: str) -> None:
    """For every rule scrub53 widened, what a clerk types that looks like it: none is a name."""
    assert redact(words) == words


#: What scrub53's rules open on and look for after a name, with a surname and a given name's
#: character: every note of up to three of them is one a clerk could type in a hurry.
_SCRUB53_TRIGGERS = "陪替和跟一起同夫妇他妈【】「」“”：的是·单，、来去交1室张国"


def test_no_short_note_made_of_the_rules_own_words_raises() -> None:
    """女儿陪来的, 老伴陪去医院了, 替交了医保费: whom was came along with is said, not named.
    Scrub53's 陪 / 替 / 和 rule read the empty name there (a TypeError, and an IndexError for
    和一起), and whatever scrubbed the note failed with it: a write, a log line, a dead
    letter. Every text of one to three of the rules' characters scrubs, and again alike."""
    chars = _SCRUB53_TRIGGERS
    for a in chars:
        for b in chars:
            for text in (a + b, *(a + b + c for c in chars)):
                once = redact(text)
                assert redact(once) == once, text


@pytest.mark.parametrize("typed", ["女儿陪来的", "老伴陪去医院了", "替交了医保费", "和一起来的",
                                   "由女儿陪着来", "她老伴陪来办的"])
def test_a_companion_said_but_not_named_leaves_the_note_as_typed(typed: str) -> None:
    """Who came along is told by a relation or not at all: nothing is scrubbed, nothing raises."""
    assert redact(typed) == typed


@pytest.mark.parametrize(("typed", "stored"), [
    # a space, two, a tab or an emoji between the name and what the person did
    ("廖美玲  来办医保", f"{NAME}  来办医保"),
    ("谭永康\t来过", f"{NAME}\t来过"),
    ("谭永康👍来过", f"{NAME}👍来过"),
    ("联系 毛秀珍 ，未接", f"联系 {NAME} ，未接"),
    # 陪着, 陪 and an emoji or a line, more of what was done along, a list before 一起,
    # 一块 / 一道, and whoever came along or stood in before 陪 / 替
    ("陪着段玉芬去银行改密码", f"陪着{NAME}去银行改密码"),
    ("陪😊廖美玲去医院", f"陪😊{NAME}去医院"),
    ("陪\n龚丽萍去医院", f"陪\n{NAME}去医院"),
    ("陪乔玉兰散步时摔了一跤", f"陪{NAME}散步时摔了一跤"),
    ("陪贺国平聊了半小时", f"陪{NAME}聊了半小时"),
    ("社区医生和龙海波一块儿来的", f"社区医生和{NAME}一块儿来的"),
    ("和钱惠英、汪德胜一起来的", f"和{NAME}、{NAME}一起来的"),
    ("帮樊立新和覃秀兰一起填表", f"帮{NAME}和{NAME}一起填表"),
    ("严淑芬替付建英签了字", f"{NAME}替{NAME}签了字"),
    ("殷永红陪柴国华来的", f"{NAME}陪{NAME}来的"),
    # a sibling, 爱人, 老公 after a name
    ("俞海涛他姐来办", f"{NAME}他姐来办"),
    ("夏秋菊老公来过", f"{NAME}老公来过"),
    ("张建国爱人来办", f"{NAME}爱人来办"),
    # 〔〕 / 〖〗 as 【】, ( ) before what the person did
    ("〔黎少华〕已回访", f"〔{NAME}〕已回访"),
    ("〖易春梅〗来电", f"〖{NAME}〗来电"),
    ("（汤志勇）来过两次", f"（{NAME}）来过两次"),
    # a note's last name after a line, a ratio colon, with an emoji, after 备注 / 登记 / 对象
    ("来访：\n邱志华\n事由：医保报销", f"来访：\n{NAME}\n事由：医保报销"),
    ("已收：\n廖美玲", f"已收：\n{NAME}"),
    ("已收：侯建新🙏", f"已收：{NAME}🙏"),
    ("备注∶龚丽萍", f"备注∶{NAME}"),
    ("备注：邱志华", f"备注：{NAME}"),
    ("登记：易春梅", f"登记：{NAME}"),
    ("走访对象：武建设", f"走访对象：{NAME}"),
    ("材料已退回：龙海波", f"材料已退回：{NAME}"),
    # lists parted by ；, / or lines, with 和 before the last, before a comma
    ("殷永红；柴国华；严淑芬", f"{NAME}；{NAME}；{NAME}"),
    ("付建英/葛文斌/邹桂芳", f"{NAME}/{NAME}/{NAME}"),
    ("汤志勇\r\n尹红霞\r\n黎少华", f"{NAME}\r\n{NAME}\r\n{NAME}"),
    ("雷鸣远、钱惠英和汪德胜", f"{NAME}、{NAME}和{NAME}"),
    ("田小燕，樊立新，覃秀兰，材料都齐了", f"{NAME}，{NAME}，{NAME}，材料都齐了"),
    ("邱志华，龙海波，段玉芬都来过", f"{NAME}，{NAME}，{NAME}都来过"),
    # a dotted name typed with a full stop for the dot
    ("伊力哈木．托合提来过", f"{NAME}来过"),
    # a name after a phone and a space; initials after a phone or an ID number
    ("13812349876 黎少华", f"{PHONE} {NAME}"),
    ("13812345678王X", f"{PHONE}{NAME}"),
    ("310104196203154422张X", f"{ID}{NAME}"),
    # a bank card before a name that is also a counter's word (张: sheets)
    ("6222021001123456789张建国来办", f"{ACCOUNT}{NAME}来办"),
    # 赖 (Lai), a common surname no list had
    ("赖文杰说下周再来", f"{NAME}说下周再来"),
    ("紧急联系人：赖文杰", f"紧急联系人：{NAME}"),
    ("【贺国平】【赖文杰】都来过", f"【{NAME}】【{NAME}】都来过"),
])
def test_scrub53s_shapes_as_a_busy_clerk_types_them(typed: str, stored: str) -> None:
    """redteam108's attack on scrub53's rules: the same shapes with what a hurried clerk puts
    around them (a space, a tab, an emoji, a new line, 陪着, ；, /, 和, a full stop for the dot,
    another bracket), a relation scrub53 did not list, and a name after a phone. Each stayed in
    the text; the last three went only when scrubbed again (at export), or not at all."""
    assert redact(typed) == stored
    assert redact(stored) == stored


@pytest.mark.parametrize("words", [
    # how a call-back went, after 回访：
    "回访：向好", "回访：尚可", "回访：安好",
    # places joined by a dot, a sentence's full stop between two runs
    "阿克苏·库尔勒来的务工人员", "喀什·和田两地", "吐鲁番·哈密来的", "阿克苏.库尔勒",
    "材料齐了.阿依古丽来过", "已办结.下次再来", "上海.浦东", "文明.和谐",
    # calls counted with spaces, an emoji
    "高峰 来电 多", "上午高峰👍来电多", "居民 👍 来办",
    # 陪 / 替 / 帮 / 和 ... 一块 before no one
    "陪着老人去医院", "陪着孙子散步", "陪聊服务", "替班同事来了", "和物业、居委会一起上门",
    "帮忙一起填表", "帮居民一起填表", "社工和志愿者一块儿来的", "替身份证复印",
    # a sibling, 爱人, 老公 after who they are
    "关爱人群", "博爱人士来访", "房东老公来过", "江苏老婆来办", "他姐来办", "同事爱人来了",
    # 〔〕 / 〖〗 / ( ) around a document's number, a heading, a word
    "沪人社规〔2024〕12号", "〖重要〗通知", "(高峰)来电多", "(附件)来过", "(常规)来办",
    "(金山)来办", "(单位)来电",
    # after 备注 / 登记 / 交接 / 对象 / 退回, a thing or a state
    "备注：高血压", "备注：常住户", "备注：加急", "备注：本人来办", "登记：高龄老人",
    "交接：钥匙", "交接人：值班长", "走访对象：独居老人", "退回：复印件",
    # lists parted by ；, / or 和 that are no names
    "高温；严寒；雷雨", "宋体/黑体/楷体", "医保/低保/养老", "黄浦；静安；徐汇",
    "文明、和谐和友善", "安全、高效和便民", "金山、松江和青浦", "周一，周三，周五，上午办理",
    "大家都来办", "居民都来办", "金山都来办", "周一都来办", "常年都来办", "单位都来电",
    # a number, then what a clerk says after it
    "联系 物业，未接", "联系 居委会", "1万HKD", "3张A4纸",
    # what 赖 opens besides a name
    "居民赖账不还", "家属赖皮", "赖床说起不来", "老人赖在窗口不走", "依赖子女"])
def test_words_that_look_like_a_busy_clerks_names_stay(words: str) -> None:
    """For every shape redteam108 widened, what a clerk types that looks like it: none is a
    name (the three after 回访： went on main)."""
    assert redact(words) == words


def test_a_rule_that_raises_gives_the_whole_text_redacted_never_the_text(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """redteam108 found a rule raising on 女儿陪来的 (scrub53's companion rule): the write, every
    log line and dead letter holding such a note, and an export all failed. Now the scrubber
    fails closed: the whole text goes, and a warning names the exception's type only."""
    from shared.kernel.privacy import redaction
    from shared.kernel.privacy.markers import REDACTED_TEXT

    def broken(text: str) -> list[tuple[int, int, str]]:
        raise IndexError("a rule's own defect")
    monkeypatch.setattr(redaction, "rule_spans", broken)
    with pytest.warns(redaction.RedactionFailed, match="IndexError") as said:
        assert redaction.redact("张建国的女儿陪来的，电话13812345678") == REDACTED_TEXT
    assert "张建国" not in str(said[0].message) and "138" not in str(said[0].message)


@pytest.mark.parametrize(("text", "names"), [
    # two whole names alone, parted by a comma, a 、 or a ；
    ("邱志华,廖美玲", ["邱志华", "廖美玲"]), ("谭永康，龚丽萍", ["谭永康", "龚丽萍"]),
    ("交接：邱志华、廖美玲。", ["邱志华", "廖美玲"]),
    # a name in 《》 before what the person did, alone in quotes closing the note
    ("《尹红霞》来访登记", ["尹红霞"]), ("备注“乔玉兰”", ["乔玉兰"]),
    # a name glued before its phone, opening the clause
    ("常桂香13955556666，低保复核", ["常桂香"]), ("已回访。乔玉兰13812345678", ["乔玉兰"]),
    # after a room or a number's 号 in a list, or closing the note
    ("1203室武建设、1204室乔玉兰都反映漏水", ["武建设", "乔玉兰"]),
    ("2号贺国平，3号赖文杰", ["贺国平", "赖文杰"]), ("12床易春梅", ["易春梅"]),
    # a Western name written in characters with a dot
    ("约翰·史密斯来办外籍人员登记", ["约翰", "史密斯"]), ("汤姆·琼斯来电", ["汤姆", "琼斯"]),
    # 单 (Shan) before one character, or a form of address
    ("单强来办低保", ["单强"]), ("单阿姨又来问了", ["单阿姨"]), ("单大爷住院了", ["单大爷"]),
    # a space inside a name before what the person came for
    ("侯 建新来办", ["侯 建新"]), ("侯 建新  来办医保", ["侯 建新"]),
    # pinyin names in a list
    ("Hou Jianxin, Mao Xiuzhen, Tang Zhiyong", ["Hou Jianxin", "Mao Xiuzhen", "Tang Zhiyong"]),
])
def test_stop_fifty_twos_misses_go(text: str, names: list[str]) -> None:
    """redteam108's known misses (docs/security.md), each kept until scrub55."""
    out = redact(text)
    assert not any(n in out for n in names), out
    assert NAME in out


@pytest.mark.parametrize("words", [
    # 单 opening a word, before one character or a form of address after a word
    "单笔报销超过限额", "单件寄送", "单间来办", "单独来办", "单据来了", "单车来了", "单日来办",
    "单位来电", "单亲来办", "单项补贴", "单次报销", "单身来办", "单方说", "买单先生", "账单主任",
    "菜单老师", "订单阿姨",
    # two words alone parted by a comma
    "高温，严寒", "周一，周三", "黄浦区，静安区", "医保，低保", "宋体，黑体", "高血压，糖尿病",
    "张家港，常熟市", "金山区，松江区", "谢谢，再见", "王府井，南京路", "张江镇，唐镇",
    "安全，高效", "文明，和谐", "江苏，浙江", "万科，华润", "高铁，地铁", "申请，审核",
    "常规，加急", "周转金，车马费",
    "方便，快捷", "严格，规范", "王芳，李强", "张建国，王秀英，材料都齐了",
    # 《》 and quotes that hold no one
    "《诗经》", "《新民晚报》来电", "《民法典》规定", "“健康”讲座", "“金钥匙”", "“连心桥”",
    "他说“谢谢”", "备注“加急”", "标注“已核实”", "“高龄津贴”", "备注“常住户”",
    # words before a number
    "常用13955556666", "备用13955556666", "周一到13955556666", "高频次13955556666",
    "高血压13955556666", "王府井13955556666", "万科物业13955556666", "高龄户13955556666",
    # a number's 号 before a place or a thing
    "2号楼，3号楼", "5号窗口，6号窗口", "2号线，3号线", "3号床，4号床", "8号门", "12号台风",
    "5号文件", "2号车库，3号车库", "10号专窗",
    # places and words joined by a dot, romanised places listed
    "文明·和谐", "上海·浦东", "巴黎·伦敦·纽约", "党建·引领", "汤圆·饺子",
    "Pudong New Area, Shanghai", "Lu Jiazui, Pudong", "Xu Hui, Jing An", "Hong Kong, Macau",
    "Li Ning, Nike",
    # a space after a character that is no surname's
    "高 兴来办", "王 府井来办"])
def test_words_that_look_like_stop_fifty_twos_misses_stay(words: str) -> None:
    """For each shape scrub55 reads, what a clerk types that looks like it: none is a name (the
    numbers in some go, as before)."""
    out = redact(words)
    assert NAME not in out, out


@pytest.mark.parametrize("words", [
    # 单 before one character that makes a word of it, before what a person did (scrub55's
    # one-character given name after 单 read each as 单 the surname)
    "单周来访，双周电话回访", "单数来办", "单休来电", "单选说", "单干来办", "单靠说不行",
    "单侧来办", "单凭说的不算", "单向来办", "单手来办", "单层来办", "单招来办", "单考来办",
    "单排来办", "单床来办", "单门来办", "单栋来办", "单证来办", "单字说", "单飞说",
    # a book, a paper or a policy in 《》 and what it says (scrub55's 《》 read them as names)
    "《白皮书》说", "《黄皮书》说", "《孔乙己》说", "《金瓶梅》说", "《史记》说", "《祝福》说",
    # an ailment or a drug after a bed's number, closing the note (scrub55's 号 / 床 lists)
    "3床白内障。", "5床关节炎。", "12床林可霉素、13床甘露醇"])
def test_words_scrub55_took_for_names_stay(words: str) -> None:
    """redteam115's over-scrubs of scrub55's new rules, as a busy clerk types: none is a name."""
    out = redact(words)
    assert NAME not in out, out


@pytest.mark.parametrize(("text", "name"), [
    ("张建\u200b国说明天来", "张建"), ("王秀\u200b英来办低保", "王秀"),
    ("今天张建\u200d国说明天来", "张建"), ("李建\u00ad国来办", "李建")])
def test_a_name_an_invisible_character_parts_after_its_second_character_goes(
        text: str, name: str) -> None:
    """An invisible character inside a name (a zero-width space pasted from a chat, a soft
    hyphen) after its second character kept the whole name until redteam115: the rules read it
    as a space there, and a space is read only after a surname."""
    out = redact(text)
    assert name not in out and NAME in out, out


@pytest.mark.parametrize(("text", "names"), [
    # a name alone on its line before what the person did, or wrapped after its first characters
    ("谭永康\n来办低保", ["谭永康"]), ("侯建\n新来过，材料已收", ["侯建"]),
    ("侯\n建新来办", ["侯"]),
    # the last of a numbered list of names and their errands, an errand the rules do not know
    ("1. 易春梅 医保\n2. 常桂香 低保\n3. 武建设 养老", ["易春梅", "常桂香", "武建设"]),
    ("3. 武建设 养老", ["武建设"]), ("2、乔玉兰 残联", ["乔玉兰"]),
    # Yi and Chang as pinyin surnames; half pinyin after 陪 or before 夫妇
    ("13912345678 Yi Chunmei", ["Yi Chunmei"]), ("陪Chang桂香去", ["Chang桂香"]),
    ("陪着Li秀英去医院", ["Li秀英"]), ("Wu建设夫妇来过", ["Wu建设"]),
    # two names alone, one of a compound surname (four characters)
    ("欧阳娜娜，司马南", ["欧阳娜娜", "司马南"]), ("上官婉儿、谭永康", ["上官婉儿", "谭永康"]),
    # 单 (Shan) with a space before a one-character given name
    ("单 强来办", ["单 强"])])
def test_stop_fifty_threes_misses_go(text: str, names: list[str]) -> None:
    """The misses scrub55 and redteam115 left (docs/security.md), each kept until scrub56."""
    out = redact(text)
    assert not any(n in out for n in names), out
    assert NAME in out


@pytest.mark.parametrize(("text", "name"), [
    ("张建国，王秀英，材料都齐了", "张建国"), ("王秀英，龚丽萍，材料已收", "龚丽萍"),
    ("王秀英和龚丽萍，低保复核", "龚丽萍"), ("今日来访：王秀英，廖美玲，均已办结", "廖美玲")])
def test_a_name_listed_beside_the_residents_own_goes(text: str, name: str) -> None:
    """A whole name listed right beside the name of the resident on file is a person's: two
    names before a clause were kept (a list of two must close its clause, ``_listed``), and the
    resident's own went alone until scrub56."""
    out = redact(text, RESIDENT)
    assert name not in out and "王秀英" not in out, out


@pytest.mark.parametrize("words", [
    # scrub56's over-scrubs closed: a thing after a number's 号, a story's character, a fleet
    "2号毛巾架，3号毛巾架", "1号书架，2号书架", "3号鞋柜", "【孙悟空】主题活动",
    "由车队长签字确认", "车队长说明天派车",
    # beside the resident's name: what a note lists of her, not who came with her
    "王秀英，高血压，偏瘫", "王秀英，常住户", "王秀英，江苏籍", "王秀英，周一来过",
    "王秀英，宁波人", "王秀英，金山区", "王秀英，申请表已收",
    # numbered lines and lines alone that are no one's name
    "1. 高血压 3人", "2. 金山区 走访", "1. 方便面 2箱", "材料清单\n1. 身份证 原件",
    "1. 文明城 创建", "2. 程序员 招聘", "周一\n来办的人多", "高峰\n来电多", "医保\n报销",
    "交接\n材料已收", "高\n兴说",
    # pinyin that opens with Chang or Yi and is a word or a place
    "yi bao 报销", "Long Term, Chang Jiang", "Yi Wu, Zhejiang",
    # 单 and a space before a word
    "单 位来办", "单 周来办", "单 据来办"])
def test_words_that_look_like_stop_fifty_threes_misses_stay(words: str) -> None:
    """For each shape scrub56 reads, what a clerk types that looks like it (the resident on file
    is 王秀英): no other name is found."""
    out = redact(words, RESIDENT)
    assert out.count(NAME) == words.count("王秀英"), out


@pytest.mark.parametrize(("on_file", "note"), [
    ("高峰", "早高峰窗口排队人多"), ("高峰", "上午九点是办事高峰"),
    ("高峰", "晚高峰交通拥堵，上门推迟"),
    ("金星", "金星奖评选材料已报"), ("金星", "金星村委会来电协查"),
    ("白雪", "屋顶白雪未化，注意防滑"), ("白雪", "白雪公主绘本捐给社区书屋"),
    ("白雪", "白雪皑皑，上门改期"),
    ("文明", "文明城区创建检查"), ("文明", "窗口文明用语要规范"), ("文明", "文明养犬宣传单已发"),
    ("华东", "华东医院复查单已收"), ("华东", "华东师范大学志愿者来了"),
    ("华东", "华东地区天气转凉")])
def test_a_residents_whole_name_that_is_a_word_stays_where_it_is_the_word(
        on_file: str, note: str) -> None:
    """A resident named 高峰, 金星, 白雪, 文明 or 华东: the word in a note about her stays (each
    went wherever it was written until scrub56)."""
    out = redact(note, KnownPerson(name=on_file))
    assert out == note, out


@pytest.mark.parametrize(("on_file", "note"), [
    ("高峰", "高峰来办失业登记，材料齐"), ("高峰", "居民高峰电话13512345678"),
    ("高峰", "已联系高峰，明天来"),
    ("金星", "金星说腰疼没法排队"), ("金星", "金星本人签字确认"), ("金星", "通知金星周一来取证"),
    ("白雪", "白雪来过，留言要回电"), ("白雪", "白雪的女儿代办低保"), ("白雪", "陪白雪去医院复查"),
    ("文明", "文明来电说材料丢了"), ("文明", "文明要办居住证"), ("文明", "已告知文明下周三来"),
    ("华东", "华东说老伴住院了"), ("华东", "华东来过，材料已收"), ("华东", "由华东本人领取")])
def test_a_residents_whole_name_that_is_a_word_goes_where_it_is_her(
        on_file: str, note: str) -> None:
    """The same residents' names where they stand as the person: they go, as before."""
    out = redact(note, KnownPerson(name=on_file))
    assert on_file not in out and NAME in out, out


@pytest.mark.parametrize(("text", "kept"), [
    ("第3季度共办理127件", "季度"), ("待回访：\n1. 顾建华\n2. 钱美娟", "待回访")])
def test_a_quarter_counted_stays_and_names_alone_on_numbered_lines_go(
        text: str, kept: str) -> None:
    """季度 opening what was done is a quarter (scrubbed as a name until scrub56); a numbered
    line that holds a whole name alone is a list of people (kept until scrub56)."""
    out = redact(text)
    assert kept in out, out
    assert ("顾建华" not in out and "钱美娟" not in out) if "顾建华" in text else NAME not in out


@pytest.mark.parametrize("note", [
    # beside the resident's name: food, things, a place's word, what is wrong at home
    "王秀英，金银花，待回访", "王秀英，马铃薯，待回访", "王秀英，白开水，待回访",
    "王秀英，黄豆芽，待回访", "王秀英，甘蔗汁，待回访", "王秀英，蒲公英，待回访",
    "王秀英，席梦思，待回访", "王秀英，管道堵，待回访", "王秀英，易拉罐，待回访",
    "王秀英，毛线帽，待回访", "王秀英，江浙沪，待回访",
    # numbered lines of errands with no one in them
    "今日事项：\n1. 方便面 两箱\n2. 白开水 一桶", "今日事项：\n1、 马铃薯 已分\n2、 甘蔗汁 已送",
    "今日事项：\n1） 毛线帽 织好\n2） 易拉罐 回收", "1. 东方红 合唱", "西门口\n来办低保",
    "开放时间：\n1. 周一到 周五\n2. 周六 上午", "一、周一至 周五 开放",
    # pinyin words that open with Yi or Chang (疫苗, 一般, 医嘱, 常规, 一天, 义工)
    "yi miao 已打，来过", "yi ban 来说", "yi zhu 说按时吃药", "chang gui 来电", "yi tian 来三次",
    "yi gong 来过"])
def test_what_a_clerk_lists_beside_a_name_or_numbers_is_no_one(note: str) -> None:
    """Things, food and places listed beside the resident's name or on numbered lines, and
    pinyin words opening with Yi or Chang: each went as a name since scrub56 (redteam121)."""
    out = redact(note, RESIDENT)
    assert out.count(NAME) == note.count("王秀英"), out


@pytest.mark.parametrize(("on_file", "note"), [
    ("高峰", "高峰老人行动不便"), ("白雪", "白雪老人行动不便"),
    ("文明", "文明（男，68岁）来办低保")])
def test_a_residents_whole_name_that_is_a_word_goes_before_her_profile(
        on_file: str, note: str) -> None:
    """A resident named 高峰 or 文明 described right after her name (老人, her sex and age in
    brackets): the name went before scrub56 and was kept by it (redteam121)."""
    out = redact(note, KnownPerson(name=on_file))
    assert on_file not in out and NAME in out, out


@pytest.mark.parametrize(("note", "name"), [
    ("王秀英及张建国，材料齐了", "张建国"), ("王秀英与刘志刚，待回访", "刘志刚"),
    ("王秀英/张建国，已登记", "张建国"), ("邱志华及王秀英，已登记", "邱志华")])
def test_a_name_beside_the_residents_after_ji_yu_or_a_slash_goes(note: str, name: str) -> None:
    """及, 与 and / join two names in a list as 和 and 、 do (kept by scrub56's
    ``listed_beside``, redteam121)."""
    out = redact(note, RESIDENT)
    assert name not in out and "王秀英" not in out, out


def _lines_stepped_in_redaction(text: str) -> int:
    """How many lines of ``redaction.py`` ``redact`` steps through on ``text``: counted, not
    timed, as ``engine_work`` counts a pattern's reads (a loop in Python that no pattern runs)."""
    steps = 0
    here = redaction.__file__

    def trace(frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        nonlocal steps
        if frame.f_code.co_filename != here:
            return None
        if event == "line":
            steps += 1
        return trace

    sys.settrace(trace)
    try:
        redact(text, RESIDENT)
    finally:
        sys.settrace(None)
    return steps


def test_a_note_of_many_wrapped_lines_four_times_as_long_is_four_times_the_work() -> None:
    """A pasted list of names each wrapped after its surname (侯\n建新来过): every name found
    across a join was checked against every join of the text, and a field of 20,000 such
    characters took 0.47 s where one of 10,000 took 0.13 (redteam121, since scrub56's
    short-line view). Each name's joins are now found by bisection: four times the text, about
    four times the lines stepped, not sixteen."""
    unit = "侯\n建新来过\n"
    short, long = (_lines_stepped_in_redaction((unit * n)[:n]) for n in (400, 1600))
    assert long < 6 * short, (short, long)


@pytest.mark.parametrize("marks", [("(1)", "(2)"), ("（1）", "（2）"), ("一、", "二、")])
def test_a_name_on_a_line_numbered_in_brackets_or_in_chinese_goes(
        marks: tuple[str, str]) -> None:
    """A numbered list of names and their errands as clerks number it, (1) / （1） / 一、: kept
    by scrub56's numbered-line rule, which read 1. / 1、 / 1） only (redteam121)."""
    note = f"今日待回访：\n{marks[0]}易春梅 医保\n{marks[1]}常桂香 低保"
    out = redact(note, RESIDENT)
    assert "易春梅" not in out and "常桂香" not in out and "医保" in out, out
