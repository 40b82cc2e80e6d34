"""Search over the service items: Chinese, full pinyin, pinyin initials, English and codes.

Each item's names, keywords, category and policy basis are prepared once, when the catalogue is
loaded (``entry``); a query is split into terms (``terms``) and every item scored against them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.catalogue.model import Category, ServiceItem

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
        # pypinyin's dictionaries take ~0.5 s to load: only a catalogue built needs them, not
        # every `sixstep` command that imports the catalogue's types.
        from pypinyin import lazy_pinyin

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


class SearchIndex:
    """Every item's searchable texts, prepared once when the catalogue is built."""

    def __init__(self, items: Iterable[tuple[ServiceItem, Category]]) -> None:
        self._entries = tuple(_entry(item, category) for item, category in items)

    def ranked(self, query: str) -> list[ServiceItem]:
        """Items matching every term of the query, best first (none for a query without a
        term)."""
        terms = _terms(query)
        if not terms:
            return []
        phrase = " ".join(_normalize(query).split())  # compared with whole fields
        scored = [(entry.score(terms, phrase), entry) for entry in self._entries]
        ranked = sorted(
            ((score, entry) for score, entry in scored if score > 0),
            key=lambda pair: (-pair[0], len(pair[1].item.name_zh), pair[1].code),
        )
        return [entry.item for _, entry in ranked]
