"""Imports every command module so that each registers itself on the root app."""

from shared.cli import analyst, contracts, demo, dlq, ops, run, tail, token  # noqa: F401
