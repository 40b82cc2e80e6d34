"""Eligibility hints: rules, as data, that suggest what else a resident may be entitled to.

A rule says *when* it fires, from facts the center already holds about the resident, and
*what* it suggests (catalogue codes), with the reason in plain words:

* ``age``: the resident's age in whole years (worked out from the birth date in the ID
  number at the moment of the lookup; the number and the age never leave intake);
* ``sex``: from the ID number's 17th digit (some retirement ages still differ);
* ``facts``: facts the resident declared, kept in the vault with their consent
  (:data:`FACTS`), every one of them must be declared;
* ``any_past_items``: at least one past case of the resident is about one of these items;
* ``no_past_items``: no past case is about any of these (not suggesting what they have).

The shipped rules are ``data/eligibility.json``; a center adds or amends rules with more files
of the same format (``ELIGIBILITY_RULES_PATHS``), applied in order: a rule with a known ``id``
replaces it (raise its ``version`` when its meaning changes, so a hint shown under the old
version stays told apart from the new one), a new id is added. Every file is checked at start:
unknown fields, an unknown fact, a code not in the catalogue, an age range upside down, a rule
that would fire for everyone, or a duplicate id stop the service with an error naming the file
and the rule.

Pure: :func:`suggest` takes a :class:`Profile` and returns :class:`Suggestion` objects; the only
I/O is :func:`load_rules` reading the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.catalogue.catalogue import Catalogue
from shared.catalogue.model import Code, LocalizedText, described

FACTS: dict[str, LocalizedText] = {
    "special_work_type": LocalizedText(zh="从事特殊工种", en="special work type declared"),
    "lives_alone": LocalizedText(zh="独居", en="lives alone"),
    "disability": LocalizedText(zh="残疾", en="disability declared"),
    "chronic_illness": LocalizedText(zh="慢性病", en="chronic illness declared"),
}
"""The facts a resident may declare (kept sealed in the vault, with consent)."""

CARE_FACTS = ("lives_alone", "disability", "chronic_illness")
"""Declared facts that mean a resident needs more care; so does an age of 80 or more."""
CARE_AGE = 80

RULE_ID = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"


class RulesError(ValueError):
    """A rules file cannot be read or holds an invalid rule."""


class AgeRange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int | None = Field(None, ge=0, le=150)
    max: int | None = Field(None, ge=0, le=150)


class When(BaseModel):
    """What must hold for the rule to fire; every condition given must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age: AgeRange | None = None
    sex: Literal["male", "female"] | None = None
    facts: tuple[str, ...] = ()
    any_past_items: tuple[Code, ...] = ()
    no_past_items: tuple[Code, ...] = ()


class Rule(BaseModel):
    """One eligibility rule: when it fires, what it suggests and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(pattern=RULE_ID, max_length=64)]
    version: int = Field(ge=1)
    when: When
    suggest: tuple[Code, ...] = Field(min_length=1)
    reason: LocalizedText = Field(description="Why the resident may be entitled, in plain words.")


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    rules: list[dict[str, object]] = []


@dataclass(frozen=True)
class Profile:
    """What the center holds about a resident, at the moment of a lookup (never stored)."""

    age: int | None
    sex: Literal["male", "female"] | None
    facts: frozenset[str]
    past_items: frozenset[str]


@dataclass(frozen=True)
class Suggestion:
    """An item a rule suggests, with what made it fire (``because``) and the rule's reason."""

    rule_id: str
    rule_version: int
    service_item: str
    because: LocalizedText
    reason: LocalizedText


def age_on(birth: date, today: date) -> int:
    """Whole years from ``birth`` to ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def needs_more_care(age: int | None, facts: Iterable[str]) -> bool:
    """Whether a resident needs more care: lives alone, disabled, chronically ill, or 80+."""
    return (age is not None and age >= CARE_AGE) or any(f in CARE_FACTS for f in facts)


def _problem(rule: Rule, catalogue: Catalogue) -> str | None:
    w = rule.when
    unknown = [f for f in w.facts if f not in FACTS]
    if unknown:
        return f"unknown fact {unknown[0]!r} (known: {', '.join(FACTS)})"
    for field, codes in (("suggest", rule.suggest), ("when.any_past_items", w.any_past_items),
                         ("when.no_past_items", w.no_past_items)):
        missing = [c for c in codes if c not in catalogue]
        if missing:
            return f"{field}: {missing[0]!r} is not in the service catalogue"
    if w.age is not None:
        if w.age.min is None and w.age.max is None:
            return "when.age: give min, max or both"
        if w.age.min is not None and w.age.max is not None and w.age.min > w.age.max:
            return f"when.age: min {w.age.min} is above max {w.age.max}"
    if w.age is None and w.sex is None and not w.facts and not w.any_past_items:
        return "when: the rule would fire for every resident (give an age, facts or past items)"
    if len(set(rule.suggest)) != len(rule.suggest):
        return "suggest names a code twice"
    return None


def shipped_rules_file() -> Path:
    return Path(str(files("shared.catalogue") / "data" / "eligibility.json"))


def _parse(source: str, text: str, catalogue: Catalogue, rules: dict[str, Rule]) -> None:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"rules file {source}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise RulesError(f"rules file {source}: expected an object with 'rules'")
    try:
        document = _RulesFile.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"rules file {source}: {described(exc, '(rule)')}") from None
    seen: set[str] = set()
    for position, data in enumerate(document.rules):
        label = f"rule #{position + 1} ({data.get('id', '?') if isinstance(data, dict) else '?'})"
        try:
            rule = Rule.model_validate(data)
        except ValidationError as exc:
            raise RulesError(f"rules file {source}: {label}: {described(exc, '(rule)')}") from None
        if rule.id in seen:
            raise RulesError(f"rules file {source}: {label}: id appears twice")
        seen.add(rule.id)
        if (problem := _problem(rule, catalogue)) is not None:
            raise RulesError(f"rules file {source}: {label}: {problem}")
        rules[rule.id] = rule


class Rules:
    """The rules in force, in file order."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)

    def __len__(self) -> int:
        return len(self.rules)

    def suggest(self, profile: Profile) -> list[Suggestion]:
        """Every item a rule suggests for ``profile``, once (the first rule naming it wins),
        leaving out items of the resident's past cases."""
        out: dict[str, Suggestion] = {}
        for rule in self.rules:
            because = fired(rule, profile)
            if because is None:
                continue
            for code in rule.suggest:
                if code not in out and code not in profile.past_items:
                    out[code] = Suggestion(rule.id, rule.version, code, because, rule.reason)
        return list(out.values())


def fired(rule: Rule, profile: Profile) -> LocalizedText | None:
    """What made ``rule`` fire for ``profile`` (e.g. "age 53, special work type declared"),
    or None when it does not."""
    w = rule.when
    zh: list[str] = []
    en: list[str] = []
    if w.age is not None:
        if profile.age is None:
            return None
        if (w.age.min is not None and profile.age < w.age.min) or (
                w.age.max is not None and profile.age > w.age.max):
            return None
        zh.append(f"{profile.age}岁")
        en.append(f"age {profile.age}")
    if w.sex is not None:
        if profile.sex != w.sex:
            return None
        zh.append("男性" if w.sex == "male" else "女性")
        en.append(w.sex)
    for fact in w.facts:
        if fact not in profile.facts:
            return None
        zh.append(FACTS[fact].zh)
        en.append(FACTS[fact].en)
    if w.any_past_items:
        had = [c for c in w.any_past_items if c in profile.past_items]
        if not had:
            return None
        zh.append("曾办理 " + "、".join(had))
        en.append("past case: " + ", ".join(had))
    if any(c in profile.past_items for c in w.no_past_items):
        return None
    return LocalizedText(zh="，".join(zh), en=", ".join(en))


def load_rules(catalogue: Catalogue, extra_paths: Sequence[Path] = ()) -> Rules:
    """The shipped rules, amended by ``extra_paths`` in order; ``RulesError`` names the file
    and the rule when one is invalid."""
    rules: dict[str, Rule] = {}
    shipped = shipped_rules_file()
    _parse(str(shipped), shipped.read_text(encoding="utf-8"), catalogue, rules)
    for path in extra_paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"rules file {path}: cannot be read: {exc}") from None
        _parse(str(path), text, catalogue, rules)
    return Rules(rules.values())
