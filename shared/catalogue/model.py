"""What the catalogue holds: categories and service items with their codes, and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

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


def described(errors: ValidationError, whole: str = "(item)") -> str:
    """What a data file's entry got wrong, field by field (``whole``: the entry itself), for
    the catalogue's and the eligibility rules' error messages."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}"
                     for e in errors.errors())


class CatalogueError(ValueError):
    """A catalogue file cannot be read or holds invalid data."""


class UnknownServiceItem(LookupError):
    """No service item has this code."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown service item {code!r}: it is not in the service catalogue")

    def __str__(self) -> str:  # LookupError would repr the args otherwise
        return str(self.args[0])


def related_problem(item: ServiceItem, known: Mapping[str, ServiceItem]) -> str | None:
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
