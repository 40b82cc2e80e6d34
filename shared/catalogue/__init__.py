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

The catalogue ships as ``shared/catalogue/data/catalogue.json``. A center extends or amends it
with more files of the same format (``load_catalogue(extra_paths)``): an item whose code is
already known replaces it, a new code is added, and a file may add categories. Every shipped
item has a summary; in a center's file ``summary`` and ``related_items`` are optional, so files
written before they existed keep loading. Related codes are checked once every file is merged (a
center's item may point at a shipped one and the other way round): each must exist and none may
be the item itself. Invalid data fails loudly with the file and the item named.

Where each part lives: ``model`` (categories, items, codes), ``search`` (the index),
``catalogue`` (lookup by code and search), ``loader`` (the files; the only I/O), ``data/``.
Pinyin for search is computed once, when loading.
"""

from shared.catalogue.catalogue import Catalogue
from shared.catalogue.loader import load_catalogue
from shared.catalogue.model import (
    CatalogueError,
    Category,
    LocalizedText,
    ServiceItem,
    UnknownServiceItem,
)

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Category",
    "LocalizedText",
    "ServiceItem",
    "UnknownServiceItem",
    "load_catalogue",
]
