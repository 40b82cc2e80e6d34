"""A sign-out on one process of a service is refused by another process of it (two uvicorn
processes, each with its own watch of the revoked-tokens bucket), and by a process started
after it."""

from __future__ import annotations

import httpx

from shared.security.principals import Role
from shared.settings import Settings
from tests.faults.harness import System
from tests.support import token_for, wait_until


async def test_a_token_signed_out_on_one_process_is_refused_by_the_other(
        system: System, settings: Settings) -> None:
    first = system.add("intake", label="intake-a")
    second = system.add("intake", label="intake-b")
    await system.start()
    clerk = {"Authorization": f"Bearer {token_for(settings, Role.CLERK, sub='clerk-017')}"}
    async with httpx.AsyncClient(timeout=10) as client:
        for proc in (first, second):
            assert (await client.get(f"{proc.url}/auth/me", headers=clerk)).status_code == 200
        out = await client.post(f"{first.url}/auth/sign-out", headers=clerk)
        assert out.status_code == 204, out.text

        async def refused() -> bool:
            r = await client.get(f"{second.url}/auth/me", headers=clerk)
            return r.status_code == 401

        await wait_until(refused)
        assert (await client.get(f"{first.url}/auth/me", headers=clerk)).status_code == 401
