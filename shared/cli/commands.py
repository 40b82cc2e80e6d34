"""Imports every command module so that each registers itself on the root app."""

from shared.cli import (  # noqa: F401
    analyst,
    calendar,
    contracts,
    demo,
    dlq,
    ops,
    tail,
    token,
)
