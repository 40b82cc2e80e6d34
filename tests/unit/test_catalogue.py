"""The service catalogue: what the counter can do, found in Chinese, pinyin or English."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import shared.catalogue.loader as catalogue_loader
from shared.catalogue import (
    Catalogue,
    CatalogueError,
    ServiceItem,
    UnknownServiceItem,
    load_catalogue,
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def codes(items: list[ServiceItem]) -> list[str]:
    return [item.code for item in items]


def item_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "SA-WINTER-HEATING-SUBSIDY",
        "name_zh": "冬季取暖补贴",
        "name_en": "Winter heating subsidy",
        "category": "social_assistance",
        "documents": [{"zh": "居民身份证", "en": "Resident identity card"}],
        "policy_basis": {"zh": "本市冬季取暖补贴办法", "en": "The city's winter heating rules"},
        "keywords": ["取暖费", "heating"],
        "typical_days": 10,
        "recurring": False,
    }
    data.update(overrides)
    return data


def write(path: Path, content: Any) -> Path:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


# -- what ships -----------------------------------------------------------------------------


def test_the_shipped_catalogue_covers_the_everyday_affairs(catalogue: Catalogue) -> None:
    # A Shanghai community affairs acceptance center handles "200余项" affairs.
    assert len(catalogue.items()) >= 200
    names = {item.name_zh for item in catalogue.items()}
    for name in [
        "困难补助",
        "失业登记",
        "失业保险金申领",
        "医疗费用报销",
        "城乡居民基本医疗保险参保",
        "最低生活保障",
        "特困人员医疗救助",
        "特殊工种提前退休",
        "就业援助",
        "养老服务补贴",
        "临时救助",
        "居住证申领",
        "生育登记",
    ]:
        assert name in names, name


def test_every_item_is_complete_and_in_a_labelled_category(catalogue: Catalogue) -> None:
    categories = {c.code: c for c in catalogue.categories()}
    assert len(categories) >= 15
    assert {"health", "trade_union", "legal", "general"} <= set(categories)
    for category in categories.values():
        assert category.name_zh and category.name_en
    for item in catalogue.items():
        assert item.category in categories
        assert item.code.startswith(categories[item.category].prefix + "-")
        assert re.fullmatch(r"[A-Z]{2,4}(-[A-Z0-9]+)+", item.code), item.code
        assert item.name_zh and item.name_en, item.code
        assert 1 <= len(item.documents) <= 7, item.code
        assert all(d.zh and d.en for d in item.documents), item.code
        assert item.policy_basis.zh and item.policy_basis.en
        assert item.typical_days >= 0
        assert item.summary is not None and item.summary.zh and item.summary.en, item.code
        # Plain words, not the policy's: one or two sentences a resident reads at a glance.
        assert len(item.summary.zh) <= 90, item.code
        assert "《" not in item.summary.zh, item.code
        chinese = [k for k in item.keywords if not k.isascii()]
        english = [k for k in item.keywords if k.isascii()]
        assert chinese and english, item.code
        assert 1 <= len(item.related_items) <= 4, item.code


def test_codes_are_unique_and_every_related_item_exists(catalogue: Catalogue) -> None:
    codes_ = [item.code for item in catalogue.items()]
    assert len(codes_) == len(set(codes_))
    names = [item.name_zh for item in catalogue.items()]
    assert len(names) == len(set(names))
    for item in catalogue.items():
        assert item.code not in item.related_items
        assert len(set(item.related_items)) == len(item.related_items)
        for code in item.related_items:
            assert code in catalogue, f"{item.code} -> {code}"


def test_the_items_that_shipped_first_keep_their_codes(catalogue: Catalogue) -> None:
    # Events in the log refer to these codes: a code is never renamed or dropped.
    for code in [
        "SA-HARDSHIP-SUBSIDY",
        "SA-MINIMUM-LIVING-ALLOWANCE",
        "EMP-UNEMPLOYMENT-REGISTRATION",
        "EMP-EMPLOYMENT-ASSISTANCE",
        "EMP-FLEXIBLE-EMPLOYMENT-SI-SUBSIDY",
        "SI-UNEMPLOYMENT-BENEFIT",
        "MI-MEDICAL-REIMBURSEMENT",
        "MI-RESIDENT-ENROLMENT",
        "MI-MEDICAL-AID",
        "PEN-EARLY-RETIREMENT-SPECIAL-WORK",
        "EC-ELDERLY-CARE-SUBSIDY",
        "DIS-CERTIFICATE",
        "HOU-PUBLIC-RENTAL-HOUSING",
        "CIV-RESIDENCE-PERMIT",
        "FAM-BIRTH-REGISTRATION",
        "VET-HARDSHIP-ASSISTANCE",
    ]:
        assert code in catalogue, code


def test_certificates_are_issued_on_the_spot(catalogue: Catalogue) -> None:
    certificates = [
        i for i in catalogue.items() if i.code.endswith("-CERTIFICATE") and "证明" in i.name_zh
    ]
    assert len(certificates) >= 5
    assert all(item.typical_days == 0 for item in certificates), codes(certificates)


# -- the seed's hard cases can be served from the catalogue ----------------------------------


def nearby(catalogue: Catalogue, code: str, hops: int = 2) -> set[str]:
    """What a clerk reaches from an item by following related items ``hops`` times."""
    seen, frontier = {code}, {code}
    for _ in range(hops):
        frontier = {r for c in frontier for r in catalogue.require(c).related_items} - seen
        seen |= frontier
    return seen


def test_an_unemployed_resident_with_cancer_is_led_to_every_item_of_his_plan(
    catalogue: Catalogue,
) -> None:
    # Unemployment benefit with its medical cover, flexible-employment contributions
    # suspended, the family's resident insurance and the subsidy on bills, medical aid.
    plan = {
        "EMP-UNEMPLOYMENT-REGISTRATION",
        "SI-UNEMPLOYMENT-BENEFIT",
        "SI-UNEMPLOYMENT-MEDICAL-SUBSIDY",
        "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION",
        "MI-RESIDENT-ENROLMENT",
        "MI-RESIDENT-MEDICAL-SUBSIDY",
        "MI-MEDICAL-AID",
    }
    assert plan <= nearby(catalogue, "SI-UNEMPLOYMENT-BENEFIT", hops=3)
    assert "MI-RESIDENT-MEDICAL-SUBSIDY" in catalogue.require("MI-RESIDENT-ENROLMENT").related_items
    assert "MI-MEDICAL-AID" in catalogue.require("MI-RESIDENT-MEDICAL-SUBSIDY").related_items
    assert catalogue.require("MI-RESIDENT-MEDICAL-SUBSIDY").recurring
    assert codes(catalogue.search("癌症")) and codes(catalogue.search("停保")) == [
        "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"
    ]


def test_a_man_of_53_in_a_special_work_type_is_shown_early_retirement_and_the_bridge(
    catalogue: Catalogue,
) -> None:
    early = catalogue.require("PEN-EARLY-RETIREMENT-SPECIAL-WORK")
    assert {"SI-UNEMPLOYMENT-BENEFIT", "EMP-PERSONNEL-FILE"} <= set(early.related_items)
    assert early.summary is not None and "55" in early.summary.zh
    # Registration -> benefit -> benefit until retirement age -> early retirement.
    assert "PEN-EARLY-RETIREMENT-SPECIAL-WORK" in nearby(
        catalogue, "EMP-UNEMPLOYMENT-REGISTRATION", hops=3
    )


def test_a_resident_living_alone_who_misses_his_reimbursement_can_be_visited(
    catalogue: Catalogue,
) -> None:
    reimbursement = catalogue.require("MI-MEDICAL-REIMBURSEMENT")
    assert "GEN-HOME-VISIT-SERVICE" in reimbursement.related_items
    alone = catalogue.require("EC-LIVING-ALONE-CARE-VISIT")
    assert {"GEN-HOME-VISIT-SERVICE", "MI-MEDICAL-REIMBURSEMENT"} <= set(alone.related_items)


def test_employment_aid_leads_to_guidance_and_placement(catalogue: Catalogue) -> None:
    aid = catalogue.require("EMP-EMPLOYMENT-ASSISTANCE")
    assert {"EMP-CAREER-GUIDANCE", "EMP-JOB-REFERRAL"} <= set(aid.related_items)
    assert codes(catalogue.related("EMP-EMPLOYMENT-ASSISTANCE"))[0] == (
        "EMP-HARD-TO-EMPLOY-RECOGNITION"
    )


def test_monthly_obligations_are_marked_recurring(catalogue: Catalogue) -> None:
    assert catalogue.require("MI-MEDICAL-REIMBURSEMENT").recurring
    assert catalogue.require("SA-MINIMUM-LIVING-ALLOWANCE").recurring
    assert catalogue.require("SI-UNEMPLOYMENT-BENEFIT").recurring
    assert not catalogue.require("EMP-UNEMPLOYMENT-REGISTRATION").recurring


def test_items_are_immutable(catalogue: Catalogue) -> None:
    item = catalogue.require("SA-HARDSHIP-SUBSIDY")
    with pytest.raises(ValueError, match="frozen"):
        item.typical_days = 1  # type: ignore[misc]


def test_lookup_by_code(catalogue: Catalogue) -> None:
    assert catalogue.get("SA-HARDSHIP-SUBSIDY") is not None
    assert catalogue.get("NO-SUCH-ITEM") is None
    assert "SA-HARDSHIP-SUBSIDY" in catalogue
    with pytest.raises(UnknownServiceItem) as raised:
        catalogue.require("NO-SUCH-ITEM")
    assert isinstance(raised.value, LookupError)
    assert raised.value.code == "NO-SUCH-ITEM"
    assert (
        str(raised.value)
        == "unknown service item 'NO-SUCH-ITEM': it is not in the service catalogue"
    )


# -- search ---------------------------------------------------------------------------------


def test_search_in_chinese(catalogue: Catalogue) -> None:
    assert codes(catalogue.search("失业登记"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"
    assert set(codes(catalogue.search("失业"))) >= {
        "EMP-UNEMPLOYMENT-REGISTRATION",
        "SI-UNEMPLOYMENT-BENEFIT",
    }
    # A resident says "低保": the keyword finds the minimum living allowance first.
    assert codes(catalogue.search("低保"))[0] == "SA-MINIMUM-LIVING-ALLOWANCE"
    assert codes(catalogue.search("困难补助"))[0] == "SA-HARDSHIP-SUBSIDY"
    assert codes(catalogue.search("失业登记。"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"
    assert codes(catalogue.search("失业dengji"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"


def test_search_in_full_pinyin(catalogue: Catalogue) -> None:
    assert codes(catalogue.search("shiye"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"
    assert codes(catalogue.search("shiyedengji"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"
    assert "EMP-UNEMPLOYMENT-REGISTRATION" in codes(catalogue.search("dengji"))
    assert codes(catalogue.search("yiliao baoxiao"))[0] == "MI-MEDICAL-REIMBURSEMENT"
    assert codes(catalogue.search("dibao"))[0] == "SA-MINIMUM-LIVING-ALLOWANCE"


def test_search_in_pinyin_initials(catalogue: Catalogue) -> None:
    # 失业登记 and 生育登记 both read "sydj"; both are offered, unemployment first.
    assert codes(catalogue.search("sydj"))[:2] == [
        "EMP-UNEMPLOYMENT-REGISTRATION",
        "FAM-BIRTH-REGISTRATION",
    ]
    assert codes(catalogue.search("tqtx"))[0] == "PEN-EARLY-RETIREMENT-SPECIAL-WORK"
    assert codes(catalogue.search("SYDJ"))[0] == "EMP-UNEMPLOYMENT-REGISTRATION"


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("职业指导", "EMP-CAREER-GUIDANCE"),
        ("zyzd", "EMP-CAREER-GUIDANCE"),
        ("tingbao", "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"),
        ("ztjf", "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"),
        ("长护险", "EC-LONG-TERM-CARE-INSURANCE"),
        ("jlk", "EC-SENIOR-CARD"),
        ("duju", "EC-LIVING-ALONE-CARE-VISIT"),
        ("bingtui", "PEN-EARLY-RETIREMENT-ILLNESS"),
        ("靶向药", "MI-SPECIAL-DRUG-FILING"),
        ("qianxin", "LAW-WAGE-ARREARS-COMPLAINT"),
        ("home visit", "GEN-HOME-VISIT-SERVICE"),
        ("unemployment medical", "SI-UNEMPLOYMENT-MEDICAL-SUBSIDY"),
        ("jtys", "HLT-FAMILY-DOCTOR"),
        ("宝宝屋", "FAM-COMMUNITY-CHILDCARE"),
    ],
)
def test_the_new_items_are_found_the_way_residents_ask(
    catalogue: Catalogue, query: str, first: str
) -> None:
    assert codes(catalogue.search(query))[0] == first


def test_pinyin_matches_only_at_syllable_boundaries(catalogue: Catalogue) -> None:
    # "iye" sits inside "shiye" but starts no syllable.
    assert "EMP-UNEMPLOYMENT-REGISTRATION" not in codes(catalogue.search("iye"))


def test_search_in_english(catalogue: Catalogue) -> None:
    assert set(codes(catalogue.search("Unemployment"))) >= {
        "EMP-UNEMPLOYMENT-REGISTRATION",
        "SI-UNEMPLOYMENT-BENEFIT",
    }
    assert codes(catalogue.search("medical expense"))[0] == "MI-MEDICAL-REIMBURSEMENT"
    assert codes(catalogue.search("hardship subsidy"))[0] == "SA-HARDSHIP-SUBSIDY"
    assert codes(catalogue.search("RESIDENCE PERMIT"))[0] == "CIV-RESIDENCE-PERMIT"
    assert "EC-ELDERLY-CARE-SUBSIDY" in codes(catalogue.search("subsidies for the elderly"))


def test_search_by_code_and_limits(catalogue: Catalogue) -> None:
    assert codes(catalogue.search("sa-hardship-subsidy")) == ["SA-HARDSHIP-SUBSIDY"]
    assert len(catalogue.search("subsidy", limit=3)) == 3
    assert catalogue.search("subsidy", limit=0) == []
    assert catalogue.search("   ") == []
    assert catalogue.search("量子计算") == []


# -- extension files ------------------------------------------------------------------------


def test_an_extension_file_replaces_and_adds(tmp_path: Path, catalogue: Catalogue) -> None:
    shipped = catalogue.require("SA-HARDSHIP-SUBSIDY")
    replaced = shipped.model_dump(mode="json") | {"typical_days": 5, "keywords": ["节日慰问"]}
    extra = write(
        tmp_path / "center.json",
        {
            "categories": [
                {
                    "code": "community",
                    "prefix": "COM",
                    "name_zh": "社区事务",
                    "name_en": "Community affairs",
                }
            ],
            "items": [
                replaced,
                item_data(),
                item_data(
                    code="COM-PARKING-PERMIT",
                    name_zh="小区停车证",
                    category="community",
                    name_en="Residential parking permit",
                    keywords=[],
                ),
            ],
        },
    )
    amended = load_catalogue([extra])
    assert len(amended) == len(catalogue) + 2
    assert amended.require("SA-HARDSHIP-SUBSIDY").typical_days == 5
    assert codes(amended.search("节日慰问")) == ["SA-HARDSHIP-SUBSIDY"]
    assert codes(amended.search("qunuan"))[0] == "SA-WINTER-HEATING-SUBSIDY"
    assert codes(amended.search("parking"))[0] == "COM-PARKING-PERMIT"
    assert "community" in {c.code for c in amended.categories()}
    # The shipped catalogue itself is untouched.
    assert load_catalogue().require("SA-HARDSHIP-SUBSIDY").typical_days == shipped.typical_days


def test_later_extension_files_win(tmp_path: Path) -> None:
    first = write(tmp_path / "a.json", {"items": [item_data(typical_days=10)]})
    second = write(tmp_path / "b.json", {"items": [item_data(typical_days=3)]})
    assert load_catalogue([first, second]).require("SA-WINTER-HEATING-SUBSIDY").typical_days == 3


def test_the_same_files_are_read_into_one_catalogue_and_a_changed_file_anew(
        tmp_path: Path) -> None:
    """Every app a process builds (a test run: one or two a test) shares the catalogue of the
    same files; a center's file changed on disk gives a catalogue of its own."""
    center = write(tmp_path / "center.json", {"items": [item_data(typical_days=10)]})
    first = load_catalogue([center])
    assert load_catalogue([center]) is first
    assert load_catalogue() is load_catalogue()
    write(center, {"items": [item_data(typical_days=4)]})
    assert load_catalogue([center]).require("SA-WINTER-HEATING-SUBSIDY").typical_days == 4
    assert first.require("SA-WINTER-HEATING-SUBSIDY").typical_days == 10


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"items": [item_data(typical_days=-1)]}, "item #1 (SA-WINTER-HEATING-SUBSIDY)"),
        ({"items": [item_data(name_zh="")]}, "name_zh"),
        ({"items": [{"code": "SA-NO-NAME"}]}, "item #1 (SA-NO-NAME): name_zh: Field required"),
        ({"items": [item_data(category="astrology")]}, "unknown category 'astrology'"),
        ({"items": [item_data(code="EMP-WINTER-HEATING")]}, "must start with 'SA-'"),
        ({"items": [item_data(code="sa-lower-case")]}, "code"),
        ({"items": [item_data(colour="red")]}, "colour"),
        (
            {"items": [item_data(), item_data()]},
            "item #2 (SA-WINTER-HEATING-SUBSIDY): code appears",
        ),
        ({"itemz": []}, "itemz"),
        ([], "expected an object"),
        (
            {"categories": [{"code": "x", "prefix": "SA", "name_zh": "某", "name_en": "X"}]},
            "prefix 'SA' already belongs",
        ),
        (
            {"items": [item_data(related_items=["SA-NO-SUCH-AID"])]},
            "item #1 (SA-WINTER-HEATING-SUBSIDY): related item 'SA-NO-SUCH-AID' is not in the "
            "catalogue",
        ),
        (
            {"items": [item_data(related_items=["SA-WINTER-HEATING-SUBSIDY"])]},
            "item #1 (SA-WINTER-HEATING-SUBSIDY): related item 'SA-WINTER-HEATING-SUBSIDY' is "
            "the item itself",
        ),
        (
            {"items": [item_data(related_items=["SA-HARDSHIP-SUBSIDY", "SA-HARDSHIP-SUBSIDY"])]},
            "related_items names a code twice",
        ),
        ({"items": [item_data(related_items=["hardship"])]}, "related_items.0"),
        ({"items": [item_data(summary={"zh": " ", "en": "Heating"})]}, "summary.zh"),
        ({"items": [item_data(summary="冬天取暖补贴")]}, "summary"),
    ],
)
def test_a_bad_file_names_the_file_and_the_item(
    tmp_path: Path, content: Any, expected: str
) -> None:
    bad = write(tmp_path / "bad.json", content)
    with pytest.raises(CatalogueError) as raised:
        load_catalogue([bad])
    message = str(raised.value)
    assert str(bad) in message
    assert expected in message


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(CatalogueError, match="cannot be read") as raised:
        load_catalogue([missing])
    assert str(missing) in str(raised.value)


# -- plain words and related items ----------------------------------------------------------


def test_a_centers_file_written_before_summaries_and_related_items_still_loads(
    tmp_path: Path,
) -> None:
    older = write(tmp_path / "center-2024.json", {"items": [item_data()]})
    item = load_catalogue([older]).require("SA-WINTER-HEATING-SUBSIDY")
    assert item.summary is None
    assert item.related_items == ()


def test_a_centers_items_and_the_shipped_ones_may_point_at_each_other(tmp_path: Path) -> None:
    shipped = load_catalogue().require("SA-TEMPORARY-ASSISTANCE")
    pointing_back = shipped.model_dump(mode="json") | {
        "related_items": [*shipped.related_items, "SA-WINTER-HEATING-SUBSIDY"]
    }
    # The first file points at an item only the second file defines: checked after the merge.
    first = write(
        tmp_path / "a.json",
        {
            "items": [
                item_data(
                    summary={"zh": "冬天家里取暖有困难的，可以领一笔取暖补贴。", "en": "Heating."},
                    related_items=["SA-HARDSHIP-SUBSIDY", "SA-COAL-DELIVERY"],
                ),
                pointing_back,
            ]
        },
    )
    second = write(
        tmp_path / "b.json",
        {"items": [item_data(code="SA-COAL-DELIVERY", name_zh="送煤上门", keywords=[])]},
    )
    amended = load_catalogue([first, second])
    assert codes(amended.related("SA-WINTER-HEATING-SUBSIDY")) == [
        "SA-HARDSHIP-SUBSIDY",
        "SA-COAL-DELIVERY",
    ]
    assert codes(amended.related("SA-TEMPORARY-ASSISTANCE"))[-1] == "SA-WINTER-HEATING-SUBSIDY"
    summary = amended.require("SA-WINTER-HEATING-SUBSIDY").summary
    assert summary is not None and summary.zh.startswith("冬天家里取暖")


def test_a_related_code_no_file_defines_names_the_file_that_asked_for_it(
    tmp_path: Path,
) -> None:
    shipped = load_catalogue().require("SA-TEMPORARY-ASSISTANCE")
    amended = shipped.model_dump(mode="json") | {"related_items": ["SA-GONE-AWAY"]}
    fine = write(tmp_path / "fine.json", {"items": [item_data()]})
    bad = write(tmp_path / "bad.json", {"items": [item_data(code="SA-OTHER"), amended]})
    with pytest.raises(CatalogueError) as raised:
        load_catalogue([fine, bad])
    assert str(raised.value).startswith(
        f"catalogue file {bad}: item #2 (SA-TEMPORARY-ASSISTANCE): related item 'SA-GONE-AWAY'"
    )


def test_every_shipped_item_must_have_a_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(catalogue_loader.__file__).parent / "data" / "catalogue.json"
    shipped = json.loads(source.read_text(encoding="utf-8"))
    del shipped["items"][1]["summary"]
    text = json.dumps(shipped, ensure_ascii=False)
    monkeypatch.setattr(catalogue_loader, "_shipped", lambda: ("shipped.json", text))
    code = shipped["items"][1]["code"]
    with pytest.raises(CatalogueError, match=rf"shipped.json: item #2 \({code}\): summary"):
        load_catalogue()


def test_a_catalogue_built_in_code_checks_related_items_too(catalogue: Catalogue) -> None:
    item = catalogue.require("SA-HARDSHIP-SUBSIDY").model_copy(
        update={"related_items": ("SA-NOWHERE",)}
    )
    with pytest.raises(CatalogueError, match="SA-HARDSHIP-SUBSIDY: related item 'SA-NOWHERE'"):
        Catalogue(catalogue.categories(), [item])
