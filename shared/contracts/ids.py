"""Deterministic ids: ``uuid.uuid5``'s answer at two thirds of its cost.

A consumer names what it plans after the event that asked for it (``follow_up_id_for``,
``survey_id_for``), so that applying the event again finds what the first time made. The
standard library's ``uuid5`` builds its answer through ``UUID(bytes=..., version=5)``, whose
checks of its arguments are most of its ~2.7 us; :func:`uuid5` hashes the same bytes and sets
the same version and variant bits on the same integer (``tests/unit/test_ids.py`` compares the
two). One of these is made for most events a follow-up or a feedback consumer acts on.
"""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID, SafeUUID

_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
"""Every bit but the version's four and the variant's two."""
_SET = (5 << 76) | (0x8000 << 48)
"""Version 5, variant RFC 4122."""
_new = object.__new__
_set = object.__setattr__


def uuid5(namespace: UUID, name: str) -> UUID:
    """``uuid.uuid5(namespace, name)``: the same UUID."""
    digest = sha1(namespace.bytes + name.encode("utf-8")).digest()
    made = _new(UUID)
    _set(made, "int", (int.from_bytes(digest[:16], "big") & _CLEAR) | _SET)
    _set(made, "is_safe", SafeUUID.unknown)
    return made
