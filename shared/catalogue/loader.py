"""Loading the catalogue: the shipped file, then a center's files in order, checked as a whole."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.catalogue.catalogue import Catalogue
from shared.catalogue.model import (
    CatalogueError,
    Category,
    ServiceItem,
    described,
    related_problem,
)


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    categories: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []


def shipped_file() -> Path:
    """The catalogue file shipped with sixstep (``data/catalogue.json``)."""
    return Path(str(files("shared.catalogue") / "data" / "catalogue.json"))


def _shipped() -> tuple[str, str]:
    path = shipped_file()
    return str(path), path.read_text(encoding="utf-8")


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
        raise CatalogueError(f"catalogue file {source}: {described(exc)}") from None
    if document.version != 1:
        raise CatalogueError(f"catalogue file {source}: unsupported version {document.version}")

    for position, data in enumerate(document.categories):
        label = f"category #{position + 1} ({data.get('code', '?')})"
        try:
            category = Category.model_validate(data)
        except ValidationError as exc:
            raise CatalogueError(f"catalogue file {source}: {label}: {described(exc)}") from None
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
            raise CatalogueError(f"catalogue file {source}: {label}: {described(exc)}") from None
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
    sources = [_shipped()]
    for path in extra_paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogueError(f"catalogue file {path}: cannot be read: {exc}") from None
        sources.append((str(path), text))
    return _built(tuple(sources))


@lru_cache(maxsize=8)
def _built(sources: tuple[tuple[str, str], ...]) -> Catalogue:
    """The catalogue of these files (name and text, the shipped one first). The same texts give
    the same catalogue, built once per process: its items and categories are frozen and the
    catalogue only answers questions. A process building many apps (the test run: one or two
    per test) spent ~75 ms and 12,000 objects on each; a changed file is another key."""
    categories: dict[str, Category] = {}
    items: dict[str, ServiceItem] = {}
    origins: dict[str, str] = {}
    (shipped_name, shipped_text), *extra = sources
    _parse(shipped_name, shipped_text, categories, items, origins, shipped=True)
    for name, text in extra:
        _parse(name, text, categories, items, origins)
    for code, item in items.items():
        problem = related_problem(item, items)
        if problem:
            raise CatalogueError(f"{origins[code]}: {problem}")
    return Catalogue(categories.values(), items.values())
