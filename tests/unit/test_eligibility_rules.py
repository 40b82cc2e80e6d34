"""Eligibility hints are data: the shipped rules load, a center's file amends them, and a bad
file stops the start with an error naming the file and the rule."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from shared.catalogue import load_catalogue
from shared.catalogue.eligibility import (
    Profile,
    RulesError,
    age_on,
    load_rules,
    needs_more_care,
)

CATALOGUE = load_catalogue()


def profile(age: int | None = None, facts: tuple[str, ...] = (),
            past: tuple[str, ...] = ()) -> Profile:
    return Profile(age=age, sex="male", facts=frozenset(facts), past_items=frozenset(past))


def write(tmp_path: Path, rules: list[dict[str, object]], name: str = "center.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": 1, "rules": rules}), encoding="utf-8")
    return path


RULE = {"id": "center-rule", "version": 1, "when": {"facts": ["lives_alone"]},
        "suggest": ["EC-MEAL-ASSISTANCE"], "reason": {"zh": "独居", "en": "alone"}}


def test_a_53_year_old_with_a_special_work_type_is_told_of_early_retirement_and_benefit() -> None:
    rules = load_rules(CATALOGUE)
    hints = rules.suggest(profile(53, ("special_work_type",)))
    assert [(h.rule_id, h.service_item) for h in hints] == [
        ("special-work-early-retirement", "PEN-EARLY-RETIREMENT-SPECIAL-WORK"),
        ("special-work-early-retirement", "SI-UNEMPLOYMENT-BENEFIT")]
    assert hints[0].because.en == "age 53, special work type declared"
    assert hints[0].because.zh == "53岁，从事特殊工种"


def test_without_the_declared_fact_or_outside_the_ages_nothing_fires() -> None:
    rules = load_rules(CATALOGUE)
    assert rules.suggest(profile(53)) == []
    assert rules.suggest(profile(62, ("special_work_type",))) == []
    assert rules.suggest(profile(None, ("special_work_type",))) == []


def test_items_of_past_cases_are_not_suggested_again_and_past_items_fire_rules() -> None:
    rules = load_rules(CATALOGUE)
    hints = rules.suggest(profile(40, past=("SI-UNEMPLOYMENT-BENEFIT",)))
    assert {h.service_item for h in hints} == {"SI-UNEMPLOYMENT-MEDICAL-SUBSIDY",
                                              "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"}
    assert hints[0].because.en == "past case: SI-UNEMPLOYMENT-BENEFIT"
    assert [h.service_item for h in rules.suggest(
        profile(53, ("special_work_type",), past=("SI-UNEMPLOYMENT-BENEFIT",)))
        if h.rule_id == "special-work-early-retirement"] == ["PEN-EARLY-RETIREMENT-SPECIAL-WORK"]


def test_no_past_items_keeps_a_rule_quiet() -> None:
    rules = load_rules(CATALOGUE)
    first = {h.service_item for h in rules.suggest(profile(40, ("disability",)))}
    assert "DIS-CERTIFICATE" in first
    later = {h.service_item for h in rules.suggest(
        profile(40, ("disability",), past=("DIS-CERTIFICATE",)))}
    assert "DIS-CERTIFICATE" not in later and "DIS-LIVING-SUBSIDY" in later


def test_age_is_whole_years_and_care_means_alone_disabled_ill_or_80() -> None:
    assert age_on(date(1973, 6, 1), date(2026, 5, 31)) == 52
    assert age_on(date(1973, 6, 1), date(2026, 6, 1)) == 53
    assert age_on(date(1972, 2, 29), date(2026, 2, 28)) == 53
    assert needs_more_care(80, ()) and not needs_more_care(79, ())
    assert needs_more_care(40, ("lives_alone",)) and not needs_more_care(40, ("special_work_type",))
    assert needs_more_care(None, ("chronic_illness",)) and not needs_more_care(None, ())


def test_a_center_file_adds_and_replaces_rules(tmp_path: Path) -> None:
    replaced = {**RULE, "id": "chronic-illness-outpatient", "version": 2}
    rules = load_rules(CATALOGUE, [write(tmp_path, [RULE, replaced])])
    ids = [r.id for r in rules.rules]
    assert ids.count("chronic-illness-outpatient") == 1 and ids[-1] == "center-rule"
    hint = next(h for h in rules.suggest(profile(30, ("lives_alone", "chronic_illness")))
                if h.rule_id == "chronic-illness-outpatient")
    assert hint.rule_version == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"when": {"facts": ["owns_a_boat"]}}, "unknown fact 'owns_a_boat'"),
    ({"suggest": ["EC-NO-SUCH-ITEM"]},
     "suggest: 'EC-NO-SUCH-ITEM' is not in the service catalogue"),
    ({"when": {"age": {"min": 70, "max": 60}}}, "min 70 is above max 60"),
    ({"when": {}}, "would fire for every resident"),
    ({"version": 0}, "version"),
    ({"id": "Bad Id"}, "id"),
    ({"colour": "red"}, "colour"),
    ({"when": {"facts": ["lives_alone"], "any_past_items": ["lowercase"]}}, "any_past_items"),
])
def test_a_bad_rule_names_its_file_and_itself(tmp_path: Path, change: dict[str, object],
                                              message: str) -> None:
    path = write(tmp_path, [RULE, {**RULE, "id": "second", **change}])
    with pytest.raises(RulesError) as caught:
        load_rules(CATALOGUE, [path])
    text = str(caught.value)
    assert f"rules file {path}" in text and "rule #2" in text and message in text


def test_a_duplicate_id_invalid_json_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rule #2 \\(center-rule\\): id appears twice"):
        load_rules(CATALOGUE, [write(tmp_path, [RULE, RULE])])
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(RulesError, match=r"broken\.json: not valid JSON"):
        load_rules(CATALOGUE, [broken])
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(CATALOGUE, [tmp_path / "missing.json"])


def test_sixstep_rules_checks_a_center_file_and_tries_a_resident(tmp_path: Path) -> None:
    from tests.cli.in_process import invoke

    tried = invoke(["rules", "try", "--age", "53", "--fact", "special_work_type"])
    assert tried.exit_code == 0, tried.output
    assert "PEN-EARLY-RETIREMENT-SPECIAL-WORK  (special-work-early-retirement v1: age 53, " \
           "special work type declared)" in tried.output
    bad = write(tmp_path, [{**RULE, "when": {"facts": ["owns_a_boat"]}}])
    checked = invoke(["rules", "check", str(bad)])
    assert checked.exit_code == 2
    assert "rule #1 (center-rule): unknown fact 'owns_a_boat'" in checked.output
