"""The service catalogue: the kinds of affairs a resident can bring to the one-window counter.

Step 3 of the six steps ("guide") names the service item a request is about; every service and
every event refers to an item by its stable ``code``.

Codes are ASCII: ``<CATEGORY PREFIX>-<SUBJECT>[-<QUALIFIER>...]`` in upper case, letters and
digits in hyphen-separated parts, e.g. ``SA-HARDSHIP-SUBSIDY`` (social assistance, hardship
subsidy) or ``EMP-UNEMPLOYMENT-REGISTRATION``. The prefix is the category's ``prefix``, so a code
tells its category at a glance. A code is never reused for another affair; an item that changes
keeps its code.

Besides what a clerk needs (documents, policy basis, usual working days), an item says what it
is in plain words (``summary``: what a resident hears, not the policy's language) and what else a
resident in this situation often needs (``related_items``: codes of other items).

The catalogue ships as ``shared/data/catalogue.json``. A center extends or amends it with more
files of the same format (``load_catalogue(extra_paths)``): an item whose code is already known
replaces it, a new code is added, and a file may add categories. Every shipped item has a
summary; in a center's file ``summary`` and ``related_items`` are optional, so files written
before they existed keep loading. Related codes are checked once every file is merged (a center's
item may point at a shipped one and the other way round): each must exist and none may be the
item itself. Invalid data fails loudly with the file and the item named.

The only I/O here is reading those files. Pinyin for search is computed once, when loading.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pypinyin import lazy_pinyin

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Category",
    "LocalizedText",
    "ServiceItem",
    "UnknownServiceItem",
    "load_catalogue",
]

CODE_PATTERN = r"^[A-Z]{2,4}(?:-[A-Z0-9]+)+$"
CATEGORY_PATTERN = r"^[a-z][a-z0-9_]*$"
PREFIX_PATTERN = r"^[A-Z]{2,4}$"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=64)]


class LocalizedText(BaseModel):
    """The same words in Chinese (what the resident reads) and English."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zh: Text
    en: Text


class Category(BaseModel):
    """A family of affairs, e.g. social assistance (社会救助)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)]
    prefix: Annotated[str, StringConstraints(pattern=PREFIX_PATTERN)]
    name_zh: Text
    name_en: Text


class ServiceItem(BaseModel):
    """One kind of affair the counter handles, with what a resident must bring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name_zh: Text
    name_en: Text
    category: Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)]
    summary: LocalizedText | None = Field(
        default=None,
        description="The item in plain words a resident understands, one or two sentences. "
        "Every shipped item has one; optional in a center's own files.",
    )
    documents: tuple[LocalizedText, ...] = ()
    policy_basis: LocalizedText
    keywords: tuple[Text, ...] = ()
    typical_days: int = Field(ge=0, le=365, description="Usual working days; 0 = on the spot.")
    recurring: bool = Field(
        description="Creates a recurring monthly obligation (allowance, reimbursement, pension)."
    )
    related_items: tuple[Code, ...] = Field(
        default=(),
        description="Codes of what else a resident in this situation often needs.",
    )


class CatalogueError(ValueError):
    """A catalogue file cannot be read or holds invalid data."""


class UnknownServiceItem(LookupError):
    """No service item has this code."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown service item {code!r}: it is not in the service catalogue")

    def __str__(self) -> str:  # LookupError would repr the args otherwise
        return str(self.args[0])


# -- search index ---------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+")
_TERM = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_STOPWORDS = frozenset({"a", "an", "and", "for", "in", "of", "on", "or", "the", "to", "with"})


def _normalize(text: str) -> str:
    """Full-width to half-width, lower case, apostrophes of pinyin (xi'an) dropped."""
    return unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("’", "")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _english_words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(_normalize(text)))


@dataclass(frozen=True, slots=True)
class _Pinyin:
    """Pinyin of the Chinese characters of a text: syllables joined, and their initials."""

    full: str
    starts: frozenset[int]  # offsets in ``full`` where a syllable begins
    initials: str

    @classmethod
    def of(cls, text: str) -> _Pinyin:
        syllables = [s for run in _CJK_RUN.findall(text) for s in lazy_pinyin(run)]
        starts, offset = set(), 0
        for syllable in syllables:
            starts.add(offset)
            offset += len(syllable)
        return cls("".join(syllables), frozenset(starts), "".join(s[0] for s in syllables))

    def match(self, term: str) -> int:
        """0-4 for how well an ASCII term matches: whole > prefix > inside; full > initials."""
        if not self.full:
            return 0
        if term == self.full:
            return 4
        position = self.full.find(term)
        while position != -1:
            if position in self.starts:
                return 3 if position == 0 else 2
            position = self.full.find(term, position + 1)
        if len(term) >= 2:
            if term == self.initials:
                return 4
            if self.initials.startswith(term):
                return 2
            if term in self.initials:
                return 1
        return 0


@dataclass(frozen=True, slots=True)
class _Weights:
    """Points a term earns in one kind of field, by how it matches."""

    zh: tuple[int, int, int]  # Chinese substring: whole field, prefix, inside
    pinyin: tuple[int, int, int, int]  # _Pinyin.match levels 4, 3, 2, 1
    word: tuple[int, int, int]  # English: the whole field, a whole word, a word prefix
    phrase: int  # bonus when the whole query is the whole field


_NAME = _Weights(zh=(100, 80, 60), pinyin=(90, 70, 50, 30), word=(80, 80, 50), phrase=100)
_ALIAS = _Weights(zh=(90, 40, 30), pinyin=(85, 35, 25, 15), word=(90, 50, 30), phrase=60)
_CATEGORY = _Weights(zh=(30, 25, 20), pinyin=(20, 15, 10, 5), word=(20, 20, 15), phrase=0)
_POLICY = _Weights(zh=(10, 10, 10), pinyin=(0, 0, 0, 0), word=(10, 10, 5), phrase=0)


@dataclass(frozen=True, slots=True)
class _Field:
    """One searchable text of an item, prepared once at load."""

    weights: _Weights
    text: str  # normalized, whitespace collapsed
    zh: str  # the text if it has Chinese characters, else ""
    pinyin: _Pinyin
    words: frozenset[str]  # stemmed English words

    def score(self, term: str) -> int:
        weights = self.weights
        if _CJK.search(term):
            if not self.zh or term not in self.zh:
                return 0
            if term == self.zh:
                return weights.zh[0]
            return weights.zh[1] if self.zh.startswith(term) else weights.zh[2]
        level = self.pinyin.match(term)
        score = weights.pinyin[4 - level] if level else 0
        stem = _stem(term)
        if stem in self.words:
            whole = len(self.words) == 1 and not self.zh
            score = max(score, weights.word[0] if whole else weights.word[1])
        elif len(term) >= 3 and any(word.startswith(stem) for word in self.words):
            score = max(score, weights.word[2])
        return score


def _field(weights: _Weights, text: str, pinyin: bool = True) -> _Field:
    normalized = " ".join(_normalize(text).split())
    zh = normalized if _CJK.search(normalized) else ""
    return _Field(
        weights,
        normalized,
        zh,
        _Pinyin.of(zh) if pinyin else _NO_PINYIN,
        _english_words(normalized),
    )


_NO_PINYIN = _Pinyin("", frozenset(), "")


@dataclass(frozen=True, slots=True)
class _Entry:
    item: ServiceItem
    code: str
    fields: tuple[_Field, ...]

    def score(self, terms: Sequence[str], phrase: str) -> int:
        """Sum over terms of the best match, plus a phrase bonus; 0 if a term matches nothing."""
        total = 0
        for term in terms:
            best = max(f.score(term) for f in self.fields)
            if best == 0 and term.upper() in self.code:
                best = 30
            if best == 0:
                return 0
            total += best
        bonus = max((f.weights.phrase for f in self.fields if f.text == phrase), default=0)
        return total + bonus


def _entry(item: ServiceItem, category: Category) -> _Entry:
    fields = [
        _field(_NAME, item.name_zh),
        _field(_NAME, item.name_en),
        *(_field(_ALIAS, keyword) for keyword in item.keywords),
        _field(_CATEGORY, category.name_zh),
        _field(_CATEGORY, category.name_en),
        _field(_POLICY, item.policy_basis.zh, pinyin=False),
        _field(_POLICY, item.policy_basis.en, pinyin=False),
    ]
    return _Entry(item, item.code, tuple(fields))


def _terms(query: str) -> list[str]:
    """Runs of Chinese characters and runs of ASCII letters or digits; the rest separates."""
    terms = _TERM.findall(_normalize(query))
    meaningful = [t for t in terms if t not in _STOPWORDS]
    return meaningful or terms


# -- the catalogue --------------------------------------------------------------------------


class Catalogue:
    """Service items by code, with search in Chinese, pinyin and English."""

    def __init__(self, categories: Iterable[Category], items: Iterable[ServiceItem]) -> None:
        self._categories = {c.code: c for c in categories}
        self._items: dict[str, ServiceItem] = {}
        for item in items:
            category = self._categories.get(item.category)
            if category is None:
                raise CatalogueError(f"item {item.code}: unknown category {item.category!r}")
            if not item.code.startswith(category.prefix + "-"):
                raise CatalogueError(
                    f"item {item.code}: a {category.code} code must start with "
                    f"{category.prefix + '-'!r}"
                )
            self._items[item.code] = item
        for item in self._items.values():
            problem = _related_problem(item, self._items)
            if problem:
                raise CatalogueError(f"item {item.code}: {problem}")
        self._entries = tuple(
            _entry(item, self._categories[item.category]) for item in self._items.values()
        )

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[ServiceItem]:
        return iter(self._items.values())

    def __contains__(self, code: object) -> bool:
        return code in self._items

    def get(self, code: str) -> ServiceItem | None:
        return self._items.get(code)

    def require(self, code: str) -> ServiceItem:
        try:
            return self._items[code]
        except KeyError:
            raise UnknownServiceItem(code) from None

    def items(self) -> list[ServiceItem]:
        return list(self._items.values())

    def categories(self) -> list[Category]:
        return list(self._categories.values())

    def category(self, code: str) -> Category:
        """The category with this code (``KeyError`` if there is none)."""
        return self._categories[code]

    def in_category(self, code: str) -> list[ServiceItem]:
        return [item for item in self._items.values() if item.category == code]

    def related(self, code: str) -> list[ServiceItem]:
        """What else a resident who comes for this item often needs, in the item's order."""
        return [self._items[related] for related in self.require(code).related_items]

    def search(self, query: str, limit: int = 20) -> list[ServiceItem]:
        """Items matching every term of the query, best first.

        A term in Chinese matches as a substring; an ASCII term matches full pinyin at a syllable
        boundary ("shiye", "dengji"), pinyin initials ("sydj"), English words case-insensitively
        (whole words or word prefixes, plurals folded) or part of the code. The item name counts
        most, then keywords, then the category, then the policy basis.
        """
        if limit <= 0:
            return []
        exact = self._items.get(query.strip().upper())
        terms = _terms(query)
        if not terms:
            return []
        phrase = " ".join(_normalize(query).split())  # compared with whole fields
        scored = [(entry.score(terms, phrase), entry) for entry in self._entries]
        ranked = sorted(
            ((score, entry) for score, entry in scored if score > 0),
            key=lambda pair: (-pair[0], len(pair[1].item.name_zh), pair[1].code),
        )
        found = [entry.item for _, entry in ranked]
        if exact is not None:
            found = [exact, *(item for item in found if item.code != exact.code)]
        return found[:limit]


# -- loading --------------------------------------------------------------------------------


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    categories: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []


def _shipped() -> tuple[str, str]:
    resource = files("shared") / "data" / "catalogue.json"
    return str(resource), resource.read_text(encoding="utf-8")


def _describe(errors: ValidationError) -> str:
    parts = []
    for error in errors.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(item)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _related_problem(item: ServiceItem, known: Mapping[str, ServiceItem]) -> str | None:
    """What is wrong with the item's related codes, once every file is merged; None if fine."""
    for code in item.related_items:
        if code == item.code:
            return f"related item {code!r} is the item itself"
        if code not in known:
            return (
                f"related item {code!r} is not in the catalogue "
                "(neither the shipped file nor any file in CATALOGUE_PATHS defines it)"
            )
    return None


def _parse(
    source: str,
    text: str,
    categories: dict[str, Category],
    items: dict[str, ServiceItem],
    origins: dict[str, str],
    *,
    shipped: bool = False,
) -> None:
    """Validate one file and merge it into ``categories`` and ``items``.

    ``origins`` remembers, per code, the file and position the item last came from, so a
    check made after every file is merged can still name them. The shipped file must give every
    item a summary; a center's files may leave it out (files older than the field keep loading).
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"catalogue file {source}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CatalogueError(
            f"catalogue file {source}: expected an object with 'categories' and 'items'"
        )
    try:
        document = _CatalogueFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"catalogue file {source}: {_describe(exc)}") from None
    if document.version != 1:
        raise CatalogueError(f"catalogue file {source}: unsupported version {document.version}")

    for position, data in enumerate(document.categories):
        label = f"category #{position + 1} ({data.get('code', '?')})"
        try:
            category = Category.model_validate(data)
        except ValidationError as exc:
            raise CatalogueError(f"catalogue file {source}: {label}: {_describe(exc)}") from None
        known = categories.get(category.code)
        if known is not None and known.prefix != category.prefix:
            raise CatalogueError(
                f"catalogue file {source}: {label}: the prefix of a category cannot change "
                f"({known.prefix!r} -> {category.prefix!r}); item codes depend on it"
            )
        clash = next(
            (
                c
                for c in categories.values()
                if c.prefix == category.prefix and c.code != category.code
            ),
            None,
        )
        if clash is not None:
            raise CatalogueError(
                f"catalogue file {source}: {label}: prefix {category.prefix!r} already belongs "
                f"to category {clash.code!r}"
            )
        categories[category.code] = category

    seen: set[str] = set()
    for position, data in enumerate(document.items):
        label = f"item #{position + 1} ({data.get('code', '?')})"
        try:
            item = ServiceItem.model_validate(data)
        except ValidationError as exc:
            raise CatalogueError(f"catalogue file {source}: {label}: {_describe(exc)}") from None
        if item.code in seen:
            raise CatalogueError(f"catalogue file {source}: {label}: code appears twice")
        seen.add(item.code)
        if shipped and item.summary is None:
            raise CatalogueError(
                f"catalogue file {source}: {label}: summary: every shipped item needs one"
            )
        if item.code in item.related_items:
            raise CatalogueError(
                f"catalogue file {source}: {label}: related item {item.code!r} is the item itself"
            )
        if len(set(item.related_items)) != len(item.related_items):
            raise CatalogueError(
                f"catalogue file {source}: {label}: related_items names a code twice"
            )
        category = categories.get(item.category)
        if category is None:
            raise CatalogueError(
                f"catalogue file {source}: {label}: unknown category {item.category!r} "
                f"(known: {', '.join(sorted(categories))})"
            )
        if not item.code.startswith(category.prefix + "-"):
            raise CatalogueError(
                f"catalogue file {source}: {label}: a code in category {category.code!r} "
                f"must start with {category.prefix + '-'!r}"
            )
        items[item.code] = item
        origins[item.code] = f"catalogue file {source}: {label}"


def load_catalogue(extra_paths: Sequence[Path] = ()) -> Catalogue:
    """The shipped catalogue, amended by ``extra_paths`` in order.

    Each extra file has the shipped format; its categories and items are merged: the same code
    replaces (in place, keeping the order), a new code is added at the end. Related codes are
    checked after the merge. Raises ``CatalogueError`` naming the file and the item when a file
    cannot be read or is invalid.
    """
    categories: dict[str, Category] = {}
    items: dict[str, ServiceItem] = {}
    origins: dict[str, str] = {}
    _parse(*_shipped(), categories, items, origins, shipped=True)
    for path in extra_paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogueError(f"catalogue file {path}: cannot be read: {exc}") from None
        _parse(str(path), text, categories, items, origins)
    for code, item in items.items():
        problem = _related_problem(item, items)
        if problem:
            raise CatalogueError(f"{origins[code]}: {problem}")
    return Catalogue(categories.values(), items.values())
