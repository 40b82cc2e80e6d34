"""What the counter shows of a returning resident: enough to recognise the person in front of
the clerk (王*英 · 139****5678), not enough to copy their identity off the screen."""

from __future__ import annotations


def mask_name(name: str) -> str:
    """The first and last character kept, the rest starred: 王*英, 欧阳**峰; a two-character
    name keeps its first (李*)."""
    chars = list(name.strip())
    if len(chars) <= 1:
        return "*" if chars else ""
    if len(chars) == 2:
        return chars[0] + "*"
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def mask_phone(phone: str) -> str:
    """The first three and last four digits kept: 139****5678, 021-****5678."""
    digits = [i for i, c in enumerate(phone) if c.isdigit()]
    keep = set(digits[:3]) | set(digits[-4:])
    return "".join(c if not c.isdigit() or i in keep else "*" for i, c in enumerate(phone))
