"""The work the vault's read does for another center's caller with no standing: their row is
looked up and their standings probed (a grant, a case of theirs: the answer rests on them),
but nothing of the resident's key. Until stop 50 the key bucket's row was fetched by the
join and discarded (``IN_REACH`` a join filter on it): some 25 us of the database's time by
which another center's resident answered later than an id nobody has."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.intake.main import create_app
from services.intake.vault import Vault
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, register_resident, running

OTHER = "SH-PD-ZHANGJIANG"


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


async def _key_bucket_reads(vault: Vault, resident_id: UUID, center: str) -> int:
    """How many times the read's plan visited ``vault_key_buckets`` (its nodes' loops)."""
    async with vault.pool.acquire() as conn:
        raw = await conn.fetchval(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) " + vault._SELECT_IN_REACH,
            resident_id, center, "clerk-b", datetime.now(UTC))
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return sum(n.get("Actual Loops", 0) for n in _nodes(plan)
               if n.get("Relation Name") == "vault_key_buckets"
               or "vault_key_buckets" in n.get("Index Name", ""))


async def test_another_centers_caller_reads_nothing_of_the_residents_key(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        assert await _key_bucket_reads(vault, resident, TEST_CENTER) == 1, \
            "the resident's own center reads the key: the count sees a read"
        assert await _key_bucket_reads(vault, resident, OTHER) == 0
