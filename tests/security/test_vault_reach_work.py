"""The work the vault's read does for another center's caller with no standing: their row is
looked up and their standings probed (a grant, a case of theirs: the answer rests on them),
but nothing of the resident's key. Until stop 50 the key bucket's row was fetched by the
join and discarded (``IN_REACH`` a join filter on it): some 25 us of the database's time by
which another center's resident answered later than an id nobody has."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

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


def _cases_rows_read(plan: dict[str, Any]) -> int:
    """Rows of ``cases`` the plan read and threw away (its filter's, not its index's)."""
    return sum(n.get("Rows Removed by Filter", 0) for n in _nodes(plan)
               if n.get("Relation Name") == "cases")


async def test_another_centers_probe_costs_the_same_however_many_cases_the_resident_has(
        settings: Settings) -> None:
    """A regular of our center (three hundred cases here, among
    three thousand at each center) named by another center's clerk:
    the probe for a case of *theirs* naming the resident is one index look-up, as for a
    resident with none. Until stop 50 it walked every case of the resident (the index was on
    the resident alone, the center a filter): the work, and the answer's time, grew with how
    many cases the resident had at their own center."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        regular = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        async with vault.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cases (case_id, center_id, counter_id, clerk_id, channel,"
                " service_item, resident_id, resident_basis, status, stage, opened_at,"
                " updated_at, version, position)"
                " SELECT gen_random_uuid(), $1, 'window-1', 'clerk-1', 'counter',"
                " 'SA-HARDSHIP-SUBSIDY', CASE WHEN g <= 300 THEN $2"
                " ELSE gen_random_uuid() END, 'registration', 'resolved', 'feedback', now(),"
                " now(), 1, g FROM generate_series(1, 3000) g", TEST_CENTER, regular)
            await conn.execute(  # and their own center's, as busy as ours
                "INSERT INTO cases (case_id, center_id, counter_id, clerk_id, channel,"
                " service_item, resident_id, resident_basis, status, stage, opened_at,"
                " updated_at, version, position)"
                " SELECT gen_random_uuid(), $1, 'window-1', 'clerk-1', 'counter',"
                " 'SA-HARDSHIP-SUBSIDY', gen_random_uuid(), 'registration', 'resolved',"
                " 'feedback', now(), now(), 1, g FROM generate_series(1, 3000) g", OTHER)
            await conn.execute("ANALYZE cases")
            raw = await conn.fetchval(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) "
                + vault._SELECT_IN_REACH, regular, OTHER, "clerk-b", datetime.now(UTC))
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        assert _cases_rows_read(plan) == 0, json.dumps(plan, indent=1)


def _visits(plan: dict[str, Any]) -> dict[str, int]:
    """The plan's visits to each table (its scan nodes' loops), by table."""
    out: dict[str, int] = {}
    for node in _nodes(plan):
        if table := node.get("Relation Name"):
            out[table] = out.get(table, 0) + node.get("Actual Loops", 0)
    return out


async def _plan(vault: Vault, resident_id: UUID, center: str, lock: bool = False
                ) -> dict[str, Any]:
    async with vault.pool.acquire() as conn, conn.transaction():
        raw = await conn.fetchval(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) " + vault._SELECT_IN_REACH
            + (" FOR UPDATE OF r" if lock else ""),
            resident_id, center, "clerk-b", datetime.now(UTC))
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


async def test_another_centers_resident_and_an_id_nobody_has_visit_the_same_tables(
        settings: Settings) -> None:
    """The standings (a grant to the caller, a case of their center naming the resident)
    are probed by the id asked for, whether anyone has it or not: another center's resident
    and an id nobody has visit the same tables as often, read or locked for a change. Until
    stop 50 the probes ran only once the resident's row was found: an id nobody has did one
    look-up, another center's resident three."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        for lock in (False, True):
            theirs = _visits(await _plan(vault, resident, OTHER, lock))
            nobodys = _visits(await _plan(vault, uuid4(), OTHER, lock))
            assert theirs == nobodys, (lock, theirs, nobodys)
            assert set(theirs) >= {"residents", "presence_grants", "cases"}, theirs
