"""A sign-out on one process of a service is refused by another process of it (two uvicorn
processes, each with its own watch of the revoked-tokens bucket), and by a process started
after it, whatever was written over its entry since."""

from __future__ import annotations

import contextlib

import httpx
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError

from shared.bus.jetstream import connect
from shared.bus.revocations import bucket_name
from shared.security.principals import Role
from shared.security.revocations import revocation_key
from shared.security.tokens import TokenKeys
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


async def test_a_signed_out_token_stays_refused_whatever_is_written_over_its_entry(
        system: System, settings: Settings) -> None:
    """Every service may write the bucket (any takes a sign-out): a compromised one deletes a
    signed-out token's key, puts ``{"exp": 0}`` over another, purges a third and puts a
    ``Nats-TTL: 1s`` message over a fourth. Feedback, started after, reads the bucket whole
    before it is ready and refuses all four, as intake, which took the sign-outs, still does
    (the faults run's NATS admits anyone: tests/deploy/test_nats_auth.py does it as feedback's
    own user)."""
    intake = system.add("intake")
    await system.start()
    tokens = {how: {"Authorization": f"Bearer {token_for(settings, Role.CLERK, sub=f'c-{how}')}"}
              for how in ("deleted", "exp0", "purged", "ttl")}
    async with httpx.AsyncClient(timeout=10) as client:
        for headers in tokens.values():
            out = await client.post(f"{intake.url}/auth/sign-out", headers=headers)
            assert out.status_code == 204, out.text
        keys = {how: revocation_key(TokenKeys.from_settings(settings).verify(
            h["Authorization"].split()[1]).token_id or "") for how, h in tokens.items()}
        nc = await connect(settings, "test-compromised", error_cb=_ignore)
        try:
            js = nc.jetstream(timeout=2.0)
            kv = await js.key_value(bucket_name(settings))
            await kv.delete(keys["deleted"])
            await kv.put(keys["exp0"], b'{"exp": 0}')
            with contextlib.suppress(NatsError):
                await kv.purge(keys["purged"])
            with contextlib.suppress(NatsError):
                await js.publish(f"$KV.{bucket_name(settings)}.{keys['ttl']}", b'{"exp": 1e12}',
                                 headers={"Nats-TTL": "1s"})

            async def ttl_gone() -> bool:
                try:
                    await kv.get(keys["ttl"])
                except KeyNotFoundError:
                    return True
                return False

            if (await js.stream_info(f"KV_{bucket_name(settings)}")).config.allow_msg_ttl:
                await wait_until(ttl_gone, what="the TTL'd entry ended")  # old buckets only
        finally:
            await nc.close()
        later = system.add("feedback")
        await later.start()
        for proc in (later, intake):
            let_in = [how for how, headers in tokens.items()
                      if (await client.get(f"{proc.url}/auth/me", headers=headers)
                          ).status_code != 401]
            assert let_in == [], f"{proc.label} let in the signed-out tokens {let_in}"


async def _ignore(error: Exception) -> None:
    """The errors the refused writes draw (the test reads their effect instead)."""
