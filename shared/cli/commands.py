"""Imports every command module so that each registers itself on the root app."""

from shared.cli import run  # noqa: F401
