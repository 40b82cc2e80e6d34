"""Deterministic ids (``uuid.uuid5``'s answer, cheaper): kept with the event contracts, whose
event ids are made the same way (``shared.contracts.ids``)."""

from __future__ import annotations

from shared.contracts.ids import uuid5

__all__ = ["uuid5"]
