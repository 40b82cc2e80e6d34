"""A connection to the test's PostgreSQL with intake's read-model tables made in the test's
intake schema (its search path), for tests that drive ``CaseProjection`` by hand."""

from __future__ import annotations

import asyncpg

from services.intake.projections import DDL
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings


async def with_case_tables(settings: Settings) -> asyncpg.Connection:
    """Connected, the tables made by the projection's own DDL (the caller closes it)."""
    conn = await asyncpg.connect(settings.database_url)
    schema = settings.schema_for("intake")
    await make_tables(conn, schema, DDL)
    return conn
