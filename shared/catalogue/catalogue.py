"""The catalogue: service items by code, their categories and related items, and search."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from shared.catalogue.model import (
    CatalogueError,
    Category,
    ServiceItem,
    UnknownServiceItem,
    related_problem,
)
from shared.catalogue.search import SearchIndex


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
            problem = related_problem(item, self._items)
            if problem:
                raise CatalogueError(f"item {item.code}: {problem}")
        self._index = SearchIndex(
            (item, self._categories[item.category]) for item in self._items.values()
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
        found = self._index.ranked(query)
        if exact is not None:
            found = [exact, *(item for item in found if item.code != exact.code)]
        return found[:limit]
