"""A change, a declaration of facts or an erasure locks the resident's row only for a caller
in reach. Another center's clerk with no standing is answered as for an id nobody has without
waiting for, or taking, the row's lock. Until stop 50 the vault locked the row (``FOR UPDATE``)
before it knew the caller's standing: while the resident's own center was changing them (a
clerk's change, the publisher recording it on the log under the lock) another center's probe
waited and an id nobody has did not (a lock-wait oracle: "someone's resident, being worked on
right now"), and the probe's own lock held the resident's center's writers back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.intake.main import create_app
from services.intake.vault import Vault
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, headers, register_resident, running

OTHER = "SH-PD-ZHANGJIANG"


async def _waits_behind(holder: asyncpg.Connection, watcher: asyncpg.Connection,
                        request: Awaitable[httpx.Response]) -> tuple[bool, httpx.Response]:
    """Send ``request`` while ``holder`` keeps the resident's row locked: whether it waited
    behind the lock (a backend blocked by the holder), and its answer once the lock is gone.
    Either outcome is seen as it happens: the answer, or the wait in ``pg_stat_activity``."""
    task = asyncio.ensure_future(request)
    blocked = False
    while not task.done():
        blocked = await watcher.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            holder.get_server_pid())
        if blocked:
            break
        await asyncio.wait({task}, timeout=0.02)
    if holder.is_in_transaction():
        await holder.execute("ROLLBACK")
    return blocked, await task


async def test_another_centers_probe_neither_waits_for_nor_takes_the_residents_row_lock(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        schema = await vault.pool.fetchval("SELECT current_schema()")
        clerk_b = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-b")
        sup_b = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="sup-b")
        probes: list[tuple[str, Callable[[int], Awaitable[httpx.Response]]]] = [
            ("change", lambda n: home.patch(f"/residents/{resident}",
                                            headers={**clerk_b, **headers(f"lock-key-{n:04}")},
                                            json={"phone": "13800000000"})),
            ("facts", lambda n: home.put(f"/residents/{resident}/facts",
                                         headers={**clerk_b, **headers(f"lock-key-{n:04}")},
                                         json={"facts": ["lives_alone"], "consent": True})),
            ("erase", lambda n: home.delete(f"/residents/{resident}", headers=sup_b)),
        ]
        connect: dict[str, Any] = {"server_settings": {"search_path": schema}}
        holder = await asyncpg.connect(settings.database_url, **connect)
        watcher = await asyncpg.connect(settings.database_url, **connect)
        try:
            async def hold() -> None:  # the resident's own center, mid-change
                await holder.execute("BEGIN")
                await holder.execute(
                    "SELECT 1 FROM residents WHERE resident_id = $1 FOR UPDATE", resident)

            for n, (what, probe) in enumerate(probes):
                await hold()
                waited, answer = await _waits_behind(holder, watcher, probe(n))
                assert answer.status_code == 404, (what, answer.text)
                assert not waited, f"{what}: another center's probe waited for the row lock"


            # The resident's own center still changes them one change at a time.
            await hold()
            waited, answer = await _waits_behind(
                holder, watcher, home.patch(f"/residents/{resident}",
                                            headers=headers("lock-key-home"),
                                            json={"phone": "13900000000"}))
            assert answer.status_code < 300, answer.text
            assert waited, "a change in reach waits for the change in flight"
        finally:
            await holder.close()
            await watcher.close()


async def test_another_centers_refused_erasure_leaves_the_residents_change_to_their_center(
        settings: Settings) -> None:
    """A resident whose change is not on the log yet (the event store was down: the mark
    waits for the workers' sweep), named in an erasure by another center's supervisor: the
    404 is all that happens. Until stop 50 the refused erasure published the mark anyway,
    opening the resident's consent and ID number and recording the event for a caller
    answered as for an id nobody has."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        await vault.pool.execute(
            "UPDATE residents SET pending_event = 'consent', pending_actor = 'clerk-a'"
            " WHERE resident_id = $1", resident)
        sealer = vault.sealer
        opened: list[str] = []
        for name in ("unwrap_secret", "unwrap_data_key", "open"):
            def spy(*args: Any, _name: str = name, _real: Any = getattr(sealer, name)) -> Any:
                opened.append(_name)
                return _real(*args)
            setattr(sealer, name, spy)

        answer = await home.delete(
            f"/residents/{resident}",
            headers=bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="sup-b"))
        assert answer.status_code == 404, answer.text
        assert opened == [], "nothing of the resident is opened for another center"
        pending = await vault.pool.fetchval(
            "SELECT pending_event FROM residents WHERE resident_id = $1", resident)
        assert pending == "consent", "the mark is left for the resident's center's sweep"


async def test_a_refused_erasure_does_not_wait_for_the_key_table(settings: Settings) -> None:
    """An erasure locks the key table (``ACCESS EXCLUSIVE``: every vault read waits), but only
    for a caller who may erase. Until stop 50 every ``DELETE /residents/{id}`` took it first:
    a supervisor's guesses at ids, ours or nobody's, each waited for the vault reads under
    way and held every center's reads of residents behind it."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = UUID(await register_resident(home))
        vault: Vault = app.state.vault
        schema = await vault.pool.fetchval("SELECT current_schema()")
        connect: dict[str, Any] = {"server_settings": {"search_path": schema}}
        holder = await asyncpg.connect(settings.database_url, **connect)
        watcher = await asyncpg.connect(settings.database_url, **connect)
        sup_b = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="sup-b")
        try:
            for rid in (resident, uuid4()):
                await holder.execute("BEGIN")  # a vault read under way
                await holder.fetchval("SELECT count(*) FROM vault_key_buckets")
                waited, answer = await _waits_behind(
                    holder, watcher, home.delete(f"/residents/{rid}", headers=sup_b))
                assert answer.status_code == 404, answer.text
                assert not waited, "a refused erasure waited for the key table"
        finally:
            await holder.close()
            await watcher.close()
