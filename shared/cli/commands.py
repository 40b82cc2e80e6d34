"""Imports every command module so that each registers itself on the root app."""

from shared.cli import (  # noqa: F401
    calendar,
    contracts,
    demo,
    dlq,
    ops,
    rebuild,
    replay,
    report,
    rules,
    sql,
    tail,
    token,
)
